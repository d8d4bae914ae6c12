"""DDP and FSDP2 on CPU with gloo, 2 spawned ranks: per-rank files, merged shards, rank findings."""

from __future__ import annotations

import os

import numpy as np
import pytest

from analysis import analyze
from analysis.trace import open_trace
from tests import _dist_worker as W

pytestmark = pytest.mark.skipif(not __import__("torch").distributed.is_available(),
                                reason="torch without distributed")
NORMS = ("w_norm", "g_norm", "w_maxabs", "g_maxabs")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("dist"))
    W.spawn(out)
    W.train(f"{out}/single.h5", W.model(), None)
    return out


def test_each_rank_writes_its_own_file_and_the_run_opens_as_one(runs):
    for name in ("ddp_healthy", "fsdp"):
        assert sorted(f for f in os.listdir(runs) if f.startswith(name + ".")) == [f"{name}.rank0.h5",
                                                                               f"{name}.rank1.h5"]
        with open_trace(f"{runs}/{name}.h5") as tr, open_trace(f"{runs}/{name}.rank1.h5") as tr1:
            assert tr.n_ranks == tr1.n_ranks == 2 and tr.n_steps == W.STEPS
            assert tr.rank(1).attrs["rank"] == 1 and tr.attrs["world_size"] == 2
            assert not np.array_equal(tr.loss(), tr.rank(1).loss())  # each rank's own batch


def test_fsdp_merged_norms_equal_the_single_process_run(runs):
    with open_trace(f"{runs}/fsdp.h5") as tr, open_trace(f"{runs}/single.h5") as one:
        assert tr.sharded.all()
        local = [tr.rank(r)._static("params/local_numel") for r in range(2)]
        assert [int(a) + int(b) for a, b in zip(*local)] == [p["numel"] for p in one.param_info]
        for stat in NORMS:
            np.testing.assert_allclose(tr.param_stat(stat), one.param_stat(stat), rtol=1e-5, err_msg=stat)
            np.testing.assert_allclose(tr.rank(1).param_stat(stat), one.param_stat(stat), rtol=1e-5)
        np.testing.assert_allclose(tr.param_stat("w_mean"), one.param_stat("w_mean"), rtol=1e-4, atol=1e-7)
        np.testing.assert_allclose(tr.param_stat("w_std"), one.param_stat("w_std"), rtol=1e-4)
        np.testing.assert_allclose(tr.param_stat("g_zero_frac"), one.param_stat("g_zero_frac"), atol=1e-6)
        measured = np.isfinite(one.param_stat("update_ratio"))
        np.testing.assert_allclose(tr.param_stat("update_ratio")[measured],
                                   one.param_stat("update_ratio")[measured], rtol=1e-4)
        raw = tr.rank(0)._rows("params/w_norm")  # what rank 0 wrote: its shard only
        assert (raw < one.param_stat("w_norm") * (1 - 1e-3)).all()


def test_the_recorder_adds_no_collective(runs):
    """Rank 0 recorded an FSDP run alone (rank 1 ran no recorder) without waiting on rank 1."""
    files = sorted(f for f in os.listdir(runs) if f.startswith("fsdp_rank0_only."))
    assert files == ["fsdp_rank0_only.rank0.h5"]
    with open_trace(f"{runs}/fsdp_rank0_only.rank0.h5") as tr, open_trace(f"{runs}/fsdp.h5") as both:
        assert tr.n_ranks == 1 and tr.n_steps == W.STEPS
        np.testing.assert_array_equal(tr.loss(), both.loss())


def test_ddp_replicas_equal_the_single_process_run_and_are_clean(runs):
    with open_trace(f"{runs}/ddp_healthy.h5") as tr, open_trace(f"{runs}/single.h5") as one:
        for stat in NORMS:
            for r in range(2):
                np.testing.assert_allclose(tr.rank(r).param_stat(stat), one.param_stat(stat), rtol=1e-5)
    codes = analyze(f"{runs}/ddp_healthy.h5").codes()
    assert "rank_divergence" not in codes and "nonfinite" not in codes
    assert "rank_divergence" not in analyze(f"{runs}/fsdp.h5").codes()  # shards differ by design


def test_a_rank_local_update_is_rank_divergence_naming_the_rank(runs):
    report = analyze(f"{runs}/ddp_diverge.rank0.h5")
    found = {f.code: f for f in report.findings}
    f = found["rank_divergence"]
    assert f.kind == "cause" and f.severity in ("warning", "error")
    assert f.layer == "2" and "rank 1" in f.evidence
    assert 10 <= f.steps[0] <= 12 and f.marks.get("onset") == f.steps[0]


def test_a_nan_on_one_rank_is_traced_to_that_rank(runs):
    found = {f.code: f for f in analyze(f"{runs}/ddp_nan.h5").findings}
    f = found["nonfinite"]
    assert f.steps[0] == 15
    assert "rank 1" in f.title and "rank 1" in f.evidence
