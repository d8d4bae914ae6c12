"""Bugs written the way people write them, and alarming healthy runs (``tests/_wild_runs.py``):
the right cause first with its onset in the planted range; healthy runs without any warning."""

from __future__ import annotations

import pytest

from analysis import analyze
from tests import _wild_runs as W


def _describe(report) -> str:
    return "; ".join(f"{f.code} {f.severity} {f.steps}" for f in report.findings) or "none"


@pytest.mark.parametrize("name", W.BUGS)
def test_bug_named_first_with_its_onset(name, tmp_path):
    path, expected, (lo, hi) = getattr(W, name)(str(tmp_path / f"{name}.h5"))
    report = analyze(path)
    causes = [f for f in report.findings if f.kind == "cause"]
    assert causes and causes[0].code == expected, _describe(report)
    assert lo <= causes[0].steps[0] <= hi, _describe(report)


@pytest.mark.parametrize("name", W.HEALTHY)
def test_healthy_run_is_clean(name, tmp_path):
    path, expected, _ = getattr(W, name)(str(tmp_path / f"{name}.h5"))
    assert expected is None
    report = analyze(path)
    alarms = [f for f in report.findings if f.severity in ("warning", "error")]
    assert not alarms, _describe(report)


def test_blow_up_after_a_bad_batch_is_explained_by_it(tmp_path):
    path, _, _ = W.unit_bug_batch(str(tmp_path / "unit.h5"))
    report = analyze(path)
    by_code = {f.code: f for f in report.findings}
    assert "exploding_gradients" in by_code["data_outlier"].explains, _describe(report)
    assert by_code["exploding_gradients"].steps[0] >= 900, _describe(report)
