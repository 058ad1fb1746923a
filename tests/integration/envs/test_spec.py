"""Specs that ask for a Python this machine has not installed are refused, naming what it has."""

from __future__ import annotations

import pytest

from tests.support.envs import MakeArtifact, refusal, runtime_yaml

pytestmark = pytest.mark.integration


def test_python_that_is_not_installed_is_refused_naming_what_is(
    make_artifact: MakeArtifact,
) -> None:
    root = make_artifact({"runtime.yaml": runtime_yaml("3.99"), "requirements.txt": "six\n"})
    message = refusal(root)
    assert "Python 3.99, which is not installed on this server (installed: " in message
    assert "berth does not download interpreters" in message
