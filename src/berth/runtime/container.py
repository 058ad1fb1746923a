"""A custom container's replica, as a process: berth's runtime supervising the user's own model
server.

The server is started from the spec's ``command`` and ``args`` with Vertex's variables
(`berth.core.container_contract`) on a loopback port picked here (``AIP_HTTP_PORT``), in the
replica's environment and sandbox, its output in the replica's. Its probes run here, beside it
(`probes`): the startup probe, then the health probe, within ``deployment_timeout``. Only then
does the replica's socket appear, a relay that pipes each connection's bytes to the server as
they are (any route, keep-alive, streams). A second socket (``probe_socket``) answers berth's
health checks with the probes' verdict: 503 ``starting`` until started, 200 ``ready``, 503
``unhealthy`` while the health probe fails, 503 ``failed`` if startup did not pass in time.
A failing liveness probe, or the server exiting, ends the replica (the backend restarts it).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import logging
import os
import signal
import socket
import sys
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from berth.core.container_contract import (
    DEFAULT_DEPLOYMENT_TIMEOUT_S,
    aip_variables,
    command_line,
    container_env,
    container_name,
    effective_routes,
    probe_socket,
    read_replica_json,
)
from berth.runtime.http import Request, Response, start_unix_server
from berth.runtime.image import Image, image_port, private_network
from berth.runtime.probes import STARTUP_PERIOD_S, Answer, Verdict, check, health_check

log = logging.getLogger("berth.runtime.container")

PR_SET_PDEATHSIG = 1
RELAY_CHUNK = 64 * 1024


def free_port() -> int:
    """A port on the loopback that nothing listens on now, for the server to bind."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def server_env(replica_env: Mapping[str, str], contract: Mapping[str, str]) -> dict[str, str]:
    """The server's environment: the replica's, its environment's ``bin`` first on ``PATH``
    (so ``python`` and the environment's scripts are the model's own), the runtime's
    ``PYTHONPATH`` left out, then Vertex's variables and the spec's ``env``."""
    env = {k: v for k, v in replica_env.items() if k != "PYTHONPATH"}
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join(p for p in (bin_dir, env.get("PATH", "")) if p)
    return {**env, **contract}


class Status:
    """What the probe socket answers: the replica's phase and the last probe answer."""

    def __init__(self) -> None:
        self.phase = "starting"
        self.message = "no probe has answered yet"

    def set(self, phase: str, message: str) -> None:
        if phase != self.phase:
            log.info("container %s: %s", phase, message)
        self.phase, self.message = phase, message

    async def handle(self, request: Request) -> Response:
        status = 200 if self.phase == "ready" else 503
        body = (
            {"status": self.phase}
            if status == 200
            else {"status": self.phase, "message": self.message}
        )
        return Response(status, json.dumps(body).encode())


