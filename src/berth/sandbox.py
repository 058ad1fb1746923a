"""Where model code runs: an allow-listed environment, its own user, its own filesystem view.

Model code (a score.py, an MLflow pickle, a zygote importing a model's libraries) is someone
else's code. Every process that runs it is started through `Sandbox.command`:

- **environment**: built from an allow-list (``PATH``, ``LANG``/``LC_*``, ``TZ``, proxy and CA
  variables, names the operator adds), then the served entity's own ``environment_vars``;
  never ``BERTH_*``, database URLs or the server's credentials;
- **filesystem** (Linux, with bubblewrap): ``/usr`` and ``/etc`` read-only, the model's
  interpreter, environment and artifact read-only at their own paths, a private writable
  *box* (its scratch ``HOME`` and its replicas' Unix sockets) and a private ``/tmp``; nothing
  else of ``$BERTH_HOME``, no other model's artifact or box. New PID, IPC and UTS namespaces:
  the server and other replicas are not even visible;
- **user**: when berth runs as root, model code drops to an unprivileged uid with no
  capabilities and ``no_new_privs`` (``run_as``, or one uid per box from a range, as systemd's
  dynamic users), so that even a process escaping its view is nobody in particular.

A box is one model version in one environment: its replicas and its zygote share it. Replicas
listen on Unix sockets inside their box, so no other box can connect to them.

Where the host cannot provide a part (no bubblewrap, not Linux, no user namespaces), the part
is missing and `describe` says so at startup; the environment allow-list always holds.
"""

from __future__ import annotations

import hashlib
import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from berth.core.errors import BerthError

ALLOWED_ENV = frozenset(
    {
        "PATH",
        "LANG",
        "LANGUAGE",
        "TZ",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "NO_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "no_proxy",
        "all_proxy",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "REQUESTS_CA_BUNDLE",
        "CURL_CA_BUNDLE",
        "OPENBLAS_CORETYPE",
        "OPENBLAS_L2_SIZE",
    }
)
"""What model code may inherit from the server's environment (``LC_*`` too)."""

NEVER_ENV_PREFIXES = ("BERTH_",)
SYSTEM_DIRS = ("/usr", "/etc")
LINKED_DIRS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
MAX_SOCKET_PATH = 100
"""Unix socket paths are limited to 108 bytes."""


class SandboxUnavailable(BerthError):
    """``BERTH_SANDBOX__MODE=bwrap`` but bubblewrap cannot run here."""


@dataclass(frozen=True, slots=True)
class Box:
    """The writable place of one model version's processes: scratch ``home``, sockets."""

    root: Path
    uid: int | None
    """The uid its processes run as; None: the server's own (berth does not run as root)."""

    @property
    def home(self) -> Path:
        return self.root / "home"

    def socket(self, name: str) -> Path:
        return self.root / f"{hashlib.sha256(name.encode()).hexdigest()[:12]}.sock"


@dataclass(frozen=True, slots=True)
class Wrapped:
    argv: list[str]
    env: dict[str, str]
    info_at: int | None = None
    """Where in ``argv`` the number of the fd goes on which bubblewrap tells the model's
    process's pid (``{"child-pid": N}``); None: the command is the model's process."""

    def with_info_fd(self, fd: int) -> list[str]:
        argv = list(self.argv)
        if self.info_at is not None:
            argv[self.info_at] = str(fd)
        return argv


