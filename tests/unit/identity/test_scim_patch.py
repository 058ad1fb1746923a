"""SCIM PATCH bodies read into plain changes (the wire schemas of the identity routes)."""

from __future__ import annotations

from typing import Any

import pytest

from berth.api.schemas.identity import (
    MemberChanges,
    PatchBody,
    PrincipalChanges,
    member_changes,
    principal_changes,
)
from berth.core.errors import InvalidParameter

PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def body(*operations: dict[str, Any]) -> PatchBody:
    return PatchBody.model_validate({"schemas": [PATCH], "Operations": list(operations)})


@pytest.mark.parametrize(
    ("operations", "expected"),
    [
        ([{"op": "replace", "path": "active", "value": False}], PrincipalChanges(active=False)),
        ([{"op": "Replace", "path": "active", "value": "False"}], PrincipalChanges(active=False)),
        ([{"op": "add", "path": "displayName", "value": "Al"}], PrincipalChanges("Al")),
        (
            [{"op": "replace", "value": {"active": "true", "displayName": "Bo"}}],
            PrincipalChanges("Bo", True),
        ),
    ],
)
def test_principal_patches(operations: list[dict[str, Any]], expected: PrincipalChanges) -> None:
    assert principal_changes(body(*operations)) == expected


@pytest.mark.parametrize(
    ("operation", "message"),
    [
        ({"op": "replace", "path": "userName", "value": "x"}, "changes only active, displayname"),
        ({"op": "replace", "path": "active", "value": "maybe"}, "active must be true or false"),
        ({"op": "remove", "path": "displayName"}, "Cannot remove 'displayName'"),
        ({"op": "replace", "value": "x"}, "needs an object value"),
    ],
)
def test_principal_patches_berth_cannot_apply_are_refused(
    operation: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidParameter, match=message):
        principal_changes(body(operation))


@pytest.mark.parametrize(
    ("operations", "expected"),
    [
        (
            [{"op": "add", "path": "members", "value": [{"value": "4"}, {"value": "5"}]}],
            MemberChanges(add=(4, 5)),
        ),
        ([{"op": "add", "value": {"members": [{"value": "4"}]}}], MemberChanges(add=(4,))),
        ([{"op": "remove", "path": 'members[value eq "4"]'}], MemberChanges(remove=(4,))),
        (
            [{"op": "remove", "path": "members", "value": [{"value": "4"}]}],
            MemberChanges(remove=(4,)),
        ),
        ([{"op": "remove", "path": "members"}], MemberChanges(replace=())),
        (
            [
                {"op": "replace", "path": "members", "value": [{"value": "1"}, {"value": "2"}]},
                {"op": "remove", "path": 'members[value eq "1"]'},
                {"op": "add", "path": "members", "value": [{"value": "3"}]},
            ],
            MemberChanges(replace=(2, 3)),
        ),
        (
            [{"op": "replace", "path": "displayName", "value": "team"}],
            MemberChanges(name="team"),
        ),
    ],
)
def test_member_patches(operations: list[dict[str, Any]], expected: MemberChanges) -> None:
    assert member_changes(body(*operations)) == expected


@pytest.mark.parametrize(
    ("operation", "message"),
    [
        ({"op": "add", "path": "members", "value": [{"value": "alice"}]}, "'alice' is not an id"),
        ({"op": "add", "path": "members", "value": [{"id": "4"}]}, 'given as \\[{"value"'),
        ({"op": "remove", "path": "displayName"}, "Cannot remove 'displayName' of a group"),
        ({"op": "add", "path": "owners", "value": []}, "changes only displayname, members"),
    ],
)
def test_member_patches_berth_cannot_apply_are_refused(
    operation: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidParameter, match=message):
        member_changes(body(operation))
