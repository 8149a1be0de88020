"""Build the benchmark message set: the shared corpus replicated to N distinct messages.

Copy 0 of every email is the original file, byte for byte. Copy ``k >= 1`` differs in
two ways, so that a database sees N *different* messages with many different
recipients, as a real bounce mailbox would:

- a header ``X-Bench-Copy: k`` is inserted at the top (after an mbox ``From `` line,
  with the file's own line ending): a distinct sha256, so the dedupe never skips it;
- every gold recipient of the email (``labels.jsonl``) is rewritten from
  ``local@domain`` to ``local.bK@domain`` wherever it appears in the raw bytes, so
  the suppression list grows like a real one instead of piling 120 events on each of
  the corpus's 430 addresses.

Neither change touches what a parser looks at (status, diagnostic, structure); the
check ``python bench/corpus.py --verify`` parses every email and one copy of it and
compares the (classification, reason, status) of each verdict.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus"


def load_originals(corpus: Path = CORPUS) -> list[tuple[str, bytes, list[str]]]:
    """Return ``(file name, raw bytes, gold recipient addresses)`` per corpus email."""
    labels: dict[str, list[str]] = {}
    labels_file = corpus / "labels.jsonl"
    if labels_file.is_file():
        for line in labels_file.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                labels[row["message"]] = [a for a in (row.get("recipients") or []) if a]
    out = []
    for path in sorted((corpus / "emails").iterdir()):
        if path.is_file():
            out.append((path.name, path.read_bytes(), labels.get(path.name, [])))
    if not out:
        raise SystemExit(f"no emails under {corpus / 'emails'}")
    return out


def _variant(raw: bytes, recipients: list[str], k: int) -> bytes:
    """Copy ``k`` of one email (see the module docstring)."""
    if k == 0:
        return raw
    for address in recipients:
        local, _, domain = address.rpartition("@")
        if not local:
            continue
        pattern = re.compile(re.escape(local.encode()) + rb"@" + re.escape(domain.encode()), re.I)
        raw = pattern.sub(local.encode() + b".b%d@" % k + domain.encode(), raw)
    eol = b"\r\n" if b"\r\n" in raw[:2000] else b"\n"
    header = b"X-Bench-Copy: %d" % k + eol
    if raw.startswith(b"From "):
        first, sep, rest = raw.partition(b"\n")
        return first + sep + header + rest
    return header + raw


def build(n: int, corpus: Path = CORPUS) -> list[bytes]:
    """Return ``n`` distinct messages: the corpus in order, then copy 1, copy 2, ..."""
    originals = load_originals(corpus)
    out: list[bytes] = []
    k = 0
    while len(out) < n:
        for _name, raw, recipients in originals:
            if len(out) >= n:
                break
            out.append(_variant(raw, recipients, k))
        k += 1
    return out


def write_stream(messages: list[bytes], path: Path) -> None:
    """Write ``messages`` as ``<decimal length>\\n<bytes>`` records (read by sisimai.pl)."""
    with open(path, "wb") as fh:
        for m in messages:
            fh.write(b"%d\n" % len(m))
            fh.write(m)


def verify(copy: int = 7) -> int:
    """Parse every email and its copy ``copy``; report verdicts that differ."""
    from mailbox_processor import parse_message

    def key(raw: bytes) -> list[tuple[str, str | None, str | None]]:
        r = parse_message(raw)
        return sorted((v.classification.value, v.reason, v.finding.status) for v in r.verdicts)

    differ = 0
    originals = load_originals()
    for name, raw, recipients in originals:
        a, b = key(raw), key(_variant(raw, recipients, copy))
        if a != b:
            differ += 1
            print(f"{name}: {a} != {b}")
    print(f"{len(originals) - differ}/{len(originals)} emails: same verdicts in copy {copy}")
    return 1 if differ else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--verify", action="store_true", help="check that copies parse alike")
    ap.add_argument("-n", type=int, default=1000, help="messages to build (with --out)")
    ap.add_argument("--out", type=Path, help="write N messages as a length-prefixed stream")
    args = ap.parse_args(argv)
    if args.verify:
        return verify()
    if args.out:
        write_stream(build(args.n), args.out)
        return 0
    ap.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
