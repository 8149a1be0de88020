"""The literal pre-checks in front of the legacy parser's recipient patterns never
skip a pattern that would match."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from strategies import sample_paths

from mailbox_processor.mime import Mail
from mailbox_processor.parsers.context import cut_returned
from mailbox_processor.parsers.legacy import _RECIPIENT_CONTEXT, _context_matches

SAMPLES = sample_paths()


def agree(text: str) -> None:
    lowered = text.lower() if text.isascii() else ""
    for n, pattern in enumerate(_RECIPIENT_CONTEXT):
        plain = [(m.span(), m.group(1)) for m in pattern.finditer(text)]
        fast = [(m.span(), m.group(1)) for m in _context_matches(n, text, lowered)]
        assert fast == plain, n


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_real_notices(path: Path) -> None:
    mail = Mail.from_bytes(path.read_bytes())
    agree(mail.notice_text)
    agree(cut_returned(mail.notice_text))


PIECES = st.sampled_from([
    "Original-Recipient: rfc822;a@b.org", "FINAL-RECIPIENT: <c@d.org>", "<e@f.org>:",
    "550 <g@h.org>... User unknown", "  i@j.org", "k@l.org: reason", "RCPT TO:<m@n.org>",
    "Recipient address: o@p.org", "failed recipients: q@r.org", "Delivery to: s@t.org",
    "\nTo: u@v.org", "\nDestinataire: w@x.org", "\nEmpf\u00e4nger: y@z.org",
    "\n Adresse: a@c.org", "could not be delivered to: b@d.org", "Addresses: e@g.org",
    "recipient", "to", "address", "@", "\n", " ", ":", "<", ">", "\u017f", "\u212a",
    "RECIPIENT", "Rcpt", "\u017fmtp"])


@given(st.lists(PIECES, max_size=10).map("".join))
@example("Original-Recipient: rfc822;a@b.org")
@example("RCPT TO:<m@n.org>")
@example("\nEmpf\u00e4nger: y@z.org")
@example("Addre\u017f\u017f: e@g.org")
@example("To: a@b.org")
@example("  Adresse:a@b.org to: c@d.org\nTo: e@f.org")
@example("\u017fender\nTo: a@b.org")
def test_generated(text: str) -> None:
    agree(text)
