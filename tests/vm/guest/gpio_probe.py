"""Guest-only (VM test): runs as ExecStartPre= of ghostroll.service through a test drop-in,
so under the unit's real sandbox (user, groups, ProtectSystem=strict, working directory,
environment). Records whether lgpio imports and initialises there and how far gpiozero's
own factory selection gets, in /run/ghostroll/vmtest-gpio.json. Never fails the unit."""

import json
import os
import sys
import warnings

out: dict[str, object] = {"cwd": os.getcwd(), "lg_wd": os.environ.get("LG_WD"),
                          "unit_factory": os.environ.get("GPIOZERO_PIN_FACTORY")}
try:
    import lgpio

    out["lgpio"] = f"imported {lgpio.LGPIO_PY_VERSION:#x} from {lgpio.__file__}"
except Exception as exc:  # the finding: no writable working directory
    out["lgpio"] = f"{type(exc).__name__}: {exc}"
os.environ.pop("GPIOZERO_PIN_FACTORY", None)  # gpiozero's own probe, as on a Pi
try:
    from gpiozero import Device
    from gpiozero.pins.local import get_pi_revision

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            factory = Device._default_pin_factory()
            out["factory"] = type(factory).__name__
            factory.close()
        except Exception as exc:
            out["factory_error"] = f"{type(exc).__name__}: {exc}"
    out["fallbacks"] = [str(w.message) for w in caught]
    try:
        out["pi_revision"] = f"{get_pi_revision():x}"
    except Exception as exc:
        out["pi_revision"] = f"{type(exc).__name__}: {exc}"
except Exception as exc:
    out["gpiozero"] = f"{type(exc).__name__}: {exc}"
try:
    with open("/run/ghostroll/vmtest-gpio.json", "w") as fh:
        json.dump(out, fh, indent=1)
except OSError as exc:
    print(f"gpio_probe: {exc}", file=sys.stderr)
print("gpio_probe:", json.dumps(out), file=sys.stderr)
