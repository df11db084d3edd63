"""The same guest checks on an arm64 guest (`qemu-system-aarch64 -M virt`, TCG): the
image's architecture, so its aarch64 wheels and the image's Python are what is proven.
Opt-in (not in .ci/run, it adds 15-30 minutes): `pytest -m vm_arm64 tests/vm`. Needs
qemu-system-arm and qemu-user-static (binfmt_misc is mounted and registered by the
harness)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.vm import test_vm_system as same
from tests.vm.harness import ARCHES, VM

# In the order of test_vm_system.py: later checks use what earlier ones left behind.
test_cards_are_mounted_read_only_ingested_published_and_unchanged = \
    same.test_cards_are_mounted_read_only_ingested_published_and_unchanged
test_card_pulled_mid_copy_loses_nothing_and_resumes = \
    same.test_card_pulled_mid_copy_loses_nothing_and_resumes
test_install_from_a_user_checkout_is_root_owned = \
    same.test_install_from_a_user_checkout_is_root_owned
test_lgpio_starts_under_the_service_sandbox = same.test_lgpio_starts_under_the_service_sandbox
test_vendor_contract_under_the_guests_python = same.test_vendor_contract_under_the_guests_python
test_panel_frames_through_the_installed_driver = same.test_panel_frames_through_the_installed_driver
test_cards_swapped_in_a_reader_that_stays_plugged = \
    same.test_cards_swapped_in_a_reader_that_stays_plugged
test_first_boot_file_applied_and_nothing_secret_exposed = \
    same.test_first_boot_file_applied_and_nothing_secret_exposed
test_button_stories_on_the_gpio_sim_chip = same.test_button_stories_on_the_gpio_sim_chip
test_card_in_the_reader_at_power_on_is_copied_and_published = \
    same.test_card_in_the_reader_at_power_on_is_copied_and_published

pytestmark = pytest.mark.vm_arm64
TIMINGS: dict[str, float] = {}


@pytest.fixture(scope="module")
def vm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VM]:
    yield from same.boot(tmp_path_factory, ARCHES["arm64"], TIMINGS)
