"""prepare_memory: the peak memory of the first `veille prepare` (issue 16: at most 1.5 GB).

    .venv/bin/python -m bench.prepare_memory [--tiny] [--root CHECKOUT] [--work DIR]

Runs the one-time CLIP children exactly as detectors/clip.py does —
`python -m detectors.clip_export export`, then `check` — on a fresh cache, and reads each
child's peak: its own VmHWM (reported on its JSON line) and, as a cross-check, this process's
RUSAGE_CHILDREN ru_maxrss (this process never imports torch, so the figure Linux carries over
fork and exec is small). The model is ViT-B-32 with random weights saved to a local checkpoint
by a throwaway process (bench.clip.save_random_checkpoint), or the tiny test model (--tiny).
`--root` runs the children of another checkout (e.g. `git archive HEAD | tar -x -C /tmp/old`)
with the same checkpoint, for a before/after in one run. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TARGET_MB = 1500
TINY = ROOT / "tests" / "data" / "tiny_clip"


def random_checkpoint(folder: Path) -> Path:
    """ViT-B-32 with random weights, written by a child so that torch stays out of this process."""
    path = folder / "vit-b-32-random.pt"
    if not path.exists():
        subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys; from pathlib import Path; "
                "from bench.clip import save_random_checkpoint; "
                "save_random_checkpoint(Path(sys.argv[1]))",
                str(folder),
            ],
            check=True,
            cwd=ROOT,
            capture_output=True,
        )
    return path


def measure(
    root: Path, model: str, checkpoint: Path, cache: Path, threads: int = 2
) -> dict[str, Any]:
    """Both steps on an empty `cache`, with `root`'s code: each step's peak, seconds, outcome."""
    cache.mkdir(parents=True, exist_ok=True)
    request = cache / "request.json"
    request.write_text(
        json.dumps(
            {
                "model": model,
                "pretrained": str(checkpoint),
                "cache_dir": str(cache),
                "threads": threads,
            }
        ),
        "utf-8",
    )
    env = {**os.environ, "PYTHONPATH": str(root)}
    figures: dict[str, Any] = {}
    for step in ("export", "check"):
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "detectors.clip_export", step, str(request)],
            capture_output=True,
            text=True,
            cwd=root,
            env=env,
            check=False,
        )
        answer = json.loads(done.stdout.strip().splitlines()[-1]) if done.stdout.strip() else {}
        figures[step] = {
            "peak_rss_mb": answer.get("peak_rss_mb"),
            "seconds": round(time.perf_counter() - start, 1),
            "exit": done.returncode,
        }
        if step == "check":
            figures["backend"] = answer.get("backend")
            figures["batch_invariant"] = answer.get("batch_invariant")
            figures["checks"] = answer.get("checks")
        if done.returncode != 0:
            figures[step]["error"] = answer.get("error") or done.stderr.strip()[-300:]
            break
    peaks = [f["peak_rss_mb"] for f in (figures.get("export"), figures.get("check")) if f]
    figures["peak_rss_mb"] = max((p for p in peaks if p is not None), default=None)
    return figures


def _tree_rss_mb(pid: int) -> tuple[float, float]:
    """(VmRSS of `pid` and all its descendants, of `pid` alone while it has any) from Linux
    /proc, in MB; 0 once it is gone."""
    total, todo, alone = 0, [pid], 0
    while todo:
        current = todo.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            # a child belongs to the thread that started it (the detector loads in a worker)
            children = [
                child
                for task in Path(f"/proc/{current}/task").iterdir()
                for child in (task / "children").read_text().split()
            ]
        except OSError:
            continue
        rss = next(
            (int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0
        )
        total += rss
        if current == pid and children:
            alone = rss
        todo += [int(child) for child in children]
    return total / 1024, alone / 1024


def first_start_tree(checkpoint: Path, cache: Path) -> dict[str, Any]:
    """The whole first start as the bot does it (bench.rss: ClipDetector.load, which runs the two
    children, then scoring), sampled every 20 ms: the largest sum of the parent's and its
    children's RSS — what a cgroup's MemoryMax must hold (sampling can miss a spike shorter than
    the interval; the children's own VmHWM cannot)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.rss", str(checkpoint), str(cache)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    peak = waiting = 0.0
    while process.poll() is None:
        tree, parent = _tree_rss_mb(process.pid)
        peak, waiting = max(peak, tree), max(waiting, parent)
        time.sleep(0.02)
    answer = json.loads((process.stdout.read() if process.stdout else "").strip().splitlines()[-1])
    return {
        "tree_peak_rss_mb": round(peak, 1),
        "parent_peak_rss_mb": answer["peak_rss_mb"],
        "children_peak_rss_mb": answer.get("child_peak_rss_mb"),
        # The parent's largest RSS while a child ran, plus the children's own VmHWM: a bound
        # on the tree's peak that no sampling interval can miss.
        "parent_rss_while_children_mb": round(waiting, 1),
        "tree_bound_mb": round(waiting + (answer.get("child_peak_rss_mb") or 0), 1),
        "backend": answer["backend"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tiny", action="store_true", help="the tiny test model, not ViT-B-32")
    parser.add_argument(
        "--root",
        type=Path,
        action="append",
        default=[],
        help="another checkout to measure first (repeatable)",
    )
    parser.add_argument("--work", type=Path, help="keep the checkpoint here between runs")
    parser.add_argument(
        "--tree",
        action="store_true",
        help="also the whole first start, parent and children sampled together",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        work = args.work or Path(scratch)
        work.mkdir(parents=True, exist_ok=True)
        if args.tiny:
            model, checkpoint = str(TINY / "config.json"), TINY / "tiny_clip.pt"
        else:
            model, checkpoint = "ViT-B-32", random_checkpoint(work)
        runs: dict[str, Any] = {}
        for index, root in enumerate([*args.root, ROOT]):
            label = "this checkout" if root == ROOT else str(root)
            runs[label] = measure(
                root.resolve(), model, checkpoint, Path(scratch) / f"cache-{index}"
            )
        tree = (
            first_start_tree(checkpoint, Path(scratch) / "cache-tree")
            if args.tree and not args.tiny
            else None
        )
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    ours = runs["this checkout"]["peak_rss_mb"]
    print(
        json.dumps(
            {
                "model": "tiny test model" if args.tiny else "ViT-B-32 (random weights)",
                "target_mb": TARGET_MB,
                "peak_rss_mb": ours,
                "within_target": ours is not None and ours <= TARGET_MB,
                "runs": runs,
                "largest_child_ru_maxrss_mb": round(
                    children, 1
                ),  # every child of this run, all checkouts
                "first_start_tree": tree,
                "note": "each child's VmHWM; the steps run one after the other, so the peak is the larger",
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
