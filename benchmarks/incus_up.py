"""Incus workspaces: re-creating one running workspace, and eight brought up at once.

1. ``ws up --recreate NAME`` against the original's sequence done with the incus CLI (stop --force,
   delete --force, init, four ``config device add``, start, poll ``incus list`` until RUNNING), on the same
   daemon, same image, same bridge, runs interleaved. Both are measured to the same point: the new instance
   is RUNNING (seen by a poller on the daemon's socket), and both start from the same idle state: no
   operation running on the daemon and the previous run's data written back (see ``wait_idle``), so ws's
   background work (the next instance made ahead of time, the old one deleted) does not spill into the
   next run. ws's time until it returns (systemd at its default target, sshd accepting connections) is
   reported separately: the original had no such wait.
2. ``ws up`` of eight workspaces in one command (in parallel) against the same eight brought up one after
   another (``ws up NAME`` eight times), each time until every one is usable; ``ws down`` in between.

Prints both ratios with the goals (<= 0.8 and >= 1.5x). Needs root and a running incusd
(scripts/start-incusd); uses ws's cached image (``--images``, default the test cache, so nothing is built)
and its own state dir, bridge and 10.213.X.0/24 subnet, all removed at the end.

    sudo .venv/bin/python benchmarks/incus_up.py [--runs 5] [--skip-parallel]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

WS = str(Path(sys.executable).with_name("ws"))
SOCKET = "/var/lib/incus/unix.socket"
ORIGINAL = """#!/bin/sh
# The original module's start sequence, with the incus CLI.
set -e
I="$1"; IMAGE="$2"; BRIDGE="$3"; MAC="$4"; WORK="$5"; KEYS="$6"; AGENT="$7"
incus stop --force "$I" 2>/dev/null || true
incus delete --force "$I" 2>/dev/null || true
incus init "$IMAGE" "$I" -c security.idmap.isolated=true -c security.privileged=false >/dev/null
incus config device add "$I" eth0 nic nictype=bridged parent="$BRIDGE" hwaddr="$MAC" name=eth0 >/dev/null
incus config device add "$I" workspace disk source="$WORK" path=/home/dev/workspace shift=true >/dev/null
incus config device add "$I" hostkeys disk source="$KEYS" path=/etc/ssh-host-keys readonly=true shift=true >/dev/null
incus config device add "$I" agent disk source="$AGENT" path=/home/dev/.claude shift=true >/dev/null
incus start "$I"
i=0
until incus list "$I" -c s -f csv | grep -q RUNNING; do
    i=$((i + 1)); [ "$i" -lt 300 ] || exit 1; sleep 0.1
done
"""


class _UnixHTTP(http.client.HTTPConnection):
    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(SOCKET)


def instance(name: str) -> dict | None:
    connection = _UnixHTTP("localhost")
    try:
        connection.request("GET", f"/1.0/instances/{name}")
        response = connection.getresponse()
        body = json.loads(response.read())
    finally:
        connection.close()
    return None if response.status == 404 else body["metadata"]


def wait_idle(timeout: float = 120) -> None:
    """Start each measurement, ws's or the CLI's, from the same idle state: no operation running on the
    daemon (ws's instance made ahead of time and its deleted old one are finished) and no file data of the
    previous run left to write back (``sync``). Without the flush, the data ws's background work just
    unpacked is written back during the next run's file pushes (Incus' ``forkfile`` calls ``syncfs`` after
    each), and the start, which waits for ``forkfile`` in steps of one second, loses a second; the kernel
    writes such data back by itself within 30 s, so only re-creations in quick succession pay it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        connection = _UnixHTTP("localhost")
        try:
            connection.request("GET", "/1.0/operations")
            running = json.loads(connection.getresponse().read())["metadata"].get("running") or []
        finally:
            connection.close()
        if not running:
            break
        time.sleep(0.1)
    os.sync()


def running_uuid(name: str) -> str | None:
    meta = instance(name)
    if meta is None or meta["status"] != "Running":
        return None
    return meta["config"].get("volatile.uuid")


