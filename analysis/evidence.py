"""Which views show a finding's evidence: the report draws only those.

A detector says so in ``Finding.marks["views"]``; for one that does not (yet), the
marks it does carry decide: a lane, horizontal lines or events → the timeline; a
heatmap metric or layers → the heatmap; a layer alone → the heatmap and the layer view.
"""

from __future__ import annotations

from analysis.findings import Finding

VIEWS = ("timeline", "heatmap", "layer", "histogram", "outputs")


def evidence_views(finding: Finding) -> list[str]:
    """Names from ``VIEWS``, in the order they should appear (never empty)."""
    marks = finding.marks or {}
    declared = marks.get("views")
    if declared:
        out = [v for v in dict.fromkeys(declared) if v in VIEWS]
        if out:
            return out
    out = ["timeline"]
    if marks.get("metric") or marks.get("layers"):
        out.append("heatmap")
    elif finding.layer:
        out += ["heatmap", "layer"]
    return out
