"""Dataclasses to and from the JSON-friendly dicts that cross Temporal, driven by their fields.

The workflow takes its input as a plain dict and parses it here rather than letting the data
converter build the dataclass: a bad or unknown field then fails the batch with a message that
names it, instead of failing every workflow task. Field lists come from ``dataclasses.fields``,
so a new field needs no second list. Durations travel as seconds (a CLI or another SDK can send
``{"page_timeout": 300}``).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from datetime import timedelta
from typing import Any, TypeVar, Union

__all__ = ["WireError", "from_wire", "to_wire"]

T = TypeVar("T")


class WireError(ValueError):
    """A wire value that does not fit its field; the message names the field."""


def to_wire(obj: Any) -> Any:
    """A dataclass (recursively) as a JSON-friendly value; timedelta as seconds, types by name."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_wire(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, timedelta):
        return obj.total_seconds()
    if isinstance(obj, type):
        return obj.__name__
    if isinstance(obj, (list, tuple)):
        return [to_wire(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_wire(v) for k, v in obj.items()}
    return obj


def from_wire(cls: type[T], raw: Any, where: str = "", label: str | None = None) -> T:
    """Build dataclass ``cls`` from ``to_wire`` output.

    Unknown keys and values of the wrong kind raise ``WireError`` naming ``where`` (the field path)
    or ``label``; missing keys take the field's default.
    """
    name = label or where or cls.__name__
    if not isinstance(raw, dict):
        raise WireError(f"{name} must be a JSON object, got {raw!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise WireError(f"unknown {name} field(s) {unknown}; known: {sorted(fields)}")
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for key, value in raw.items():
        kwargs[key] = _value(hints[key], value, f"{where}.{key}" if where else key)
    try:
        return cls(**kwargs)
    except TypeError as err:  # a required field is missing
        raise WireError(f"{name}: {err}") from None


def _value(hint: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _value(arg, value, where)
            except WireError:
                continue
        raise WireError(f"{where} has an unexpected value {value!r}")
    if hint is Any:
        return value
    if hint is timedelta:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise WireError(f"{where} must be a number of seconds on the wire, got {value!r}")
        return timedelta(seconds=value)
    if dataclasses.is_dataclass(hint):
        return from_wire(hint, value, where)  # type: ignore[arg-type]
    if origin is list:
        if not isinstance(value, list):
            raise WireError(f"{where} must be a list, got {value!r}")
        (arg,) = typing.get_args(hint) or (Any,)
        return [_value(arg, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise WireError(f"{where} must be an object, got {value!r}")
        return value
    if hint is type:
        raise WireError(f"{where} must be a name, got {value!r}")
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(hint, type) and not isinstance(value, hint):
        # Leave the message to validation, which knows the allowed range; keep the value.
        if hint in (int, str, bool, float):
            return value
        raise WireError(f"{where} must be a {hint.__name__}, got {value!r}")
    return value
