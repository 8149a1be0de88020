"""Bad input never crashes or hangs the engine (DESIGN.md invariant 3).

- every file in fixtures/malformed parses to a Report, within a time bound, with
  ``error`` or ``problems`` set where the input is bad, and the recipient still found
  where the delivery report itself survived;
- the two large inputs built by fixtures/malformed/make_large.py (in a tmp dir);
- hypothesis: arbitrary bytes, mutated real bounces, random header soup.

The time bounds are hang guards, not benchmarks.
"""

from __future__ import annotations

import importlib.util
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailbox_processor.engine import parse_message
from mailbox_processor.fastmime import MAX_NESTING
from mailbox_processor.models import Classification, Report

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
MALFORMED = FIXTURES / "malformed"
MAILDIR = FIXTURES / "maildir"

SMALL_LIMIT = 5.0  # seconds per small malformed file
LARGE_LIMIT = 30.0  # seconds for the 50 MB message and the 10,000-recipient DSN

#: file -> (input is bad: error or problems must be set,
#:          (recipient, classification, reason) that must still be found, or None)
MALFORMED_CASES: dict[str, tuple[bool, tuple[str, str, str] | None]] = {
    "truncated-mime.eml": (True, ("lena@example.com", "hard", "userunknown")),
    "missing-boundary.eml": (True, ("mia@example.com", "hard", "userunknown")),
    "broken-boundary.eml": (True, ("noah@example.com", "hard", "userunknown")),
    "unknown-charset.eml": (True, ("olga@example.com", "hard", "userunknown")),
    "lying-charset.eml": (True, ("pablo@example.com", "hard", "userunknown")),
    "raw-8bit-headers.eml": (True, ("quinn@example.com", "hard", "userunknown")),
    "nested-200.eml": (False, None),
    "binary-junk.eml": (True, None),
    "empty.eml": (True, None),
    "headers-only.eml": (True, None),
    "garbage-dsn-fields.eml": (True, ("nina@example.com", "hard", "userunknown")),
    "bad-base64.eml": (True, None),
}


