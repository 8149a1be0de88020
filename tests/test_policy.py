"""Suppression policy: thresholds, expiry, sender-side causes, manual overrides."""

from __future__ import annotations

import pytest
import sqlite_utils

from mailbox_processor import pipeline, policy, store
from mailbox_processor.errors import StoreError
from mailbox_processor.models import Classification, Finding, Report, Verdict
from mailbox_processor.pipeline import ingest_batch, reclassify
from mailbox_processor.policy import Action, Policy, decide
from mailbox_processor.sources import RawMessage

NOW = "2025-06-30 12:00:00"


def report(recipient: str, classification: str, reason: str | None, date: str) -> Report:
    return Report(
        verdicts=(Verdict(Finding(recipient=recipient, diagnostic=f"{reason} text"),
                          Classification(classification), reason, f"rule-{reason}"),),
        parser="test",
        date=date,
    )


@pytest.fixture
def fake_parse(monkeypatch: pytest.MonkeyPatch) -> dict[bytes, Report]:
    table: dict[bytes, Report] = {}
    monkeypatch.setattr(pipeline, "parse_message",
                        lambda raw: table.get(raw, Report(verdicts=(), parser=None)))
    return table


def feed(db: sqlite_utils.Database, table: dict[bytes, Report], key: bytes, rep: Report,
         now: str = NOW) -> pipeline.IngestOutcome:
    table[key] = rep
    return ingest_batch(db, [RawMessage(source=key.decode(), raw=key)], now=now)[0]


def ev(classification: str, reason: str | None, at: str) -> dict[str, str | None]:
    return {"classification": classification, "reason": reason, "occurred_at": at,
            "processed_at": at, "diagnostic": None}


@pytest.mark.parametrize(
    ("classification", "reason", "action"),
    [
        ("hard", "userunknown", Action.SUPPRESS),
        ("hard", "hostunknown", Action.SUPPRESS),
        ("complaint", "feedback", Action.SUPPRESS),
        ("soft", "mailboxfull", Action.COUNT),
        ("soft", "undefined", Action.COUNT),
        ("soft", "authfailure", Action.SENDER_SIDE),
        ("soft", "badreputation", Action.SENDER_SIDE),
        ("soft", "requireptr", Action.SENDER_SIDE),
        ("soft", "blocked", Action.SENDER_SIDE),
        ("soft", "spamdetected", Action.SENDER_SIDE),
        ("hard", "blocked", Action.SENDER_SIDE),
        ("delayed", "expired", Action.NEVER),
        ("autoreply", "vacation", Action.NEVER),
        ("delivered", "delivered", Action.NEVER),
        ("soft", "rejected", Action.SENDER_SIDE),
        ("hard", "filtered", Action.SUPPRESS),
        ("soft", "no-such-reason", Action.COUNT),
    ],
)
def test_default_actions(classification: str, reason: str, action: Action) -> None:
    assert Policy().action_for(classification, reason) is action


def test_soft_bounces_suppress_at_threshold_within_window() -> None:
    p = Policy()
    two = [ev("soft", "mailboxfull", "2025-06-01 00:00:00"),
           ev("soft", "mailboxfull", "2025-06-05 00:00:00")]
    assert decide(two, p, now=NOW) is None
    three = [*two, ev("soft", "mailboxfull", "2025-06-10 00:00:00")]
    d = decide(three, p, now=NOW)
    assert d is not None
    assert (d.state, d.expires_at) == ("active", "2025-07-10 00:00:00")
    spread = [ev("soft", "mailboxfull", f"2025-0{m}-01 00:00:00") for m in (1, 2, 3)]
    assert decide(spread, p, now=NOW) is None
    later = decide(three, p, now="2025-08-01 00:00:00")
    assert later is not None and later.state == "expired"


def test_sender_side_never_suppresses_but_shows_in_stats(
    db: sqlite_utils.Database, fake_parse: dict[bytes, Report]
) -> None:
    for i in range(5):
        out = feed(db, fake_parse, f"auth{i}".encode(),
                   report("good@gmail.example", "soft", "authfailure", f"2025-06-0{i + 1}"))
        assert out.newly_suppressed == ()
    assert store.get_suppression(db, "good@gmail.example") is None
    rows = [r for r in store.stats(db) if r["group"] == "sender_side"]
    assert rows == [{"group": "sender_side", "key": "gmail.example authfailure", "events": 5,
                     "recipients": 1}]
    assert not [r for r in store.stats(db) if r["group"] == "classification"]


def test_three_soft_bounces_suppress_through_ingest(
    db: sqlite_utils.Database, fake_parse: dict[bytes, Report]
) -> None:
    outs = [feed(db, fake_parse, f"s{i}".encode(),
                 report("full@example.com", "soft", "mailboxfull", f"2025-06-2{i}"))
            for i in range(3)]
    assert [o.newly_suppressed for o in outs] == [(), (), ("full@example.com",)]
    sup = store.get_suppression(db, "full@example.com")
    assert sup is not None
    assert (sup["soft_count"], sup["expires_at"]) == (3, "2025-07-22 00:00:00")


