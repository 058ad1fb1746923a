"""The ``berth`` CLI run in-process against a real server, as a user runs it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from typer.testing import CliRunner, Result

from berth.cli.main import app


@dataclass
class Cli:
    """Runs ``berth ...`` in-process, as ``BERTH_HOST``/``BERTH_TOKEN`` say, on a real server."""

    host: str
    token: str

    def __call__(self, *args: str) -> Result:
        env = {"BERTH_HOST": self.host, "BERTH_TOKEN": self.token}
        return CliRunner().invoke(app, list(args), env=env)

    def ok(self, *args: str) -> str:
        done = self(*args)
        assert done.exit_code == 0, f"berth {' '.join(args)}:\n{done.stderr}"
        return done.stdout

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "--output", "json"))

    def fails(self, *args: str, code: int = 1) -> str:
        done = self(*args)
        assert done.exit_code == code, f"berth {' '.join(args)}:\n{done.output}"
        return done.stderr
