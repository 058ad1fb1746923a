"""A real Ray cluster on this machine: a head and worker nodes, each a ``ray start --block``
child of the test process, all under one temporary directory and stopped with nothing left."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.net import free_port, wait_until

RAY = str(Path(sys.executable).with_name("ray"))
FAST_NODE_DEATH = {
    # A node that stops answering is declared dead in about 2 s rather than Ray's 30 s.
    "RAY_health_check_initial_delay_ms": "1000",
    "RAY_health_check_period_ms": "500",
    "RAY_health_check_timeout_ms": "1000",
    "RAY_health_check_failure_threshold": "3",
    # A stopped node stops at once, without first waiting for its work to drain.
    "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0",
}
STARTED = "block forever"
"""What ``ray start --block`` prints once its node runs."""

DRIVER = """
import json, sys, ray
ray.init(address=sys.argv[1], namespace=sys.argv[2], log_to_driver=False)
for prefix in sys.stdin:
    nodes = {n["NodeID"]: [r for r in n["Resources"] if r.startswith("node_")] for n in ray.nodes()}
    found = {}
    for name in sorted(ray.util.list_named_actors()):
        if name.startswith(prefix.strip()):
            try:  # an actor being started again answers once it runs
                status = ray.get(ray.get_actor(name).watch.remote("", -1, 0), timeout=10)
            except (ray.exceptions.RayError, ValueError) as exc:
                found[name] = {"state": "UNREACHABLE", "node": None, "message": str(exc)}
                continue
            status["node"] = (nodes.get(status["node_id"]) or ["head"])[0]
            found[name] = status
    print(json.dumps(found), flush=True)
"""
"""A Ray driver that answers, for each actor name prefix it reads, the replica status of each
actor of its namespace whose name starts with it (and the node it runs on)."""


@dataclass
class RayCluster:
    """Nodes by name: ``head`` (no CPUs: replicas go to workers) and workers, each with a
    resource of its own name (``node_a``...)."""

    root: Path
    port: int = field(default_factory=free_port)
    nodes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    driver: subprocess.Popen[str] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, workers: tuple[str, ...], namespace: str, cpus: int = 4) -> RayCluster:
        """The head, then each worker, then a driver that asks Ray about ``namespace``."""
        self._node(
            "head", "--head", f"--port={self.port}", "--num-cpus=0", "--include-dashboard=false"
        )
        for name in workers:  # one at a time: nodes starting at once race for ports
            resources = json.dumps({name: 1})
            self._node(
                name, f"--address={self.address}", f"--num-cpus={cpus}", f"--resources={resources}"
            )
        with (self.root / "driver.log").open("ab") as log:
            self.driver = subprocess.Popen(
                [sys.executable, "-c", DRIVER, self.address, namespace],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                env=self._env(),
                text=True,
            )
        return self

    def stop_node(self, name: str) -> None:
        """Stop one node as ``ray stop`` would (its raylet, its workers and their replicas)."""
        proc = self.nodes.pop(name)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)

    def actors(self, prefix: str) -> dict[str, dict[str, Any]]:
        """The replica actors whose names start with ``prefix``: each one's status as it tells
        it, and the name of its ``node``."""
        assert self.driver is not None and self.driver.stdin and self.driver.stdout
        self.driver.stdin.write(prefix + "\n")
        self.driver.stdin.flush()
        found: dict[str, dict[str, Any]] = json.loads(self.driver.stdout.readline())
        return found

    def close(self) -> None:
        if self.driver is not None:
            self.driver.terminate()
            self.driver.communicate(timeout=30)
        for name in reversed(list(self.nodes)):  # workers first, the head last
            proc = self.nodes.pop(name)
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        wait_until(
            lambda: self.leftovers() == [],
            timeout=30,
            what=f"Ray's processes under {self.root} to end",
        )

    def leftovers(self) -> list[int]:
        """Processes of this cluster still running: any whose command line names its
        directory (Ray's own, and replicas whose boxes are there)."""
        found = []
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                cmdline = (proc / "cmdline").read_bytes()
                stat = (proc / "stat").read_text().rsplit(") ", 1)[1].split()
            except (OSError, IndexError):
                continue
            if stat[0] != "Z" and str(self.root).encode() in cmdline:
                found.append(int(proc.name))
        return found

    def _node(self, name: str, *flags: str) -> None:
        log = self.root / f"{name}.log"
        with log.open("ab") as out:
            proc = subprocess.Popen(
                [
                    RAY,
                    "start",
                    "--block",
                    *flags,
                    "--node-ip-address=127.0.0.1",
                    "--disable-usage-stats",
                    f"--temp-dir={self.root / 'ray'}",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self._env(),
                start_new_session=True,
            )
        self.nodes[name] = proc

        def started() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"ray start of {name} exited:\n{log.read_text()[-3000:]}")
            return STARTED in log.read_text()

        wait_until(started, timeout=60, what=f"Ray node {name} to start", every=0.2)

    def _env(self) -> dict[str, str]:
        return {**os.environ, **FAST_NODE_DEATH, "RAY_USAGE_STATS_ENABLED": "0"}
