"""The SQLite suppression database: schema, migrations and every query.

The database is the product's public interface: applications check it before sending,
people query it with SQL, the CLI reads and edits it. Names are chosen for people
writing SQL (see the README's "Database" section for every table and column).

Conventions:

- Times are UTC text ``YYYY-MM-DD HH:MM:SS`` (what SQLite's ``datetime('now')``
  returns), so they sort and compare as strings.
- Addresses pass through :func:`normalise_address` before they are written or looked
  up: the whole address is lowercased (the engine's rule, see that function).
- Writes happen inside transactions owned by the caller (:func:`transaction`, one
  per batch); the writers here join them without a savepoint (see :func:`_writing`)
  and commit on their own only when called outside one.
- The ingest path writes with plain prepared SQL and ``executemany`` (one statement
  per table and batch, see :func:`insert_message_rows`; rows as tuples in column
  order), not sqlite-utils' ``insert``/``upsert``, which re-read the schema on every
  call.
"""

from __future__ import annotations

import contextlib
import email.utils
import os
import re
import sqlite3
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

import sqlite_utils

from mailbox_processor.errors import StoreError
from mailbox_processor.text import normalise_address as _engine_normalise

#: Where the database lives when neither ``--db`` nor the variable says otherwise.
DEFAULT_DB = "bounces.db"
#: The environment variable that overrides :data:`DEFAULT_DB`.
DB_ENV = "MAILBOX_PROCESSOR_DB"
#: Milliseconds a reader or writer waits for a lock before giving up.
BUSY_TIMEOUT_MS = 10_000

#: SQLite's page cache per connection, in KiB (its default is 2 MB). An ingest adds
#: to five B-trees keyed by random sha256 values and to six ``bounces`` indexes: with
#: 2 MB their pages kept being dropped and read back, about 9 us of CPU per message.
CACHE_KIB = 16_384

#: WAL pages after which a commit also checkpoints (copies the WAL back into the
#: database file); SQLite's default is 1,000. One ingest batch of 500 messages writes
#: 700 to 2,000+ pages (the random-keyed sha256 and address indexes dirty pages all
#: over them), so with the default every commit was followed by a checkpoint that
#: copied all its pages again. With 10,000 a page rewritten by several batches is
#: copied once: about 10 us of CPU less per ingested message. The bounds: the WAL
#: file grows to about 10,000 pages (40 MB at 4 KB pages, plus one batch) before a
#: commit checkpoints it; the last connection to close checkpoints it and deletes
#: it. Readers never wait for it (the checkpoints stay PASSIVE, as before) and
#: durability is unchanged: a commit is in the WAL, synced as before.
WAL_AUTOCHECKPOINT_PAGES = 10_000

TIME_FORMAT = "%Y-%m-%d %H:%M:%S"

#: Suppression states (``suppressions.state``).
ACTIVE, EXPIRED, REMOVED = "active", "expired", "removed"

#: Values bound per ``IN (...)`` query (below SQLite's historical limit of 999).
IN_CHUNK = 500

_T = TypeVar("_T")


# -- small helpers ---------------------------------------------------------------------


def now_utc() -> str:
    """Return the current UTC time as ``YYYY-MM-DD HH:MM:SS``."""
    return datetime.now(UTC).strftime(TIME_FORMAT)


def shift(when: str, days: float) -> str:
    """Return ``when`` (a stored time) moved by ``days`` (negative goes back)."""
    return (datetime.strptime(when[:19], TIME_FORMAT) + timedelta(days=days)).strftime(
        TIME_FORMAT
    )


def to_utc(value: str | None) -> str | None:
    """Convert an RFC 5322 date or an ISO date to stored UTC text; ``None`` when unreadable.

    >>> to_utc("Thu, 9 Apr 2015 18:05:24 +0900")
    '2015-04-09 09:05:24'
    >>> to_utc("2024-05-01")
    '2024-05-01 00:00:00'
    """
    if not value:
        return None
    text = value.strip()
    m = _RFC5322_DATE.match(text)
    if m is not None:
        fast = _fast_utc(m)
        if fast is not None:
            return fast
    return _plain_utc(text)


def _plain_utc(text: str) -> str | None:
    """:func:`to_utc` of stripped ``text`` through ``email.utils`` (or ISO 8601): every
    shape the fast path leaves, and the oracle its test compares it with."""
    parsed: datetime | None = None
    try:
        parsed = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None
    if parsed is None:
        return None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    if not 1970 <= parsed.year <= 9999:
        return None
    return parsed.strftime(TIME_FORMAT)


#: The usual shape of a Date header, ``Thu, 9 Apr 2015 18:05:24 +0900``, optionally
#: with a zone comment: :func:`to_utc` reads it without ``email.utils`` (which takes
#: about 5 us, twice per stored verdict). Anything else takes the plain path.
_RFC5322_DATE = re.compile(
    r"(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), )?(\d{1,2}) "
    r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) (\d{4}) "
    r"(\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)(?: \([A-Za-z0-9 +:-]*\))?\Z",
    re.ASCII,
)
_MONTHS = {m: i for i, m in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)}


def _fast_utc(m: re.Match[str]) -> str | None:
    """:func:`to_utc` of a :data:`_RFC5322_DATE` match; ``None``: use the plain path."""
    day, month, year, hh, mm, ss, sign, zh, zm = m.groups()
    if int(zh) >= 24 or int(zm) >= 60:
        return None
    try:
        local = datetime(int(year), _MONTHS[month], int(day), int(hh), int(mm), int(ss))
        # timedelta(days, seconds): keyword arguments cost it five times as much.
        offset = timedelta(0, int(zh) * 3600 + int(zm) * 60)
        parsed = local - offset if sign == "+" else local + offset
    except (ValueError, OverflowError):
        return None
    if not 1970 <= parsed.year <= 9999:
        return None
    # With whole seconds and a four-digit year, isoformat(" ") is the TIME_FORMAT text,
    # at a fifth of strftime's cost (twice per stored verdict, in the parser processes).
    return parsed.isoformat(" ")


