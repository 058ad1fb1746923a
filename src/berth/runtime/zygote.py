"""``python -m berth.runtime.zygote``: a warm parent that forks replicas on request.

Starting a replica of an MLflow scikit-learn model spends most of its time importing MLflow
and scikit-learn. A zygote imports a model environment's heavy modules once and then forks a
replica per request, so later replicas of that environment (a redeploy, a scale-up, a start
from zero) skip the imports. Each fork becomes an ordinary replica: its own session and
process group, its own log, the environment variables it was given, ``berth.runtime``'s main.

Requests arrive on a Unix socket, one JSON line each::

    {"argv": [...runtime flags...], "env": {...}, "cwd": "...", "log": "..."}

and are answered ``{"pid": N}``. The zygote leaves when the process that started it does.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.metadata
import json
import os
import signal
import socket
import sys
import time
from typing import Any

PARENT_CHECK_S = 1.0


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
    provided = importlib.metadata.packages_distributions()
    return sorted(
        module
        for module, owners in provided.items()
        if not module.startswith("_") and any(normal(owner) in wanted for owner in owners)
    )


def serve(path: str, idle_s: float) -> None:
    """Fork on request until the parent is gone or nobody asked for ``idle_s`` seconds."""
    parent = os.getppid()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # forked replicas are reaped by the kernel
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path + ".tmp")
    listener.bind(path + ".tmp")
    listener.listen(16)
    os.replace(path + ".tmp", path)  # the socket appears only once it accepts
    listener.settimeout(PARENT_CHECK_S)
    print(f"zygote: ready on {path}", flush=True)
    last = time.monotonic()
    while os.getppid() == parent and time.monotonic() - last < idle_s:
        try:
            conn, _ = listener.accept()
        except TimeoutError:
            continue
        last = time.monotonic()
        with conn:
            conn.settimeout(10)
            try:
                request = json.loads(conn.makefile("rb").readline())
                if request.get("keep"):  # the server keeps us for a replica to come
                    conn.sendall(b'{"kept": true}\n')
                    continue
                pid = _fork(request, listener, conn)
                conn.sendall(json.dumps({"pid": pid}).encode() + b"\n")
            except (OSError, ValueError, KeyError) as exc:
                with contextlib.suppress(OSError):
                    conn.sendall(json.dumps({"error": str(exc)}).encode() + b"\n")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    listener.close()


def _fork(request: dict[str, Any], listener: socket.socket, conn: socket.socket) -> int:
    argv = [str(arg) for arg in request["argv"]]
    env = {str(k): str(v) for k, v in request["env"].items()}
    cwd, log = str(request["cwd"]), str(request["log"])
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        listener.close()
        conn.close()
        os.setsid()
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        out = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
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
    serve(args.socket, args.idle_seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