class Relay:
    """Each connection to the replica's socket, piped both ways to the server's port."""

    def __init__(self, port: int) -> None:
        self._port = port
        self.open = 0
        self._idle = asyncio.Event()
        self._idle.set()

    async def handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        self.open += 1
        self._idle.clear()
        try:
            server_r, server_w = await asyncio.open_connection("127.0.0.1", self._port)
        except OSError:
            client_w.close()
            self._left()
            return
        try:
            await _first(_pipe(client_r, server_w), _pipe(server_r, client_w))
        finally:
            for writer in (client_w, server_w):
                writer.close()
            self._left()

    async def drain(self, timeout: float) -> bool:
        """Until no connection is open; False when ``timeout`` passed first."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except asyncio.TimeoutError:  # noqa: UP041 (not TimeoutError's alias before Python 3.11)
            return False
        return True

    def _left(self) -> None:
        self.open -= 1
        if not self.open:
            self._idle.set()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError):
        while chunk := await reader.read(RELAY_CHUNK):
            writer.write(chunk)
            await writer.drain()


class Container:
    """One server's probes: Vertex's defaults (an ``http_get`` on the health route) where the
    spec has none."""

    def __init__(
        self, spec: Mapping[str, Any], env: Mapping[str, str], port: int, health_route: str
    ) -> None:
        """``env`` is what an ``exec`` probe runs with."""
        self.port = port
        self.env = env
        self.timeout_s = float(spec.get("deployment_timeout") or DEFAULT_DEPLOYMENT_TIMEOUT_S)
        self.startup = spec.get("startup_probe") or health_check(health_route, STARTUP_PERIOD_S)
        self.health = spec.get("health_probe") or health_check(health_route)
        self.liveness: Mapping[str, Any] | None = spec.get("liveness_probe")

    async def check(self, probe: Mapping[str, Any]) -> Answer:
        return await check(probe, self.port, self.env)

    async def started(self, status: Status) -> None:
        """After the startup probe's initial delay, until it passes ``success_threshold``
        times in a row, then until the health probe passes once."""
        await asyncio.sleep(float(self.startup["initial_delay_seconds"]))
        await self._until_passing(self.startup, status)
        await self._until_passing({**self.health, "success_threshold": 1}, status)

    async def _until_passing(self, probe: Mapping[str, Any], status: Status) -> None:
        verdict = Verdict(probe, passing=False)
        while True:
            answer = await self.check(probe)
            status.message = answer.text
            if verdict.record(answer.passed):
                return
            await asyncio.sleep(float(probe["period_seconds"]))

    async def watch_health(self, status: Status) -> None:
        """Forever: the health probe every period, its verdict into ``status``."""
        verdict = Verdict(self.health, passing=True)
        while True:
            await asyncio.sleep(float(self.health["period_seconds"]))
            answer = await self.check(self.health)
            if verdict.record(answer.passed) or not verdict.passing:
                status.set("ready" if verdict.passing else "unhealthy", answer.text)

    async def until_dead(self) -> str:
        """Until the liveness probe fails ``failure_threshold`` times in a row (never, without
        one); its last answer."""
        probe = self.liveness
        if probe is None:
            await asyncio.Event().wait()
            raise AssertionError("unreachable")
        await asyncio.sleep(float(probe["initial_delay_seconds"]))
        verdict = Verdict(probe, passing=True)
        while True:
            answer = await self.check(probe)
            if verdict.record(answer.passed):
                return f"failed {probe['failure_threshold']} time(s) in a row: {answer.text}"
            await asyncio.sleep(float(probe["period_seconds"]))


def _die_with_parent() -> None:
    """In the server's process: a replica killed outright takes its server with it."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


async def _start_server(
    argv: list[str], env: Mapping[str, str], cwd: str, given: bytes | None = None
) -> asyncio.subprocess.Process:
    """The server in a session of its own, so the replica's stop signal is the replica's to
    handle (drain the relay first); its output is the replica's. ``given`` is written to its
    standard input, then closed (an image's variables, for ``podman run``)."""
    server = await asyncio.create_subprocess_exec(
        *argv,
        env=dict(env),
        cwd=cwd,
        stdin=asyncio.subprocess.DEVNULL if given is None else asyncio.subprocess.PIPE,
        start_new_session=True,
        preexec_fn=_die_with_parent,
    )
    if given is not None and server.stdin is not None:
        server.stdin.write(given)
        with contextlib.suppress(ConnectionError):  # podman gave up before reading
            await server.stdin.drain()
        server.stdin.close()
    return server


async def _stop_server(server: asyncio.subprocess.Process, grace_s: float) -> None:
    if server.returncode is not None:
        return
    server.terminate()
    try:
        await asyncio.wait_for(server.wait(), grace_s)
    except asyncio.TimeoutError:  # noqa: UP041 (not TimeoutError's alias before Python 3.11)
        server.kill()
        await server.wait()


async def _first(*aws: Any) -> asyncio.Future[Any]:
    """The first of ``aws`` to finish; the others are cancelled."""
    tasks = [asyncio.ensure_future(a) for a in aws]
    done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    return next(t for t in tasks if t in done)


async def _serve(
    artifact: Path, socket_path: str, told: str, drain_s: float, image: Image | None
) -> int:
    spec, deployment = read_replica_json(told)
    if deployment.storage_uri is not None:  # the artifact where this replica reads it
        deployment = replace(deployment, storage_uri=artifact.resolve().as_uri())
    port = free_port() if image is None else image_port(spec)
    contract = container_env(spec, aip_variables(spec, deployment, port=port))
    name = container_name(socket_path)
    given: bytes | None = None
    if image is None:
        env = server_env(os.environ, contract)
        argv = command_line(spec, contract)
    else:
        # podman (and an exec probe's podman exec) gets this process's own environment, which
        # holds none of the user's variables; the container gets them on podman's stdin.
        env = dict(os.environ)
        given = image.env_file(contract)
        mount = str(artifact) if deployment.storage_uri is not None else None
        argv, spec = await _prepare_image(image, name, spec, contract, mount)
    cwd = str(artifact) if deployment.storage_uri is not None else env.get("HOME", "/")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    status = Status()
    probes = await start_unix_server(status.handle, probe_socket(socket_path), 64 * 1024)
    routes = effective_routes(spec, deployment)
    log.info(
        "starting %s on port %d (predict %s, health %s)", argv, port, routes.predict, routes.health
    )
    try:
        server = await _start_server(argv, env, cwd, given)
    except OSError as exc:
        log.error("could not start %s: %s", argv, exc)
        probes.close()
        return 1
    try:
        return await _supervise(
            Container(spec, env, port, contract["AIP_HEALTH_ROUTE"]),
            server,
            status,
            stop,
            socket_path,
            drain_s,
        )
    finally:
        if image is not None:
            await _remove_image(image, name, server, drain_s)
        await _stop_server(server, drain_s)
        probes.close()


