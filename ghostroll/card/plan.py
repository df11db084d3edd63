"""Deciding what to read from a card. Pure: no I/O, no clock.

A card file whose (volume, path, size, mtime) was recorded after a verified ingest is
known without reading it. Everything else must be read once (hashed while copied);
whether it is new content is only known after that, against the dedupe index."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ghostroll.card.scan import CardFile
from ghostroll.storage.db import SeenRow

# Allowance per copied file for its directory entry and inode on the session disk.
PER_FILE_OVERHEAD = 8192


@dataclass(frozen=True)
class Plan:
    known: tuple[tuple[CardFile, SeenRow], ...]  # recognised by path/size/mtime: not read
    to_read: tuple[CardFile, ...]  # must be hashed (copied unless the content is known)

    @property
    def bytes_to_read(self) -> int:
        return sum(f.size for f in self.to_read)

    def space_needed(self, margin_bytes: int) -> int:
        """Worst case on the session disk: every unread file turns out new."""
        return self.bytes_to_read + PER_FILE_OVERHEAD * len(self.to_read) + margin_bytes


def plan_card(files: list[CardFile], seen: Mapping[str, SeenRow]) -> Plan:
    known: list[tuple[CardFile, SeenRow]] = []
    to_read: list[CardFile] = []
    for card_file in files:
        row = seen.get(card_file.rel_path)
        if row is not None and row.size == card_file.size and row.mtime_ns == card_file.mtime_ns:
            known.append((card_file, row))
        else:
            to_read.append(card_file)
    return Plan(tuple(known), tuple(to_read))
