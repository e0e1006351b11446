"""microVM workspaces: ws up against the raw qemu boot of the same kernel, initrd and disk; memory at idle.

1. ``ws up bench`` from absent until it returns (sshd answers), against the raw qemu command line ws recorded
   (same kernel, boot initrd with the provisioning, a fresh overlay over the same base, same TAP, same
   accelerator), started directly until sshd sends its banner. The base is built and KVM probed before the
   first timed run (a ``ws up`` killed once qemu runs), so both sides boot from a ready base.
2. qemu's resident memory (VmRSS) once the guest has idled, split by mapping (guest RAM, TCG's translation
   cache, mapped files, the rest), against the configured memory and against what the guest itself uses:
   configured - MemFree from the guest's /proc/meminfo (MemTotal leaves out what the guest's kernel reserved
   at boot, its own code and page structures, which the guest did touch).

Goals: ws up <= 1.15x the raw boot; qemu's RSS at most 10% over the guest's own use. Under TCG (hosts where
KVM does not work) a boot takes minutes and the figures are dominated by emulation; the ratio still holds.
Needs root; uses ws's cached image (``--images``, default the test cache) and its own state dir, bridge and
10.217.X.0/24 subnet, removed at the end.

    sudo .venv/bin/python benchmarks/microvm_up.py [--runs 1] [--memory 1024] [--idle 30]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

WS = str(Path(sys.executable).with_name("ws"))
NAME = "bench"


class Bench:
    def __init__(self, images: Path, memory_mib: int):
        token = secrets.token_hex(2)
        self.root = Path(f"/var/tmp/wsm-bench-{token}")
        self.root.mkdir()
        (self.root / "images").symlink_to(images)
        self.key = self.root / "id_user"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.key)], check=True)
        routes = subprocess.run(["ip", "-4", "route"], capture_output=True, text=True).stdout
        self.prefix = f"10.217.{next(n for n in range(200, 250) if f'10.217.{n}.' not in routes)}"
        self.memory_mib = memory_mib
        lines = [
            f'state_dir = "{self.root}"', "[user]", 'name = "wsbench"', "uid = 1235", "gid = 1235",
            f'authorized_keys = ["{self.key.with_suffix(".pub").read_text().strip()}"]',
            "[network]", f'bridge = "wsmb{token}"', f'subnet = "{self.prefix}.0/24"', "[nix]", "inherit_host = false",
            "[microvm]", "ready_timeout = 1200.0", "stop_timeout = 30.0",
            f"[workspaces.{NAME}]", 'type = "vm"', f"memory = {memory_mib}",
        ]  # fmt: skip
        (self.root / "ws.toml").write_text("\n".join(lines) + "\n")
        self.env = {**os.environ, "WS_CONFIG": str(self.root / "ws.toml"), "WS_PLUGINS": "microvm"}
        self.ip = ""
        self.record_accel = "?"

    def ws(self, *args: str) -> None:
        subprocess.run([WS, *args], check=True, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def timed_ws(self, *args: str) -> float:
        start = time.perf_counter()
        self.ws(*args)
        return time.perf_counter() - start

    @property
    def boot(self) -> Path:
        return self.root / "microvm" / NAME

    def record(self) -> dict:
        return json.loads((self.boot / "record.json").read_text())

    def guest_meminfo_kib(self) -> dict[str, int]:
        options = ["StrictHostKeyChecking=no", "UserKnownHostsFile=/dev/null", "BatchMode=yes"]
        argv = ["ssh", "-F", "/dev/null", "-i", str(self.key), *(f"-o{option}" for option in options)]
        argv += [f"wsbench@{self.ip}", "cat /proc/meminfo"]
        meminfo = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=120).stdout
        return {line.split(":")[0]: int(line.split()[1]) for line in meminfo.splitlines()}

    def cleanup(self) -> None:
        subprocess.run([WS, "destroy", NAME, "--purge", "--yes"], env=self.env, capture_output=True)
        subprocess.run([WS, "network", "down"], env=self.env, capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise SystemExit(f"no VmRSS for pid {pid}")


def rss_parts_kib(pid: int, memory_mib: int) -> dict[str, int]:
    """qemu's resident memory by mapping (/proc/PID/smaps): the guest's RAM (the one mapping of the configured
    size), TCG's translation cache (the executable anonymous mappings), files (qemu, its libraries, the
    mapped initrd) and the rest (qemu's heap and stacks)."""
    parts = {"guest RAM": 0, "TCG translation cache": 0, "mapped files": 0, "qemu heap and the rest": 0}
    kind = ""
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        fields = line.split()
        if "-" in fields[0] and len(fields) >= 5 and not fields[0].endswith(":"):
            low, high = (int(bound, 16) for bound in fields[0].split("-"))
            name = fields[5] if len(fields) > 5 else ""
            if high - low == memory_mib * 1024 * 1024 and "x" not in fields[1]:
                kind = "guest RAM"
            elif "x" in fields[1] and not name:
                kind = "TCG translation cache"
            elif name.startswith("/") and not name.startswith("/memfd:"):
                kind = "mapped files"
            else:
                kind = "qemu heap and the rest"
        elif fields[0] == "Rss:":
            parts[kind] += int(fields[1])
    return parts


def wait_banner(ip: str, process: subprocess.Popen, timeout: float = 1200) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"raw qemu exited with {process.returncode}")
        try:
            with socket.create_connection((ip, 22), timeout=1) as connection:
                connection.settimeout(1)
                if connection.recv(4).startswith(b"SSH-"):
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"raw qemu: no sshd on {ip} within {timeout} s")


