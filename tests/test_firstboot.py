"""First boot: a good ghostroll.toml is applied and scrubbed; a broken one applies nothing
and leaves a message for the panel."""

from __future__ import annotations

import stat
import tomllib
from pathlib import Path

from ghostroll.firstboot import Paths, run

KEY = "ssh-ed25519 " + "A" * 68 + " me@laptop"


def paths(tmp: Path) -> Paths:
    return Paths(source=tmp / "boot" / "ghostroll.toml", config=tmp / "etc" / "config.toml",
                 error=tmp / "state" / "firstboot-error.txt",
                 network_dir=tmp / "nm", home_root=tmp / "home", admin="admin")


GOOD = f'''
[s3]
s3_bucket = "photos"
s3_region = "eu-west-1"
s3_access_key_id = "AKIAEXAMPLEEXAMPLE"
s3_secret_access_key = "s3cr3t-s3cr3t-s3cr3t"

[firstboot]
ssh_authorized_keys = ["{KEY}"]
wifi_ssid = "Studio"
wifi_psk = "correct horse battery"
wifi_country = "GB"
'''


def test_good_file_is_applied_and_scrubbed(tmp_path: Path) -> None:
    p = paths(tmp_path)
    p.source.parent.mkdir(parents=True)
    p.source.write_text(GOOD)
    assert run(p) == 0
    installed = tomllib.loads(p.config.read_text())
    assert installed == {"s3": {"s3_bucket": "photos", "s3_region": "eu-west-1",
                                "s3_access_key_id": "AKIAEXAMPLEEXAMPLE",
                                "s3_secret_access_key": "s3cr3t-s3cr3t-s3cr3t"}}
    assert stat.S_IMODE(p.config.stat().st_mode) == 0o640
    auth = tmp_path / "home" / "admin" / ".ssh" / "authorized_keys"
    assert auth.read_text().strip() == KEY and stat.S_IMODE(auth.stat().st_mode) == 0o600
    wifi = (tmp_path / "nm" / "ghostroll-wifi.nmconnection").read_text()
    assert "ssid=Studio" in wifi and "psk=correct horse battery" in wifi
    assert not p.source.exists()
    applied = (tmp_path / "boot" / "ghostroll.toml.applied").read_text()
    for secret in ("s3cr3t", "correct horse", "AKIAEXAMPLE"):
        assert secret not in applied
    assert 's3_bucket = "photos"' in applied
    assert not p.error.exists()


def test_broken_file_applies_nothing_and_says_why(tmp_path: Path) -> None:
    p = paths(tmp_path)
    p.source.parent.mkdir(parents=True)
    for text, words in (
        ('[s3]\nupload_workers = 0\n', "upload_workers"),
        ('[s3\n', "not valid TOML"),
        ('[firstboot]\nssh_authorized_keys = ["not a key"]\n', "public key lines"),
        ('[firstboot]\nwifi_ssid = "x"\nwifi_psk = "short"\n', "8 to 63"),
        ('[cards]\nsd_label = "x"\n', "unknown section"),
    ):
        p.source.write_text(text)
        assert run(p) == 1
        assert words in p.error.read_text()
        assert p.source.exists() and not p.config.exists()
        assert not (tmp_path / "home").exists() and not (tmp_path / "nm").exists()
