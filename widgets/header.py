"""The header: server, uptime, size and growth, connections, TPS, cache hit, link state."""
from __future__ import annotations

import time

from rich.text import Text

from tui.model import format as fmt
from tui.model.snapshot import ConnectionState, ServerInfo
from widgets.textlines import TextLines


class ServerHeader(TextLines):
    DEFAULT_CSS = """
    ServerHeader {
        height: 2;
        padding: 0 1;
        background: $panel;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    """

    def __init__(self, target_display: str, refresh_s: float, **kw) -> None:
        super().__init__("", **kw)
        self.target_display = target_display
        self.refresh_s = refresh_s
        self.info: ServerInfo | None = None
        self.state = ConnectionState("connecting", "connecting…")
        self.paused = False
        self.read_only = False
        self.alerts: tuple = ()  # the raised alerts (tui.model.events.AlertChanged), oldest first
        self.replay_at = None  # a recording's time (datetime) while replaying

    def on_mount(self) -> None:
        self.set_interval(1.0, self._tick)
        self._redraw()

    def _tick(self) -> None:
        # ages and the reconnect countdown move even without a new poll
        if self.state.status != "connected" or self.paused:
            self._redraw()

    def show(self, info: ServerInfo | None = None, state: ConnectionState | None = None) -> None:
        if info is not None:
            self.info = info
        if state is not None:
            self.state = state
        self._redraw()

    def render_text(self) -> Text:
        i, st = self.info, self.state
        line1 = Text(no_wrap=True, overflow="ellipsis")
        if i is not None:
            line1.append(f"PG {i.version.split()[0]}", style="bold")
            line1.append(f"  up {fmt.duration(i.uptime_s)}")
            line1.append(f"  db {'≈' if i.database_bytes_estimated else ''}{fmt.size(i.database_bytes)}")
            if i.database_growth_bps is not None:
                line1.append(f" ({'+' if i.database_growth_bps >= 0 else '-'}{fmt.size(abs(i.database_growth_bps) * 60)}/min)")
            line1.append("  ")
        else:
            line1.append("pgpreflight  ", style="bold")
        line1.append(self.target_display, style="bold cyan")
        line2 = Text(no_wrap=True, overflow="ellipsis")
        # the state flags come first, before anything that can be cut: PAUSED, DISCONNECTED with the
        # reconnect countdown, STALE with its age, READ-ONLY, STANDBY
        flags = self.flags()
        alert = self.alert_flag()
        for text, style in flags + ([alert] if alert else []):
            line2.append(text, style=style)
            line2.append(" ")
        if st.status == "connected" and not flags:
            line2.append("● connected ", style="bold green")
        elif st.status == "connecting":
            line2.append("○ connecting… ", style="bold yellow")
        if i is not None:
            used, usable = i.connections, i.usable_connections
            share = used / usable if usable else 0
            style = "bold red" if share >= 0.9 else "yellow" if share >= 0.75 else ""
            line2.append(" conns ")
            line2.append(f"{used}/{usable}", style=style)
            line2.append(f" (max {i.max_connections}, {i.reserved_connections} reserved)")
            line2.append(f"  tps {i.tps:.0f}" if i.tps is not None else "  tps —")
            line2.append(f"  hit {fmt.ratio(i.cache_hit_ratio)}")
        line2.append(f"  every {self.refresh_s:g}s")
        if st.status == "disconnected" and st.message:
            line2.append(f"  ({st.message})", style="red")
        out = Text(no_wrap=True, overflow="ellipsis")
        out.append_text(line1)
        out.append("\n")
        out.append_text(line2)
        return out

    def flags(self) -> list[tuple[str, str]]:
        """(text, style) of each state flag in force, in the order they are drawn."""
        i, st = self.info, self.state
        out: list[tuple[str, str]] = []
        if self.replay_at is not None:
            out.append((f"REPLAY {self.replay_at.astimezone().strftime('%Y-%m-%d %H:%M:%S')}", "bold reverse blue"))
        if self.paused:
            out.append(("PAUSED", "bold reverse"))
        if st.status == "disconnected":
            retry = ""
            if st.retry_in_s is not None:
                left = max(0, int(round(st.retry_in_s - (time.monotonic() - self._state_since()))))
                retry = f" retry {left}s"
            out.append((f"✖ DISCONNECTED{retry}", "bold reverse red"))
        if st.status != "connected" and st.last_ok_at is not None:
            out.append((f"STALE {fmt.duration(time.monotonic() - st.last_ok_at)}", "bold reverse yellow"))
        if self.read_only:
            out.append(("READ-ONLY", "bold reverse magenta"))
        if i is not None and i.in_recovery:
            out.append(("STANDBY", "bold reverse yellow"))
        return out

    def alert_flag(self) -> tuple[str, str] | None:
        """The raised alerts, drawn right after the state flags (they are no state of the link)."""
        if not self.alerts:
            return None
        names = ",".join(a.name for a in self.alerts)
        return (f"▲ {len(self.alerts)} ALERT{'S' if len(self.alerts) > 1 else ''} ({names}) a", "bold reverse red")

    _since: float = 0.0
    _since_key: object = None

    def _state_since(self) -> float:
        if self._since_key is not self.state:
            self._since_key = self.state
            self._since = time.monotonic()
        return self._since

    _drawn: tuple | None = None

    def _redraw(self) -> None:
        t = self.render_text()
        sig = (t.plain, tuple((s.start, s.end, str(s.style)) for s in t.spans))
        if sig == self._drawn:  # same text as on screen: no repaint at all
            return
        self._drawn = sig
        self.update(t, layout=False)  # a fixed height of 2: the text never changes the layout
