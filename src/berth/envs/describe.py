"""What a model version records about its environment at registration."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from berth.envs.spec import EnvSpec, current_platform, resolve_spec

OWN_ENVIRONMENT = "No environment spec found: the model runs in berth's own environment."


def environment_details(artifact: Path, model_format: str) -> dict[str, Any]:
    """Resolve (and so validate) the artifact's spec: ``{"hash", "spec"}`` or berth's own.

    Raises ``InvalidParameter`` saying how to express an environment berth cannot build.
    """
    spec = resolve_spec(artifact, model_format)
    if spec is None:
        return {"hash": None, "summary": OWN_ENVIRONMENT}
    return {
        "hash": spec.hash(current_platform()),
        "spec": spec.to_json(),
        "summary": f"Python {spec.python} with {len(spec.requirements)} requirement(s).",
    }


def spec_of(details: dict[str, Any]) -> EnvSpec | None:
    """The spec recorded by ``environment_details``, or None for berth's own environment."""
    return None if details.get("spec") is None else EnvSpec.from_json(details["spec"])
