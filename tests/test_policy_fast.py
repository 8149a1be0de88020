"""The policy's shortcuts against the plain code they replace (the oracles live here).

- ``Policy.action_for`` reads a table filled at creation: the oracle is the same
  policy with the table emptied (every answer worked out from the rules).
- ``decide`` makes one pass with one action per event: the oracle filters, then
  asks the policy twice per event, as it used to.
- ``plan_address`` counts with lists: the oracle uses a ``Counter`` and generators.
- ``apply_to_messages`` reads events with ``processed_at`` (a join per event) only for
  addresses unsuppressed by hand: the oracle reads it for every address.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailbox_processor import store
from mailbox_processor.models import REASONS, Classification
from mailbox_processor.policy import (
    ACTIVE,
    Action,
    Decision,
    Policy,
    _decision,
    decide,
    plan_address,
)

NOW = "2025-06-30 12:00:00"
CLASSES = [c.value for c in Classification]
REASON_WORDS = [None, "", "no-such-reason", *sorted(REASONS)]


def plain_decide(events: Sequence[Mapping[str, Any]], policy: Policy, *, now: str,
                 after: str | None = None) -> Decision | None:
    """``decide`` as it was: filter the live events, then the hard ones, then the soft."""
    live = [e for e in events if after is None or (e.get("processed_at") or "") > after]
    hard = [
        e for e in live
        if policy.action_for(e["classification"], e.get("reason")) is Action.SUPPRESS
    ]
    soft = [e for e in live
            if policy.action_for(e["classification"], e.get("reason")) is Action.COUNT]
    # What follows the sorting of the events into hard and soft did not change.
    return _decision(hard, soft, policy, now)


def plain_counts(events: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The counts and times ``plan_address`` puts in a row, as it used to work them out."""
    counts = Counter(e["classification"] for e in events)
    return {
        "hard_count": counts.get("hard", 0),
        "soft_count": counts.get("soft", 0),
        "complaint_count": counts.get("complaint", 0),
        "first_seen": min((e["occurred_at"] for e in events), default=None),
        "last_seen": max((e["occurred_at"] for e in events), default=None),
    }


def plain_policy(policy: Policy) -> Policy:
    """``policy`` with its table emptied: every action worked out from the rules."""
    object.__setattr__(policy, "_table", {})
    return policy


policies = st.builds(
    lambda changes, threshold: Policy(
        actions={**Policy().actions, **changes}, soft_threshold=threshold),
    st.dictionaries(st.sampled_from([*sorted(REASONS), "custom"]), st.sampled_from(list(Action)),
                    max_size=8),
    st.integers(min_value=1, max_value=4),
)

times = st.builds(lambda d, h: f"2025-06-{d:02d} {h:02d}:00:00",
                  st.integers(min_value=1, max_value=30), st.integers(min_value=0, max_value=23))

events_lists = st.lists(
    st.fixed_dictionaries({
        "classification": st.sampled_from(CLASSES),
        "reason": st.sampled_from([*REASON_WORDS, "custom"]),
        "occurred_at": times,
        "processed_at": st.one_of(st.none(), times),
        "diagnostic": st.sampled_from([None, "550 no such user", "452 full"]),
    }),
    max_size=12,
)


@settings(max_examples=60, deadline=None)
@given(policies)
def test_action_table_equals_the_rules(policy: Policy) -> None:
    plain = plain_policy(Policy(actions=policy.actions))
    for classification in CLASSES:
        for reason in [*REASON_WORDS, "custom", "other"]:
            assert policy.action_for(classification, reason) is plain.action_for(
                classification, reason)


def test_unknown_classification_is_still_an_error() -> None:
    with pytest.raises(ValueError):
        Policy().action_for("nonsense", "userunknown")


@settings(max_examples=300, deadline=None)
@given(policies, events_lists, st.one_of(st.none(), times))
def test_decide_equals_the_plain_one(policy: Policy, events: list[dict[str, Any]],
                                     after: str | None) -> None:
    for now in (NOW, "2025-06-10 00:00:00"):
        assert decide(events, policy, now=now, after=after) == plain_decide(
            events, policy, now=now, after=after)


