"""The access log as the API reads it: the newest lines of every host's file, oldest first."""

from __future__ import annotations

import json
from pathlib import Path

from berth.core.access_log import AccessLog, access_log_path, host_label, read_access_log


def write(root: Path, host: str, stamps: list[int]) -> None:
    log = AccessLog(root, host=host)
    for ts in stamps:
        log.write("ep", {"ts": ts, "host": host})
    log.close()


def read(root: Path, lines: int) -> list[tuple[int, str]]:
    text = read_access_log(root, "ep", lines)
    return [(entry["ts"], entry["host"]) for entry in map(json.loads, text.splitlines())]


def test_the_tail_is_the_newest_lines_oldest_first(tmp_path: Path) -> None:
    write(tmp_path, "a", list(range(50)))

    assert read(tmp_path, 3) == [(47, "a"), (48, "a"), (49, "a")]


def test_two_hosts_files_interleave_in_time_and_only_the_last_lines_are_kept(
    tmp_path: Path,
) -> None:
    write(tmp_path, "a", [10, 30, 50, 70])
    write(tmp_path, "b", [20, 40, 60, 80])

    assert read(tmp_path, 5) == [(40, "b"), (50, "a"), (60, "b"), (70, "a"), (80, "b")]
    assert read(tmp_path, 100) == sorted(read(tmp_path, 100))
    assert len(read(tmp_path, 100)) == 8


def test_the_last_lines_may_all_be_one_hosts(tmp_path: Path) -> None:
    write(tmp_path, "a", [1, 2, 3])
    write(tmp_path, "b", [7, 8, 9])

    assert read(tmp_path, 2) == [(8, "b"), (9, "b")]


def test_lines_arriving_out_of_order_in_one_file_are_read_by_their_time(tmp_path: Path) -> None:
    """A slow request is written when it ends, after requests that arrived later."""
    write(tmp_path, "a", [10, 30, 20])
    write(tmp_path, "b", [25])

    assert [ts for ts, _ in read(tmp_path, 10)] == [10, 20, 25, 30]


def test_a_cut_line_and_a_line_without_a_time_are_left_out(tmp_path: Path) -> None:
    write(tmp_path, "a", [1, 2])
    with access_log_path(tmp_path, "ep", "a").open("a") as out:
        out.write('{"host":"a"}\n{"ts":3,"host":"a","pa')

    assert read(tmp_path, 10) == [(1, "a"), (2, "a")]


def test_each_host_writes_a_file_named_after_it_in_safe_characters(tmp_path: Path) -> None:
    write(tmp_path, "web-1.example/../x y", [1])

    [path] = (tmp_path / "ep").iterdir()
    assert path.name == "access-web-1.example_.._x_y.log"
    assert host_label("") == "host"


def test_no_log_and_a_name_that_could_leave_the_root_read_as_nothing(tmp_path: Path) -> None:
    assert read_access_log(tmp_path, "ep", 10) == ""
    assert read_access_log(tmp_path, "..", 10) == ""
