"""The runtime imports no berth module but those vermin checks for Python 3.9
(``tests/integration/runtime/test_python_versions.py``)."""

from __future__ import annotations

from tests.support.runtime_sources import CORE_MODULES, PACKAGE


def test_the_runtime_imports_only_what_was_checked() -> None:
    """If the runtime starts importing another berth module, that module joins SOURCES."""
    imported = set()
    for source in (PACKAGE / "runtime").glob("*.py"):
        for line in source.read_text().splitlines():
            if line.startswith(("from berth.", "import berth.")):
                imported.add(line.split()[1])
    assert {name for name in imported if not name.startswith("berth.runtime")} == CORE_MODULES
