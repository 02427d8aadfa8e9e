"""restJson1 errors as X-Ray sends them: HTTP status, ``x-amzn-ErrorType`` and ``{"message": ...}``."""

from __future__ import annotations


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def invalid_request(message: str) -> ApiError:
    """What X-Ray answers to a bad parameter: 400 InvalidRequestException."""
    return ApiError(400, "InvalidRequestException", message)
