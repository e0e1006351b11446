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
    """A logger bound to ``context``. While the CLI's request is not applied yet, events below its level are
    dropped without importing structlog: ``ws up`` by default logs nothing and does not pay for it."""
    if _requested is not None:
        return _PendingLogger(context)
    return _structlog_logger(context)


def _structlog_logger(context: dict[str, Any]) -> Any:
    import structlog

    global _requested
    if _requested is not None:
        requested, _requested = _requested, None
        configure(*requested)
    return structlog.get_logger("ws").bind(**context)


_METHOD_LEVELS = {"debug": 10, "info": 20, "msg": 20, "warning": 30, "warn": 30, "error": 40, "exception": 40}


class _PendingLogger:
    """Stands for structlog's logger until an event at the CLI's level is logged (then it becomes one)."""

    def __init__(self, context: dict[str, Any]):
        self._context = context
        self._real: Any = None

    def bind(self, **more: Any) -> Any:
        return _PendingLogger({**self._context, **more}) if self._real is None else self._real.bind(**more)

    def __getattr__(self, name: str) -> Any:
        if self._real is None and _requested is not None and _METHOD_LEVELS.get(name, 100) < _requested_level():
            return _ignore
        if self._real is None:
            self._real = _structlog_logger(self._context)
        return getattr(self._real, name)


def _requested_level() -> int:
    verbosity, fmt = _requested or (0, "auto")
    return LEVELS[max(-1, min(2, verbosity + (fmt == "json")))]


def _ignore(*_args: Any, **_kwargs: Any) -> None:
    return None
