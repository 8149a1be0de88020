"""The quick form (lowercase twin) of the legacy parser's body-marker test agrees
with re.I."""

from __future__ import annotations

import re
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from mailbox_processor.mime import Mail
from mailbox_processor.parsers.legacy import _BODY_MARKER, _BODY_MARKER_QUICK

_body_marker = _BODY_MARKER_QUICK.found_in

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT.parent / "shared" / "corpus" / "emails"


def test_pattern_literals_are_lowercase() -> None:
    # Escapes such as \\S would change meaning if lowercased; letters must be lowercase.
    assert not re.search(r"(?<!\\)[A-Z]", _BODY_MARKER.pattern)


def test_real_notices() -> None:
    paths = sorted((ROOT / "fixtures").rglob("*.eml"))
    if CORPUS.is_dir():
        paths += sorted(CORPUS.iterdir())
    seen = {True: 0, False: 0}
    for path in paths:
        text = Mail.from_bytes(path.read_bytes()).notice_text[:5000]
        expected = _BODY_MARKER.search(text) is not None
        assert _body_marker(text) == expected
        seen[expected] += 1
    # Both answers occur (many more with the shared corpus beside the project).
    assert seen[True] > (10 if CORPUS.is_dir() else 0) and seen[False] > 0


WORDS = ["COULD NOT BE DELIVERED", "Undeliverable", "I'm afraid", "IM SORRY", "Rejected",
         "delivery to x@y FAILED", "Giving Up", "ERROR", "fail", "ed", " ", "\n", "ſ", "K",
         "Failed", "SMTP error", "Host Unknown", "x" * 90]


@given(st.lists(st.sampled_from(WORDS), max_size=12))
def test_generated(words: list[str]) -> None:
    text = "".join(words)
    assert _body_marker(text) == (_BODY_MARKER.search(text) is not None)
