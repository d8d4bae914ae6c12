"""The recorder under faults: a full disk, a read-only or vanished folder, a second writer, an
existing file, odd models and call patterns. Training always goes on; the trace never lies."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from torch import nn

from analysis import analyze, open_trace
from recorders import TraceRecorder, TrainwreckWarning
from tests._recorder_helpers import MLP, status, train

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data"

# Trains a small MLP for STEPS steps; at step AT runs ACTION (a shell command) once.
SCRIPT = r"""
import os, subprocess, sys, warnings
sys.path.insert(0, {repo!r})
import torch
torch.manual_seed(0); torch.set_num_threads(1)
from recorders import TraceRecorder
model = torch.nn.Sequential(torch.nn.Linear(20, 64), torch.nn.ReLU(), torch.nn.Linear(64, 3))
opt = torch.optim.SGD(model.parameters(), lr=0.1)
lf = torch.nn.CrossEntropyLoss()
x, y = torch.randn(64, 20), torch.randint(0, 3, (64,))
rec = TraceRecorder({path!r}, model, opt, lf, flush_secs=0.02, snapshot_every=50, swmr={swmr})
losses = []
for i in range({steps}):
    if i == {at}:
        subprocess.run({action!r}, shell=True, check=True)
    opt.zero_grad(); out = model(x); loss = lf(out, y); loss.backward()
    rec.step(loss, outputs=out, targets=y, inputs=x); opt.step()
    losses.append(float(loss))
rec.close()
print("losses", losses[-1], len(losses))
"""


def _run(path: Path, steps: int = 600, at: int = -1, action: str = "true", swmr: bool = True,
         timeout: float = 120) -> subprocess.CompletedProcess:
    code = SCRIPT.format(repo=str(REPO), path=str(path), steps=steps, at=at, action=action, swmr=swmr)
    env = {**os.environ, "TRAINWRECK_STRICT": "0"}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout,
                          env=env)


@contextlib.contextmanager
def _trainwreck_warnings():
    """Collects every ``TrainwreckWarning`` raised in the block (all of them, repeats too) into
    the yielded list, once the block ends."""
    found: list[warnings.WarningMessage] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield found
    found.extend(w for w in caught if issubclass(w.category, TrainwreckWarning))


def _linear_sgd() -> tuple[nn.Module, torch.optim.Optimizer, torch.Tensor]:
    """A one-layer model, its SGD optimiser and a batch for it."""
    model = nn.Sequential(nn.Linear(4, 4))
    return model, torch.optim.SGD(model.parameters(), lr=0.1), torch.randn(8, 4)


def _warnings(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if "TrainwreckWarning" in ln]


@pytest.fixture
def tmpfs(tmp_path):
    """A 2 MiB tmpfs (root only); skipped where mounting is not allowed (the injected ENOSPC test
    in test_recorder_robustness.py covers those machines)."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def _check_stopped_trace(path: Path, reason: str) -> None:
    """The trace holds every flushed step, says where and why it stopped, and no zeros pass as data."""
    with open_trace(path) as t:
        step, why = t.stopped
        assert reason in why and not t.closed_cleanly
        assert t.n_steps == step == t.status["steps_written"] > 0
        assert list(t.steps) == list(range(t.n_steps))
        assert f"recording stopped at step {step}" in t.warnings[0]
        snaps = t.snapshot_steps()
        assert len(snaps) and snaps.max() < step and list(snaps) == sorted(set(snaps))  # none past the rows
        for i in range(len(snaps)):
            assert np.abs(t.snapshot("weight", 0, i)).sum() > 0
        for group in ("outputs", "inputs"):
            sample = t.batch(group, "sample")
            assert np.all(np.abs(sample).reshape(len(sample), -1).sum(axis=1) > 0)
        assert np.all(np.isfinite(t.loss())) and np.all(t.loss() > 0)
    report = analyze(path)
    assert any("recording stopped" in n for n in report.notes)