def test_manual_unsuppress_holds_until_a_new_hard_bounce(
    db: sqlite_utils.Database, fake_parse: dict[bytes, Report]
) -> None:
    feed(db, fake_parse, b"h1", report("bob@example.com", "hard", "userunknown", "2025-06-01"),
         now="2025-06-01 00:00:00")
    assert policy.unsuppress_address(db, "bob@EXAMPLE.com", note="he fixed it", actor="ops",
                                     now="2025-06-02 00:00:00")
    assert store.get_suppression(db, "bob@example.com")["state"] == "removed"  # type: ignore[index]
    # Re-deciding from old events does not undo the manual change...
    policy.apply_to_address(db, "bob@example.com", Policy(), now="2025-06-03 00:00:00")
    assert store.get_suppression(db, "bob@example.com")["state"] == "removed"  # type: ignore[index]
    # ...but a new hard bounce suppresses again.
    out = feed(db, fake_parse, b"h2",
               report("bob@example.com", "hard", "userunknown", "2025-06-04"),
               now="2025-06-04 00:00:00")
    assert out.newly_suppressed == ("bob@example.com",)
    history = store.address_history(db, "bob@example.com")
    assert [(h["event"], h["actor"], h["note"]) for h in history][:2] == [
        ("suppressed", "mailbox-processor", "bounce: userunknown text"),
        ("unsuppressed", "ops", "he fixed it"),
    ]
    assert history[-1]["event"] == "suppressed"


def test_manual_suppress_and_errors(db: sqlite_utils.Database) -> None:
    assert policy.suppress_address(db, "x@Example.com", note="asked to stop", actor="me")
    assert not policy.suppress_address(db, "x@example.com")
    sup = store.get_suppression(db, "x@example.com")
    assert sup is not None and (sup["source"], sup["note"]) == ("manual", "asked to stop")
    assert not policy.unsuppress_address(db, "nobody@example.com")
    with pytest.raises(StoreError, match="is not an email address"):
        policy.suppress_address(db, "nonsense")


def test_policy_change_and_reclassify_reach_history(
    db: sqlite_utils.Database, fake_parse: dict[bytes, Report]
) -> None:
    feed(db, fake_parse, b"f", report("full@example.com", "soft", "mailboxfull", "2025-06-20"))
    assert store.get_suppression(db, "full@example.com") is None
    policy.set_action(db, "mailboxfull", "suppress")
    summary = reclassify(db, now=NOW)
    assert summary.suppressions_after == 1
    assert store.get_suppression(db, "full@example.com")["state"] == "active"  # type: ignore[index]
    assert db.execute("SELECT policy_action FROM bounces").fetchone()[0] == "suppress"


def test_reclassify_applies_parser_improvements(
    db: sqlite_utils.Database, fake_parse: dict[bytes, Report]
) -> None:
    feed(db, fake_parse, b"m", report("a@example.com", "soft", "undefined", "2025-06-20"))
    fake_parse[b"m"] = report("a@example.com", "hard", "userunknown", "2025-06-20")
    summary = reclassify(db, now=NOW)
    assert (summary.messages, summary.changed_messages) == (1, 1)
    assert db.execute("SELECT classification, reason FROM bounces").fetchall() == [
        ("hard", "userunknown")]
    assert store.get_suppression(db, "a@example.com")["reason"] == "userunknown"  # type: ignore[index]
    # and back: the suppression goes when the evidence goes
    fake_parse[b"m"] = report("a@example.com", "soft", "authfailure", "2025-06-20")
    reclassify(db, now=NOW)
    assert store.get_suppression(db, "a@example.com") is None


def test_bad_policy_values_are_rejected(db: sqlite_utils.Database) -> None:
    with pytest.raises(StoreError, match="unknown policy action 'sometimes'"):
        policy.set_action(db, "mailboxfull", "sometimes")
    with pytest.raises(StoreError, match="unknown policy setting 'nope'"):
        policy.set_setting(db, "nope", 3)
    policy.set_setting(db, "soft_threshold", 5)
    assert policy.load_policy(db).soft_threshold == 5
    db.execute("UPDATE policy SET action = 'bogus' WHERE reason = 'expired'")
    with pytest.raises(StoreError, match="reason 'expired' has unknown action 'bogus'"):
        policy.load_policy(db)


