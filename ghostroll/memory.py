"""Process-wide memory policy: freed pictures go back to the system.

glibc raises its mmap threshold after large frees (up to 32 MiB); from then on decoded
pictures come from the heap and stay resident after they are freed. A run over the camera
samples peaked at ~255 MB that way, ~160 MB with a fixed threshold, which keeps every
large pixel block mmapped so it is returned when freed. Called by the CLI at start and by
the derivative pool (library use)."""

from __future__ import annotations

import contextlib
import ctypes

M_MMAP_THRESHOLD = -3  # glibc mallopt parameter
MMAPPED_FROM = 1 << 20  # allocations of 1 MiB and more


def return_freed_memory() -> None:
    with contextlib.suppress(OSError, AttributeError):  # not glibc: its own policy
        ctypes.CDLL(None).mallopt(M_MMAP_THRESHOLD, MMAPPED_FROM)
