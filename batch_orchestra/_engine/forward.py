"""``Forward``: an attribute of an object that is an attribute of one of its parts."""

from __future__ import annotations

from typing import Any, Generic, TypeVar, overload

__all__ = ["Forward"]

T = TypeVar("T")


class Forward(Generic[T]):
    """A class attribute that reads and writes ``obj.<part>.<name>``.

    ``pages = Forward[dict[int, PageState]]("table")`` makes ``obj.pages`` the
    ``obj.table.pages`` of each instance (``name`` defaults to the attribute's own name).
    """

    def __init__(self, part: str, name: str | None = None) -> None:
        self.part = part
        self.name = name or ""

    def __set_name__(self, owner: type[Any], name: str) -> None:
        self.name = self.name or name

    @overload
    def __get__(self, obj: None, owner: type[Any] | None = None) -> Forward[T]: ...
    @overload
    def __get__(self, obj: object, owner: type[Any] | None = None) -> T: ...
    def __get__(self, obj: object | None, owner: type[Any] | None = None) -> T | Forward[T]:
        if obj is None:
            return self
        value: T = getattr(getattr(obj, self.part), self.name)
        return value

    def __set__(self, obj: object, value: T) -> None:
        setattr(getattr(obj, self.part), self.name, value)
