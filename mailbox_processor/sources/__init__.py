"""Where returned messages come from: local files and IMAP mailboxes.

Every source yields :class:`RawMessage` records: where the message came from plus its
raw bytes, untouched.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Messages per FETCH and per database transaction (poll, watch, scan). Every commit
#: waits for the disk (fsync); at 500 messages that wait is a small part of a batch,
#: at 200 it was a measurable one (benchmarks: poll 20,000 messages). poll keeps at
#: most five batches in memory (one being committed, four being parsed).
DEFAULT_BATCH_SIZE = 500


@dataclass(frozen=True)
class RawMessage:
    """One message as read from a source, before any parsing.

    :ivar source: a human-readable origin: a file path (an mbox file's path for each
        of its messages, see ``index``), or
        ``imap://user@host/Folder``.
    :ivar raw: the message bytes exactly as stored.
    :ivar folder: IMAP folder name (``None`` for files).
    :ivar uid: IMAP UID (``None`` for files).
    :ivar uidvalidity: IMAP UIDVALIDITY of ``folder`` (``None`` for files).
    :ivar index: position (1-based) of the message inside an mbox file, else ``None``.
    :ivar error: set when the message could not be read at all; ``raw`` is then
        whatever could be read (possibly empty). Such records are quarantined.
    """

    source: str
    raw: bytes
    folder: str | None = None
    uid: int | None = None
    uidvalidity: int | None = None
    index: int | None = None
    error: str | None = None

    @property
    def name(self) -> str:
        """The last component of ``source`` (a file name for files)."""
        return self.source.rstrip("/").rsplit("/", 1)[-1]
