"""Run every registered detector over a trace and rank what they find."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable

from analysis.findings import Report
from analysis.marks import complete
from analysis.ranking import RunFacts, rank
from analysis.trace import Trace, open_trace

Progress = Callable[[int, int, str], None]


def analyze(
    source: str | os.PathLike[str] | Trace,
    codes: Iterable[str] | None = None,
    progress: Progress | None = None,
) -> Report:
    """Analyse one run (a path or an open ``Trace``) and return its ranked ``Report``.

    Raises ``analysis.errors.TraceError`` when the file cannot be read at all.
    ``progress(done, total, code)`` is called before each detector.
    """
    if isinstance(source, Trace):
        return _analyze(source, codes, progress)
    with open_trace(source) as trace:
        return _analyze(trace, codes, progress)


def _analyze(trace: Trace, codes: Iterable[str] | None, progress: Progress | None) -> Report:
    from analysis.detectors import REGISTRY

    selected = [REGISTRY[c] for c in codes] if codes is not None else list(REGISTRY.values())
    findings, notes = [], list(trace.warnings)
    for i, det in enumerate(selected):
        if progress:
            progress(i, len(selected), det.code)
        missing = det.missing(trace)
        if missing:
            notes.append(f"{det.code}: needs {', '.join(missing)}, which this trace lacks")
            continue
        try:
            findings.extend(complete(f) for f in det.run(trace))
        except Exception as exc:  # noqa: BLE001 - one broken detector must not hide the rest
            if os.environ.get("TRAINWRECK_STRICT") == "1":
                raise
            notes.append(f"{det.code}: detector failed ({type(exc).__name__}: {exc})")
    if progress:
        progress(len(selected), len(selected), "")
    steps = int(trace.steps[-1]) + 1 if trace.n_steps else 0
    facts = RunFacts(steps=trace.steps, loss=trace.loss())
    return Report(trace=trace.path, steps=steps, findings=rank(findings, facts), notes=notes)
