"""The installed entry point in real processes; the database read with the sqlite3 tool."""

from __future__ import annotations

import importlib.util
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MAILDIR = ROOT / "fixtures" / "maildir"
SQLITE3 = shutil.which("sqlite3")


def entry_point() -> list[str]:
    exe = shutil.which("mailbox-processor")
    return [exe] if exe else [sys.executable, "-m", "mailbox_processor"]


def mp(*args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "MAILBOX_PROCESSOR_DB"}
    return subprocess.run([*entry_point(), *args], input=input, capture_output=True, text=True,
                          timeout=120, cwd=ROOT, env=env)


def sql(db: Path, query: str) -> str:
    if SQLITE3:
        return subprocess.run([SQLITE3, str(db), query], capture_output=True, text=True,
                              check=True).stdout
    with sqlite3.connect(db) as conn:
        return "".join("|".join(map(str, r)) + "\n" for r in conn.execute(query))


def test_readme_setup_scan_then_list(tmp_path: Path) -> None:
    db = tmp_path / "x.db"
    scan = mp("scan", "fixtures/maildir", "--db", str(db))
    assert scan.returncode == 0, scan.stderr
    assert scan.stdout.startswith("20 messages (")
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    listed = mp("list", "--db", str(db), "--csv")
    assert listed.returncode == 0
    header, *rows = listed.stdout.splitlines()
    assert header.startswith("address,state,type,reason,diagnostic,")
    assert len(rows) == int(sql(db, "SELECT count(*) FROM active_suppressions;"))
    assert sql(db, "PRAGMA journal_mode;") == "wal\n"
    assert sql(db, "SELECT max(version) FROM schema_version;") == "1\n"
    assert sql(db, "SELECT count(*) FROM messages;") == "20\n"
    again = mp("scan", "fixtures/maildir", "--db", str(db))
    assert "(0 new, 20 duplicates" in again.stdout
    assert sql(db, "SELECT count(*) FROM messages;") == "20\n"


def test_check_while_a_writer_holds_the_database(tmp_path: Path) -> None:
    db = tmp_path / "x.db"
    assert mp("suppress", "busy@example.com", "--db", str(db)).returncode == 0
    writer = sqlite3.connect(db, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("INSERT INTO suppression_history (address, at, event) VALUES ('a', 'b', 'c')")
    try:
        check = mp("check", "-", "--db", str(db), input="ok@example.com\nBUSY@example.com\n")
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    assert (check.returncode, check.stdout, check.stderr) == (1, "busy@example.com\n", "")


@pytest.mark.parametrize(
    ("args", "code", "stderr"),
    [
        (("scan", "no/such/path"), 2, "Path 'no/such/path' does not exist"),
        (("list", "--db", "/no/such/dir/x.db"), 1,
         "Error: cannot create database /no/such/dir/x.db: folder /no/such/dir does not "
         "exist; create it or pass another --db\n"),
        (("check", "a@example.com", "--db", "/no/such/dir/x.db"), 2,
         "Error: cannot create database"),
    ],
)
def test_errors_are_one_line_with_a_status(args: tuple[str, ...], code: int, stderr: str) -> None:
    result = mp(*args)
    assert result.returncode == code
    assert stderr in result.stderr
    assert "Traceback" not in result.stderr


def test_two_writers_at_once(tmp_path: Path) -> None:
    db = tmp_path / "x.db"
    assert mp("db", "schema", "--db", str(db)).returncode == 0
    corpus = ROOT.parent / "shared" / "corpus" / "emails"
    second = str(corpus) if corpus.is_dir() else str(MAILDIR)
    env = {k: v for k, v in os.environ.items() if k != "MAILBOX_PROCESSOR_DB"}
    procs = [subprocess.Popen([*entry_point(), "scan", src, "--db", str(db), "--batch-size",
                               "5", "-q"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
             for src in (str(MAILDIR), second)]
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    expected = 20 + (len(list(corpus.glob("*.eml"))) if corpus.is_dir() else 0)
    assert sql(db, "SELECT count(*) FROM messages;") == f"{expected}\n"


def test_check_100k_addresses_on_stdin(tmp_path: Path) -> None:
    import time

    db = tmp_path / "x.db"
    assert mp("suppress", "hit@example.com", "--db", str(db)).returncode == 0
    lines = "".join(f"user{i}@example.com\n" for i in range(100_000)) + "HIT@example.com\n"
    start = time.perf_counter()
    result = mp("check", "-", "--db", str(db), input=lines)
    assert time.perf_counter() - start < 15
    assert (result.returncode, result.stdout) == (1, "hit@example.com\n")


def _python(code: str) -> str:
    """Run ``code`` in a fresh interpreter (nothing imported yet); return its stdout."""
    env = {k: v for k, v in os.environ.items() if k != "MAILBOX_PROCESSOR_DB"}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, cwd=ROOT, env=env, check=True).stdout


def test_commands_import_sqlite_utils_without_numpy(tmp_path: Path) -> None:
    out = _python(
        "import sys\n"
        "from mailbox_processor.cli import cli\n"
        f"cli(['list', '--db', {str(tmp_path / 'x.db')!r}, '--json'], standalone_mode=False)\n"
        "import sqlite_utils.db\n"
        "print('numpy' in sys.modules, sqlite_utils.db.np is None)\n"
        "try:\n"
        "    import numpy\n"
        "except ImportError:\n"
        "    print('absent')\n"
        "else:\n"
        "    print('importable')\n"
    )
    lines = out.splitlines()
    assert lines[-2] == "False True"
    if importlib.util.find_spec("numpy") is not None:
        assert lines[-1] == "importable"  # blocked only while sqlite-utils was imported


def test_poll_imports_the_engine_in_a_thread_not_at_start_up() -> None:
    out = _python(
        "import sys\n"
        "import mailbox_processor.cli, mailbox_processor.poller as p\n"
        "print('mailbox_processor.engine' in sys.modules)\n"
        "p.import_engine().join()\n"
        "print('mailbox_processor.engine' in sys.modules)\n"
        "import mailbox_processor.pipeline as pl\n"
        "print(pl.parse_message(b'Subject: hi\\n\\nhello').is_bounce)\n"
    )
    assert out.split() == ["False", "True", "False"]
