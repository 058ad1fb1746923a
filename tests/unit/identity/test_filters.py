"""SCIM filters as the Databricks SDK and SCIM clients write them."""

from __future__ import annotations

import pytest

from berth.core.errors import InvalidParameter
from berth.identity.filters import Field, parse_filter
from berth.store.listing import Match

USERS: dict[str, Field] = {"userName": "name", "displayName": "display_name", "id": "id"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('userName eq "alice@example.com"', Match("name", "eq", "alice@example.com")),
        ('USERNAME EQ "Alice"', Match("name", "eq", "Alice")),
        ('  displayName co "li"  ', Match("display_name", "co", "li")),
        ('displayName sw "Al ice"', Match("display_name", "sw", "Al ice")),
        ("id ne 7", Match("id", "ne", "7")),
        ('userName eq "say \\"hi\\""', Match("name", "eq", 'say "hi"')),
    ],
)
def test_one_comparison_is_understood(text: str, expected: Match) -> None:
    assert parse_filter(text, USERS) == expected


@pytest.mark.parametrize("text", [None, "", "   "])
def test_no_filter_matches_everything(text: str | None) -> None:
    assert parse_filter(text, USERS) is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('userName eq "a" and displayName eq "b"', "no and/or"),
        ('userName gt "a"', "operators eq, ne, co, sw"),
        ("userName", "one comparison"),
        ('emails eq "a@b"', "Cannot filter on 'emails': use one of userName, displayName, id"),
        ('userName eq "bad \\q"', "not a valid quoted string"),
    ],
)
def test_other_filters_are_refused_saying_what_works(text: str, message: str) -> None:
    with pytest.raises(InvalidParameter, match=message.replace("(", r"\(")):
        parse_filter(text, USERS)
