"""Regenerate the committed fixture traces in tests/data/ (run by hand, not by the tests).

    python tests/data/make_fixtures.py

good.h5        a clean 12-step run of a tiny MLP with outputs, targets, inputs, a logged scalar
crashed.h5     the same run SIGKILLed after its last flush (no clean close)
cut.h5         good.h5 cut to half its bytes (corrupt)
foreign.h5     an HDF5 file written by something else
not_hdf5.h5    a text file with an .h5 name
too_new.h5     good.h5 claiming format_version 999
too_old.h5     good.h5 claiming format_version 0
no_steps.h5    a trace whose run died before its first rec.step
v1_good.h5, v1_crashed.h5   good.h5 and crashed.h5 as format 1 wrote them (kept, never regenerated:
               the reader must keep opening old traces)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

RECORD = r"""
import os, signal, socket, sys, time
sys.path.insert(0, {root!r})
socket.gethostname = lambda: "fixture-host"  # no reader host will mistake it for a live writer
import torch
from recorders import TraceRecorder
torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
opt = torch.optim.SGD(model.parameters(), lr=0.1)
loss_fn = torch.nn.CrossEntropyLoss()
x, y = torch.randn(32, 4), torch.randint(0, 3, (32,))
rec = TraceRecorder({path!r}, model, optimizer=opt, loss_fn=loss_fn, snapshot_every=5, hist_every=5,
                    flush_secs=0.2)
for step in range({steps}):
    opt.zero_grad()
    out = model(x)
    loss = loss_fn(out, y)
    loss.backward()
    rec.step(loss=loss, outputs=out, targets=y, inputs=x)
    opt.step()
    if step % 4 == 3:
        rec.log("val_loss", float(loss) * 1.1)
if {kill}:
    time.sleep(1.0)
    os.kill(os.getpid(), signal.SIGKILL)
rec.close()
"""


def record(path: str, steps: int, kill: bool) -> None:
    if os.path.exists(path):
        os.remove(path)
    code = RECORD.format(root=ROOT, path=path, steps=steps, kill=kill)
    subprocess.run([sys.executable, "-c", code], check=not kill, timeout=120)


def with_version(src: str, dst: str, version: int) -> None:
    import h5py

    shutil.copy(src, dst)
    with h5py.File(dst, "r+") as f:
        f.attrs["format_version"] = version


def main() -> None:
    import h5py

    good = os.path.join(HERE, "good.h5")
    record(good, 12, kill=False)
    record(os.path.join(HERE, "crashed.h5"), 12, kill=True)
    record(os.path.join(HERE, "no_steps.h5"), 0, kill=True)
    data = open(good, "rb").read()
    with open(os.path.join(HERE, "cut.h5"), "wb") as f:
        f.write(data[: len(data) // 2])
    with h5py.File(os.path.join(HERE, "foreign.h5"), "w") as f:
        f["temperature"] = [20.5, 21.0]
        f.attrs["instrument"] = "thermometer"
    with open(os.path.join(HERE, "not_hdf5.h5"), "w") as f:
        f.write("step,loss\n0,1.0\n")
    with_version(good, os.path.join(HERE, "too_new.h5"), 999)
    with_version(good, os.path.join(HERE, "too_old.h5"), 0)
    for name in sorted(os.listdir(HERE)):
        if name.endswith(".h5"):
            print(f"{name:14s} {os.path.getsize(os.path.join(HERE, name)):8d} bytes")


if __name__ == "__main__":
    main()
