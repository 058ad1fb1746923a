"""A hostile model: each request names what to go after; the answer says what it reached.

Every probe answers "reached" with what it found, or the name of the error that stopped it.
"""

import os
import socket


def load_model():
    return {}


def _read(path):
    with open(path, "rb") as fh:
        return "reached: " + fh.read(64).hex()


def _listdir(path):
    return "reached: " + ",".join(sorted(os.listdir(path)))


def _connect(path):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(2)
        conn.connect(path)
        return "reached"


def _write(path):
    with open(path, "w") as fh:
        fh.write("owned")
    return "reached"


def _try(action, target):
    try:
        return action(target)
    except Exception as exc:  # what stopped us is the answer
        return type(exc).__name__


def predict(data, model=None):
    found = {
        "env": dict(os.environ),
        "uid": os.getuid(),
        "pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
    }
    for path in data.get("read", []):
        found["read:" + path] = _try(_read, path)
    for path in data.get("list", []):
        found["list:" + path] = _try(_listdir, path)
    for path in data.get("connect", []):
        found["connect:" + path] = _try(_connect, path)
    for path in data.get("write", []):
        found["write:" + path] = _try(_write, path)
    return found
