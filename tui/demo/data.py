"""The images-mvp ("metaextract") demo database and sample app directory.

:func:`build_demo_database` creates a database that reproduces the app described by the
launch checklist (seed/launch-checklist.md): the five migrations of ``server/migrations``
(recorded in ``schema_migrations``), the six tables, and a month of realistic traffic,
all generated on the server with ``generate_series``. It keeps the checklist's flaws:
none of the performance indexes it lists, no ``CHECK (balance >= 0)`` on
``credit_balances``, and ``pg_stat_statements`` preloaded by the server but not created.

:func:`write_app_dir` writes the app's files the checklist points at: ``server/db.ts``
(``max: 10`` on line 28), ``server/migrations/*.sql``, ``shared/schema.ts`` and ``ops/crontab`` (no
backup entry yet).

asyncpg only: no textual import.
"""
from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg

from tui.db.catalog import quote_ident

MIGRATIONS_TABLE = "schema_migrations"

PACKAGE_DIR = Path(__file__).resolve().parent
MIGRATIONS_DIR = PACKAGE_DIR / "migrations"
APP_TEMPLATE_DIR = PACKAGE_DIR / "app_template"

#: The migration files, in the order the seed lists them.
MIGRATION_NAMES = (
    "001_add_metadata_storage.sql",
    "002_add_trial_usage_tracking.sql",
    "003_add_trial_usage_count.sql",
    "004_add_ui_events.sql",
    "005_add_credit_system.sql",
)

#: The six tables the checklist expects.
TABLES = (
    "users",
    "subscriptions",
    "extraction_analytics",
    "image_mvp_events",
    "trial_usages",
    "credit_balances",
)

#: The conversion funnel, top to bottom.
FUNNEL_EVENTS = (
    "landing_viewed",
    "upload_selected",
    "analysis_started",
    "analysis_completed",
    "paywall_viewed",
    "purchase_completed",
)

#: Indexes the checklist says should exist; the demo database deliberately lacks them.
SEED_INDEXES = {
    "idx_extraction_requested_at": "extraction_analytics",
    "idx_extraction_tier": "extraction_analytics",
    "idx_extraction_success": "extraction_analytics",
    "idx_image_mvp_events_user": "image_mvp_events",
    "idx_image_mvp_events_type": "image_mvp_events",
    "idx_image_mvp_events_created": "image_mvp_events",
    "idx_trial_usages_user": "trial_usages",
    "idx_trial_usages_session": "trial_usages",
}

# Data volumes (see the *_SQL phases below). Events come from N_SESSIONS sessions
# walking down the funnel: about 2.58 events per session, i.e. ~220k events.
N_USERS = 12_000
N_EXTRACTIONS = 120_000
N_SESSIONS = 85_000
N_TRIALS = 15_000

#: Seconds the last build_demo_database call took (None before the first call).
last_build_seconds: float | None = None


def migration_files() -> list[Path]:
    """The five migration files shipped with the package, in application order."""
    files = [MIGRATIONS_DIR / name for name in MIGRATION_NAMES]
    missing = [f.name for f in files if not f.is_file()]
    if missing:
        raise FileNotFoundError(f"demo migrations missing from {MIGRATIONS_DIR}: {', '.join(missing)}")
    return files


def migration_version(path: Path) -> tuple[str, str]:
    """``001_add_metadata_storage.sql`` -> ``("001", "add_metadata_storage")``."""
    stem = path.name[: -len(".sql")] if path.name.endswith(".sql") else path.name
    version, _, name = stem.partition("_")
    return version, name




