"""A build's progress on stderr: mmdebstrap's phases condensed to one line each, with the elapsed time.

On a terminal the line is redrawn in place (and ticks every second, so a long phase still shows life);
elsewhere (CI logs, pipes) each phase is printed once as a plain line.
"""

from __future__ import annotations

import re
import sys
import threading
import time
from typing import TextIO

PHASES = (
    (re.compile(r"^I: running apt-get update"), "updating package lists"),
    (re.compile(r"^I: downloading packages"), "downloading packages"),
    (re.compile(r"^I: extracting archives"), "extracting essential packages"),
    (re.compile(r"^I: installing essential packages"), "installing essential packages"),
    (re.compile(r"^I: installing remaining packages"), "installing packages"),
    (re.compile(r"^I: running (?:special hook|--customize-hook)"), "customizing"),
    (re.compile(r"^I: cleaning package lists"), "cleaning up"),
    (re.compile(r"^I: creating tarball"), "writing the root file system tarball"),
)
WARNING = re.compile(r"^(?:W|E): ")


def condense(line: str) -> str | None:
    """The phase or warning a line of mmdebstrap's output announces; None for every other line."""
    line = line.rstrip()
    for pattern, phase in PHASES:
        if pattern.match(line):
            return phase
    if WARNING.match(line):
        return line
    return None


class ProgressDisplay:
    """Callable sink for phase texts; use as a context manager so the terminal line is finished."""

    def __init__(self, title: str, stream: TextIO | None = None, tty: bool | None = None):
        self.title = title
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.started = time.monotonic()
        self.phase = "starting"
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    def __enter__(self) -> ProgressDisplay:
        self.started = time.monotonic()
        if self.tty:
            self._ticker = threading.Thread(target=self._tick, daemon=True)
            self._ticker.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._ticker:
            self._ticker.join()
        if self.tty:
            with self._lock:
                self.stream.write("\n")
                self.stream.flush()

    def __call__(self, phase: str) -> None:
        with self._lock:
            if phase == self.phase:
                return
            self.phase = phase
            self._draw()

    def line(self) -> str:
        return f"[{time.monotonic() - self.started:5.0f}s] {self.title}: {self.phase}"

    def _draw(self) -> None:
        if self.tty:
            self.stream.write("\r\033[K" + self.line())
        else:
            self.stream.write(self.line() + "\n")
        self.stream.flush()

    def _tick(self) -> None:
        while not self._stop.wait(1.0):
            with self._lock:
                self._draw()
