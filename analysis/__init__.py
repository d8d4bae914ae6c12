"""Offline analysis of Trainwreck traces: read, detect, rank. No Qt, no torch.

``from analysis import analyze; report = analyze("run.h5")``
"""

from __future__ import annotations

from analysis.errors import TraceError
from analysis.findings import Finding, Report
from analysis.runner import analyze
from analysis.trace import Trace, open_trace

__all__ = ["Finding", "Report", "Trace", "TraceError", "analyze", "open_trace"]
