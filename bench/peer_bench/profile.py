"""Where a process's time goes under load: ``py-spy record --gil`` (speedscope format) while a
load runs, then the functions with the most samples on top of the stack (own time) and anywhere
in it (inclusive time). Only a thread holding the GIL is sampled, so samples ÷ (rate × seconds)
is the share of the time the process ran Python (or C called from Python holding the GIL).

Two modes: ``python`` (Python frames; time in C is counted in the Python function that called
it) and ``native`` (C frames too: uvloop, httptools, libc; unwinding them stops the process far
longer per sample, which slows it a lot). Both pause the process for each sample, so that every
stack is whole (``--nonblocking`` reads it while it runs and gets a quarter of them truncated).
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .venvs import ensure_venv

RATE_HZ = 100
TOP = 15
ROOT_SHARE = 0.95
"""A frame in at least this share of its threads' samples (a thread's entry point, the event
loop's run) tells nothing about where the time goes: left out of the inclusive list."""
MODES = {"python": ["--gil"], "native": ["--gil", "--native"]}


@dataclass
class Summary:
    label: str
    file: str
    seconds: float
    samples: int
    own: list[tuple[str, int]] = field(default_factory=list)
    inclusive: list[tuple[str, int]] = field(default_factory=list)
    packages: list[tuple[str, int]] = field(default_factory=list)
    """Own samples summed by top-level package or stdlib module."""

    @property
    def busy(self) -> float:
        """Time some thread held the GIL, as a share of the wall time."""
        return self.samples / (RATE_HZ * self.seconds) if self.seconds else 0.0

    def to_json(self) -> dict[str, Any]:
        return {**vars(self), "busy_cores": round(self.busy, 3)}

    def lines(self) -> list[str]:
        out = [
            f"{self.label}: {self.samples} samples in {self.seconds:.0f} s "
            f"(GIL held {100 * self.busy:.0f} % of the time); {self.file}",
            "  own %  function (on top of the stack)",
        ]
        out += [f"  {self.share(n):5.1f}  {name}" for name, n in self.own]
        out.append("  incl %  function (anywhere in the stack; threads' roots left out)")
        out += [f"  {self.share(n):6.1f}  {name}" for name, n in self.inclusive]
        out.append(
            "  own by package: "
            + ", ".join(f"{name} {self.share(n):.0f} %" for name, n in self.packages)
        )
        return out

    def share(self, count: int) -> float:
        return 100 * count / max(self.samples, 1)


_SHORTER = (
    re.compile(r".*/site-packages/(.+)"),
    re.compile(r".*/envs/runtime/[^/]+/(.+)"),  # berth's runtime copied beside a model env
    re.compile(r".*/src/(berth/.+)"),
    re.compile(r".*/Python-3[^/]*/(.+)"),  # the interpreter's own C sources
    re.compile(r".*/lib/python3\.\d+/(.+)"),
)


def _short(path: str) -> str:
    for pattern in _SHORTER:
        found = pattern.match(path)
        if found:
            return found.group(1)
    return path.rsplit("/", 1)[-1]


def _package(short_file: str) -> str:
    """``aiohttp/client.py`` → aiohttp, ``threading.py`` → threading, ``libc.so.6`` → libc."""
    head = short_file.split("/", 1)[0]
    return re.split(r"\.(?:py|so|c)\b", head)[0] or short_file


def summarise(path: Path, label: str, seconds: float) -> Summary:
    document = json.loads(path.read_text())
    shared = document["shared"]["frames"]
    files = [_short(f.get("file") or "?") for f in shared]
    frames = [f"{f['name']} ({file})" for f, file in zip(shared, files, strict=True)]
    own: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    reach: Counter[str] = Counter()  # samples of the threads a frame appears in
    samples = 0
    for profile in document["profiles"]:
        stacks = [stack for stack in profile["samples"] if stack]
        seen: Counter[str] = Counter()
        for stack in stacks:
            own[frames[stack[-1]]] += 1
            packages[_package(files[stack[-1]])] += 1
            seen.update({frames[i] for i in stack})
        inclusive.update(seen)
        reach.update({name: len(stacks) for name in seen})
        samples += len(stacks)
    telling = [(name, n) for name, n in inclusive.most_common() if n < ROOT_SHARE * reach[name]]
    return Summary(
        label,
        str(path),
        seconds,
        samples,
        own.most_common(TOP),
        telling[:TOP],
        packages.most_common(8),
    )


def record(
    targets: dict[str, int],
    load: Callable[[], object],
    seconds: int,
    out_dir: Path,
    log: Callable[[str], None],
    mode: str = "python",
    tag: str = "c8",
) -> dict[str, Summary]:
    """Sample every pid of ``targets`` with py-spy while ``load`` runs."""
    spy = str(ensure_venv("tools", log).bin / "py-spy")
    out_dir.mkdir(parents=True, exist_ok=True)
    duration = seconds + 1  # the load runs 1 s of warm-up, then ``seconds``
    running: dict[str, tuple[Path, subprocess.Popen[str]]] = {}
    for label, pid in targets.items():
        path = out_dir / f"{re.sub(r'[^a-z0-9]+', '-', label.lower())}-{tag}.speedscope.json"
        argv = [spy, "record", "-p", str(pid), "-d", str(duration), "-r", str(RATE_HZ)]
        argv += [*MODES[mode], "-f", "speedscope", "-o", str(path)]
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        running[label] = (path, proc)
    try:
        time.sleep(0.5)
        load()
    except BaseException:
        for _, proc in running.values():
            proc.kill()
            proc.wait()
        raise
    summaries: dict[str, Summary] = {}
    for label, (path, proc) in running.items():
        try:
            output, _ = proc.communicate(timeout=duration + 30)
        except subprocess.TimeoutExpired:
            proc.kill()
            output, _ = proc.communicate()
        if proc.returncode != 0 or not path.exists():
            log(f"    py-spy on {label} failed: {output.strip()[-400:]}")
            continue
        summaries[label] = summarise(path, label, duration)
        for line in summaries[label].lines():
            log(f"    {line}")
    return summaries
