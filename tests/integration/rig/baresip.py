"""baresip: an auto-answering peer that plays a file (registers via kamailio or direct)."""

from __future__ import annotations

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
"""


class Baresip(Peer):
    def __init__(self, workdir: Path, wav: Path, user: str, *, registrar: str = "",
                 password: str = "", seconds: int = 120, tls_pem: Path | None = None) -> None:
        self.port = free_port()
        self.tls_port = self.port + 1  # baresip binds TLS next to UDP/TCP
        rtp = free_port()
        conf = workdir / f"baresip-{user}"
        conf.mkdir(exist_ok=True)
        config = CONFIG.format(port=self.port, rtp=rtp, rtp_end=rtp + 8, wav=wav)
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
