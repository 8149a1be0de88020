#!/usr/bin/env python3
"""Run the benchmarks and print one table of figures, ratios and targets.

Every figure is a rate or a ratio against a peer measured in the same run, on the same
messages (the shared corpus replicated to N distinct messages, bench/corpus.py). No
benchmark is a test: nothing here asserts a time; a missed target prints FAIL.

\b
  python bench/run.py                  # everything, full size (about 10 minutes)
  python bench/run.py --quick          # everything, small (under a minute)
  python bench/run.py --only classify,check --rounds 1
  python bench/run.py --markdown       # the table as Markdown, for README.md
  python bench/run.py --profile --only classify,ingest   # + cProfile top functions

Benchmarks: classify (ours vs Sisimai vs flufl.bounce vs the stdlib floor), ingest
(scan's ingest_batch into a fresh database, time per stage), poll (end-to-end against a
throwaway Dovecot vs a raw FETCH loop and vs the poll floor, which reads, parses and files
the same messages and stores nothing), memory (peak RSS of poll on two sizes), check
(100k addresses against 1M suppressions).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import Figure, figures_from, log, machine_info, run_worker  # noqa: E402

BENCHMARKS = ("classify", "ingest", "poll", "memory", "check")

FULL = {"messages": 50_000, "poll_messages": 20_000, "memory_messages": [20_000, 100_000],
        "suppressions": 1_000_000, "addresses": 100_000, "rounds": 3}
QUICK = {"messages": 4_060, "poll_messages": 2_000, "memory_messages": [2_000, 6_000],
         "suppressions": 1_000_000, "addresses": 100_000, "rounds": 1}


def _names(text: str | None) -> list[str]:
    if not text:
        return []
    names = [n.strip() for n in text.split(",") if n.strip()]
    for n in names:
        if n not in BENCHMARKS:
            raise SystemExit(f"unknown benchmark {n!r}: choose from {', '.join(BENCHMARKS)}")
    return names


def _sizes(text: str) -> list[int]:
    sizes = [int(x.replace("_", "")) for x in text.split(",")]
    if len(sizes) != 2 or sizes[0] >= sizes[1]:
        raise argparse.ArgumentTypeError("give two sizes, small first: 20000,100000")
    return sizes


def table(figures: list[Figure]) -> str:
    """A plain-text table: benchmark, measure, value, target, result, note."""
    rows = [("benchmark", "measure", "value", "target", "result", "note")]
    rows += [(f.bench, f.name, f.shown(), f.target, f.verdict(), f.note) for f in figures]
    widths = [max(len(r[i]) for r in rows) for i in range(6)]
    lines = []
    for j, r in enumerate(rows):
        cells = [c.rjust(w) if i == 2 else c.ljust(w)
                 for i, (c, w) in enumerate(zip(r, widths, strict=True))]
        lines.append("  ".join(cells).rstrip())
        if j == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown(figures: list[Figure]) -> str:
    """The same table in Markdown (README's Performance section)."""
    out = ["| benchmark | measure | value | target | result | note |",
           "|---|---|---:|---|---|---|"]
    for f in figures:
        name = f.name.strip()
        if f.name.startswith("  "):
            name = "&nbsp;&nbsp;" + name
        out.append(f"| {f.bench} | {name} | {f.shown()} | {f.target} | {f.verdict()} "
                   f"| {f.note} |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n", 1)[0],
        epilog="Defaults (full): " + ", ".join(f"{k}={v}" for k, v in FULL.items()),
    )
    ap.add_argument("--quick", action="store_true",
                    help="small sizes, one round (under a minute): a smoke run")
    ap.add_argument("--only", metavar="LIST", help=f"comma-separated: {','.join(BENCHMARKS)}")
    ap.add_argument("--skip", metavar="LIST", help="comma-separated benchmarks to leave out")
    ap.add_argument("--messages", type=int, help="messages for classify and ingest [50000]")
    ap.add_argument("--poll-messages", type=int, help="messages for poll [20000]")
    ap.add_argument("--memory-messages", type=_sizes, metavar="A,B",
                    help="the two poll sizes compared by memory [20000,100000]")
    ap.add_argument("--suppressions", type=int, help="suppressions in the check db [1000000]")
    ap.add_argument("--addresses", type=int, help="addresses on check's stdin [100000]")
    ap.add_argument("--rounds", type=int, help="runs per cheap figure, median taken [3]")
    ap.add_argument("--profile", action="store_true",
                    help="also print where the time goes: classify (ours) by stage and "
                    "cProfile top functions of classify, ingest and poll")
    ap.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    ap.add_argument("--json", type=Path, metavar="FILE", help="write every figure and detail")
    args = ap.parse_args(argv)

    opts: dict[str, Any] = dict(QUICK if args.quick else FULL)
    for key in ("messages", "poll_messages", "memory_messages", "suppressions", "addresses",
                "rounds"):
        if getattr(args, key) is not None:
            opts[key] = getattr(args, key)
    chosen = _names(args.only) or list(BENCHMARKS)
    chosen = [b for b in chosen if b not in _names(args.skip)]
    if not chosen:
        raise SystemExit("nothing to run")

    info = machine_info()
    log("machine: " + ", ".join(f"{k} {v}" for k, v in info.items()))
    started = time.perf_counter()
    figures: list[Figure] = []
    details: dict[str, Any] = {}
    failed: list[str] = []

    def run(name: str, script: str, wargs: dict[str, Any]) -> dict[str, Any] | None:
        t0 = time.perf_counter()
        try:
            res = run_worker(script, wargs)
        except Exception as exc:  # noqa: BLE001 - one broken benchmark must not hide the rest
            log(f"{name}: FAILED: {exc}")
            failed.append(name)
            figures.append(Figure(name, f"did not run: {str(exc)[:120]}", None, "", "", False))
            return None
        details[name] = {k: v for k, v in res.items() if k != "figures"}
        details[name]["seconds"] = round(time.perf_counter() - t0, 1)
        figures.extend(figures_from(res["figures"]))
        log(f"{name}: done in {time.perf_counter() - t0:.0f}s")
        return res

    classify_rate = None
    if "classify" in chosen:
        res = run("classify", "bench_classify.py",
                  {"messages": opts["messages"], "rounds": opts["rounds"],
                   "profile": args.profile})
        if res:
            classify_rate = res["rates"]["ours"]
    if "ingest" in chosen:
        run("ingest", "bench_ingest.py", {"messages": opts["messages"], "profile": args.profile})
    if "poll" in chosen or "memory" in chosen:
        run("poll" if "poll" in chosen else "memory", "bench_imap.py",
            {"poll_messages": opts["poll_messages"], "memory_messages": opts["memory_messages"],
             "rounds": opts["rounds"], "poll": "poll" in chosen, "memory": "memory" in chosen,
             "classify_rate": classify_rate, "profile": args.profile})
    if "check" in chosen:
        run("check", "bench_check.py",
            {"suppressions": opts["suppressions"], "addresses": opts["addresses"],
             "rounds": opts["rounds"]})

    info["loadavg_end"] = " ".join(f"{x:.2f}" for x in __import__("os").getloadavg())
    info["wall"] = f"{time.perf_counter() - started:.0f}s"
    head = (f"mailbox-processor benchmarks, {info['date']}: {info['nproc']} x {info['cpu']}, "
            f"Python {info['python']} (engine {info['engine']}), Sisimai "
            f"{info['perl_sisimai']}, flufl.bounce {info['flufl_bounce']}, Dovecot "
            f"{info['dovecot']}; commit {info['commit']}; "
            f"load {info['loadavg']} -> {info['loadavg_end']}; {info['wall']}"
            + (" (--quick)" if args.quick else ""))
    print(head)
    print()
    print(markdown(figures) if args.markdown else table(figures))
    if args.profile:
        for name in ("classify", "ingest", "poll", "memory"):
            prof = details.get(name, {}).pop("profile", None)
            if prof:
                print(f"\n== cProfile: {name} ==\n{prof}")
    if args.json:
        args.json.write_text(json.dumps({"machine": info, "options": opts,
                                         "figures": [f.__dict__ for f in figures],
                                         "details": details}, indent=1, default=str))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
