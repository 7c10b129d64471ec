"""The line of held pages waiting to start, and the attempts running. Pure.

``RunQueue`` keeps the ready pages in the order they start (retries that came due and attempts
taken back go first, new pages last), the pages whose attempt is running, and how many ready
pages never ran (``fresh``: the failure policy only pauses a batch that has new pages left to
start).
"""

from __future__ import annotations

from collections import deque

from .pages import PageState

__all__ = ["RunQueue"]


class RunQueue:
    """Ready pages in starting order, running pages, and the count of ready pages never run."""

    def __init__(self) -> None:
        self.ready: deque[int] = deque()
        self.running: set[int] = set()
        self.fresh = 0
        """Ready pages whose attempts (if any) never did any work."""
        self.exact = True
        """See ``Scheduler.exact``: a page back in line whose attempts did no work is new."""

    def add(self, page_num: int) -> None:
        """A page new to the line (discovered, or queued again with a fresh budget) goes last."""
        self.ready.append(page_num)
        self.fresh += 1

    def put_first(self, page: PageState, *, taken_back: bool = False) -> None:
        """``page``, not in line, goes first: its retry came due, or an operator retries it now.

        ``taken_back``: its attempt never started (not started in time, or not confirmed at a
        hand-over), so it counts as new even in a run begun before ``exact``.
        """
        self.ready.appendleft(page.page_num)
        if page.never_ran and (taken_back or self.exact):
            self.fresh += 1  # its attempts did no work: a new page again

    def move_first(self, page_num: int) -> None:
        """A page in line goes first."""
        if page_num in self.ready:
            self.ready.remove(page_num)
        self.ready.appendleft(page_num)

    def drop(self, page: PageState) -> None:
        """A ready page leaves the line without starting (skipped)."""
        if page.page_num in self.ready:
            self.ready.remove(page.page_num)
            if page.never_ran:
                self.fresh -= 1

    def start(self, page: PageState) -> None:
        """An attempt at ``page``, just taken from the line, starts."""
        if page.never_ran:
            self.fresh -= 1
        page.attempts += 1
        self.running.add(page.page_num)

    def state(self) -> tuple[list[int], list[int]]:
        """The line and the running pages (sorted), for a hand-over."""
        return list(self.ready), sorted(self.running)

    def restore(self, ready: list[int], running: list[int], pages: dict[int, PageState]) -> None:
        """The line and the running pages a hand-over carried."""
        self.ready = deque(ready)
        self.fresh = sum(1 for n in self.ready if pages[n].never_ran)
        self.running = set(running)
