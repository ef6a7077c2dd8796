"""A fault-injecting HTTP/1.1 proxy for sync tests: one request per connection, and each
connection gets the next fault from a queue (pass by default).

Faults: `drop` (close before forwarding), `delay:<s>` (wait, then forward), `duplicate`
(forward the request twice, answer with the second response), `cut_request` (forward half
of the request, then hang up on both sides), `lose_response` (forward the request, let the
server finish, but never answer the client). Clients must send `Connection: close`.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections import deque

log = logging.getLogger(__name__)


def _read_request(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def _forward(upstream: tuple[str, int], request: bytes) -> bytes:
    with socket.create_connection(upstream, timeout=60) as up:
        up.sendall(request)
        out = b""
        while True:
            chunk = up.recv(65536)
            if not chunk:
                return out
            out += chunk


class FaultProxy:
    def __init__(self, upstream_port: int) -> None:
        self.upstream = ("127.0.0.1", upstream_port)
        self.faults: deque[str] = deque()
        self.seen: list[str] = []
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self.port = int(self._sock.getsockname()[1])
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def inject(self, *faults: str) -> None:
        self.faults.extend(faults)

    def close(self) -> None:
        self._stop.set()
        self._sock.close()
        self._thread.join(timeout=5)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            fault = self.faults.popleft() if self.faults else "pass"
            threading.Thread(target=self._handle, args=(conn, fault), daemon=True).start()

    def _handle(self, conn: socket.socket, fault: str) -> None:
        with conn:
            try:
                request = _read_request(conn)
                self.seen.append(fault)
                if fault == "drop" or not request:
                    return
                if fault.startswith("delay:"):
                    time.sleep(float(fault.split(":", 1)[1]))
                if fault == "cut_request":
                    with socket.create_connection(self.upstream, timeout=10) as up:
                        up.sendall(request[: len(request) // 2 + 1])
                        time.sleep(0.2)
                    return
                response = _forward(self.upstream, request)
                if fault == "duplicate":
                    response = _forward(self.upstream, request)
                if fault == "lose_response":
                    return
                conn.sendall(response)
            except OSError as exc:
                log.info("proxy connection ended: %s", exc)
