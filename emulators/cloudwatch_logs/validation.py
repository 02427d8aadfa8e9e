"""Checks a request against the operation's input shape in botocore's copy of the AWS service model.

The shapes (required members, lengths, ranges, patterns, enums) are exactly the ones the real service
declares, so the errors match: a constraint violation is ``InvalidParameterException`` with the
"N validation error(s) detected: Value ... at 'path' failed to satisfy constraint: ..." text, and a
value of the wrong JSON type is ``SerializationException``.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from botocore.loaders import create_loader
from botocore.model import OperationModel, ServiceModel, Shape

from emulators.cloudwatch_logs.errors import ServiceError, invalid_parameter, serialization

_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "structure": (dict,),
    "map": (dict,),
    "list": (list,),
    "string": (str,),
    "blob": (str,),
    "boolean": (bool,),
    "integer": (int,),
    "long": (int,),
    "double": (int, float),
    "float": (int, float),
    "timestamp": (int, float, str),
}


@functools.cache
def _service_model() -> ServiceModel:
    return ServiceModel(create_loader().load_service_model("logs", "service-2"), service_name="logs")


def operation_model(name: str) -> OperationModel:
    return _service_model().operation_model(name)


@functools.cache
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.ASCII)


def validate_input(operation: str, params: dict[str, Any]) -> None:
    """Raises ServiceError when ``params`` does not fit the operation's input shape."""
    shape = operation_model(operation).input_shape
    if shape is None:
        return
    problems: list[str] = []
    _check_structure(shape, params, "", problems)
    if problems:
        count = len(problems)
        noun = "error" if count == 1 else "errors"
        raise invalid_parameter(f"{count} validation {noun} detected: " + "; ".join(problems))


def _check(shape: Shape, value: Any, path: str, problems: list[str]) -> None:
    if not _has_type(shape, value):
        raise serialization(f"Value at '{path}' must be a JSON {shape.type_name}, not {type(value).__name__}")
    if shape.type_name == "structure":
        _check_structure(shape, value, path, problems)
    elif shape.type_name == "list":
        _check_range(shape, len(value), path, value, "length", problems)
        member = shape.member  # type: ignore[attr-defined]
        for index, item in enumerate(value, start=1):
            if item is not None:
                _check(member, item, f"{path}.{index}.member", problems)
    elif shape.type_name == "map":
        _check_range(shape, len(value), path, value, "length", problems)
    elif shape.type_name == "string":
        _check_string(shape, value, path, problems)
    elif shape.type_name in ("integer", "long"):
        _check_range(shape, value, path, value, "value", problems)


def _has_type(shape: Shape, value: object) -> bool:
    expected = _JSON_TYPES.get(shape.type_name, (object,))
    if isinstance(value, bool) and shape.type_name != "boolean":
        return False
    return isinstance(value, expected)


def _check_structure(shape: Shape, value: dict[str, Any], path: str, problems: list[str]) -> None:
    required = set(shape.required_members)
    for name, member in shape.members.items():  # type: ignore[attr-defined]
        member_path = f"{path}.{name}" if path else name
        if value.get(name) is None:
            if name in required:
                problems.append(f"Value null at '{member_path}' failed to satisfy constraint: Member must not be null")
            continue
        _check(member, value[name], member_path, problems)


def _check_string(shape: Shape, value: str, path: str, problems: list[str]) -> None:
    utf16_length = len(value.encode("utf-16-le")) // 2  # Java counts UTF-16 code units
    _check_range(shape, utf16_length, path, value, "length", problems)
    pattern = shape.metadata.get("pattern")
    if pattern is not None and not _regex(pattern).fullmatch(value):
        problems.append(_violation(value, path, f"Member must satisfy regular expression pattern: {pattern}"))
    enum = shape.metadata.get("enum")
    if enum and value not in enum:
        problems.append(_violation(value, path, f"Member must satisfy enum value set: [{', '.join(enum)}]"))


def _check_range(shape: Shape, measure: int, path: str, value: Any, what: str, problems: list[str]) -> None:
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if low is not None and measure < low:
        problems.append(_violation(value, path, f"Member must have {what} greater than or equal to {low}"))
    if high is not None and measure > high:
        problems.append(_violation(value, path, f"Member must have {what} less than or equal to {high}"))


def _violation(value: Any, path: str, constraint: str) -> str:
    shown = str(value)
    if len(shown) > 200:
        shown = shown[:200] + "..."
    return f"Value '{shown}' at '{path}' failed to satisfy constraint: {constraint}"


__all__ = ["ServiceError", "operation_model", "validate_input"]
