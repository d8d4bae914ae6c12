"""How often the expensive statistics are taken: a cost budget, a dense start, a flight recorder.

The recorder times itself. Every ``rec.step`` call adds ``budget × (training time of the
step)`` to a credit and spends what the recorder itself cost (the call, its hooks, its
optimizer hooks). A step is *measured* (parameter, activation and update statistics) when
the credit covers the estimated cost of a measurement; the cheap statistics (loss,
learning rates, grad probe, batch summaries) are recorded at every row regardless. So a
slow model gets every step measured, a fast one every k-th, and the recorder's share of
the wall time stays near ``budget``.

Outside the budget: the first ``dense_start`` steps are measured in full, and so are the
``flight_steps`` steps after anything alarming (a non-finite or spiking loss, a jump of
the gradient norm between two measured rows): the *flight recorder*. A loss that climbs
out of its recent range, the usual lead-up to a NaN, triggers it as well, so the steps
before the NaN are measured in full too. A flight triggered by the loss of step ``i``
measures the parameters of step ``i`` itself (they are read at ``rec.step``); its
activations were taken in the forward pass, before the loss was known.
"""

from __future__ import annotations

import math
from collections import deque

PARAMS, MODULES, UPDATE = 1, 2, 4  # bits of steps/measured (see recorders.schema)
ALL = PARAMS | MODULES | UPDATE
RING = 32  # recent losses the watch compares against
EMA = 0.2


