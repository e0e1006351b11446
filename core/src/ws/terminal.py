"""Guest text on the user's terminal: a guest's console and journal are written by a hostile root.

Escape sequences in them could retitle the terminal, rewrite what was printed, or on some terminals feed
input back. ws strips every control character but newline and tab (ESC, CSI, the C1 range, DEL, a bare
carriage return) before printing guest output, so what is left is plain text.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """``text`` without terminal control characters (newline and tab kept)."""
    return _CONTROL.sub("", text)


def printable_writer(write: Callable[[bytes], None]) -> Callable[[bytes], None]:
    """Wrap a byte sink so streamed guest output reaches it stripped (UTF-8 split across chunks is fine)."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def sink(data: bytes) -> None:
        text = printable(decoder.decode(data))
        if text:
            write(text.encode())

    return sink
