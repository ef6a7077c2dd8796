"""baresip: an auto-answering peer that plays a file (registers via kamailio or direct)."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from tests.integration.rig.proc import Peer, free_port

CONFIG = """\
poll_method		poll
sip_listen		127.0.0.1:{port}
rtp_ports		{rtp}-{rtp_end}
audio_source		aufile,{wav}
audio_player		aubridge,nil
audio_alert		aubridge,nil
module_path		/usr/lib/baresip/modules
module			g711.so
module			aufile.so
module			aubridge.so
module_tmp		account.so
module_app		menu.so
module_app		ctrl_tcp.so
ctrl_tcp_listen		127.0.0.1:{ctrl}
"""


class Baresip(Peer):
    def __init__(self, workdir: Path, wav: Path, user: str, *, registrar: str = "",
                 password: str = "", seconds: int = 120, tls_pem: Path | None = None) -> None:
        self.port = free_port()
        self.tls_port = self.port + 1  # baresip binds TLS next to UDP/TCP
        rtp = free_port()
        conf = workdir / f"baresip-{user}"
        conf.mkdir(exist_ok=True)
        self.ctrl_port = free_port(socket.SOCK_STREAM)
        config = CONFIG.format(port=self.port, rtp=rtp, rtp_end=rtp + 8, wav=wav,
                               ctrl=self.ctrl_port)
        if tls_pem is not None:
            config += f"sip_certificate\t\t{tls_pem}\n"
        (conf / "config").write_text(config)
        if registrar:
            acc = (f"<sip:{user}@{registrar}>;auth_pass={password};regint=300;"
                   "answermode=auto;audio_codecs=PCMU,PCMA")
        else:
            acc = (f"<sip:{user}@127.0.0.1:{self.port}>;regint=0;answermode=auto;"
                   "audio_codecs=PCMU,PCMA")
        (conf / "accounts").write_text(acc + "\n")
        super().__init__(f"baresip-{user}", ["baresip", "-f", str(conf), "-t", str(seconds)],
                         cwd=workdir)
        self.wait_udp(self.port)
        if registrar:
            self.wait_line(r"200 OK|registered", 10)
        self.wait_line(r"baresip is ready", 10)

    def command(self, command: str, params: str = "") -> dict[str, object]:
        """Run a baresip command (e.g. `dial`, `hangup`) over its ctrl_tcp socket."""
        body = json.dumps({"command": command, "params": params, "token": "t"}).encode()
        with socket.create_connection(("127.0.0.1", self.ctrl_port), timeout=5) as s:
            s.sendall(str(len(body)).encode() + b":" + body + b",")
            buf = b""
            while True:  # netstrings: events may come before the response
                while b":" in buf:
                    size, rest = buf.split(b":", 1)
                    if len(rest) < int(size) + 1:
                        break
                    msg = json.loads(rest[: int(size)])
                    buf = rest[int(size) + 1:]
                    if msg.get("response"):
                        reply: dict[str, object] = msg
                        return reply
                chunk = s.recv(4096)
                if not chunk:
                    raise AssertionError(f"baresip closed ctrl_tcp before replying to {command}")
                buf += chunk
