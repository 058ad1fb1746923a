"""``{{secrets/<scope>/<key>}}``: parsing, and resolving against a real store."""

from __future__ import annotations

import pytest

from berth.core.errors import InvalidParameter, NotFound
from berth.secrets import SecretRef, SecretsService, parse_reference, resolve_reference
from tests.unit.secrets.conftest import ALICE


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{{secrets/openai/api-key}}", SecretRef("openai", "api-key")),
        ("{{secrets/a.b_C-9/K}}", SecretRef("a.b_C-9", "K")),
        ("{{secrets/" + "s" * 128 + "/k}}", SecretRef("s" * 128, "k")),
    ],
)
def test_a_whole_string_reference_is_parsed(text: str, expected: SecretRef) -> None:
    assert parse_reference(text) == expected
    assert str(expected) == text


@pytest.mark.parametrize(
    "text", ["", "sk-literal", "secrets/a/b", "{secrets/a/b}", "key {{secrets/a/b}}", "{{a/b}}"]
)
def test_other_text_is_a_literal(text: str) -> None:
    assert parse_reference(text) is None


@pytest.mark.parametrize(
    "text",
    [
        "{{secrets/a b/c}}",
        "{{ secrets/a/b }}",
        " {{secrets/a/b}}",
        "{{secrets/a/b/c}}",
        "{{secrets/a}}",
        "{{secrets//b}}",
        "{{secrets/" + "s" * 129 + "/k}}",
        "{{secrets/a/b}} {{secrets/c/d}}",
    ],
)
def test_a_malformed_reference_is_refused_not_taken_literally(text: str) -> None:
    with pytest.raises(InvalidParameter, match="is not a valid secret reference"):
        parse_reference(text)


def test_a_reference_resolves_to_the_latest_value(service: SecretsService) -> None:
    service.create_scope(ALICE, "llm")
    service.put_secret(ALICE, "llm", "key", b"first")
    service.put_secret(ALICE, "llm", "key", "sk-ünïcode".encode())
    assert resolve_reference(service, "{{secrets/llm/key}}", "endpoint 'chat'") == "sk-ünïcode"
    assert resolve_reference(service, "sk-literal", "endpoint 'chat'") is None


@pytest.mark.parametrize("reference", ["{{secrets/llm/missing}}", "{{secrets/nope/key}}"])
def test_a_missing_secret_names_the_reference_and_its_holder(
    service: SecretsService, reference: str
) -> None:
    service.create_scope(ALICE, "llm")
    service.put_secret(ALICE, "llm", "key", b"top-secret-value")
    with pytest.raises(NotFound) as caught:
        resolve_reference(service, reference, "endpoint 'chat'")
    assert caught.value.message.startswith(
        f"The secret scope/key {reference} referenced by endpoint 'chat' does not exist"
    )
    assert "top-secret-value" not in caught.value.message


def test_binary_values_that_are_not_text_are_refused(service: SecretsService) -> None:
    service.create_scope(ALICE, "bin")
    service.put_secret(ALICE, "bin", "blob", b"\xff\xfe\x00")
    with pytest.raises(InvalidParameter, match="holds bytes that are not UTF-8 text") as caught:
        resolve_reference(service, "{{secrets/bin/blob}}", "endpoint 'chat'")
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
