"""double_softmax — probabilities fed to a loss that applies its own softmax or sigmoid.

Looks at: the outputs passed to ``rec.step`` (``frac_in_01``, ``row_sum_mean/std``, ``min``,
    ``max`` per step), the loss class in ``meta.loss``, the model's last leaf module, and
    the recorded loss against the least value that loss can take on probabilities.
Fires when: on ≥ 98 % of steps every output lies in [0, 1] (and, with ≥ 2 columns, every row
    sums to 1: a softmax), the loss is CrossEntropyLoss / BCEWithLogitsLoss /
    MultiLabelSoftMarginLoss (they apply softmax/sigmoid themselves) or NLLLoss / KLDivLoss
    (they expect log-probabilities), and the recorded loss agrees: it never drops below
    ``log(1 + (C−1)/e)`` (CE on probabilities) or ``log(1 + 1/e)`` (BCE-with-logits on
    probabilities), or stays ≤ 0 (NLLLoss on probabilities). Error. Without recorded
    outputs, a last Softmax/Sigmoid module feeding such a loss is a warning.
Evidence: the row sums and range of the outputs and over which steps, the loss class, the
    floor and the lowest recorded loss, the Softmax/Sigmoid module.
Fix: remove the final Softmax/Sigmoid (module or ``F.softmax`` in ``forward``) and pass logits;
    apply softmax/sigmoid only for inference. With NLLLoss use LogSoftmax instead.
"""

from __future__ import annotations

import numpy as np

from analysis import batch_metrics as M
from analysis.detectors import _data as D
from analysis.detectors._registry import detector
from analysis.findings import Finding
from analysis.trace import Trace

CODE = "double_softmax"
PROB_MODULES = ("Softmax", "Sigmoid", "Softmax2d", "Hardsigmoid")


@detector(code=CODE, kind="cause")
def detect(trace: Trace) -> Finding | None:
    cls = D.loss_class(trace)
    last = D.last_leaf(trace)
    if D.has(trace, "outputs", "frac_in_01"):
        return _from_outputs(trace, cls, last)
    return _from_model(trace, cls, last)


def _module_fix(last: tuple[str, str] | None, cls: str | None) -> tuple[str, str | None]:
    if last and last[1] in PROB_MODULES:
        where = f"the final nn.{last[1]} (module `{last[0]}`)"
        layer = last[0]
    else:
        where, layer = "the softmax/sigmoid applied at the end of forward()", None
    if cls in M.LOGPROB_LOSSES:
        return (f"replace {where} with nn.LogSoftmax(dim=1), or drop it and use CrossEntropyLoss on the "
                f"logits; {cls} expects log-probabilities"), layer
    what = "log_softmax" if cls == "CrossEntropyLoss" else "a sigmoid"
    return (f"remove {where} and pass the logits to {cls}, which applies {what} itself; apply "
            "softmax/sigmoid only when reporting probabilities or at inference"), layer


