"""bounded_output — the output activation cannot reach the targets.

Looks at: the model's last leaf module (ReLU, Softplus, Sigmoid, Tanh, ReLU6, … and the
    interval it maps into), the outputs' range over the run (``outputs/min``, ``max``), the
    sampled real-valued targets over an evenly thinned set of steps, and the share of late
    outputs pinned at the bound; for ``BCEWithLogitsLoss`` the bound is mapped through the
    sigmoid the loss applies (a ReLU before it keeps every probability ≥ 0.5).
Fires when: the outputs stay inside the module's interval (so it is what produced them) and
    ≥ 10 % of the targets lie outside it (beyond 1 % of the targets' range): error, warning
    from 5 %. Without such a module, a data-only warning when outputs never went below 0,
    ≥ 5 % of late outputs are exactly 0 and ≥ 10 % of the targets are negative (a ReLU or
    clamp in ``forward``). Class-index targets are not checked.
Evidence: the module and its interval, the outputs' observed range, the share of targets
    out of reach and their range, the share of outputs stuck at the bound.
Fix: make the output layer linear (drop the final activation), or choose one whose range
    covers the targets, or rescale the targets into the activation's range.
"""

from __future__ import annotations

import math

import numpy as np

from analysis import batch_metrics as M
from analysis.detectors import _data as D
from analysis.detectors._registry import detector
from analysis.findings import Finding
from analysis.naming import module_label
from analysis.trace import Trace

CODE = "bounded_output"


def _sigmoid(v: float | None, default: float) -> float:
    return default if v is None else 1.0 / (1.0 + math.exp(-v))


@detector(code=CODE, kind="cause", requires=("outputs", "targets/sample"))
def detect(trace: Trace) -> Finding | None:
    if D.target_kind(trace) != "dense":
        return None
    cls = D.loss_class(trace)
    if cls in ("CrossEntropyLoss", "NLLLoss", "KLDivLoss", "MultiLabelSoftMarginLoss"):
        return None
    out_lo = M.nanmin(D.column(trace, "outputs", "min"))
    out_hi = M.nanmax(D.column(trace, "outputs", "max"))
    if not (np.isfinite(out_lo) and np.isfinite(out_hi)):
        return None
    last = D.last_leaf(trace)
    lo, hi, module = _bounds(last, out_lo, out_hi)
    if cls == "BCEWithLogitsLoss" and hi is not None and hi <= 1:
        return None  # probabilities into a logit loss: double_softmax's finding
    rows = D.thin(trace)
    targets = M.finite(D.read(trace, "targets", "sample", rows))
    if targets.size < 16:
        return None
    late_out = M.finite(D.read(trace, "outputs", "sample", D.late(trace, cap=500)))
    if module is None:
        lo, hi = (0.0, None) if out_lo >= 0 else (None, None)
        pinned = M.frac(late_out <= 0) if late_out.size else 0.0
        if lo is None or pinned < 0.05:
            return None
    t_lo, t_hi = (_sigmoid(lo, 0.0), _sigmoid(hi, 1.0)) if cls == "BCEWithLogitsLoss" else (lo, hi)
    margin = 0.01 * float(np.ptp(targets)) + 1e-12
    below = M.frac(targets < t_lo - margin) if t_lo is not None else 0.0
    above = M.frac(targets > t_hi + margin) if t_hi is not None else 0.0
    out_of_reach = below + above
    if out_of_reach < (0.05 if module else 0.1):
        return None
    pinned = _pinned(late_out, lo, hi)
    if module is not None:
        sev = "error" if out_of_reach >= 0.1 else "warning"
        conf = 0.75 + 0.2 * min(out_of_reach / 0.5, 1.0) if sev == "error" else 0.6
    else:
        sev, conf = "warning", 0.55 + 0.2 * min(out_of_reach / 0.5, 1.0)
    span = D.step_span(trace)
    interval = f"[{_b(lo, '−∞')}, {_b(hi, '∞')}]"
    where = (f"the last module {module_label(trace, module[0])} is nn.{module[1]}, so outputs lie in "
             f"{interval}" if module else
             f"the outputs never went below 0 and {pinned:.0%} of late outputs are exactly 0 "
             "(a ReLU or clamp)")
    side = (f"{below:.0%} of sampled targets lie below {_b(t_lo, '')}" if below >= above else
            f"{above:.0%} of sampled targets lie above {_b(t_hi, '')}")
    evidence = (f"{where} (observed {M.fmt(out_lo)} to {M.fmt(out_hi)} over steps {span[0]}–{span[1]}), but "
                f"{side} (targets range {M.fmt(float(targets.min()))} to {M.fmt(float(targets.max()))})")
    if cls == "BCEWithLogitsLoss":
        evidence += f"; {cls} applies a sigmoid, so the predicted probability stays in [{_b(t_lo, '0')}, " \
                    f"{_b(t_hi, '1')}]"
    if module and pinned >= 0.05:
        evidence += f"; {pinned:.0%} of late outputs sit at the bound"
    fix = _fix(trace, module, cls, targets)
    return Finding(code=CODE, kind="cause", severity=sev, confidence=conf, steps=span,
                   layer=module[0] if module else None,
                   title="The output activation cannot reach the targets", evidence=evidence, fix=fix)


def _bounds(last: tuple[str, str] | None, out_lo: float, out_hi: float
            ) -> tuple[float | None, float | None, tuple[str, str] | None]:
    """The last module's interval when the recorded outputs respect it (so it produced them)."""
    if not last or last[1] not in M.ACTIVATION_BOUNDS:
        return None, None, None
    lo, hi = M.ACTIVATION_BOUNDS[last[1]]
    if lo is None and hi is None:
        return None, None, None
    tol = 1e-4
    if (lo is not None and out_lo < lo - tol) or (hi is not None and out_hi > hi + tol):
        return None, None, None
    return lo, hi, last


def _pinned(values: np.ndarray, lo: float | None, hi: float | None) -> float:
    if not values.size:
        return 0.0
    width = (hi - lo) if lo is not None and hi is not None else 1.0
    tol = 0.01 * width
    near = np.zeros(values.shape, bool)
    if lo is not None:
        near |= values <= lo + tol
    if hi is not None:
        near |= values >= hi - tol
    return M.frac(near)


def _b(v: float | None, default: str) -> str:
    return default if v is None else M.fmt(v)


def _fix(trace: Trace, module: tuple[str, str] | None, cls: str | None, targets: np.ndarray) -> str:
    t_lo, t_hi = M.fmt(float(targets.min())), M.fmt(float(targets.max()))
    if module is None:
        return ("remove the ReLU/clamp applied to the output in forward() so the last layer is linear, or "
                f"shift the targets (range {t_lo} to {t_hi}) into what the output can produce")
    if cls == "BCEWithLogitsLoss":
        return (f"remove the final nn.{module[1]} ({module_label(trace, module[0])}): BCEWithLogitsLoss "
                "needs raw logits of both signs")
    return (f"remove the final nn.{module[1]} ({module_label(trace, module[0])}) so the output layer is "
            f"linear, or rescale the targets (range {t_lo} to {t_hi}) into its range")