def raw_boot(bench: Bench) -> float:
    """ws's recorded command line, run directly on a fresh overlay of the same base (ws's qemu stopped)."""
    from ws.supervise import supervisor_for

    record = bench.record()
    bench.record_accel = record["accel"].upper()
    supervisor_for(bench.root).stop(f"ws-microvm-{NAME}", 5)
    overlay = bench.boot / "overlay.qcow2"
    overlay.unlink()
    subprocess.run(
        ["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", record["base"], str(overlay)], check=True
    )
    start = time.perf_counter()
    process = subprocess.Popen(record["argv"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    try:
        wait_banner(bench.ip, process)
        return time.perf_counter() - start
    finally:
        process.kill()
        process.wait()


def warm_up(bench: Bench) -> None:
    """Build the base and probe KVM without paying for a whole boot: ``ws up`` until qemu runs, then killed."""
    from ws.supervise import supervisor_for

    process = subprocess.Popen([WS, "up", NAME], env=bench.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    supervisor = supervisor_for(bench.root)
    while process.poll() is None and not supervisor.status(f"ws-microvm-{NAME}").running:
        time.sleep(0.5)
    process.kill()
    process.wait()
    bench.ws("down", NAME)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1, help="boots of each kind (each takes minutes under TCG)")
    parser.add_argument("--memory", type=int, default=1024, help="guest memory in MiB")
    parser.add_argument("--idle", type=float, default=30.0, help="seconds the guest idles before RSS is read")
    parser.add_argument("--images", type=Path, default=Path("/var/tmp/ws-test-state/images"))
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("run as root (it creates a bridge, a TAP and VMs)", file=sys.stderr)
        return 2
    bench = Bench(args.images, args.memory)
    try:
        from ws.supervise import supervisor_for

        warm_up(bench)
        shown = subprocess.run([WS, "config", "show", "--json"], env=bench.env, capture_output=True, check=True)
        bench.ip = json.loads(shown.stdout)["workspaces"][NAME]["ip"]
        bench.ws("down", NAME)
        ws_times, raw_times, rss, meminfo, parts = [], [], [], [], []
        for run in range(args.runs):
            subprocess.run(["sync"], check=True)
            ws_times.append(bench.timed_ws("up", NAME))
            time.sleep(args.idle)
            pid = supervisor_for(bench.root).status(f"ws-microvm-{NAME}").pid
            rss.append(rss_kib(pid))
            parts.append(rss_parts_kib(pid, args.memory))
            meminfo.append(bench.guest_meminfo_kib())
            raw_times.append(raw_boot(bench))
            bench.ws("down", NAME)
            print(f"  run {run + 1}: ws up {ws_times[-1]:.1f} s, raw qemu {raw_times[-1]:.1f} s", file=sys.stderr)
        accel = bench.record_accel
        raw, ws_up = statistics.median(raw_times), statistics.median(ws_times)
        print(f"ws up to ssh-ready against the raw qemu boot of the same kernel, initrd and disk under {accel}")
        print(f"(median of {args.runs}):")
        print(f"  raw qemu until sshd answers   {raw:7.1f} s")
        print(f"  ws up (absent -> ssh-ready)   {ws_up:7.1f} s   ratio {ws_up / raw:.2f}x (goal <= 1.15)")
        rss_mib = statistics.median(rss) / 1024
        free_mib = statistics.median(info["MemFree"] for info in meminfo) / 1024
        total_mib = statistics.median(info["MemTotal"] for info in meminfo) / 1024
        used_mib = args.memory - free_mib
        print(f"qemu memory after {args.idle:.0f} s idle:")
        print(f"  configured guest memory       {args.memory:7.0f} MiB")
        reserved = args.memory - total_mib
        print(
            f"  guest's own use               {used_mib:7.0f} MiB  (configured - MemFree, with the {reserved:.0f} MiB"
        )
        print(f"      its kernel reserved at boot; MemTotal - MemFree alone: {total_mib - free_mib:.0f} MiB)")
        print(f"  qemu resident (VmRSS)         {rss_mib:7.0f} MiB  {rss_mib / args.memory:.2f}x configured, "
              f"{rss_mib / used_mib:.2f}x the guest's use (goal <= 1.10)")  # fmt: skip
        for part in parts[0]:
            print(f"    {part:28s}{statistics.median(p[part] for p in parts) / 1024:7.0f} MiB")
    finally:
        bench.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
