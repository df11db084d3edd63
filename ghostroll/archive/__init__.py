"""Archive targets: a second verified copy of every original outside the Pi's own card.

`layout.py` decides (pure): the dated folder of a session, the disk's own SHA256SUMS and
manifest, how many copies a set of contents has and what the receipt says about it.
`disk.py` copies originals from the verified local copy onto a mounted disk
(`archive_dir`) with the card copier's copy-once / hash / fsync / verify code."""
