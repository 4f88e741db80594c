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


# -- no import cycles between packages (issue 14 §1) ----------------------------------------------
# A unit is a package of tui (tui.db, tui.checklist, ...), a top-level module of tui (tui.config,
# tui.alerts, tui.watch, ...) or widgets. Every import counts, also one inside a function.
# Known cycles, to be broken (each pair must still exist, so that this list only shrinks). None left:
# tui.checklist's view gets a fix's SQL from a describe_fix callable it is handed (tui.fixes.describe, by
# the TUI), the catalog helpers both use live in tui.db.catalog, and make_config and the exit codes that
# tui.demo.run needs live in tui.config.
KNOWN_CYCLE_EDGES: set[tuple[str, str]] = set()


def _unit(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] == "widgets":
        return "widgets"
    if parts[0] != "tui" or len(parts) == 1:
        return None
    if parts[1] in ("__version__", "__main__"):
        return None
    return "tui." + parts[1]


def _import_graph() -> dict[str, dict[str, str]]:
    import ast

    graph: dict[str, dict[str, str]] = {}
    files = [*ROOT.joinpath("tui").rglob("*.py"), *ROOT.joinpath("widgets").rglob("*.py")]
    for f in files:
        rel = f.relative_to(ROOT).with_suffix("")
        mod = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
        src = _unit(mod)
        if src is None:
            continue
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            for name in names:
                dst = _unit(name)
                path = ROOT.joinpath(*dst.split(".")) if dst else None
                if dst and dst != src and (path.is_dir() or path.with_suffix(".py").exists()):
                    graph.setdefault(src, {}).setdefault(dst, str(f.relative_to(ROOT)))
    return graph


def test_no_import_cycles_between_packages():
    graph = _import_graph()
    assert "tui.db" in graph and "tui.model" in graph.get("tui.db", {})
    for edge in KNOWN_CYCLE_EDGES:
        assert edge[1] in graph.get(edge[0], {}), f"{edge} is gone: take it off KNOWN_CYCLE_EDGES"
    pruned = {s: {d: f for d, f in ds.items() if (s, d) not in KNOWN_CYCLE_EDGES} for s, ds in graph.items()}
    cycles = []

    def walk(node, path, on_path, done):
        for nxt in pruned.get(node, {}):
            if nxt in on_path:
                cyc = path[path.index(nxt):] + [nxt]
                cycles.append(" -> ".join(f"{a} ({pruned[a][b]})" for a, b in zip(cyc, cyc[1:])))
            elif nxt not in done:
                on_path.add(nxt)
                walk(nxt, path + [nxt], on_path, done)
                on_path.discard(nxt)
        done.add(node)

    done: set[str] = set()
    for start in sorted(pruned):
        if start not in done:
            walk(start, [start], {start}, done)
    assert not cycles, "import cycles between packages:\n" + "\n".join(cycles)


def test_the_cycle_check_finds_a_cycle(monkeypatch):
    """The check itself: a graph with a cycle fails it."""
    real = _import_graph()
    fake = {k: dict(v) for k, v in real.items()}
    fake.setdefault("tui.model", {})["tui.db"] = "tui/model/x.py"  # model importing db: upwards
    monkeypatch.setitem(globals(), "_import_graph", lambda: fake)
    with pytest.raises(AssertionError, match="import cycles between packages"):
        test_no_import_cycles_between_packages()
