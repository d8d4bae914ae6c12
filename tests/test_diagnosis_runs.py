"""Issue 7's measured misses as real small torch runs: the right cause first, its onset in range.

Each run records at the recorder's default options (a few seconds of training each);
``tests/_diagnosis_runs.py`` builds them. Asserted: the first cause, that the planted
fault's onset is found where it was planted (not step 0 for a late fault), that the
cause explains its consequences, and that the words name what a user can find.
"""

from __future__ import annotations

import json

import pytest

from analysis import analyze
from tests import _diagnosis_runs as R


def _causes(report):
    return [f for f in report.findings if f.kind == "cause"]


def _describe(report) -> str:
    return "; ".join(f"{f.code} {f.severity} {f.steps}" for f in report.findings)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("diag")
    cache: dict[str, tuple] = {}

    def get(name: str):
        if name not in cache:
            path, planted = getattr(R, name)(str(folder / f"{name}.h5"))
            cache[name] = (analyze(path), planted)
        return cache[name]

    return get


def test_one_corrupt_batch_late_in_a_long_run_is_not_blamed_on_step_0(runs):
    report, (at, _) = runs("corrupt_batch")
    problems = report.problems()
    assert problems, _describe(report)
    # nothing that was fine for 1,200 steps claims the blow-up from step 0
    for f in problems:
        assert f.steps[0] >= at - 5, f"{f.code} claims onset {f.steps[0]}: {_describe(report)}"
    top = _causes(report)[0]
    assert top.code in ("data_outlier", "exploding_gradients"), _describe(report)
    grads = next(f for f in report.findings if f.code == "exploding_gradients")
    assert at <= grads.steps[0] <= at + 3, grads.steps
    assert "unnormalized_inputs" not in report.codes()


def test_an_lr_ramp_is_named_with_the_step_it_crossed_what_the_loss_could_bear(runs):
    report, (start, _) = runs("lr_ramp")
    top = _causes(report)[0]
    assert top.code == "lr_too_high", _describe(report)
    assert start < top.steps[0] < start + 300, top.steps
    assert f"step {top.steps[0]}" in top.title and "climbs" in top.evidence
    assert {"loss_plateau", "output_collapse"} & set(top.explains)
    assert top.marks["lane"] == "lr" and top.marks["onset"] == top.steps[0]


def test_chaotic_deep_tanh_is_exploding_gradients_not_saturation_or_vanishing(runs):
    report, _ = runs("chaotic_tanh")
    top = _causes(report)[0]
    assert top.code == "exploding_gradients", _describe(report)
    assert top.steps[0] == 0
    assert "vanishing_gradients" not in [f.code for f in report.problems()]


def test_cnn_with_a_huge_init_is_large_init_before_the_relus_it_kills(runs):
    report, _ = runs("cnn_huge_init")
    codes = [f.code for f in _causes(report)]
    assert codes[0] == "large_init", _describe(report)
    dead = next((f for f in report.findings if f.code == "dead_relu"), None)
    if dead is not None:
        assert "large_init" in dead.explained_by
    assert "(Conv2d 1→8 3x3)" in report.findings[0].evidence or "Conv2d" in json.dumps(report.to_json())


def test_lr_far_too_high_ranks_above_the_saturation_it_causes(runs):
    report, _ = runs("lr_far_too_high")
    top = _causes(report)[0]
    assert top.code == "lr_too_high", _describe(report)
    sat = next((f for f in report.findings if f.code == "saturated_activations"), None)
    if sat is not None:
        assert sat.explained_by == ["lr_too_high"] and sat.steps[0] <= 5


def test_a_head_built_after_the_optimizer_is_frozen_weights_not_missing_zero_grad(runs):
    report, _ = runs("head_after_optimizer")
    top = _causes(report)[0]
    assert top.code == "frozen_weights" and top.layer == "head", _describe(report)
    assert top.severity in ("warning", "error")
    mzg = next((f for f in report.findings if f.code == "missing_zero_grad"), None)
    if mzg is not None:
        assert "frozen_weights" in mzg.explained_by


def test_every_finding_carries_marks_and_json_related(runs):
    report, _ = runs("cnn_huge_init")
    obj = report.to_json()
    assert "notes" in obj
    for f, j in zip(report.findings, obj["findings"]):
        assert f.marks["onset"] == f.steps[0] and f.marks["views"]
        assert set(j["related"]) == {"explains", "explained_by"}


def test_softmax_in_the_training_loop_is_named_there(runs):
    report, _ = runs("softmax_in_loop")
    top = _causes(report)[0]
    assert top.code == "double_softmax", _describe(report)
    assert "training loop" in top.fix and "forward()" not in top.fix
    assert top.marks["hlines"] and top.marks["hlines"][0]["lane"] == "loss"


def test_a_scheduler_stepped_per_batch_is_lr_too_low_from_its_first_drop(runs):
    report, (lo, hi) = runs("scheduler_per_batch")
    top = _causes(report)[0]
    assert top.code == "lr_too_low", _describe(report)
    assert lo <= top.steps[0] <= hi and "per epoch" in top.fix


@pytest.mark.parametrize("kind", ["restarts", "onecycle", "drop"])
def test_healthy_schedules_with_alarming_events_stay_clean(kind, tmp_path):
    path, _ = R.healthy_schedule(str(tmp_path / f"{kind}.h5"), kind)
    report = analyze(path)
    assert not report.problems(), _describe(report)