async def _prepare_image(
    image: Image, name: str, spec: dict[str, Any], contract: dict[str, str], mount: str | None
) -> tuple[list[str], dict[str, Any]]:
    """``podman run``'s command line, and ``spec`` with its ``exec`` probes run inside the
    container; first, a container that a killed replica of the same name left goes."""
    await _run(image.remove_command(name, 0))
    return image.run_command(name, spec, contract, mount), image.in_container(name, spec)


async def _remove_image(
    image: Image, name: str, server: asyncio.subprocess.Process, grace_s: float
) -> None:
    """Stop and remove the container; ``podman run`` then ends by itself."""
    await _run(image.remove_command(name, grace_s))
    with contextlib.suppress(asyncio.TimeoutError):  # noqa: UP041 (not TimeoutError's alias before 3.11)
        await asyncio.wait_for(server.wait(), grace_s)


async def _run(argv: list[str]) -> None:
    """A podman command to its end, its complaints in the replica's log."""
    done = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL
    )
    await done.wait()


async def _supervise(
    container: Container,
    server: asyncio.subprocess.Process,
    status: Status,
    stop: asyncio.Event,
    socket_path: str,
    drain_s: float,
) -> int:
    """Start, then relay and watch, until told to stop (0) or until the server fails (1)."""
    starting = asyncio.wait_for(container.started(status), container.timeout_s)
    first = await _first(starting, server.wait(), stop.wait())
    if stop.is_set():
        return 0
    if server.returncode is not None:
        log.error(
            "the server exited (code %s) before its probes passed; last probe answer: %s",
            server.returncode,
            status.message,
        )
        return 1
    if first.exception() is not None:
        status.set(
            "failed",
            f"the server did not pass its startup and health probes within "
            f"{container.timeout_s:g}s (deployment_timeout); last probe answer: {status.message}",
        )
        await _first(server.wait(), stop.wait())
        return 1
    relay = Relay(container.port)
    listener = await _listen(relay, socket_path)
    status.set("ready", status.message)
    try:
        first = await _first(
            container.watch_health(status), container.until_dead(), server.wait(), stop.wait()
        )
    finally:
        os.unlink(socket_path)  # no new connection; the open ones are relayed to their end
        listener.close()
        if not await relay.drain(drain_s):
            log.warning("stopping with %d connection(s) still open", relay.open)
    if stop.is_set():
        return 0
    if server.returncode is not None:
        log.error("the server exited (code %s)", server.returncode)
    else:
        log.error("the liveness probe %s; the replica stops, to be restarted", first.result())
    return 1


async def _listen(relay: Relay, socket_path: str) -> asyncio.AbstractServer:
    """The relay on a Unix socket that appears at ``socket_path`` only once it accepts."""
    temporary = socket_path + ".tmp"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(temporary)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(temporary)
    os.chmod(temporary, 0o600)
    listener.listen(1024)
    os.replace(temporary, socket_path)
    return await asyncio.start_unix_server(relay.handle, sock=listener)


def serve(
    artifact: Path, socket_path: str, told: str, drain_seconds: float, image_json: str | None
) -> int:
    """Run the container ``told`` describes (`read_replica_json`) until SIGTERM or SIGINT,
    or until it fails; its exit status. With ``image_json`` (`Image`), the server is that
    image's container, in a network namespace this process makes first."""
    image = Image.from_json(image_json) if image_json else None
    if image is not None:
        try:
            private_network()
        except OSError as exc:
            log.error("cannot give the image a network of its own (%s): run berth as root", exc)
            return 1
    return asyncio.run(_serve(artifact, socket_path, told, drain_seconds, image))
