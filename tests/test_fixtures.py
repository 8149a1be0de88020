"""The sample mail itself is sound: a valid Maildir of well-formed, anonymised messages.

These tests check the fixtures, not the engine: they keep hand edits to
``fixtures/`` honest (STYLE.md, "Our conventions" 13).
"""

from __future__ import annotations

import email
import email.policy
import mailbox
import re
from email.utils import getaddresses, parsedate_to_datetime
from pathlib import Path

import pytest

from mailbox_processor.sources.files import is_maildir, iter_paths

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
MAILDIR = FIXTURES / "maildir"
MALFORMED = FIXTURES / "malformed"

MAILDIR_FILES = sorted(
    p for sub in ("cur", "new") for p in (MAILDIR / sub).iterdir() if not p.name.startswith(".")
)
ALL_MAIL_FILES = MAILDIR_FILES + sorted(MALFORMED.glob("*.eml"))

#: name of a delivered Maildir file: time.unique.host, then ":2,FLAGS" in cur/ only
MAILDIR_NAME = re.compile(r"^\d{10}\.M\d+P\d+\.[a-z0-9.-]+(:2,[A-Z]*)?$")
ADDRESS = re.compile(rb"[A-Za-z0-9._%+=-]+@((?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,})")
EXAMPLE_DOMAIN = re.compile(r"(^|\.)example\.(com|org|net)$", re.I)


def _rel(p: Path) -> str:
    return str(p.relative_to(FIXTURES))


def test_maildir_layout() -> None:
    assert is_maildir(MAILDIR)
    assert (MAILDIR / "tmp").is_dir()
    assert [p.name for p in (MAILDIR / "tmp").iterdir()] == [".gitkeep"]
    assert 18 <= len(MAILDIR_FILES) <= 25
    for p in MAILDIR_FILES:
        assert MAILDIR_NAME.match(p.name), p.name
        in_cur = p.parent.name == "cur"
        assert (":2," in p.name) == in_cur, f"{p.name}: info suffix only in cur/"


def test_mailbox_module_lists_every_message() -> None:
    box = mailbox.Maildir(str(MAILDIR), factory=None, create=False)
    keys = box.keys()
    assert len(keys) == len(MAILDIR_FILES)
    for key in keys:
        msg = box[key]
        assert msg["Message-ID"], key
    assert set(keys) == {p.name.split(":")[0] for p in MAILDIR_FILES}


def test_file_source_reads_the_maildir() -> None:
    records = list(iter_paths([MAILDIR]))
    assert len(records) == len(MAILDIR_FILES)
    assert all(r.error is None and r.raw for r in records)


@pytest.mark.parametrize("path", MAILDIR_FILES, ids=_rel)
def test_maildir_message_is_well_formed(path: Path) -> None:
    raw = path.read_bytes()
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    for name in ("From", "To", "Subject", "Date", "Message-ID"):
        assert msg[name], f"missing {name}"
    assert parsedate_to_datetime(str(msg["Date"])) is not None
    assert re.fullmatch(r"\s*<[^<>\s]+@[^<>\s]+>\s*", str(msg["Message-ID"]))
    defects = [(part.get_content_type(), d) for part in msg.walk() for d in part.defects]
    assert defects == []
    for part in msg.walk():
        if part.get_content_type() == "message/delivery-status":
            fields = b"".join(bytes(p) for p in part.get_payload())
            assert b"Final-Recipient:" in fields or b"Final-recipient:" in fields


@pytest.mark.parametrize("path", ALL_MAIL_FILES, ids=_rel)
def test_addresses_are_anonymised(path: Path) -> None:
    raw = path.read_bytes()
    domains = {m.group(1).decode("ascii").lower() for m in ADDRESS.finditer(raw)}
    outside = sorted(d for d in domains if not EXAMPLE_DOMAIN.search(d))
    assert outside == []


@pytest.mark.parametrize("path", MAILDIR_FILES, ids=_rel)
def test_header_addresses_are_anonymised(path: Path) -> None:
    msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.compat32)
    names = ("From", "To", "Cc", "Reply-To", "Return-Path")
    pairs = getaddresses([str(v) for k in names for v in msg.get_all(k, [])])
    for _, addr in pairs:
        if addr and "@" in addr:
            assert EXAMPLE_DOMAIN.search(addr.rsplit("@", 1)[1]), addr


def test_readme_lists_every_fixture() -> None:
    readme = (FIXTURES / "README.md").read_text(encoding="utf-8")
    files = ALL_MAIL_FILES + [MALFORMED / "make_large.py"]
    missing = [_rel(p) for p in files if p.name not in readme]
    assert missing == []


def _header_block(raw: bytes) -> bytes:
    return raw.split(b"\n\n", 1)[0]


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


#: each malformed file still has the flaw it is named for (guards against "tidying")
MALFORMED_FLAWS = {
    "empty.eml": lambda raw: raw == b"",
    "binary-junk.eml": lambda raw: len(raw) == 4096 and not _is_utf8(raw),
    "truncated-mime.eml": lambda raw: b"boundary=" in raw
    and b"--4SW1.trunc/mail.example.org--" not in raw,
    "missing-boundary.eml": lambda raw: b"multipart/report" in raw
    and b"boundary=" not in _header_block(raw),
    "broken-boundary.eml": lambda raw: b'boundary="=_part_A_1700040005"' in raw
    and b"--=_part_A_1700040005" not in raw,
    "unknown-charset.eml": lambda raw: raw.count(b"x-no-such") >= 2,
    "lying-charset.eml": lambda raw: b'charset="utf-8"' in raw and not _is_utf8(raw),
    "raw-8bit-headers.eml": lambda raw: any(b > 127 for b in _header_block(raw)),
    "nested-200.eml": lambda raw: raw.count(b"Content-Type: message/rfc822") == 200,
    "headers-only.eml": lambda raw: b"\n\n" not in raw and b"multipart/report" in raw,
    "garbage-dsn-fields.eml": lambda raw: b"\x00" in raw and b"Status: 9.99.999x" in raw,
    "bad-base64.eml": lambda raw: b"Content-Transfer-Encoding: base64" in raw
    and b"!!!!" in raw,
}


def test_every_malformed_file_has_a_flaw_check() -> None:
    assert set(MALFORMED_FLAWS) == {p.name for p in MALFORMED.glob("*.eml")}


@pytest.mark.parametrize("name", sorted(MALFORMED_FLAWS))
def test_malformed_file_keeps_its_flaw(name: str) -> None:
    raw = (MALFORMED / name).read_bytes()
    assert MALFORMED_FLAWS[name](raw)
    # the standard library copes with every one of them: a crash is the engine's own
    email.message_from_bytes(raw, policy=email.policy.compat32)
