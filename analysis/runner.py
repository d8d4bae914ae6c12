"""Run every registered detector over a trace and rank what they find."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable

from analysis import errors, lod
from analysis._store import StoreError
from analysis.findings import Report
from analysis.marks import complete
from analysis.ranking import RunFacts, rank
from analysis.trace import Trace, open_trace, trace_error

Progress = Callable[[int, int, str], None]
# Failed detectors beyond which a trace counts as too damaged to diagnose (rather than a
# diagnosis with a gap): this many, or this fraction of those that ran.
DAMAGED_COUNT, DAMAGED_FRACTION = 3, 0.25
READ_ERRORS = (OSError, StoreError, errors.TraceError, MemoryError)


def analyze(
    source: str | os.PathLike[str] | Trace,
    codes: Iterable[str] | None = None,
    progress: Progress | None = None,
) -> Report:
    """Analyse one run (a path or an open ``Trace``) and return its ranked ``Report``.

    Raises ``analysis.errors.TraceError`` (and nothing else) when the file cannot be read, or
    is too damaged to diagnose (several detectors failed on it). A detector that fails on an
    otherwise readable trace leaves a note saying the diagnosis is incomplete.
    ``progress(done, total, code)`` is called before each detector.
    """
    path = source.path if isinstance(source, Trace) else os.fspath(source)
    try:
        if isinstance(source, Trace):
            return _analyze(source, codes, progress)
        with open_trace(source) as trace:
            return _analyze(trace, codes, progress)
    except KeyError:
        if codes is not None:
            raise  # an unknown detector code: the caller's mistake, not the file's
        raise errors.TraceCorrupt(path, "a dataset the detectors need is missing") from None
    except Exception as exc:  # noqa: BLE001 - the promise: only TraceError leaves analyze
        if os.environ.get("TRAINWRECK_STRICT") == "1" and not isinstance(exc, READ_ERRORS):
            raise
        raise trace_error(path, exc) from None


def _analyze(trace: Trace, codes: Iterable[str] | None, progress: Progress | None) -> Report:
    from analysis.detectors import REGISTRY

    selected = [REGISTRY[c] for c in codes] if codes is not None else list(REGISTRY.values())
    findings, notes = [], list(trace.warnings)
    failed: list[tuple[str, BaseException]] = []
    ran = 0
    seen = lod.coarse(trace)  # a long run: a bounded selection of its rows (analysis.lod)
    for i, det in enumerate(selected):
        if progress:
            progress(i, len(selected), det.code)
        missing = det.missing(seen)
        if missing:
            notes.append(f"{det.code}: needs {', '.join(missing)}, which this trace lacks")
            continue
        ran += 1
        try:
            findings.extend(complete(f) for f in det.run(seen))
        except Exception as exc:  # noqa: BLE001 - one broken detector must not hide the rest
            if os.environ.get("TRAINWRECK_STRICT") == "1" and not isinstance(exc, READ_ERRORS):
                raise
            failed.append((det.code, exc))
            notes.append(f"{det.code}: detector failed ({type(exc).__name__}: {_line(exc)})")
    if seen is not trace:
        lod.refine(trace, seen, findings, lambda code, view: REGISTRY[code].run(view))
        findings = [complete(f) for f in findings]
        notes.append(f"long run: the detectors read {seen.n_steps:,} of its {trace.n_steps:,} rows "
                     f"(windows of {lod.WINDOW} rows spread over the run), onsets refined in full")
    if progress:
        progress(len(selected), len(selected), "")
    if failed:
        _judge_damage(trace, failed, ran, notes)
    steps = int(trace.steps[-1]) + 1 if trace.n_steps else 0
    facts = RunFacts(steps=seen.steps, loss=seen.loss())
    return Report(trace=trace.path, steps=steps, findings=rank(findings, facts), notes=notes)


def _line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def _judge_damage(trace: Trace, failed: list[tuple[str, BaseException]], ran: int, notes: list[str]) -> None:
    """Too many failed detectors: the trace is damaged (raise); else say the diagnosis has a gap."""
    for _, exc in failed:  # the file refused or over a limit: that is the one line to give
        if isinstance(exc, (StoreError, errors.TraceError)):
            raise trace_error(trace.path, exc)
    codes = ", ".join(code for code, _ in failed)
    if len(failed) >= DAMAGED_COUNT or (ran >= 4 and len(failed) >= DAMAGED_FRACTION * ran):
        first = failed[0][1]
        raise errors.TraceCorrupt(trace.path, f"too damaged to diagnose: {len(failed)} of {ran} detectors "
                                              f"failed on it ({codes}; first: {type(first).__name__}: "
                                              f"{_line(first)})")
    notes.insert(0, f"diagnosis incomplete: {len(failed)} of {ran} detectors failed ({codes}); "
                    "their findings, if any, are missing")
