"""A container's probe verdicts, from answers in a row, without a server."""

from __future__ import annotations

import asyncio

import pytest

from berth.runtime.container import Status, server_env
from berth.runtime.http import Request
from berth.runtime.probes import PROBE_DEFAULTS, Verdict, health_check

PROBE = {**PROBE_DEFAULTS, "failure_threshold": 3, "success_threshold": 2}


def _verdicts(verdict: Verdict, answers: str) -> str:
    """The verdict after each answer (``+`` passed, ``-`` failed), as ``P``/``F``."""
    seen = ""
    for answer in answers:
        verdict.record(answer == "+")
        seen += "P" if verdict.passing else "F"
    return seen


@pytest.mark.parametrize(
    ("answers", "verdicts"),
    [
        ("--+--", "PPPPP"),  # failures not in a row do not count
        ("---", "PPF"),
        ("---+-++", "PPFFFFP"),  # back only after success_threshold in a row
    ],
)
def test_a_passing_probe_fails_after_failure_threshold_in_a_row(
    answers: str, verdicts: str
) -> None:
    assert _verdicts(Verdict(PROBE, passing=True), answers) == verdicts


def test_a_startup_passes_after_success_threshold_in_a_row() -> None:
    assert _verdicts(Verdict(PROBE, passing=False), "+-+-++") == "FFFFFP"


def test_record_says_when_the_verdict_changes() -> None:
    verdict = Verdict({**PROBE, "failure_threshold": 1}, passing=True)
    assert [verdict.record(a) for a in (True, False, False, True, True)] == [
        False,
        True,
        False,
        False,
        True,
    ]


def test_the_default_check_is_an_http_get_on_the_health_route() -> None:
    assert health_check("/ping", 1) == {
        **PROBE_DEFAULTS,
        "period_seconds": 1,
        "http_get": {"path": "/ping"},
    }


def test_the_server_runs_the_environments_python_with_the_contract_and_no_runtime_path() -> None:
    env = server_env(
        {"PATH": "/usr/bin", "PYTHONPATH": "/runtime", "HOME": "/box"},
        {"AIP_HTTP_PORT": "8080", "HOME": "/box"},
    )
    assert "PYTHONPATH" not in env
    assert env["PATH"].endswith(":/usr/bin") and env["AIP_HTTP_PORT"] == "8080"


@pytest.mark.parametrize(
    ("phase", "status", "body"),
    [
        ("starting", 503, b'{"status": "starting", "message": "HTTP 500: no"}'),
        ("ready", 200, b'{"status": "ready"}'),
        ("unhealthy", 503, b'{"status": "unhealthy", "message": "HTTP 500: no"}'),
        ("failed", 503, b'{"status": "failed", "message": "HTTP 500: no"}'),
    ],
)
def test_the_probe_socket_answers_the_verdict_with_the_last_answer(
    phase: str, status: int, body: bytes
) -> None:
    said = Status()
    said.set(phase, "HTTP 500: no")
    answer = asyncio.run(said.handle(Request("GET", "/health", {}, b"")))
    assert (answer.status, answer.body) == (status, body)
