"""AWS error codes and the messages CloudWatch Logs sends with them (awsJson1.1: HTTP 400 + ``__type``)."""

from __future__ import annotations


class ServiceError(Exception):
    """An error the API answers with ``{"__type": code, "message": message}``."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def invalid_parameter(message: str) -> ServiceError:
    return ServiceError("InvalidParameterException", message)


def group_not_found() -> ServiceError:
    return ServiceError("ResourceNotFoundException", "The specified log group does not exist.")


def stream_not_found() -> ServiceError:
    return ServiceError("ResourceNotFoundException", "The specified log stream does not exist.")


def serialization(message: str) -> ServiceError:
    return ServiceError("SerializationException", message)


def unknown_operation(target: str) -> ServiceError:
    return ServiceError("UnknownOperationException", f"Operation {target!r} is not supported by this endpoint.")


def throttled() -> ServiceError:
    return ServiceError("ThrottlingException", "Rate exceeded")
