"""TraceRecorder never changes training and never kills it: failures, kills, forks, DDP."""

from __future__ import annotations

import errno
import os
import random
import signal
import socket
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from recorders import TraceRecorder, TrainwreckWarning, _host
from recorders._writer import TraceWriter
from tests._recorder_helpers import MLP, names, read, status, train

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def lenient(monkeypatch):
    """Production behaviour: failures warn instead of raising."""
    monkeypatch.delenv("TRAINWRECK_STRICT", raising=False)


def _trainwreck_warnings(caught):
    return [w for w in caught if issubclass(w.category, TrainwreckWarning)]


# ---------------------------------------------------------------------- only observe


def _seeded_run(tmp_path, record: bool, epochs: int = 3,
                defaults: bool = False) -> tuple[list[float], torch.Tensor]:
    torch.manual_seed(0)
    np.random.seed(0)
    random.seed(0)
    data = TensorDataset(torch.randn(200, 12), torch.randint(0, 4, (200,)))
    loader = DataLoader(data, batch_size=16, shuffle=True)
    model = MLP(p=0.3)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    crit = nn.CrossEntropyLoss()
    rec = None
    if record:
        opts = {} if defaults else dict(update_every=1, hist_every=7, snapshot_every=5)
        rec = TraceRecorder(tmp_path / "r.h5", model, opt, crit, **opts)
    losses = []
    for _ in range(epochs):
        for x, y in loader:
            opt.zero_grad()
            out = model(x)
            loss = crit(out, y)
            loss.backward()
            if rec is not None:
                rec.step(loss, outputs=out, targets=y, inputs=x)
                rec.log("lr", opt.param_groups[0]["lr"])
            opt.step()
            losses.append(loss.item())
        with torch.no_grad():
            model.eval()
            model(torch.randn(5, 12))
            model.train()
    if rec is not None:
        rec.close()
    state = (torch.get_rng_state(), np.random.rand(), random.random())
    return losses, state


def test_recording_does_not_change_training(tmp_path):
    plain, state_a = _seeded_run(tmp_path, record=False)
    recorded, state_b = _seeded_run(tmp_path, record=True)
    assert len(plain) == 39
    assert plain == recorded  # bit-identical
    assert torch.equal(state_a[0], state_b[0]) and state_a[1:] == state_b[1:]
    assert read(tmp_path / "r.h5")["steps/loss"].tolist() == plain


def test_recording_at_defaults_past_the_dense_start_does_not_change_training(tmp_path):
    """Past ``dense_start`` most steps take the unmeasured fast path (``Engine.fast_step``)."""
    plain, state_a = _seeded_run(tmp_path, record=False, epochs=40)
    recorded, state_b = _seeded_run(tmp_path, record=True, epochs=40, defaults=True)
    assert len(plain) == 520
    assert plain == recorded  # bit-identical
    assert torch.equal(state_a[0], state_b[0]) and state_a[1:] == state_b[1:]
    trace = read(tmp_path / "r.h5")
    assert trace["steps/loss"].tolist() == plain
    assert 0 < trace["steps/measured"][100:].astype(bool).mean() < 0.5  # mostly unmeasured rows


# ---------------------------------------------------------------------- never fatal


def test_unwritable_path_warns_once(tmp_path, lenient):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    model = MLP()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rec = TraceRecorder(blocker / "run.h5", model, opt)
        losses = train(model, opt, rec, 3)
        rec.log("x", 1.0)
        rec.close()
    found = _trainwreck_warnings(caught)
    assert len(found) == 1 and "run.h5" in str(found[0].message)
    assert found[0].filename == __file__
    assert len(losses) == 3 and not rec.recording


