"""Order findings: causes before symptoms, surest and most severe first; link symptoms to causes."""

from __future__ import annotations

from analysis.findings import SEVERITY_ORDER, Finding

# Which symptoms each cause can produce: used to link them in the report and the app.
EXPLAINS: dict[str, tuple[str, ...]] = {
    "double_softmax": ("loss_plateau", "constant_prediction", "softmax_saturation"),
    "lr_too_high": ("loss_diverging", "nonfinite", "loss_plateau", "output_collapse",
                    "constant_prediction", "softmax_saturation"),
    "lr_too_low": ("loss_plateau",),
    "exploding_gradients": ("loss_diverging", "nonfinite", "softmax_saturation"),
    "vanishing_gradients": ("loss_plateau", "output_collapse", "constant_prediction"),
    "large_init": ("softmax_saturation", "loss_plateau", "constant_prediction", "nonfinite"),
    "dominant_bias": ("constant_prediction", "output_collapse", "loss_plateau"),
    "symmetric_init": ("output_collapse", "loss_plateau", "constant_prediction"),
    "dead_relu": ("output_collapse", "loss_plateau", "constant_prediction"),
    "saturated_activations": ("loss_plateau", "output_collapse"),
    "bounded_output": ("loss_plateau", "constant_prediction", "output_collapse"),
    "unnormalized_inputs": ("loss_plateau", "loss_diverging", "constant_prediction"),
    "constant_targets": ("loss_zero_early", "constant_prediction", "output_collapse"),
    "class_imbalance": ("constant_prediction", "loss_plateau"),
    "label_leakage": ("loss_zero_early",),
    "over_regularization": ("loss_plateau", "output_collapse", "constant_prediction"),
    "frozen_weights": ("loss_plateau", "output_collapse", "constant_prediction"),
    "missing_zero_grad": ("loss_diverging", "loss_plateau", "nonfinite"),
    "broadcast_loss": ("output_collapse", "loss_plateau", "constant_prediction"),
    "constant_inputs": ("output_collapse", "constant_prediction", "loss_plateau"),
}


def _key(f: Finding) -> tuple:
    return (f.kind != "cause", SEVERITY_ORDER[f.severity], -f.confidence, f.steps[0], f.code)


def rank(findings: list[Finding]) -> list[Finding]:
    """Causes first (severity, then confidence, then earliest), then symptoms; fill ``related``."""
    codes = {f.code for f in findings}
    for f in findings:
        if f.kind == "cause":
            f.related = [c for c in EXPLAINS.get(f.code, ()) if c in codes]
        else:
            f.related = [c for c, syms in EXPLAINS.items() if f.code in syms and c in codes]
    return sorted(findings, key=_key)
