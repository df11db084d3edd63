"""First boot: a good ghostroll.toml is applied and scrubbed; a broken one applies nothing
and leaves a message for the panel."""

from __future__ import annotations

import stat
import tomllib
from pathlib import Path

from ghostroll.commands.firstboot import Paths, run

KEY = "ssh-ed25519 " + "A" * 68 + " me@laptop"


def paths(tmp: Path) -> Paths:
    return Paths(source=tmp / "boot" / "ghostroll.toml", config=tmp / "etc" / "config.toml",
                 error=tmp / "state" / "firstboot-error.txt",
                 network_dir=tmp / "nm", nm_state=tmp / "nmstate" / "NetworkManager.state",
                 rfkill_dir=tmp / "rfkill", cmdline=tmp / "boot" / "cmdline.txt",
                 home_root=tmp / "home", admin="admin")


class Tools:
    """Records the system tools first boot runs (iw, rfkill) instead of running them."""

    def __init__(self) -> None:
        self.ran: list[list[str]] = []

    def __call__(self, argv: list[str]) -> None:
        self.ran.append(argv)


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
    assert run(p, Tools()) == 0
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
        ('[firstboot]\nwifi_ssid = "x"\nwifi_psk = "short"\nwifi_country = "GB"\n',
         "8 to 63"),
        ('[firstboot]\nwifi_ssid = "Studio"\nwifi_psk = "correct horse battery"\n',
         "wifi_country is required"),
        ('[firstboot]\nwifi_ssid = "Studio"\nwifi_country = "Britain"\n',
         "wifi_country is required"),
        ('[cards]\nsd_label = "x"\n', "unknown section"),
    ):
        p.source.write_text(text)
        tools = Tools()
        assert run(p, tools) == 1 and tools.ran == []
        assert words in p.error.read_text()
        assert p.source.exists() and not p.config.exists()
        assert not (tmp_path / "home").exists() and not (tmp_path / "nm").exists()


def test_wifi_is_switched_on_for_the_country_before_networkmanager(tmp_path: Path) -> None:
    """As pi-gen leaves an image built without a country: radio soft-blocked in
    systemd-rfkill's saved state, NetworkManager's WirelessEnabled=false."""
    p = paths(tmp_path)
    p.source.parent.mkdir(parents=True)
    p.cmdline.write_text("console=serial0,115200 root=PARTUUID=abc-02 rootwait\n")
    p.rfkill_dir.mkdir()
    (p.rfkill_dir / "platform-3f300000.mmcnr:wlan").write_text("1\n")
    p.nm_state.parent.mkdir()
    p.nm_state.write_text("[main]\nNetworkingEnabled=true\nWirelessEnabled=false\n")
    p.source.write_text(GOOD.replace('"GB"', '"gb"'))
    tools = Tools()
    assert run(p, tools) == 0
    assert tools.ran == [["iw", "reg", "set", "GB"], ["rfkill", "unblock", "wifi"]]
    assert p.cmdline.read_text() == ("console=serial0,115200 root=PARTUUID=abc-02 rootwait "
                                     "cfg80211.ieee80211_regdom=GB\n")
    assert (p.rfkill_dir / "platform-3f300000.mmcnr:wlan").read_text() == "0\n"
    state = p.nm_state.read_text().splitlines()
    assert "WirelessEnabled=true" in state and "WirelessEnabled=false" not in state
    assert "NetworkingEnabled=true" in state


def test_settings_merge_over_the_image_defaults_and_a_later_file_applies(
        tmp_path: Path) -> None:
    """The image's [storage] survives the first boot (an admin's `ghostroll sessions`
    reads the service's database); a file put on the boot partition later (new Wi-Fi)
    is applied on the next boot and keeps the bucket."""
    p = paths(tmp_path)
    p.source.parent.mkdir(parents=True)
    p.config.parent.mkdir(parents=True)
    p.config.write_text('[storage]\nbase_dir = "/var/lib/ghostroll/sessions"\n'
                        'db_path = "/var/lib/ghostroll/ghostroll.db"\n\n'
                        '[appliance]\nkit = "waveshare-2in13-v4"\n')
    p.source.write_text(GOOD)
    assert run(p, Tools()) == 0
    first = tomllib.loads(p.config.read_text())
    assert first["storage"]["db_path"] == "/var/lib/ghostroll/ghostroll.db"
    assert first["appliance"]["kit"] == "waveshare-2in13-v4"
    assert first["s3"]["s3_bucket"] == "photos"

    p.cmdline.write_text("root=x cfg80211.ieee80211_regdom=GB\n")
    p.source.write_text('[appliance]\nkit = "waveshare-2in9-v2"\n\n[firstboot]\n'
                        'wifi_ssid = "Cafe"\nwifi_psk = "another secret"\nwifi_country = "FR"\n')
    tools = Tools()
    assert run(p, tools) == 0 and ["iw", "reg", "set", "FR"] in tools.ran
    later = tomllib.loads(p.config.read_text())
    assert later["s3"]["s3_secret_access_key"] == "s3cr3t-s3cr3t-s3cr3t"
    assert later["appliance"]["kit"] == "waveshare-2in9-v2"
    assert later["storage"] == first["storage"]
    assert p.cmdline.read_text() == "root=x cfg80211.ieee80211_regdom=FR\n"
    assert "ssid=Cafe" in (tmp_path / "nm" / "ghostroll-wifi.nmconnection").read_text()
    assert "another secret" not in (tmp_path / "boot" / "ghostroll.toml.applied").read_text()
