"""Read messages from local files: single .eml files, directories, mbox files, Maildirs.

Used for backfills and for testing rules on saved mail. A path is inspected, not
trusted by its name:

- a directory with ``cur/``, ``new/`` (and ``tmp/``) is a Maildir;
- any other directory is walked recursively, each file read as below;
- a file whose first line starts with ``From `` is an mbox;
- any other file is one message.

Unreadable files are not skipped silently: they are yielded with ``error`` set, so
that the caller records and quarantines them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from mailbox_processor.sources import RawMessage

#: Files larger than this are still read, but flagged (the parser caps work anyway).
MAX_MESSAGE_BYTES = 64 * 1024 * 1024

_SKIP_NAMES = frozenset({".DS_Store", "Thumbs.db"})


def is_maildir(path: Path) -> bool:
    """True when ``path`` looks like a Maildir (has ``cur`` and ``new`` folders)."""
    return (path / "cur").is_dir() and (path / "new").is_dir()


def is_mbox(path: Path) -> bool:
    """True when the file starts with an mbox ``From `` separator line."""
    try:
        with path.open("rb") as fh:
            head = fh.read(5)
    except OSError:
        return False
    return head == b"From "


def iter_paths(paths: Iterable[str | os.PathLike[str]]) -> Iterator[RawMessage]:
    """Yield every message found under ``paths`` in a stable (sorted) order."""
    for p in paths:
        yield from _iter_path(Path(p))


def count_messages(paths: Iterable[str | os.PathLike[str]]) -> int:
    """Count messages under ``paths`` cheaply (for a progress bar); mbox files count 1 each."""
    n = 0
    for p in paths:
        path = Path(p)
        if path.is_dir():
            n += sum(1 for _ in _walk_files(path))
        else:
            n += 1
    return n


def _iter_path(path: Path) -> Iterator[RawMessage]:
    if not path.exists():
        yield RawMessage(source=str(path), raw=b"", error=f"{path}: no such file or directory")
        return
    if path.is_dir():
        for f in _walk_files(path):
            yield from _iter_file(f)
    else:
        yield from _iter_file(path)


def _walk_files(root: Path) -> Iterator[Path]:
    if is_maildir(root):
        for sub in ("new", "cur"):
            for name in sorted(os.listdir(root / sub)):
                f = root / sub / name
                if f.is_file() and not name.startswith("."):
                    yield f
        # Maildir++ sub-folders (".Folder") are Maildirs of their own.
        for name in sorted(os.listdir(root)):
            sub_dir = root / name
            if name.startswith(".") and sub_dir.is_dir() and is_maildir(sub_dir):
                yield from _walk_files(sub_dir)
        return
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        base = Path(dirpath)
        if base != root and is_maildir(base):
            dirnames[:] = []
            yield from _walk_files(base)
            continue
        for name in sorted(filenames):
            if name in _SKIP_NAMES or name.startswith("."):
                continue
            yield base / name


def _iter_file(path: Path) -> Iterator[RawMessage]:
    try:
        if is_mbox(path):
            yield from _iter_mbox(path)
            return
        raw = path.read_bytes()
    except OSError as exc:
        yield RawMessage(
            source=str(path), raw=b"", error=f"{path}: cannot read ({exc.strerror or exc})"
        )
        return
    yield RawMessage(source=str(path), raw=raw)


def _iter_mbox(path: Path) -> Iterator[RawMessage]:
    """Split an mbox on ``From `` lines, unescaping ``>From `` (mboxrd/mboxo).

    A hand-rolled splitter rather than :mod:`mailbox` because we want the raw bytes
    of each message without a rewrite, and a stream rather than an index.
    """
    index = 0
    buf: list[bytes] = []
    prev_blank = True
    with path.open("rb") as fh:
        for line in fh:
            # A separator is a "From " line at the start or after a blank line; an
            # unescaped "From " inside a body (mboxo) is usually not after a blank.
            if line.startswith(b"From ") and prev_blank:
                if buf:
                    index += 1
                    yield RawMessage(source=str(path), raw=_join_mbox(buf), index=index)
                    buf = []
                prev_blank = False
                continue
            if line.startswith(b">") and line.lstrip(b">").startswith(b"From "):
                line = line[1:]
            buf.append(line)
            prev_blank = line in (b"\n", b"\r\n")
    if buf:
        index += 1
        yield RawMessage(source=str(path), raw=_join_mbox(buf), index=index)


def _join_mbox(lines: list[bytes]) -> bytes:
    data = b"".join(lines)
    # The blank line before the next separator belongs to the mbox, not the message.
    if data.endswith(b"\n\n"):
        data = data[:-1]
    return data