@pytest.mark.parametrize("swmr", [True, False])
def test_disk_full_exits_cleanly_with_one_warning_and_an_honest_trace(tmpfs, swmr):
    path = tmpfs / "run.h5"
    done = _run(path, steps=900, swmr=swmr)
    assert done.returncode == 0, done.stderr[-2000:]  # no segfault at exit
    found = _warnings(done.stderr)
    assert len(found) == 1 and str(path) in found[0] and "No space left on device" in found[0]
    assert "at step" in found[0]
    assert len(done.stderr.splitlines()) <= 3, done.stderr[:2000]  # no flood of h5py errors
    assert "losses" in done.stdout and done.stdout.split()[-1] == "900"
    _check_stopped_trace(path, "No space left on device")


@pytest.mark.parametrize("at", [150, 500])
def test_file_made_immutable_mid_run_does_not_crash(tmp_path, at):
    path = tmp_path / "run.h5"
    probe = tmp_path / "probe"
    probe.touch()
    if os.geteuid() != 0 or subprocess.run(["chattr", "+i", str(probe)], capture_output=True).returncode:
        pytest.skip("chattr +i needs root and a filesystem that supports it")
    subprocess.run(["chattr", "-i", str(probe)], capture_output=True)
    try:
        done = _run(path, steps=at + 150, at=at, action=f"chattr +i {path}")
    finally:
        subprocess.run(["chattr", "-i", str(path)], capture_output=True)
    assert done.returncode == 0, done.stderr[-2000:]  # no segfault at exit
    found = _warnings(done.stderr)
    assert len(found) == 1 and str(path) in found[0] and "at step" in found[0], done.stderr
    assert len(done.stderr.splitlines()) <= 3, done.stderr[:2000]
    os.utime(path, (1e9, 1e9))
    with open_trace(path) as t:  # nothing could be written: the last good flush's record stands
        assert 0 < t.n_steps <= at and not t.closed_cleanly and list(t.steps) == list(range(t.n_steps))


def test_directory_removed_mid_run_warns(tmp_path):
    folder = tmp_path / "out"
    path = folder / "run.h5"
    done = _run(path, steps=300, at=100, action=f"rm -rf {folder}")
    assert done.returncode == 0, done.stderr[-2000:]
    found = _warnings(done.stderr)
    assert len(found) == 1 and "removed" in found[0] and str(path) in found[0], done.stderr
    assert len(done.stderr.splitlines()) <= 3


def test_status_record_after_kill_9(tmp_path):
    path = tmp_path / "run.h5"
    code = SCRIPT.format(repo=str(REPO), path=str(path), steps=100_000, at=-1, action="true", swmr=True)
    proc = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        rows = 0
        while rows < 50 and time.monotonic() < deadline:
            time.sleep(0.2)
            try:
                with h5py.File(path, "r", libver="latest", swmr=True) as f:
                    rows = status(f)["steps_written"] if "status" in f else 0
            except OSError:  # not there yet, or still locked before SWMR writing starts
                pass
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    with h5py.File(path, "r", libver="latest", swmr=True) as f:
        st = status(f)
        assert st["closed_cleanly"] == 0 and st["stopped_at"] == -1 and st["steps_written"] >= 50
        assert f["steps/loss"].shape[0] >= st["steps_written"]
        assert f["snapshots/step"].shape[0] >= st["snapshots_written"] >= 1
    os.utime(path, (1e9, 1e9))
    with open_trace(path) as t:
        assert t.n_steps >= st["steps_written"] and t.stopped is None
        assert "ended without a clean close" in t.warnings[0]


@pytest.mark.parametrize("name", ["v1_good.h5", "v1_crashed.h5"])
def test_format_1_traces_still_open(name, tmp_path):
    path = tmp_path / name
    shutil.copy(DATA / name, path)
    os.utime(path, (1e9, 1e9))
    with h5py.File(path, "r", libver="latest", swmr=True) as f:
        assert f.attrs["format_version"] == 1 and "status" not in f
    with open_trace(path) as t:
        assert t.format_version == 1 and t.param_names == ["0.weight", "0.bias", "2.weight", "2.bias"]
        if name == "v1_good.h5":
            assert t.closed_cleanly and t.n_steps == 12 and t.warnings == []
        else:
            assert not t.closed_cleanly and 1 <= t.n_steps <= 12
    assert analyze(path).steps >= 1