class Sandbox:
    def __init__(
        self,
        runtime_root: Path,
        *,
        mode: str = "auto",
        run_as: str | None = None,
        uid_range: tuple[int, int] = (61184, 4096),
        network: bool = True,
        pass_env: tuple[str, ...] = (),
    ) -> None:
        """``runtime_root`` holds the boxes; ``mode`` is ``auto`` (bubblewrap when it works),
        ``bwrap`` (required) or ``none``."""
        self._root = runtime_root
        self._root.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._root.chmod(0o700)
        self._root_user = os.geteuid() == 0
        self._network = network
        self._pass_env = frozenset(pass_env)
        self._uid_range = uid_range
        self._run_as = _uid_of(run_as) if run_as else None
        self._boxes: dict[str, Box] = {}
        self.bwrap: str | None = None
        self.missing = ""
        if mode != "none":
            self.bwrap, self.missing = _probe_bwrap()
            if self.bwrap is None and mode == "bwrap":
                raise SandboxUnavailable(f"BERTH_SANDBOX__MODE=bwrap but {self.missing}")
        else:
            self.missing = "BERTH_SANDBOX__MODE=none"

    @property
    def drops_user(self) -> bool:
        return self._root_user and self.bwrap is not None

    def describe(self) -> str:
        """One line: what isolation model code gets here, and what it lacks."""
        parts = ["environment allow-listed (no BERTH_* variables)"]
        if self.bwrap is not None:
            parts.append(
                "bubblewrap filesystem view (its own environment and artifact read-only, a "
                "private scratch directory and /tmp; nothing else of $BERTH_HOME), own PID/IPC "
                "namespaces"
            )
            if self.drops_user:
                who = f"uid {self._run_as}" if self._run_as is not None else "one uid per model"
                parts.append(f"runs as {who}, no capabilities")
            else:
                parts.append("runs as the server's user inside a user namespace")
            parts.append(
                "network "
                + ("shared" if self._network else "none")
                + " (a custom container's server: its own loopback only)"
            )
        else:
            parts.append(
                f"MISSING filesystem and user isolation ({self.missing}): model code can read "
                "whatever the server's user can read; install bubblewrap"
            )
        parts.append("replicas on private Unix sockets")
        return "sandbox: " + "; ".join(parts)

    def own(self, path: Path, box: Box) -> None:
        """Make ``path`` (a directory a build in ``box`` writes to) the box's user's."""
        if box.uid is not None:
            os.chown(path, box.uid, box.uid)

    def box(self, *identity: str) -> Box:
        """The box of a model version (``identity``: its artifact and interpreter), made on
        first use, owned by the uid its processes run as."""
        digest = hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:12]
        known = self._boxes.get(digest)
        if known is not None and known.root.is_dir():
            return known
        root = self._root / digest
        uid = self._uid_for(digest) if self.drops_user else None
        (root / "home").mkdir(parents=True, exist_ok=True)
        for path in (root, root / "home"):
            path.chmod(0o700)
            if uid is not None:
                os.chown(path, uid, uid)
        if len(str(root)) + len("/0123456789ab.sock") > MAX_SOCKET_PATH:
            raise BerthError(
                f"The sandbox directory {self._root} is too long for Unix socket paths; set "
                "BERTH_HOME to a shorter path."
            )
        box = self._boxes[digest] = Box(root, uid)
        return box

    def command(
        self,
        argv: list[str],
        box: Box,
        *,
        readable: list[str],
        env: dict[str, str],
        writable: list[str] | None = None,
        tell_pid: bool = True,
        cwd: str | None = None,
        devices: list[str] | None = None,
        own_network: bool = False,
        die_with_parent: bool = False,
    ) -> Wrapped:
        """``argv`` as it runs in ``box``, seeing ``readable`` (read-only) and ``writable``
        besides its box, and the host's ``devices`` (a replica's GPUs), in ``cwd`` when that is
        in its view (else its box's home); with ``tell_pid``, bubblewrap says the pid of the
        process it runs. With ``own_network`` it gets a network namespace of its own (a
        loopback only) whatever the sandbox's network setting: for a server that listens on
        TCP, which no other process may reach. With ``die_with_parent`` it is killed when the
        process that starts it dies (a Ray actor's replica: nothing else would stop it)."""
        env = {**env, "HOME": str(box.home), "TMPDIR": "/tmp" if self.bwrap else str(box.home)}
        if self.bwrap is None:
            dies = ["setpriv", "--pdeathsig", "KILL", "--"] if die_with_parent else []
            return Wrapped(dies + argv, env)
        view = [
            self.bwrap,
            "--unshare-pid",
            "--unshare-ipc",
            "--unshare-uts",
            "--unshare-cgroup-try",
        ]
        # bubblewrap's own init as the namespace's pid 1 is what dies with the parent: as
        # pid 1 itself, the command loses the parent-death signal when setpriv changes its uid
        view += ["--die-with-parent"] if die_with_parent else ["--as-pid-1"]
        info_at = None
        if tell_pid:
            view += ["--info-fd", "-1"]
            info_at = len(view) - 1
        if not self._root_user:
            view.append("--unshare-user")
        if own_network or not self._network:
            view.append("--unshare-net")
        for system in SYSTEM_DIRS:
            view += ["--ro-bind", system, system]
        for linked in LINKED_DIRS:
            path = Path(linked)
            if path.is_symlink():
                view += ["--symlink", os.readlink(path), linked]
            elif path.is_dir():
                view += ["--ro-bind", linked, linked]
        # /tmp writable by everyone, as on any host: the box's own uid is not bubblewrap's.
        view += ["--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--tmpfs", "/tmp"]
        for device in devices or ():
            view += ["--dev-bind", device, device]
        bound = _outermost(readable)
        rw = [str(Path(p).resolve()) for p in writable or ()]
        for parent in _parents([*bound, *rw, str(box.root)]):  # traversable, whatever its mode
            view += ["--perms", "0711", "--dir", parent]
        for dir_ in bound:
            view += ["--ro-bind", dir_, dir_]
        for dir_ in [*rw, str(box.root)]:
            view += ["--bind", dir_, dir_]
        seen = [*bound, *rw, str(box.root)]
        inside = cwd is not None and _under(str(Path(cwd).resolve()), tuple(seen))
        view += ["--chdir", str(Path(cwd).resolve()) if cwd and inside else str(box.home), "--"]
        if box.uid is not None:
            view += [
                "setpriv",
                f"--reuid={box.uid}",
                f"--regid={box.uid}",
                "--clear-groups",
                "--inh-caps=-all",
                "--bounding-set=-all",
                "--no-new-privs",
                "--",
            ]
        return Wrapped(view + argv, env, info_at)

    def beside(self, argv: list[str], box: Box, env: dict[str, str]) -> Wrapped:
        """``argv`` as berth's own process beside the model's: ``box``'s home and sockets, but
        neither the filesystem view nor another user. For the supervisor of an image's
        container, which podman runs in the host's storage as root (the container is the
        image's sandbox)."""
        return Wrapped(argv, {**env, "HOME": str(box.home), "TMPDIR": str(box.home)})

    def base_env(self) -> dict[str, str]:
        """What model code inherits from the server's own environment."""
        return {
            name: value
            for name, value in os.environ.items()
            if (name in ALLOWED_ENV or name.startswith("LC_") or name in self._pass_env)
            and not name.startswith(NEVER_ENV_PREFIXES)
        }

    def _uid_for(self, digest: str) -> int:
        if self._run_as is not None:
            return self._run_as
        start, size = self._uid_range
        at = int(digest, 16) % size
        for step in range(size):
            uid = start + (at + step) % size
            try:
                pwd.getpwuid(uid)
            except KeyError:
                return uid  # nobody on this host owns it
        raise BerthError(f"No free uid in {start}..{start + size - 1} for model code.")


