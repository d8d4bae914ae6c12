"""The shared onset helpers: departures from the run's own earlier level, NaN rows skipped."""

from __future__ import annotations

import numpy as np

from analysis import onset as O


def _noisy(n: int, seed: int = 0) -> np.ndarray:
    return np.exp(np.random.default_rng(seed).normal(0, 0.3, n))


def test_level_shift_finds_the_step_where_a_norm_grows_and_stays():
    x = _noisy(4000)
    x[3100:] *= 1000
    assert abs(O.level_shift(x, 10) - 3100) <= 2


def test_level_shift_ignores_unmeasured_rows_and_noise():
    x = _noisy(4000)
    x[2500:] *= 100
    x[::3] = np.nan  # a cadence gap: two rows in three measured
    assert abs(O.level_shift(x, 10) - 2500) <= 3
    assert O.level_shift(_noisy(4000, 1), 10) == -1


def test_level_shift_of_a_ramp_lands_where_it_first_clears_the_factor():
    x = np.ones(4000)
    x[2500:] = np.logspace(0, 3, 1500)  # 1000x over 1500 steps: 10x at ~3000
    assert 2900 <= O.level_shift(x, 10) <= 3050


def test_level_shift_of_fractions_is_absolute_and_downwards_works():
    dead = np.full(1000, 0.05)
    dead[600:] = 0.7
    assert abs(O.level_shift(dead, 0.3, log=False) - 600) <= 2
    g = np.ones(1000)
    g[400:] = 1e-4
    assert abs(O.level_shift(g, 100, direction="down") - 400) <= 2


def test_first_spike_finds_one_bad_batch():
    x = _noisy(4000)
    x[3100] = 1e4
    assert O.first_spike(x, 30) == 3100
    x[::2] = np.nan
    x[3100] = 1e4
    assert O.first_spike(x, 30) == 3100
    assert O.first_spike(_noisy(4000), 30) == -1


def test_first_spike_on_a_long_series():
    x = _noisy(100_000)
    x[77_777] = 1e5
    assert O.first_spike(x, 30) == 77_777


def test_mask_onset_counts_only_measured_rows():
    bad = np.zeros(100, bool)
    bad[40:] = True
    measured = np.ones(100, bool)
    measured[::2] = False
    bad[::2] = False  # unmeasured rows read as False, but do not count
    assert O.mask_onset(bad, measured) == 41
    assert O.mask_onset(np.zeros(10, bool)) == -1


def test_from_start_and_onset_row():
    assert O.from_start(3, 4000) and O.from_start(40, 4000) and not O.from_start(500, 4000)
    assert O.onset_row(-1, 300, 120) == 120 and O.onset_row(-1, -1) == 0
