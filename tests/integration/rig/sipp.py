"""sipp UAS peers: echo (built-in uas + rtp_echo), busy (486), never-answer (180 forever)."""

from __future__ import annotations

from pathlib import Path

from tests.integration.rig.proc import Peer, free_port

BUSY_XML = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="busy">
  <recv request="INVITE" />
  <send><![CDATA[
SIP/2.0 486 Busy Here
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

]]></send>
  <recv request="ACK" />
</scenario>
"""

NEVER_ANSWER_XML = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="never-answer">
  <recv request="INVITE">
    <action>
      <ereg regexp="[0-9]+ INVITE" search_in="hdr" header="CSeq:" assign_to="cseq" />
    </action>
  </recv>
  <send><![CDATA[
SIP/2.0 180 Ringing
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:[local_ip]:[local_port];transport=[transport]>
Content-Length: 0

]]></send>
  <recv request="CANCEL" />
  <send><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

]]></send>
  <send><![CDATA[
SIP/2.0 487 Request Terminated
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
CSeq: [$cseq]
Content-Length: 0

]]></send>
  <recv request="ACK" />
</scenario>
"""


class Sipp(Peer):
    """One sipp UAS on a free loopback port; `kind` is echo, busy or never."""

    def __init__(self, kind: str, workdir: Path, calls: int = 1) -> None:
        self.port = free_port()
        rtp = free_port()
        cmd = ["sipp", "-i", "127.0.0.1", "-p", str(self.port), "-m", str(calls), "-nostdin",
               "-trace_err", "-timeout", "120s"]
        if kind == "echo":
            cmd += ["-sn", "uas", "-mp", str(rtp), "-rtp_echo"]
        else:
            xml = workdir / f"{kind}.xml"
            xml.write_text(BUSY_XML if kind == "busy" else NEVER_ANSWER_XML)
            cmd += ["-sf", str(xml)]
        super().__init__(f"sipp-{kind}", cmd, cwd=workdir)
        self.wait_udp(self.port)

    def uri(self, user: str = "service") -> str:
        return f"sip:{user}@127.0.0.1:{self.port}"
