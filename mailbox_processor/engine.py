"""Parse one returned message into a :class:`~mailbox_processor.models.Report`.

This is the library's front door::

    >>> from mailbox_processor import parse_message
    >>> report = parse_message(open("bounce.eml", "rb").read())
    >>> [(v.recipient, v.classification.value, v.reason) for v in report.verdicts]
    [('user@example.com', 'hard', 'userunknown')]

The message is parsed once with the fast ``compat32`` policy of :mod:`email`; the
parsers in :data:`mailbox_processor.parsers.PARSERS` are tried in order and the first
that recognises the message wins; :func:`mailbox_processor.classify.classify` then
turns each finding into a verdict. Nothing here raises on bad input: problems are
listed in ``Report.problems`` and an unreadable message gets ``Report.error``.
"""

from __future__ import annotations

from mailbox_processor.models import Report


def parse_message(raw: bytes) -> Report:
    """Return the verdicts for one raw RFC 5322 message (never raises on bad input)."""
    raise NotImplementedError
