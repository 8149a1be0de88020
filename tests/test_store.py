"""The database: opening, migrations, ingest transactions, dedupe and queries."""

from __future__ import annotations

import os
import sqlite3
import stat
import time
from pathlib import Path

import pytest
import sqlite_utils
from hypothesis import given, settings
from hypothesis import strategies as st

from mailbox_processor import pipeline, store
from mailbox_processor.errors import StoreError
from mailbox_processor.models import Classification, Finding, OriginalMessage, Report, Verdict
from mailbox_processor.pipeline import IngestSummary, ingest_batch
from mailbox_processor.sources import RawMessage

Spec = tuple[str, str, str | None]


def make_report(*verdicts: Spec, date: str = "Mon, 2 Jun 2025 10:00:00 +0000",
                error: str | None = None) -> Report:
    """A hand-made report: verdicts are (recipient, classification, reason)."""
    return Report(
        verdicts=tuple(
            Verdict(
                Finding(recipient=r, status="5.1.1" if c == "hard" else "4.2.2",
                        smtp_code="550" if c == "hard" else "452",
                        diagnostic=f"{reason} said the server", remote_mta="mx.example.net"),
                Classification(c), reason, f"rule-{reason}",
            )
            for r, c, reason in verdicts
        ),
        parser="test",
        message_id="<bounce@example.org>",
        from_addr="MAILER-DAEMON@example.org",
        subject="Undelivered Mail",
        date=date,
        original=OriginalMessage(message_id="<orig@example.com>", subject="Newsletter"),
        error=error,
    )


@pytest.fixture
def fake_parse(monkeypatch: pytest.MonkeyPatch) -> dict[bytes, Report]:
    """Make ingest parse through a dict raw->Report; b'CRASH' raises."""
    table: dict[bytes, Report] = {}

    def parse(raw: bytes) -> Report:
        if raw == b"CRASH":
            raise RuntimeError("boom")
        return table.get(raw, Report(verdicts=(), parser=None))

    monkeypatch.setattr(pipeline, "parse_message", parse)
    return table


def raw(data: bytes, name: str = "m.eml") -> RawMessage:
    return RawMessage(source=name, raw=data)


# -- opening ------------------------------------------------------------------------------


def test_open_db_creates_private_wal_database(tmp_db_path: Path) -> None:
    db = store.open_db(tmp_db_path)
    assert stat.S_IMODE(os.stat(tmp_db_path).st_mode) == 0o600
    assert db.journal_mode == "wal"
    assert store.schema_version(db) == 1
    assert {"messages", "bounces", "suppressions", "suppression_history", "raw_messages",
            "checkpoints", "policy", "policy_settings", "schema_version"} <= set(db.table_names())
    assert {"active_suppressions", "bounces_by_domain", "bounces_by_reason",
            "bounces_per_day", "sender_side_problems"} <= set(db.view_names())
    assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == store.WAL_AUTOCHECKPOINT_PAGES
    fks = {(fk.column, fk.other_table) for fk in db.table("bounces").foreign_keys}
    assert fks == {("message_sha256", "messages")}
    db.close()


def test_row_tuple_columns_are_the_tables_columns_in_order(tmp_db_path: Path) -> None:
    """The ingest path writes tuples in these orders: they must name every column."""
    db = store.open_db(tmp_db_path)
    assert tuple(db.table("messages").columns_dict) == store.MESSAGE_COLUMNS
    assert ("id", *store.BOUNCE_COLUMNS) == tuple(db.table("bounces").columns_dict)
    db.close()


def test_open_db_default_and_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(store.DB_ENV, raising=False)
    store.open_db().close()
    assert (tmp_path / "bounces.db").exists()
    monkeypatch.setenv(store.DB_ENV, str(tmp_path / "env.db"))
    store.open_db().close()
    assert (tmp_path / "env.db").exists()


def test_open_db_is_idempotent(tmp_db_path: Path) -> None:
    store.open_db(tmp_db_path).close()
    db = store.open_db(tmp_db_path)
    assert db.execute("SELECT count(*) FROM schema_version").fetchone()[0] == 1
    db.close()


