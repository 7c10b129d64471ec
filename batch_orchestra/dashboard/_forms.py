"""The dashboard's forms: reading urlencoded bodies, the start form, list paging tokens."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from urllib.parse import parse_qsl

from starlette.requests import Request

from .._model import BatchOrchestratorInput, validate_input

__all__ = ["START_FIELDS", "decode_token", "encode_token", "read_form", "start_input"]

START_FIELDS = (
    "processor",
    "task_queue",
    "page_size",
    "max_parallelism",
    "args",
    "first_cursor",
    "total_items",
    "batch_id",
)
"""The start form's fields."""


def start_input(values: dict[str, str]) -> tuple[BatchOrchestratorInput, str, str]:
    """The batch input, workflow ID and task queue from the start form, or ``ValueError``."""
    if not values["processor"]:
        raise ValueError("page processor is required: the name a worker registered")
    if not values["task_queue"]:
        raise ValueError("task queue is required: the one your workers poll")
    numbers: dict[str, int | None] = {}
    for key in ("page_size", "max_parallelism", "total_items"):
        raw = values[key]
        if not raw and key == "total_items":
            numbers[key] = None
            continue
        try:
            numbers[key] = int(raw)
        except ValueError:
            raise ValueError(
                f"{key.replace('_', ' ')} must be a whole number, got {raw!r}"
            ) from None
    args = values["args"] or None
    if args is not None:
        try:
            json.loads(args)
        except ValueError as err:
            raise ValueError(f"args must be valid JSON ({err})") from None
    inp = BatchOrchestratorInput(
        page_processor=values["processor"],
        page_size=numbers["page_size"] or 0,
        max_parallelism=numbers["max_parallelism"] or 0,
        args=args,
        first_cursor_str=values["first_cursor"],
        total_items=numbers["total_items"],
    )
    validate_input(inp)
    wid = values["batch_id"] or f"{values['processor']}-{uuid.uuid4().hex[:12]}"
    return inp, wid, values["task_queue"]


_MAX_FORM_BYTES = 256 * 1024
"""Bodies larger than this are read as empty forms (so they fail the CSRF check)."""


async def read_form(request: Request) -> dict[str, str]:
    """The fields of a urlencoded form (the only kind the dashboard's pages send)."""
    cached = request.scope.get("batch_orchestra.form")
    if cached is not None:
        return dict(cached)
    body = await request.body()
    fields: dict[str, str] = {}
    if len(body) <= _MAX_FORM_BYTES:
        fields = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    request.scope["batch_orchestra.form"] = fields
    return dict(fields)


def encode_token(token: bytes | None) -> str | None:
    return base64.urlsafe_b64encode(token).decode() if token else None


def decode_token(value: str | None) -> bytes | None:
    if not value:
        return None
    try:
        return base64.urlsafe_b64decode(value.encode())
    except (binascii.Error, ValueError):
        return None
