"""An image-backed custom container served by a real berth through podman.

The image is built here, never pulled: a root filesystem holding the host's own Python (its
binary, the shared libraries ``ldd`` names and its standard library) and a small server, put
into podman's storage with ``podman import``, once per session. The server learns everything
from Vertex's variables and tells what it sees of its container: its network interfaces, its
shared memory, whether it may write to the artifact. Skipped, saying why, where podman cannot
run a container here.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import resource
import shutil
import signal
import subprocess
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.deploy import entity, unique, wait_ready
from tests.support.net import wait_until
from tests.support.servers import BerthServer

pytestmark = pytest.mark.integration

PYTHON = Path("/usr/bin/python3")
SERVER_PY = """
import json, os
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import urlparse

artifact = urlparse(os.environ["AIP_STORAGE_URI"]).path
with open(os.path.join(artifact, "weights.json")) as f:
    scale = json.load(f)["scale"]


def seen():
    with open("/proc/net/dev") as f:
        interfaces = sorted(line.split(":")[0].strip() for line in f.readlines()[2:])
    shm = os.statvfs("/dev/shm")
    try:
        open(os.path.join(artifact, "written"), "w").close()
        artifact_writable = True
    except OSError:
        artifact_writable = False
    return {
        "interfaces": interfaces,
        "shm_mb": shm.f_blocks * shm.f_frsize // 2**20,
        "artifact_writable": artifact_writable,
        "greeting": os.environ.get("GREETING"),
        "entity_var": os.environ.get("ENTITY_VAR"),
        "containers_conf": os.environ.get("CONTAINERS_CONF"),
        "storage_conf": os.environ.get("CONTAINERS_STORAGE_CONF"),
    }


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        found = self.path == os.environ["AIP_HEALTH_ROUTE"]
        self.answer(200 if found else 404, {"healthy": found})

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        sums = [scale * sum(row) for row in body["instances"]]
        self.answer(200, {"predictions": sums, "seen": seen()})

    def answer(self, status, payload):
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


