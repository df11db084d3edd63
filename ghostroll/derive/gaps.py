"""Gaps in the camera's file numbering within a folder: cheap, one line of information.

Cameras share one counter across prefixes in a folder (Canon IMG_/MVI_, Nikon DSC_/_DSC),
so numbers are pooled; RAW+JPEG pairs share a number."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable

_NUMBER = re.compile(r"(\d{3,5})(?=\.[^.]*$|$)")
MAX_RANGES = 5


def numbering_gaps(names: Iterable[str]) -> list[str]:
    """`["DSC_0417–0419, DSC_0502 missing (4 files)"]`, or `[]` when the run is whole."""
    numbers: dict[int, str] = {}
    width = 4
    for name in names:
        match = _NUMBER.search(name)
        if match:
            numbers.setdefault(int(match.group(1)), name[:match.start()])
            width = len(match.group(1))
    ordered = sorted(numbers)
    ranges = []
    missing = 0
    for low, high in itertools.pairwise(ordered):
        if high - low > 1:
            prefix = numbers[high]
            first, last = low + 1, high - 1
            missing += last - first + 1
            ranges.append(f"{prefix}{first:0{width}d}" if first == last
                          else f"{prefix}{first:0{width}d}–{last:0{width}d}")
    if not ranges:
        return []
    shown = ", ".join(ranges[:MAX_RANGES]) + (" …" if len(ranges) > MAX_RANGES else "")
    return [f"{shown} missing ({missing} file{'s' if missing != 1 else ''})"]
