"""One set of exit codes: README's table lists exactly `ExitCode`."""

from __future__ import annotations

import re
from pathlib import Path

from ghostroll.exitcodes import ExitCode


def test_readme_lists_every_exit_code() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    listed = {int(n) for n in re.findall(r"^\| (\d+) \|", readme, re.MULTILINE)}
    assert listed == {int(code) for code in ExitCode}