def normalise_address(value: str | None) -> str | None:
    """Return the address as stored and compared: unwrapped, the whole address lowercased.

    ``<Bob@Example.COM>``, ``rfc822; Bob@Example.COM`` and ``"Bob" <Bob@example.com>``
    all give ``bob@example.com``. One rule for the whole product: this is the engine's
    :func:`mailbox_processor.text.normalise_address` (RFC 5321 section 2.4 allows a
    case-sensitive local part, but no large mail system uses one, and the bounce of
    ``Bob@x`` must suppress ``bob@x``). ``None`` when there is no address.
    """
    address = _engine_normalise(value)
    if address is None or " " in address or address.startswith("@"):
        return None
    return address


def address_domain(address: str | None) -> str | None:
    """Return the lowercased domain of an address (``None`` without one)."""
    if not address or "@" not in address:
        return None
    return address.rpartition("@")[2].lower()


# -- opening and migrating -------------------------------------------------------------


def resolve_db_path(path: str | os.PathLike[str] | None = None) -> Path:
    """Return the database path: ``path``, else ``$MAILBOX_PROCESSOR_DB``, else ``./bounces.db``."""
    if path is not None and str(path) != "":
        return Path(path)
    return Path(os.environ.get(DB_ENV) or DEFAULT_DB)


def open_db(path: str | os.PathLike[str] | None = None) -> sqlite_utils.Database:
    """Open (creating and migrating when needed) the suppression database.

    A new file is created with mode 0600. The connection uses WAL mode and a busy
    timeout, so ``list`` and ``check`` work while a poll is writing, and enforces
    foreign keys. Raises :class:`StoreError` with a fix-it message when the file
    cannot be opened or is not a SQLite database.
    """
    target = resolve_db_path(path)
    if str(target) == ":memory:":
        db = sqlite_utils.Database(memory=True)
    else:
        if target.is_dir():
            raise StoreError(f"database {target} is a directory: pass a file path to --db")
        if not target.parent.exists():
            raise StoreError(
                f"cannot create database {target}: folder {target.parent} does not exist; "
                "create it or pass another --db"
            )
        if not target.exists():
            try:
                fd = os.open(target, os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o600)
                os.close(fd)
            except FileExistsError:
                pass
            except OSError as exc:
                raise StoreError(
                    f"cannot create database {target}: {exc.strerror or exc}; "
                    "pass a writable path with --db"
                ) from None
        try:
            conn = sqlite3.connect(str(target), timeout=BUSY_TIMEOUT_MS / 1000)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open database {target}: {exc}; check --db") from None
        db = sqlite_utils.Database(conn)
    try:
        db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        db.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
        db.execute("PRAGMA foreign_keys = ON")
        if not db.memory:
            _enable_wal(db)
            db.execute(f"PRAGMA wal_autocheckpoint = {WAL_AUTOCHECKPOINT_PAGES}")
        # Several processes may open a new database at once (polls of different
        # mailboxes sharing one file): create and migrate under the write lock, one
        # after the other; the later ones then find the work done.
        if _needs_setup(db):
            with transaction(db):
                migrate(db)
                ensure_db_shape(db)
    except sqlite3.DatabaseError as exc:
        db.close()
        if "not a database" in str(exc) or "malformed" in str(exc):
            raise StoreError(
                f"{target} is not a mailbox-processor database ({exc}): pass another --db"
            ) from None
        raise StoreError(f"cannot open database {target}: {exc}") from None
    return db


def _needs_setup(db: sqlite_utils.Database) -> bool:
    """True unless the schema is current and every view exists (read-only check).

    Readers (``check``, ``list``) must not wait for the write lock that a running
    ``poll`` holds, so the lock is only taken when there is work to do.
    """
    if not db.table("schema_version").exists():
        return True
    latest = max((v for v, _ in MIGRATIONS), default=0)
    if schema_version(db) < latest:
        return True
    views = set(db.view_names())
    return any(name not in views for name in VIEWS)


def _enable_wal(db: sqlite_utils.Database) -> None:
    """Switch to WAL, retrying while another process holds the file (first open)."""
    if db.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal":
        return
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            db.enable_wal()
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _create_v1(db: sqlite_utils.Database) -> None:
    """Version 1: the whole first schema."""
    db.table("messages").create(
        {
            "sha256": str,
            "source": str,
            "mailbox": str,
            "folder": str,
            "uidvalidity": int,
            "uid": int,
            "mbox_index": int,
            "message_id": str,
            "from_addr": str,
            "subject": str,
            "date": str,
            "size": int,
            "processed_at": str,
            "outcome": str,
            "parser": str,
            "error": str,
        },
        pk="sha256",
        not_null={"source", "processed_at", "outcome"},
        if_not_exists=True,
    )
    db.table("bounces").create(
        {
            "id": int,
            "message_sha256": str,
            "recipient": str,
            "domain": str,
            "classification": str,
            "reason": str,
            "policy_action": str,
            "rule_id": str,
            "action": str,
            "status": str,
            "smtp_code": str,
            "diagnostic": str,
            "remote_mta": str,
            "reporting_mta": str,
            "original_message_id": str,
            "original_subject": str,
            "occurred_at": str,
        },
        pk="id",
        foreign_keys=[("message_sha256", "messages", "sha256")],
        not_null={"message_sha256", "classification", "occurred_at"},
        if_not_exists=True,
    )
    db.table("suppressions").create(
        {
            "address": str,
            "domain": str,
            "state": str,
            "classification": str,
            "reason": str,
            "diagnostic": str,
            "first_seen": str,
            "last_seen": str,
            "hard_count": int,
            "soft_count": int,
            "complaint_count": int,
            "suppressed_at": str,
            "expires_at": str,
            "removed_at": str,
            "source": str,
            "note": str,
            "updated_at": str,
        },
        pk="address",
        not_null={"state", "source"},
        defaults={"hard_count": 0, "soft_count": 0, "complaint_count": 0},
        if_not_exists=True,
    )
    db.table("suppression_history").create(
        {
            "id": int,
            "address": str,
            "at": str,
            "event": str,
            "state": str,
            "source": str,
            "classification": str,
            "reason": str,
            "actor": str,
            "note": str,
        },
        pk="id",
        not_null={"address", "at", "event"},
        if_not_exists=True,
    )
    db.table("raw_messages").create(
        {"sha256": str, "raw_zlib": bytes, "size": int, "stored_at": str},
        pk="sha256",
        foreign_keys=[("sha256", "messages", "sha256")],
        if_not_exists=True,
    )
    db.table("checkpoints").create(
        {"mailbox": str, "folder": str, "uidvalidity": int, "last_uid": int, "updated_at": str},
        pk=("mailbox", "folder"),
        if_not_exists=True,
    )
    db.table("policy").create(
        {"reason": str, "action": str, "note": str}, pk="reason", if_not_exists=True
    )
    db.table("policy_settings").create(
        {"name": str, "value": int, "note": str}, pk="name", if_not_exists=True
    )
    # Seed the policy defaults (kept if a user already changed them).
    from mailbox_processor.policy import DEFAULT_ACTIONS, DEFAULT_SETTINGS

    db.table("policy").insert_all(
        [{"reason": r, "action": a.value, "note": "default"} for r, a in DEFAULT_ACTIONS.items()],
        ignore=True,
    )
    db.table("policy_settings").insert_all(
        [{"name": n, "value": v, "note": note} for n, (v, note) in DEFAULT_SETTINGS.items()],
        ignore=True,
    )


