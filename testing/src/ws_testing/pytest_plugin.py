"""pytest fixtures of the vm tier: the cached image, the code under test, booted machines, failure reports.

``vm`` is one VM booted per session and shared by every test that does not change host-wide state (a boot
costs about two minutes under TCG); ``fresh_vm`` boots a VM of its own for the test that asks for it.
On a failure the console log and the guest journal of every VM the test used are attached to the report.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

BOOT_TIMEOUT = float(os.environ.get("WS_VM_BOOT_TIMEOUT", "600"))
CONSOLE_TAIL_LINES = 150


@dataclass
class Figures:
    """Timings of this session, printed in the terminal summary."""

    image_seconds: float | None = None
    image_cached: bool = False
    accel: str | None = None
    boots: list[tuple[str, float, float]] = field(default_factory=list)  # (name, backdoor ready, multi-user)


_figures = Figures()


@pytest.fixture(scope="session")
def vm_image(request: pytest.FixtureRequest):
    """The test-host image for the current recipe (built on first use, then from /var/tmp/ws-vm-cache)."""
    from ws_testing.image import ensure_image

    started = time.monotonic()
    try:
        image = ensure_image(request.config.rootpath)
    except RuntimeError as error:
        pytest.fail(f"cannot build the vm test image: {error}", pytrace=False)
    _figures.image_seconds = time.monotonic() - started
    _figures.image_cached = image.build_seconds == 0.0
    return image


@pytest.fixture(scope="session")
def vm_code_share(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Wheels of the workspace members built from this checkout, installed for the guest's Python."""
    from ws_testing.image import build_code_share

    share = tmp_path_factory.mktemp("vm-code")
    try:
        build_code_share(request.config.rootpath, share)
    except RuntimeError as error:
        pytest.fail(f"cannot build ws from the checkout for the vm: {error}", pytrace=False)
    return share


@pytest.fixture(scope="session")
def vm_accel(vm_image, tmp_path_factory: pytest.TempPathFactory) -> str:
    """kvm or tcg, decided once per session (WS_VM_ACCEL forces it)."""
    from ws_testing.qemu import choose_accel

    _figures.accel = choose_accel(vm_image, tmp_path_factory.mktemp("kvm-probe"))
    return _figures.accel


@pytest.fixture(scope="session")
def vm(vm_image, vm_code_share, vm_accel, tmp_path_factory) -> Iterator:
    """A VM shared by the session's tests: use it only for tests that leave host-wide state as they found it."""
    yield from _booted("shared", vm_image, vm_code_share, vm_accel, tmp_path_factory)


@pytest.fixture
def fresh_vm(vm_image, vm_code_share, vm_accel, tmp_path_factory) -> Iterator:
    """A VM booted for this test alone (for tests that change host-wide state)."""
    yield from _booted("fresh", vm_image, vm_code_share, vm_accel, tmp_path_factory)


def _booted(name: str, image, code_share: Path, accel: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """Boot, wait for multi-user.target, hand the machine out; always kill qemu and drop the overlay after."""
    from ws_testing import qemu
    from ws_testing.machine import Machine

    workdir = tmp_path_factory.mktemp(f"vm-{name}")
    try:
        machine = Machine(qemu.start(image, workdir, accel, code_share))
    except RuntimeError as error:
        pytest.fail(f"cannot start the vm: {error}", pytrace=False)
    try:
        try:
            machine.connect(BOOT_TIMEOUT)
            machine.wait_for_unit("multi-user.target", BOOT_TIMEOUT)
        except Exception as error:
            pytest.fail(
                f"vm {name} did not boot ({accel}): {error}\n--- console (last {CONSOLE_TAIL_LINES} "
                f"lines of {machine.qemu.console_log}) ---\n{machine.console_log(CONSOLE_TAIL_LINES)}",
                pytrace=False,
            )
        multi_user = time.monotonic() - machine.qemu.started
        _figures.boots.append((name, machine.ready_seconds or 0.0, multi_user))
        yield machine
    finally:
        machine.shutdown()
        (workdir / "overlay.qcow2").unlink(missing_ok=True)  # the rest of workdir stays for debugging


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Attach the console log and the guest journal of the test's VMs when the test failed."""
    from ws_testing.machine import Machine

    report = yield
    if report.failed:
        machines = [(n, v) for n, v in getattr(item, "funcargs", {}).items() if isinstance(v, Machine)]
        for name, machine in machines:
            report.sections.append(
                (f"vm {name}: console log ({machine.qemu.console_log})", machine.console_log(CONSOLE_TAIL_LINES))
            )
            report.sections.append((f"vm {name}: guest journal", machine.journal()))
    return report


def pytest_terminal_summary(terminalreporter) -> None:
    """Report the tier's figures: image build (cold or cached), accelerator, boot times."""
    if _figures.image_seconds is None:
        return
    write = terminalreporter.write_line
    terminalreporter.section("vm tier figures")
    write(f"image: {_figures.image_seconds:.1f}s ({'cached' if _figures.image_cached else 'built'})")
    write(f"accelerator: {_figures.accel}")
    for name, ready, multi_user in _figures.boots:
        write(f"boot {name}: backdoor after {ready:.1f}s, multi-user.target after {multi_user:.1f}s")