def _record(path: Path, steps: int = 3) -> TraceRecorder:
    model = MLP()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    rec = TraceRecorder(path, model, opt)
    train(model, opt, rec, steps)
    return rec


def test_an_existing_trace_is_moved_aside_not_overwritten(tmp_path):
    path = tmp_path / "run.h5"
    _record(path, 3).close()
    with _trainwreck_warnings() as found:
        _record(path, 5).close()
    assert len(found) == 1 and "run.prev1.h5" in str(found[0].message)
    with open_trace(tmp_path / "run.prev1.h5") as old, open_trace(path) as new:
        assert old.n_steps == 3 and new.n_steps == 5


def test_a_second_process_on_the_same_path_records_elsewhere(tmp_path):
    path = tmp_path / "run.h5"
    code = SCRIPT.format(repo=str(REPO), path=str(path), steps=100_000, at=-1, action="true", swmr=True)
    proc = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not path.exists():
            time.sleep(0.1)
        time.sleep(1.0)  # the first step (SWMR writing started: the shared lock is the one held)
        with _trainwreck_warnings() as found:
            rec = _record(path, 4)
            rec.close()
        assert len(found) == 1 and "in use by another process" in str(found[0].message)
        assert rec.path != str(path) and f"pid{os.getpid()}" in rec.path
        with open_trace(rec.path) as mine:
            assert mine.n_steps == 4 and mine.param_names[0] == "net.0.weight"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    os.utime(path, (1e9, 1e9))
    with open_trace(path) as theirs:  # the first process's file holds only its own run
        assert theirs.param_names == ["0.weight", "0.bias", "2.weight", "2.bias"]
        assert list(theirs.steps) == list(range(theirs.n_steps))


def test_model_without_parameters_records(tmp_path):
    model = nn.Sequential(nn.ReLU())
    x = torch.randn(8, 4, requires_grad=True)
    with TraceRecorder(tmp_path / "r.h5", model) as rec:
        for _ in range(15):
            out = model(x)
            loss = out.sum()
            loss.backward()
            rec.step(loss, outputs=out)
        assert rec.recording
    with open_trace(tmp_path / "r.h5") as t:
        assert t.n_steps == 15 and t.closed_cleanly and t.param_stat("w_norm").shape == (15, 0)


def test_param_group_added_mid_run_warns_once_and_keeps_recording(tmp_path):
    model, opt, x = _linear_sgd()
    with _trainwreck_warnings() as found:
        with TraceRecorder(tmp_path / "r.h5", model, opt) as rec:
            for i in range(30):
                if i == 15:
                    extra = nn.Linear(4, 2)
                    model.add_module("extra", extra)
                    opt.add_param_group({"params": extra.parameters(), "lr": 0.01})
                opt.zero_grad()
                loss = (model(x) ** 2).mean()
                if i >= 15:
                    loss = loss + (model.extra(x) ** 2).mean()
                loss.backward()
                rec.step(loss)
                opt.step()
            assert rec.recording
    assert len(found) == 1 and "param groups" in str(found[0].message)
    with open_trace(tmp_path / "r.h5") as t:
        assert t.n_steps == 30 and t.lr().shape == (30, 1)


def test_rec_step_twice_per_optimizer_step_is_noticed(tmp_path):
    model, opt, x = _linear_sgd()
    with _trainwreck_warnings() as found:
        with TraceRecorder(tmp_path / "r.h5", model, opt) as rec:
            for _ in range(10):
                opt.zero_grad()
                loss = (model(x) ** 2).mean()
                loss.backward()
                rec.step(loss)
                rec.step(loss)
                opt.step()
    assert len(found) == 1 and "2 times between two optimizer.step()" in str(found[0].message)
    assert found[0].filename == __file__