Migration = tuple[int, Callable[[sqlite_utils.Database], None]]

#: Ordered migrations: (version, function). Append; never edit a released one.
MIGRATIONS: tuple[Migration, ...] = ((1, _create_v1),)


def schema_version(db: sqlite_utils.Database) -> int:
    """Return the schema version of ``db`` (0 for an empty database)."""
    if not db.table("schema_version").exists():
        return 0
    row = db.execute("SELECT max(version) FROM schema_version").fetchone()
    return int(row[0] or 0)


def migrate(db: sqlite_utils.Database, migrations: Sequence[Migration] = MIGRATIONS) -> int:
    """Upgrade ``db`` in place to the latest version; return the version reached.

    Each migration runs in its own transaction together with its ``schema_version``
    row, so an interrupted upgrade leaves the previous version intact.
    """
    if not db.table("schema_version").exists():
        db.table("schema_version").create(
            {"version": int, "applied_at": str}, pk="version", if_not_exists=True
        )
    current = schema_version(db)
    latest = max((v for v, _ in migrations), default=0)
    if current > latest:
        raise StoreError(
            f"database schema version {current} is newer than this mailbox-processor "
            f"understands ({latest}): upgrade mailbox-processor"
        )
    for version, step in migrations:
        if version <= current:
            continue
        with db.atomic():
            step(db)
            db.table("schema_version").insert({"version": version, "applied_at": now_utc()})
        current = version
    return current


#: Indexes the CLI's filters need: (table, columns).
INDEXES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("bounces", ("message_sha256",)),
    ("bounces", ("recipient", "occurred_at")),
    ("bounces", ("domain",)),
    ("bounces", ("reason",)),
    ("bounces", ("classification",)),
    ("bounces", ("occurred_at",)),
    ("messages", ("processed_at",)),
    ("messages", ("message_id",)),
    ("suppressions", ("state", "expires_at")),
    ("suppressions", ("domain",)),
    ("suppressions", ("last_seen",)),
    ("suppression_history", ("address", "at")),
    ("raw_messages", ("stored_at",)),
)

#: Views for everyday questions: name -> SQL.
VIEWS: dict[str, str] = {
    "active_suppressions": """
        SELECT * FROM suppressions
        WHERE state = 'active'
          AND (expires_at IS NULL OR expires_at > datetime('now'))""",
    "bounces_by_domain": """
        SELECT domain, classification, count(*) AS events,
               count(DISTINCT recipient) AS recipients, max(occurred_at) AS last_seen
        FROM bounces GROUP BY domain, classification""",
    "bounces_by_reason": """
        SELECT classification, reason, count(*) AS events,
               count(DISTINCT recipient) AS recipients, max(occurred_at) AS last_seen
        FROM bounces GROUP BY classification, reason""",
    "bounces_per_day": """
        SELECT date(occurred_at) AS day, classification, count(*) AS events
        FROM bounces GROUP BY day, classification""",
    "sender_side_problems": """
        SELECT domain, reason, count(*) AS events, max(occurred_at) AS last_seen,
               (SELECT b2.diagnostic FROM bounces b2
                WHERE b2.domain IS b.domain AND b2.reason IS b.reason
                  AND b2.policy_action = 'sender_side'
                ORDER BY b2.occurred_at DESC LIMIT 1) AS last_diagnostic
        FROM bounces b WHERE policy_action = 'sender_side'
        GROUP BY domain, reason""",
}


def ensure_db_shape(db: sqlite_utils.Database) -> None:
    """Create missing indexes and views (idempotent; run after every write command).

    Foreign keys are declared when the tables are created (see :data:`MIGRATIONS`).
    """
    for table, columns in INDEXES:
        if db.table(table).exists():
            db.table(table).create_index(list(columns), if_not_exists=True, find_unique_name=False)
    for name, sql in VIEWS.items():
        if name not in db.view_names():
            db.create_view(name, sql.strip(), ignore=True)


def schema_sql(db: sqlite_utils.Database) -> str:
    """Return the ``CREATE`` statements of every table, index and view."""
    rows = db.execute(
        "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' "
        "ORDER BY CASE type WHEN 'table' THEN 0 WHEN 'index' THEN 1 ELSE 2 END, name"
    ).fetchall()
    return "\n".join(f"{r[0]};" for r in rows) + "\n"


@contextlib.contextmanager
def transaction(db: sqlite_utils.Database) -> Iterator[sqlite_utils.Database]:
    """Run the block as one write transaction (``BEGIN IMMEDIATE``), all or nothing.

    Taking the write lock up front makes a second writer (a ``scan`` during a
    ``poll``) wait for the busy timeout instead of failing on a lock upgrade. Inside
    an open transaction this is a savepoint. A failing write (disk full, locked past
    the busy timeout) rolls everything back and raises :class:`StoreError`.
    """
    if db.conn.in_transaction:
        with db.atomic():
            yield db
        return
    try:
        db.conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        raise StoreError(_write_failed(db, exc)) from exc
    try:
        yield db
    except BaseException as exc:
        db.rollback()
        if isinstance(exc, sqlite3.OperationalError):
            raise StoreError(_write_failed(db, exc)) from exc
        raise
    else:
        try:
            db.conn.execute("COMMIT")
        except BaseException as exc:
            db.rollback()
            if isinstance(exc, sqlite3.OperationalError):
                raise StoreError(_write_failed(db, exc)) from exc
            raise