def test_open_db_rejects_a_non_database_without_touching_it(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(b"hello, this is not sqlite\n" * 100)
    with pytest.raises(StoreError, match="is not a mailbox-processor database"):
        store.open_db(path)
    assert path.read_bytes() == b"hello, this is not sqlite\n" * 100


def test_open_db_missing_folder_says_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="does not exist; create it or pass another --db"):
        store.open_db(tmp_path / "nope" / "x.db")


def test_migrate_upgrades_in_place_keeping_data(tmp_db_path: Path) -> None:
    db = store.open_db(tmp_db_path)
    store.set_checkpoint(db, "imap://u@h", "INBOX", 7, 42)
    db.close()

    def v2(d: sqlite_utils.Database) -> None:
        d.table("suppressions").add_column("list_name", str)

    db = sqlite_utils.Database(tmp_db_path)
    assert store.migrate(db, (*store.MIGRATIONS, (2, v2))) == 2
    assert store.get_checkpoint(db, "imap://u@h", "INBOX") == (7, 42)
    assert "list_name" in db.table("suppressions").columns_dict
    with pytest.raises(StoreError, match="newer than this mailbox-processor understands"):
        store.migrate(db)


def test_checkpoints_round_trip(db: sqlite_utils.Database) -> None:
    assert store.get_checkpoint(db, "imap://a@b", "INBOX") == (None, 0)
    store.set_checkpoint(db, "imap://a@b", "INBOX", 100, 5)
    store.set_checkpoint(db, "imap://a@b", "INBOX", 100, 9)
    assert store.get_checkpoint(db, "imap://a@b", "INBOX") == (100, 9)
    assert store.get_checkpoint(db, "imap://a@b", "Other") == (None, 0)


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("<Bob@Example.COM>", "bob@example.com"),
        ("rfc822; Bob@Example.COM", "bob@example.com"),
        ('"Bob Smith" <bob@EXAMPLE.org>', "bob@example.org"),
        ("  alice@example.net. ", "alice@example.net"),
        ("not an address", None),
        ("", None),
        (None, None),
    ],
)
def test_normalise_address(given: str | None, stored: str | None) -> None:
    assert store.normalise_address(given) == stored


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("Thu, 9 Apr 2015 18:05:24 +0900", "2015-04-09 09:05:24"),
        ("2024-05-01", "2024-05-01 00:00:00"),
        ("2024-05-01T10:00:00Z", "2024-05-01 10:00:00"),
        ("garbage", None),
        (None, None),
    ],
)
def test_to_utc(given: str | None, stored: str | None) -> None:
    assert store.to_utc(given) == stored


# -- ingest ------------------------------------------------------------------------------


def test_ingest_records_messages_events_and_suppressions(
    db: sqlite_utils.Database, fake_parse: dict[bytes, Report]
) -> None:
    fake_parse[b"A"] = make_report(("Gone@Example.com", "hard", "userunknown"))
    fake_parse[b"B"] = make_report(("full@example.com", "soft", "mailboxfull"))
    outcomes = ingest_batch(db, [raw(b"A"), raw(b"B"), raw(b"C")])
    assert [o.status for o in outcomes] == ["new", "new", "not_bounce"]
    assert outcomes[0].newly_suppressed == ("gone@example.com",)
    assert outcomes[1].newly_suppressed == ()
    assert store.table_counts(db) == {"messages": 3, "bounces": 2, "suppressions": 1,
                                      "suppression_history": 1, "raw_messages": 3}
    row = db.execute(
        "SELECT recipient, domain, classification, reason, policy_action, smtp_code, "
        "occurred_at, original_message_id FROM bounces ORDER BY id LIMIT 1"
    ).fetchone()
    assert row == ("gone@example.com", "example.com", "hard", "userunknown", "suppress", "550",
                   "2025-06-02 10:00:00", "<orig@example.com>")
    sup = store.get_suppression(db, "gone@example.com")
    assert sup is not None
    assert (sup["state"], sup["reason"], sup["hard_count"], sup["expires_at"]) == (
        "active", "userunknown", 1, None)