def dsn_with_database(dsn: str, dbname: str) -> str:
    """The same connection string pointing at database ``dbname``.

    For a ``postgresql://`` / ``postgres://`` URI the path is replaced (the query string,
    e.g. ``?host=/socket/dir&port=5432``, is kept as is; a ``dbname=``/``database=``
    parameter in it is replaced too). A libpq keyword/value string gets its ``dbname``
    set."""
    if dsn.startswith(("postgresql://", "postgres://")):
        parts = urlsplit(dsn)
        query = parts.query
        if query:
            items = []
            for item in query.split("&"):
                key = item.split("=", 1)[0]
                if key in ("dbname", "database"):
                    item = f"{key}={quote(dbname, safe='')}"
                items.append(item)
            query = "&".join(items)
        return urlunsplit((parts.scheme, parts.netloc, "/" + quote(dbname, safe=""), query, parts.fragment))
    # keyword/value form: host=... port=... dbname=...
    value = "'" + dbname.replace("\\", "\\\\").replace("'", "\\'") + "'"
    out, found = [], False
    for token in _split_conninfo(dsn):
        if token.split("=", 1)[0].strip() == "dbname":
            token, found = f"dbname={value}", True
        out.append(token)
    if not found:
        out.append(f"dbname={value}")
    return " ".join(out)


def _split_conninfo(dsn: str) -> list[str]:
    """Split a keyword/value conninfo into ``key=value`` tokens (quoted values kept)."""
    tokens, cur, quoted, i = [], "", False, 0
    while i < len(dsn):
        ch = dsn[i]
        if ch == "\\" and quoted and i + 1 < len(dsn):
            cur += dsn[i : i + 2]
            i += 2
            continue
        if ch == "'":
            quoted = not quoted
        if ch.isspace() and not quoted:
            if cur:
                tokens.append(cur)
            cur = ""
        else:
            cur += ch
        i += 1
    if cur:
        tokens.append(cur)
    # rejoin "key = value" written with spaces around '='
    joined: list[str] = []
    for t in tokens:
        if joined and (t == "=" or joined[-1].endswith("=") or t.startswith("=")):
            joined[-1] += t
        else:
            joined.append(t)
    return joined


MIGRATIONS_TABLE_DDL = f"""
CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} (
    version     text PRIMARY KEY,
    name        text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
)
"""

# All data is generated server-side with generate_series, in four phases (each one
# simple-query message, i.e. one transaction). Users come first; the two big tables are
# then filled concurrently on two connections (one CPU-bound backend each). setseed()
# makes every phase reproducible. User ids are md5('user:'||n)::uuid, so any statement
# can pick a random existing user without a join on a row number.
_USERS_SQL = f"""
SELECT setseed(0.2026);

-- users: ~85% free, ~11% professional, ~4% business; signups skewed to recent months
INSERT INTO users (id, email, tier, created_at)
SELECT md5('user:' || g)::uuid::text,
       (ARRAY['alex','sam','jordan','taylor','morgan','casey','riley','jamie','drew','quinn',
              'maria','wei','priya','lucas','emma','noah','olivia','liam','ana','kenji'])[1 + g % 20]
         || '.' ||
       (ARRAY['smith','garcia','chen','patel','kim','nguyen','muller','rossi','silva','khan',
              'brown','lopez','ito','novak','dubois'])[1 + (g / 20) % 15]
         || g || '@' ||
       (ARRAY['gmail.com','outlook.com','yahoo.com','icloud.com','proton.me','hey.com',
              'fastmail.com','hotmail.com','studio-lumen.io','pixelworks.co'])[1 + (g * 7) % 10],
       CASE WHEN r < 0.85 THEN 'free' WHEN r < 0.96 THEN 'professional' ELSE 'business' END,
       now() - interval '200 days' * power(r2, 1.6)
FROM (SELECT g, random() AS r, random() AS r2
        FROM generate_series(1, {N_USERS}) AS g OFFSET 0) s;
"""

