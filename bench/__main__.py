"""`make bench`: run every benchmark, print a table, write bench/results/latest.json.

Each figure is measured in this run; ratios compare against a baseline measured in the same run.
Every benchmark runs in a fresh process: threads, caches and heap left by one must not slow the
next (the cache-hit figure doubled when it ran after the latency streams in one process).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.suites import SUITES, run_suite

RESULTS = Path(__file__).with_name("results")


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", nargs="*", choices=SUITES, help="run only these benchmarks")
    parser.add_argument("--quick", action="store_true", help="fewer images and a shorter stream")
    args = parser.parse_args()

    results: dict[str, Any] = {
        "machine": machine(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    console = Console()
    spawn = multiprocessing.get_context("spawn")
    for name in SUITES:
        if args.only and name not in args.only:
            continue
        with console.status(f"running {name}…"), spawn.Pool(1) as pool:
            results[name] = pool.apply(run_suite, (name, args.quick))
    RESULTS.mkdir(exist_ok=True)
    # latest.json holds one complete run; a partial run (--only, --quick) goes beside it.
    target = RESULTS / ("partial.json" if args.only or args.quick else "latest.json")
    target.write_text(json.dumps(results, indent=2) + "\n")

    table = Table(
        "benchmark",
        "figure",
        "value",
        title=f"Veille benchmarks — {results['machine']['cpu']}, {results['machine']['cores']} cores",
    )
    for name, value in results.items():
        if name in ("machine", "started"):
            continue
        if isinstance(value, dict):
            for key, figure in value.items():
                table.add_row(name, key, str(figure))
        else:
            table.add_row(name, "", str(value))
    console.print(table)
    console.print(f"written to {target}")
    # A figure measured on a fallback is not the figure it claims to be: fail the run.
    fell_back = [
        f"{name}: {value['backend']} ran, {value['intended_backend']} intended"
        for name, value in results.items()
        if isinstance(value, dict)
        and value.get("intended_backend")
        and value.get("backend") != value["intended_backend"]
    ]
    if fell_back:
        console.print("[red]fast path fell back[/red] — " + "; ".join(fell_back))
    # So is one measured while the bot logged errors (actions failing and being retried).
    failed = [
        f"{name}: {value['errors'][0]}"
        for name, value in results.items()
        if isinstance(value, dict) and value.get("errors")
    ]
    if failed:
        console.print("[red]errors during the run[/red] — " + "; ".join(failed))
    if fell_back or failed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
