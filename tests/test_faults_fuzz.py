"""Seeded fuzzing of the reader (``tests/_fuzz.py``): a few hundred mutants of real traces, aimed at
HDF5 metadata. Every file is analysed or refused with one ``TraceError`` line, within a time
bound, in a worker process: no other exception, no crash, no hang. ``benchmarks/fuzz_traces.py``
runs thousands by hand."""

from __future__ import annotations

from tests._fuzz import fuzz

COUNT = 120  # ~12 s of CPU (longer on a loaded machine)


def test_fuzzed_traces_are_analysed_or_refused_with_one_line(tmp_path):
    tally = fuzz(seed=2026, count=COUNT, out=tmp_path, limit_s=30.0)
    assert sum(tally.counts.values()) == COUNT
    assert not tally.bad, "\n".join(tally.bad[:10])
    assert tally.counts["trace_error"] > COUNT // 4 and tally.counts["report"] > 10, tally.summary()
