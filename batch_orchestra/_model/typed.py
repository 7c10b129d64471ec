"""Typed cursors and args: dataclasses or pydantic models in, JSON strings on the wire.

The batch carries cursors and args as strings (the seed's API). These helpers turn a dataclass
or pydantic model instance into such a string with Temporal's own JSON payload converter (the
default one for dataclasses, ``temporalio.contrib.pydantic``'s for pydantic models), and back.
The JSON is compact with sorted keys, so the same value always gives the same string: the batch
recognises a cursor it has seen by its string.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import re
import sys
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, overload

from temporalio.api.common.v1 import Payload
from temporalio.converter import DataConverter, PayloadConverter

from .._exceptions import (
    InvalidArgsError,
    InvalidBatchInputError,
    InvalidCursorError,
    ProcessorUsageError,
)
from .._model import check_cursor

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = [
    "TypedContextMixin",
    "TypedPageMixin",
    "args_str",
    "check_args",
    "cursor_str",
    "is_model",
    "parse_typed",
]

T = TypeVar("T")
D = TypeVar("D")
_SHOWN = 120  # characters of a bad cursor or args shown in an error (page errors are truncated)


class _Missing:
    pass


_MISSING = _Missing()


def _is_pydantic(obj_or_cls: Any) -> bool:
    pydantic = sys.modules.get("pydantic")  # a pydantic value means pydantic is imported
    if pydantic is None:
        return False
    base = pydantic.BaseModel
    return isinstance(obj_or_cls, base) or (
        isinstance(obj_or_cls, type) and issubclass(obj_or_cls, base)
    )


def _converter(pydantic: bool) -> PayloadConverter:
    if pydantic:
        from temporalio.contrib.pydantic import pydantic_data_converter

        return pydantic_data_converter.payload_converter
    return DataConverter.default.payload_converter


def _to_json(obj: object, fn: str) -> str:
    pydantic = _is_pydantic(obj)
    if not pydantic and not (dataclasses.is_dataclass(obj) and not isinstance(obj, type)):
        hint = (
            "; a str is already a cursor: pass it to BatchPage(cursor, size) as it is"
            if isinstance(obj, str)
            else ""
        )
        raise InvalidBatchInputError(
            f"{fn}() takes a dataclass or pydantic model instance, got "
            f"{type(obj).__name__} {obj!r:.80}{hint}"
        )
    try:
        data = _converter(pydantic).to_payloads([obj])[0].data
        # Same value, same string: compact, keys sorted (as Temporal's JSON converter does).
        return json.dumps(json.loads(data), separators=(",", ":"), sort_keys=True)
    except (TypeError, ValueError) as err:
        raise InvalidBatchInputError(
            f"{fn}({type(obj).__name__}(...)) cannot be serialized to JSON: {err}; give the "
            "model JSON-friendly fields (str, int, float, bool, None, lists, dicts, dataclasses)"
        ) from err


def cursor_str(obj: object) -> str:
    """Serialize a dataclass or pydantic model instance into a cursor string.

    Use it for first cursors (``BatchOrchestratorInput(first_cursor_str=cursor_str(...))`` or
    ``first_cursor_strs=[cursor_str(...), ...]``); ``BatchPage.of`` uses it for successors.
    Read it back with ``context.cursor(Model)``.

    Raises:
        InvalidBatchInputError: ``obj`` is not a dataclass or pydantic model instance, does not
            serialize to JSON, or gives a cursor over ``MAX_CURSOR_BYTES``.
    """
    s = _to_json(obj, "cursor_str")
    check_cursor(s, f"the cursor of {type(obj).__name__}")
    return s


def args_str(obj: object) -> str:
    """Serialize a dataclass or pydantic model instance into a batch's ``args`` string.

    ``BatchOrchestratorInput(args=args_str(MyArgs(...)))``; read it back in the processor with
    ``context.args(MyArgs)``.

    Raises:
        InvalidBatchInputError: ``obj`` is not a dataclass or pydantic model instance or does
            not serialize to JSON.
    """
    return _to_json(obj, "args_str")


def is_model(model: object) -> bool:
    """Whether ``model`` is a dataclass or pydantic model class (what typed args parse into)."""
    return _is_pydantic(model) or (isinstance(model, type) and dataclasses.is_dataclass(model))


def _check_model(model: object, method: str) -> str:
    """The model's name.

    Raises ProcessorUsageError unless it is a dataclass or pydantic model class.
    """
    if not is_model(model):
        raise ProcessorUsageError(
            f"context.{method}() takes a dataclass or pydantic model class, got {model!r}; "
            "read other values from the string (context.page.cursor_str, context.args_str)"
        )
    return getattr(model, "__name__", repr(model))


def parse_typed(model: type[T], text: str) -> T:
    """Parse ``text`` (JSON made by ``cursor_str`` or ``args_str``) into ``model``.

    ``model`` is a dataclass or pydantic model class.

    Raises:
        Exception: whatever the converter raised for text that does not fit ``model``.
    """
    pydantic = _is_pydantic(model)
    payload = Payload(metadata={"encoding": b"json/plain"}, data=text.encode())
    value = _converter(pydantic).from_payloads([payload], [model])[0]
    if not isinstance(value, model):  # e.g. JSON null
        raise TypeError(f"expected a JSON object, got {text[:40]!r}")
    return value


def _shown(text: str) -> str:
    return repr(text) if len(text) <= _SHOWN else f"{text[:_SHOWN]!r}... ({len(text):,} chars)"


def _reason(err: BaseException) -> str:
    """The error and its causes in one line, without the converter's generic wrappers."""
    chain: list[BaseException] = []
    cause: BaseException | None = err
    while cause is not None and len(chain) < 5:
        chain.append(cause)
        cause = cause.__cause__
    told = [e for e in chain if not (isinstance(e, RuntimeError) and e.__cause__)] or chain
    text = ": ".join(" ".join(str(e).split()) for e in told)
    return f"{type(chain[-1]).__name__}: {text[:200]}"


