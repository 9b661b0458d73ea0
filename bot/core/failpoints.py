"""Failpoints: named places where a test can kill the process, to prove a crash there is safe.

The pattern of FreeBSD's fail(9) and Go's gofail, reduced to one action: `failpoint(name)` is
a no-op unless the environment variable VEILLE_FAILPOINT names that point, in which case the
process sends itself SIGKILL — a real `kill -9`: no `finally`, no rollback, no flushed buffer,
no drained outbox. tests/cli/test_crash_points.py sets it on a real `veille run`, restarts the
process without it and checks that nothing was lost and nothing was posted twice. Operators
never set it; unset (the only production state) each call is one comparison.

VEILLE_FAILPOINT=name kills at the first hit, VEILLE_FAILPOINT=name:N at the N-th (a point on
a path several events or actions share). The variable is read once, at import; an unknown
name or a bad N refuses to start rather than never firing, so a typo cannot turn a crash test
into a test that crashes nothing.
"""

from __future__ import annotations

import os
import signal
from typing import Final, Literal, get_args

Point = Literal[
    "after-detection",  # pipeline.scan finished: verdicts known, nothing written
    "before-commit",  # decisions.commit: ticket, evidence and outbox rows flushed, not committed
    "after-commit",  # decisions.commit: committed, the outbox worker not yet woken
    "mid-outbox",  # outbox: a message DELETE succeeded, its row not yet marked done
    "after-card-post",  # outbox: a card POST returned, its row (and message id) not yet stored
]
POINTS: Final[tuple[str, ...]] = get_args(Point)
ENV: Final = "VEILLE_FAILPOINT"


def _parse(raw: str) -> tuple[str | None, int]:
    """(point, hit that fires) from the variable's value; (None, 0) when unset."""
    raw = raw.strip()
    if not raw:
        return None, 0
    name, _, nth = raw.partition(":")
    if name not in POINTS:
        raise ValueError(f"{ENV}={raw!r}: unknown failpoint (known: {', '.join(POINTS)})")
    if nth and not (nth.isdigit() and int(nth) >= 1):
        raise ValueError(f"{ENV}={raw!r}: the hit count after ':' must be a whole number >= 1")
    return name, int(nth) if nth else 1


_armed, _fire_at = _parse(os.environ.get(ENV, ""))
_hits = 0


def failpoint(name: Point) -> None:
    """SIGKILL this process if VEILLE_FAILPOINT arms `name` and this is the hit it names."""
    global _hits
    if name != _armed:
        return
    _hits += 1
    if _hits < _fire_at:
        return
    # One unbuffered line, so a test log says where the process died; then no cleanup at all.
    os.write(2, f"veille: failpoint {name} hit {_hits}: SIGKILL\n".encode())
    os.kill(os.getpid(), signal.SIGKILL)
