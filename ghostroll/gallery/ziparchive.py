"""share.zip: the share images, stored as they are (JPEGs do not compress)."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

from ghostroll import faults

_FIXED_TIME = (2020, 1, 1, 0, 0, 0)  # same bytes for the same photos: uploads stay idempotent


def write_share_zip(files: list[tuple[Path, str]], dest: Path) -> Path:
    """`files` are (path, name in the archive); written to a temp file, then renamed.
    On any failure (a full disk) the temp file is removed and an older zip stays."""
    faults.fault("zip")
    temp = dest.with_name(f".{dest.name}.tmp")
    try:
        with zipfile.ZipFile(temp, "w", compression=zipfile.ZIP_STORED) as archive:
            for path, arcname in sorted(files, key=lambda f: f[1]):
                info = zipfile.ZipInfo(arcname, date_time=_FIXED_TIME)
                info.compress_type = zipfile.ZIP_STORED
                info.external_attr = 0o644 << 16
                with path.open("rb") as src, archive.open(info, "w") as out:
                    while chunk := src.read(1 << 20):
                        out.write(chunk)
        os.replace(temp, dest)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return dest

