"""Classify throughput: ours vs Sisimai vs flufl.bounce vs the stdlib floor, one core.

The same N in-memory messages (bench/corpus.py) go through, in rounds interleaved so
that machine noise hits every contender alike:

- ours: ``mailbox_processor.parse_message(raw)`` (parse + classify);
- Sisimai (Perl): ``Sisimai->make(\\$raw)`` in bench/sisimai.pl, messages read into
  memory first, only the parsing timed;
- flufl.bounce: ``all_failures(msg)`` alone, on messages parsed beforehand with
  ``email.message_from_bytes`` (compat32) in chunks of 1,000 outside the timer; the
  parse + all_failures total is reported beside it;
- floor: ``email.message_from_bytes(raw, policy=compat32)`` and a walk over the parts
  reading each part's content type: what any parser on the stdlib has to pay.

Start-up and module loading are excluded (one warm-up pass over the corpus's 406
originals). Figures: emails/s, median of the rounds.
"""

from __future__ import annotations

import email
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from email import policy as email_policy
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import corpus  # noqa: E402
from common import (  # noqa: E402
    BENCH,
    Figure,
    emit,
    engine_build,
    log,
    median,
    profile_report,
    timed,
    worker_args,
)

WARMUP = 406
CHUNK = 1000


def time_ours(messages: list[bytes]) -> float:
    from mailbox_processor import parse_message

    t0 = time.perf_counter()
    for raw in messages:
        parse_message(raw)
    return time.perf_counter() - t0


def time_floor(messages: list[bytes]) -> float:
    parse = email.message_from_bytes
    compat32 = email_policy.compat32
    t0 = time.perf_counter()
    for raw in messages:
        msg = parse(raw, policy=compat32)
        for part in msg.walk():
            part.get_content_type()
    return time.perf_counter() - t0


def time_flufl(messages: list[bytes]) -> tuple[float, float]:
    """Return (seconds in all_failures alone, seconds parsing with message_from_bytes)."""
    from flufl.bounce import all_failures

    detect = parse = 0.0
    for i in range(0, len(messages), CHUNK):
        t0 = time.perf_counter()
        parsed = [email.message_from_bytes(raw) for raw in messages[i : i + CHUNK]]
        t1 = time.perf_counter()
        for msg in parsed:
            all_failures(msg)
        detect += time.perf_counter() - t1
        parse += t1 - t0
    return detect, parse


def time_sisimai(stream: Path, rounds: int) -> tuple[list[float], str, int]:
    proc = subprocess.run(["perl", str(BENCH / "sisimai.pl"), str(stream), str(rounds),
                           str(WARMUP)], capture_output=True, text=True, check=True)
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    return [float(s) for s in out["seconds"]], out["version"], int(out["results"])


def _quiet(fn: Callable[[list[bytes]], Any], messages: list[bytes]) -> Any:
    gc.collect()
    return fn(messages)


def profile_ours(messages: list[bytes], top: int = 25) -> str:
    """cProfile of parse_message over ``messages``: the top functions by own time."""
    import cProfile

    from mailbox_processor import parse_message

    prof = cProfile.Profile()
    prof.enable()
    for raw in messages:
        parse_message(raw)
    prof.disable()
    return profile_report(prof, top)