@settings(max_examples=200, deadline=None)
@given(policies, events_lists)
def test_plan_address_counts_equal_the_plain_ones(policy: Policy,
                                                   events: list[dict[str, Any]]) -> None:
    events.sort(key=lambda e: e["occurred_at"])
    change = plan_address("a@example.com", None, events, policy, now=NOW)
    if change.row is not None:
        assert {k: change.row[k] for k in plain_counts(events)} == plain_counts(events)
    existing = {"address": "a@example.com", "state": ACTIVE, "source": "manual"}
    kept = plan_address("a@example.com", existing, events, policy, now=NOW)
    assert kept.row is not None
    assert {k: kept.row[k] for k in plain_counts(events)} == plain_counts(events)


def _plain_events_of(real: Any) -> Any:
    """``store.events_of`` that always reads ``processed_at`` (the oracle's read)."""
    def events_of(db: Any, addresses: Any, columns: Any = None, *,
                  processed_at: bool = True) -> Any:
        return real(db, addresses, columns)
    return events_of


@pytest.mark.parametrize("batch_size", [1, 2, 7])
def test_processed_at_only_for_removed_suppressions_changes_nothing(batch_size: int) -> None:
    """apply_to_messages reads ``processed_at`` only for addresses unsuppressed by hand:
    every outcome and row equals the run that reads it for every address."""
    from mailbox_processor import pipeline, policy
    from mailbox_processor.models import Finding, Report, Verdict
    from mailbox_processor.pipeline import ingest_batch
    from mailbox_processor.sources import RawMessage

    def rep(address: str, cls: str, reason: str, day: int) -> Report:
        return Report(verdicts=(Verdict(Finding(recipient=address, diagnostic=reason),
                                        Classification(cls), reason, "r"),),
                      parser="test", date=f"Mon, {day} Jun 2025 10:00:00 +0000")

    first = {b"a1": rep("a@x.org", "hard", "userunknown", 2),
             b"b1": rep("b@x.org", "soft", "mailboxfull", 2),
             b"b2": rep("b@x.org", "soft", "mailboxfull", 3),
             b"b3": rep("b@x.org", "soft", "mailboxfull", 4),
             b"c1": rep("c@x.org", "soft", "mailboxfull", 4)}
    later = {b"a2": rep("a@x.org", "soft", "mailboxfull", 5),
             b"b4": rep("b@x.org", "soft", "mailboxfull", 6),
             b"c2": rep("c@x.org", "hard", "userunknown", 6),
             b"a3": rep("a@x.org", "hard", "hostunknown", 7),
             b"b5": rep("b@x.org", "soft", "mailboxfull", 7),
             b"b6": rep("b@x.org", "soft", "mailboxfull", 7),
             b"d1": rep("d@x.org", "hard", "userunknown", 8)}
    reports = {**first, **later}
    results = []
    for plain in (False, True):
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(pipeline, "parse_message", reports.__getitem__)
            if plain:
                mp.setattr(store, "events_of", _plain_events_of(store.events_of))
            db = store.open_db(":memory:")
            ingest_batch(db, [RawMessage(source=k.decode(), raw=k) for k in first],
                         now="2025-06-05 00:00:00")
            for address in ("a@x.org", "b@x.org"):
                policy.unsuppress_address(db, address, actor="ops", now="2025-06-05 12:00:00")
            keys = list(later)
            outcomes = []
            for i in range(0, len(keys), batch_size):
                outcomes += [o.newly_suppressed for o in ingest_batch(
                    db, [RawMessage(source=k.decode(), raw=k) for k in keys[i:i + batch_size]],
                    now=f"2025-06-{10 + i:02d} 00:00:00")]
            results.append((outcomes, *(db.execute(f"SELECT * FROM {t} ORDER BY rowid")
                                        .fetchall()
                                        for t in ("suppressions", "suppression_history"))))
            db.close()
    assert results[0] == results[1]
    assert ("a@x.org",) in results[0][0] and ("c@x.org",) in results[0][0]
