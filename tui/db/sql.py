"""SQL kept in .sql files, one per server-version range, chosen by server_version_num
and loaded once (pg_activity's habit). ``name_post_130000.sql`` applies from 13.0 on."""
from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources

_SUFFIX = re.compile(r"^(?P<name>.+?)(?:_post_(?P<ver>\d{6}))?\.sql$")


@lru_cache(maxsize=None)
def _index() -> dict[str, list[tuple[int, str]]]:
    out: dict[str, list[tuple[int, str]]] = {}
    for entry in resources.files("tui.db").joinpath("queries").iterdir():
        m = _SUFFIX.match(entry.name)
        if not m:
            continue
        out.setdefault(m.group("name"), []).append((int(m.group("ver") or 0), entry.name))
    for versions in out.values():
        versions.sort(reverse=True)
    return out


@lru_cache(maxsize=None)
def get(name: str, version_num: int = 999999) -> str:
    """The text of query ``name`` for a server of ``version_num``."""
    versions = _index().get(name)
    if not versions:
        raise KeyError(f"no query named {name!r}")
    for min_ver, filename in versions:
        if version_num >= min_ver:
            return resources.files("tui.db").joinpath("queries", filename).read_text()
    raise KeyError(f"query {name!r} has no version for server {version_num}")