def breakdown_ours(messages: list[bytes]) -> str:
    """Where parse_message spends its time, by stage (perf_counter wrappers, no profiler).

    Lazily computed views of the message (decoded notice text...) count for the parser
    that first needs them.
    """
    if engine_build() == "compiled":
        return "parse_message by stage: not measured with the compiled engine (see below)."
    from collections import defaultdict

    from mailbox_processor import engine, mime, parse_message
    from mailbox_processor.parsers import PARSERS, legacy

    acc: dict[str, float] = defaultdict(float)

    def stage(key: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        return timed(acc, key, fn)

    # (module, attribute, key): the functions parse_message reaches, as it looks them up.
    targets = [(engine, "classify", "classify (rule table)"),
               (engine, "_original", "_original (returned headers)"),
               (legacy, "_flufl_addresses", "  of which flufl.bounce all_failures")]
    saved = [(obj, attr, getattr(obj, attr)) for obj, attr, _key in targets]
    from_bytes = mime.Mail.__dict__["from_bytes"]
    setattr(mime.Mail, "from_bytes",  # noqa: B010 - a classmethod, wrapped
            classmethod(stage("Mail.from_bytes (stdlib parse, compat32)", from_bytes.__func__)))
    for obj, attr, key in targets:
        setattr(obj, attr, stage(key, getattr(obj, attr)))
    for parser in PARSERS:
        setattr(parser, "parse", stage(f"parser {parser.name}", parser.parse))  # noqa: B010
    try:
        t0 = time.perf_counter()
        for raw in messages:
            parse_message(raw)
        total = time.perf_counter() - t0
    finally:
        setattr(mime.Mail, "from_bytes", from_bytes)  # noqa: B010
        for obj, attr, fn in saved:
            setattr(obj, attr, fn)
        for parser in PARSERS:
            delattr(parser, "parse")
    acc["rest of parse_message"] = total - sum(v for k, v in acc.items()
                                               if not k.startswith("  "))
    lines = [f"parse_message by stage over {len(messages):,} messages "
             f"({len(messages) / total:,.0f} emails/s with the wrappers):"]
    order = sorted((k for k in acc if not k.startswith("  ")), key=lambda k: -acc[k])
    for k in order:
        lines.append(f"  {k:45s} {1e6 * acc[k] / len(messages):7.0f} us/msg "
                     f"{100 * acc[k] / total:5.1f} %")
        if k == "parser legacy":
            f = "  of which flufl.bounce all_failures"
            lines.append(f"    {f.strip():43s} {1e6 * acc[f] / len(messages):7.0f} us/msg "
                         f"{100 * acc[f] / total:5.1f} %")
    return "\n".join(lines)


def main() -> int:
    args = worker_args()
    n = int(args.get("messages", 50_000))
    rounds = int(args.get("rounds", 3))
    log(f"classify: building {n:,} messages")
    messages = corpus.build(n)
    warm = messages[:WARMUP]
    time_ours(warm), time_floor(warm), time_flufl(warm)  # import and warm every path

    with tempfile.TemporaryDirectory(prefix="mp-bench-") as tmp:
        stream = Path(tmp) / "messages.bin"
        corpus.write_stream(messages, stream)
        times: dict[str, list[float]] = {"ours": [], "floor": [], "flufl": [],
                                         "flufl_total": [], "sisimai": []}
        sisimai_version, sisimai_results = "?", 0
        for r in range(rounds):
            log(f"classify: round {r + 1}/{rounds}: ours")
            times["ours"].append(_quiet(time_ours, messages))
            log(f"classify: round {r + 1}/{rounds}: Sisimai")
            secs, sisimai_version, sisimai_results = time_sisimai(stream, 1)
            times["sisimai"].append(secs[0])
            log(f"classify: round {r + 1}/{rounds}: flufl.bounce")
            detect, parse = _quiet(time_flufl, messages)
            times["flufl"].append(detect)
            times["flufl_total"].append(detect + parse)
            log(f"classify: round {r + 1}/{rounds}: floor")
            times["floor"].append(_quiet(time_floor, messages))
            log("classify: " + ", ".join(f"{k} {n / v[-1]:,.0f}/s" for k, v in times.items()))
    rate = {k: n / median(v) for k, v in times.items()}
    how = f"median of {rounds}" if rounds > 1 else "1 run"
    figs = [
        Figure("classify", f"ours: parse_message ({n:,} msgs, {how})", rate["ours"],
               "emails/s"),
        Figure("classify", f"Sisimai {sisimai_version} (Perl): Sisimai->make", rate["sisimai"],
               "emails/s"),
        Figure("classify", "flufl.bounce all_failures alone (pre-parsed)", rate["flufl"],
               "emails/s"),
        Figure("classify", "flufl.bounce parse + all_failures", rate["flufl_total"],
               "emails/s"),
        Figure("classify", "floor: message_from_bytes(compat32) + walk", rate["floor"],
               "emails/s"),
        Figure("classify", "ours / Sisimai", rate["ours"] / rate["sisimai"], "x", ">= 2.0x",
               rate["ours"] / rate["sisimai"] >= 2.0),
        Figure("classify", "ours / floor", 100 * rate["ours"] / rate["floor"], "%", ">= 70 %",
               rate["ours"] / rate["floor"] >= 0.70),
        Figure("classify", "ours / flufl.bounce parse + all_failures",
               rate["ours"] / rate["flufl_total"], "x"),
    ]
    extra: dict[str, Any] = {"rates": rate, "seconds": times, "sisimai_results": sisimai_results,
                             "pid": os.getpid()}
    if args.get("profile"):
        log("classify: profiling ours")
        sample = messages[: min(n, 10 * WARMUP)]
        extra["profile"] = breakdown_ours(sample) + "\n\n" + profile_ours(sample)
    emit(figs, extra)
    return 0


if __name__ == "__main__":
    sys.exit(main())
