"""What GhostRoll keeps on its own disk: the database, session folders, copies in flight."""