@contextlib.contextmanager
def _writing(db: sqlite_utils.Database) -> Iterator[None]:
    """Run a writer's statements in the caller's transaction as they are, or, outside
    one, in a transaction of their own (``db.atomic()``).

    Inside a transaction this opens no SAVEPOINT (``db.atomic()`` would): while one is
    open SQLite copies every page a statement first changes into a sub-journal (a
    temporary file past 64 KB) to be able to roll back to it, and an ingest batch
    changes pages all over the random-keyed sha256 and address indexes; with the
    foreign-key check of ``raw_messages`` that cost about 10 us per message. Nothing
    rolls back to such a savepoint: a failed write fails the caller's whole
    transaction (:func:`transaction` rolls it back), and SQLite undoes a failed
    statement's own changes in any case.
    """
    if db.conn.in_transaction:
        yield
    else:
        with db.atomic():
            yield


def _write_failed(db: sqlite_utils.Database, exc: Exception) -> str:
    name = "the database"
    with contextlib.suppress(Exception):
        name = db.conn.execute("PRAGMA database_list").fetchone()[2] or "the database"
    return (
        f"cannot write to {name} ({exc}): nothing from this run was half-written; check "
        "disk space, permissions and that no other process holds the database"
    )


# -- checkpoints -----------------------------------------------------------------------


def get_checkpoint(db: sqlite_utils.Database, mailbox: str, folder: str) -> tuple[int | None, int]:
    """Return ``(uidvalidity, last_uid)`` for a folder, ``(None, 0)`` when none is stored."""
    row = db.execute(
        "SELECT uidvalidity, last_uid FROM checkpoints WHERE mailbox = ? AND folder = ?",
        [mailbox, folder],
    ).fetchone()
    if row is None:
        return (None, 0)
    return (row[0], int(row[1] or 0))


def set_checkpoint(
    db: sqlite_utils.Database, mailbox: str, folder: str, uidvalidity: int, last_uid: int
) -> None:
    """Store the checkpoint of a folder (joins the caller's transaction, if any)."""
    _upsert(
        db,
        "checkpoints",
        ("mailbox", "folder"),
        [
            {
                "mailbox": mailbox,
                "folder": folder,
                "uidvalidity": uidvalidity,
                "last_uid": last_uid,
                "updated_at": now_utc(),
            }
        ],
    )


# -- policy tables ---------------------------------------------------------------------


def policy_actions(db: sqlite_utils.Database) -> dict[str, str]:
    """Return the ``policy`` table as ``{reason: action}``."""
    return {r["reason"]: r["action"] for r in db.query("SELECT reason, action FROM policy")}


def policy_settings(db: sqlite_utils.Database) -> dict[str, int]:
    """Return the ``policy_settings`` table as ``{name: value}``."""
    return {
        r["name"]: int(r["value"]) for r in db.query("SELECT name, value FROM policy_settings")
    }


