"""Shared by the benchmarks: the repo on sys.path, and peak RSS of this process."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def vm_hwm_mb() -> float:
    """Peak RSS since exec (wait4's ru_maxrss would also count the pages a child shared
    with its parent before exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0
