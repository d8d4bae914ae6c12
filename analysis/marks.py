"""How each finding's evidence is drawn: the per-code defaults of ``Finding.marks``.

Detectors set the marks only they know (the spike steps, the loss floor, the layers
involved); ``complete`` fills the rest from ``DEFAULTS`` (which heatmap metric and
timeline lane show the code, which views to render) and always sets ``onset`` to
``steps[0]`` and ``layers`` to include ``layer``. Metric keys are those of
``analysis.views_data.METRICS``; lanes are ``loss``, ``grad_norm``, ``lr`` or a
logged scalar's name.
"""

from __future__ import annotations

from typing import Any

from analysis.findings import Finding

TL, HM, LY, OUT = "timeline", "heatmap", "layer", "outputs"

DEFAULTS: dict[str, dict[str, Any]] = {
    "double_softmax": {"lane": "loss", "views": [TL, OUT]},
    "lr_too_high": {"metric": "update_ratio", "lane": "lr", "views": [TL, HM]},
    "lr_too_low": {"metric": "update_ratio", "lane": "loss", "views": [TL, HM]},
    "exploding_gradients": {"metric": "g_norm", "lane": "grad_norm", "views": [TL, HM]},
    "vanishing_gradients": {"metric": "g_norm", "lane": "grad_norm", "views": [HM, TL]},
    "large_init": {"metric": "w_norm", "lane": "loss", "views": [HM, LY]},
    "dominant_bias": {"metric": "w_norm", "lane": "loss", "views": [LY, OUT]},
    "symmetric_init": {"metric": "w_norm", "lane": "loss", "views": [LY, HM]},
    "dead_relu": {"metric": "a_dead_frac", "lane": "loss", "views": [HM, LY]},
    "saturated_activations": {"metric": "a_sat_frac", "lane": "loss", "views": [HM, LY]},
    "bounded_output": {"metric": "a_mean", "lane": "loss", "views": [OUT, TL]},
    "unnormalized_inputs": {"metric": "a_std", "lane": "loss", "views": [HM, LY]},
    "constant_targets": {"lane": "loss", "views": [OUT, TL]},
    "class_imbalance": {"lane": "loss", "views": [OUT, TL]},
    "label_leakage": {"lane": "loss", "views": [TL, OUT]},
    "over_regularization": {"metric": "w_norm", "lane": "loss", "views": [TL, HM]},
    "frozen_weights": {"metric": "update_ratio", "lane": "loss", "views": [HM, TL]},
    "missing_zero_grad": {"metric": "g_norm", "lane": "grad_norm", "views": [TL, HM]},
    "broadcast_loss": {"lane": "loss", "views": [TL, OUT]},
    "constant_inputs": {"metric": "a_std", "lane": "loss", "views": [HM, TL]},
    "loss_diverging": {"lane": "loss", "views": [TL]},
    "loss_plateau": {"lane": "loss", "views": [TL]},
    "loss_zero_early": {"lane": "loss", "views": [TL]},
    "output_collapse": {"metric": "a_std", "lane": "loss", "views": [OUT, HM]},
    "constant_prediction": {"lane": "loss", "views": [OUT, TL]},
    "softmax_saturation": {"lane": "loss", "views": [OUT, TL]},
    "nonfinite": {"metric": "p_nonfinite", "lane": "loss", "views": [TL, HM]},
}


def complete(f: Finding) -> Finding:
    """Fill ``f.marks`` with the code's defaults, the onset and the finding's layer (in place)."""
    marks = dict(DEFAULTS.get(f.code, {"lane": "loss", "views": [TL]}))
    marks.update(f.marks or {})
    marks["onset"] = int(f.steps[0])
    layers = [str(x) for x in marks.get("layers") or []]
    if f.layer and f.layer not in layers:
        layers.insert(0, f.layer)
    if layers:
        marks["layers"] = layers
    marks["events"] = sorted({int(e) for e in marks.get("events") or []})
    marks.setdefault("hlines", [])
    f.marks = marks
    return f
