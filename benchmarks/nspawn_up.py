"""nspawn workspaces: ws up against a raw systemd-nspawn boot, re-creation, eight at once, disk of eight.

1. ``ws up NAME`` from absent until it returns (sshd answers) against the raw ``systemd-nspawn --boot`` of the
   same tree with the same bridge, options and binds (the command line ws recorded, started directly), until
   sshd sends its banner (seen by ws's own check); runs interleaved. Each raw boot gets a fresh tree, prepared
   by ws's steps and not timed (preparing it is ws's own cost), so it is a first boot like ws's.
2. ``ws up --recreate NAME`` of a running workspace.
3. ``ws up`` of eight workspaces in one command against the same eight one after another.
4. Disk used under ``<state_dir>/nspawn`` (base plus overlay upper directories) with eight running against one.

Goals: ws up <= 1.2x the raw boot; eight at once >= 1.5x faster; eight workspaces <= 1.3x the disk of one.

Where ws up's time beyond the raw boot goes: each timed ``ws up`` is split at nspawn's start (its start time in
/proc, 10 ms resolution) into ws's work before it and the boot until ``ws up`` returns. Against that stand the
budget the 1.2x goal leaves ws (a fifth of the raw boot) and two fixed costs measured in the same run: ``ws
--version`` (the interpreter and ws's command line, nothing else) and an interpreter that only imports the
libraries ws's command line, plugins and configuration are built on (click, pluggy, pydantic's BaseModel).
``--compare OTHER_WS`` times another checkout's ``ws up`` (main's, for "before") in the same runs as 1., taking
turns with this one, against the same raw boots: a loaded host moves both alike.
Needs root; uses ws's cached image (``--images``, default the test cache) and its own state dir, bridge and
10.216.X.0/24 subnet, removed at the end.

    sudo .venv/bin/python benchmarks/nspawn_up.py [--runs 7] [--ws /other/checkout/.venv/bin/ws]
        [--compare /main/checkout/.venv/bin/ws]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

WS = str(Path(sys.executable).with_name("ws"))
"""The ws timed (``--ws``: another checkout's, for before/after figures against the same baseline)."""


class Bench:
    def __init__(self, images: Path):
        token = secrets.token_hex(2)
        self.root = Path(f"/var/tmp/wsn-bench-{token}")
        self.root.mkdir()
        (self.root / "images").symlink_to(images)
        self.names = ["bench", *(f"b{i}" for i in range(1, 9))]
        routes = subprocess.run(["ip", "-4", "route"], capture_output=True, text=True).stdout
        self.prefix = f"10.216.{next(n for n in range(200, 250) if f'10.216.{n}.' not in routes)}"
        lines = [f'state_dir = "{self.root}"', "[network]", f'bridge = "wsnb{token}"', f'subnet = "{self.prefix}.0/24"',
                 "[nix]", "inherit_host = false"]  # fmt: skip
        for name in self.names:
            lines += [f"[workspaces.{name}]", 'type = "nspawn"']
        (self.root / "ws.toml").write_text("\n".join(lines) + "\n")
        os.environ.update(WS_CONFIG=str(self.root / "ws.toml"), WS_PLUGINS="nspawn")  # also for fresh_tree
        self.env = dict(os.environ)

    def ws(self, *args: str, program: str | None = None) -> None:
        argv = [program or WS, *args]
        subprocess.run(argv, check=True, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def timed_ws(self, *args: str, program: str | None = None) -> float:
        start = time.perf_counter()
        self.ws(*args, program=program)
        return time.perf_counter() - start

    def split_up(self, name: str, program: str) -> tuple[float, float]:
        """``ws up NAME`` from absent, split at nspawn's start: (ws's work before it, nspawn's start until
        ``ws up`` returns). Boot-time clock, as /proc's start times."""
        start = time.clock_gettime(time.CLOCK_BOOTTIME)
        self.ws("up", name, program=program)
        end = time.clock_gettime(time.CLOCK_BOOTTIME)
        out = subprocess.run([WS, "status", "--json", name], check=True, env=self.env, capture_output=True)
        nspawn = _started(json.loads(out.stdout)["extra"]["pid"])
        return nspawn - start, end - nspawn

    def ip(self, name: str) -> str:
        out = subprocess.run([WS, "config", "show", "--json"], check=True, env=self.env, capture_output=True)
        return json.loads(out.stdout)["workspaces"][name]["ip"]

    def record(self, name: str) -> dict:
        return json.loads((self.root / "nspawn" / "machines" / name / "record.json").read_text())

    def disk(self) -> int:
        """Bytes on disk of the bases and every boot's overlay layers (not ``lower/`` and ``root/``: mounted views
        of the same data, which du would count again)."""
        nspawn = self.root / "nspawn"
        paths = [nspawn / "bases", *nspawn.glob("machines/*/upper"), *nspawn.glob("machines/*/work")]
        out = subprocess.run(["du", "-scx", "--block-size=1", *map(str, paths)], capture_output=True, text=True)
        return int(out.stdout.splitlines()[-1].split()[0])

    def cleanup(self) -> None:
        for name in self.names:
            subprocess.run([WS, "destroy", name], env=self.env, capture_output=True)
        subprocess.run([WS, "network", "down"], env=self.env, capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)


def _started(pid: int) -> float:
    """A running process's start, in seconds of the boot-time clock."""
    from ws.supervise.procfs import start_ticks

    ticks = start_ticks(pid)
    if ticks is None:
        raise RuntimeError(f"nspawn (pid {pid}) is gone right after ws up returned")
    return ticks / os.sysconf("SC_CLK_TCK")


def fixed_costs(bench: Bench, runs: int) -> tuple[float, float]:
    """Medians of ``ws --version`` and of an interpreter importing click, pluggy and pydantic's BaseModel
    (this interpreter, so the same versions ws runs with)."""
    libraries = [sys.executable, "-c", "import click, pluggy; from pydantic import BaseModel"]
    cli, imports = [], []
    for _ in range(runs):
        cli.append(bench.timed_ws("--version"))
        start = time.perf_counter()
        subprocess.run(libraries, check=True)
        imports.append(time.perf_counter() - start)
    return statistics.median(cli), statistics.median(imports)


def fresh_tree(bench: Bench) -> list[str]:
    """Prepare the boot ``ws up bench`` would make (a new overlay with the provisioning bundle), untimed,
    through ws's own steps; the nspawn command line ws recorded for it.

    Every raw boot is a first boot like ws's: a tree booted before has its machine id and login user
    already, and its guest would skip work that ws's boot does.
    """
    from ws.cli.common import CliState
    from ws.images.prepare import prepare_image
    from ws.preparation import CreateRequest

    ctx = CliState().context()
    workspace = ctx.workspace("bench")
    attachment = ctx.network(workspace.network).attach(workspace)
    image = prepare_image(ctx.config.core, ctx.state.root, workspace, ctx.registry.workspace_type("nspawn"), print)
    ctx.backend(workspace).create(CreateRequest(attachment, image, ctx.provisioning(workspace, attachment)))
    return bench.record("bench")["argv"]


def raw_boot(bench: Bench, ip: str) -> float:
    """Boot a fresh tree with ws's own nspawn command line, directly, until sshd answers (ws's own check,
    :func:`ws.readiness.wait_for_ssh`, so both are seen ready the same way).

    In a cgroup of its own, as any two nspawn containers on a host without systemd must be (they would share
    the cgroup nspawn hands to the container otherwise); making it is not timed.
    """
    from ws.readiness import wait_for_ssh
    from ws.supervise import cgroups

    argv = fresh_tree(bench)
    own, _limits = cgroups.create("wsn-bench-raw")

    def enter_cgroup() -> None:
        for path in own:
            (path / "cgroup.procs").write_text("0")

    start = time.perf_counter()
    process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True, preexec_fn=enter_cgroup)  # fmt: skip
    try:
        wait_for_ssh(ip, 120, alive=lambda: process.poll() is None)
    finally:
        elapsed = time.perf_counter() - start
        process.terminate()
        process.wait(timeout=60)
        for path in own:
            cgroups.kill(path)
            cgroups.remove(path)
    return elapsed


@dataclass
class UpTimes:
    raw: list[float] = field(default_factory=list)
    ws: list[float] = field(default_factory=list)
    before_nspawn: list[float] = field(default_factory=list)
    """This ws's part of each ``ws up`` until nspawn started."""
    after_nspawn: list[float] = field(default_factory=list)
    """Each ``ws up`` from nspawn's start until it returned."""
    compared: list[float] = field(default_factory=list)


def up_against_raw(bench: Bench, runs: int, compare: str | None) -> UpTimes:
    """Per run: a raw boot, then ``ws up`` (and the compared ws's, taking turns which goes first), each
    from absent."""
    ip = bench.ip("bench")
    bench.ws("up", "bench")  # unpacks the base, brings the network up
    times = UpTimes()
    for run in range(runs):
        bench.ws("down", "bench")
        raw = raw_boot(bench, ip)
        took = {}
        for program in (WS, compare)[:: 1 if run % 2 == 0 else -1]:
            if program is not None:
                bench.ws("down", "bench")  # removes the raw boot's tree, or the other ws's boot
                subprocess.run(["sync"], check=True)
                took[program] = bench.split_up("bench", program)
        before, after = took[WS]
        times.raw.append(raw)
        times.ws.append(before + after)
        times.before_nspawn.append(before)
        times.after_nspawn.append(after)
        line = f"  run {run + 1}: raw nspawn {raw:.2f} s, ws up {before + after:.2f} s ({before:.2f} s until nspawn)"
        if compare is not None:
            times.compared.append(sum(took[compare]))
            line += f", compared ws up {times.compared[-1]:.2f} s"
        print(line, file=sys.stderr)
    return times


def main() -> int:
    global WS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--images", type=Path, default=Path("/var/tmp/ws-test-state/images"))
    parser.add_argument("--ws", default=WS, help="the ws program to time (default: this venv's)")
    parser.add_argument("--compare", metavar="WS", help="another ws program timed in the same runs of ws up")
    args = parser.parse_args()
    WS = args.ws
    if os.geteuid() != 0:
        print("run as root (it creates a bridge and containers)", file=sys.stderr)
        return 2
    bench = Bench(args.images)
    try:
        times = up_against_raw(bench, args.runs, args.compare)
        cli, libraries = fixed_costs(bench, args.runs)
        recreate = [bench.timed_ws("up", "--recreate", "bench") for _ in range(args.runs)]
        one_disk = bench.disk()
        bench.ws("down", "bench")
        eight = [f"b{i}" for i in range(1, 9)]
        sequential = sum(bench.timed_ws("up", name) for name in eight)
        bench.ws("down", *eight)
        subprocess.run(["sync"], check=True)
        concurrent = bench.timed_ws("up", *eight)
        eight_disk = bench.disk()
        bench.ws("down", *eight)

        raw, ws_up = statistics.median(times.raw), statistics.median(times.ws)
        print(f"ws up to ssh-ready against the raw nspawn boot of the same tree (median of {args.runs}):")
        print(f"  raw systemd-nspawn --boot until sshd answers  {raw:6.2f} s")
        print(
            f"  ws up (absent -> ssh-ready)                   {ws_up:6.2f} s   ratio {ws_up / raw:.2f}x (goal <= 1.2)"
        )
        print(f"    until nspawn starts                         {statistics.median(times.before_nspawn):6.2f} s")
        print(f"    nspawn's start until ws up returns          {statistics.median(times.after_nspawn):6.2f} s")
        print(f"  what the goal leaves ws (a fifth of raw)      {raw / 5:6.2f} s")
        print(f"  ws --version (interpreter and command line)   {cli:6.2f} s")
        print(f"  importing click, pluggy, pydantic.BaseModel   {libraries:6.2f} s")
        if times.compared:
            compared = statistics.median(times.compared)
            print(f"  compared ws up ({args.compare})")
            print(f"                                                {compared:6.2f} s   ratio {compared / raw:.2f}x")
        print(f"  ws up --recreate of a running workspace       {statistics.median(recreate):6.2f} s")
        print("eight workspaces until usable:")
        print(f"  one after another  {sequential:6.2f} s")
        print(f"  at once            {concurrent:6.2f} s   speed-up {sequential / concurrent:.2f}x (goal >= 1.5)")
        print("disk under <state>/nspawn (base + overlays):")
        print(f"  one running    {one_disk / 2**20:8.1f} MiB")
        print(f"  eight running  {eight_disk / 2**20:8.1f} MiB   ratio {eight_disk / one_disk:.2f}x (goal <= 1.3)")
    finally:
        bench.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