def test_ingest_twice_changes_nothing(
    db: sqlite_utils.Database, fake_parse: dict[bytes, Report]
) -> None:
    fake_parse[b"A"] = make_report(("a@example.com", "hard", "userunknown"))
    first = ingest_batch(db, [raw(b"A"), raw(b"A", "copy.eml")])
    assert [o.status for o in first] == ["new", "duplicate"]
    counts = store.table_counts(db)
    again = ingest_batch(db, [raw(b"A")])
    assert [o.status for o in again] == ["duplicate"]
    assert store.table_counts(db) == counts
    assert store.get_suppression(db, "a@example.com")["hard_count"] == 1  # type: ignore[index]


def test_quarantine_never_drops(db: sqlite_utils.Database, fake_parse: dict[bytes, Report]) -> None:
    fake_parse[b"BAD"] = make_report(error="no headers at all")
    unreadable = RawMessage(source="/x/locked.eml", raw=b"", error="/x/locked.eml: cannot read")
    outcomes = ingest_batch(db, [raw(b"CRASH"), raw(b"BAD"), unreadable])
    assert [o.status for o in outcomes] == ["quarantined"] * 3
    assert outcomes[0].error == "parser failed: RuntimeError: boom"
    rows = db.execute("SELECT source, outcome, error FROM messages ORDER BY rowid").fetchall()
    assert rows == [
        ("m.eml", "quarantined", "parser failed: RuntimeError: boom"),
        ("m.eml", "quarantined", "no headers at all"),
        ("/x/locked.eml", "quarantined", "/x/locked.eml: cannot read"),
    ]