class Hang(BaseException):
    """Raised inside the engine by the alarm when a parse runs past its bound.

    A BaseException, so that the engine's own ``except Exception`` guards (one parser
    failing must not lose the message) cannot swallow it.
    """


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Interrupt the block after ``seconds`` (SIGALRM, main thread; else no guard)."""
    if not hasattr(signal, "setitimer"):
        yield
        return

    def on_alarm(signum: int, frame: object) -> None:
        raise Hang(f"parse did not finish within {seconds} s")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def parse_bounded(raw: bytes, limit: float) -> tuple[Report, float]:
    start = time.monotonic()
    with time_limit(limit + 1):
        report = parse_message(raw)
    elapsed = time.monotonic() - start
    assert elapsed < limit, f"took {elapsed:.1f} s (bound {limit} s)"
    return report, elapsed


def check_shape(report: object) -> None:
    """The invariants every result holds, whatever the input."""
    assert isinstance(report, Report)
    assert isinstance(report.verdicts, tuple)
    assert isinstance(report.problems, tuple)
    assert all(isinstance(p, str) for p in report.problems)
    assert report.error is None or isinstance(report.error, str)
    for v in report.verdicts:
        assert isinstance(v.classification, Classification)
        rcpt = v.finding.recipient
        assert rcpt is None or (isinstance(rcpt, str) and "@" in rcpt), rcpt
        assert v.reason is None or isinstance(v.reason, str)
    report.rows()  # flattening for output must work too


# -- fixtures/malformed ------------------------------------------------------


def test_every_malformed_file_is_in_the_table() -> None:
    on_disk = {p.name for p in MALFORMED.glob("*.eml")}
    assert on_disk == set(MALFORMED_CASES)


@pytest.mark.parametrize("name", sorted(MALFORMED_CASES))
def test_malformed_never_raises(name: str) -> None:
    bad, _ = MALFORMED_CASES[name]
    report, _ = parse_bounded((MALFORMED / name).read_bytes(), SMALL_LIMIT)
    check_shape(report)
    if bad:
        assert report.error or report.problems, "bad input but no error and no problems"


SALVAGE = sorted((n, c[1]) for n, c in MALFORMED_CASES.items() if c[1] is not None)


@pytest.mark.parametrize(("name", "expected"), SALVAGE, ids=[n for n, _ in SALVAGE])
def test_malformed_report_still_read(name: str, expected: tuple[str, str, str]) -> None:
    """Where the delivery report itself is intact, its recipient is still found."""
    report, _ = parse_bounded((MALFORMED / name).read_bytes(), SMALL_LIMIT)
    found = [(v.recipient, v.classification.value, v.reason) for v in report.verdicts]
    assert expected in found


def test_empty_input_is_an_error() -> None:
    report, _ = parse_bounded(b"", SMALL_LIMIT)
    assert report.error
    assert report.verdicts == ()


def test_garbage_fields_give_no_bogus_recipients() -> None:
    report, _ = parse_bounded((MALFORMED / "garbage-dsn-fields.eml").read_bytes(), SMALL_LIMIT)
    recipients = {v.recipient for v in report.verdicts}
    assert recipients <= {"nina@example.com", None}


# -- pathological shapes, built in memory -------------------------------------

_POSTFIX = MAILDIR / "cur" / "1700000101.M101P4101.mx.example.org:2,S"
_POSTFIX_RCPT = ("alice.nobody@example.com", "hard", "userunknown")


def _nest_rfc822(depth: int) -> bytes:
    head = "".join(
        f"From: fwd{i}@example.org\nSubject: Fwd: {i}\nContent-Type: message/rfc822\n\n"
        for i in range(depth)
    )
    return (head + "From: z@example.org\nSubject: bottom\n\nbottom\n").encode()


def _nest_multipart(depth: int) -> bytes:
    out = ["From: deep@example.org\nSubject: deep\n"]
    out += [f'Content-Type: multipart/mixed; boundary="b{i}"\n\n--b{i}\n' for i in range(depth)]
    out.append("Content-Type: text/plain\n\nbottom\n")
    out += [f"--b{i}--\n" for i in reversed(range(depth))]
    return "".join(out).encode()


def _shapes() -> dict[str, tuple[bytes, tuple[str, str, str] | None]]:
    base = _POSTFIX.read_bytes()
    many = b"--b\nContent-Type: text/plain\n\nhi\n" * 20_000
    return {
        "rfc822-nested-5000": (_nest_rfc822(5000), None),
        "multipart-nested-5000": (_nest_multipart(5000), None),
        "header-line-2mb": (b"X-Long: " + b"a" * 2_000_000 + b"\n" + base, _POSTFIX_RCPT),
        "body-line-5mb": (
            base.replace(b"This is our monthly letter.", b"x" * 5_000_000), _POSTFIX_RCPT
        ),
        "diagnostic-1mb": (
            base.replace(b"virtual mailbox table", b"table " + b"y " * 500_000), _POSTFIX_RCPT
        ),
        "parts-20000": (
            b"From: a@example.org\nSubject: s\nContent-Type: multipart/mixed; boundary=b\n\n"
            + many + b"--b--\n",
            None,
        ),
        "no-newline-3mb": (b"Subject: " + b"z" * 3_000_000, None),
        "cr-line-endings": (base.replace(b"\n", b"\r"), None),
        "legacy-lines-50000": (
            b"From: MAILER-DAEMON@example.org\nSubject: Undelivered Mail Returned to Sender\n\n"
            + b"<u@example.com>: user unknown\n" * 50_000,
            None,
        ),
    }


SHAPES = sorted(_shapes())


@pytest.mark.parametrize("nest", [_nest_multipart, _nest_rfc822])
def test_nesting_is_refused_past_the_limit(nest: Callable[[int], bytes]) -> None:
    """Parts nested up to fastmime.MAX_NESTING deep are read; one level more is an
    error, the same wherever the parse runs and in both builds."""
    assert parse_message(nest(MAX_NESTING - 1)).error is None
    report = parse_message(nest(MAX_NESTING))
    assert report.error == f"cannot parse message: MIME parts nested more than {MAX_NESTING} deep"
    assert report.verdicts == ()


@pytest.mark.parametrize("nest", [_nest_multipart, _nest_rfc822])
def test_very_deep_nesting_is_an_error_not_a_crash(nest: Callable[[int], bytes]) -> None:
    """100,000 levels: compiled, the parser's calls are C calls, which Python's recursion
    limit does not stop (past some 25,000 levels the C stack overflowed). In a child
    process, so that a crash fails this test instead of ending the suite."""
    code = ("import sys; from mailbox_processor.engine import parse_message; "
            "print(parse_message(sys.stdin.buffer.read()).error)")
    done = subprocess.run([sys.executable, "-c", code], input=nest(100_000),
                          capture_output=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    assert "nested more than" in done.stdout.decode()


@pytest.mark.parametrize("name", SHAPES)
def test_pathological_shapes(name: str) -> None:
    raw, expected = _shapes()[name]
    report, _ = parse_bounded(raw, SMALL_LIMIT)
    check_shape(report)
    if expected is not None:
        found = [(v.recipient, v.classification.value, v.reason) for v in report.verdicts]
        assert expected in found


# -- large inputs, built at test time ----------------------------------------


@pytest.fixture(scope="module")
def make_large() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_large", MALFORMED / "make_large.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("make_large", module)
    spec.loader.exec_module(module)
    return module


def test_large_message(make_large: ModuleType, tmp_path: Path) -> None:
    path = make_large.build_large_message(tmp_path)
    raw = path.read_bytes()
    assert len(raw) >= 50 * 1024 * 1024
    report, _ = parse_bounded(raw, LARGE_LIMIT)
    check_shape(report)
    found = [(v.recipient, v.classification.value, v.reason) for v in report.verdicts]
    assert found == [(make_large.LARGE_RECIPIENT, "hard", "userunknown")]


def test_many_recipients(make_large: ModuleType, tmp_path: Path) -> None:
    path = make_large.build_many_recipients(tmp_path)
    report, _ = parse_bounded(path.read_bytes(), LARGE_LIMIT)
    check_shape(report)
    assert len(report.verdicts) == make_large.MANY_COUNT
    expected = {make_large.many_recipient(i) for i in range(1, make_large.MANY_COUNT + 1)}
    assert {v.recipient for v in report.verdicts} == expected
    assert {(v.classification.value, v.reason, v.finding.status) for v in report.verdicts} == {
        ("hard", "userunknown", "5.1.1")
    }


# -- property tests ----------------------------------------------------------

# The profile in conftest.py decides the number of examples and the randomness
# (derandomized in the suite; HYPOTHESIS_PROFILE=explore for a deep random search).
FAST = settings(
    database=None,  # leave no .hypothesis/ directory in the working tree
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

REAL_BOUNCES = sorted(
    p.read_bytes() for sub in ("cur", "new") for p in (MAILDIR / sub).iterdir()
    if not p.name.startswith(".")
)


@FAST
@given(st.binary(max_size=4096))
def test_arbitrary_bytes(raw: bytes) -> None:
    check_shape(parse_message(raw))


@st.composite
def mutated_bounce(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(REAL_BOUNCES)))
    for _ in range(draw(st.integers(min_value=1, max_value=8))):
        if not data:
            break
        op = draw(st.sampled_from(["flip", "truncate", "delete", "insert", "duplicate"]))
        pos = draw(st.integers(min_value=0, max_value=len(data) - 1))
        if op == "flip":
            data[pos] = draw(st.integers(min_value=0, max_value=255))
        elif op == "truncate":
            del data[pos:]
        elif op == "delete":
            del data[pos : pos + draw(st.integers(min_value=1, max_value=200))]
        elif op == "insert":
            data[pos:pos] = draw(
                st.sampled_from(
                    [b"\n", b"\r\n", b"\x00", b"\n\n", b"--", b": ", b"\xff\xfe",
                     b"=?utf-8?b?", b"Content-Type: multipart/mixed\n", b"<", b"@"]
                )
            )
        else:
            end = min(len(data), pos + draw(st.integers(min_value=1, max_value=400)))
            data[pos:pos] = data[pos:end]
    return bytes(data)


@FAST
@given(mutated_bounce())
def test_mutated_bounces(raw: bytes) -> None:
    check_shape(parse_message(raw))


HEADER_NAMES = [
    "From", "To", "Subject", "Date", "Message-ID", "MIME-Version", "Content-Type",
    "Content-Transfer-Encoding", "Content-Disposition", "Auto-Submitted", "Return-Path",
    "X-Failed-Recipients", "Final-Recipient", "Original-Recipient", "Action", "Status",
    "Diagnostic-Code", "Reporting-MTA", "Feedback-Type", "Original-Rcpt-To", "Received",
    "X-Weird\x00Name", "",
]
HEADER_VALUES = [
    "multipart/report; report-type=delivery-status; boundary=\"b\"",
    "multipart/report; report-type=feedback-report; boundary=b",
    "message/delivery-status", "message/rfc822", "text/rfc822-headers", "multipart/mixed",
    "text/plain; charset=x-no-such", "base64", "quoted-printable", "auto-replied",
    "failed", "delayed", "delivered", "5.1.1", "4.4.7", "9.9.9", "rfc822; x@example.com",
    "rfc822;", "<>", "MAILER-DAEMON@example.org", "=?utf-8?q?=C3=A9?=", "=?x-bad?b?!!?=",
    "smtp; 550 5.1.1 user unknown", "abuse",
]


@st.composite
def header_soup(draw: st.DrawFn) -> bytes:
    lines = []
    for _ in range(draw(st.integers(min_value=0, max_value=25))):
        name = draw(st.sampled_from(HEADER_NAMES) | st.text(max_size=12))
        value = draw(st.sampled_from(HEADER_VALUES) | st.text(max_size=60))
        sep = draw(st.sampled_from([": ", ":", " : ", "\n ", ""]))
        lines.append(f"{name}{sep}{value}")
    eol = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    head = eol.join(lines).encode("utf-8", "surrogateescape")
    body = draw(
        st.sampled_from([b"", b"--b\n", b"--b\nContent-Type: message/delivery-status\n\n"])
        | st.binary(max_size=300)
    )
    return head + (eol * 2).encode() + body


@FAST
@given(header_soup())
def test_header_soup(raw: bytes) -> None:
    check_shape(parse_message(raw))


@pytest.mark.parametrize("name", [n for n in HEADER_NAMES if n and "\x00" not in n] + [
    "Precedence", "X-Auto-Response-Suppress", "Reply-To", "Sender", "X-Autoreply",
])
@pytest.mark.parametrize("part", ["outer", "inner"])
def test_eight_bit_header_anywhere(name: str, part: str) -> None:
    """compat32 hands an undecodable 8-bit header over as an ``email.header.Header``,
    not a str (found by hypothesis: a raw 0xC2 0x80 Content-Disposition crashed the
    notice-text reader). Every header any parser reads must survive it."""
    bad = f"{name}: \udcc2\udc80 x\n".encode("utf-8", "surrogateescape")
    dsn = (b"--b\nContent-Type: text/plain\n" + (bad if part == "inner" else b"")
           + b"\nnotice\n--b\nContent-Type: message/delivery-status\n\n"
           b"Final-Recipient: rfc822; ann@example.org\nAction: failed\nStatus: 5.1.1\n--b--\n")
    raw = (b"From: MAILER-DAEMON@example.net\nSubject: Undelivered Mail Returned to Sender\n"
           b"Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\n"
           + (bad if part == "outer" else b"") + b"\n" + dsn)
    report = parse_message(raw)
    check_shape(report)
    if name not in ("Content-Type", "Content-Transfer-Encoding", "MIME-Version"):
        assert [(v.recipient, v.reason) for v in report.verdicts] == [
            ("ann@example.org", "userunknown")]


def test_nul_in_charset_name() -> None:
    """``codecs.lookup`` raises ValueError, not LookupError, on a NUL in the name
    (found by hypothesis on a mutated Exim bounce)."""
    raw = (b"From: Mail Delivery System <Mailer-Daemon@relay.example.net>\n"
           b"Subject: Mail delivery failed: returning message to sender\n"
           b"X-Failed-Recipients: erin@example.org\n"
           b"Content-Type: text/plain; charset=\x00us-ascii\n\n"
           b"A message that you sent could not be delivered to one or more of its\n"
           b"recipients. This is a permanent error. The following address(es) failed:\n\n"
           b"  erin@example.org\n    Unrouteable address\n")
    report = parse_message(raw)
    check_shape(report)
    assert [v.recipient for v in report.verdicts] == ["erin@example.org"]
