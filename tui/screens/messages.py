"""Messages travel up from workers and widgets; named in the past tense."""
from __future__ import annotations

from textual.message import Message

from tui.model.snapshot import (
    ConnectionsSnapshot, ConnectionState, HostSnapshot, ServerInfo, SlowQueriesSnapshot, TablesSnapshot,
)


class ServerPolled(Message):
    def __init__(self, info: ServerInfo) -> None:
        super().__init__()
        self.info = info


class ConnectionChanged(Message):
    def __init__(self, state: ConnectionState) -> None:
        super().__init__()
        self.state = state


class PanePolled(Message):
    """A pane's poll finished: ``pane`` is "connections", "slow", "tables" or "host"."""

    def __init__(self, pane: str, data: ConnectionsSnapshot | SlowQueriesSnapshot | TablesSnapshot | HostSnapshot | None,
                 message: str = "", info: ServerInfo | None = None, prompt: bool = False) -> None:
        super().__init__()
        self.pane = pane
        self.data = data
        self.message = message
        self.info = info  # the server poll of the same round, drawn in the same frame
        self.prompt = prompt  # polled because of a key: painted right after the key's frame, not held


class PartTurnedOff(Message):
    """An optional query failed on privileges or a timeout and switched itself off (one notice)."""

    def __init__(self, notice: str) -> None:
        super().__init__()
        self.notice = notice


class SessionsSignalled(Message):
    def __init__(self, summary: str, ok: bool) -> None:
        super().__init__()
        self.summary = summary
        self.ok = ok
