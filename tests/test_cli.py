"""Every database command through click's CliRunner; the SQLite file is then read directly."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from mailbox_processor.cli import cli

ROOT = Path(__file__).resolve().parent.parent
MAILDIR = ROOT / "fixtures" / "maildir"
CORPUS = ROOT.parent / "shared" / "corpus" / "emails"


def dsn(recipient: str, status: str = "5.1.1", code: str = "550",
        text: str = "User unknown", date: str = "Tue, 14 Nov 2023 22:15:01 +0000",
        tag: str = "1") -> bytes:
    """A minimal RFC 3464 delivery status notification (RFC 3464 section 2)."""
    action = "failed" if status.startswith("5") else "delayed" if status == "4.4.7" else "failed"
    return (
        "Return-Path: <>\r\n"
        f"Date: {date}\r\n"
        "From: MAILER-DAEMON@mail.example.org (Mail Delivery System)\r\n"
        "To: bounces@example.org\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        f"Message-Id: <dsn-{tag}-{recipient}@mail.example.org>\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="BB"\r\n'
        "\r\n--BB\r\nContent-Type: text/plain\r\n\r\n"
        f"<{recipient}>: host mx.example.net said: {code} {status} {text}\r\n"
        "\r\n--BB\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mail.example.org\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\n"
        f"Action: {action}\r\n"
        f"Status: {status}\r\n"
        "Remote-MTA: dns; mx.example.net\r\n"
        f"Diagnostic-Code: smtp; {code} {status} {text}\r\n"
        "\r\n--BB\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        "From: news@example.org\r\nTo: someone\r\nSubject: Our newsletter\r\n"
        "Message-Id: <orig-1@example.org>\r\n"
        "\r\n--BB--\r\n"
    ).encode()


@pytest.fixture
def mail(tmp_path: Path) -> Path:
    """A folder of three DSNs: two hard bounces and one mailbox-full."""
    folder = tmp_path / "mail"
    folder.mkdir()
    (folder / "a.eml").write_bytes(dsn("Gone@Example.com"))
    (folder / "b.eml").write_bytes(dsn("nobody@example.net", text="No such user here"))
    (folder / "c.eml").write_bytes(
        dsn("full@example.org", status="4.2.2", code="452", text="Mailbox full"))
    return folder


def run(runner: CliRunner, *args: str, input: str | None = None) -> tuple[int, str, str]:
    result = runner.invoke(cli, list(args), input=input, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def counts(db: Path) -> dict[str, int]:
    with sqlite3.connect(db) as conn:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                for t in ("messages", "bounces", "suppressions", "raw_messages")}


def scanned(runner: CliRunner, mail: Path, db: Path) -> Path:
    code, out, err = run(runner, "scan", str(mail), "--db", str(db))
    assert code == 0, err
    return db


# -- scan ---------------------------------------------------------------------------------


def test_scan_summary_and_database(runner: CliRunner, mail: Path, tmp_db_path: Path) -> None:
    code, out, err = run(runner, "scan", str(mail), "--db", str(tmp_db_path))
    assert code == 0, err
    assert out == ("3 messages (3 new, 0 duplicates, 0 not bounces, 0 quarantined); "
                   "3 verdicts (hard 2, soft 1); 2 newly suppressed\n")
    with sqlite3.connect(tmp_db_path) as conn:
        rows = conn.execute(
            "SELECT address, state, classification, reason FROM suppressions ORDER BY address"
        ).fetchall()
        assert rows == [("gone@example.com", "active", "hard", "userunknown"),
                        ("nobody@example.net", "active", "hard", "userunknown")]
        assert conn.execute("SELECT smtp_code, status FROM bounces WHERE recipient = "
                            "'full@example.org'").fetchone() == ("452", "4.2.2")
        assert conn.execute("SELECT count(*) FROM active_suppressions").fetchone() == (2,)


def test_scan_twice_changes_nothing(runner: CliRunner, mail: Path, tmp_db_path: Path) -> None:
    scanned(runner, mail, tmp_db_path)
    before = counts(tmp_db_path)
    code, out, _ = run(runner, "scan", str(mail), "--db", str(tmp_db_path))
    assert code == 0
    assert out == ("3 messages (0 new, 3 duplicates, 0 not bounces, 0 quarantined); "
                   "0 verdicts; 0 newly suppressed\n")
    assert counts(tmp_db_path) == before


def test_scan_json_summary(runner: CliRunner, mail: Path, tmp_db_path: Path) -> None:
    code, out, _ = run(runner, "scan", str(mail), "--db", str(tmp_db_path), "--json")
    assert code == 0
    assert json.loads(out) == {"messages": 3, "new": 3, "duplicates": 0, "quarantined": 0,
                               "not_bounce": 0, "by_classification": {"hard": 2, "soft": 1},
                               "newly_suppressed": 2}


def test_scan_fixture_maildir_then_list(runner: CliRunner, tmp_db_path: Path) -> None:
    code, out, _ = run(runner, "scan", str(MAILDIR), "--db", str(tmp_db_path))
    assert code == 0
    assert re.match(r"^20 messages \(\d+ new, 0 duplicates, .*; (\d+) newly suppressed$", out)
    code, out, _ = run(runner, "list", "--db", str(tmp_db_path), "--table")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["address", "state", "type", "reason", "diagnostic", "last_seen",
                                "expires_at", "source"]
    assert any("alice.nobody@example.com" in line and "userunknown" in line for line in lines)


def test_scan_quarantines_unreadable_and_fails_when_nothing_read(
    runner: CliRunner, tmp_path: Path, tmp_db_path: Path
) -> None:
    folder = tmp_path / "broken"
    folder.mkdir()
    os.symlink(tmp_path / "missing.eml", folder / "dangling.eml")
    code, out, err = run(runner, "scan", str(folder), "--db", str(tmp_db_path))
    assert code == 1
    assert err.startswith(f"Error: {folder / 'dangling.eml'}: ")
    assert err.endswith(": nothing could be read (quarantined)\n")
    assert err.count("\n") == 1
    os.symlink(tmp_path / "missing2.eml", folder / "dangling2.eml")
    code, out, err = run(runner, "scan", str(folder), "--db", str(tmp_db_path))
    assert code == 1  # the first one is a duplicate now: one new, quarantined
    assert err.startswith(f"Error: {folder / 'dangling2.eml'}: ")
    (folder / "three.eml").write_bytes(b"")
    os.symlink(tmp_path / "missing3.eml", folder / "dangling3.eml")
    code, out, err = run(runner, "scan", str(folder), "--db", str(tmp_db_path))
    assert code == 1
    assert err.count("warning: quarantined ") == 2
    assert err.endswith("Error: nothing could be read: all 2 new messages were quarantined\n")
    with sqlite3.connect(tmp_db_path) as conn:
        assert conn.execute("SELECT outcome FROM messages").fetchall() == [("quarantined",)] * 4


def test_scan_bad_mail_is_recorded_not_fatal(
    runner: CliRunner, mail: Path, tmp_db_path: Path
) -> None:
    (mail / "junk.eml").write_bytes(b"\x00\x01\x02 not a mail at all \xff" * 50)
    (mail / "truncated.eml").write_bytes(dsn("cut@example.com")[:300])
    code, out, _ = run(runner, "scan", str(mail), "--db", str(tmp_db_path))
    assert code == 0
    assert out.startswith("5 messages (")
    assert counts(tmp_db_path)["messages"] == 5


def test_scan_missing_path_is_a_usage_error(runner: CliRunner, tmp_db_path: Path) -> None:
    code, _, err = run(runner, "scan", "/no/such/dir", "--db", str(tmp_db_path))
    assert code == 2
    assert "Path '/no/such/dir' does not exist" in err
    assert not tmp_db_path.exists()


def test_bad_database_file_is_one_error_line(runner: CliRunner, tmp_path: Path,
                                              mail: Path) -> None:
    bad = tmp_path / "bad.db"
    bad.write_text("not a database\n" * 200)
    code, _, err = run(runner, "list", "--db", str(bad))
    assert code == 1
    assert err.startswith(f"Error: {bad} is not a mailbox-processor database")
    assert err.count("\n") == 1
    code, _, err = run(runner, "check", "x@example.com", "--db", str(bad))
    assert code == 2


@pytest.mark.skipif(not CORPUS.is_dir(), reason="../shared/corpus/emails is not present")
def test_corpus_scanned_twice_keeps_the_same_counts(runner: CliRunner, tmp_db_path: Path) -> None:
    scanned(runner, CORPUS, tmp_db_path)
    once = counts(tmp_db_path)
    assert once["messages"] == len(list(CORPUS.glob("*.eml")))
    code, out, _ = run(runner, "scan", str(CORPUS), "--db", str(tmp_db_path))
    assert code == 0
    assert f"(0 new, {once['messages']} duplicates" in out
    assert counts(tmp_db_path) == once


# -- list / show / check / stats ------------------------------------------------------------


def test_list_formats_and_filters(runner: CliRunner, mail: Path, tmp_db_path: Path) -> None:
    db = str(scanned(runner, mail, tmp_db_path))
    code, out, _ = run(runner, "list", "--db", db, "--json")
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0
    assert {r["address"] for r in rows} == {"gone@example.com", "nobody@example.net"}
    assert all(r["type"] == "hard" and r["diagnostic"] for r in rows)
    code, out, _ = run(runner, "list", "--db", db, "--csv", "--domain", "example.net")
    assert list(csv.DictReader(io.StringIO(out)))[0]["address"] == "nobody@example.net"
    assert len(out.splitlines()) == 2
    code, out, _ = run(runner, "list", "--db", db, "--json", "--events", "--type", "soft")
    events = [json.loads(line) for line in out.splitlines()]
    assert [(e["recipient"], e["reason"], e["smtp_code"]) for e in events] == [
        ("full@example.org", "mailboxfull", "452")]
    code, out, _ = run(runner, "list", "--db", db, "--json", "--since", "2030-01-01")
    assert (code, out) == (0, "")
    code, out, _ = run(runner, "list", "--db", db, "--json", "--limit", "1")
    assert len(out.splitlines()) == 1
    code, _, err = run(runner, "list", "--db", db, "--since", "last tuesday")
    assert code == 2
    assert "'last tuesday': use YYYY-MM-DD" in err


def test_show_gives_state_why_action_and_history(
    runner: CliRunner, mail: Path, tmp_db_path: Path
) -> None:
    db = str(scanned(runner, mail, tmp_db_path))
    code, out, _ = run(runner, "show", "GONE@example.COM", "--db", db, "--json")
    assert code == 0
    info = json.loads(out)
    assert (info["address"], info["state"], info["hard_count"]) == (
        "gone@example.com", "active", 1)
    assert [e["smtp_code"] for e in info["events"]] == ["550"]
    code, out, _ = run(runner, "show", "Gone@EXAMPLE.com", "--db", db, "--table")
    assert code == 0
    assert "state:       active\n" in out
    assert "action:      verify or remove the address before mailing again\n" in out
    assert "550 5.1.1 User unknown" in out
    assert "\nhistory:\n" in out


def test_check_exit_status_and_stdin(runner: CliRunner, mail: Path, tmp_db_path: Path) -> None:
    db = str(scanned(runner, mail, tmp_db_path))
    assert run(runner, "check", "ok@example.com", "--db", db) == (0, "", "")
    code, out, _ = run(runner, "check", "ok@example.com", "<Gone@EXAMPLE.COM>", "--db", db)
    assert (code, out) == (1, "gone@example.com\n")
    lines = "\n".join([f"user{i}@example.com" for i in range(100_000)] + ["nobody@example.net"])
    code, out, _ = run(runner, "check", "-", "--db", db, input=lines)
    assert (code, out) == (1, "nobody@example.net\n")
    code, out, _ = run(runner, "check", "-", "--db", db, "--json", input="nobody@example.net\n")
    assert json.loads(out)["reason"] == "userunknown"


def test_stats(runner: CliRunner, mail: Path, tmp_db_path: Path) -> None:
    db = str(scanned(runner, mail, tmp_db_path))
    code, out, _ = run(runner, "stats", "--db", db, "--since", "all", "--json")
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0
    assert {"group": "classification", "key": "hard", "events": 2, "recipients": 2} in rows
    assert {"group": "day", "key": "2023-11-14", "events": 3, "recipients": 3} in rows
    code, out, _ = run(runner, "stats", "--db", db, "--since", "all", "--table")
    assert out.startswith("classification:\nkey ")
    code, out, _ = run(runner, "stats", "--db", db, "--json")  # default window: 30 days
    assert [json.loads(line)["group"] for line in out.splitlines()] == ["suppressions"]


def test_sender_side_shows_apart_and_does_not_suppress(
    runner: CliRunner, tmp_path: Path, tmp_db_path: Path
) -> None:
    folder = tmp_path / "auth"
    folder.mkdir()
    for i in range(4):
        (folder / f"{i}.eml").write_bytes(dsn(
            "good@gmail.example", status="5.7.26", code="550", tag=str(i),
            text="Unauthenticated email from example.org is not accepted due to domain's "
                 "DMARC policy (SPF and DKIM failed)"))
    db = str(scanned(runner, folder, tmp_db_path))
    assert run(runner, "check", "good@gmail.example", "--db", db)[0] == 0
    code, out, _ = run(runner, "stats", "--db", db, "--since", "all", "--json")
    sender = [json.loads(x) for x in out.splitlines() if '"sender_side"' in x]
    assert sender == [{"group": "sender_side", "key": "gmail.example authfailure",
                       "events": 4, "recipients": 1}]


# -- export / import --------------------------------------------------------------------------


def test_export_then_import_round_trip(
    runner: CliRunner, mail: Path, tmp_db_path: Path, tmp_path: Path
) -> None:
    db = str(scanned(runner, mail, tmp_db_path))
    code, out, _ = run(runner, "export", "--db", db)
    assert code == 0
    assert out.splitlines()[0] == ("address,type,reason,diagnostic,first_seen,last_seen,"
                                   "expires_at,source,note")
    export = tmp_path / "export.csv"
    export.write_text(out)
    other = str(tmp_path / "other.db")
    code, out, _ = run(runner, "import", str(export), "--db", other)
    assert (code, out) == (0, "2 rows: 2 suppressed, 0 already suppressed, 0 skipped "
                              "(no valid address)\n")
    with sqlite3.connect(other) as conn:
        assert conn.execute("SELECT address, source, classification, reason FROM suppressions "
                            "ORDER BY address").fetchall() == [
            ("gone@example.com", "import", "hard", "userunknown"),
            ("nobody@example.net", "import", "hard", "userunknown")]
    code, out, _ = run(runner, "export", "--db", other, "--json")
    assert [json.loads(x)["address"] for x in out.splitlines()] == [
        "gone@example.com", "nobody@example.net"]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        # Amazon SES (list-suppressed-destinations)
        ("EmailAddress,Reason,LastUpdateTime\nses@example.com,COMPLAINT,2024-01-01\n",
         ("ses@example.com", "complaint")),
        # Mailgun bounces
        ("address,code,error,created_at\nmg@example.com,550,No such user,2024-01-01\n",
         ("mg@example.com", "hard")),
        # Postmark
        ("EmailAddress,SuppressionReason,Origin,CreatedAt\npm@example.com,SpamComplaint,"
         "Recipient,2024-01-01\n", ("pm@example.com", "complaint")),
        # SendGrid bounces
        ("email,created,reason,status\nsg@example.com,1700000000,550 5.1.1 unknown,5.1.1\n",
         ("sg@example.com", "hard")),
    ],
)
def test_import_provider_exports(
    runner: CliRunner, tmp_path: Path, tmp_db_path: Path, content: str,
    expected: tuple[str, str],
) -> None:
    path = tmp_path / "in.csv"
    path.write_text(content)
    code, out, err = run(runner, "import", str(path), "--db", str(tmp_db_path))
    assert code == 0, err
    assert out.startswith("1 rows: 1 suppressed")
    with sqlite3.connect(tmp_db_path) as conn:
        assert conn.execute("SELECT address, classification FROM suppressions").fetchall() == [
            expected]


def test_import_bad_files_write_nothing(
    runner: CliRunner, tmp_path: Path, tmp_db_path: Path
) -> None:
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("name,phone\nBob,123\n")
    code, _, err = run(runner, "import", str(wrong), "--db", str(tmp_db_path))
    assert code == 1
    assert err == (f"Error: {wrong}: no address column (found: name, phone); name one column "
                   "'address' or 'email'\n")
    half = tmp_path / "half.csv"
    half.write_bytes(b"email\n" + b"ok@example.com\n" * 3000 + b"\xff\xfe\x00binary\n")
    code, _, err = run(runner, "import", str(half), "--db", str(tmp_db_path))
    assert code == 1
    assert err == f"Error: {half}: not a UTF-8 text file: expected CSV\n"
    no_addr = tmp_path / "noaddr.csv"
    no_addr.write_text("email\nnot-an-address\n")
    code, _, err = run(runner, "import", str(no_addr), "--db", str(tmp_db_path))
    assert (code, err) == (1, f"Error: {no_addr}: no valid email address in 1 rows: check "
                              "the address column\n")
    assert counts(tmp_db_path)["suppressions"] == 0


# -- manual changes, purge, reclassify, policy, schema ----------------------------------------


def test_suppress_and_unsuppress_by_hand(runner: CliRunner, tmp_db_path: Path) -> None:
    db = str(tmp_db_path)
    assert run(runner, "suppress", "x@Example.com", "--db", db, "--note", "asked", "--by",
               "ann") == (0, "suppressed x@Example.com\n", "")
    assert run(runner, "check", "x@example.com", "--db", db)[0] == 1
    assert run(runner, "unsuppress", "x@example.com", "--db", db, "--note", "oops", "--by",
               "bob") == (0, "unsuppressed x@example.com\n", "")
    assert run(runner, "check", "x@example.com", "--db", db)[0] == 0
    code, _, err = run(runner, "unsuppress", "x@example.com", "--db", db)
    assert (code, err) == (1, "Error: x@example.com is not suppressed: nothing to do\n")
    code, _, err = run(runner, "suppress", "bogus", "--db", db)
    assert (code, err) == (1, "Error: 'bogus' is not an email address: expected local@domain\n")
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT event, actor, note FROM suppression_history ORDER BY id"
                            ).fetchall() == [("suppressed", "ann", "asked"),
                                             ("unsuppressed", "bob", "oops")]


def test_purge_keeps_active_suppressions(
    runner: CliRunner, mail: Path, tmp_db_path: Path
) -> None:
    db = str(scanned(runner, mail, tmp_db_path))
    code, out, _ = run(runner, "purge", "--before", "2024-01-01", "--db", db)
    assert code == 0
    assert out == ("purged before 2024-01-01 00:00:00: 1 events, 0 messages, "
                   "0 inactive suppressions\n")
    # messages rows stay: they are the dedupe ledger (processed today, after the cutoff)
    assert counts(tmp_db_path)["bounces"] == 2
    assert counts(tmp_db_path)["messages"] == 3
    assert run(runner, "check", "nobody@example.net", "--db", db)[0] == 1
    assert run(runner, "purge", "--before", "soon", "--db", db)[0] == 2


def test_policy_change_and_reclassify(runner: CliRunner, mail: Path, tmp_db_path: Path) -> None:
    db = str(scanned(runner, mail, tmp_db_path))
    assert run(runner, "check", "full@example.org", "--db", db)[0] == 0
    assert run(runner, "policy", "set", "mailboxfull", "suppress", "--db", db) == (
        0, "mailboxfull = suppress\n", "")
    code, out, _ = run(runner, "reclassify", "--db", db)
    assert code == 0
    assert out == ("3 stored messages re-parsed (0 changed); events 3 -> 3; "
                   "active suppressions 2 -> 3\n")
    assert run(runner, "check", "full@example.org", "--db", db)[0] == 1
    code, _, err = run(runner, "policy", "set", "mailboxfull", "maybe", "--db", db)
    assert code == 1 and "unknown policy action 'maybe'" in err
    code, out, _ = run(runner, "policy", "show", "--db", db, "--json")
    rows = [json.loads(x) for x in out.splitlines()]
    assert {"name": "soft_threshold", "kind": "setting", "value": 3,
            "note": "soft bounces within soft_window_days that suppress"} in rows


def test_db_schema(runner: CliRunner, tmp_db_path: Path) -> None:
    code, out, _ = run(runner, "db", "schema", "--db", str(tmp_db_path))
    assert code == 0
    for name in ("messages", "bounces", "suppressions", "raw_messages", "checkpoints"):
        assert f'CREATE TABLE "{name}"' in out
    assert 'CREATE VIEW "bounces_by_domain"' in out


def test_db_env_variable(runner: CliRunner, mail: Path, tmp_path: Path,
                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILBOX_PROCESSOR_DB", str(tmp_path / "env.db"))
    assert run(runner, "scan", str(mail))[0] == 0
    assert counts(tmp_path / "env.db")["messages"] == 3


def test_every_command_has_help(runner: CliRunner) -> None:
    for name in ("scan", "list", "show", "check", "stats", "export", "import", "suppress",
                 "unsuppress", "purge", "reclassify", "policy", "db"):
        result = runner.invoke(cli, [name, "--help"])
        assert result.exit_code == 0
        assert "Example:" in result.output or name in ("policy", "db")


# -- the README's database section -----------------------------------------------------------


def _readme_section() -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index("<!-- section: database (issue 3) -->")
    return text[start:text.index("<!-- end section: database -->")]


def test_readme_queries_run(runner: CliRunner, mail: Path, tmp_db_path: Path) -> None:
    section = _readme_section()
    block = section[section.index("```sql") + 6:]
    block = block[:block.index("```")]
    queries = [q.strip() for q in block.split(";") if q.strip()]
    assert len(queries) == 10
    db = scanned(runner, mail, tmp_db_path)
    with sqlite3.connect(db) as conn:
        for q in queries:
            conn.execute(q).fetchall()
        streaks = conn.execute(queries[3]).fetchall()
    assert ("example.com", "userunknown", 1) in streaks


def test_readme_documents_every_table_and_column(tmp_db_path: Path) -> None:
    from mailbox_processor import store

    section = _readme_section()
    db = store.open_db(tmp_db_path)
    for table in db.table_names():
        assert f"`{table}`" in section, table
        for column in db.table(table).columns_dict:
            assert f"`{column}`" in section, f"{table}.{column}"
    for view in db.view_names():
        assert f"`{view}`" in section, view
    db.close()
