import pytest

from tui.config import UsageError, parse_dsn, resolve_target

pytestmark = pytest.mark.unit


def test_uri_with_socket_host_and_port():
    t = resolve_target("postgresql://app@/shop?host=/run/postgresql&port=5433", env={})
    assert (t.host, t.port, t.user, t.database) == ("/run/postgresql", 5433, "app", "shop")
    assert t.display == "postgresql://app@/run/postgresql:5433/shop"


def test_password_never_in_display_or_repr():
    t = resolve_target("postgresql://app:hunter2@db.example.com:6432/shop", env={})
    assert t.password == "hunter2"
    assert "hunter2" not in t.display and "hunter2" not in repr(t)
    assert t.display == "postgresql://app@db.example.com:6432/shop"


def test_keyword_value_dsn():
    t = resolve_target("host=10.0.0.5 port=5434 dbname='my db' user=ops password='a b'", env={})
    assert (t.host, t.port, t.database, t.user, t.password) == ("10.0.0.5", 5434, "my db", "ops", "a b")


def test_percent_encoded_parts():
    t = resolve_target("postgresql://us%40er:p%3Ass@h/d%20b", env={})
    assert (t.user, t.password, t.database) == ("us@er", "p:ss", "d b")


def test_env_fills_gaps_but_dsn_wins():
    t = resolve_target("postgresql://a@h/db", env={"PGPORT": "7000", "PGHOST": "other", "PGDATABASE": "x"})
    assert (t.host, t.port, t.database) == ("h", 7000, "db")


@pytest.mark.parametrize("bad", ["", "just words", "postgresql://u@h:notaport/d", "host=h sslmode=bogus",
                                 "postgresql://u:pw@h/d?nonsense=1"])
def test_bad_dsns_raise_usage_error_without_password(bad):
    with pytest.raises(UsageError) as e:
        resolve_target(bad, env={})
    assert ":pw@" not in str(e.value)


def test_error_text_redacts_password():
    with pytest.raises(UsageError) as e:
        parse_dsn("postgresql://u:topsecret@h/d?nonsense=1")
    assert "topsecret" not in str(e.value)
