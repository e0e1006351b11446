"""Logging: structlog to stderr (stdout is for command output), human on a terminal, JSON lines
otherwise, with values of secret-looking keys redacted before any renderer sees them.

Commands print their own summary on stdout (and progress on stderr), so the log's events would only
repeat it: by default only warnings and errors are logged. ``-v`` adds the events (info), ``-vv`` debug;
asking for JSON (``--log-format json``) is asking for the events, so it logs them without ``-v``."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

SECRET_KEY = re.compile(r"pass(word|wd|phrase)?|secret|token|private|credential|auth|signature|psk|cookie", re.I)
REDACTED = "***"
LEVELS = {-1: logging.ERROR, 0: logging.WARNING, 1: logging.INFO, 2: logging.DEBUG}


def redact_secrets(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: mask values whose key looks secret, also inside nested dicts."""
    return _redact(event)


def _redact(mapping: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in list(mapping.items()):
        if key != "event" and SECRET_KEY.search(str(key)):
            mapping[key] = REDACTED
        elif isinstance(value, MutableMapping):
            mapping[key] = _redact(dict(value))
    return mapping


def configure(verbosity: int = 0, fmt: str = "auto", stream: TextIO | None = None) -> None:
    """Set up structlog once per process. ``fmt`` is ``auto`` (console on a TTY, else JSON), ``console``
    or ``json``; ``verbosity`` counts ``-v`` minus ``-q`` (see the module docstring for the levels)."""
    import structlog

    stream = stream or sys.stderr
    if fmt == "json":
        verbosity += 1
    if fmt == "auto":
        fmt = "console" if stream.isatty() else "json"
    renderer: Any = (
        structlog.processors.JSONRenderer() if fmt == "json" else structlog.dev.ConsoleRenderer(colors=stream.isatty())
    )
    level = LEVELS[max(-1, min(2, verbosity))]
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redact_secrets,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=False,
    )


def get_logger(**context: Any) -> Any:
    import structlog

    return structlog.get_logger("ws").bind(**context)