def test_disk_full_mid_run_warns_once(tmp_path, lenient, monkeypatch):
    calls = {"n": 0}
    original = TraceWriter._write_rows

    def failing(self, rows):
        calls["n"] += 1
        if calls["n"] > 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        return original(self, rows)

    monkeypatch.setattr(TraceWriter, "_write_rows", failing)
    model = MLP()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rec = TraceRecorder(tmp_path / "r.h5", model, opt, flush_secs=0.05)
        losses = train(model, opt, rec, 3)
        time.sleep(0.3)
        losses += train(model, opt, rec, 3)
        time.sleep(0.3)
        losses += train(model, opt, rec, 3)
        rec.close()
    found = _trainwreck_warnings(caught)
    assert len(found) == 1, [str(w.message) for w in found]
    assert "No space left" in str(found[0].message)
    assert found[0].filename in (__file__, str(REPO / "tests" / "_recorder_helpers.py"))
    assert len(losses) == 9 and not rec.recording
    # What was written before stays readable, and the file says where and why it stopped
    # (it is left like a killed writer's: still flagged open for SWMR writing).
    with h5py.File(tmp_path / "r.h5", "r", libver="latest", swmr=True) as f:
        st = status(f)
        assert st["closed_cleanly"] == 0 and st["stopped_at"] == st["steps_written"] >= 1
        assert b"No space" in st["reason"]
        assert f["steps/loss"].shape[0] >= st["steps_written"]


def test_h5py_failure_mid_run_warns_once(tmp_path, lenient):
    model = MLP()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rec = TraceRecorder(tmp_path / "r.h5", model, opt, flush_secs=0.05)
        train(model, opt, rec, 2)
        writer = rec._engine.writer
        with writer.io_lock:  # pull the file out from under the writer
            writer._file.id.close()
        train(model, opt, rec, 2)
        time.sleep(0.3)
        losses = train(model, opt, rec, 2)
        rec.close()
    assert len(_trainwreck_warnings(caught)) == 1 and len(losses) == 2


def test_failing_hook_warns_once_and_training_is_unchanged(tmp_path, lenient, monkeypatch):
    torch.manual_seed(0)
    model = MLP()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    plain = train(model, opt, None, 4)

    def broken(*args, **kwargs):
        raise RuntimeError("hook bug")

    monkeypatch.setattr(_host, "act_call_raw", broken)
    torch.manual_seed(0)
    model = MLP()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with TraceRecorder(tmp_path / "r.h5", model, opt) as rec:
            recorded = train(model, opt, rec, 4)
    found = _trainwreck_warnings(caught)
    assert len(found) == 1 and "hook bug" in str(found[0].message)
    assert recorded == plain


def test_strict_mode_raises(tmp_path, monkeypatch):
    monkeypatch.setenv("TRAINWRECK_STRICT", "1")

    def broken(*args, **kwargs):
        raise RuntimeError("hook bug")

    monkeypatch.setattr(_host, "act_call_raw", broken)
    model = MLP()
    rec = TraceRecorder(tmp_path / "r.h5", model)
    with pytest.raises(RuntimeError, match="hook bug"):
        model(torch.randn(2, 12))
    rec.close()


# ---------------------------------------------------------------------- crash safety

_KILLED_SCRIPT = """
import sys, time, torch
sys.path.insert(0, {repo!r})
from recorders import TraceRecorder
from tests._recorder_helpers import MLP, train
torch.manual_seed(0)
model = MLP()
opt = torch.optim.SGD(model.parameters(), lr=0.05)
rec = TraceRecorder({path!r}, model, opt, swmr={swmr!r})
train(model, opt, rec, 20)
print("ran 20", flush=True)
while True:
    train(model, opt, rec, 1)
    time.sleep(0.01)
"""


def _run_and_kill(path: str, swmr: bool) -> None:
    script = textwrap.dedent(_KILLED_SCRIPT.format(repo=str(REPO), path=path, swmr=swmr))
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.strip() == "ran 20", line
        time.sleep(1.5)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        proc.stdout.close()


def _check_killed(f: h5py.File) -> None:
    assert f.attrs["format"] == "trainwreck-trace" and status(f)["closed_cleanly"] == 0
    n = int(status(f)["steps_written"])
    assert n >= 20
    assert f["steps/loss"].shape[0] >= n and f["params/w_norm"].shape[0] >= n
    np.testing.assert_array_equal(f["steps/step"][:n], np.arange(n))
    assert np.isfinite(f["steps/loss"][:n]).all()
    assert np.isfinite(f["params/g_norm"][:n]).all()
    assert f["snapshots/step"][0] == 0


