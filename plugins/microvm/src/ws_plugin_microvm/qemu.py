"""Everything qemu-specific: the command line, the machine choice, QMP and the version.

Machine: qemu's ``microvm`` (no PCI, no firmware tables beyond a small ACPI set, virtio-mmio devices) when
the guest kernel has virtio-mmio and ACPI to find them, else ``q35`` with virtio-pci. Debian's kernel has
both (``CONFIG_VIRTIO_MMIO=m`` in its initrd, ``CONFIG_ACPI=y``), so ws's image boots as a microvm.

Memory: under TCG the translation cache is capped (``tb-size``, qemu's default 1 GiB fills up and stays
resident); guest RAM is resident only where the guest touched it, and the balloon's free page reporting
hands free blocks back.

Security: qemu starts as root only to open its devices (TAP, vhost, disk, console, control socket), then
switches to the login user's ids (``-runas``) and runs under a seccomp sandbox that forbids spawning
processes. Folders are shared over 9p with ``security_model=mapped-xattr``: files
the guest creates are owned by the login user on the host with mode 0600/0700, and the owner and mode the
guest asked for (root, setuid) live only in ``user.virtfs.*`` extended attributes, so a hostile guest root
cannot leave a setuid-root (or any setuid) program on the host.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import subprocess
from pathlib import Path

from ws_plugin_microvm.hypervisor import VmSpec

QMP_TIMEOUT = 5.0
SANDBOX = "on,obsolete=deny,spawn=deny,resourcecontrol=deny"
"""seccomp: no spawning processes, no obsolete or resource-control system calls. ``elevateprivileges`` stays
allowed because qemu installs the filter before it calls setgid/setuid for ``-runas`` (``deny`` and
``children`` kill it there); once it runs as the login user it cannot become root again."""


class Qemu:
    name = "qemu"

    def __init__(self, program: str = "qemu-system-x86_64"):
        self.program = program

    def command(self, spec: VmSpec) -> list[str]:
        bus = "device" if spec.machine == "microvm" else "pci"
        if spec.machine == "microvm":
            machine = ["-machine", "microvm,acpi=on,pcie=off,rtc=on,isa-serial=on"]
        else:
            machine = ["-machine", "q35"]
        if spec.accel == "kvm":
            accel = ["-accel", "kvm", "-cpu", "host"]
        else:
            accel = ["-accel", f"tcg,tb-size={spec.tcg_cache_mib}", "-cpu", "max"]
        uid, gid = spec.run_as
        vhost = "on" if spec.vhost_net else "off"
        argv = [
            self.program, "-name", f"ws-{spec.name}", *machine, *accel,
            "-smp", str(spec.cpus), "-m", str(spec.memory_mib),
            "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
            "-kernel", str(spec.kernel), "-initrd", str(spec.initrd), "-append", spec.cmdline,
            # the overlay is deleted when the VM stops, so flushes to it buy nothing
            "-drive", f"file={spec.disk},if=none,id=root,format=qcow2,cache=unsafe,discard=unmap",
            "-device", f"virtio-blk-{bus},drive=root",
            "-netdev", f"tap,id=net0,ifname={spec.tap},script=no,downscript=no,vhost={vhost}",
            "-device", f"virtio-net-{bus},netdev=net0,mac={spec.mac}",
            "-object", "rng-random,id=rng0,filename=/dev/urandom", "-device", f"virtio-rng-{bus},rng=rng0",
            # free page reporting: free 2 MiB blocks of the guest go back to the host (docs/backends/microvm.md)
            "-device", f"virtio-balloon-{bus},free-page-reporting=on,deflate-on-oom=on",
            "-chardev", f"file,id=console,path={spec.console_log}", "-serial", "chardev:console",
            "-qmp", f"unix:{spec.control_socket},server=on,wait=off",
        ]  # fmt: skip
        for index, share in enumerate(spec.shares):
            readonly = ",readonly=on" if share.read_only else ""
            argv += [
                "-fsdev", f"local,id=fs{index},path={share.host_path},security_model=mapped-xattr{readonly}",
                "-device", f"virtio-9p-{bus},fsdev=fs{index},mount_tag={share.tag}",
            ]  # fmt: skip
        if spec.cid is not None:
            argv += ["-device", f"vhost-vsock-{bus},guest-cid={spec.cid}"]
        argv += ["-runas", f"{uid}:{gid}", "-sandbox", SANDBOX]
        return argv

    def power_button(self, control_socket: Path) -> bool:
        return qmp(control_socket, "system_powerdown") is not None

    def run_state(self, control_socket: Path) -> str | None:
        answer = qmp(control_socket, "query-status")
        return answer.get("status") if isinstance(answer, dict) else None

    def version(self) -> str | None:
        """``7.2.22`` or None when qemu does not run."""
        try:
            out = subprocess.run([self.program, "--version"], capture_output=True, text=True, timeout=10).stdout
        except (OSError, subprocess.TimeoutExpired):
            return None
        match = re.search(r"version (\d+\.\d+(?:\.\d+)?)", out)
        return match.group(1) if match else None


def supports_microvm(kernel_config: str) -> bool:
    """Whether a kernel with this ``/boot/config-*`` finds the microvm machine's devices: virtio-mmio
    (built in or a module its initrd loads) enumerated through ACPI."""
    options = dict(re.findall(r"^(CONFIG_[A-Z0-9_]+)=(\S+)$", kernel_config, re.MULTILINE))
    return options.get("CONFIG_ACPI") == "y" and options.get("CONFIG_VIRTIO_MMIO") in ("y", "m")


def qmp(control_socket: Path, command: str) -> object | None:
    """Run one QMP command; its ``return`` value, or None when qemu does not answer (gone, or not yet up)."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
            connection.settimeout(QMP_TIMEOUT)
            connection.connect(str(control_socket))
            stream = connection.makefile("rwb")
            _read_reply(stream)  # the greeting
            for execute in ("qmp_capabilities", command):
                stream.write(json.dumps({"execute": execute}).encode() + b"\n")
                stream.flush()
                reply = _read_reply(stream)
            return reply.get("return") if reply is not None else None
    except OSError:
        return None


def _read_reply(stream) -> dict | None:
    """The next line that is not an asynchronous event."""
    while line := stream.readline():
        with contextlib.suppress(ValueError):
            message = json.loads(line)
            if "event" not in message:
                return message
    return None