_EXTRACTIONS_SQL = f"""
SELECT setseed(0.31);

-- extraction requests over the last 30 days (~28% anonymous trials), in time order
INSERT INTO extraction_analytics (user_id, tier, file_type, success, processing_ms, requested_at, metadata)
SELECT u.id, coalesce(u.tier, 'free'), s.file_type, s.ok,
       CASE WHEN s.ok THEN 180 + (power(s.r3, 2) * 3800)::int ELSE 900 + (s.r3 * 9000)::int END,
       s.ts,
       CASE WHEN s.ok THEN jsonb_build_object(
                'width', (ARRAY[1080, 1920, 3024, 4032, 6000])[1 + (s.g % 5)],
                'height', (ARRAY[1350, 1080, 4032, 3024, 4000])[1 + (s.g % 5)],
                'size_bytes', 150000 + (s.r4 * 9000000)::int,
                'fields_extracted', 12 + (s.r4 * 180)::int,
                'has_gps', s.r4 < 0.35,
                'camera', (ARRAY['Apple iPhone 15 Pro','Canon EOS R6','Sony ILCE-7M4',
                                 'Google Pixel 8','Samsung SM-S918B','NIKON Z 6_2',
                                 'FUJIFILM X-T5', NULL])[1 + (s.g % 8)])
            ELSE jsonb_build_object('error', (ARRAY['unsupported_format','file_too_large',
                                                    'corrupt_exif','timeout'])[1 + (s.g % 4)])
       END
FROM (SELECT g,
             CASE WHEN random() < 0.72 THEN 1 + floor(random() * {N_USERS})::int END AS k,
             CASE WHEN r1 < 0.52 THEN 'jpg' WHEN r1 < 0.77 THEN 'png' WHEN r1 < 0.88 THEN 'heic'
                  WHEN r1 < 0.95 THEN 'webp' WHEN r1 < 0.98 THEN 'tiff' ELSE 'gif' END AS file_type,
             r2 < 0.955 AS ok, r3, r4,
             now() - interval '30 days' * power(r5, 1.2) AS ts
        FROM (SELECT g, random() AS r1, random() AS r2, random() AS r3, random() AS r4, random() AS r5
                FROM generate_series(1, {N_EXTRACTIONS}) AS g OFFSET 0) x
      OFFSET 0) s
LEFT JOIN users u ON u.id = md5('user:' || s.k)::uuid::text
ORDER BY s.ts;
"""

_EVENTS_SQL = f"""
SELECT setseed(0.47);

-- funnel events: sessions walk down the funnel and drop off
-- reach: landing 100%, upload 55%, started 45%, completed 40%, paywall 16%, purchase 2%
INSERT INTO image_mvp_events (user_id, session_id, event_type, properties, created_at)
SELECT s.user_id, s.session_id,
       (ARRAY['landing_viewed','upload_selected','analysis_started',
              'analysis_completed','paywall_viewed','purchase_completed'])[st.step],
       CASE st.step
            WHEN 1 THEN jsonb_build_object('path', '/images',
                        'referrer', (ARRAY['google','direct','twitter','reddit','producthunt'])[1 + s.g % 5])
            WHEN 2 THEN jsonb_build_object('file_type', s.file_type, 'size_bytes', s.size_bytes)
            WHEN 3 THEN jsonb_build_object('file_type', s.file_type)
            WHEN 4 THEN jsonb_build_object('file_type', s.file_type, 'duration_ms', s.duration_ms)
            WHEN 5 THEN jsonb_build_object('plan_shown', 'professional', 'trigger', 'trial_exhausted')
            ELSE jsonb_build_object('plan', 'professional', 'amount_cents', 1900, 'credits', 100)
       END,
       s.started + (st.step - 1) * s.gap
FROM (SELECT g,
             'sess_' || substr(md5('sess:' || g), 1, 24) AS session_id,
             CASE WHEN r1 < 0.30 THEN md5('user:' || (1 + floor(r2 * {N_USERS})::int))::uuid::text END AS user_id,
             CASE WHEN r3 < 0.45 THEN 1 WHEN r3 < 0.55 THEN 2 WHEN r3 < 0.60 THEN 3
                  WHEN r3 < 0.84 THEN 4 WHEN r3 < 0.98 THEN 5 ELSE 6 END AS depth,
             (ARRAY['jpg','jpg','png','heic','webp'])[1 + g % 5] AS file_type,
             150000 + (r4 * 9000000)::int AS size_bytes,
             300 + (r4 * 3500)::int AS duration_ms,
             now() - interval '10 minutes' - interval '30 days' * power(r5, 1.2) AS started,
             interval '1 second' * (4 + r4 * 40) AS gap
        FROM (SELECT g, random() AS r1, random() AS r2, random() AS r3, random() AS r4, random() AS r5
                FROM generate_series(1, {N_SESSIONS}) AS g OFFSET 0) x
      OFFSET 0) s
CROSS JOIN LATERAL generate_series(1, s.depth) AS st(step)
ORDER BY 5;
"""

