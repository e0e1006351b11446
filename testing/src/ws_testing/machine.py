"""The test driver API for a booted VM, in the spirit of NixOS's test driver.

Commands go over the backdoor root shell on a virtio-serial port (guest side: /usr/local/libexec/ws-backdoor),
so they work whatever state the guest network is in. Every call has a timeout.
"""

from __future__ import annotations

import base64
import re
import shlex
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from ws_testing.qemu import Qemu

READY = b"ws-backdoor-ready"
DEFAULT_TIMEOUT = 120.0
HOST_GRACE = 30.0  # extra wait on the host beyond the guest-side timeout (TCG is slow to report back)
TERMINAL_CONTROL = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[A-Za-z]|\r")  # systemd's coloured status lines


@dataclass(frozen=True)
class Result:
    status: int
    stdout: str
    stderr: str


class CommandFailed(AssertionError):
    """A guest command ended with an unexpected exit status; carries everything needed to see why."""

    def __init__(self, command: str, result: Result, expectation: str) -> None:
        self.command, self.result = command, result
        super().__init__(
            f"{expectation}: {command!r} exited {result.status}"
            + (" (timed out)" if result.status in (124, 137) else "")
            + f"\n--- stdout ---\n{result.stdout}--- stderr ---\n{result.stderr}"
        )


