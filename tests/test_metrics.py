"""analysis.metrics against brute-force references (loops, sorting, textbook formulas)."""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pytest

from analysis import metrics as M


def test_binned_matches_a_loop_over_even_bins_and_ignores_nonfinite():
    rng = np.random.default_rng(0)
    for n, b in [(10, 3), (7, 7), (5, 10), (101, 8), (1, 1)]:
        x = rng.standard_normal(n)
        x[rng.random(n) < 0.1] = np.nan
        edges = np.linspace(0, n, min(b, n) + 1).astype(int)
        ref = [np.nanmedian(x[a:c]) if np.isfinite(x[a:c]).any() else np.nan
               for a, c in zip(edges, edges[1:])]
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            got = M.binned(x, b)
        np.testing.assert_allclose(got, ref, equal_nan=True)
    x2 = np.arange(20.0).reshape(10, 2)
    x2[3, 1] = np.inf
    np.testing.assert_allclose(M.binned(x2, 2, "mean"), [[4, 4.5], [14, 15]])
    assert M.binned(np.array([]), 4).shape == (0,)


def test_ema_matches_the_recursion_and_holds_over_missing_values():
    rng = np.random.default_rng(1)
    x = rng.standard_normal(3000) * 10 + 5
    x[[0, 1, 17, 500, 501]] = np.nan
    for alpha in (0.5, 0.01, 1e-4, 1.0):
        ref = np.empty_like(x)
        prev = np.nan
        for i, v in enumerate(x):
            if np.isnan(v):
                ref[i] = prev
            else:
                prev = v if np.isnan(prev) else (1 - alpha) * prev + alpha * v
                ref[i] = prev
        np.testing.assert_allclose(M.ema(x, alpha), ref, rtol=1e-9, atol=1e-9, equal_nan=True)


def test_theil_sen_spearman_and_ranks_against_pairwise_definitions():
    rng = np.random.default_rng(2)
    x = rng.standard_normal(30)
    y = 3 * x + rng.standard_normal(30) * 0.1
    slopes = [(y[j] - y[i]) / (x[j] - x[i]) for i, j in itertools.combinations(range(30), 2)]
    assert M.theil_sen(x, y) == pytest.approx(np.median(slopes))
    a = np.array([3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0])
    ref = [sum(v < w for v in a) + (sum(v == w for v in a) + 1) / 2 for w in a]
    np.testing.assert_allclose(M.rankdata(a), ref)
    b = np.array([2.0, 7.0, 1.0, 8.0, 2.0, 8.0, 1.0, 8.0])
    ra, rb = M.rankdata(a), M.rankdata(b)
    assert M.spearman(a, b) == pytest.approx(np.corrcoef(ra, rb)[0, 1])
    assert math.isnan(M.spearman([1, 2], [3, 4]))
    assert M.spearman([1, 2, 3, np.nan, 5], [1, 4, 9, 100, 25]) == pytest.approx(1.0)


def test_depth_profile_span_and_direction():
    span, rho = M.depth_profile([1e-6, 1e-4, np.nan, 1e-2, 1.0])
    assert span == pytest.approx(6.0)
    assert rho == pytest.approx(1.0)
    span, rho = M.depth_profile([10.0, 1.0, 0.1])
    assert span == pytest.approx(-2.0) and rho == pytest.approx(-1.0)
    assert all(math.isnan(v) for v in M.depth_profile([0.0, np.nan]))


def test_growth_log_slope_global_norm_and_ratio():
    y = np.r_[np.full(10, 2.0), np.full(80, 5.0), np.full(10, 200.0)]
    assert M.growth(y) == pytest.approx(2.0)
    assert M.log_slope(10 ** np.linspace(0, 3, 400)) == pytest.approx(3.0, rel=0.05)
    g = np.array([[3.0, 4.0], [np.nan, 2.0], [np.nan, np.nan]])
    np.testing.assert_allclose(M.global_norm(g), [5.0, 2.0, np.nan], equal_nan=True)
    np.testing.assert_allclose(M.ratio([1.0, 1.0, np.inf], [2.0, 0.0, 1.0]), [0.5, np.nan, np.nan])