HTTPServer(("127.0.0.1", int(os.environ["AIP_HTTP_PORT"])), Handler).serve_forever()
"""
SKIPPED_STDLIB = {"test", "idlelib", "tkinter", "ensurepip", "lib2to3", "pydoc_data", "__pycache__"}
SKIPPED_STDLIB |= {"site-packages", "dist-packages"}


@dataclass(frozen=True)
class Podman:
    """How podman runs a container on this host, found by trying: the command line for
    ``BERTH_REPLICAS__CONTAINER_RUNTIME`` and a ``CONTAINERS_CONF`` when one is needed."""

    command: list[str]
    conf: Path | None

    def env(self) -> dict[str, str]:
        return {"CONTAINERS_CONF": str(self.conf)} if self.conf else {}

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.command, *args],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, **self.env()},
            check=False,
        )


def _rootfs(image: tarfile.TarFile) -> None:
    """The host's Python (binary, libraries, standard library) and the server, in ``image``."""
    image.add(PYTHON.resolve(), "usr/bin/python3")
    linked = subprocess.run(["ldd", str(PYTHON)], capture_output=True, text=True, check=True)
    for word in linked.stdout.split():
        if word.startswith("/"):
            image.add(Path(word).resolve(), word.lstrip("/"))
    stdlib = subprocess.run(
        [str(PYTHON), "-c", "import sysconfig; print(sysconfig.get_paths()['stdlib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    image.add(
        stdlib,
        stdlib.lstrip("/"),
        filter=lambda member: None if SKIPPED_STDLIB & set(member.name.split("/")) else member,
    )
    server = SERVER_PY.encode()
    member = tarfile.TarInfo("srv/server.py")
    member.size = len(server)
    image.addfile(member, io.BytesIO(server))
    for folder in ("tmp", "etc"):
        member = tarfile.TarInfo(folder)
        member.type, member.mode = tarfile.DIRTYPE, 0o1777 if folder == "tmp" else 0o755
        image.addfile(member)


def _ways(tmp: Path) -> Iterator[Podman]:
    """podman as installed; then, for hosts like containers without CAP_SYS_RESOURCE or with
    hybrid cgroups (where crun refuses), the limits this process has and runc."""
    yield Podman(["podman"], None)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    conf = tmp / "containers.conf"
    conf.write_text(
        f'[containers]\ndefault_ulimits = ["nofile={soft}:{hard}", "nproc=4096:4096"]\n'
    )
    yield Podman(["podman"], conf)
    if shutil.which("runc"):
        yield Podman(["podman", "--runtime", "runc"], conf)


@pytest.fixture(scope="session")
def podman_image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Podman, str]]:
    """The test image in podman's storage and a way podman runs it here; removed at the end."""
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed: apt-get install podman (.ci/run does)")
    if not PYTHON.exists():
        pytest.skip(f"the test image is made from the host's {PYTHON}, which is missing")
    tmp = tmp_path_factory.mktemp("image")
    archive = tmp / "rootfs.tar"
    with tarfile.open(archive, "w") as image:
        _rootfs(image)
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()[:12]
    tag = f"localhost/berth-test-server:{digest}"
    imported = Podman(["podman"], None).run(
        "import", "--change", 'CMD ["/usr/bin/python3", "/srv/server.py"]', str(archive), tag
    )
    if imported.returncode != 0:
        pytest.skip(f"podman import failed here: {imported.stderr.strip()}")
    failures = []
    for podman in _ways(tmp):
        tried = podman.run("run", "--rm", "--network", "none", tag, "/usr/bin/python3", "-c", "")
        if tried.returncode == 0:
            break
        failures.append(f"{' '.join(podman.command)} ({podman.conf}): {tried.stderr.strip()}")
    else:
        podman.run("rmi", "--force", tag)
        print("podman cannot run a container here:\n" + "\n".join(failures))
        pytest.skip("podman cannot run a container here: " + " | ".join(failures))
    yield podman, tag
    podman.run("rmi", "--force", tag)


@pytest.fixture(scope="module")
def server(
    podman_image: tuple[Podman, str], make_server: Callable[..., BerthServer]
) -> BerthServer:
    podman, _ = podman_image
    return make_server(BERTH_REPLICAS__CONTAINER_RUNTIME=" ".join(podman.command), **podman.env())


def _containers(podman: Podman, tag: str) -> list[str]:
    """The ids of the containers of ``tag``, running or not."""
    listed = podman.run("ps", "--all", "--filter", f"ancestor={tag}", "--format", "{{.ID}}")
    assert listed.returncode == 0, listed.stderr
    return listed.stdout.split()


def _deploy(api: httpx.Client, tag: str, artifact: Path, **hostile: str) -> str:
    """A new endpoint serving ``tag`` with ``artifact``, READY; its name. ``hostile`` are
    variables that would configure podman itself, were they in its environment: the spec's
    ``CONTAINERS_CONF`` and the entity's ``CONTAINERS_STORAGE_CONF``."""
    (artifact / "weights.json").write_text(json.dumps({"scale": 10}))
    name = unique("img")
    assert api.post("/api/2.0/models", json={"name": name}).status_code == 200
    spec = {
        "image_uri": tag,
        "predict_route": "/predict",
        "health_route": "/health",
        "ports": [{"container_port": 9000}],
        "shared_memory_size_mb": 64,
        "env": [{"name": "GREETING", "value": "hello from $(AIP_MODEL_NAME)"}],
    }
    if "containers_conf" in hostile:
        spec["env"].append({"name": "CONTAINERS_CONF", "value": hostile["containers_conf"]})
    version = api.post(
        f"/api/2.0/models/{name}/versions",
        json={"source": str(artifact), "container_spec": spec},
    )
    assert version.status_code == 200, version.text
    variables = {"ENTITY_VAR": "given"}
    if "storage_conf" in hostile:
        variables["CONTAINERS_STORAGE_CONF"] = hostile["storage_conf"]
    served = entity(name, "1", environment_vars=variables)
    config = {"served_entities": [served]}
    created = api.post("/api/2.0/serving-endpoints", json={"name": name, "config": config})
    assert created.status_code == 200, created.text
    wait_ready(api, name, timeout=120)
    return name


