"""Gaps in the camera's file numbering within a folder: cheap, one line of information.

Cameras share one counter across prefixes in a folder (Canon IMG_/MVI_, Nikon DSC_/_DSC),
so numbers are pooled; RAW+JPEG pairs share a number."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable

# A camera counter: 3-5 digits ending the stem, not part of a longer run of digits (a phone's
# `PXL_20231101_151117049`, `20231101_151117`, `IMG_20231101_151117` are timestamps)
_NUMBER = re.compile(r"(?<!\d)(\d{3,5})(?=\.[^.]*$|$)")
_TIMESTAMP = re.compile(r"(19|20)\d{6}[_-]?\d{6}")
# A larger hole is not a lost file: a new folder, renamed files or another camera
MAX_GAP = 50
MAX_RANGES = 5


def numbering_gaps(names: Iterable[str]) -> list[str]:
    """`["DSC_0417–0419, DSC_0502 not on the card (4 numbers)"]`, or `[]` when the run is
    whole. Information, not a warning: every file on the card was read, and a skipped
    number is most often a picture deleted in the camera."""
    numbers: dict[int, str] = {}
    width = 4
    for name in names:
        match = _NUMBER.search(name)
        if match and not _TIMESTAMP.search(name):
            numbers.setdefault(int(match.group(1)), name[:match.start()])
            width = len(match.group(1))
    ordered = sorted(numbers)
    ranges = []
    missing = 0
    for low, high in itertools.pairwise(ordered):
        if 1 < high - low <= MAX_GAP + 1:
            prefix = numbers[high]
            first, last = low + 1, high - 1
            missing += last - first + 1
            ranges.append(f"{prefix}{first:0{width}d}" if first == last
                          else f"{prefix}{first:0{width}d}–{last:0{width}d}")
    if not ranges:
        return []
    shown = ", ".join(ranges[:MAX_RANGES]) + (" …" if len(ranges) > MAX_RANGES else "")
    return [f"{shown} not on the card ({missing} number{'s' if missing != 1 else ''})"]
