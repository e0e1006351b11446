"""CLI start-up: `ws --help` and `ws list` against `python -c "import click"`, measured in the same run.

Runs are interleaved (baseline, ws --help, ws list, baseline, ...) so machine load hits all alike, and the
minimum of each is compared: the minimum is the cost without interference. Goal: ws --help <= 1.5x.

    .venv/bin/python benchmarks/cli_startup.py [--runs 30]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from report import print_ratio_table

GOAL = 1.5


def timed(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    bindir = Path(sys.executable).parent
    ws = str(bindir / "ws")
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "ws.toml"
        config.write_text(f'state_dir = "{tmp}/state"\n')
        env = {**os.environ, "WS_CONFIG": str(config)}
        commands = {
            'python -c "import click"': [sys.executable, "-c", "import click"],
            "ws --help": [ws, "--help"],
            "ws list": [ws, "list"],
        }
        for argv in commands.values():  # warm the page cache and ws's entry-point cache
            timed(argv, env)
        samples: dict[str, list[float]] = {label: [] for label in commands}
        for _ in range(args.runs):
            for label, argv in commands.items():
                samples[label].append(timed(argv, env))
    baseline = print_ratio_table(samples, 'python -c "import click"', width=28)
    ratio = min(samples["ws --help"]) / baseline
    print(f"ws --help / import click = {ratio:.2f}x (goal <= {GOAL}x): {'met' if ratio <= GOAL else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