def test_batch_is_one_transaction(
    db: sqlite_utils.Database, fake_parse: dict[bytes, Report], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_parse[b"A"] = make_report(("a@example.com", "hard", "userunknown"))
    fake_parse[b"B"] = make_report(("b@example.com", "hard", "userunknown"))
    real = store.save_suppressions

    def failing(d: sqlite_utils.Database, rows: list[dict[str, object]]) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    # Suppressions are written after the batch's messages, raw messages and events.
    monkeypatch.setattr(store, "save_suppressions", failing)
    with pytest.raises(StoreError, match=r"^cannot write to the database \(disk I/O error\): "
                       "nothing from this run was half-written"):
        ingest_batch(db, [raw(b"A"), raw(b"B")], checkpoint=("imap://u@h", "INBOX", 1, 2))
    assert store.table_counts(db) == {"messages": 0, "bounces": 0, "suppressions": 0,
                                      "suppression_history": 0, "raw_messages": 0}
    assert store.get_checkpoint(db, "imap://u@h", "INBOX") == (None, 0)
    monkeypatch.setattr(store, "save_suppressions", real)
    ingest_batch(db, [raw(b"A"), raw(b"B")], checkpoint=("imap://u@h", "INBOX", 1, 2))
    assert store.get_checkpoint(db, "imap://u@h", "INBOX") == (1, 2)
    assert store.table_counts(db)["suppressions"] == 2


def test_writers_join_a_transaction_without_savepoints(tmp_db_path: Path) -> None:
    """Inside a transaction the writers open no SAVEPOINT (its sub-journal is what
    made ingest slow) and a failing one still leaves nothing once the transaction
    rolls back; outside one each writer is its own all-or-nothing transaction."""
    db = store.open_db(tmp_db_path)
    row = {"sha256": "a", "source": "s", "processed_at": "2025-01-01 00:00:00",
           "outcome": "parsed"}
    statements: list[str] = []
    db.conn.set_trace_callback(statements.append)
    with pytest.raises(sqlite3.IntegrityError), store.transaction(db):
        store.insert_messages(db, [row, {**row, "sha256": "b"}])
        store.store_raws(db, [("a", b"x"), ("b", b"y")])
        store.insert_messages(db, [{**row, "sha256": "c"}, row])  # "a" again: fails
    db.conn.set_trace_callback(None)
    assert not [s for s in statements if "SAVEPOINT" in s.upper()]
    assert store.table_counts(db)["messages"] == store.table_counts(db)["raw_messages"] == 0
    # Outside a transaction: the failing call leaves nothing, the good one commits.
    with pytest.raises(sqlite3.IntegrityError):
        store.insert_messages(db, [row, {**row, "sha256": "b"}, row])
    store.insert_messages(db, [row])
    other = sqlite3.connect(tmp_db_path)
    assert other.execute("SELECT sha256 FROM messages").fetchall() == [("a",)]
    other.close()
    db.close()


_SEQUENCE: dict[bytes, Report] = {
    b"s1": make_report(("s@example.com", "soft", "mailboxfull"),
                       date="Mon, 2 Jun 2025 10:00:00 +0000"),
    b"s2": make_report(("s@example.com", "soft", "mailboxfull"),
                       date="Tue, 3 Jun 2025 10:00:00 +0000"),
    b"s3": make_report(("s@example.com", "soft", "mailboxfull"),
                       date="Wed, 4 Jun 2025 10:00:00 +0000"),
    b"h1": make_report(("h@example.com", "hard", "userunknown")),
    b"h2": make_report(("H@example.com", "hard", "hostunknown"),
                       date="Tue, 3 Jun 2025 10:00:00 +0000"),
    b"x1": make_report(("x@example.com", "soft", "mailboxfull")),
    b"x2": make_report(("x@example.com", "hard", "userunknown")),
    b"m": make_report(("manual@example.com", "hard", "userunknown")),
    b"r": make_report(("r1@example.com", "hard", "userunknown"),
                      ("r2@example.com", "soft", "mailboxfull"), (None, "hard", "userunknown")),
    b"n": make_report(),
}
_ORDER = [b"s1", b"h1", b"x1", b"s2", b"m", b"n", b"h2", b"x2", b"s1", b"s3", b"r", b"h1"]


def _seeded_db() -> sqlite_utils.Database:
    """A database with a manual suppression, a bounce suppression its events no longer
    support (released on the next event) and one whose expiry has passed."""
    from mailbox_processor import policy

    db = store.open_db(":memory:")
    with store.transaction(db):
        policy.suppress_address(db, "manual@example.com", actor="ops", now="2025-01-01 00:00:00")
        for address, state, expires in (("x@example.com", "expired", "2025-02-01 00:00:00"),
                                        ("e@example.com", "active", "2025-02-01 00:00:00")):
            store.save_suppression(db, {
                "address": address, "domain": "example.com", "state": state,
                "classification": "soft", "reason": "mailboxfull", "source": "bounce",
                "hard_count": 0, "soft_count": 3, "complaint_count": 0,
                "expires_at": expires, "updated_at": "2025-01-01 00:00:00"})
    return db


def _dump(db: sqlite_utils.Database) -> dict[str, list[tuple[object, ...]]]:
    tables = ("messages", "bounces", "suppressions", "suppression_history")
    dump = {t: db.execute(f"SELECT rowid, * FROM {t} ORDER BY rowid").fetchall() for t in tables}
    # raw_messages.stored_at and checkpoints.updated_at are the wall clock, not "now"
    dump["raw_messages"] = db.execute(
        "SELECT rowid, sha256, raw_zlib, size FROM raw_messages ORDER BY rowid").fetchall()
    dump["checkpoints"] = db.execute(
        "SELECT rowid, mailbox, folder, uidvalidity, last_uid FROM checkpoints").fetchall()
    return dump


@pytest.mark.parametrize("size", [1, 2, 5, len(_ORDER)])
def test_a_batch_decides_message_by_message(size: int) -> None:
    """One batch writes what one batch per message writes: rows, rowids and outcomes.

    The batch is read, decided and written table by table, yet each message's turn
    sees only the events of the messages before it (third soft bounce suppresses,
    a changed reason adds a history row, a released suppression comes back).
    """
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pipeline, "parse_message", lambda raw: _SEQUENCE[raw])
        results = []
        for batch_size in (1, size):
            db = _seeded_db()
            outcomes = []
            for i in range(0, len(_ORDER), batch_size):
                outcomes += ingest_batch(db, [raw(k) for k in _ORDER[i:i + batch_size]],
                                         now="2025-06-10 00:00:00",
                                         checkpoint=("imap://u@h", "INBOX", 1, 7))
            results.append(([(o.status, o.newly_suppressed) for o in outcomes], _dump(db)))
            db.close()
    assert results[0] == results[1]
    newly = dict(zip(_ORDER, (o for _, o in results[0][0]), strict=False))
    assert [s for s, _ in results[0][0]].count("duplicate") == 2
    assert newly[b"s3"] == ("s@example.com",)
    assert newly[b"x2"] == ("x@example.com",)
    assert newly[b"r"] == ("r1@example.com",)
    history = [(r[2], r[4]) for r in results[0][1]["suppression_history"]]
    assert history == [
        ("manual@example.com", "suppressed"), ("e@example.com", "expired"),
        ("h@example.com", "suppressed"), ("x@example.com", "released"),
        ("h@example.com", "suppressed"), ("x@example.com", "suppressed"),
        ("s@example.com", "suppressed"), ("r1@example.com", "suppressed"),
    ]


