"""Model names become folder names, so the rule is strict; versions are positive integers."""

from __future__ import annotations

import pytest

from berth.core.errors import InvalidParameter
from berth.registry.names import check_model_name, parse_version


@pytest.mark.parametrize("name", ["m", "iris-demo", "a.b_c-1", "x" * 255, "..."])
def test_good_names_pass(name: str) -> None:
    assert check_model_name(name) == name


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "a b", "x" * 256, "é", "a\\b"])
def test_bad_names_say_what_is_allowed(name: str) -> None:
    with pytest.raises(InvalidParameter) as caught:
        check_model_name(name)
    assert caught.value.message == (
        f"Invalid model name {name!r}: use 1 to 255 characters among letters, digits, "
        "'_', '.' and '-' (and not '.' or '..')."
    )


@pytest.mark.parametrize(("text", "number"), [("1", 1), ("42", 42)])
def test_versions_parse(text: str, number: int) -> None:
    assert parse_version(text) == number


@pytest.mark.parametrize("text", ["0", "-1", "v1", "1.0", "", "١"])
def test_bad_versions_are_refused(text: str) -> None:
    with pytest.raises(InvalidParameter, match="versions are positive integers such as '1'"):
        parse_version(text)
