"""Score the engine on the shared, labelled corpus (../shared/corpus) with the bench scorer.

The acceptance marks of the parsing issue are asserted in ``test_acceptance_marks``;
``test_no_regression`` holds the engine to the (higher) figures it has reached, so
that no change makes it worse.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mailbox_processor.pipeline import parse_paths

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
CORPUS = SHARED / "corpus"
SCORER = SHARED / "bench" / "score.py"

pytestmark = pytest.mark.corpus


@pytest.fixture(scope="module")
def metrics(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    if not (CORPUS / "labels.jsonl").exists() or not SCORER.exists():
        pytest.skip(f"shared corpus not found at {CORPUS} (it sits beside the project root)")
    preds = tmp_path_factory.mktemp("score") / "preds.jsonl"
    with preds.open("w") as fh:
        for row in parse_paths([CORPUS / "emails"]):
            fh.write(json.dumps(row) + "\n")
    out = subprocess.run(
        [sys.executable, str(SCORER), "--corpus", str(CORPUS), "--predictions", str(preds),
         "--json"],
        capture_output=True, text=True, check=True,
    )
    return json.loads(out.stdout)


def rate(metrics: dict[str, Any], key: str) -> float:
    value = metrics[key]
    return float(value["rate"] if isinstance(value, dict) else value)


def count(metrics: dict[str, Any], key: str) -> int:
    value = metrics[key]
    return int(value["num"] if isinstance(value, dict) else value)


def test_every_message_is_covered(metrics: dict[str, Any]) -> None:
    assert rate(metrics, "message_coverage") == 1.0


def test_no_regression(metrics: dict[str, Any]) -> None:
    """The figures reached so far (raise them as the engine improves)."""
    assert rate(metrics, "hard_soft_agreement") >= 0.975
    assert rate(metrics, "reason_agreement") >= 0.92
    assert rate(metrics, "recipient_recall") >= 0.995
    assert rate(metrics, "recipient_precision") >= 0.995
    assert count(metrics, "false_suppressions") == 0


def test_acceptance_marks(metrics: dict[str, Any]) -> None:
    assert rate(metrics, "hard_soft_agreement") >= 0.97
    assert rate(metrics, "reason_agreement") >= 0.90
    assert rate(metrics, "recipient_recall") >= 0.99
    assert rate(metrics, "recipient_precision") >= 0.99
    assert count(metrics, "false_suppressions") == 0


def test_finds_every_failed_address_flufl_bounce_finds() -> None:
    """Never fewer failed addresses than flufl.bounce alone (scored against the labels).

    flufl.bounce's heuristics also report non-recipients (the sender, Message-IDs,
    fragments of JSON); the engine drops those on purpose. Every *labelled* failed
    address that flufl.bounce finds must be found by the engine too.
    """
    import email

    from flufl.bounce import all_failures

    from mailbox_processor import parse_message
    from mailbox_processor.text import normalise_address

    if not (CORPUS / "labels.jsonl").exists():
        pytest.skip(f"shared corpus not found at {CORPUS}")
    labels = [json.loads(line) for line in (CORPUS / "labels.jsonl").open()]
    missed = []
    flufl_hits = 0
    for label in labels:
        gold = set(label["recipients"] or [])
        raw = (CORPUS / "emails" / label["message"]).read_bytes()
        temporary, permanent = all_failures(email.message_from_bytes(raw))
        flufl = {normalise_address(a.decode("utf-8", "replace")) for a in temporary | permanent}
        ours = {v.recipient for v in parse_message(raw).verdicts}
        flufl_hits += len(flufl & gold)
        missed += [(label["message"], a) for a in (flufl & gold) - ours]
    assert flufl_hits > 250  # the comparison is not vacuous
    assert missed == []