def _mismatch(model: Any, text: str, err: BaseException) -> str:
    """Which field of ``text`` does not fit ``model``, and its value, in one line."""
    try:
        data = json.loads(text)
    except ValueError:
        return f"they are not JSON: {_shown(text)}"
    if not isinstance(data, dict):
        return f"they are {type(data).__name__} {_shown(text)}, not a JSON object"
    cause: BaseException | None = err
    while cause is not None:
        errors = getattr(cause, "errors", None)  # a pydantic ValidationError
        if callable(errors) and _is_pydantic(model):
            first = errors()[0]
            field = ".".join(str(x) for x in first.get("loc", ())) or "(the object)"
            if first.get("type") == "missing":
                return f"field {field!r} is missing (args: {_shown(text)})"
            return f"field {field!r} is {first.get('input')!r:.120}: {first.get('msg')}"
        cause = cause.__cause__ or cause.__context__
    if dataclasses.is_dataclass(model):
        fields = dataclasses.fields(model)
        missing = [
            f.name
            for f in fields
            if f.name not in data
            and f.default is dataclasses.MISSING
            and f.default_factory is dataclasses.MISSING
        ]
        if missing:
            unknown = unknown_keys(model, text)
            also = f"; {unknown}" if unknown else ""
            return f"field {missing[0]!r} is missing (args: {_shown(text)}{also})"
        found = re.search(r"field (\w+)", str(err))
        if found and found.group(1) in data:
            name = found.group(1)
            why = err.__cause__ if err.__cause__ is not None else err
            return f"field {name!r} is {data[name]!r:.120}: {' '.join(str(why).split())[:200]}"
    return f"{_shown(text)} ({_reason(err)})"


def _fields(model: Any) -> list[str] | None:
    """The keys ``model`` takes, or None when it takes any key (pydantic ``extra="allow"``)."""
    if _is_pydantic(model):
        if model.model_config.get("extra") == "allow":
            return None
        return [f.alias or n for n, f in model.model_fields.items()]
    return [f.name for f in dataclasses.fields(model) if f.init]


def _closest(key: str, known: list[str]) -> str | None:
    """The field ``key`` was most likely meant to be: a close spelling, or one it abbreviates."""
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    if close:
        return close[0]
    within = [k for k in known if key.lower() in k.lower() or k.lower() in key.lower()]
    return within[0] if len(within) == 1 else None


def unknown_keys(model: Any, text: str) -> str | None:
    """The keys of the JSON object ``text`` that ``model`` has no field for, in one line.

    None when there are none (or ``text`` is not a JSON object, or the model takes any key).
    A misspelled optional key would otherwise be dropped silently and its default used.
    """
    try:
        data = json.loads(text)
    except ValueError:
        return None
    known = _fields(model)
    if not isinstance(data, dict) or known is None:
        return None
    unknown = sorted(k for k in data if k not in known)
    if not unknown:
        return None
    hints = [f"{k!r} -> {close!r}" for k in unknown if (close := _closest(k, known))]
    hint = ""
    if len(unknown) == 1 and hints:
        hint = f"; did you mean {hints[0].split(' -> ')[1]}?"
    elif hints:
        hint = f"; did you mean {', '.join(hints)}?"
    fields = ", ".join(known) or "(none)"
    return f"unknown key(s) {unknown} (fields: {fields}){hint}"


def check_args(model: Any, text: str, processor: str) -> None:
    """Check the batch's ``args`` against a processor's ``args_type`` when the batch starts.

    Raises:
        InvalidArgsError: they do not parse, or hold a key the model has no field for; the
            message names the field and its value (or the unknown key and the closest field).
    """
    name = getattr(model, "__name__", repr(model))
    try:
        parse_typed(model, text)
    except Exception as err:
        why: str | None = _mismatch(model, text, err)
        cause: BaseException | None = err
    else:
        why, cause = unknown_keys(model, text), None
    if why is not None:
        raise InvalidArgsError(
            f"the batch's args do not fit {name}, the args_type of {processor}: "
            f"{why}. Start the batch with args=args_str({name}(...)) "
            "(or, on the command line, --args with the JSON of its fields)",
            model=model,
            text=text,
            page_num=None,
        ) from cause


