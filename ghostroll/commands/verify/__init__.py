"""`ghostroll verify`: is every photo we promised safe really there, and does every
session's state tell the truth? Run after a power cut (like `restic check`), at boot on
the appliance (`--local`), and by the fault tests as their oracle.

What is checked, by small functions adding `Problem`s to a `Report`:
- contents: every `files` row has a verified copy, and every recorded copy is where it
  is recorded to be: `local` and `archive-disk` copies on disk with their size, `bucket`
  copies by a HEAD request; `pruned` copies are not looked for. `read_data` re-hashes
  every disk copy against its sha256 (resumable, see `Checkpoint`).
- sessions: copying/copied ⇒ every verified original present with its size;
  processed ⇒ share image + thumbnail of every photo of `derived/gallery.json`;
  published ⇒ its objects in the bucket the upload ledger names, unsigned GET denied;
  a session set aside (`process_error`) is reported with its error.
- leftovers: temp files no living run owns; files in a session's `originals/` that no
  row records (reported, never deleted).
- the database's `integrity_check`.

Verify changes nothing: it only reads, apart from its `--read-data` checkpoint and the
last result kept next to the database for the appliance's idle screen

The package: `model` (problem kinds, `Problem`, `Report`, `Options`), `rules` (pure
decisions), `checks` (the checks and the entry points), `bucket`, `readdata`
(`--read-data`), `repair` (`--repair`), `report` (text/JSON/progress bar).
"""

from ghostroll.commands.verify.checks import run_verify, verify_device
from ghostroll.commands.verify.model import Options, Problem, Report
from ghostroll.commands.verify.report import (
    HashBar,
    idle_line,
    last_result_path,
    report_json,
    report_text,
    unusable_json,
)
from ghostroll.commands.verify.rules import (
    expected_objects,
    missing_derived,
    session_of,
    summary_line,
)

__all__ = [
    "HashBar", "Options", "Problem", "Report", "expected_objects", "idle_line",
    "last_result_path", "missing_derived", "report_json", "report_text", "run_verify",
    "session_of", "summary_line", "unusable_json", "verify_device",
]
