"""Samples and hypothesis strategies shared by the tests that compare a shortcut with
the plain code it replaces."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus" / "emails"


def sample_paths() -> list[Path]:
    """Every fixture message, then the shared corpus's emails when it is beside us."""
    paths = sorted(p for p in (ROOT / "fixtures").rglob("*") if p.is_file()
                   and p.suffix not in (".py", ".md"))
    if CORPUS.is_dir():
        paths += sorted(p for p in CORPUS.iterdir() if p.is_file())
    return paths


def enough(with_corpus: int, fixtures_only: int) -> int:
    """A floor for how many samples a test exercised: the corpus is not always beside
    the project (a clean clone), and the fixtures alone give fewer."""
    return with_corpus if CORPUS.is_dir() else fixtures_only


def edited_samples(
    samples: Sequence[Path], inserts: Sequence[bytes], *, max_edits: int, max_cut: int
) -> st.SearchStrategy[bytes]:
    """One of ``samples`` (read from disk) with 1 to ``max_edits`` edits, each a cut of
    up to ``max_cut`` bytes or one of ``inserts`` put in at any position."""

    @st.composite
    def build(draw: st.DrawFn) -> bytes:
        raw = bytearray(draw(st.sampled_from(samples)).read_bytes())
        for _ in range(draw(st.integers(min_value=1, max_value=max_edits))):
            if not raw:
                break
            pos = draw(st.integers(min_value=0, max_value=len(raw) - 1))
            if draw(st.booleans()):
                del raw[pos : pos + draw(st.integers(min_value=1, max_value=max_cut))]
            else:
                raw[pos:pos] = draw(st.sampled_from(inserts))
        return bytes(raw)

    return build()


def eager_context(finding: Any, func: Callable[..., Any], *args: Any) -> Any:
    """``models.defer_context`` as it was before: the context worked out at once, in
    parse order (patched into a parser to compare with the deferred one)."""
    finding.__dict__["context"] = func(*args)
    return finding