def test_onsets():
    assert M.first_true(np.array([False, False, True, True])) == 2
    assert M.first_true(np.zeros(3, bool)) == -1
    m = np.array([1, 0, 0, 0, 1, 1, 1, 0, 1, 1], bool)
    # brute force: first i with m[i] and mean(m[i:]) >= 0.8
    ref = next(i for i in range(len(m)) if m[i] and m[i:].mean() >= 0.8)
    assert M.persistent_onset(m, 0.8) == ref
    assert M.persistent_onset(np.zeros(4, bool)) == -1
    assert M.persistent_onset(m, 1.0, min_rows=3) == -1


def test_subsample_rows_keeps_head_and_ends():
    idx = M.subsample_rows(100_000, max_rows=1000, head=8)
    assert idx[0] == 0 and idx[-1] == 99_999 and len(idx) <= 1008
    assert list(idx[:8]) == list(range(8)) and np.all(np.diff(idx) > 0)
    assert list(M.subsample_rows(5)) == [0, 1, 2, 3, 4]


def test_fan_in_init_scale_and_row_spread():
    assert M.fan_in((64, 32)) == 32
    assert M.fan_in((16, 3, 5, 5)) == 75
    assert M.fan_in((10,)) == 10
    rng = np.random.default_rng(3)
    w = rng.uniform(-1, 1, (256, 64)) / math.sqrt(64)  # PyTorch's default: U(±1/sqrt(fan_in))
    assert M.init_scale(w.std(), 64) == pytest.approx(1 / math.sqrt(3), rel=0.05)
    same = np.tile(rng.standard_normal(8), (5, 1))
    assert M.row_spread(same) < 1e-12
    assert M.row_spread(np.zeros((4, 3))) == 0.0
    assert M.row_spread(rng.standard_normal((50, 20))) > 0.5
    assert math.isnan(M.row_spread(np.ones(5)))


def test_entropy_and_constant_predictor_loss():
    p = np.array([0.5, 0.25, 0.25])
    assert M.entropy(p) == pytest.approx(-(p * np.log(p)).sum())
    uniform = M.constant_predictor_loss("CrossEntropyLoss", class_counts=[10, 10, 10, 10])
    assert uniform == pytest.approx(math.log(4))
    t = np.array([[0.0], [1.0], [1.0], [1.0]])
    assert M.constant_predictor_loss("BCEWithLogitsLoss", target_sample=t) == pytest.approx(
        -(0.75 * math.log(0.75) + 0.25 * math.log(0.25)))
    reg = np.random.default_rng(4).standard_normal((500, 2)) * [1.0, 3.0]
    assert M.constant_predictor_loss("MSELoss", target_sample=reg) == pytest.approx(reg.var(axis=0).mean())
    assert math.isnan(M.constant_predictor_loss("HuberLoss", target_sample=reg))


def test_loss_profile_reads_drop_divergence_and_nonfinite():
    t = np.arange(400)
    healthy = 0.1 + 2.2 * np.exp(-t / 60)
    p = M.loss_profile(healthy)
    assert p.finite and not p.diverged
    assert p.start == pytest.approx(2.3) and p.drop > 0.9 and 0 < p.late_drop < 0.5
    up = np.r_[np.linspace(2.3, 0.2, 200), np.linspace(0.2, 5.0, 200)]
    q = M.loss_profile(up)
    assert q.diverged and q.rise > 1.0 and 200 <= q.diverge_row < 300 and q.best_row < 215
    # a converged loss wobbling near zero is not diverging
    wobble = np.r_[np.linspace(2.3, 1e-6, 200), 1e-6 * (1 + 9 * (np.arange(200) % 2))]
    assert not M.loss_profile(wobble).diverged
    nan = np.r_[np.linspace(2.3, 1.0, 50), [np.nan, np.inf, np.nan]]
    r = M.loss_profile(nan)
    assert not r.finite and r.first_nonfinite == 50 and r.diverged
    assert M.loss_profile([1.0]).n == 1
    assert not M.loss_profile([np.nan]).finite


def test_decrease_test_separates_a_slow_steady_fall_from_noise():
    rng = np.random.default_rng(5)
    noise = 0.05 * rng.standard_normal(2000)
    drop, z = M.decrease_test(np.linspace(2.3, 2.2, 2000) + noise)
    assert drop == pytest.approx(0.05 / 2.275, rel=0.2) and z > 3
    drop, z = M.decrease_test(2.3 + noise)
    assert abs(drop) < 0.01 and abs(z) < 3
    assert all(math.isnan(v) for v in M.decrease_test([1.0, 2.0]))
