"""The dashboard's pages, rendered on the server as plain HTML.

The list of batches is in ``_list_page``, a batch's page in ``_batch_page``, what every page
shares in ``_chrome``; the start form and the error page are here.

Every value that comes from Temporal or the user (batch IDs, errors, cursors, processor names)
passes through ``esc`` (HTML escaping, quotes included), so a batch ID with markup in it shows as
text. The page's script (``static/dashboard.js``) updates the page through ``textContent`` only.
"""

from __future__ import annotations

from ._batch_page import PageFacts, batch_page
from ._chrome import (
    Chrome,
    layout,
)
from ._list_page import list_page
from ._markup import batch_path, clock, esc

__all__ = [
    "Chrome",
    "PageFacts",
    "batch_page",
    "batch_path",
    "clock",
    "error_page",
    "esc",
    "layout",
    "list_page",
    "start_page",
]


def start_page(
    chrome: Chrome,
    *,
    processors: list[str],
    task_queues: list[str],
    values: dict[str, str],
    error: str = "",
) -> str:
    """The form that starts a batch."""

    def field(name: str, label: str, kind: str = "text", extra: str = "", hint: str = "") -> str:
        value = esc(values.get(name, ""))
        hint_html = f"<small>{esc(hint)}</small>" if hint else ""
        return (
            f'<label>{esc(label)}<input type="{kind}" name="{name}" id="f-{name}" '
            f'value="{value}" {extra}>{hint_html}</label>'
        )

    options = "".join(f'<option value="{esc(n)}">' for n in processors)
    queues = "".join(f'<option value="{esc(q)}">' for q in task_queues)
    err = f'<p class="failure" role="alert">{esc(error)}</p>' if error else ""
    body = f"""<h1>Start a batch</h1>{err}
<form method="post" action="{esc(chrome.base)}/start" class="start" id="start-form">
<input type="hidden" name="csrf_token" value="{esc(chrome.csrf)}">
{
        field(
            "processor",
            "Page processor",
            extra='list="processors" required',
            hint="the registered name; workers on the task queue must know it",
        )
    }
<datalist id="processors">{options}</datalist>
{field("task_queue", "Task queue", extra='list="task-queues" required')}
<datalist id="task-queues">{queues}</datalist>
{field("page_size", "Page size", "number", 'min="1" required')}
{field("max_parallelism", "Max parallelism", "number", 'min="0" required', "0 starts paused")}
<label>Args (JSON, read as context.args_str)
<textarea name="args" id="f-args" rows="3">{esc(values.get("args", ""))}</textarea></label>
{field("first_cursor", "First cursor")}
{field("total_items", "Total items (optional, for percent and ETA)", "number", 'min="0"')}
{field("batch_id", "Batch ID (optional)", hint="default: PROCESSOR-<random>")}
<button type="submit" id="start-button">Start batch</button>
</form>"""
    return layout(chrome, "Start a batch", body, page="start")


def error_page(chrome: Chrome, title: str, message: str, back: str | None = None) -> str:
    """A page that says what went wrong, and where to go back to."""
    link = f'<p><a href="{esc(back)}">Back</a></p>' if back else ""
    body = f'<h1>{esc(title)}</h1><p class="failure" role="alert">{esc(message)}</p>{link}'
    return layout(chrome, title, body, page="error")
