"""Pages of directory listings (users, service principals, groups) and their SCIM filters."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

from sqlalchemy import ColumnElement, String, cast, func

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Match:
    """One comparison of a list filter: ``field op value``, case-insensitive."""

    field: Literal["id", "name", "display_name"]
    op: Literal["eq", "ne", "co", "sw"]
    value: str


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    total: int
    items: list[T]


def compare(column: object, match: Match) -> ColumnElement[bool]:
    """``column`` compared with ``match``'s value as text, ignoring case."""
    text = func.lower(cast(column, String))
    value = match.value.lower()
    if match.op == "eq":
        return text == value
    if match.op == "ne":
        return text != value
    if match.op == "co":
        return text.contains(value, autoescape=True)
    return text.startswith(value, autoescape=True)
