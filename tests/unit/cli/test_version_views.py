"""A custom container's version as ``berth models`` shows it: a line a field."""

from __future__ import annotations

from berth.cli.version_views import container_fields, registered

PROBE = {
    "period_seconds": 10,
    "timeout_seconds": 1,
    "failure_threshold": 3,
    "success_threshold": 1,
    "initial_delay_seconds": 0,
}


def test_a_process_shows_its_command_line_routes_and_probes() -> None:
    details = {
        "container_spec": {
            "command": ["mlflow", "models", "serve"],
            "args": ["-m", "$(AIP_STORAGE_URI)", "--port", "$(AIP_HTTP_PORT)"],
            "env": [{"name": "GREETING", "value": "hello world"}],
            "ports": [],
            "predict_route": "/invocations",
            "health_route": "/ping",
            "deployment_timeout": 90.5,
            "startup_probe": {**PROBE, "http_get": {"path": "/ping", "port": 5000}},
            "health_probe": {**PROBE, "tcp_socket": {}, "period_seconds": 5},
            "liveness_probe": {**PROBE, "exec": {"command": ["test", "-e", "/tmp/up"]}},
        },
        "task": "llm/v1/chat",
    }
    assert container_fields(details) == [
        ("image", "none: a process in the model's environment"),
        ("command line", "mlflow models serve -m '$(AIP_STORAGE_URI)' --port '$(AIP_HTTP_PORT)'"),
        ("env", "'GREETING=hello world'"),
        ("port", "the one berth gives in AIP_HTTP_PORT"),
        ("predict route", "/invocations"),
        ("health route", "/ping"),
        ("deployment timeout", "90.5 s"),
        (
            "startup probe",
            "GET /ping on port 5000, every 10 s, timeout 1 s, fails after 3, passes after 1, "
            "first after 0 s",
        ),
        (
            "health probe",
            "TCP connect, every 5 s, timeout 1 s, fails after 3, passes after 1, first after 0 s",
        ),
        (
            "liveness probe",
            "run test -e /tmp/up, every 10 s, timeout 1 s, fails after 3, passes after 1, "
            "first after 0 s",
        ),
        ("task", "llm/v1/chat"),
    ]


def test_an_image_without_command_runs_its_entrypoint() -> None:
    spec = {
        "image_uri": "localhost/triton:24.01",
        "command": [],
        "args": ["--http-port=8000"],
        "env": [],
        "ports": [{"container_port": 8000}],
        "invoke_route_prefix": "/*",
        "shared_memory_size_mb": 2048,
    }
    fields = dict(container_fields({"container_spec": spec}))
    assert fields["image"] == "localhost/triton:24.01"
    assert fields["command line"] == "the image's entrypoint --http-port=8000"
    assert fields["port"] == 8000
    assert fields["predict route"] == "Vertex's default, in AIP_PREDICT_ROUTE"
    assert fields["raw invoke"] == "/invoke/{path} reaches any path"
    assert fields["shared memory"] == "2048 MB"
    version = {
        "name": "triton",
        "version": "2",
        "format": "container",
        "details": {"container_spec": spec},
    }
    assert (
        registered(version)
        == "Registered triton version 2 (container: image localhost/triton:24.01)."
    )


def test_other_formats_show_no_container_fields() -> None:
    assert container_fields({"architecture": "llama"}) == []
