"""Shard merging maths and rank_divergence on synthetic per-rank arrays (no processes)."""

from __future__ import annotations

import numpy as np

from analysis import shards
from analysis._store import MemoryStore
from analysis.detectors import REGISTRY
from analysis.synthetic import synthetic_arrays
from analysis.trace import Trace
from recorders import schema as S


def _stats(a: np.ndarray) -> dict[str, float]:
    """One tensor's statistics as the recorder defines them (``docs/trace-format.md``)."""
    if a.size == 0:
        return {"w_norm": 0.0, "w_mean": 0.0, "w_maxabs": np.nan, "w_nonfinite": 0, "g_zero_frac": 0.0}
    return {"w_norm": float(np.linalg.norm(a)), "w_mean": float(a.mean()), "w_maxabs": float(np.abs(a).max()),
            "w_nonfinite": int((~np.isfinite(a)).sum()), "g_zero_frac": float((a == 0).mean())}


def test_merged_shard_statistics_equal_the_whole_tensor():
    rng = np.random.default_rng(0)
    whole = rng.standard_normal(37) * 3 + 0.5
    whole[[3, 30]] = 0.0
    parts = np.split(whole, [20, 37, 37])  # uneven, and one rank holds nothing
    n = np.array([[len(p)] for p in parts])
    per = [_stats(p) for p in parts]
    raw = {k: np.array([[[s[k]]] for s in per], dtype=np.float64) for k in per[0]}
    ref = _stats(whole)
    for k in ("w_norm", "w_mean", "w_maxabs", "w_nonfinite", "g_zero_frac"):
        got = shards.merge(k, raw, n)[0, 0]
        assert np.isclose(got, ref[k], rtol=1e-12), k
    assert np.isclose(shards.merge("w_std", raw, n)[0, 0], whole.std(), rtol=1e-10)
    raw["g_norm"] = raw["w_norm"].copy()
    raw["g_norm"][:2] = np.nan  # no gradient on the ranks holding elements
    assert np.isnan(shards.merge("g_norm", raw, n)[0, 0])


def _ranks(w_norms: list[np.ndarray]) -> Trace:
    stores = []
    for r, w in enumerate(w_norms):
        data, attrs = synthetic_arrays(n_steps=len(w))
        data[f"{S.PARAMS}/w_norm"] = w.astype(np.float32)
        attrs.setdefault("", {}).update({S.ATTR_FORMAT: S.FORMAT_NAME, S.ATTR_VERSION: S.FORMAT_VERSION,
                                         S.ATTR_CLOSED: 1, S.ATTR_RANK: r, S.ATTR_WORLD: len(w_norms)})
        stores.append(MemoryStore(data, attrs))
    return Trace(stores, [f"run.rank{r}.h5" for r in range(len(w_norms))])


def test_rank_divergence_fires_on_a_drifting_replica_and_stays_quiet_on_identical_ones():
    rng = np.random.default_rng(1)
    w = np.abs(rng.standard_normal((60, 4))) + 1.0
    detect = REGISTRY["rank_divergence"].run
    assert detect(_ranks([w, w.copy(), w.copy()])) == []
    drift = w.copy()
    drift[25:, 2] *= 1 + 1e-4 * np.arange(1, 36)  # rank 2 drifts from step 25
    found = detect(_ranks([w, w.copy(), drift]))
    assert len(found) == 1
    f = found[0]
    assert f.steps[0] == 25 and f.severity == "error" and "rank 2" in f.title
    assert f.layer == "fc2" and f.marks["onset"] == 25