_ACCOUNTS_SQL = f"""
SELECT setseed(0.59);

-- subscriptions for every paying user
INSERT INTO subscriptions (id, user_id, tier, status, current_period_end, created_at)
SELECT 'sub_' || substr(md5('sub:' || id), 1, 24), id, tier,
       CASE WHEN r < 0.90 THEN 'active' WHEN r < 0.95 THEN 'past_due' ELSE 'canceled' END,
       CASE WHEN r < 0.90 THEN now() + interval '30 days' * r2
            WHEN r < 0.95 THEN now() - interval '6 days' * r2
            ELSE now() - interval '60 days' * r2 END,
       created_at + (now() - created_at) * (r3 * 0.25)
FROM (SELECT u.*, random() AS r, random() AS r2, random() AS r3
        FROM users u WHERE tier <> 'free' OFFSET 0) s;

-- free-trial usage, keyed by the sessions above (a quarter from signed-in free users)
INSERT INTO trial_usages (user_id, session_id, email, tier, extraction_count, created_at)
SELECT u.id, s.session_id,
       coalesce(u.email, CASE WHEN s.r3 < 0.2 THEN 'guest' || s.g || '@' ||
                (ARRAY['gmail.com','outlook.com','yahoo.com','icloud.com'])[1 + s.g % 4] END),
       'free',
       CASE WHEN s.r4 < 0.55 THEN 1 WHEN s.r4 < 0.93 THEN 2 ELSE 0 END,
       s.ts
FROM (SELECT g,
             CASE WHEN r1 < 0.25 THEN 1 + floor(r2 * {N_USERS})::int END AS k,
             'sess_' || substr(md5('sess:' || (1 + floor(r2 * {N_SESSIONS})::int)), 1, 24) AS session_id,
             r3, r4,
             now() - interval '30 days' * power(r5, 1.2) AS ts
        FROM (SELECT g, random() AS r1, random() AS r2, random() AS r3, random() AS r4, random() AS r5
                FROM generate_series(1, {N_TRIALS}) AS g OFFSET 0) x
      OFFSET 0) s
LEFT JOIN users u ON u.id = md5('user:' || s.k)::uuid::text AND u.tier = 'free'
ORDER BY s.ts;

-- a credit balance for every user (never negative)
INSERT INTO credit_balances (user_id, balance, updated_at)
SELECT id,
       CASE tier WHEN 'free' THEN floor(r * 3)::int
                 WHEN 'professional' THEN 20 + floor(r * 480)::int
                 ELSE 300 + floor(r * 4700)::int END,
       created_at + (now() - created_at) * r2
FROM (SELECT u.*, random() AS r, random() AS r2 FROM users u OFFSET 0) s;
"""

_SESSION_SETUP = "SET synchronous_commit = off; SET jit = off; SET work_mem = '64MB'"


async def _apply_migrations(conn: asyncpg.Connection) -> list[str]:
    await conn.execute(MIGRATIONS_TABLE_DDL)
    applied = {r["version"] for r in await conn.fetch(f"SELECT version FROM {MIGRATIONS_TABLE}")}
    done: list[str] = []
    for path in migration_files():
        version, name = migration_version(path)
        if version in applied:
            continue
        sql = path.read_text(encoding="utf-8")
        async with conn.transaction():
            await conn.execute(sql)
            await conn.execute(
                f"INSERT INTO {MIGRATIONS_TABLE} (version, name) VALUES ($1, $2)", version, name
            )
        done.append(version)
    return done


