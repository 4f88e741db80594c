"""The one switch that turns every Textual rewrite off.

``PGPREFLIGHT_STOCK_TEXTUAL=1`` (read once, at import) makes the app run on stock Textual:

- ``widgets/_keyed.py``: ``KeyedTable`` is a plain DataTable (no cached lines or cells);
- ``widgets/textlines.py``: ``TextLines`` is a plain Static (``Static.update`` for every change);
- ``tui/screens/compositor.py``: the default screen is Textual's ``Screen`` and compositor;
- ``tui/screens/driver.py``: Textual's ``LinuxDriver`` (its input thread wakes every 0.1 s);
- ``widgets/footer.py``: the key bar redraws on every bindings signal, as Textual's Footer does;
- ``tui/screens/app.py``: no per-name theme memo, no held frames.

The rewrites use private names of Textual and Rich, pinned by ``textual==8.2.8``
(pyproject.toml); each such use carries a one-line note. When a Textual upgrade breaks one,
this switch keeps the app running while the rewrite is mended. CI runs the UI suite both ways.
"""
from __future__ import annotations

import os

ENV = "PGPREFLIGHT_STOCK_TEXTUAL"
STOCK_TEXTUAL: bool = os.environ.get(ENV, "").strip().lower() not in ("", "0", "false", "no")