def timed_until_new_running(argv: list[str], name: str, env: dict) -> tuple[float, float]:
    """(seconds until a new instance ``name`` is RUNNING, seconds until the command returned)."""
    wait_idle()
    old = running_uuid(name)
    seen: list[float] = []
    done = threading.Event()

    def poll() -> None:
        while not done.is_set():
            uuid = running_uuid(name)
            if uuid is not None and uuid != old:
                seen.append(time.perf_counter())
                return
            time.sleep(0.01)

    poller = threading.Thread(target=poll)
    start = time.perf_counter()
    poller.start()
    try:
        subprocess.run(argv, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    finally:
        end = time.perf_counter()
        done.set()
        poller.join()
    if not seen:
        raise SystemExit(f"{' '.join(argv)} finished without a new running instance {name}")
    return seen[0] - start, end - start


class Bench:
    def __init__(self, images: Path):
        token = secrets.token_hex(2)
        self.root = Path(f"/var/tmp/wsi-bench-{token}")
        self.root.mkdir()
        (self.root / "images").symlink_to(images)
        self.names = ["bench", *(f"b{i}" for i in range(1, 9))]
        routes = subprocess.run(["ip", "-4", "route"], capture_output=True, text=True).stdout
        octet = next(n for n in range(200, 250) if f"10.213.{n}." not in routes)
        lines = [f'state_dir = "{self.root}"', "[network]", f'bridge = "wsb{token}"', f'subnet = "10.213.{octet}.0/24"',
                 "[nix]", "inherit_host = false"]  # fmt: skip
        for name in self.names:
            lines += [f"[workspaces.{name}]", 'type = "incus"']
        (self.root / "ws.toml").write_text("\n".join(lines) + "\n")
        self.env = {**os.environ, "WS_CONFIG": str(self.root / "ws.toml"), "WS_PLUGINS": "incus"}
        self.original = self.root / "original.sh"
        self.original.write_text(ORIGINAL)
        self.original.chmod(0o755)

    def ws(self, *args: str) -> None:
        subprocess.run([WS, *args], check=True, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def config(self) -> dict:
        out = subprocess.run([WS, "config", "show", "--json"], check=True, env=self.env, capture_output=True)
        return json.loads(out.stdout)

    def cleanup(self) -> None:
        subprocess.run(["incus", "delete", "--force", "wsbench-original"], capture_output=True)
        for name in self.names:
            subprocess.run([WS, "destroy", name], env=self.env, capture_output=True)
        subprocess.run([WS, "network", "down"], env=self.env, capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)


def recreate(bench: Bench, runs: int) -> tuple[float, float, float]:
    bench.ws("up", "bench")  # imports the image, brings the network up, creates the host folders
    config = bench.config()
    workspace = config["workspaces"]["bench"]
    image = next(i for i in json.loads(subprocess.run(["incus", "list", "workspace-bench", "-f", "json"],
                 capture_output=True, check=True).stdout))["config"]["user.ws.image"]  # fmt: skip
    paths = workspace["paths"]
    original = [str(bench.original), "wsbench-original", image, config["network"]["bridge"], "02:00:00:0b:e0:01",
                paths["work"], paths["ssh_host_keys"], paths["agent"]]  # fmt: skip
    subprocess.run(original, check=True, capture_output=True)  # warm: both have a running instance to replace
    ws_running, ws_ready, orig = [], [], []
    for run in range(runs):
        o, _ = timed_until_new_running(original, "wsbench-original", bench.env)
        r, t = timed_until_new_running([WS, "up", "--recreate", "bench"], "workspace-bench", bench.env)
        orig.append(o)
        ws_running.append(r)
        ws_ready.append(t)
        print(f"  run {run + 1}: original {o:.2f} s, ws to RUNNING {r:.2f} s (ssh-ready {t:.2f} s)", file=sys.stderr)
    return statistics.median(orig), statistics.median(ws_running), statistics.median(ws_ready)


def parallel(bench: Bench) -> tuple[float, float]:
    eight = [f"b{i}" for i in range(1, 9)]
    wait_idle()
    start = time.perf_counter()
    for name in eight:
        bench.ws("up", name)
    sequential = time.perf_counter() - start
    bench.ws("down", *eight)
    wait_idle()
    start = time.perf_counter()
    bench.ws("up", *eight)
    concurrent = time.perf_counter() - start
    bench.ws("down", *eight)
    return sequential, concurrent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--images", type=Path, default=Path("/var/tmp/ws-test-state/images"))
    parser.add_argument("--skip-parallel", action="store_true")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("run as root (it creates a bridge and Incus instances)", file=sys.stderr)
        return 2
    args.images.mkdir(parents=True, exist_ok=True)
    bench = Bench(args.images)
    try:
        orig, ws_running, ws_ready = recreate(bench, args.runs)
        print(f"re-create one running workspace (median of {args.runs}):")
        print(f"  original sequence (incus CLI) to RUNNING  {orig:6.2f} s")
        ratio = ws_running / orig
        print(f"  ws up --recreate to RUNNING               {ws_running:6.2f} s   ratio {ratio:.2f}x (goal <= 0.8)")
        print(f"  ws up --recreate until ssh-ready          {ws_ready:6.2f} s")
        if not args.skip_parallel:
            sequential, concurrent = parallel(bench)
            print("eight workspaces until usable:")
            print(f"  one after another  {sequential:6.2f} s")
            print(f"  at once            {concurrent:6.2f} s   speed-up {sequential / concurrent:.2f}x (goal >= 1.5)")
    finally:
        bench.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