def _predict(api: httpx.Client, name: str) -> httpx.Response:
    return api.post(f"/serving-endpoints/{name}/invocations", json={"instances": [[1, 2]]})


def _supervisor(name: str) -> int:
    """The pid of the replica supervising the container of model ``name``."""
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if b"--image-json" in argv and f'"model_name": "{name}"'.encode() in b" ".join(argv):
            return int(cmdline.parent.name)
    raise AssertionError(f"no replica supervisor runs for {name}")


def test_an_image_serves_on_its_own_loopback_and_its_container_goes_with_the_endpoint(
    podman_image: tuple[Podman, str], api: httpx.Client, server: BerthServer, tmp_path: Path
) -> None:
    podman, tag = podman_image
    name = _deploy(api, tag, tmp_path)
    answer = _predict(api, name)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "predictions": [30],
        "seen": {
            "interfaces": ["lo"],
            "shm_mb": 64,
            "artifact_writable": False,
            "greeting": f"hello from {name}",
            "entity_var": "given",
            "containers_conf": None,
            "storage_conf": None,
        },
    }
    assert len(_containers(podman, tag)) == 1
    logs = api.get(f"/api/2.0/serving-endpoints/{name}/served-models/{name}-1/logs").json()
    assert "container ready" in logs["logs"]
    assert '"POST /predict HTTP/1.1" 200' in logs["logs"]  # the server's own output

    assert api.delete(f"/api/2.0/serving-endpoints/{name}").status_code == 200
    wait_until(lambda: not _containers(podman, tag), timeout=60, what="the container to go")


def test_a_killed_replica_is_replaced_by_one_container_not_two(
    podman_image: tuple[Podman, str], api: httpx.Client, server: BerthServer, tmp_path: Path
) -> None:
    podman, tag = podman_image
    name = _deploy(api, tag, tmp_path)
    killed = _containers(podman, tag)
    os.kill(_supervisor(name), signal.SIGKILL)  # its container outlives it, under conmon
    wait_until(
        lambda: _containers(podman, tag) not in ([], killed) and _predict(api, name).is_success,
        timeout=60,
        what="a new container to answer in place of the one the killed replica left",
    )
    assert len(_containers(podman, tag)) == 1

    assert api.delete(f"/api/2.0/serving-endpoints/{name}").status_code == 200
    wait_until(lambda: not _containers(podman, tag), timeout=60, what="the container to go")


def test_the_variables_a_user_sets_reach_the_container_never_podman(
    podman_image: tuple[Podman, str], api: httpx.Client, server: BerthServer, tmp_path: Path
) -> None:
    """podman runs as root outside the sandbox: a variable of the spec or of the entity in its
    environment could configure it (``CONTAINERS_CONF``: hooks, mounts) or load code into it
    (``LD_PRELOAD``). These two would make it fail before the container starts."""
    podman, tag = podman_image
    name = _deploy(
        api,
        tag,
        tmp_path,
        containers_conf="/nonexistent/containers.conf",
        storage_conf="/nonexistent/storage.conf",
    )
    seen = _predict(api, name).json()["seen"]
    assert seen["containers_conf"] == "/nonexistent/containers.conf"
    assert seen["storage_conf"] == "/nonexistent/storage.conf"
    assert api.delete(f"/api/2.0/serving-endpoints/{name}").status_code == 200
    wait_until(lambda: not _containers(podman, tag), timeout=60, what="the container to go")
