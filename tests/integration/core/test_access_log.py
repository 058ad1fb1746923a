"""Access logs appended by several processes of one host at once (gateway workers share the
host's file): every line arrives whole."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from berth.core.access_log import access_log_path

pytestmark = pytest.mark.integration

WRITER = """
import sys
from pathlib import Path
from berth.core.access_log import AccessLog
log = AccessLog(Path(sys.argv[1]), host="one-host")
for i in range(500):
    log.write("ep", {"writer": sys.argv[2], "i": i, "pad": "x" * 20_000})
log.close()
"""


def test_lines_from_four_processes_never_interleave(tmp_path: Path) -> None:
    """Lines past a buffer's size too: each line is one append, whatever its length."""
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), str(n)]) for n in range(4)
    ]
    assert [w.wait(timeout=120) for w in writers] == [0] * 4

    lines = access_log_path(tmp_path, "ep", "one-host").read_text().splitlines()
    seen = sorted((line["writer"], line["i"]) for line in map(json.loads, lines))
    assert seen == [(str(n), i) for n in range(4) for i in range(500)]
