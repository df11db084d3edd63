"""Shared fixtures. Feature fixtures live in tests/support/ and are imported by the
test modules that use them."""

from __future__ import annotations

import os

import pytest

# Fixture modules shared by several test files (browser, local servers).
pytest_plugins = ["tests.support.browser", "tests.support.s3", "tests.support.campaign"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.geteuid() == 0:
        return
    skip_root = pytest.mark.skip(reason="needs root (loop devices, FUSE mounts); CI runs as root")
    for item in items:
        if "root" in item.keywords:
            item.add_marker(skip_root)
