"""Guest output is printed without terminal control sequences (a guest's root writes its console)."""

from __future__ import annotations

from ws.terminal import printable, printable_writer

HOSTILE = "ok\x1b]0;pwned\x07 \x1b[2J\x1b[1;1Hfake prompt\r\x9b31mred\x7f\x00\ttab\n"


def test_escape_sequences_lose_their_control_characters() -> None:
    text = printable(HOSTILE)
    assert text == "ok]0;pwned [2J[1;1Hfake prompt31mred\ttab\n"
    assert not any(ord(c) < 32 and c not in "\n\t" or 0x7F <= ord(c) <= 0x9F for c in text)


def test_streamed_output_is_stripped_across_chunk_boundaries() -> None:
    received: list[bytes] = []
    sink = printable_writer(received.append)
    data = ("é" + HOSTILE).encode()
    for index in range(len(data)):  # one byte at a time: UTF-8 sequences split everywhere
        sink(data[index : index + 1])
    assert b"".join(received).decode() == "é" + printable(HOSTILE)
