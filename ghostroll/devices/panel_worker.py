"""`PanelWorker`: owns one panel on its own thread; `submit()` never blocks, each panel call
runs with a timeout and a panel that hangs is abandoned and opened afresh."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from PIL import Image

from ghostroll.devices import refresh as rp
from ghostroll.devices.panel import Panel, check_frame, frame_digest

log = logging.getLogger(__name__)


@dataclass
class PanelStats:
    full: int = 0
    partial: int = 0
    skipped: int = 0  # identical frames not drawn
    replaced: int = 0  # frames superseded by a newer one before drawing
    sleeps: int = 0
    timeouts: int = 0
    failures: int = 0  # panel calls that raised
    reinits: int = 0


@dataclass
class _Pending:
    image: Image.Image
    label: str
    force_full: bool


_SLEEP = object()


class PanelWorker:
    """Owns one panel on its own thread. `submit()` never blocks: the newest frame
    replaces any frame not drawn yet; drawing follows `refresh.decide()`."""

    def __init__(self, factory: Callable[[], Panel], *,
                 policy: rp.RefreshPolicy = rp.DEFAULT_POLICY,
                 size: tuple[int, int] | None = None,
                 op_timeout: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._factory = factory
        self.size = size  # when given, submit() refuses frames of another size
        self.policy = policy
        self.op_timeout = op_timeout
        self._clock = clock
        self._cond = threading.Condition()
        self._pending: _Pending | None = None
        self._busy = False
        self._stopping = False
        self._state = rp.RefreshState()
        self._panel: Panel | None = None
        self.stats = PanelStats()
        self.last_frame: Image.Image | None = None
        self._thread = threading.Thread(target=self._run, name="panel", daemon=True)

    def start(self) -> PanelWorker:
        self._thread.start()
        return self

    @property
    def state(self) -> rp.RefreshState:
        with self._cond:
            return self._state

    def submit(self, image: Image.Image, state_label: str, force_full: bool = False) -> None:
        """Hand over a frame (mode "1") showing `state_label`; returns at once.
        Raises ValueError for a frame the panel cannot draw."""
        check_frame(image, self.size or image.size)
        frame = image.copy()
        with self._cond:
            if self._pending is not None:
                self.stats.replaced += 1
                force_full = force_full or self._pending.force_full
            self._pending = _Pending(frame, state_label, force_full)
            self._cond.notify_all()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every submitted frame is drawn or dropped; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self._pending is None and not self._busy,
                                       timeout)

    def stop(self, timeout: float = 60.0) -> None:
        """Draw what is pending, put the panel to sleep (the picture stays) and close it."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout)
        panel = self._panel
        if panel is not None and not self._thread.is_alive():
            if not self._state.asleep:
                self._call("sleep", panel.sleep)
            self._call("close", panel.close)
            self._panel = None

    # worker thread

    def _run(self) -> None:
        while True:
            job = self._next_job()
            if job is None:
                return
            try:
                if job is _SLEEP:
                    self._do_sleep()
                else:
                    assert isinstance(job, tuple)
                    self._do_draw(*job)
            except Exception:
                log.exception("panel: unexpected error in the panel worker")
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _next_job(self) -> object | None:
        with self._cond:
            while True:
                now = self._clock()
                pending = self._pending
                if pending is not None:
                    digest = frame_digest(pending.image)
                    decision = rp.decide(
                        self._state, now,
                        frame_changed=digest != self._state.frame_digest,
                        state_changed=pending.label != self._state.state_label,
                        force_full=pending.force_full, policy=self.policy)
                    if decision.action is rp.Action.SKIP:
                        self.stats.skipped += 1
                        self._pending = None
                        self._cond.notify_all()
                        continue
                    if decision.action is rp.Action.WAIT:
                        self._cond.wait(decision.wait)
                        continue
                    self._pending = None
                    self._busy = True
                    return (pending, decision, digest)
                if self._stopping:
                    return None
                if rp.should_sleep(self._state, now, self.policy):
                    self._busy = True
                    return _SLEEP
                due = rp.sleep_due_in(self._state, now, self.policy)
                self._cond.wait(None if due == float("inf") else due)

    def _ensure_panel(self) -> Panel | None:
        if self._panel is None:
            try:
                self._panel = self._factory()
            except Exception as exc:
                log.error("panel: cannot open the panel: %s", exc)
                self.stats.failures += 1
                return None
        return self._panel

    def _do_draw(self, pending: _Pending, decision: rp.Decision, digest: str) -> None:
        panel = self._ensure_panel()
        if panel is None:
            return
        full = decision.action is rp.Action.FULL
        ok = self._call("show", panel.show, pending.image, full, pending.label)
        with self._cond:
            if ok:
                self._state = rp.after_refresh(self._state, decision, self._clock(),
                                               digest, pending.label)
                if full:
                    self.stats.full += 1
                else:
                    self.stats.partial += 1
                self.last_frame = pending.image
            else:
                self._state = rp.after_failure(self._state)
        log.debug("panel: %s refresh (%s) state=%s ok=%s", decision.action.value,
                  decision.reason, pending.label, ok)

    def _do_sleep(self) -> None:
        panel = self._panel
        if panel is not None and self._call("sleep", panel.sleep):
            self.stats.sleeps += 1
        with self._cond:
            self._state = rp.after_sleep(self._state)

    def _call(self, what: str, fn: Callable[..., object], *args: object) -> bool:
        """Run one panel call on a helper thread; on timeout or error, abandon this
        panel object and open a new one for the next call."""
        error: list[BaseException] = []

        def target() -> None:
            try:
                fn(*args)
            except BaseException as exc:
                error.append(exc)

        helper = threading.Thread(target=target, name=f"panel-{what}", daemon=True)
        helper.start()
        helper.join(self.op_timeout)
        if helper.is_alive():
            self.stats.timeouts += 1
            log.error("panel: %s did not finish within %.0f s (BUSY pin stuck?); "
                      "abandoning it and re-initialising the panel", what, self.op_timeout)
        elif error and isinstance(error[0], ValueError):
            self.stats.failures += 1
            log.error("panel: frame refused: %s", error[0])  # the frame's fault, not the panel's
            return False
        elif error:
            self.stats.failures += 1
            log.error("panel: %s failed: %s; re-initialising the panel", what, error[0])
        else:
            return True
        self._panel = None
        self.stats.reinits += 1
        return False
