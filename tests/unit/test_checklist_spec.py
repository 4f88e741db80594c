"""The checklist loader: bundled files, and every kind of bad file named with file and line."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from tui.checklist.spec import PROBE_KINDS, ChecklistError, bundled_names, load_checklist, parse_checklist

pytestmark = pytest.mark.unit

SEED = Path("/work/shared/seed/launch-checklist.md")

IMAGES_IDS = """pool.max pool.concurrency pool.errors indexes.extraction_analytics indexes.image_mvp_events
indexes.trial_usages indexes.plans migrations.applied migrations.tables migrations.schema integrity.foreign_keys
integrity.not_null integrity.unique integrity.balance_check performance.slow_query_log
performance.pg_stat_statements performance.plans_reviewed backups.daily backups.restore_tested
backups.separate_storage monitoring.connections monitoring.table_sizes monitoring.slow_queries
monitoring.alerts""".split()

GOOD = '''name = "t"
title = "T"

[[section]]
id = "s"
title = "S"

[[section.item]]
id = "s.one"
title = "One"
severity = "high"
[section.item.probe]
kind = "table_exists"
table = "users"

[[section.item]]
id = "s.two"
title = "Two"
manual = true
'''


def test_bundled_checklists_load_without_warnings():
    assert {"general", "images-mvp"} <= set(bundled_names())
    for name in bundled_names():
        c = load_checklist(name)
        assert c.warnings == ()
        assert len(c.item_ids()) == len(set(c.item_ids()))


def test_images_mvp_has_the_issue_ids_in_order_then_general():
    c = load_checklist("images-mvp")
    ids = c.item_ids()
    assert ids[: len(IMAGES_IDS)] == IMAGES_IDS
    general = load_checklist("general").item_ids()
    # general checks besides (the three already covered by images-mvp items are left out)
    assert set(general) - set(ids) == {"health.pg_stat_statements", "health.slow_query_log", "health.backup_restore"}
    assert any(i.startswith("health.") for i in ids)


def _seed_lines(section_title: str) -> list[str]:
    text = SEED.read_text()
    start = text.index(section_title)
    body = text[start:]
    out = []
    for line in body.splitlines()[1:]:
        if line.startswith("## ") and out:
            break
        m = re.match(r"^\s*(?:□|- \[ \])\s*(.+?)\s*$", line)
        if m:
            out.append(m.group(1))
    return out


@pytest.mark.skipif(not SEED.exists(), reason="seed checklist not on this machine")
def test_images_mvp_reproduces_every_seed_line():
    c = load_checklist("images-mvp")
    sources = [it.source for it in c.items() if it.source]
    pre = _seed_lines("## Pre-Launch Database Checklist")
    crit = _seed_lines("## Success Criteria")
    assert len(pre) == 24 and len(crit) == 7
    for line in pre + crit:
        assert line.replace("**", "") in sources, line


def test_index_items_expect_exactly_the_seed_indexes():
    c = load_checklist("images-mvp")
    seed = SEED.read_text() if SEED.exists() else ""
    for table in ("extraction_analytics", "image_mvp_events", "trial_usages"):
        it = c.item(f"indexes.{table}")
        names = {i["name"] for i in it.probe.params["indexes"]}
        if seed:
            want = set(re.findall(r"CREATE INDEX IF NOT EXISTS (\w+)\s+ON " + table + r"\(", seed))
            assert names == want
        assert it.fix.name == "create_index" and it.fix.params["table"] == table
        assert it.fix.params["indexes"] == it.probe.params["indexes"]


def test_fix_names_are_those_of_the_fixes_issue():
    c = load_checklist("images-mvp")
    fixes = {it.id: it.fix.name for it in c.items() if it.fix}
    assert set(fixes.values()) == {"create_index", "add_check_constraint", "enable_pg_stat_statements",
                                   "slow_query_log", "backup_test", "connection_test",
                                   "edit_file", "backup_schedule"}  # issue 12: pool.max, backups.daily
    assert fixes["pool.max"] == "edit_file" and fixes["backups.daily"] == "backup_schedule"
    bc = c.item("integrity.balance_check").fix.params
    assert bc == {"table": "credit_balances", "name": "check_balance_nonnegative", "expression": "balance >= 0"}


def test_good_file_parses():
    c = parse_checklist(GOOD, "t.toml")
    assert [s.id for s in c.sections] == ["s"]
    one, two = c.sections[0].items
    assert one.probe.kind == "table_exists" and one.severity == "high" and one.line == 9
    assert two.manual and two.severity == "normal"


def _err(text: str) -> ChecklistError:
    with pytest.raises(ChecklistError) as ei:
        parse_checklist(text, "bad.toml")
    return ei.value


def test_syntax_error_names_file_and_line():
    e = _err(GOOD.replace('title = "Two"', 'title = "Two'))
    assert e.file == "bad.toml" and e.line == 18
    assert str(e).startswith("bad.toml:18: not valid TOML")


def test_unknown_probe_kind_names_its_line():
    e = _err(GOOD.replace('kind = "table_exists"', 'kind = "tabel_exists"'))
    assert e.line == 13 and "unknown probe kind 'tabel_exists'" in str(e) and "s.one" in str(e)


def test_missing_field_names_the_item_line():
    e = _err(GOOD.replace('title = "Two"\n', ""))
    assert e.line == 17 and "missing field 'title'" in str(e)
    e = _err(GOOD.replace('table = "users"\n', ""))
    assert e.line == 12 and "missing field 'table' or 'tables'" in str(e)
    e = _err(GOOD.replace("manual = true\n", ""))
    assert e.line == 17 and "missing field 'probe'" in str(e)
    e = _err(GOOD.replace('id = "s.two"\n', ""))
    assert e.line == 16 and "missing field 'id'" in str(e)


def test_bad_severity_and_duplicate_id():
    e = _err(GOOD.replace('severity = "high"', 'severity = "urgent"'))
    assert e.line == 11 and "severity 'urgent'" in str(e)
    e = _err(GOOD.replace('id = "s.two"', 'id = "s.one"'))
    assert e.line == 17 and "duplicate item id 's.one'" in str(e)


def test_unknown_keys_are_warnings_not_errors():
    c = parse_checklist(GOOD.replace('severity = "high"', 'severity = "high"\ncolour = "red"')
                        .replace('table = "users"', 'table = "users"\ntabel = "x"'), "w.toml")
    assert len(c.warnings) == 2
    assert c.warnings[0] == "w.toml:12: unknown key 'colour' in item 's.one' ignored"
    assert "unknown key 'tabel'" in c.warnings[1] and c.warnings[1].startswith("w.toml:16:")
    assert "tabel" not in c.sections[0].items[0].probe.params


def test_load_by_path_and_unknown_name(tmp_path):
    p = tmp_path / "mine.toml"
    p.write_text(GOOD)
    assert load_checklist(str(p)).name == "t"
    with pytest.raises(ChecklistError, match="no bundled checklist or file"):
        load_checklist("nonesuch")
    with pytest.raises(ChecklistError, match="no such file"):
        load_checklist(str(tmp_path / "missing.toml"))


def test_every_probe_kind_is_documented_in_the_registry():
    assert set(PROBE_KINDS) >= {"sql", "table_exists", "columns", "index_exists", "constraint", "extension",
                                "setting", "file_pattern", "migrations", "explain", "backup_files", "last_run",
                                "log_scan", "manual"}


def test_default_checklist_per_database_from_the_config_file(tmp_path, monkeypatch):
    from tui.checklist.runner import checklist_for, default_checklist_name
    from tui.config import Config, Target

    cfg_file = tmp_path / "config.toml"
    monkeypatch.setenv("PGPREFLIGHT_CONFIG", str(cfg_file))
    meta = Config(target=Target(host="db.internal", port=5432, user="u", database="metaextract"), state_dir=tmp_path)
    other = Config(target=Target(host="db.internal", port=5432, user="u", database="other"), state_dir=tmp_path)
    assert default_checklist_name(meta) == "general"  # no file
    cfg_file.write_text('[checklist]\ndefault = "general"\n[checklist.databases]\nmetaextract = "images-mvp"\n')
    assert checklist_for(meta).name == "images-mvp"
    assert checklist_for(other).name == "general"
    cfg_file.write_text('[checklist.databases]\n"db.internal:5432/other" = "images-mvp"\n')
    assert default_checklist_name(other) == "images-mvp" and default_checklist_name(meta) == "general"
    from dataclasses import replace
    assert checklist_for(replace(other, checklist="general")).name == "general"  # --checklist wins
    cfg_file.write_text("[checklist\n")
    with pytest.raises(ChecklistError, match="config file unreadable"):
        default_checklist_name(meta)


def test_include_exclude_and_bad_includes(tmp_path):
    base = tmp_path / "base.toml"
    base.write_text(GOOD)
    mine = tmp_path / "mine.toml"
    mine.write_text('name = "mine"\ninclude = [{ checklist = "base.toml", exclude = ["s.two", "s.nope"] }, "general"]\n'
                    '[[section]]\nid = "m"\ntitle = "M"\n[[section.item]]\nid = "m.a"\ntitle = "A"\nmanual = true\n')
    c = load_checklist(str(mine))
    ids = c.item_ids()
    assert ids[:2] == ["m.a", "s.one"] and "s.two" not in ids and "health.xid_age" in ids
    assert any("exclude 's.nope' names no item" in w for w in c.warnings)
    mine.write_text('name = "mine"\ninclude = ["nowhere.toml"]\n')
    with pytest.raises(ChecklistError, match="include 'nowhere.toml': no bundled checklist or file"):
        load_checklist(str(mine))
    mine.write_text('name = "mine"\ninclude = ["mine.toml"]\n')
    with pytest.raises(ChecklistError, match="circular"):
        load_checklist(str(mine))
    mine.write_text('name = "mine"\ninclude = ["base.toml"]\n[[section]]\nid = "x"\ntitle = "X"\n'
                    '[[section.item]]\nid = "s.one"\ntitle = "dup"\nmanual = true\n')
    with pytest.raises(ChecklistError, match="duplicate item id 's.one'"):
        load_checklist(str(mine))


def test_items_refs_must_exist_and_operators_are_checked():
    bad = GOOD + '\n[[section.item]]\nid = "s.all"\ntitle = "All"\n[section.item.probe]\nkind = "items"\nrefs = ["s.ghost"]\n'
    with pytest.raises(ChecklistError, match="refs names unknown item 's.ghost'"):
        parse_checklist(bad, "r.toml")
    bad = GOOD.replace('kind = "table_exists"\ntable = "users"',
                       'kind = "setting"\nname = "max_connections"\nop = "=>"\nvalue = 20')
    with pytest.raises(ChecklistError) as ei:
        parse_checklist(bad, "o.toml")
    assert ei.value.line == 15 and "operator '=>'" in str(ei.value)
