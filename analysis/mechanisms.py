"""Causal knowledge, declared as data in this one place: what each cause's mechanism produces.

``PRODUCES[a]`` lists the codes (causes or symptoms) whose evidence cause ``a`` brings
about when it acts: a learning rate that overshoots kills ReLUs, saturates tanh units
and explodes gradients; a huge init saturates and kills units from step 0; one corrupt
batch blows up the gradient at its step. ``analysis.ranking`` reads only this table
(plus each finding's onset) to decide which finding explains which: there are no
pairwise rules anywhere else. A detector's ``Detector.produces`` is its row here.

Add a row (or codes to a row) when a mechanism can produce another finding's evidence;
keep rows honest: "can bring about", not "is often seen with".
"""

from __future__ import annotations

SYMPTOMS_OF_NO_LEARNING = ("loss_plateau", "output_collapse", "constant_prediction")
BLOW_UP = ("loss_diverging", "nonfinite", "loss_spike")

PRODUCES: dict[str, tuple[str, ...]] = {
    "double_softmax": SYMPTOMS_OF_NO_LEARNING + ("softmax_saturation", "vanishing_gradients", "lr_too_low"),
    "lr_too_high": BLOW_UP + SYMPTOMS_OF_NO_LEARNING + (
        "softmax_saturation", "dead_relu", "saturated_activations", "exploding_gradients"),
    "lr_too_low": ("loss_plateau", "undertrained"),
    # … and a net that one huge step killed predicts a constant from then on.
    "exploding_gradients": BLOW_UP + SYMPTOMS_OF_NO_LEARNING + (
        "softmax_saturation", "dead_relu", "saturated_activations"),
    "vanishing_gradients": SYMPTOMS_OF_NO_LEARNING + ("lr_too_low", "undertrained"),
    "large_init": BLOW_UP + SYMPTOMS_OF_NO_LEARNING + (
        "softmax_saturation", "dead_relu", "saturated_activations", "exploding_gradients",
        "vanishing_gradients"),
    "dominant_bias": SYMPTOMS_OF_NO_LEARNING + ("softmax_saturation",),
    "symmetric_init": SYMPTOMS_OF_NO_LEARNING + (
        "dead_relu", "vanishing_gradients", "frozen_weights", "lr_too_low"),
    "dead_relu": SYMPTOMS_OF_NO_LEARNING + ("vanishing_gradients",),
    "saturated_activations": SYMPTOMS_OF_NO_LEARNING + ("vanishing_gradients",),
    "bounded_output": SYMPTOMS_OF_NO_LEARNING + ("vanishing_gradients",),
    "unnormalized_inputs": BLOW_UP + SYMPTOMS_OF_NO_LEARNING + (
        "exploding_gradients", "dead_relu", "saturated_activations", "lr_too_high"),
    "constant_targets": ("loss_zero_early", "constant_prediction", "output_collapse", "class_imbalance",
                         "missing_classes"),
    "class_imbalance": ("constant_prediction", "loss_plateau", "output_collapse"),
    "label_leakage": ("loss_zero_early",),
    "over_regularization": SYMPTOMS_OF_NO_LEARNING + ("lr_too_low", "undertrained"),
    # A parameter outside the optimiser is never zeroed by opt.zero_grad(): its gradient piles up.
    # … and a network that trains with part of itself frozen learns slowly: still falling at the end.
    "frozen_weights": SYMPTOMS_OF_NO_LEARNING + ("missing_zero_grad", "lr_too_low", "undertrained"),
    "missing_zero_grad": BLOW_UP + ("loss_plateau", "lr_too_high", "exploding_gradients", "dead_relu",
                                    "saturated_activations"),
    "broadcast_loss": SYMPTOMS_OF_NO_LEARNING,
    "constant_inputs": SYMPTOMS_OF_NO_LEARNING,
    # One batch far outside the rest: a huge gradient, a huge step, the units it kills.
    "data_outlier": BLOW_UP + SYMPTOMS_OF_NO_LEARNING + (
        "exploding_gradients", "lr_too_high", "dead_relu", "saturated_activations", "unnormalized_inputs",
        "softmax_saturation"),
    # Sorted batches: whole stretches without some classes (a run cut mid-epoch ends without them).
    "unshuffled_data": ("loss_spike", "loss_plateau", "constant_prediction", "class_imbalance",
                        "missing_classes"),
    "overfitting": ("loss_zero_early",),
    # log(0) = -inf in the loss: its gradient is NaN/Inf in every layer at once.
    "unstable_loss": BLOW_UP + ("exploding_gradients",),
    "undertrained": (),
    # The model forgets the classes it no longer sees: the validation loss (all classes) rises
    # while the training loss falls.
    "missing_classes": ("class_imbalance", "overfitting"),
    "rank_divergence": BLOW_UP,
}


def produces(code: str) -> tuple[str, ...]:
    """The codes whose evidence ``code``'s mechanism can bring about (empty for symptoms)."""
    return PRODUCES.get(code, ())
