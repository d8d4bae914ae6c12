"""overfitting — the training loss keeps falling while the validation loss turns and rises.

Looks at:   a validation loss logged with ``rec.log`` (``val_loss``, else a logged scalar
            named like ``val…loss`` / ``valid…loss`` / ``eval…loss``) and the training loss
            over the steps that led up to each validation point.
Fires when: after its minimum the validation loss ends ≥ 20 % above it (warning; error from
            50 %; info from 10 %), giving back ≥ 10 % of what it had gained (info from 5 %;
            error needs 25 % or a doubling) and by more than 3x its own point-to-point wobble
            (a loss wobbling near zero does not count), while the
            training loss fell further over the same steps; or the validation loss stopped
            improving while the training loss fell ≥ 100x more and ends ≥ 100x below it
            (the model memorised its training set: warning; error from a 1000x gap; info
            from 10x).
Evidence:   the validation minimum and its step, the final validation loss, the training
            loss at both points.
Onset:      the first validation point after the last one on the validation floor (where the
            rise is first seen); for a memorised training set, where the validation loss had
            made 90 % of its improvement
Fix:        keep the checkpoint from the validation minimum (early stopping on
            ``val_loss``); add data or augmentation, weight decay or dropout, or a smaller
            model.
"""

from __future__ import annotations

import re

import numpy as np

from analysis.detectors._optim import context, fmt
from analysis.detectors._registry import detector
from analysis.findings import Finding
from analysis.metrics import quiet
from analysis.trace import Trace

CODE = "overfitting"
_NAME = re.compile(r"^(val|valid|validation|eval|dev|test)[_/ .-]?(loss|nll|ce)$", re.I)


def val_name(trace: Trace) -> str | None:
    names = trace.scalar_names()
    if "val_loss" in names:
        return "val_loss"
    return next((n for n in names if _NAME.match(n)), None)


def _train_at(trace: Trace, vsteps: np.ndarray) -> np.ndarray:
    """Median training loss over the steps since the previous validation point, per point."""
    loss = context(trace).loss
    steps = trace.steps
    rows = np.searchsorted(steps, vsteps, side="right")
    out = np.full(len(vsteps), np.nan)
    prev = 0
    for i, r in enumerate(rows.tolist()):
        lo = max(prev, r - 200) if r > prev else max(0, r - 1)
        seg = loss[lo:max(r, 1)]
        seg = seg[np.isfinite(seg)]
        out[i] = float(np.median(seg)) if len(seg) else np.nan
        prev = r
    return out


def _tier(value: float, warn: float, err: float, info: float) -> str | None:
    if value >= err:
        return "error"
    if value >= warn:
        return "warning"
    return "info" if value >= info else None


@detector(code=CODE, kind="cause", requires=("steps/loss", "scalars"))
@quiet
def detect(trace: Trace) -> Finding | None:
    name = val_name(trace)
    if name is None:
        return None
    vsteps, v = trace.scalar(name)
    ok = np.isfinite(v) & (vsteps <= int(trace.steps[-1]))
    vsteps, v = vsteps[ok], v[ok]
    if len(v) < 4 or not (v > 0).all():
        return None
    tr = _train_at(trace, vsteps)
    # Lightly smoothed (median of 3) so one noisy point is neither the minimum nor the turn.
    sm = np.array([np.median(v[max(0, i - 1):i + 2]) for i in range(len(v))])
    i_min = int(np.argmin(sm))
    v_min = float(sm[i_min])
    tail = max(2, len(v) // 10)
    v_end = float(np.median(v[-tail:]))
    tr_end = float(np.nanmedian(tr[-tail:]))
    noise = float(np.median(np.abs(v - sm)))  # point-to-point wobble around the smoothed curve
    found = _rising(v, sm, i_min, v_min, v_end, tr, tr_end, noise)
    if found is None:
        found = _memorised(v, sm, v_end, tr, tr_end)
    if found is None:
        return None
    sev, onset, text, title = found
    s0 = int(vsteps[onset])
    low = int(np.argmin(v))
    evidence = (f"{name} {fmt(float(v[0]))} at step {int(vsteps[0])}, lowest {fmt(float(v[low]))} at step "
                f"{int(vsteps[low])} (training loss {fmt(float(tr[low]))} there), {fmt(v_end)} at the end "
                f"(training loss {fmt(tr_end)}): {text}")
    return Finding(
        code=CODE, kind="cause", severity=sev, confidence={"error": 0.9, "warning": 0.75, "info": 0.4}[sev],
        steps=[s0, int(trace.steps[-1])], layer=None, title=title, evidence=evidence,
        fix=(f"keep the weights from step {int(vsteps[low])} (early stopping on {name}); then regularise: "
             "more data or augmentation, weight decay, dropout, or a smaller model"),
        marks={"onset": s0, "events": [s0], "lane": name, "views": ["timeline"],
               "hlines": [{"lane": name, "y": float(v[low]), "label": f"{name} minimum"}]},
    )


def _rising(v, sm, i_min, v_min, v_end, tr, tr_end, noise):  # noqa: PLR0913
    """The validation loss turned and rose while training loss kept falling."""
    if i_min >= len(v) - 2 or v_min <= 0:
        return None
    rise = v_end / v_min - 1
    gave_back = (v_end - v_min) / max(float(sm[0]) - v_min, 1e-12)
    if not (v_end - v_min > 3 * noise) or not (tr_end < 0.9 * tr[i_min]) or gave_back < 0.05:
        return None
    sev = _tier(rise, 0.2, 0.5, 0.1)
    if sev is None:
        return None
    if gave_back < 0.1:  # near its floor: a rise that costs little of what training gained
        sev = "info"
    elif gave_back < 0.25 and sev == "error" and rise < 1.0:
        sev = "warning"
    text = (f"after its minimum the validation loss rose {rise:.0%} while the training loss fell "
            f"{fmt(tr[i_min] / tr_end)}x more")
    # The turn: the first point after the last one still on the floor (within 2 wobbles or 2 %
    # of the gain of the minimum): where the rise is first seen.
    band = v_min + max(2 * noise, 0.02 * (float(sm[0]) - v_min))
    on_floor = np.flatnonzero(sm[: len(v)] <= band)
    turn = min(int(on_floor[-1]) + 1 if len(on_floor) else i_min + 1, len(v) - 1)
    return sev, turn, text, f"Validation loss rose {rise:.0%} above its minimum while training loss fell"


def _memorised(v, sm, v_end, tr, tr_end):
    """The validation loss stopped improving while training loss fell by orders of magnitude."""
    start, best = float(sm[0]), float(np.min(sm))
    # The point where the validation loss had made 90 % of its improvement: it turned flat there.
    onset = int(np.argmax(sm <= best + 0.1 * max(start - best, 0.0)))
    if not (v_end >= 0.95 * sm[onset]) or not np.isfinite(tr[onset]) or tr_end <= 0:
        return None
    fell, gap = float(tr[onset] / tr_end), float(v_end / tr_end)
    sev = _tier(gap, 100, 1000, 10)
    if sev is None or (sev != "info" and fell < 100) or fell < 10:
        return None
    text = (f"the validation loss stopped improving while the training loss fell {fmt(fell)}x more, to "
            f"{fmt(gap)}x below it: the model memorised its training set")
    title = f"Training loss fell to {fmt(tr_end)} while validation loss stayed at {fmt(v_end)}"
    return sev, onset, text, title
