"""CPU seconds used by this process and everything it started (the Spark JVM and its Python workers), read from
``/proc``: on a shared machine, where other work inflates wall time, the CPU a variant burns per row is the steadier
figure to compare variants by. Linux only (elsewhere :func:`tree_cpu` returns None)."""

from __future__ import annotations

import os

TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat(pid: int) -> tuple[int, int] | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
    except OSError:
        return None
    rest = s[s.rindex(")") + 2:].split()
    ppid = int(rest[1])
    ut, st, cut, cst = (int(x) for x in rest[11:15])
    return ppid, ut + st + cut + cst


def tree_cpu(root: int | None = None) -> float | None:
    """CPU seconds of every descendant of root (default: this process), itself included, reaped children too."""
    if not os.path.isdir("/proc"):
        return None
    root = root or os.getpid()
    stats = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            s = _stat(int(d))
            if s:
                stats[int(d)] = s
    kids = {}
    for pid, (ppid, _) in stats.items():
        kids.setdefault(ppid, []).append(pid)
    total, todo = 0, [root]
    while todo:
        p = todo.pop()
        if p in stats:
            total += stats[p][1]
        todo += kids.get(p, [])
    return total / TICK
