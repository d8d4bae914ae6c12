"""The detector registry matches the contract's code table and every detector documents itself."""

from __future__ import annotations

import pathlib
import pkgutil
import re

import analysis.detectors as detectors
from analysis.detectors import REGISTRY

CAUSES = {
    "double_softmax", "lr_too_high", "lr_too_low", "exploding_gradients", "vanishing_gradients",
    "large_init", "dominant_bias", "symmetric_init", "dead_relu", "saturated_activations",
    "bounded_output", "unnormalized_inputs", "constant_targets", "class_imbalance", "label_leakage",
    "over_regularization", "frozen_weights", "missing_zero_grad", "broadcast_loss", "constant_inputs",
    "data_outlier", "unshuffled_data", "overfitting", "unstable_loss", "undertrained", "missing_classes",
    "rank_divergence",
}
SYMPTOMS = {
    "loss_diverging", "loss_plateau", "loss_zero_early", "output_collapse", "constant_prediction",
    "softmax_saturation", "nonfinite", "loss_spike",
}
CONTRACT = pathlib.Path(__file__).resolve().parents[2] / "shared" / "CONTRACT.md"


def test_every_contract_code_has_a_detector_of_the_right_kind():
    assert CAUSES | SYMPTOMS <= set(REGISTRY)
    for code in CAUSES:
        assert REGISTRY[code].kind == "cause", code
    for code in SYMPTOMS:
        assert REGISTRY[code].kind == "symptom", code


def test_codes_match_the_contract_file_when_present():
    if not CONTRACT.exists():
        return
    table = set(re.findall(r"^\| `([a-z_]+)` \|", CONTRACT.read_text(), flags=re.M))
    assert table == CAUSES | SYMPTOMS


def test_every_module_is_registered_under_its_name():
    modules = {m.name for m in pkgutil.iter_modules(detectors.__path__) if not m.name.startswith("_")}
    assert modules == set(REGISTRY)
    for code, det in REGISTRY.items():
        assert det.fn.__module__ == f"analysis.detectors.{code}"


def test_every_detector_documents_what_it_looks_at_when_it_fires_evidence_and_fix():
    for code, det in REGISTRY.items():
        for section in ("Looks at", "Fires when", "Evidence", "Fix"):
            assert f"{section}:" in det.doc, f"{code} docstring lacks '{section}:'"