def test_ingest_statements_per_message_stay_few(
    db: sqlite_utils.Database, fake_parse: dict[bytes, Report]
) -> None:
    """Prepared statements per table and batch: no schema reads, no re-reads per row."""
    n = 40
    for i in range(n):
        fake_parse[b"%d" % i] = make_report((f"u{i}@example.com", "hard", "userunknown"))
    statements: list[str] = []
    db.conn.set_trace_callback(statements.append)
    try:
        ingest_batch(db, [raw(b"%d" % i) for i in range(n)], now="2025-06-10 00:00:00",
                     checkpoint=("imap://u@h", "INBOX", 1, n))
    finally:
        db.conn.set_trace_callback(None)
    assert not [s for s in statements if "sqlite_master" in s or s.startswith("PRAGMA")]
    # messages, raw_messages, bounces, suppressions, history: one row each per message
    assert len(statements) <= 5 * n + 30
    assert store.table_counts(db) == {"messages": n, "bounces": n, "suppressions": n,
                                      "suppression_history": n, "raw_messages": n}


def test_raw_messages_are_compressed_and_optional(
    db: sqlite_utils.Database, fake_parse: dict[bytes, Report]
) -> None:
    big = b"Subject: x\n\n" + b"bounce " * 5000
    ingest_batch(db, [raw(big)])
    ingest_batch(db, [raw(b"other")], keep_raw=False)
    stored = list(store.iter_raw_messages(db))
    assert [r[1] for r in stored] == [big]
    size = db.execute("SELECT length(raw_zlib), size FROM raw_messages").fetchone()
    assert size[0] < size[1] // 10


def test_prune_raw_respects_retention(
    db: sqlite_utils.Database, fake_parse: dict[bytes, Report]
) -> None:
    ingest_batch(db, [raw(b"old")])
    db.execute("UPDATE raw_messages SET stored_at = '2000-01-01 00:00:00'")
    ingest_batch(db, [raw(b"new")])  # every batch prunes past the retention
    assert [r[1] for r in store.iter_raw_messages(db)] == [b"new"]
    assert store.prune_raw(db, 0, now="2999-01-01 00:00:00") == 1
    assert list(store.iter_raw_messages(db)) == []


def test_summary_line(db: sqlite_utils.Database, fake_parse: dict[bytes, Report]) -> None:
    fake_parse[b"A"] = make_report(("a@example.com", "hard", "userunknown"),
                                   ("b@example.com", "soft", "mailboxfull"))
    summary = IngestSummary().add(ingest_batch(db, [raw(b"A"), raw(b"A"), raw(b"CRASH")]))
    assert str(summary) == (
        "3 messages (1 new, 1 duplicates, 0 not bounces, 1 quarantined); "
        "2 verdicts (hard 1, soft 1); 1 newly suppressed"
    )
    assert summary.as_dict()["by_classification"] == {"hard": 1, "soft": 1}


# -- queries ------------------------------------------------------------------------------


def test_check_addresses_is_fast_and_ordered(
    db: sqlite_utils.Database, fake_parse: dict[bytes, Report]
) -> None:
    fake_parse[b"A"] = make_report(("x5@example.com", "hard", "userunknown"),
                                   ("x99999@example.com", "hard", "userunknown"))
    ingest_batch(db, [raw(b"A")])
    addresses = [f"x{i}@Example.com" for i in range(100_000)]
    start = time.perf_counter()
    hits = list(store.check_addresses(db, reversed(addresses)))
    assert time.perf_counter() - start < 5
    assert [h["address"] for h in hits] == ["x99999@example.com", "x5@example.com"]
    assert not db.conn.in_transaction