def _from_outputs(trace: Trace, cls: str | None, last: tuple[str, str] | None) -> Finding | None:
    rsm, rss = D.column(trace, "outputs", "row_sum_mean"), D.column(trace, "outputs", "row_sum_std")
    f01 = D.column(trace, "outputs", "frac_in_01")
    mn, mx = D.column(trace, "outputs", "min"), D.column(trace, "outputs", "max")
    valid = np.isfinite(f01)
    n_valid = int(valid.sum())
    if n_valid == 0:
        return None
    cols = D.columns(trace, "outputs")
    soft = M.frac(M.softmax_rows(rsm, rss, f01, D.sum_tol(trace))[valid])
    sig = M.frac(M.unit_interval(f01, mn, mx)[valid])
    if cols >= 2 and soft >= 0.98:
        form, share = "softmax", soft
    elif sig >= 0.98:
        form, share = "sigmoid", sig
    else:
        return None
    loss = trace.loss()
    low = M.nanmin(loss)
    rows_txt = (f"rows of the outputs sum to {M.nanmedian(rsm[valid]):.4f} ± "
                f"{M.fmt(M.nanmax(rss[valid]), 2)} and " if form == "softmax" else "the outputs ")
    base = (f"{rows_txt}lie in [{M.fmt(M.nanmin(mn[valid]))}, {M.fmt(M.nanmax(mx[valid]))}] on "
            f"{share:.0%} of {n_valid} recorded steps")
    module = (f"; the last module `{last[0]}` is nn.{last[1]}" if last and last[1] in PROB_MODULES else "")
    fix, layer = _module_fix(last, cls)
    span = D.step_span(trace)
    if cls in M.LOGIT_LOSSES:
        kind = "softmax" if cls == "CrossEntropyLoss" else "sigmoid"
        floor = M.double_softmax_floor(cols, kind)
        agree = M.loss_floor_share(loss, floor)
        if not agree >= 0.99:
            return None  # the loss went below what it could reach on these outputs: not what it saw
        conf = 0.9 + (0.05 if module else 0.0) + (0.03 if n_valid >= 20 else 0.0)
        evidence = (f"{base}{module}; the loss is {cls}, which applies "
                    f"{'log_softmax' if kind == 'softmax' else 'a sigmoid'} itself, and it never fell below "
                    f"{M.fmt(floor)} — the least {cls} can give on probabilities"
                    f"{f' over {cols} columns' if kind == 'softmax' else ''} (lowest recorded {M.fmt(low)})")
        return _finding(conf, span, layer, f"Probabilities fed to {cls}, which applies its own {kind}",
                        evidence, fix)
    if cls in M.LOGPROB_LOSSES:
        if cls == "NLLLoss" and not M.frac(M.finite(loss) <= 1e-6) >= 0.99:
            return None
        evidence = (f"{base}{module}; the loss is {cls}, which expects log-probabilities"
                    + (f", and it stays ≤ 0 (lowest {M.fmt(low)}): −p of the true class, not −log p"
                       if cls == "NLLLoss" else ""))
        return _finding(0.9, span, layer, f"Probabilities fed to {cls}, which expects log-probabilities",
                        evidence, fix)
    if cls is None and form == "softmax":
        vals = M.finite(loss)
        if vals.size and M.frac((vals <= 1e-6) & (vals >= -1 - 1e-6)) >= 0.99:
            evidence = (f"{base}; no loss module was given to the recorder, but the recorded loss stays in "
                        f"[−1, 0] (lowest {M.fmt(low)}): NLL on probabilities instead of log-probabilities")
            return _finding(0.7, span, layer, "Probabilities fed to an NLL loss", evidence,
                            _module_fix(last, "NLLLoss")[0], severity="warning")
        floor = M.double_softmax_floor(cols, "softmax")
        if M.loss_floor_share(loss, floor) >= 0.99:
            evidence = (f"{base}; no loss module was given to the recorder, and the recorded loss never fell "
                        f"below {M.fmt(floor)}, the least cross-entropy gives on probabilities over {cols} "
                        "columns: if the loss is cross-entropy, it sees probabilities")
            return _finding(0.35, span, layer, "Outputs are probabilities: check the loss expects them",
                            evidence, _module_fix(last, "CrossEntropyLoss")[0], severity="info")
    return None


def _from_model(trace: Trace, cls: str | None, last: tuple[str, str] | None) -> Finding | None:
    if not last or cls is None:
        return None
    typ = last[1]
    softmax_bug = typ in ("Softmax", "Softmax2d") and (cls == "CrossEntropyLoss" or cls in M.LOGPROB_LOSSES)
    sigmoid_bug = typ in ("Sigmoid", "Hardsigmoid") and cls in M.LOGIT_LOSSES
    if not (softmax_bug or sigmoid_bug):
        return None
    fix, layer = _module_fix(last, cls)
    evidence = (f"the model's last module `{last[0]}` is nn.{typ} and the loss is {cls}; outputs were not "
                "recorded (pass outputs= to rec.step to confirm from the values)")
    return _finding(0.6, D.step_span(trace), layer, f"nn.{typ} output fed to {cls}", evidence, fix,
                    severity="warning")


def _finding(conf: float, span: list[int], layer: str | None, title: str, evidence: str, fix: str,
             severity: str = "error") -> Finding:
    return Finding(code=CODE, kind="cause", severity=severity, confidence=conf, steps=span, layer=layer,
                   title=title, evidence=evidence, fix=fix)