class Machine:
    """A booted test VM. Create with :func:`ws_testing.qemu.start`, then :meth:`connect`."""

    def __init__(self, qemu: Qemu) -> None:
        self.qemu = qemu
        self._sock: socket.socket | None = None
        self._buffer = b""
        self.ready_seconds: float | None = None  # qemu start -> backdoor answering

    # --- life cycle ---------------------------------------------------------------------------------

    def connect(self, timeout: float) -> None:
        """Attach to the backdoor socket and wait until the guest's backdoor announces itself."""
        deadline = time.monotonic() + timeout
        while self._sock is None:
            self._check_alive()
            try:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.connect(str(self.qemu.backdoor_socket))
                self._sock = sock
            except (FileNotFoundError, ConnectionRefusedError):
                sock.close()
                self._sleep_until(deadline, "qemu never opened its backdoor socket")
        while READY not in self._buffer:
            self._receive(deadline, "the guest backdoor did not come up")
        self._buffer = self._buffer[self._buffer.rindex(READY) + len(READY) :]
        self.ready_seconds = time.monotonic() - self.qemu.started

    def shutdown(self, timeout: float = 120.0) -> None:
        """Power the guest off cleanly and wait for qemu to exit; kill it if it does not."""
        try:
            if self.qemu.process.poll() is None and self._sock is not None:
                self._sock.sendall(self._frame(uuid.uuid4().hex, 10, "systemctl poweroff --no-block"))
            self.qemu.process.wait(timeout)
        except (OSError, subprocess.TimeoutExpired):
            pass  # the guest may be what broke: close() kills qemu
        finally:
            self.close()

    def close(self) -> None:
        """Kill qemu (if still running) and drop the connection; safe to call more than once."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        self.qemu.kill()

    # --- commands -----------------------------------------------------------------------------------

    def execute(self, command: str, timeout: float = DEFAULT_TIMEOUT) -> Result:
        """Run a bash script as root in the guest; exit status 124 or 137 means it hit ``timeout``."""
        if self._sock is None:
            raise RuntimeError("not connected to the guest backdoor")
        marker = uuid.uuid4().hex
        self._sock.sendall(self._frame(marker, timeout, command))
        deadline = time.monotonic() + timeout + HOST_GRACE
        prefix = marker.encode() + b":"
        while True:
            line = self._read_line(deadline, f"no answer to {command!r} within {timeout + HOST_GRACE:.0f}s")
            if line.startswith(prefix):
                status, out, err = line[len(prefix) :].split(b":")
                return Result(
                    int(status),
                    base64.b64decode(out).decode(errors="replace"),
                    base64.b64decode(err).decode(errors="replace"),
                )

    def succeed(self, command: str, timeout: float = DEFAULT_TIMEOUT) -> str:
        """Run ``command``; return its stdout, raise :class:`CommandFailed` on a non-zero exit."""
        result = self.execute(command, timeout)
        if result.status != 0:
            raise CommandFailed(command, result, "command failed")
        return result.stdout

    def fail(self, command: str, timeout: float = DEFAULT_TIMEOUT) -> str:
        """Run ``command``; return stdout and stderr, raise :class:`CommandFailed` if it succeeded."""
        result = self.execute(command, timeout)
        if result.status == 0:
            raise CommandFailed(command, result, "command unexpectedly succeeded")
        return result.stdout + result.stderr

    def wait_until_succeeds(self, command: str, timeout: float = DEFAULT_TIMEOUT) -> str:
        """Retry ``command`` once a second until it succeeds; raise with its last output at the deadline."""
        deadline = time.monotonic() + timeout
        while True:
            result = self.execute(command, max(5.0, deadline - time.monotonic()))
            if result.status == 0:
                return result.stdout
            if time.monotonic() >= deadline:
                raise CommandFailed(command, result, f"still failing after {timeout:.0f}s")
            time.sleep(1)

    def wait_for_unit(self, unit: str, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Wait until systemd reports ``unit`` active; fail at once if it failed."""
        deadline = time.monotonic() + timeout
        query = f"systemctl show --property=ActiveState --value {shlex.quote(unit)}"
        while True:
            state = self.succeed(query, 30).strip()
            if state == "active":
                return
            if state == "failed":
                status = self.execute(f"systemctl status --no-pager {shlex.quote(unit)}", 30)
                raise AssertionError(f"unit {unit} failed:\n{status.stdout}")
            if time.monotonic() >= deadline:
                raise TimeoutError(f"unit {unit} still {state!r} after {timeout:.0f}s")
            time.sleep(1)

    def write_file(self, path: str, content: str, mode: int = 0o644) -> None:
        """Create or replace a (small) file in the guest, parent directories included."""
        data = base64.b64encode(content.encode()).decode()
        target = shlex.quote(path)
        self.succeed(f'mkdir -p "$(dirname {target})" && echo {data} | base64 -d > {target} && chmod {mode:o} {target}')

    def copy_from_vm(self, path: str, target_dir: Path | None = None) -> Path:
        """Copy a guest file or directory to the host (through the 9p exchange share); return the host path."""
        token = uuid.uuid4().hex
        self.succeed(
            "mountpoint -q /mnt/xchg || { echo 'the wsxchg share is not mounted on /mnt/xchg' >&2; exit 1; }\n"
            f"mkdir /mnt/xchg/{token} && cp -a {shlex.quote(path)} /mnt/xchg/{token}/"
        )
        copied = self.qemu.xchg / token / Path(path).name
        target = (target_dir or self.qemu.workdir / "from-vm") / Path(path).name
        target.parent.mkdir(parents=True, exist_ok=True)
        copied.rename(target)
        (self.qemu.xchg / token).rmdir()
        return target

    # --- diagnostics ---------------------------------------------------------------------------------

    def console_log(self, last_lines: int | None = None) -> str:
        """The serial console so far (kernel and systemd messages), terminal control sequences removed."""
        text = self.qemu.console_log.read_text(errors="replace") if self.qemu.console_log.exists() else ""
        lines = [line for line in TERMINAL_CONTROL.sub("", text).splitlines() if line.strip()]
        return "\n".join(lines[-last_lines:] if last_lines else lines)

    def journal(self, last_lines: int = 400) -> str:
        """The guest's journal of this boot (best effort: needs the backdoor to still answer)."""
        try:
            return self.execute(f"journalctl -b --no-pager -o short-monotonic -n {last_lines}", 60).stdout
        except Exception as error:  # the guest may be the thing that broke
            return f"(journal unavailable: {error})"

    # --- internals ----------------------------------------------------------------------------------

    @staticmethod
    def _frame(marker: str, timeout: float, command: str) -> bytes:
        script = base64.b64encode(command.encode()).decode()
        return f"{marker} {max(1, int(timeout))} {script}\n".encode()

    def _read_line(self, deadline: float, what: str) -> bytes:
        while b"\n" not in self._buffer:
            self._receive(deadline, what)
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line.strip(b"\r")

    def _receive(self, deadline: float, what: str) -> None:
        assert self._sock is not None
        self._check_alive()
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"{what} (console log: {self.qemu.console_log})")
        self._sock.settimeout(min(1.0, remaining))
        try:
            chunk = self._sock.recv(65536)
        except TimeoutError:
            return
        if not chunk:
            raise ConnectionError(f"qemu closed the backdoor socket; {what}")
        self._buffer += chunk

    def _check_alive(self) -> None:
        status = self.qemu.process.poll()
        if status is not None:
            errors = (self.qemu.workdir / "qemu.err").read_text(errors="replace")
            raise RuntimeError(f"qemu exited with status {status}: {errors.strip()}")

    @staticmethod
    def _sleep_until(deadline: float, what: str) -> None:
        if time.monotonic() >= deadline:
            raise TimeoutError(what)
        time.sleep(0.2)
