"""Tiny network probes run inside test namespaces (``ip netns exec NS python netprobe.py ...``).

serve ADDR PORT      accept TCP connections forever; answer each with the peer address it sees
tcp ADDR PORT        connect (1 s timeout) and print the answer, or BLOCKED
dns SERVER NAME udp|tcp  ask SERVER for NAME's A record and print the address, or FAILED
"""

from __future__ import annotations

import socket
import struct
import sys

TIMEOUT = 1.0


def serve(address: str, port: int) -> None:
    with socket.create_server((address, port), reuse_port=False) as server:
        print("ready", flush=True)
        while True:
            conn, peer = server.accept()
            with conn:
                conn.sendall(peer[0].encode())


def tcp(address: str, port: int) -> str:
    try:
        with socket.create_connection((address, port), timeout=TIMEOUT) as conn:
            return conn.recv(100).decode() or "EMPTY"
    except OSError:
        return "BLOCKED"


def dns(server: str, name: str, transport: str) -> str:
    query = struct.pack(">HHHHHH", 0x5753, 0x0100, 1, 0, 0, 0)
    query += b"".join(bytes([len(label)]) + label.encode() for label in name.split(".")) + b"\0"
    query += struct.pack(">HH", 1, 1)
    try:
        if transport == "tcp":
            with socket.create_connection((server, 53), timeout=TIMEOUT * 3) as conn:
                conn.sendall(struct.pack(">H", len(query)) + query)
                reply = conn.recv(4096)[2:]
        else:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.settimeout(TIMEOUT * 3)
                sock.sendto(query, (server, 53))
                reply = sock.recv(4096)
    except OSError:
        return "FAILED"
    answers = struct.unpack(">H", reply[6:8])[0]
    if reply[:2] != query[:2] or answers == 0:
        return "FAILED"
    # the one A answer ends the reply: name pointer, type, class, ttl, length 4, address
    return socket.inet_ntoa(reply[-4:])


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    if command == "serve":
        serve(args[0], int(args[1]))
    elif command == "tcp":
        print(tcp(args[0], int(args[1])))
    else:
        print(dns(*args))