async def build_demo_database(admin_dsn: str, dbname: str = "metaextract", *, replace: bool = False) -> str:
    """Create database ``dbname`` through ``admin_dsn`` (a superuser connection to an
    existing database, e.g. ``postgres``), apply the five migrations, fill it with
    generated data and ANALYZE it. Returns the DSN of the new database.

    An existing database of that name is an error (asyncpg.DuplicateDatabaseError)
    unless ``replace=True`` (then it is dropped first, terminating its sessions). If the
    build fails half-way the database is left as it is (build again with replace=True).
    The time taken is kept in ``last_build_seconds``."""
    global last_build_seconds
    t0 = time.monotonic()
    admin = await asyncpg.connect(admin_dsn)
    try:
        if replace:
            await admin.execute(f"DROP DATABASE IF EXISTS {quote_ident(dbname)} WITH (FORCE)")
        await admin.execute(f"CREATE DATABASE {quote_ident(dbname)}")
    finally:
        await admin.close()

    dsn = dsn_with_database(admin_dsn, dbname)
    settings = {"application_name": "images-mvp-migrate"}
    opened = await asyncio.gather(
        asyncpg.connect(dsn, server_settings=settings),
        asyncpg.connect(dsn, server_settings=settings),
        return_exceptions=True,
    )
    failed = [c for c in opened if isinstance(c, BaseException)]
    if failed:
        for c in opened:
            if isinstance(c, asyncpg.Connection):
                await c.close()
        raise failed[0]
    conn, conn2 = opened
    try:
        await asyncio.gather(conn.execute(_SESSION_SETUP), conn2.execute(_SESSION_SETUP))
        await _apply_migrations(conn)
        await conn.execute(_USERS_SQL)

        async def first() -> None:
            await conn.execute(_EXTRACTIONS_SQL)
            # VACUUM too: hint bits and visibility map are set now rather than by an
            # autovacuum waking up in the middle of the demo.
            await conn.execute("VACUUM ANALYZE extraction_analytics")

        async def second() -> None:
            await conn2.execute(_EVENTS_SQL)
            await conn2.execute(_ACCOUNTS_SQL)
            await conn2.execute("VACUUM ANALYZE image_mvp_events")

        errors = [r for r in await asyncio.gather(first(), second(), return_exceptions=True)
                  if isinstance(r, BaseException)]
        if errors:
            raise errors[0]
        await conn.execute(
            "VACUUM ANALYZE users, subscriptions, trial_usages, credit_balances, " + MIGRATIONS_TABLE
        )
    finally:
        await asyncio.gather(conn.close(), conn2.close(), return_exceptions=True)
    last_build_seconds = time.monotonic() - t0
    return dsn


def write_app_dir(target: Path) -> Path:
    """Write the images-mvp app files the checklist refers to into ``target``:
    ``server/db.ts`` (``max: 10`` on line 28), ``server/migrations/00[1-5]_*.sql`` and
    ``shared/schema.ts``. Existing files there are overwritten. Returns ``target``."""
    target = Path(target)
    (target / "server" / "migrations").mkdir(parents=True, exist_ok=True)
    (target / "shared").mkdir(parents=True, exist_ok=True)
    for rel in ("server/db.ts", "shared/schema.ts"):
        shutil.copyfile(APP_TEMPLATE_DIR / rel, target / rel)
    for path in migration_files():
        shutil.copyfile(path, target / "server" / "migrations" / path.name)
    (target / "ops").mkdir(exist_ok=True)
    (target / DEMO_CRONTAB).write_text(CRONTAB_HEADER, encoding="utf-8")
    return target


#: The demo's crontab (relative to the app dir): the demo points --crontab-file here, so the backup
#: schedule is read and installed in the demo's own directory, never the real user's crontab.
DEMO_CRONTAB = "ops/crontab"
CRONTAB_HEADER = """# The images-mvp server's crontab (the demo's stand-in for `crontab -l`; pgpreflight demo reads and
# installs the backup schedule here, never in the real user's crontab).
SHELL=/bin/bash
"""