def test_list_filters(db: sqlite_utils.Database, fake_parse: dict[bytes, Report]) -> None:
    fake_parse[b"A"] = make_report(("a@one.example", "hard", "userunknown"),
                                   ("b@two.example", "hard", "hostunknown"))
    ingest_batch(db, [raw(b"A")])
    assert [r["address"] for r in store.list_suppressions(db, domain="two.example")] == [
        "b@two.example"]
    assert [r["address"] for r in store.list_suppressions(db, reason="userunknown")] == [
        "a@one.example"]
    assert list(store.list_suppressions(db, since="2030-01-01")) == []
    events = list(store.list_bounces(db, type_="hard", limit=1))
    assert len(events) == 1
    assert events[0]["diagnostic"].endswith("said the server")


def test_purge_keeps_active_suppressions(
    db: sqlite_utils.Database, fake_parse: dict[bytes, Report]
) -> None:
    fake_parse[b"A"] = make_report(("hard@example.com", "hard", "userunknown"),
                                   ("soft@example.com", "soft", "mailboxfull"),
                                   date="Mon, 2 Jun 2020 10:00:00 +0000")
    ingest_batch(db, [raw(b"A")])
    with db.atomic():
        counts = store.purge_before(db, "2021-01-01")
    assert counts["bounces"] == 1
    remaining = db.execute("SELECT recipient FROM bounces").fetchall()
    assert remaining == [("hard@example.com",)]
    assert store.table_counts(db)["messages"] == 1


def test_schema_sql_lists_tables_and_views(db: sqlite_utils.Database) -> None:
    sql = store.schema_sql(db)
    assert "CREATE TABLE [suppressions]" in sql or 'CREATE TABLE "suppressions"' in sql
    assert "CREATE VIEW \"active_suppressions\"" in sql


def test_ensure_db_shape_is_idempotent(db: sqlite_utils.Database) -> None:
    before = store.schema_sql(db)
    store.ensure_db_shape(db)
    store.ensure_db_shape(db)
    assert store.schema_sql(db) == before




# -- properties ---------------------------------------------------------------------------

_SPECS: dict[bytes, Report] = {
    b"h": make_report(("h@example.com", "hard", "userunknown")),
    b"s1": make_report(("s@example.com", "soft", "mailboxfull"),
                       date="Mon, 2 Jun 2025 10:00:00 +0000"),
    b"s2": make_report(("s@example.com", "soft", "mailboxfull"),
                       date="Tue, 3 Jun 2025 10:00:00 +0000"),
    b"s3": make_report(("s@example.com", "soft", "mailboxfull"),
                       date="Wed, 4 Jun 2025 10:00:00 +0000"),
    b"a": make_report(("a@example.com", "soft", "authfailure")),
    b"n": make_report(),
}


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from(sorted(_SPECS)), min_size=1, max_size=12),
       st.integers(min_value=1, max_value=5))
