"""The layering of DESIGN.md, checked in fresh interpreters: the database code is
importable without the UI, and widgets never reach the database."""
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]


def _modules(package: str) -> list[str]:
    path = ROOT.joinpath(*package.split("."))
    if not path.exists():
        return []
    names = [package]
    for info in pkgutil.walk_packages([str(path)], prefix=package + "."):
        names.append(info.name)
    return names


def _loaded_after_import(modules: list[str]) -> set[str]:
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}:\n    importlib.import_module(m)\n"
        "print('\\n'.join(sorted(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    return set(out.stdout.split())


@pytest.mark.parametrize("package", ["tui.model", "tui.db", "tui.checklist", "tui.fixes", "tui.demo"])
def test_core_packages_do_not_import_textual(package):
    mods = [m for m in _modules(package) if not m.endswith(".run")]
    if not mods:
        pytest.skip(f"{package} does not exist yet")
    loaded = _loaded_after_import(mods)
    assert not {m for m in loaded if m == "textual" or m.startswith("textual.")}, f"{package} pulls in textual"


def test_widgets_do_not_import_database_or_fixes():
    mods = _modules("widgets")
    assert len(mods) > 1
    loaded = _loaded_after_import(mods)
    bad = {m for m in loaded if m == "asyncpg" or m.startswith(("tui.db", "tui.fixes", "asyncpg."))}
    assert not bad, f"widgets pull in {sorted(bad)}"
