"""`ghostroll doctor`'s device checks: the button is only working when the running service
got gpiozero's lgpio factory (it records what it got in devices.json)."""

from __future__ import annotations

import json
from pathlib import Path

from ghostroll import config
from ghostroll.commands.doctor import FAIL, OK, WARN, check_button


def checks(tmp_path: Path, record: dict | None) -> list:
    tmp_path.mkdir(parents=True, exist_ok=True)
    empty = tmp_path / "config.toml"
    empty.write_text("")
    cfg = config.load(env={"GHOSTROLL_RUNTIME_DIR": str(tmp_path / "run")}, config_file=empty)
    if record is not None:
        (tmp_path / "run").mkdir()
        (tmp_path / "run" / "devices.json").write_text(json.dumps(record))
    return list(check_button(cfg, dev=tmp_path))


def test_lgpio_is_ok(tmp_path: Path) -> None:
    (tmp_path / "gpiochip0").touch()
    [check] = checks(tmp_path, {"button_factory": "lgpio"})
    assert check.status == OK and "gpiochip0" in check.detail


def test_any_other_factory_or_an_error_fails(tmp_path: Path) -> None:
    [native] = checks(tmp_path / "a", {"button_factory": "native"})
    assert native.status == FAIL and native.blocking and "'native', not lgpio" in native.detail
    [error] = checks(tmp_path / "b", {"button_error": "pin factory 'lgpio' cannot load: x"})
    assert error.status == FAIL and "cannot load" in error.detail


def test_no_record_is_a_warning(tmp_path: Path) -> None:
    [check] = checks(tmp_path, None)
    assert check.status == WARN and "has not recorded" in check.detail