def test_any_order_and_repetition_gives_the_same_database(keys: list[bytes], size: int) -> None:
    """Dedupe + recompute-from-events: final state depends only on the set of messages."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pipeline, "parse_message", lambda raw: _SPECS[raw])
        results = []
        for order in (keys, list(reversed(keys)), sorted(set(keys))):
            db = store.open_db(":memory:")
            for i in range(0, len(order), size):
                ingest_batch(db, [raw(k) for k in order[i:i + size]],
                             now="2025-06-10 00:00:00")
            results.append((
                store.table_counts(db)["bounces"],
                sorted(tuple(r.values()) for r in db.query(
                    "SELECT address, state, hard_count, soft_count, expires_at "
                    "FROM suppressions")),
            ))
            db.close()
    assert results[0] == results[1] == results[2]
    suppressed = {r[0] for r in results[0][1]}
    assert ("h@example.com" in suppressed) == (b"h" in keys)
    assert ("s@example.com" in suppressed) == ({b"s1", b"s2", b"s3"} <= set(keys))
    assert "a@example.com" not in suppressed


def test_imap_origin_is_recorded(
    db: sqlite_utils.Database, fake_parse: dict[bytes, Report]
) -> None:
    msg = RawMessage(source="imap://bounces@imap.example.org/INBOX/Bounces;UID=42", raw=b"I",
                     folder="INBOX/Bounces", uid=42, uidvalidity=7)
    ingest_batch(db, [msg])
    assert db.execute("SELECT mailbox, folder, uidvalidity, uid FROM messages").fetchone() == (
        "imap://bounces@imap.example.org", "INBOX/Bounces", 7, 42)


def test_new_database_opened_by_several_processes_at_once(tmp_path: Path) -> None:
    """Polls of different mailboxes may create the same new database together."""
    import subprocess
    import sys

    for attempt in range(3):
        path = tmp_path / f"race-{attempt}.db"
        code = f"from mailbox_processor.store import open_db; open_db({str(path)!r}).close()"
        procs = [
            subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True)
            for _ in range(4)
        ]
        errors = [p.communicate()[1] for p in procs]
        assert [p.returncode for p in procs] == [0, 0, 0, 0], errors
        db = store.open_db(path)
        assert db.table("suppressions").exists()
        assert db.execute("SELECT count(*) FROM schema_version").fetchone()[0] >= 1


def _plain_to_utc(value: str | None) -> str | None:
    """store.to_utc without its fast path (the oracle)."""
    return store._plain_utc(value.strip()) if value else None


def test_to_utc_fast_path_equals_the_plain_one() -> None:
    """The regex reading of the usual Date shape gives what email.utils gives: on every
    date of the samples' reports, and on generated dates, valid or not."""
    import random

    from mailbox_processor.pipeline import _safe_parse
    from tests.strategies import enough, sample_paths

    dates: set[str] = set()
    for path in sample_paths():
        report, _ = _safe_parse(path.read_bytes())
        if report is not None:
            dates.update(d for d in [report.date, *(v.finding.date for v in report.verdicts)]
                         if d)
    rng = random.Random(5)
    days = ["", "Mon, ", "Sun, ", "Xyz, "]
    months = ["Jan", "Feb", "Jun", "Dec", "Foo"]
    for _ in range(5000):
        dates.add(
            f"{rng.choice(days)}{rng.choice([0, 1, 9, 28, 29, 30, 31, 32])} "
            f"{rng.choice(months)} {rng.choice([1969, 1970, 2000, 2024, 9999, 99])} "
            f"{rng.choice([0, 9, 23, 24]):02d}:{rng.choice([0, 59, 60]):02d}:"
            f"{rng.choice([0, 59, 60, 61]):02d} {rng.choice('+-')}"
            f"{rng.choice([0, 1, 9, 13, 14, 23, 24, 99]):02d}{rng.choice([0, 30, 59, 60]):02d}"
            f"{rng.choice(['', ' (UTC)', ' (CEST)', ' (+09:00)', ' (x) (y)', ' UTC'])}"
        )
    fast = sum(1 for d in dates if store._RFC5322_DATE.match(d.strip()))
    assert fast >= enough(2000, 1600)  # (about 1,700 of them are generated)
    for d in sorted(dates):
        assert store.to_utc(d) == _plain_to_utc(d), d


def test_events_of_narrowed_columns_are_the_full_rows_projected(tmp_path: Path) -> None:
    """The policy's narrow read of events gives the same rows, in the same order, as the
    full one, cut to the columns it names (plus ``processed_at``)."""
    from mailbox_processor.policy import EVENT_COLUMNS
    from mailbox_processor.sources.files import iter_paths
    from tests.strategies import sample_paths

    db = store.open_db(str(tmp_path / "b.db"))
    ingest_batch(db, list(iter_paths(sample_paths())))
    addresses = store.all_event_addresses(db)
    full = store.events_of(db, addresses)
    narrow = store.events_of(db, addresses, EVENT_COLUMNS)
    keys = (*EVENT_COLUMNS, "processed_at")
    assert sum(map(len, full.values())) >= 20
    assert narrow == {a: [{k: row[k] for k in keys} for row in rows]
                      for a, rows in full.items()}
    assert store.events_of(db, addresses, EVENT_COLUMNS, processed_at=False) == {
        a: [{k: row[k] for k in EVENT_COLUMNS} for row in rows] for a, rows in full.items()}
