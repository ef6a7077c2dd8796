"""Composition root, softphone part: SIP engine, headset audio, call workflow, wrap-up,
power dialer. Split from `app.py` only for size; like it, it may know every package.

Started after the first paint. A problem is said in the status bar; the workspace keeps
working without a phone.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QCoreApplication

from agent_desktop.startup import DIALER_DOCK, PHONE_DOCK

if TYPE_CHECKING:
    from agent_desktop.app import AppContext

log = logging.getLogger(__name__)


def start_phone(ctx: AppContext, on_calls_changed: Callable[..., None]) -> None:
    """With no registrar configured, a simulated customer line (a second pjsua2 process on
    loopback that answers and plays audio) stands in for the PBX — the embedded default."""
    w, settings = ctx.window, ctx.settings
    try:
        from agent_desktop.calls import CallService
        from agent_desktop.dialplan import DialPlan
        from sip.config import SipConfig
        from sip.engine import SipEngine
        from sip.recorder import StereoRecorder, repair_recordings
        from sip.simline_process import SimLineProcess

        config = SipConfig.from_settings(settings, ctx.credentials,
                                         recordings_dir=ctx.paths.recordings_dir)
        problems = config.problems()
        if problems:
            raise RuntimeError(" ".join(problems))
        domain = settings.get("dialplan.domain").strip() or config.registrar
        if not config.registrar:
            simline = SimLineProcess()
            ctx.stoppers.append(simline.stop)
            domain = simline.start()
            config = dataclasses.replace(config, bind_address="127.0.0.1")
        # After a crash: recordings cut short get valid WAV headers back before anything.
        if repaired := repair_recordings(ctx.paths.recordings_dir):
            log.warning("repaired %d recordings after an unexpected stop", len(repaired))
        from sip.audio.bridge import AudioBridge  # QtMultimedia: loaded only when needed

        # Headset audio on its own thread; stopped after the engine (stoppers run newest
        # first, and the engine detaches the bridge when it stops).
        bridge = AudioBridge(settings)
        _announce_audio(ctx, bridge)
        bridge.start()
        ctx.stoppers.append(bridge.shutdown)
        engine = SipEngine(config, bridge=bridge, recorder_factory=StereoRecorder)
        engine.start()
        ctx.stoppers.append(engine.stop)
        dialplan = DialPlan(ctx.normalizer, domain, prefix=settings.get("dialplan.prefix"),
                            strip_country_code=settings.get("dialplan.strip_country_code"))
        agent = settings.get("sip.username")
        calls = CallService(ctx.db, engine, dialplan, ctx.search,
                            no_answer_timeout_s=settings.get("sip.no_answer_timeout_s"),
                            recordings_dir=ctx.paths.recordings_dir, agent=agent)
    except Exception as exc:
        log.exception("softphone not started")
        ctx.stop_background()
        text = QCoreApplication.translate("App", "The phone could not start: %1")
        w.statusBar().showMessage(text.replace("%1", str(exc)))
        for name in (PHONE_DOCK, DIALER_DOCK):  # the reserved docks say it too
            w.reserved_dock_message(name, text.replace("%1", str(exc)))
        return
    ctx.calls = calls
    ctx.keep += [bridge, engine, calls]
    _build_phone_ui(ctx, calls, engine, agent, on_calls_changed)


def _announce_audio(ctx: AppContext, bridge: Any) -> None:
    """Headset events in the status bar; chosen devices saved at once."""
    bar = ctx.window.statusBar()
    bridge.device_lost.connect(lambda text: bar.showMessage(text, 15_000))
    bridge.device_changed.connect(lambda text: bar.showMessage(text, 8_000))
    bridge.no_device.connect(lambda text: bar.showMessage(text, 15_000))
    ctx.settings.on_change(
        lambda key: ctx.settings.save() if key.startswith("audio.") else None)


def _build_phone_ui(ctx: AppContext, calls: Any, engine: Any, agent: str,
                    on_calls_changed: Callable[..., None]) -> None:
    from agent_desktop.dialer import PowerDialer
    from agent_desktop.wrapup import WrapupService
    from ui.dialer_panel import DialerPanel
    from ui.softphone_panel import SoftphonePanel
    from ui.wrapup_dialog import PendingWrapupsButton, WrapupDialog

    w, settings = ctx.window, ctx.settings
    panel = SoftphonePanel(calls, engine)
    # Into the docks reserved in the first frame (startup.first_window): nothing moves.
    w.fill_dock(PHONE_DOCK, panel, QCoreApplication.translate("App", "Phone"))
    wrapups = WrapupService(ctx.db, settings, agent=agent)
    ctx.wrapups = wrapups
    dialog = WrapupDialog(wrapups, w)
    dialog.setObjectName("wrapupDialog")
    pending = PendingWrapupsButton(wrapups, dialog)
    w.add_status_widget(pending)
    # The wrap-up opens the moment an answered call ends (ARCHITECTURE.md §5).
    calls.call_ended.connect(
        lambda log_id, outcome, _reason: dialog.show_wrapup(log_id)
        if outcome == "answered" else None)
    calls.call_ended.connect(lambda *_a: w.today.model.refresh())
    calls.call_ended.connect(on_calls_changed)
    wrapups.wrapup_saved.connect(on_calls_changed)
    wrapups.wrapup_saved.connect(lambda _log, cid: w.refresh_customer(cid) if cid else None)
    wrapups.wrapup_saved.connect(lambda *_a: w.today.model.refresh())
    w.detail.customer_shown.connect(panel.set_customer)
    if (cid := w.current_customer_id()) is not None:
        panel.set_customer(cid)
    panel.open_customer_requested.connect(lambda cid: w.open_customer(cid, focus=True))
    panel.new_customer_requested.connect(lambda number: w.new_customer(phone=number))

    # Power dialer over the list on screen (agent_desktop/dialer.py, ui/dialer_panel.py).
    dialer = PowerDialer(ctx.db, settings, calls.dial,
                         can_dial=lambda: wrapups.can_dial(calls.active_log_ids()))
    calls.call_ended.connect(dialer.on_call_ended)
    wrapups.wrapup_saved.connect(dialer.on_wrapup_saved)
    dialer_panel = DialerPanel(dialer, ids_provider=w.customer_list.model.loaded_ids)
    dialer_panel.setObjectName("dialerPanel")
    dialer_panel.customer_previewed.connect(w.open_customer)
    w.fill_dock(DIALER_DOCK, dialer_panel, QCoreApplication.translate("App", "Call list"))
    ctx.stoppers.append(dialer.stop)
    if ctx.reminder_popup is not None:  # one click on a follow-up calls the customer
        ctx.reminder_popup.call_requested.connect(lambda cid: panel.dial_customer(cid))
    dialog.show_next_pending()  # a wrap-up left open by a crash or a quit comes back
    ctx.keep += [panel, wrapups, dialog, pending, dialer, dialer_panel]
