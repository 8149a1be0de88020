"""The legacy parser's faster way of running flufl.bounce gives all_failures' answer."""

from __future__ import annotations

import email
from collections.abc import Callable
from email.message import Message
from pathlib import Path

import pytest
from flufl.bounce import all_failures
from hypothesis import given
from strategies import edited_samples

from mailbox_processor.mime import Mail
from mailbox_processor.parsers.context import cut_returned
from mailbox_processor.parsers.legacy import _flufl_failures, _notice_only

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT.parent / "shared" / "corpus" / "emails"
MAILDIR = ROOT / "fixtures" / "maildir"
SAMPLES = sorted(p for sub in ("cur", "new") for p in (MAILDIR / sub).iterdir())
SAMPLES += sorted((ROOT / "fixtures" / "malformed").glob("*.eml"))


def outcome(fn: Callable[[Message], object], msg: Message) -> object:
    """The answer, or the exception's type: some detectors raise on odd input."""
    try:
        result = fn(msg)
    except Exception as exc:  # compared, not hidden
        return type(exc)
    assert isinstance(result, tuple)
    return tuple(frozenset(x) for x in result)


def same_answer(raw: bytes) -> bool:
    """Compare on the whole message and on the notice-only view the parser uses;
    True when flufl.bounce found anything (so that the test can count real cases)."""
    msg = email.message_from_bytes(raw)
    expected = outcome(all_failures, msg)
    assert outcome(_flufl_failures, msg) == expected
    mail = Mail.from_bytes(raw)
    notice = _notice_only(mail, cut_returned(mail.notice_text))
    assert outcome(_flufl_failures, notice) == outcome(all_failures, notice)
    return isinstance(expected, tuple) and any(expected)


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_fixtures(path: Path) -> None:
    same_answer(path.read_bytes())


@pytest.mark.skipif(not CORPUS.is_dir(), reason="../shared/corpus is not beside the project")
def test_shared_corpus() -> None:
    found = sum(same_answer(p.read_bytes()) for p in sorted(CORPUS.iterdir()))
    assert found > 200  # flufl.bounce finds something in most of the corpus


@given(edited_samples(SAMPLES, [
    b"\n", b"\n\n", b"Delivery has failed\n", b"- no such user here\n",
    b"<a@example.org>:\n", b"X-Failed-Recipients: b@example.org\n"],
    max_edits=4, max_cut=200))
def test_mutated(raw: bytes) -> None:
    same_answer(raw)
