"""pjsua2 configuration built from a `SipConfig`: endpoint, transport, account.

Why apart from the engine: these are pure translations of settings into pjsua2 config
structs (no state, no callbacks), and the engine module stays about *when* things happen.
The values that matter for robustness are explained where they are set.
"""

from __future__ import annotations

import pjsua2 as pj

from sip.config import SipConfig

_TRANSPORT_TYPE = {"udp": pj.PJSIP_TRANSPORT_UDP, "tcp": pj.PJSIP_TRANSPORT_TCP,
                   "tls": pj.PJSIP_TRANSPORT_TLS}


def endpoint_config(c: SipConfig) -> pj.EpConfig:
    """One pjsua2 thread (ours, polled), no console log, continuous RTP, 16 kHz bridge."""
    cfg = pj.EpConfig()
    cfg.uaConfig.threadCnt = 0
    cfg.uaConfig.mainThreadOnly = True
    cfg.uaConfig.userAgent = c.user_agent
    cfg.logConfig.consoleLevel = 0
    cfg.logConfig.level = 4 if c.pj_log_file else 0
    if c.pj_log_file:
        cfg.logConfig.filename = c.pj_log_file
    cfg.medConfig.noVad = True  # continuous RTP: silence is a real signal of a dead peer
    cfg.medConfig.clockRate = 16000
    return cfg


def create_transport(ep: pj.Endpoint, c: SipConfig) -> tuple[int, str]:
    """(transport id, local host:port). TLS always verifies the server with the CA file."""
    tc = pj.TransportConfig()
    tc.port = c.local_port
    if c.bind_address:
        tc.boundAddress = c.bind_address
    if c.transport == "tls":
        tc.tlsConfig.CaListFile = c.ca_file
        tc.tlsConfig.verifyServer = True
        tc.tlsConfig.method = pj.PJSIP_TLSV1_2_METHOD
    tid = ep.transportCreate(_TRANSPORT_TYPE[c.transport], tc)
    return tid, str(ep.transportGetInfo(tid).localName)


def identity_uri(c: SipConfig, local_address: str) -> str:
    """Our From: the account on the registrar, or agent@our address for direct calls; the
    display name (sip.display_name) is what the customer's phone shows."""
    uri = (f"sip:{c.username}@{c.registrar.split(':')[0]}" if c.registrar
           else f"sip:agent@{local_address}")
    if c.display_name:
        name = c.display_name.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{name}" <{uri}>'
    return uri


def account_config(c: SipConfig, transport_id: int, local_address: str) -> pj.AccountConfig:
    acfg = pj.AccountConfig()
    tparam = "" if c.transport == "udp" else f";transport={c.transport}"
    acfg.idUri = identity_uri(c, local_address)
    if c.registrar:
        acfg.regConfig.registrarUri = f"sip:{c.registrar}{tparam}"
        acfg.regConfig.timeoutSec = c.reg_expires_s
        acfg.regConfig.retryIntervalSec = 0  # our own backoff (sip.registration)
        acfg.regConfig.registerOnAdd = True
        acfg.sipConfig.proxies.append(f"sip:{c.registrar}{tparam};lr")
        acfg.sipConfig.authCreds.append(
            pj.AuthCredInfo("digest", "*", c.username, 0, c.password))
    acfg.sipConfig.transportId = transport_id
    acfg.mediaConfig.transportConfig.port = 0
    if c.bind_address:
        acfg.mediaConfig.transportConfig.boundAddress = c.bind_address
    return acfg
