"""`ws network up` on a network that is already up (the no-op path every `ws up` takes), against the same
checks done by hand (`nft list table` + `ip link show`), in a throwaway network namespace, same run.

Runs are interleaved (baseline, no-op CLI, ...) so machine load hits all alike, and the minimum of each is
compared. Also times the in-process no-op `ensure_up` (what core's ws_network_attach pays), the cold `up`
and `down`. Needs root (it creates the namespace `wsb-<random>` and removes it at the end).

    sudo .venv/bin/python benchmarks/network_up.py [--runs 15]
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from report import print_ratio_table, ratio_row

WS = str(Path(sys.executable).with_name("ws"))
IN_PROCESS = """
import sys, time
from ws.config.model import NetworkConfig
from ws.network import sandbox
class Quiet:
    def debug(self, *a, **k): pass
    info = warning = debug
net, state, runs = NetworkConfig(dns_upstream=["203.0.113.1"]), sys.argv[1], int(sys.argv[2])
samples = []
for _ in range(runs):
    start = time.perf_counter()
    assert sandbox.ensure_up(net, __import__("pathlib").Path(state), Quiet()).already_up
    samples.append(time.perf_counter() - start)
print(min(samples), sorted(samples)[len(samples) // 2])
"""


def timed(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    ns = f"wsb-{secrets.token_hex(3)}"
    inside = ["ip", "netns", "exec", ns]
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        for command in (
            "link set lo up",
            "link add up0 type veth peer name up1",
            "link set up0 up",
            "link set up1 up",
            "addr add 203.0.113.2/24 dev up0",
            "route add default via 203.0.113.1",
        ):
            subprocess.run(["ip", "-n", ns, *command.split()], check=True)
        with tempfile.TemporaryDirectory() as tmp:
            config = Path(tmp) / "ws.toml"
            config.write_text(f'state_dir = "{tmp}/state"\n[network]\ndns_upstream = ["203.0.113.1"]\n')
            ws = [*inside, WS, "--config", str(config), "network"]
            cold = timed([*ws, "up"])
            commands = {
                "baseline: nft list table + ip link show": None,
                "ws network up (no-op, CLI)": [*ws, "up"],
                "python -c pass (in netns)": [*inside, sys.executable, "-c", "pass"],
            }
            baseline = [
                [*inside, "nft", "list", "table", "inet", "ws-sandbox-br"],
                [*inside, "ip", "link", "show", "sandbox-br"],
            ]
            samples: dict[str, list[float]] = {label: [] for label in commands}
            for _ in range(args.runs):
                for label, argv in commands.items():
                    samples[label].append(sum(timed(a) for a in baseline) if argv is None else timed(argv))
            fn_min, fn_median = map(
                float,
                subprocess.run(
                    [*inside, sys.executable, "-c", IN_PROCESS, f"{tmp}/state", str(args.runs * 10)],
                    capture_output=True, text=True, check=True,
                ).stdout.split(),
            )  # fmt: skip
            down = timed([*ws, "down"])
    finally:  # also ends ws's dnsmasq when a step above failed before `down`
        pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout.split()
        for pid in pids:
            os.kill(int(pid), signal.SIGKILL)
        subprocess.run(["ip", "netns", "del", ns], check=False)
    base = print_ratio_table(samples, "baseline: nft list table + ip link show", width=42)
    print(ratio_row("ensure_up no-op, in process", fn_min, fn_median, base, width=42))
    print(f"ws network up, cold (CLI): {cold * 1000:.0f} ms; ws network down (CLI): {down * 1000:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
