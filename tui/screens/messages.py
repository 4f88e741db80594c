"""Messages travel up from workers and widgets; named in the past tense."""
from __future__ import annotations

from textual.message import Message

from tui.model.snapshot import ConnectionState, ServerInfo


class ServerPolled(Message):
    def __init__(self, info: ServerInfo) -> None:
        super().__init__()
        self.info = info


class ConnectionChanged(Message):
    def __init__(self, state: ConnectionState) -> None:
        super().__init__()
        self.state = state
