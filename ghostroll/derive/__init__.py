"""Derivatives: share images, thumbnails and metadata from verified local copies."""

from ghostroll.derive.gaps import numbering_gaps
from ghostroll.derive.images import DeriveJob, DeriveResult, derive_one
from ghostroll.derive.metadata import PhotoMeta, meta_from_exif
from ghostroll.derive.pool import derive_many

__all__ = ["DeriveJob", "DeriveResult", "PhotoMeta", "derive_many", "derive_one",
           "meta_from_exif", "numbering_gaps"]
