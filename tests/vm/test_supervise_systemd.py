"""The systemd supervisor and ws.systemd against the test VM's real systemd (PID 1) and machined over D-Bus.

Each test writes a small Python script into the guest and runs it with the guest's ws (the code under test);
the script prints JSON the test checks, and systemctl/journalctl confirm what systemd itself says."""

from __future__ import annotations

import json
import textwrap

import pytest

pytestmark = pytest.mark.vm

PYTHON = "/opt/ws/bin/python3"


def run_python(vm, script: str, timeout: float = 120) -> dict:
    vm.write_file("/root/ws-check.py", textwrap.dedent(script), 0o644)
    return json.loads(vm.succeed(f"{PYTHON} /root/ws-check.py", timeout).strip().splitlines()[-1])


def test_a_transient_unit_with_limits_and_journal_output(vm) -> None:
    result = run_python(
        vm,
        """
        import json, time
        from pathlib import Path
        from ws.supervise import ServiceSpec, supervisor_for
        sup = supervisor_for(Path("/var/lib/ws-test"))
        spec = ServiceSpec(name="ws-test-sleeper", argv=["sh", "-c", "echo hello from the unit; exec sleep 300"],
                           log_file=Path("/unused"), cpus=0.5, memory_mib=64, environment={"GREETING": "hi"})
        pid = sup.start(spec)
        status = sup.status(spec.name)
        time.sleep(0.5)
        print(json.dumps({"kind": sup.kind, "pid": pid, "running": status.running, "status_pid": status.pid,
                          "started_at": status.started_at, "now": time.time(), "logs": sup.logs(spec.name)}))
        """,
    )
    try:
        assert result["kind"] == "systemd"
        assert result["running"] and result["status_pid"] == result["pid"]
        assert abs(result["now"] - result["started_at"]) < 30
        assert "hello from the unit" in result["logs"]
        shown = vm.succeed(
            "systemctl show ws-test-sleeper.service -p ActiveState -p MainPID -p MemoryMax -p CPUQuotaPerSecUSec "
            "-p Environment -p KillMode"
        )
        assert "ActiveState=active" in shown and f"MainPID={result['pid']}" in shown
        assert "MemoryMax=67108864" in shown and "CPUQuotaPerSecUSec=500ms" in shown
        assert "Environment=GREETING=hi" in shown and "KillMode=mixed" in shown
        assert "hello from the unit" in vm.succeed("journalctl -u ws-test-sleeper.service --no-pager -o cat")
    finally:
        stopped = run_python(
            vm,
            """
            import json
            from pathlib import Path
            from ws.supervise import supervisor_for
            sup = supervisor_for(Path("/var/lib/ws-test"))
            print(json.dumps({"first": sup.stop("ws-test-sleeper"), "again": sup.stop("ws-test-sleeper"),
                              "running": sup.status("ws-test-sleeper").running}))
            """,
        )
    assert stopped == {"first": True, "again": False, "running": False}
    assert "LoadState=not-found" in vm.succeed("systemctl show ws-test-sleeper.service -p LoadState")


def test_a_unit_ignoring_its_stop_signal_is_killed_after_the_timeout(vm) -> None:
    result = run_python(
        vm,
        """
        import json, time
        from pathlib import Path
        from ws.supervise import ServiceSpec, supervisor_for
        sup = supervisor_for(Path("/var/lib/ws-test"))
        spec = ServiceSpec(name="ws-test-stubborn", argv=["sh", "-c", "trap '' TERM; while :; do sleep 1; done"],
                           log_file=Path("/unused"))
        sup.start(spec)
        began = time.monotonic()
        stopped = sup.stop(spec.name, timeout=1)
        print(json.dumps({"stopped": stopped, "seconds": time.monotonic() - began,
                          "running": sup.status(spec.name).running}))
        """,
    )
    assert result["stopped"] and not result["running"]
    assert 0.9 < result["seconds"] < 15
    assert "LoadState=not-found" in vm.succeed("systemctl show ws-test-stubborn.service -p LoadState")


# A tiny OS tree for nspawn: the VM's /usr bound read-only, os-release copied so nspawn accepts the directory.
MACHINE_TREE = """set -e
tree=/var/lib/ws-test/tree
rm -rf $tree; mkdir -p $tree/usr/lib $tree/etc $tree/proc $tree/sys $tree/dev $tree/tmp $tree/run $tree/var
for link in bin sbin lib lib64; do ln -s usr/$link $tree/$link; done
cp /usr/lib/os-release $tree/usr/lib/os-release; cp /usr/lib/os-release $tree/etc/os-release
"""


def test_machined_registers_lists_and_terminates_an_nspawn_machine(vm) -> None:
    vm.succeed(MACHINE_TREE)
    result = run_python(
        vm,
        """
        import json, time
        from pathlib import Path
        from ws import systemd
        from ws.supervise import ServiceSpec, supervisor_for
        sup = supervisor_for(Path("/var/lib/ws-test"))
        spec = ServiceSpec(name="ws-test-machine", log_file=Path("/unused"), argv=[
            "systemd-nspawn", "--quiet", "--keep-unit", "--register=yes", "--machine=wstestm",
            "--directory=/var/lib/ws-test/tree", "--bind-ro=/usr", "/usr/bin/sleep", "300"])
        sup.start(spec)
        deadline = time.monotonic() + 60
        while (machine := systemd.get_machine("wstestm")) is None and time.monotonic() < deadline:
            time.sleep(0.2)
        listed = [m.name for m in systemd.list_machines()]
        terminated = systemd.terminate_machine("wstestm")
        deadline = time.monotonic() + 30
        while (sup.status(spec.name).running or systemd.get_machine("wstestm")) and time.monotonic() < deadline:
            time.sleep(0.2)
        print(json.dumps({"unit": machine and machine.unit, "class": machine and machine.machine_class,
                          "leader": machine and machine.leader, "listed": listed, "terminated": terminated,
                          "after": systemd.get_machine("wstestm") is not None, "running": sup.status(spec.name).running,
                          "terminate_again": systemd.terminate_machine("wstestm"),
                          "logs": sup.logs(spec.name)}))
        """,
    )
    assert result["unit"] == "ws-test-machine.service", result["logs"]
    assert result["class"] == "container" and result["leader"]
    assert "wstestm" in result["listed"]
    assert result["terminated"] is True and result["terminate_again"] is False
    assert result["after"] is False and result["running"] is False
