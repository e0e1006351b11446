"""CLI start-up: `ws --help`, `ws list`, `ws status NAME` and shell completion of a workspace name against
`python -c "import click"`, measured in the same run.

The configuration declares 20 Incus workspaces (none exists, unless the daemon has instances of these
names): `ws list` asks the daemon about all of them. Runs are interleaved (baseline, ws --help, ws list,
..., baseline, ...) so machine load hits all alike, and the minimum of each is compared: the minimum is the
cost without interference. Goals: ws --help <= 1.5x, ws list and ws status <= 2.0x, completion <= 1.5x, in
wall-clock time; CPU time is printed too, as it is less disturbed by a loaded machine.
The first runs (not measured) write ws's entry-point cache, the configuration snapshot and the modules'
bytecode (PYTHONDONTWRITEBYTECODE is dropped: an installed ws has its .pyc files), as earlier commands would.

On a loaded machine, ``--instructions`` also counts each command's instructions once under valgrind's
callgrind (deterministic, independent of load; the daemon's answer time is not in it).

    .venv/bin/python benchmarks/cli_startup.py [--runs 30] [--workspaces 20] [--instructions]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from report import print_ratio_table

BASELINE = 'python -c "import click"'
GOALS = {"ws --help": 1.5, "ws list": 2.0, "ws status NAME": 2.0, "completion of NAME": 1.5}


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall-clock and CPU (user + system) seconds of one run."""
    start = time.perf_counter()
    process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _pid, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(argv)} failed")
    return elapsed, usage.ru_utime + usage.ru_stime


def instructions(argv: list[str], env: dict[str, str]) -> int:
    """Instructions executed by one run, as counted by callgrind (a script through its interpreter)."""
    if argv[0] != sys.executable:
        argv = [sys.executable, *argv]
    command = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *argv]
    result = subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=True)
    return int(re.search(r"Collected : (\d+)", result.stderr).group(1))


def write_config(folder: Path, count: int) -> Path:
    config = folder / "ws.toml"
    lines = [f'state_dir = "{folder}/state"']
    for number in range(count):
        lines += [f"[workspaces.bench{number:02d}]", 'type = "incus"']
    config.write_text("\n".join(lines) + "\n")
    return config


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--workspaces", type=int, default=20)
    parser.add_argument("--instructions", action="store_true", help="also count instructions (valgrind)")
    args = parser.parse_args()
    ws = str(Path(sys.executable).parent / "ws")
    with tempfile.TemporaryDirectory() as tmp:
        config = write_config(Path(tmp), args.workspaces)
        inherited = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}  # installed: .pyc
        env = {**inherited, "WS_CONFIG": str(config), "WS_CACHE_DIR": f"{tmp}/cache", "WS_PLUGINS": "incus"}
        completion = {**env, "_WS_COMPLETE": "bash_complete", "COMP_WORDS": "ws status bench1", "COMP_CWORD": "2"}
        commands = {
            BASELINE: ([sys.executable, "-c", "import click"], env),
            "ws --help": ([ws, "--help"], env),
            "ws list": ([ws, "list"], env),
            "ws status NAME": ([ws, "status", "bench07"], env),
            "completion of NAME": ([ws], completion),
        }
        for argv, environ in commands.values():  # warm the page cache and ws's caches
            timed(argv, environ)
        samples: dict[str, list[float]] = {label: [] for label in commands}
        cpu: dict[str, list[float]] = {label: [] for label in commands}
        for _ in range(args.runs):
            for label, (argv, environ) in commands.items():
                elapsed, used = timed(argv, environ)
                samples[label].append(elapsed)
                cpu[label].append(used)
        counted = (
            {label: instructions(argv, environ) for label, (argv, environ) in commands.items()}
            if args.instructions
            else {}
        )
    print("wall-clock time (the goals):")
    baseline = print_ratio_table(samples, BASELINE, width=28)
    print("CPU time (user + system; less disturbed by other load, but not the daemon's answer time):")
    print_ratio_table(cpu, BASELINE, width=28)
    if args.instructions:
        print("instructions (callgrind, millions):")
        for label, count in counted.items():
            print(f"{label:<28} {count / 1e6:8.1f} {count / counted[BASELINE]:10.2f}x")
    print(f"load average: {' '.join(f'{value:.2f}' for value in os.getloadavg())} on {os.cpu_count()} cores")
    for label, goal in GOALS.items():
        ratio = min(samples[label]) / baseline
        print(f"{label} / import click = {ratio:.2f}x (goal <= {goal}x): {'met' if ratio <= goal else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
