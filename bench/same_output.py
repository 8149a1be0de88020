"""Print every Report the engine makes for the corpus, the fixtures and seeded
mutations of them: the check that a speed change changed nothing.

    python bench/same_output.py > before.txt      # on the old commit
    python bench/same_output.py > after.txt       # on the new one
    cmp before.txt after.txt                      # must print nothing

One line per input: its name and ``repr(parse_message(raw))`` (every verdict, field,
problem and the original message's headers). ``--seed`` and ``--mutations`` choose
the mutated inputs (bytes flipped, cut, inserted: broken MIME, 8-bit headers, NULs).
PYTHONHASHSEED is pinned, so that nothing that iterates a set can differ by chance.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus" / "emails"
INSERTS = [b"\n", b"\r\n", b"\x00", b"\n\n", b"--", b": ", b"\xff\xfe", b"=?utf-8?b?",
           b"Content-Type: multipart/mixed\n", b"<", b"@", b"\xc2\x80"]


#: A header line (of the bounce, of its returned message or a delivery-status block).
HEADER_LINE = re.compile(rb"^[A-Za-z][A-Za-z0-9-]*:[ \t]*", re.M)


def eight_bit_headers(raws: list[tuple[str, bytes]], per_message: int) -> list[tuple[str, bytes]]:
    """Each message again with raw 8-bit bytes put at the start of one header line's
    value, for each of its first ``per_message`` header lines: under compat32 such a
    field reads as an ``email.header.Header``, not a str, wherever it is looked up."""
    out = []
    for name, raw in raws:
        for n, m in enumerate(HEADER_LINE.finditer(raw)):
            if n == per_message:
                break
            out.append((f"8bit{n}:{name}", raw[:m.end()] + b"\xe9\x80 " + raw[m.end():]))
    return out


def inputs(seed: int, mutations: int, header_lines: int = 0) -> list[tuple[str, bytes]]:
    files = sorted(CORPUS.iterdir()) if CORPUS.is_dir() else []
    files += sorted(p for p in (ROOT / "fixtures").rglob("*")
                    if p.is_file() and p.suffix not in (".py", ".md"))
    raws = [(str(p.relative_to(p.parents[2])), p.read_bytes()) for p in files]
    rng = random.Random(seed)
    out = list(raws)
    for i in range(mutations):
        name, raw = rng.choice(raws)
        data = bytearray(raw)
        for _ in range(rng.randint(1, 6)):
            if not data:
                break
            pos = rng.randrange(len(data))
            op = rng.choice("fdid")
            if op == "f":
                data[pos] = rng.randrange(256)
            elif op == "d":
                del data[pos:pos + rng.randint(1, 200)]
            else:
                data[pos:pos] = rng.choice(INSERTS)
        out.append((f"mut{i}:{name}", bytes(data)))
    return out + eight_bit_headers(raws, header_lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--mutations", type=int, default=3000)
    ap.add_argument("--eight-bit-headers", type=int, default=0, metavar="N",
                    help="also each input with 8-bit bytes in one of its first N header "
                         "lines (a variant per line)")
    ap.add_argument("--contexts", action="store_true",
                    help="also print each finding's context (worked out only when read)")
    ap.add_argument("--import-from", type=Path, default=ROOT, metavar="DIR",
                    help="the directory to import mailbox_processor from (default: this "
                         "checkout; tests/test_compiled.py gives a pure Python copy)")
    args = ap.parse_args()
    if os.environ.get("PYTHONHASHSEED") != "0":
        os.environ["PYTHONHASHSEED"] = "0"
        os.execv(sys.executable, [sys.executable, *sys.argv])
    sys.path.insert(0, str(args.import_from))
    from mailbox_processor import engine_build
    from mailbox_processor.engine import parse_message

    sys.stderr.write(f"engine: {engine_build()}\n")
    for name, raw in inputs(args.seed, args.mutations, args.eight_bit_headers):
        report = parse_message(raw)
        sys.stdout.write(f"{name}\t{report!r}\n")
        if args.contexts:
            for v in report.verdicts:
                sys.stdout.write(f"  context of {v.finding.recipient}: "
                                 f"{v.finding.context!r}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
