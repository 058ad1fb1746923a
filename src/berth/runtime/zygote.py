"""``python -m berth.runtime.zygote``: a warm parent that forks replicas on request.

Starting a replica of an MLflow scikit-learn model spends most of its time importing MLflow
and scikit-learn. A zygote imports a model environment's heavy modules once and then forks a
replica per request, so later replicas of that environment (a redeploy, a scale-up, a start
from zero) skip the imports. Each fork becomes an ordinary replica: its own session and
process group, its own log, the environment variables it was given, ``berth.runtime``'s main.

Requests arrive on a Unix socket, one JSON line each, with the replica's log file passed as
a file descriptor beside it (``SCM_RIGHTS``)::

    {"argv": [...runtime flags...], "env": {...}, "cwd": "..."}

and are answered ``{"pid": N}`` (as this process's PID namespace sees it). The zygote runs in
its model's sandbox, often as PID 1 of its own namespace, where its replicas would die with
it: so it leaves only once none of its replicas is left, and either nobody asked for
``--idle-seconds`` or the server is gone (end of file on ``--server-fd``).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.metadata
import json
import os
import select
import socket
import sys
import time
from typing import Any

PARENT_CHECK_S = 1.0
MAX_REQUEST_BYTES = 1 << 20


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="berth.runtime.zygote", description=__doc__)
    parser.add_argument("--socket", required=True, help="Unix socket to listen on")
    parser.add_argument("--preload", default="", help="comma-separated modules to import")
    parser.add_argument(
        "--preload-distributions",
        default="",
        help="comma-separated installed distributions whose top-level modules to import",
    )
    parser.add_argument("--idle-seconds", type=float, default=900.0, help="exit when unused")
    parser.add_argument(
        "--server-fd", type=int, help="a pipe whose end of file means the server is gone"
    )
    return parser.parse_args(argv)


def preload(modules: list[str]) -> None:
    """Import what can be imported; a module that fails is left to the replica to report."""
    for name in modules:
        started = time.monotonic()
        try:
            importlib.import_module(name)
        except Exception as exc:  # any import-time failure: the replica will say it properly
            print(f"zygote: not preloading {name}: {type(exc).__name__}: {exc}", flush=True)
        else:
            print(f"zygote: imported {name} in {time.monotonic() - started:.2f}s", flush=True)


def modules_of(distributions: list[str]) -> list[str]:
    """The public top-level modules the named installed distributions provide."""

    def normal(name: str) -> str:
        return name.lower().replace("_", "-").replace(".", "-")

    wanted = {normal(name) for name in distributions}
    # Python 3.10 and later only: on 3.9 the zygote preloads just the named modules.
    listing = getattr(importlib.metadata, "packages_distributions", None)
    provided: dict[str, list[str]] = listing() if listing is not None else {}
    return sorted(
        module
        for module, owners in provided.items()
        if not module.startswith("_") and any(normal(owner) in wanted for owner in owners)
    )


class _Replicas:
    """The pids this zygote forked that still run (it reaps them as they exit)."""

    def __init__(self) -> None:
        self.pids: set[int] = set()

    def reap(self) -> None:
        for pid in list(self.pids):
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done = pid
            if done:
                self.pids.discard(pid)


def _wait(listener: socket.socket, server_fd: int | None) -> tuple[bool, bool]:
    """Up to ``PARENT_CHECK_S``: (a connection is waiting, the server is gone)."""
    watched = [listener.fileno()] + ([server_fd] if server_fd is not None else [])
    readable, _, _ = select.select(watched, [], [], PARENT_CHECK_S)
    gone = server_fd is not None and server_fd in readable and not os.read(server_fd, 1)
    return listener.fileno() in readable, gone


def serve(path: str, idle_s: float, server_fd: int | None = None) -> None:
    """Fork on request; leave once no replica is left and the server is gone or nobody asked
    for ``idle_s`` seconds."""
    replicas = _Replicas()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path + ".tmp")
    listener.bind(path + ".tmp")
    listener.listen(16)
    os.replace(path + ".tmp", path)  # the socket appears only once it accepts
    print(f"zygote: ready on {path}", flush=True)
    last = time.monotonic()
    gone = False
    while True:
        replicas.reap()
        if not replicas.pids and (gone or time.monotonic() - last >= idle_s):
            break
        if gone:  # only replicas keep us: no need to watch the pipe any more
            server_fd = None
        asked, gone_now = _wait(listener, server_fd)
        gone = gone or gone_now
        if not asked:
            continue
        conn, _ = listener.accept()
        last = time.monotonic()
        with conn:
            conn.settimeout(10)
            fds: list[int] = []
            try:
                line, fds, _, _ = socket.recv_fds(conn, MAX_REQUEST_BYTES, 1)
                while line and not line.endswith(b"\n") and len(line) < MAX_REQUEST_BYTES:
                    more = conn.recv(MAX_REQUEST_BYTES)
                    if not more:
                        break
                    line += more
                request = json.loads(line)
                if request.get("keep"):  # the server keeps us for a replica to come
                    conn.sendall(b'{"kept": true}\n')
                    continue
                if len(fds) != 1:
                    raise ValueError("a fork request comes with the replica's log file")
                pid = _fork(request, fds[0], (listener, conn), server_fd)
                replicas.pids.add(pid)
                conn.sendall(json.dumps({"pid": pid}).encode() + b"\n")
            except (OSError, ValueError, KeyError) as exc:
                with contextlib.suppress(OSError):
                    conn.sendall(json.dumps({"error": str(exc)}).encode() + b"\n")
            finally:
                for fd in fds:
                    os.close(fd)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    listener.close()


def _fork(
    request: dict[str, Any], out: int, sockets: tuple[socket.socket, ...], server_fd: int | None
) -> int:
    argv = [str(arg) for arg in request["argv"]]
    env = {str(k): str(v) for k, v in request["env"].items()}
    cwd = str(request["cwd"])
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        for sock in sockets:
            sock.close()
        if server_fd is not None:
            os.close(server_fd)
        os.setsid()
        os.dup2(out, 1)
        os.dup2(out, 2)
        os.close(out)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        os.chdir(cwd)
        for stream in (sys.stdout, sys.stderr):
            stream.reconfigure(line_buffering=True, write_through=True)  # type: ignore[union-attr]
        os.environ.clear()
        os.environ.update(env)
        sys.argv = ["berth.runtime", *argv]
        from berth.runtime.__main__ import main

        code = main(argv)
    except BaseException as exc:  # the child must never return into the zygote's loop
        print(f"replica failed to start from the zygote: {exc!r}", file=sys.stderr, flush=True)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv if argv is not None else sys.argv[1:])
    distributions = [name for name in args.preload_distributions.split(",") if name]
    preload([name for name in args.preload.split(",") if name] + modules_of(distributions))
    serve(args.socket, args.idle_seconds, args.server_fd)
    return 0


if __name__ == "__main__":
    sys.exit(main())
