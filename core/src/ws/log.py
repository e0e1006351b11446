"""Logging: structlog to stderr (stdout is for command output), human on a terminal, JSON lines
otherwise, with values of secret-looking keys redacted before any renderer sees them.

Commands print their own summary on stdout (and progress on stderr), so the log's events would only
repeat it: by default only warnings and errors are logged. ``-v`` adds the events (info), ``-vv`` debug;
asking for JSON (``--log-format json``) is asking for the events, so it logs them without ``-v``."""

from __future__ import annotations

import re
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

SECRET_KEY = re.compile(r"pass(word|wd|phrase)?|secret|token|private|credential|auth|signature|psk|cookie", re.I)
REDACTED = "***"
LEVELS = {-1: 40, 0: 30, 1: 20, 2: 10}
"""The standard library's ERROR, WARNING, INFO, DEBUG (logging itself is not imported by commands that never log)."""


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

    global _requested
    _requested = None  # set up now: a CLI request made before is superseded

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


_requested: tuple[int, str] | None = None
"""The CLI's logging options, applied by the first :func:`get_logger` (see :func:`configure_on_first_use`)."""


def configure_on_first_use(verbosity: int = 0, fmt: str = "auto") -> None:
    """What the CLI calls: :func:`configure` runs when something first asks for a logger, so commands that
    never log (``ws list`` and ``ws status`` from the configuration snapshot) do not import structlog,
    which with what it imports (asyncio, logging, rich) costs them a third of their time."""
    global _requested
    _requested = (verbosity, fmt)


def get_logger(**context: Any) -> Any:
    import structlog

    global _requested
    if _requested is not None:
        requested, _requested = _requested, None
        configure(*requested)
    return structlog.get_logger("ws").bind(**context)