def test_reclassify_recovers_a_quarantined_message(
    db: sqlite_utils.Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(raw: bytes) -> Report:
        raise RuntimeError("parser bug")

    monkeypatch.setattr(pipeline, "parse_message", crash)
    out = ingest_batch(db, [RawMessage(source="x.eml", raw=b"X")], now=NOW)[0]
    assert out.status == "quarantined"
    monkeypatch.setattr(pipeline, "parse_message",
                        lambda raw: report("x@example.com", "hard", "userunknown", "2025-06-01"))
    summary = reclassify(db, now=NOW)
    assert summary.changed_messages == 1
    assert db.execute("SELECT outcome, error FROM messages").fetchone() == ("parsed", None)
    assert store.get_suppression(db, "x@example.com")["state"] == "active"  # type: ignore[index]


def test_soft_suppression_expires(
    db: sqlite_utils.Database, fake_parse: dict[bytes, Report]
) -> None:
    for i in range(3):
        feed(db, fake_parse, f"s{i}".encode(),
             report("full@example.com", "soft", "mailboxfull", f"2025-06-2{i}"))
    assert [r["address"] for r in store.check_addresses(db, ["full@example.com"], now=NOW)] == [
        "full@example.com"]
    later = "2025-08-01 00:00:00"
    assert list(store.check_addresses(db, ["full@example.com"], now=later)) == []
    feed(db, fake_parse, b"other", report("z@example.com", "soft", "mailboxfull", "2025-07-30"),
         now=later)  # any write first marks due suppressions as expired
    sup = store.get_suppression(db, "full@example.com")
    assert sup is not None and sup["state"] == "expired"
    assert store.address_history(db, "full@example.com")[-1]["event"] == "expired"


def test_describe_address_advice(
    db: sqlite_utils.Database, fake_parse: dict[bytes, Report]
) -> None:
    feed(db, fake_parse, b"a", report("me@example.com", "soft", "authfailure", "2025-06-01"))
    feed(db, fake_parse, b"b", report("s@example.com", "soft", "mailboxfull", "2025-06-01"))
    feed(db, fake_parse, b"c", report("h@example.com", "hard", "userunknown", "2025-06-01"))
    sender = policy.describe_address(db, "me@example.com")
    assert (sender["state"], sender["action"]) == ("not suppressed", policy.ADVICE["sender_side"])
    assert policy.describe_address(db, "s@example.com")["action"].startswith(
        policy.ADVICE["soft"])
    assert policy.describe_address(db, "new@example.com")["action"] == policy.ADVICE["ok"]
    hard = policy.describe_address(db, "H@Example.com")
    assert (hard["state"], hard["action"]) == ("active", policy.ADVICE["hard"])
    assert [e["reason"] for e in hard["events"]] == ["userunknown"]


def test_soft_verdict_of_a_hard_reason_only_counts() -> None:
    """A 4xx notaccept is soft: it counts toward the threshold, never suppresses at once."""
    from mailbox_processor.policy import Action, Policy

    assert Policy().action_for("soft", "notaccept") is Action.COUNT
    assert Policy().action_for("hard", "notaccept") is Action.SUPPRESS




def test_apply_to_addresses_matches_one_address_at_a_time(
    fake_parse: dict[bytes, Report]
) -> None:
    """The batched recompute (reclassify's) writes what apply_to_address writes per address."""
    import itertools

    def build() -> sqlite_utils.Database:
        db = store.open_db(":memory:")
        specs = itertools.product(("a", "b", "c"), (("soft", "mailboxfull"),
                                  ("hard", "userunknown"), ("soft", "authfailure")))
        for i, (name, (cls, reason)) in enumerate(specs):
            day = f"2025-06-{1 + i:02d}"
            feed(db, fake_parse, f"{name}{i}".encode(),
                 report(f"{name}@example.com", cls, reason, day), now=f"{day} 00:00:00")
        feed(db, fake_parse, b"e", report("e@example.com", "soft", "blocked", "2025-06-20"))
        policy.unsuppress_address(db, "c@example.com", actor="ops", now="2025-06-20 00:00:00")
        policy.suppress_address(db, "m@example.com", actor="ops", now="2025-06-20 00:00:00")
        feed(db, fake_parse, b"m", report("m@example.com", "soft", "mailboxfull", "2025-06-21"))
        policy.set_action(db, "userunknown", "never")
        policy.set_action(db, "blocked", "suppress")
        return db

    results = []
    for batched in (False, True):
        db = build()
        changed = policy.load_policy(db)
        addresses = store.all_event_addresses(db)
        with store.transaction(db):
            if batched:
                newly = policy.apply_to_addresses(db, addresses, changed, now=NOW)
            else:
                newly = [a for a in addresses
                         if policy.apply_to_address(db, a, changed, now=NOW)]
        results.append((newly, *(db.execute(f"SELECT rowid, * FROM {t} ORDER BY rowid")
                                 .fetchall() for t in ("suppressions", "suppression_history"))))
        db.close()
    assert results[0] == results[1]
    assert results[0][0] == ["e@example.com"]
    assert [(h[2], h[4]) for h in results[0][2][-3:]] == [
        ("a@example.com", "released"), ("b@example.com", "released"),
        ("e@example.com", "suppressed")]
