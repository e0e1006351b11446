"""Logging: structlog to stderr, JSON lines off a terminal, console on one, -v/-q, redacted secrets, and
stdout kept for command output."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import fake_backends
import pytest
from ws import log


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _reset_structlog():
    yield
    import structlog

    structlog.reset_defaults()


@pytest.mark.parametrize(
    "key", ["password", "passwd", "api_token", "secret", "private_key", "credentials", "auth", "psk", "cookie"]
)
def test_secret_looking_keys_are_redacted(key: str) -> None:
    event = {"event": "login", key: "hunter2", "user": "alice"}
    assert log.redact_secrets(None, "info", event) == {"event": "login", key: log.REDACTED, "user": "alice"}


def test_nested_values_are_redacted_and_the_event_is_kept() -> None:
    event = {"event": "token refreshed", "response": {"token": "abc", "expires": 60, "inner": {"signature": "s"}}}
    out = log.redact_secrets(None, "info", event)
    assert out["event"] == "token refreshed"
    assert out["response"] == {"token": log.REDACTED, "expires": 60, "inner": {"signature": log.REDACTED}}


def _lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_lines_when_not_a_terminal() -> None:
    stream = io.StringIO()
    log.configure(1, "auto", stream)
    log.get_logger(workspace="dev").info("created", token="t0ps3cret", ip="192.168.83.10")
    (line,) = _lines(stream)
    assert line["event"] == "created" and line["level"] == "info" and line["workspace"] == "dev"
    assert line["token"] == log.REDACTED and "t0ps3cret" not in stream.getvalue()
    assert line["timestamp"].endswith("Z")


def test_console_on_a_terminal_and_still_redacted() -> None:
    stream = Terminal()
    log.configure(1, "auto", stream)
    log.get_logger().info("created", password="t0ps3cret")
    text = stream.getvalue()
    assert "created" in text and "t0ps3cret" not in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text.splitlines()[0])


def test_format_can_be_forced() -> None:
    stream = Terminal()
    log.configure(0, "json", stream)
    log.get_logger().info("x")
    assert _lines(stream)[0]["event"] == "x"


@pytest.mark.parametrize(
    ("verbosity", "fmt", "shown"),
    [
        (-1, "auto", ["error"]),
        (0, "auto", ["warning", "error"]),
        (0, "console", ["warning", "error"]),
        (1, "auto", ["info", "warning", "error"]),
        (2, "auto", ["debug", "info", "warning", "error"]),
        (-2, "json", ["error"]),
        (-1, "json", ["warning", "error"]),
        (0, "json", ["info", "warning", "error"]),
        (1, "json", ["debug", "info", "warning", "error"]),
        (3, "json", ["debug", "info", "warning", "error"]),
    ],
)
def test_verbosity_levels(verbosity: int, fmt: str, shown: list[str]) -> None:
    """Warnings by default; events with -v or when JSON was asked for."""
    stream = io.StringIO()
    log.configure(verbosity, fmt, stream)
    logger = log.get_logger()
    for level in ("debug", "info", "warning", "error"):
        getattr(logger, level)(level)
    lines = stream.getvalue().splitlines()
    events = [line.split()[-1] for line in lines] if fmt == "console" else [json.loads(line)["event"] for line in lines]
    assert events == shown


def test_cli_logs_json_to_stderr_with_secrets_redacted(run_ws, write_config) -> None:
    """End to end: the fake backend logs a secret-looking key during ``ws up``."""
    path = write_config('[workspaces.dev]\ntype = "incus"\nnetwork = "fakenet"\n')
    result = run_ws("--config", str(path), "--log-format", "json", "up", "dev")
    assert result.returncode == 0, result.stderr
    assert fake_backends.LOGGED_SECRET not in result.stderr + result.stdout
    records = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    (created,) = [r for r in records if r["event"] == "fake instance created"]
    assert created["token"] == log.REDACTED and created["workspace"] == "dev" and created["level"] == "info"
    assert result.stdout.splitlines() == ["dev: created, running " + created_ip(result.stdout)]


def created_ip(stdout: str) -> str:
    return stdout.split()[-1]


def test_cli_off_a_terminal_prints_the_summary_once_and_logs_events_only_with_v(run_ws, write_config) -> None:
    """A non-terminal (a script, CI) gets each event once: the summary on stdout, no log lines unless asked."""
    path = write_config('[workspaces.dev]\ntype = "incus"\nnetwork = "fakenet"\n')
    result = run_ws("--config", str(path), "up", "dev")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"dev: created, running {created_ip(result.stdout)}\n"
    assert not [line for line in result.stderr.splitlines() if line.startswith("{")], result.stderr

    result = run_ws("--config", str(path), "-v", "restart", "dev")
    assert result.returncode == 0 and result.stdout.startswith("dev: ")
    events = [json.loads(line)["event"] for line in result.stderr.splitlines() if line.startswith("{")]
    assert "fake instance created" in events, "-v adds the events, as JSON lines off a terminal"


def test_stdout_is_only_command_output_even_when_verbose(run_ws, write_config) -> None:
    path = write_config('[workspaces.dev]\ntype = "vm"\n')
    result = run_ws("-vv", "--config", str(path), "config", "show", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["workspaces"]["dev"]["type"] == "microvm"


def test_events_below_the_cli_level_cost_no_structlog_import() -> None:
    """The CLI's pending request filters events before structlog is imported; the first event at its level
    configures logging as asked."""
    program = """if True:
        import json, sys
        from ws import log
        log.configure_on_first_use(0, "json")  # json asks for the events: info and up
        logger = log.get_logger(workspace="dev").bind(step="up")
        logger.debug("hidden", token="t0ps3cret")
        print(json.dumps("structlog" in sys.modules), flush=True)
        logger.info("shown", token="t0ps3cret")
    """
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=True)
    assert result.stdout == "false\n"
    (line,) = [json.loads(text) for text in result.stderr.splitlines()]
    assert (line["event"], line["workspace"], line["step"], line["token"]) == ("shown", "dev", "up", log.REDACTED)
