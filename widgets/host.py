"""Host pane: CPU, memory, load and the disks of the data and backup directories (psutil),
or why there are none (a remote server)."""
from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from tui.model import format as fmt
from tui.model.snapshot import HostSnapshot


def _bar(pct: float, width: int = 20) -> Text:
    pct = max(0.0, min(100.0, pct))
    filled = int(round(pct / 100 * width))
    style = "red" if pct >= 90 else "yellow" if pct >= 75 else "green"
    t = Text("█" * filled, style=style)
    t.append("░" * (width - filled), style="dim")
    return t


class HostPane(Static):
    DEFAULT_CSS = """
    HostPane { height: 1fr; padding: 0 1; }
    """

    def __init__(self, **kw) -> None:
        super().__init__("waiting for the first poll…", **kw)
        self.snapshot: HostSnapshot | None = None

    def show_message(self, message: str) -> None:
        self.update(Text(message, style="bold yellow"))

    def show_snapshot(self, h: HostSnapshot) -> None:
        self.snapshot = h
        out = Text(no_wrap=True, overflow="ellipsis")

        def row(label: str, bar: Text | None, info: str) -> None:
            out.append(f"{label:<17}", style="bold")
            if bar is not None:
                out.append_text(bar)
                out.append("  ")
            out.append(info + "\n")

        cpu = h.cpu_percent or 0.0
        row("CPU", _bar(cpu), f"{cpu:.0f}% of {h.cpu_count} cores")
        if h.load:
            row("load 1/5/15 min", None, " ".join(f"{x:.2f}" for x in h.load)
                + f"  ({h.load[0] / max(1, h.cpu_count):.2f} per core)")
        row("memory", _bar(h.mem_percent), f"{h.mem_percent:.0f}%  {fmt.size(h.mem_total - h.mem_available)} "
                                            f"of {fmt.size(h.mem_total)}")
        if h.swap_used:
            row("swap used", None, fmt.size(h.swap_used))
        for d in h.disks:
            row(d.label, _bar(d.percent), f"{d.percent:.0f}%  {fmt.size(d.free)} free of {fmt.size(d.total)}")
            out.append(f"{'':<17}{d.path}\n", style="dim")
        for n in h.notes:
            out.append(n + "\n", style="yellow")
        self.update(out, layout=False)  # the pane fills its tab: its size never depends on the text
