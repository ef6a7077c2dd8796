"""kamailio as registrar + proxy with digest auth, no database (RIG.md)."""

from __future__ import annotations

from pathlib import Path

from tests.integration.rig.proc import Peer, free_port

CFG = r"""#!KAMAILIO
debug=2
log_stderror=yes
memdbg=5
memlog=5
children=2
listen=udp:127.0.0.1:{port}
listen=tcp:127.0.0.1:{port}
alias="127.0.0.1:{port}"
auto_aliases=no

loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "xlog.so"
loadmodule "htable.so"
loadmodule "auth.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"

modparam("usrloc", "db_mode", 0)
modparam("htable", "htable", "creds=>size=4;")
modparam("tm", "fr_timer", 3000)
modparam("tm", "fr_inv_timer", 60000)

event_route[htable:mod-init] {{
{creds}
}}

request_route {{
    if (!mf_process_maxfwd_header("10")) {{ sl_send_reply("483", "Too Many Hops"); exit; }}
    if (is_method("REGISTER")) {{
        pv_www_authenticate("127.0.0.1", "$sht(creds=>$tU)", "0");
        $var(rc) = $rc;
        if ($var(rc) == -2) {{ sl_send_reply("403", "Forbidden"); exit; }}
        if ($var(rc) < 0) {{ www_challenge("127.0.0.1", "0"); exit; }}
        consume_credentials();
        save("location");
        exit;
    }}
    if (has_totag()) {{
        if (loose_route()) {{ t_relay(); exit; }}
        if (is_method("ACK")) {{ if (t_check_trans()) {{ t_relay(); }} exit; }}
        sl_send_reply("404", "Not here");
        exit;
    }}
    if (is_method("CANCEL")) {{ if (t_check_trans()) {{ t_relay(); }} exit; }}
    if (is_method("ACK")) {{ exit; }}
    if (!is_method("INVITE|MESSAGE|OPTIONS|REFER|SUBSCRIBE")) {{ t_relay(); exit; }}
    pv_proxy_authenticate("127.0.0.1", "$sht(creds=>$fU)", "0");
    $var(rc) = $rc;
    if ($var(rc) == -2) {{ sl_send_reply("403", "Forbidden"); exit; }}
    if ($var(rc) < 0) {{ proxy_challenge("127.0.0.1", "0"); exit; }}
    consume_credentials();
    if (is_method("INVITE")) {{ record_route(); }}
    if (!lookup("location")) {{ sl_send_reply("404", "Not Found"); exit; }}
    t_relay();
    exit;
}}
"""


class Kamailio(Peer):
    def __init__(self, workdir: Path, users: dict[str, str], port: int = 0) -> None:
        self.port = port or free_port()
        creds = "\n".join(f'    $sht(creds=>{u}) = "{p}";' for u, p in users.items())
        cfg = workdir / "kamailio.cfg"
        cfg.write_text(CFG.format(port=self.port, creds=creds))
        run = workdir / "run"
        run.mkdir(exist_ok=True)
        super().__init__("kamailio", [
            "kamailio", "-f", str(cfg), "-DD", "-E", "-Y", str(run), "-P",
            str(run / "kamailio.pid"), "-m", "32", "-M", "4", "-w", str(workdir)], cwd=workdir)
        self.wait_udp(self.port)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"