class Cadence:
    """Decides which statistic groups each step measures, from the recorder's own cost."""

    def __init__(self, budget: float, dense_start: int, flight_steps: int, update_every: int) -> None:
        self.budget = budget
        self.full = budget >= 1.0
        self.dense_start = dense_start
        self.flight_steps = flight_steps
        self.update_every = update_every
        self.credit = 0.0
        self.flight_credit = 0.0  # a second budget, for flights set off by finite values
        self.measure_cost: float | None = None  # seconds a measured step adds (EMA)
        self.cheap_cost: float | None = None  # seconds of an unmeasured step (EMA)
        self.flight_until = -1
        self.flights = 0
        self.measured_rows = 0
        self.losses: deque[float] = deque(maxlen=RING)
        self.alarm_level = math.inf
        self._seen = 0
        self.last_gnorm = math.nan
        self._last_in: float | None = None
        self._last_cost = 0.0
        self._last_charged = True

    # ------------------------------------------------------------------ decisions

    def dense(self, i: int) -> bool:
        return self.full or i < self.dense_start or i <= self.flight_until

    def plan(self, i: int) -> int:
        """Groups to measure at step ``i`` (decided before its forward pass)."""
        if self.dense(i) or self.measure_cost is None:
            flags = ALL
        elif self.credit >= self.measure_cost:
            flags = ALL
        else:
            return 0
        if self.measured_rows % self.update_every:
            flags &= ~UPDATE
        return flags

    def watch_loss(self, i: int, value: float) -> bool:
        """Feed the loss of step ``i``; True when it starts a flight (non-finite, spike, climb).

        O(1) per step: the alarm level (10 median absolute deviations above the median of
        the last losses, and above their maximum) is refreshed every 8 losses."""
        if not math.isfinite(value):
            return self.start_flight(i, forced=True)
        alarm = value > self.alarm_level
        self.note_loss(value)
        if alarm:
            return self.start_flight(i)
        return False

    def note_loss(self, value: float) -> None:
        """A finite loss below the alarm level, into the ring."""
        self.losses.append(value)
        self._seen += 1
        if self._seen % 8 == 0:
            self._refresh_alarm()

    def _refresh_alarm(self) -> None:
        if len(self.losses) < 8:
            return
        ordered = sorted(self.losses)
        med = ordered[len(ordered) // 2]
        mad = sorted(abs(v - med) for v in ordered)[len(ordered) // 2]
        spread = max(mad, 1e-3 * abs(med), 1e-12)
        self.alarm_level = max(med + 10.0 * spread, ordered[-1] + 2.0 * spread)

    def watch_grad_norm(self, i: int, total: float) -> None:
        """Feed the total gradient norm of a measured step: a 10× jump starts a flight."""
        prev, self.last_gnorm = self.last_gnorm, total
        if not math.isfinite(total):
            self.start_flight(i, forced=True)
        elif math.isfinite(prev) and prev > 0 and total > 10.0 * prev:
            self.start_flight(i)

    def start_flight(self, i: int, forced: bool = False) -> bool:
        """Measure steps ``i .. i + flight_steps`` in full. A flight is charged to the budget
        (later steps pay it back). One set off by a finite value also needs the flight credit,
        which earns the budget's rate up to one flight's cost: a noisy loss cannot keep the
        recorder in full detail. Non-finite values always fly."""
        if not forced and self.measure_cost is not None and not self.full:
            if self.flight_credit < 0:
                return False
            self.flight_credit -= self.flight_steps * self.measure_cost
        if i > self.flight_until:
            self.flights += 1
        self.flight_until = max(self.flight_until, i + self.flight_steps)
        return True

    # ------------------------------------------------------------------ accounting

    def enter(self, now: float) -> None:
        """At the start of a ``rec.step`` call: earn credit for the training time since the last."""
        if self._last_in is not None:
            train = max(now - self._last_in - self._last_cost, 0.0)
            self.credit += self.budget * train
            cap = self.flight_steps * (self.measure_cost or 0.0)
            self.flight_credit = min(self.flight_credit + self.budget * train, cap)
            if self._last_charged:
                self.credit -= self._last_cost
            if self.measure_cost is not None:
                self.credit = min(self.credit, 2.0 * self.measure_cost)
        self._last_in = now

    def fast_row(self, i: int, t_in: float, t_out: float, value: float) -> int:
        """An unmeasured typical step ``i`` in one call, the same as ``enter(t_in)``,
        ``note_loss(value)``, ``leave(i, t_out - t_in, 0)`` and then ``plan(i + 1)`` (its
        return value): the recorder's fast path calls this once per step."""
        last_in, cost = self._last_in, t_out - t_in
        budget, measure = self.budget, self.measure_cost
        if last_in is not None:  # enter
            train = max(t_in - last_in - self._last_cost, 0.0)
            earned = budget * train
            self.credit += earned
            self.flight_credit = min(self.flight_credit + earned, self.flight_steps * (measure or 0.0))
            if self._last_charged:
                self.credit -= self._last_cost
            if measure is not None:
                self.credit = min(self.credit, 2.0 * measure)
        self._last_in = t_in
        self.losses.append(value)  # note_loss
        self._seen += 1
        if self._seen % 8 == 0:
            self._refresh_alarm()
        self._last_cost = cost  # leave
        self._last_charged = not (self.full or i < self.dense_start)
        old = self.cheap_cost
        self.cheap_cost = cost if old is None else (1 - EMA) * old + EMA * cost
        return self.plan(i + 1)

    def leave(self, i: int, cost: float, flags: int, typical: bool = True, setup: bool = False) -> None:
        """At the end of step ``i``'s call: what it cost (hooks included) and what it measured.
        A step that is not ``typical`` (it took histograms) is charged but does not teach the
        cost estimates; the ``setup`` step (it created the file's layout) is neither: its
        cost belongs with opening the recorder."""
        self._last_cost = cost
        if flags & (PARAMS | MODULES):
            self.measured_rows += 1
        if setup or not typical:
            self._last_charged = not (setup or self.full or i < self.dense_start)
            return
        # The dense start is outside the budget; flights are paid back by later steps.
        self._last_charged = not (self.full or i < self.dense_start)
        if flags & (PARAMS | MODULES):
            extra = cost - (self.cheap_cost or 0.0)
            old = self.measure_cost
            self.measure_cost = extra if old is None else (1 - EMA) * old + EMA * extra
        else:
            self.cheap_cost = cost if self.cheap_cost is None else (1 - EMA) * self.cheap_cost + EMA * cost
