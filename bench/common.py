"""Helpers shared by the benchmark scripts: figures, the machine, worker processes."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent


@dataclass
class Figure:
    """One line of the results table.

    ``target`` is the human text of the target (``">= 2.0x"``); ``ok`` is True/False
    when there is a target, None for an informative figure.
    """

    bench: str
    name: str
    value: float | None
    unit: str
    target: str = ""
    ok: bool | None = None
    note: str = ""

    def shown(self) -> str:
        """The value as printed in the table."""
        if self.value is None:
            return "n/a"
        v = self.value
        if self.unit == "x":
            return f"{v:.2f}x"
        if self.unit == "%":
            return f"{v:.1f} %"
        if self.unit == "s":
            return f"{v:.2f} s"
        if self.unit == "MB":
            return f"{v:.1f} MB"
        if abs(v) >= 100:
            return f"{v:,.0f} {self.unit}".rstrip()
        return f"{v:.2f} {self.unit}".rstrip()

    def verdict(self) -> str:
        """PASS, FAIL or blank (no target)."""
        return "" if self.ok is None else ("PASS" if self.ok else "FAIL")


def figures_from(data: list[dict[str, Any]]) -> list[Figure]:
    """Figures back from their JSON form (worker output)."""
    return [Figure(**d) for d in data]


def emit(figures: list[Figure], extra: dict[str, Any] | None = None) -> None:
    """Print a worker's result as the last line of stdout (read by run.py)."""
    out = {"figures": [asdict(f) for f in figures], **(extra or {})}
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()


def timed(acc: dict[str, float], key: str, fn: Any) -> Any:
    """Wrap ``fn`` so that the seconds spent in it add up in ``acc[key]``."""
    import functools

    @functools.wraps(fn)
    def wrapper(*a: Any, **kw: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return fn(*a, **kw)
        finally:
            acc[key] += time.perf_counter() - t0

    return wrapper


#: What a profile of the compiled engine leaves out.
COMPILED_NOTE = ("(The engine is compiled: cProfile does not see its functions and the "
                 "calls between them cannot be wrapped. To profile them, install the "
                 "pure build: MAILBOX_PROCESSOR_PURE_PYTHON=1 pip install -e .)")


def engine_build() -> str:
    """``mailbox_processor.engine_build()`` of the installed package ("compiled" or
    "pure Python"), "unknown" where it cannot be imported."""
    try:
        from mailbox_processor import engine_build as build
    except ImportError:
        return "unknown"
    return build()


def profile_report(source: Any, top: int) -> str:
    """The top ``top`` functions of a cProfile run (a ``Profile`` or a stats file), by
    own time and by cumulative time."""
    import io
    import pstats

    buf = io.StringIO()
    if engine_build() == "compiled":
        buf.write(COMPILED_NOTE + "\n")
    stats = pstats.Stats(source, stream=buf)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    return buf.getvalue()


def log(msg: str) -> None:
    """Progress on stderr, with a timestamp."""
    sys.stderr.write(f"[{time.strftime('%H:%M:%S')}] {msg}\n")
    sys.stderr.flush()


def median(values: list[float]) -> float:
    """The median (the middle run of 3)."""
    return float(statistics.median(values))


def run_worker(script: str, args: dict[str, Any], *, timeout: float = 3600) -> dict[str, Any]:
    """Run ``bench/<script>`` in a fresh interpreter; return its JSON result.

    Each benchmark runs in its own process so that one's memory and caches never
    colour another's figures; the worker's stderr (progress) passes through.
    """
    cmd = [sys.executable, str(BENCH / script), "--args", json.dumps(args)]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, timeout=timeout, cwd=ROOT)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{script} failed (exit {proc.returncode}): {proc.stdout[-2000:]}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def worker_args(argv: list[str] | None = None) -> dict[str, Any]:
    """Parse ``--args JSON`` of a worker script."""
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("--args", default="{}", help="JSON object of options (set by run.py)")
    ns = ap.parse_args(argv)
    parsed: dict[str, Any] = json.loads(ns.args)
    return parsed


def cpu_model() -> str:
    """The CPU model from /proc/cpuinfo."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def git_head() -> str:
    """Short commit of the working tree measured (``+dirty`` when it has changes)."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                              capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no",
                                "mailbox_processor"], cwd=ROOT, capture_output=True,
                               text=True).stdout.strip()
        return head + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def machine_info() -> dict[str, str]:
    """What the figures were taken on."""
    sisimai = "not installed"
    with contextlib.suppress(OSError, subprocess.TimeoutExpired):
        sisimai = subprocess.run(["perl", "-MSisimai", "-e", "print Sisimai->version"],
                                 capture_output=True, text=True, timeout=30).stdout.strip()
    try:
        from importlib.metadata import version

        flufl = version("flufl.bounce")
    except Exception:  # noqa: BLE001 - informative only
        flufl = "not installed"
    dovecot = "not installed"
    with contextlib.suppress(OSError, subprocess.TimeoutExpired):
        dovecot = subprocess.run(["dovecot", "--version"], capture_output=True, text=True,
                                 timeout=30).stdout.strip()
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "nproc": str(os.cpu_count()),
        "cpu": cpu_model(),
        "python": platform.python_version(),
        "engine": engine_build(),
        "perl_sisimai": sisimai,
        "flufl_bounce": flufl,
        "dovecot": dovecot,
        "commit": git_head(),
        "loadavg": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }
