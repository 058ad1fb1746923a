"""The console's choices are the API's: its workload sizes and types are the schema's."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import get_args

from berth.api.schemas.endpoints import WorkloadSize, WorkloadType
from berth.console.routes import ASSETS


def exported_list(module: Path, name: str) -> list[str]:
    found = re.search(rf"export const {name} = (\[.*?\]);", module.read_text(), re.DOTALL)
    assert found, f"{module.name} exports no {name}"
    return list(json.loads(re.sub(r",\s*\]", "]", found.group(1))))


def test_the_console_offers_the_workload_sizes_and_types_the_api_takes() -> None:
    ui = ASSETS / "js" / "ui.js"
    assert exported_list(ui, "WORKLOAD_SIZES") == list(get_args(WorkloadSize))
    assert exported_list(ui, "WORKLOAD_TYPES") == list(get_args(WorkloadType))
