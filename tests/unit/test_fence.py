"""The fence around the Textual rewrites (DESIGN.md): textual is pinned exactly, every private
name of Textual or Rich that a rewrite uses is listed with a one-line note in its module's
``TEXTUAL_PRIVATES``, and nothing else uses them."""
from __future__ import annotations

import ast
import importlib
import re
from importlib.metadata import version
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]


class _SourceNames:
    """The ``self._name`` attributes a class's source (and its Textual/Rich bases') sets or reads."""

    def __init__(self, cls) -> None:
        import inspect

        self.names: set[str] = set()
        for klass in cls.__mro__:
            if klass.__module__.split(".")[0] in ("textual", "rich"):
                try:
                    self.names |= set(re.findall(r"self\.(_[a-z]\w*)", inspect.getsource(klass)))
                except (OSError, TypeError):
                    pass

    def __contains__(self, name: str) -> bool:
        return name in self.names


def _has(base, name: str) -> bool:
    return name in base if isinstance(base, _SourceNames) else hasattr(base, name)


def _bases(module: str) -> list:
    from rich.text import Text
    from textual._compositor import Compositor
    from textual._xterm_parser import XTermParser
    from textual.drivers.linux_driver import LinuxDriver
    from textual.screen import Screen
    from textual.widgets import DataTable, Static

    return {
        "widgets._keyed": [DataTable(), Text(), _SourceNames(DataTable)],
        "tui.screens.compositor": [Compositor(), Screen(), _SourceNames(Compositor)],
        "tui.screens.driver": [_SourceNames(LinuxDriver), XTermParser()],
        "widgets.textlines": [Static(), _SourceNames(Static)],
        "widgets.footer": [Static(), _SourceNames(Static)],
        "widgets.help": [Static(), _SourceNames(Static)],
        "tui.screens.app": [],
    }[module]


FENCED = ["widgets._keyed", "tui.screens.compositor", "tui.screens.driver", "widgets.textlines"]
PUBLIC_ONLY = ["widgets.footer", "widgets.help"]


def private_names(module: str) -> set[str]:
    """The private names of Textual and Rich ``module`` uses: ``x._name`` or ``def _name`` where a
    Textual/Rich base has ``_name``, and imports from private modules."""
    path = ROOT / (module.replace(".", "/") + ".py")
    tree = ast.parse(path.read_text())
    bases = _bases(module)
    found: set[str] = set()
    for n in ast.walk(tree):
        name = None
        if isinstance(n, ast.Attribute):
            name = n.attr
        elif isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)):
            name = n.name
        if name and re.match(r"^_[a-z]", name) and any(_has(b, name) for b in bases):
            found.add(name)
        if isinstance(n, ast.ImportFrom) and n.module and n.module.split(".")[0] in ("textual", "rich") and any(
                p.startswith("_") for p in n.module.split(".")):
            found.add(n.module)
    return found


def test_textual_is_pinned_exactly_and_installed_at_the_pin():
    text = (ROOT / "pyproject.toml").read_text()
    pin = re.search(r'"textual==([0-9.]+)"', text)
    assert pin, "textual must be pinned with == in pyproject.toml"
    assert version("textual") == pin.group(1)


@pytest.mark.parametrize("module", FENCED)
def test_every_private_name_has_a_note(module):
    mod = importlib.import_module(module)
    notes = getattr(mod, "TEXTUAL_PRIVATES", {})
    used = private_names(module)
    missing = used - set(notes)
    assert not missing, f"{module} uses private names without a note: {sorted(missing)}"
    stale = set(notes) - used
    assert not stale, f"{module} notes private names it no longer uses: {sorted(stale)}"
    for name, note in notes.items():
        assert isinstance(note, str) and len(note) > 10 and "\n" not in note, (name, note)


@pytest.mark.parametrize("module", PUBLIC_ONLY)
def test_new_widgets_use_public_api_only(module):
    assert not private_names(module), private_names(module)


@pytest.mark.parametrize("stock", ["1", ""])
def test_the_switch_swaps_every_rewrite(stock):
    """In a fresh interpreter (the switch is read at import): with PGPREFLIGHT_STOCK_TEXTUAL=1 the
    app's classes are Textual's own, without it the rewrites."""
    import os
    import subprocess
    import sys

    code = (
        "from textual.widgets import DataTable, Static\n"
        "from textual.screen import Screen\n"
        "from textual.drivers.linux_driver import LinuxDriver\n"
        "from pathlib import Path\n"
        "from widgets._keyed import KeyedTable, FastKeyedTable, StockKeyedTable\n"
        "from widgets.textlines import TextLines, FastTextLines, StockTextLines\n"
        "from widgets.header import ServerHeader\n"
        "from tui.screens.compositor import PreflightScreen\n"
        "from tui.screens.app import PreflightApp\n"
        "from tui.config import Config, Target\n"
        "app = PreflightApp(Config(target=Target(host='/nonexistent', port=5432, user='u', database='d'),"
        " state_dir=Path('/nonexistent')), snapshot=None, poll=False)\n"
        "screen = app.get_default_screen()\n"
        "print(KeyedTable.__name__, TextLines.__name__, issubclass(ServerHeader, FastTextLines),"
        " type(screen).__name__, app.get_driver_class().__name__)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PGPREFLIGHT_STOCK_TEXTUAL"}
    env["TEXTUAL_DRIVER"] = ""
    env.pop("TEXTUAL_DRIVER")
    if stock:
        env["PGPREFLIGHT_STOCK_TEXTUAL"] = stock
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env)
    assert out.returncode == 0, out.stderr
    if stock:
        assert out.stdout.split() == ["StockKeyedTable", "StockTextLines", "False", "Screen", "LinuxDriver"]
    else:
        assert out.stdout.split() == ["KeyedTable", "TextLines", "True", "PreflightScreen", "QuietLinuxDriver"]
