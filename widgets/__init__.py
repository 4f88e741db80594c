"""Widgets: draw frozen snapshots from tui.model; never import tui.db, tui.fixes or asyncpg."""