class TypedPageMixin:
    """``BatchPage.of``: a page whose cursor is a dataclass or pydantic model."""

    if TYPE_CHECKING:

        def __init__(self, cursor_str: str, size: int) -> None: ...

    @classmethod
    def of(cls, cursor: object, size: int) -> Self:
        """A page whose cursor is ``cursor`` (a dataclass or pydantic model instance).

        The cursor is serialized with ``cursor_str``:
        ``BatchPage.of(MyCursor(after=42), page.size)``.

        Raises:
            InvalidBatchInputError: as ``cursor_str``, or ``size`` < 1.
        """
        return cls(cursor_str(cursor), size)


class _PageLike(Protocol):
    """What the typed context reads of its page (the context's ``BatchPage``)."""

    @property
    def cursor_str(self) -> str: ...


class TypedContextMixin:
    """``context.cursor(Model)`` and ``context.args(Model)`` on ``BatchProcessorContext``."""

    if TYPE_CHECKING:

        @property
        def page(self) -> _PageLike: ...

        @property
        def page_num(self) -> int: ...

        @property
        def args_str(self) -> str: ...

        def has_args(self) -> bool: ...

        _args_type: type[Any] | None

    @overload
    def cursor(self, model: type[T]) -> T: ...

    @overload
    def cursor(self, model: type[T], *, default: D) -> T | D: ...

    def cursor(self, model: type[T], *, default: Any = _MISSING) -> Any:
        """This page's cursor parsed into ``model`` (a dataclass or pydantic model class).

        An empty cursor (the batch's first page when ``first_cursor_str`` was left at ``""``)
        returns ``default`` when one is given; without one it raises.

        Raises:
            InvalidCursorError: the cursor does not parse into ``model``, or is empty and no
                ``default`` was given. The page fails and is not retried.
            ProcessorUsageError: ``model`` is not a dataclass or pydantic model class.
        """
        name = _check_model(model, "cursor")
        text = self.page.cursor_str
        if text == "":
            if not isinstance(default, _Missing):
                return default
            raise InvalidCursorError(
                f"page {self.page_num}'s cursor is empty, so it cannot be read as {name}: "
                f"start the batch with first_cursor_str=cursor_str({name}(...)), or read it "
                f"with context.cursor({name}, default={name}(...)) to start from a default",
                model=model,
                text=text,
                page_num=self.page_num,
            )
        try:
            return parse_typed(model, text)
        except Exception as err:
            raise InvalidCursorError(
                f"page {self.page_num}'s cursor does not parse as {name}: {_shown(text)}. It "
                f"was made by another version of {name} or not by cursor_str: let {name} "
                "accept it (e.g. a default for a new field) and restart the batch from this "
                f"cursor. Not retried. ({_reason(err)})",
                model=model,
                text=text,
                page_num=self.page_num,
            ) from err

    @overload
    def args(self) -> Any: ...

    @overload
    def args(self, model: type[T]) -> T: ...

    @overload
    def args(self, model: type[T], *, default: D) -> T | D: ...

    @overload
    def args(self, *, default: D) -> Any: ...

    def args(self, model: Any = None, *, default: Any = _MISSING) -> Any:
        """The batch's ``args`` parsed into ``model`` (a dataclass or pydantic model class).

        Without ``model``, into the processor's ``args_type`` (whose args were checked when the
        batch started). A batch started without args (``args=None``) returns ``default`` when
        one is given.

        Raises:
            ProcessorUsageError: the batch has no args and no ``default`` was given, or
                ``model`` is not a dataclass or pydantic model class, or no model was given
                and the processor declares no ``args_type``.
            InvalidArgsError: the args do not parse into ``model`` (the page fails and is not
                retried).
        """
        if model is None:
            model = getattr(self, "_args_type", None)
            if model is None:
                raise ProcessorUsageError(
                    "context.args() without a model needs the processor to declare its args "
                    "type (args_type = MyArgs on the class); or call context.args(MyArgs)"
                )
        name = _check_model(model, "args")
        if not self.has_args() and not isinstance(default, _Missing):
            return default
        text = self.args_str
        try:
            value = parse_typed(model, text)
        except Exception as err:
            raise InvalidArgsError(
                f"page {self.page_num}: the batch's args do not parse as {name}: "
                f"{_shown(text)}. Start the batch with args=args_str({name}(...)). Not "
                f"retried. ({_reason(err)})",
                model=model,
                text=text,
                page_num=self.page_num,
            ) from err
        unknown = unknown_keys(model, text)
        if unknown is not None:
            raise InvalidArgsError(
                f"page {self.page_num}: the batch's args do not fit {name}: {unknown}. Start "
                f"the batch with args=args_str({name}(...)). Not retried.",
                model=model,
                text=text,
                page_num=self.page_num,
            )
        return value
