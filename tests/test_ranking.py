"""Ranking by mechanism and time: the table in analysis/mechanisms.py and the onsets decide."""

from __future__ import annotations

import json

import numpy as np

from analysis.detectors import REGISTRY
from analysis.findings import Finding, Report
from analysis.mechanisms import PRODUCES
from analysis.ranking import RunFacts, rank


def _f(code: str, kind: str = "cause", severity: str = "error", conf: float = 0.8,
       steps: tuple[int, int] = (0, 999)) -> Finding:
    return Finding(code, kind, severity, conf, list(steps), None, code, "evidence", "fix")


def _facts(n: int = 1000, bad_from: int | None = None) -> RunFacts:
    loss = np.linspace(2.0, 0.3, n)
    if bad_from is not None:
        loss[bad_from:] = np.nan
    return RunFacts(steps=np.arange(n), loss=loss)


def test_the_table_names_only_known_codes_and_causes_produce():
    known = set(REGISTRY) | set(PRODUCES)
    for cause, codes in PRODUCES.items():
        assert cause not in codes
        assert set(codes) <= known | {"loss_spike", "data_outlier", "undertrained", "missing_classes"}
    for code in PRODUCES:
        if code in REGISTRY:
            assert REGISTRY[code].kind == "cause" and REGISTRY[code].produces == PRODUCES[code]


def test_a_cause_ranks_above_the_consequence_its_mechanism_produces():
    # the consequence is more severe and surer, but the learning rate came first and explains it
    lr = _f("lr_too_high", severity="warning", conf=0.5, steps=(0, 999))
    sat = _f("saturated_activations", severity="error", conf=0.9, steps=(2, 999))
    out = rank([sat, lr], _facts())
    assert [f.code for f in out] == ["lr_too_high", "saturated_activations"]
    assert out[0].explains == ["saturated_activations"] and out[1].explained_by == ["lr_too_high"]


def test_the_later_of_two_mutual_explanations_is_the_consequence():
    # each can produce the other's evidence: the earlier onset wins
    outlier = _f("data_outlier", severity="warning", conf=0.6, steps=(3100, 3102))
    upd = _f("lr_too_high", severity="error", conf=0.9, steps=(3101, 3102))
    out = rank([upd, outlier], _facts(4000, bad_from=3103))
    assert out[0].code == "data_outlier" and out[1].explained_by == ["data_outlier"]


def test_a_property_the_run_trained_well_with_does_not_explain_a_late_blow_up():
    inputs = _f("unnormalized_inputs", severity="error", conf=0.9, steps=(0, 3102))
    blow = _f("exploding_gradients", severity="warning", conf=0.6, steps=(3100, 3102))
    div = _f("loss_diverging", kind="symptom", steps=(3100, 3102))
    out = rank([inputs, div, blow], _facts(4000, bad_from=3103))
    assert [f.code for f in out] == ["exploding_gradients", "unnormalized_inputs", "loss_diverging"]
    assert inputs.explains == [] and div.explained_by == ["exploding_gradients"]
    assert inputs.severity == "error"  # kept at its own severity, ranked below


def test_without_a_healthy_stretch_an_early_cause_still_explains():
    inputs = _f("unnormalized_inputs", severity="error", conf=0.9, steps=(0, 300))
    blow = _f("exploding_gradients", severity="error", conf=0.9, steps=(150, 300))
    out = rank([blow, inputs], _facts(400, bad_from=301))
    assert out[0].code == "unnormalized_inputs" and out[0].explains == ["exploding_gradients"]


def test_a_cause_with_a_later_onset_does_not_explain_an_earlier_finding():
    dead = _f("dead_relu", severity="error", conf=0.9, steps=(0, 999))
    lr = _f("lr_too_high", severity="warning", conf=0.6, steps=(700, 999))
    stuck = RunFacts(steps=np.arange(1000), loss=np.full(1000, 2.0))  # never trained well
    out = rank([lr, dead], stuck)
    assert out[0].code == "dead_relu" and lr.explains == []


def test_json_carries_related_and_notes_and_every_contract_key():
    a, b = _f("large_init", steps=(0, 999)), _f("dead_relu", steps=(0, 999))
    rep = Report("run.h5", 1000, rank([b, a], _facts()), notes=["x: needs outputs, which this trace lacks"])
    obj = json.loads(json.dumps(rep.to_json()))
    assert obj["notes"] == ["x: needs outputs, which this trace lacks"]
    first = obj["findings"][0]
    assert set(first) == {"code", "kind", "severity", "confidence", "steps", "layer", "title", "evidence",
                          "fix", "related"}
    assert first["code"] == "large_init"
    assert first["related"] == {"explains": ["dead_relu"], "explained_by": []}
    assert obj["findings"][1]["related"] == {"explains": [], "explained_by": ["large_init"]}