def test_sigkill_leaves_a_readable_trace(tmp_path):
    path = str(tmp_path / "killed.h5")
    _run_and_kill(path, swmr=True)
    with pytest.raises(OSError, match="already open for write"):
        h5py.File(path, "r")  # a crashed SWMR writer leaves its flag: readers use swmr=True
    with h5py.File(path, "r", libver="latest", swmr=True) as f:
        _check_killed(f)


def test_sigkill_without_swmr_opens_plainly(tmp_path):
    path = str(tmp_path / "killed.h5")
    _run_and_kill(path, swmr=False)
    with h5py.File(path, "r") as f:
        _check_killed(f)


def test_exit_without_close_closes_the_trace(tmp_path):
    path = str(tmp_path / "atexit.h5")
    script = _KILLED_SCRIPT.split("train(model, opt, rec, 20)")[0].format(
        repo=str(REPO), path=path, swmr=True
    )
    subprocess.run([sys.executable, "-c", script + "train(model, opt, rec, 3)\n"], check=True, timeout=120)
    d = read(path)
    assert d["status"]["closed_cleanly"] == 1 and d["steps/step"].tolist() == [0, 1, 2]


# ---------------------------------------------------------------------- fork safety


class _WorkerProbe(Dataset):
    """A dataset whose workers try to use the (forked) recorder."""

    def __init__(self, rec: TraceRecorder, marks: Path) -> None:
        self.rec = rec
        self.marks = marks
        self.x = torch.randn(64, 12)
        self.y = torch.randint(0, 4, (64,))

    def __len__(self) -> int:
        return 64

    def __getitem__(self, i: int):
        if os.getpid() != self.rec._pid:
            (self.marks / f"{os.getpid()}").write_text(str(self.rec.recording))
            self.rec.log("from_worker", 1.0)
            self.rec.step(torch.tensor(0.0))
            self.rec.close()
        return self.x[i], self.y[i]


def test_forked_dataloader_workers_never_touch_the_trace(tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()
    model = MLP()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    crit = nn.CrossEntropyLoss()
    rec = TraceRecorder(tmp_path / "r.h5", model, opt, crit, flush_secs=0.05)
    loader = DataLoader(
        _WorkerProbe(rec, marks), batch_size=16, num_workers=2, multiprocessing_context="fork"
    )
    for _ in range(2):
        for x, y in loader:
            opt.zero_grad()
            out = model(x)
            loss = crit(out, y)
            loss.backward()
            rec.step(loss, outputs=out, targets=y, inputs=x)
            opt.step()
    rec.log("epoch", 2)
    rec.close()
    seen = {p.read_text() for p in marks.iterdir()}
    assert len(list(marks.iterdir())) >= 2 and seen == {"False"}
    d = read(tmp_path / "r.h5")
    assert d["status"]["closed_cleanly"] == 1
    np.testing.assert_array_equal(d["steps/step"], np.arange(8))
    assert names(d["scalars/names"])[:2] == ["epoch", ""]


# ---------------------------------------------------------------------- DDP


def _ddp_worker(rank: int, world: int, port: int, path: str) -> None:
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        torch.manual_seed(0)
        model = DistributedDataParallel(MLP())
        opt = torch.optim.SGD(model.parameters(), lr=0.05)
        with TraceRecorder(path, model, opt, nn.CrossEntropyLoss()) as rec:
            assert rec.path.endswith(f"run.rank{rank}.h5")
            train(model, opt, rec, 3, seed=rank)
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_ranks_write_their_own_files(tmp_path):
    path = str(tmp_path / "run.h5")
    torch.multiprocessing.spawn(_ddp_worker, args=(2, _free_port(), path), nprocs=2, join=True)
    assert not os.path.exists(path)
    traces = [read(tmp_path / f"run.rank{r}.h5") for r in range(2)]
    for r, d in enumerate(traces):
        assert d["attrs:/"]["rank"] == r and d["attrs:/"]["world_size"] == 2
        assert d["status"]["closed_cleanly"] == 1
        assert names(d["params/names"])[0] == "net.0.weight"
        assert np.isnan(d["steps/grad_carry"]).all()
        assert '"world_size": 2' in d["attrs:meta"]["env"]
    assert traces[0]["steps/loss"].tolist() != traces[1]["steps/loss"].tolist()
    np.testing.assert_allclose(traces[0]["params/w_norm"], traces[1]["params/w_norm"], rtol=1e-6)
