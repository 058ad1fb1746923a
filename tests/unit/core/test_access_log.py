"""The access log's tail, as the API reads it: the newest lines, oldest first."""

from __future__ import annotations

import json
from pathlib import Path

from berth.core.access_log import AccessLog, read_access_log


def test_the_tail_is_the_newest_lines_oldest_first(tmp_path: Path) -> None:
    log = AccessLog(tmp_path)
    for i in range(50):
        log.write("ep", {"i": i})
    log.close()

    tail = read_access_log(tmp_path, "ep", 3).splitlines()
    assert [json.loads(line)["i"] for line in tail] == [47, 48, 49]