def python_dirs(python: str) -> list[str]:
    """The directories an interpreter needs to run: its environment and its base install."""
    found: list[str] = []
    exe = Path(python)
    env = exe.parent.parent
    found.append(str(env))
    config = env / "pyvenv.cfg"
    if config.is_file():
        for line in config.read_text(errors="replace").splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "home" and value.strip():
                found.append(str(Path(value.strip()).resolve().parent))
    found.append(str(exe.resolve().parent.parent))
    return found


def _outermost(paths: list[str]) -> list[str]:
    """Resolved, existing, not under a system directory, and none inside another."""
    resolved = sorted(
        {
            str(Path(p).resolve())
            for p in paths
            if p and Path(p).exists() and not _under(str(Path(p).resolve()), SYSTEM_DIRS)
        }
    )
    kept: list[str] = []
    for path in resolved:
        if not any(_under(path, (k,)) for k in kept):
            kept.append(path)
    return kept


def _parents(paths: list[str]) -> list[str]:
    """Every directory above ``paths`` that is not a system directory, outermost first."""
    found = {
        str(parent)
        for path in paths
        for parent in Path(path).parents
        if str(parent) not in ("/", "/tmp") and not _under(str(parent), SYSTEM_DIRS)
    }
    return sorted(found, key=lambda p: (p.count("/"), p))


def _under(path: str, roots: tuple[str, ...]) -> bool:
    return any(path == root or path.startswith(root.rstrip("/") + "/") for root in roots)


def _uid_of(user: str) -> int:
    if user.isdigit():
        return int(user)
    try:
        return pwd.getpwnam(user).pw_uid
    except KeyError:
        raise BerthError(
            f"BERTH_SANDBOX__RUN_AS names user '{user}', who does not exist."
        ) from None


def _probe_bwrap() -> tuple[str | None, str]:
    """bubblewrap's path when it can make a sandbox here, else why not."""
    if not sys.platform.startswith("linux"):
        return None, f"bubblewrap needs Linux, this is {sys.platform}"
    found = shutil.which("bwrap")
    if found is None:
        return None, "bubblewrap (bwrap) is not installed"
    probe = [found, "--ro-bind", "/", "/", "--unshare-pid", "--as-pid-1"]
    if os.geteuid() != 0:
        probe.append("--unshare-user")
    with tempfile.TemporaryDirectory() as tmp:
        try:
            done = subprocess.run(
                [*probe, "--", "true"], capture_output=True, timeout=10, cwd=tmp, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return None, f"bubblewrap could not run: {exc}"
    if done.returncode != 0:
        why = done.stderr.decode(errors="replace").strip() or f"exit {done.returncode}"
        return None, f"bubblewrap cannot make a sandbox here ({why})"
    return found, ""
