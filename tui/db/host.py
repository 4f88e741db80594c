"""Host metrics with psutil, for a server that runs on this host. No textual."""
from __future__ import annotations

import os
import time
from pathlib import Path

import psutil

from tui.model.snapshot import DiskUsage, HostSnapshot


class HostPoller:
    def __init__(self, data_directory: str | None = None, backup_dir: Path | str | None = None) -> None:
        self.data_directory = data_directory
        self.backup_dir = str(backup_dir) if backup_dir else None
        psutil.cpu_percent(interval=None)  # prime: the first reading is measured from here

    def _disk(self, label: str, path: str | None, notes: list[str]) -> DiskUsage | None:
        if not path:
            return None
        try:
            u = psutil.disk_usage(path)
        except OSError as e:
            notes.append(f"{label} {path}: not readable ({e.strerror or e})")
            return None
        return DiskUsage(label, path, int(u.total), int(u.used), int(u.free))

    def poll(self, cpu_interval: float | None = None) -> HostSnapshot:
        notes: list[str] = []
        cpu = psutil.cpu_percent(interval=cpu_interval)
        try:
            load = tuple(round(x, 2) for x in os.getloadavg())
        except (OSError, AttributeError):
            load = None
        vm = psutil.virtual_memory()
        try:
            swap_used = int(psutil.swap_memory().used)
        except Exception:  # some containers have no swap accounting
            swap_used = 0
        disks = []
        if self.data_directory is None:
            notes.append("data directory unknown (SHOW data_directory needs pg_read_all_settings)")
        for label, path in (("data directory", self.data_directory), ("backup directory", self.backup_dir)):
            d = self._disk(label, path, notes)
            if d is not None:
                disks.append(d)
        return HostSnapshot(
            cpu_percent=cpu, cpu_count=psutil.cpu_count() or 1, load=load, mem_total=int(vm.total),
            mem_used=int(vm.used), mem_available=int(vm.available), swap_used=swap_used,
            disks=tuple(disks), notes=tuple(notes), polled_at=time.monotonic(),
        )