def policy_rows(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    """Return the policy table and the settings as rows (for ``policy`` output)."""
    rows = [
        {"name": r["reason"], "kind": "reason", "value": r["action"], "note": r["note"]}
        for r in db.query("SELECT * FROM policy ORDER BY action, reason")
    ]
    rows += [
        {"name": r["name"], "kind": "setting", "value": r["value"], "note": r["note"]}
        for r in db.query("SELECT * FROM policy_settings ORDER BY name")
    ]
    return rows


def set_policy_action(db: sqlite_utils.Database, reason: str, action: str, note: str) -> None:
    """Set the action for one reason word."""
    db.table("policy").upsert({"reason": reason, "action": action, "note": note}, pk="reason")


def set_policy_setting(db: sqlite_utils.Database, name: str, value: int, note: str) -> None:
    """Set one numeric policy setting."""
    db.table("policy_settings").upsert({"name": name, "value": value, "note": note}, pk="name")


# -- plain SQL writers (the ingest path) ----------------------------------------------


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _columns(rows: Sequence[Mapping[str, Any]]) -> tuple[str, ...]:
    """Return the union of the rows' keys, in first-seen order (missing values: NULL)."""
    if len(rows) == 1:
        return tuple(rows[0])
    return tuple(dict.fromkeys(k for row in rows for k in row))


@lru_cache(maxsize=64)
def _insert_sql(table: str, columns: tuple[str, ...], verb: str = "INSERT") -> str:
    cols = ", ".join(_quote(c) for c in columns)
    marks = ", ".join("?" for _ in columns)
    return f"{verb} INTO {_quote(table)} ({cols}) VALUES ({marks})"


@lru_cache(maxsize=64)
def _upsert_sql(table: str, columns: tuple[str, ...], pk: tuple[str, ...]) -> str:
    updates = ", ".join(f"{_quote(c)} = excluded.{_quote(c)}" for c in columns if c not in pk)
    conflict = ", ".join(_quote(c) for c in pk)
    action = f"DO UPDATE SET {updates}" if updates else "DO NOTHING"
    return f"{_insert_sql(table, columns)} ON CONFLICT ({conflict}) {action}"


def _insert(
    db: sqlite_utils.Database, table: str, rows: Sequence[Mapping[str, Any]],
    verb: str = "INSERT",
) -> None:
    """Insert dict rows with one prepared statement (``executemany``).

    Like sqlite-utils' writers, this joins the caller's transaction (as a savepoint)
    or commits on its own.
    """
    if not rows:
        return
    columns = _columns(rows)
    _insert_values(db, table, columns, [[row.get(c) for c in columns] for row in rows], verb)


def _insert_values(
    db: sqlite_utils.Database, table: str, columns: tuple[str, ...],
    rows: Sequence[Sequence[Any]], verb: str = "INSERT",
) -> None:
    """Insert rows given as value sequences in ``columns`` order (as :func:`_insert`)."""
    if not rows:
        return
    with _writing(db):
        db.conn.executemany(_insert_sql(table, columns, verb), rows)


def _upsert(
    db: sqlite_utils.Database, table: str, pk: tuple[str, ...],
    rows: Sequence[Mapping[str, Any]],
) -> None:
    """Insert dict rows, updating the given columns of those whose ``pk`` exists.

    Columns a row does not name keep their stored value (as sqlite-utils' ``upsert``).
    Rows are grouped by their set of keys, one ``executemany`` per group.
    """
    groups: dict[tuple[str, ...], list[list[Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(row), []).append(list(row.values()))
    if not groups:
        return
    with _writing(db):
        for columns, values in groups.items():
            db.conn.executemany(_upsert_sql(table, columns, pk), values)


def _chunks(items: Sequence[_T], size: int = IN_CHUNK) -> Iterator[Sequence[_T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _marks(n: int) -> str:
    return ", ".join("?" * n)


def _dict_rows(cur: sqlite3.Cursor) -> Iterator[dict[str, Any]]:
    cols = [d[0] for d in cur.description]
    for r in cur:
        yield dict(zip(cols, r, strict=True))


# -- messages, raw store and events ------------------------------------------------------


def message_exists(db: sqlite_utils.Database, sha256: str) -> bool:
    """True when a message with this sha256 was already processed."""
    return db.execute("SELECT 1 FROM messages WHERE sha256 = ?", [sha256]).fetchone() is not None


def existing_messages(db: sqlite_utils.Database, sha256s: Iterable[str]) -> set[str]:
    """Return those of ``sha256s`` already in ``messages`` (one query per 500)."""
    wanted = list(dict.fromkeys(sha256s))
    found: set[str] = set()
    for chunk in _chunks(wanted):
        found.update(
            r[0]
            for r in db.conn.execute(
                f"SELECT sha256 FROM messages WHERE sha256 IN ({_marks(len(chunk))})", chunk
            )
        )
    return found


def insert_message(db: sqlite_utils.Database, row: dict[str, Any]) -> None:
    """Insert one ``messages`` row."""
    insert_messages(db, [row])


def insert_messages(db: sqlite_utils.Database, rows: Sequence[dict[str, Any]]) -> None:
    """Insert ``messages`` rows (one ``executemany``; a known sha256 is an error)."""
    _insert(db, "messages", rows)


#: The ``messages`` columns, in table order: the tuples :func:`insert_message_rows` takes.
MESSAGE_COLUMNS = ("sha256", "source", "mailbox", "folder", "uidvalidity", "uid",
                   "mbox_index", "message_id", "from_addr", "subject", "date", "size",
                   "processed_at", "outcome", "parser", "error")


def insert_message_rows(db: sqlite_utils.Database, rows: Sequence[Sequence[Any]]) -> None:
    """:func:`insert_messages` of rows given as tuples in :data:`MESSAGE_COLUMNS` order
    (the ingest path: no dict per row to build and read back)."""
    _insert_values(db, "messages", MESSAGE_COLUMNS, rows)


def update_message(db: sqlite_utils.Database, sha256: str, updates: dict[str, Any]) -> None:
    """Update columns of one ``messages`` row."""
    db.table("messages").update(sha256, updates)


def store_raw(db: sqlite_utils.Database, sha256: str, raw: bytes) -> None:
    """Keep the raw bytes of a message, zlib-compressed, for ``reclassify``."""
    store_raws(db, [(sha256, raw)])


#: zlib level of ``raw_messages.raw_zlib``. On bounce mail level 1 takes a fifth less
#: CPU than the default 6 (36 against 45 us per 4 KB message) for 4 % more bytes
#: (0.405 against 0.388 of the size); zlib reads every level the same way.
RAW_ZLIB_LEVEL = 1


def pack_raw(raw: bytes) -> bytes:
    """The form ``raw_messages.raw_zlib`` keeps a message in (zlib,
    :data:`RAW_ZLIB_LEVEL`)."""
    return zlib.compress(raw, RAW_ZLIB_LEVEL)


def store_raws(db: sqlite_utils.Database, items: Iterable[tuple[str, bytes]]) -> None:
    """Keep ``(sha256, raw bytes)`` pairs zlib-compressed (one ``executemany``).

    A row already stored under the same sha256 is replaced.
    """
    store_packed_raws(db, [(sha, pack_raw(raw), len(raw)) for sha, raw in items])


def store_packed_raws(db: sqlite_utils.Database,
                      items: Iterable[tuple[str, bytes, int]]) -> None:
    """Keep ``(sha256, pack_raw(raw), len(raw))`` rows: compressed elsewhere already
    (the parser processes do it beside parsing, off the main process)."""
    stamp = now_utc()
    rows = [(sha, packed, size, stamp) for sha, packed, size in items]
    if not rows:
        return
    with _writing(db):
        db.conn.executemany(
            "INSERT OR REPLACE INTO raw_messages (sha256, raw_zlib, size, stored_at) "
            "VALUES (?, ?, ?, ?)",
            rows,
        )


def iter_raw_messages(db: sqlite_utils.Database) -> Iterator[tuple[str, bytes, dict[str, Any]]]:
    """Yield ``(sha256, raw bytes, messages row)`` for every stored raw message."""
    sql = (
        "SELECT m.*, r.raw_zlib FROM raw_messages r JOIN messages m ON m.sha256 = r.sha256 "
        "ORDER BY m.processed_at, m.sha256"
    )
    for row in db.query(sql):
        data = row.pop("raw_zlib")
        yield row["sha256"], zlib.decompress(data), row


def raw_message_ids(db: sqlite_utils.Database) -> list[str]:
    """Return the sha256 of every stored raw message, oldest first."""
    return [
        r[0]
        for r in db.execute(
            "SELECT r.sha256 FROM raw_messages r JOIN messages m ON m.sha256 = r.sha256 "
            "ORDER BY m.processed_at, m.sha256"
        ).fetchall()
    ]


def get_raw_message(db: sqlite_utils.Database, sha256: str) -> tuple[bytes, dict[str, Any]]:
    """Return the raw bytes and the ``messages`` row of one stored message."""
    rows = list(
        db.query(
            "SELECT m.*, r.raw_zlib FROM raw_messages r JOIN messages m ON m.sha256 = r.sha256 "
            "WHERE r.sha256 = ?",
            [sha256],
        )
    )
    if not rows:
        raise StoreError(f"no stored raw message {sha256}: it was pruned or purged")
    row = rows[0]
    return zlib.decompress(row.pop("raw_zlib")), row


def prune_raw(db: sqlite_utils.Database, retention_days: int, now: str | None = None) -> int:
    """Drop stored raw messages older than ``retention_days``; return how many."""
    cutoff = shift(now or now_utc(), -retention_days)
    cur = db.execute("DELETE FROM raw_messages WHERE stored_at < ?", [cutoff])
    return int(cur.rowcount or 0)


def insert_bounces(db: sqlite_utils.Database, rows: Sequence[dict[str, Any]]) -> None:
    """Insert ``bounces`` rows (one per recipient verdict; one ``executemany``)."""
    _insert(db, "bounces", rows)


#: The ``bounces`` columns but ``id``, in table order: the tuples
#: :func:`insert_bounce_rows` takes.
BOUNCE_COLUMNS = ("message_sha256", "recipient", "domain", "classification", "reason",
                  "policy_action", "rule_id", "action", "status", "smtp_code", "diagnostic",
                  "remote_mta", "reporting_mta", "original_message_id", "original_subject",
                  "occurred_at")


def insert_bounce_rows(db: sqlite_utils.Database, rows: Sequence[Sequence[Any]]) -> None:
    """:func:`insert_bounces` of rows given as tuples in :data:`BOUNCE_COLUMNS` order."""
    _insert_values(db, "bounces", BOUNCE_COLUMNS, rows)


def delete_bounces_of(db: sqlite_utils.Database, sha256: str) -> list[str]:
    """Delete a message's events; return the recipients they named."""
    recipients = [
        r[0]
        for r in db.execute(
            "SELECT DISTINCT recipient FROM bounces WHERE message_sha256 = ? "
            "AND recipient IS NOT NULL",
            [sha256],
        ).fetchall()
    ]
    db.execute("DELETE FROM bounces WHERE message_sha256 = ?", [sha256])
    return recipients


def iter_bounce_actions(db: sqlite_utils.Database) -> Iterator[dict[str, Any]]:
    """Yield ``id, classification, reason, diagnostic, policy_action`` of every event."""
    yield from db.query(
        "SELECT id, classification, reason, diagnostic, policy_action FROM bounces"
    )


def set_bounce_action(db: sqlite_utils.Database, bounce_id: int, action: str) -> None:
    """Set ``policy_action`` of one event."""
    db.execute("UPDATE bounces SET policy_action = ? WHERE id = ?", [action, bounce_id])


def address_events(db: sqlite_utils.Database, address: str) -> list[dict[str, Any]]:
    """Return the events of one address, oldest first, with ``processed_at`` of their message."""
    return list(
        db.query(
            "SELECT b.*, m.processed_at, m.source FROM bounces b "
            "JOIN messages m ON m.sha256 = b.message_sha256 "
            "WHERE b.recipient = ? ORDER BY b.occurred_at, b.id",
            [address],
        )
    )


def events_of(
    db: sqlite_utils.Database, addresses: Sequence[str], columns: Sequence[str] | None = None,
    *, processed_at: bool = True,
) -> dict[str, list[dict[str, Any]]]:
    """Return :func:`address_events` of many addresses at once: ``{address: [row, ...]}``.

    One query per 500 addresses; each list is oldest first (``occurred_at``, ``id``).
    Addresses without events are absent. ``columns`` (``bounces`` columns, which must
    include ``recipient``) narrows each row to those plus ``processed_at``: the
    policy reads only a few, and building 19-column dicts cost an ingest more.
    ``processed_at=False`` (with ``columns``) also leaves out ``processed_at``, and
    with it the join to ``messages``: two index lookups per event.
    """
    if columns is None:
        picked = "b.*, m.processed_at, m.source"
    else:
        picked = ", ".join([*(f"b.{_quote(c)}" for c in columns),
                            *(["m.processed_at"] if processed_at else [])])
    join = ("JOIN messages m ON m.sha256 = b.message_sha256 "
            if columns is None or processed_at else "")
    out: dict[str, list[dict[str, Any]]] = {}
    for chunk in _chunks(list(dict.fromkeys(addresses))):
        cur = db.conn.execute(
            f"SELECT {picked} FROM bounces b {join}"
            f"WHERE b.recipient IN ({_marks(len(chunk))}) ORDER BY b.occurred_at, b.id",
            chunk,
        )
        for row in _dict_rows(cur):
            out.setdefault(row["recipient"], []).append(row)
    return out


def all_event_addresses(db: sqlite_utils.Database) -> list[str]:
    """Every address that has events or a suppression row."""
    return [
        r[0]
        for r in db.execute(
            "SELECT recipient FROM bounces WHERE recipient IS NOT NULL "
            "UNION SELECT address FROM suppressions"
        ).fetchall()
    ]


# -- suppressions ----------------------------------------------------------------------


def get_suppression(db: sqlite_utils.Database, address: str) -> dict[str, Any] | None:
    """Return the ``suppressions`` row of an address, or ``None``."""
    rows = list(db.query("SELECT * FROM suppressions WHERE address = ?", [address]))
    return rows[0] if rows else None


def get_suppressions(
    db: sqlite_utils.Database, addresses: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """Return the ``suppressions`` rows of many addresses as ``{address: row}``.

    One query per 500 addresses; addresses without a row are absent.
    """
    out: dict[str, dict[str, Any]] = {}
    for chunk in _chunks(list(dict.fromkeys(addresses))):
        cur = db.conn.execute(
            f"SELECT * FROM suppressions WHERE address IN ({_marks(len(chunk))})", chunk
        )
        for row in _dict_rows(cur):
            out[row["address"]] = row
    return out


def save_suppression(db: sqlite_utils.Database, row: dict[str, Any]) -> None:
    """Insert or update the ``suppressions`` row of ``row['address']``."""
    save_suppressions(db, [row])


def save_suppressions(db: sqlite_utils.Database, rows: Sequence[dict[str, Any]]) -> None:
    """Insert or update ``suppressions`` rows (``INSERT ... ON CONFLICT DO UPDATE``).

    Columns a row does not name keep their stored value.
    """
    _upsert(db, "suppressions", ("address",), rows)


def delete_suppression(db: sqlite_utils.Database, address: str) -> None:
    """Delete the ``suppressions`` row of an address."""
    delete_suppressions(db, [address])


def delete_suppressions(db: sqlite_utils.Database, addresses: Iterable[str]) -> None:
    """Delete the ``suppressions`` rows of ``addresses`` (one ``executemany``)."""
    params = [(a,) for a in addresses]
    if not params:
        return
    with _writing(db):
        db.conn.executemany("DELETE FROM suppressions WHERE address = ?", params)


def add_history(db: sqlite_utils.Database, row: dict[str, Any]) -> None:
    """Append one ``suppression_history`` row (who did what to an address, and why)."""
    add_history_rows(db, [row])


def add_history_rows(db: sqlite_utils.Database, rows: Sequence[dict[str, Any]]) -> None:
    """Append ``suppression_history`` rows in order (one ``executemany``)."""
    _insert(db, "suppression_history", rows)


def expire_due(db: sqlite_utils.Database, now: str | None = None) -> list[str]:
    """Mark active suppressions whose ``expires_at`` passed as expired; return the addresses."""
    now = now or now_utc()
    addresses = [
        r[0]
        for r in db.execute(
            "SELECT address FROM suppressions WHERE state = 'active' "
            "AND expires_at IS NOT NULL AND expires_at <= ?",
            [now],
        ).fetchall()
    ]
    if not addresses:
        return addresses
    with _writing(db):
        db.conn.executemany(
            "UPDATE suppressions SET state = 'expired', updated_at = ? WHERE address = ?",
            [(now, address) for address in addresses],
        )
    add_history_rows(
        db,
        [{"address": address, "at": now, "event": "expired", "state": EXPIRED,
          "source": "policy", "actor": "mailbox-processor", "note": "soft-bounce expiry"}
         for address in addresses],
    )
    return addresses


# -- queries behind the CLI ------------------------------------------------------------

_ACTIVE_SQL = "(s.state = 'active' AND (s.expires_at IS NULL OR s.expires_at > :now))"


def _filters(
    clauses: list[str],
    params: dict[str, Any],
    *,
    type_col: str,
    reason_col: str,
    domain_col: str,
    time_col: str,
    type_: str | None,
    reason: str | None,
    domain: str | None,
    since: str | None,
    until: str | None,
) -> None:
    if type_:
        clauses.append(f"{type_col} = :type")
        params["type"] = type_
    if reason:
        clauses.append(f"{reason_col} = :reason")
        params["reason"] = reason
    if domain:
        clauses.append(f"({domain_col} = :domain OR {domain_col} LIKE :subdomain)")
        params["domain"] = domain.lower()
        params["subdomain"] = "%." + domain.lower()
    if since:
        clauses.append(f"{time_col} >= :since")
        params["since"] = since
    if until:
        clauses.append(f"{time_col} < :until")
        params["until"] = until


def list_suppressions(
    db: sqlite_utils.Database,
    *,
    type_: str | None = None,
    reason: str | None = None,
    domain: str | None = None,
    since: str | None = None,
    until: str | None = None,
    active_only: bool = True,
    limit: int | None = None,
    now: str | None = None,
) -> Iterator[dict[str, Any]]:
    """Yield suppressions, newest ``last_seen`` first, with the why inline.

    Each row: ``address, state, type, reason, diagnostic, hard_count, soft_count,
    complaint_count, first_seen, last_seen, expires_at, source, note``. ``state`` is
    reported as ``expired`` for an active row whose ``expires_at`` has passed.
    """
    params: dict[str, Any] = {"now": now or now_utc()}
    clauses: list[str] = []
    if active_only:
        clauses.append(_ACTIVE_SQL)
    _filters(clauses, params, type_col="s.classification", reason_col="s.reason",
             domain_col="s.domain", time_col="coalesce(s.last_seen, s.updated_at)",
             type_=type_, reason=reason, domain=domain, since=since, until=until)
    where = " WHERE " + " AND ".join(clauses) if clauses else ""
    sql = (
        "SELECT s.address, CASE WHEN s.state = 'active' AND s.expires_at IS NOT NULL "
        "AND s.expires_at <= :now THEN 'expired' ELSE s.state END AS state, "
        "s.classification AS type, s.reason, s.diagnostic, s.hard_count, s.soft_count, "
        "s.complaint_count, s.first_seen, s.last_seen, s.expires_at, s.source, s.note "
        f"FROM suppressions s{where} "
        "ORDER BY coalesce(s.last_seen, s.updated_at) DESC, s.address"
    )
    if limit is not None:
        sql += " LIMIT :limit"
        params["limit"] = limit
    yield from db.query(sql, params)


def list_bounces(
    db: sqlite_utils.Database,
    *,
    type_: str | None = None,
    reason: str | None = None,
    domain: str | None = None,
    since: str | None = None,
    until: str | None = None,
    address: str | None = None,
    limit: int | None = None,
) -> Iterator[dict[str, Any]]:
    """Yield bounce events, newest first: ``occurred_at, recipient, type, reason,
    policy_action, status, smtp_code, diagnostic, remote_mta, original_subject, source``.
    """
    params: dict[str, Any] = {}
    clauses: list[str] = []
    if address:
        clauses.append("b.recipient = :address")
        params["address"] = address
    _filters(clauses, params, type_col="b.classification", reason_col="b.reason",
             domain_col="b.domain", time_col="b.occurred_at",
             type_=type_, reason=reason, domain=domain, since=since, until=until)
    where = " WHERE " + " AND ".join(clauses) if clauses else ""
    sql = (
        "SELECT b.occurred_at, b.recipient, b.classification AS type, b.reason, "
        "b.policy_action, b.status, b.smtp_code, b.diagnostic, b.remote_mta, "
        "b.original_message_id, b.original_subject, b.rule_id, m.source, m.processed_at "
        f"FROM bounces b JOIN messages m ON m.sha256 = b.message_sha256{where} "
        "ORDER BY b.occurred_at DESC, b.id DESC"
    )
    if limit is not None:
        sql += " LIMIT :limit"
        params["limit"] = limit
    yield from db.query(sql, params)


def address_history(db: sqlite_utils.Database, address: str) -> list[dict[str, Any]]:
    """Return the ``suppression_history`` rows of an address, oldest first."""
    return list(
        db.query(
            "SELECT at, event, state, source, classification, reason, actor, note "
            "FROM suppression_history WHERE address = ? ORDER BY at, id",
            [address],
        )
    )


def check_addresses(
    db: sqlite_utils.Database, addresses: Iterable[str], *, now: str | None = None
) -> Iterator[dict[str, Any]]:
    """Yield the actively suppressed ones among ``addresses``, in input order.

    Built for 100k addresses: they go into a temporary table in one ``executemany``
    and one join answers them all. Input is normalised with :func:`normalise_address`;
    entries that are not addresses are skipped. Rows: ``address, type, reason,
    diagnostic, expires_at, source``.
    """
    conn = db.conn
    was_in_transaction = conn.in_transaction
    conn.execute("DROP TABLE IF EXISTS temp.check_input")
    conn.execute("CREATE TEMP TABLE check_input (seq INTEGER PRIMARY KEY, address TEXT)")
    try:

        def rows() -> Iterator[tuple[str]]:
            for a in addresses:
                n = normalise_address(a)
                if n is not None:
                    yield (n,)

        conn.executemany("INSERT INTO temp.check_input (address) VALUES (?)", rows())
        cur = conn.execute(
            "SELECT i.address, s.classification AS type, s.reason, s.diagnostic, "
            "s.expires_at, s.source FROM temp.check_input i "
            "JOIN suppressions s ON s.address = i.address "
            f"WHERE {_ACTIVE_SQL} GROUP BY i.address ORDER BY min(i.seq)",
            {"now": now or now_utc()},
        )
        cols = [d[0] for d in cur.description]
        seen_rows = [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
    finally:
        conn.execute("DROP TABLE IF EXISTS temp.check_input")
        if conn.in_transaction and not was_in_transaction:
            conn.commit()
    yield from seen_rows


def stats(
    db: sqlite_utils.Database, *, since: str | None = None
) -> Iterator[dict[str, Any]]:
    """Yield ``{"group", "key", "events", "recipients"}`` rows for a window.

    Groups: ``classification``, ``reason``, ``domain`` and ``day`` over recipient
    events, then ``sender_side`` (per receiving domain and reason: problems of the
    sending side to fix, never counted against recipients), then ``suppressions``
    (current suppression states).
    """
    params = {"since": since or "0000"}
    groups = (
        ("classification", "classification"),
        ("reason", "coalesce(reason, '(none)')"),
        ("domain", "coalesce(domain, '(none)')"),
        ("day", "date(occurred_at)"),
    )
    for group, expr in groups:
        order = "key" if group == "day" else "events DESC, key"
        yield from db.query(
            f"SELECT '{group}' AS 'group', {expr} AS key, count(*) AS events, "
            "count(DISTINCT recipient) AS recipients FROM bounces "
            "WHERE occurred_at >= :since AND coalesce(policy_action, '') != 'sender_side' "
            f"GROUP BY key ORDER BY {order}",
            params,
        )
    yield from db.query(
        "SELECT 'sender_side' AS 'group', coalesce(domain, '(none)') || ' ' || "
        "coalesce(reason, '') AS key, count(*) AS events, "
        "count(DISTINCT recipient) AS recipients FROM bounces "
        "WHERE occurred_at >= :since AND policy_action = 'sender_side' "
        "GROUP BY key ORDER BY events DESC, key",
        params,
    )
    yield from db.query(
        "SELECT 'suppressions' AS 'group', CASE WHEN state = 'active' AND expires_at "
        "IS NOT NULL AND expires_at <= :now THEN 'expired' ELSE state END AS key, "
        "count(*) AS events, count(*) AS recipients FROM suppressions GROUP BY key ORDER BY key",
        {"now": now_utc()},
    )


def export_suppressions(db: sqlite_utils.Database) -> Iterator[dict[str, Any]]:
    """Yield every active suppression for export, ordered by address."""
    yield from db.query(
        "SELECT address, classification AS type, reason, diagnostic, first_seen, last_seen, "
        "expires_at, source, note FROM suppressions s "
        f"WHERE {_ACTIVE_SQL} ORDER BY address",
        {"now": now_utc()},
    )


def purge_before(db: sqlite_utils.Database, before: str) -> dict[str, int]:
    """Delete events older than ``before`` (never those of active suppressions).

    Also deletes expired or removed suppressions last seen before ``before``, their
    history, and messages left without events. Returns counts per table. The caller
    wraps this in a transaction and runs :func:`vacuum` afterwards.
    """
    now = now_utc()
    protected = (
        "SELECT address FROM suppressions s WHERE " + _ACTIVE_SQL.replace(":now", ":now")
    )
    params = {"before": before, "now": now}
    cur = db.execute(
        f"DELETE FROM bounces WHERE occurred_at < :before AND (recipient IS NULL OR "
        f"recipient NOT IN ({protected}))",
        params,
    )
    counts = {"bounces": int(cur.rowcount or 0)}
    cur = db.execute(
        "DELETE FROM suppressions WHERE coalesce(last_seen, updated_at) < :before AND NOT "
        "(state = 'active' AND (expires_at IS NULL OR expires_at > :now))",
        params,
    )
    counts["suppressions"] = int(cur.rowcount or 0)
    db.execute(
        "DELETE FROM suppression_history WHERE at < :before AND address NOT IN "
        "(SELECT address FROM suppressions)",
        {"before": before},
    )
    orphan = (
        "SELECT sha256 FROM messages WHERE processed_at < :before AND sha256 NOT IN "
        "(SELECT message_sha256 FROM bounces)"
    )
    db.execute(f"DELETE FROM raw_messages WHERE sha256 IN ({orphan})", {"before": before})
    cur = db.execute(f"DELETE FROM messages WHERE sha256 IN ({orphan})", {"before": before})
    counts["messages"] = int(cur.rowcount or 0)
    return counts


def vacuum(db: sqlite_utils.Database) -> None:
    """Reclaim free pages (outside any transaction)."""
    with contextlib.suppress(sqlite3.OperationalError):
        db.vacuum()


def table_counts(db: sqlite_utils.Database) -> dict[str, int]:
    """Return the row count of each data table (for tests and ``db`` info)."""
    names = ("messages", "bounces", "suppressions", "suppression_history", "raw_messages")
    return {n: int(db.execute(f"SELECT count(*) FROM {n}").fetchone()[0]) for n in names}


def list_bounces_of(db: sqlite_utils.Database, sha256: str) -> list[dict[str, Any]]:
    """Return the events of one message."""
    return list(db.query("SELECT * FROM bounces WHERE message_sha256 = ?", [sha256]))
