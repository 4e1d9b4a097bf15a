"""Observers of a run: functions attached to a :class:`~rotorlab.md.simulation.Simulation`
with an interval and an event, called with a :class:`RunEvent` snapshot.

>>> sim.attach(lambda ev: print(ev.step, ev.temperature), interval=100)        # every 100 steps
>>> sim.attach(save_plot, interval=10, event="frame")                         # every 10th frame
>>> mon = LiveMonitor().attach_to(sim)          # thread-safe latest state + history (apps)
>>> threading.Thread(target=sim.run).start(); ...; mon.latest.temperature; sim.stop()

Events: ``"progress"`` (every ``interval`` integrator steps), ``"frame"`` (every ``interval``
stored frames), ``"checkpoint"`` (every ``interval`` checkpoints), ``"done"`` (the run ended:
``reason`` is ``"completed"``, ``"stopped"`` or ``"interrupted"``) and ``"error"`` (the run
failed: ``error`` holds the exception; the store keeps what was written). The tqdm progress
bar is one such observer (:class:`ProgressBar`).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

__all__ = ["EVENTS", "RunEvent", "ProgressBar", "LiveMonitor"]

#: Events an observer can be attached to.
EVENTS = ("progress", "frame", "checkpoint", "done", "error")


@dataclass(frozen=True)
class RunEvent:
    """State of a run when an observer is called (all plain numbers: safe to keep).

    Attributes
    ----------
    event : str
        One of :data:`EVENTS`.
    step : int
        Integrator steps taken (equilibration included).
    total_steps : int
        Planned steps (equilibration + production).
    production_step : int
        Steps since production started (negative during equilibration).
    frames : int
        Frames in the store (committed + buffered); 0 without a store.
    time_ps : float
        Simulated production time [ps].
    temperature : float
        Kinetic temperature [K].
    potential_energy, kinetic_energy, conserved_energy : float
        [eV].
    model_deviation : float
        Latest max force deviation ε_f of an ensemble [eV/Å]; NaN otherwise.
    steps_per_second : float
        Integrator steps per wall-clock second in this call of ``run``.
    eta_s : float
        Estimated wall-clock seconds to the end of the run.
    reason : str, optional
        For ``"done"``: ``"completed"``, ``"stopped"`` or ``"interrupted"``.
    error : BaseException, optional
        For ``"error"``.
    simulation : Simulation
        The run itself (not part of equality or repr).
    """

    event: str
    step: int
    total_steps: int
    production_step: int
    frames: int
    time_ps: float
    temperature: float
    potential_energy: float
    kinetic_energy: float
    conserved_energy: float
    model_deviation: float
    steps_per_second: float
    eta_s: float
    reason: str | None = None
    error: BaseException | None = None
    simulation: Any = field(default=None, compare=False, repr=False)

    @property
    def fraction(self) -> float:
        """Progress in [0, 1]."""
        return self.step / self.total_steps if self.total_steps else 1.0

    def as_dict(self) -> dict:
        """The numbers as a dict (without the simulation and error objects)."""
        return {k: getattr(self, k) for k in (
            "event", "step", "total_steps", "production_step", "frames", "time_ps",
            "temperature", "potential_energy", "kinetic_energy", "conserved_energy",
            "model_deviation", "steps_per_second", "eta_s", "reason")}


class ProgressBar:
    """A tqdm bar (terminal or notebook) showing step, ETA and temperature.

    Parameters
    ----------
    description : str
        Bar label.
    interval : int
        Steps between updates.
    """

    def __init__(self, description: str = "MD", interval: int = 100):
        self.description = description
        self.interval = max(1, int(interval))
        self._bar = None
        self._shown = 0

    def attach_to(self, sim) -> "ProgressBar":
        """Attach to ``sim`` for progress, done and error events; returns ``self``."""
        sim.attach(self.update, interval=self.interval, event="progress")
        sim.attach(self.close, event="done")
        sim.attach(self.close, event="error")
        return self

    def _open(self, ev: RunEvent):
        from tqdm.auto import tqdm

        self._bar = tqdm(total=ev.total_steps, initial=ev.step, desc=self.description,
                         unit="step", dynamic_ncols=True, leave=True)
        self._shown = ev.step

    def update(self, ev: RunEvent) -> None:
        if self._bar is None:
            self._open(ev)
        self._bar.update(ev.step - self._shown)
        self._shown = ev.step
        self._bar.set_postfix(T=f"{ev.temperature:.0f}K", refresh=False)

    def close(self, ev: RunEvent) -> None:
        if self._bar is None:
            return
        self._bar.update(ev.step - self._shown)
        self._bar.close()
        self._bar = None


class LiveMonitor:
    """Thread-safe record of a run for apps and campaigns: the latest :class:`RunEvent`,
    a bounded history of progress snapshots, and whether the run has finished.

    Parameters
    ----------
    interval : int
        Steps between progress snapshots.
    maxlen : int
        Snapshots kept (oldest dropped).
    """

    def __init__(self, interval: int = 50, maxlen: int = 10_000):
        self.interval = max(1, int(interval))
        self._lock = threading.Lock()
        self._history: deque = deque(maxlen=int(maxlen))
        self._latest: RunEvent | None = None
        self._finished = threading.Event()
        self.reason: str | None = None
        self.error: BaseException | None = None
        self.started = time.time()

    def attach_to(self, sim) -> "LiveMonitor":
        """Attach to ``sim`` (progress, frame, done, error); returns ``self``."""
        sim.attach(self._record, interval=self.interval, event="progress")
        sim.attach(self._record, event="frame")
        sim.attach(self._end, event="done")
        sim.attach(self._end, event="error")
        return self

    def _record(self, ev: RunEvent) -> None:
        snap = ev.as_dict()
        with self._lock:
            self._latest = ev
            if ev.event == "progress":
                self._history.append(snap)

    def _end(self, ev: RunEvent) -> None:
        with self._lock:
            self._latest = ev
            self.reason = ev.reason if ev.event == "done" else "error"
            self.error = ev.error
        self._finished.set()

    @property
    def latest(self) -> RunEvent | None:
        """The most recent event (None before the first)."""
        with self._lock:
            return self._latest

    def history(self) -> list[dict]:
        """Progress snapshots so far (copies)."""
        with self._lock:
            return list(self._history)

    @property
    def finished(self) -> bool:
        return self._finished.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the run has ended (True) or ``timeout`` seconds passed (False)."""
        return self._finished.wait(timeout)
