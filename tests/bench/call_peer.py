"""A UDP 'phone' for the call benchmark, in its own process so its timestamps never wait
for the benchmark's GIL: prints `PORT n`, then `INVITE user perf_counter` for each new
INVITE (CLOCK_MONOTONIC, comparable across processes on Linux), and answers 486."""

from __future__ import annotations

import socket
import sys
import time


def reply_486(text: str) -> bytes:
    heads: dict[str, str] = {}
    for line in text.split("\r\n")[1:]:
        if not line:
            break
        name = line.split(":", 1)[0].strip().lower()
        if name in ("via", "from", "to", "call-id", "cseq") and name not in heads:
            heads[name] = line
    return ("SIP/2.0 486 Busy Here\r\n" + heads.get("via", "") + "\r\n" + heads.get("from", "")
            + "\r\n" + heads.get("to", "") + ";tag=bench\r\n" + heads.get("call-id", "")
            + "\r\n" + heads.get("cseq", "") + "\r\nContent-Length: 0\r\n\r\n").encode()


def main() -> int:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    seen: set[str] = set()
    while True:
        data, addr = sock.recvfrom(65535)
        now = time.perf_counter()
        text = data.decode(errors="replace")
        if not text.startswith("INVITE "):
            continue
        user = text.split(" ", 2)[1].split(":", 1)[1].split("@", 1)[0]
        if user not in seen:
            seen.add(user)
            print(f"INVITE {user} {now:.6f}", flush=True)
        sock.sendto(reply_486(text), addr)


if __name__ == "__main__":
    sys.exit(main())
