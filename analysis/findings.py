"""What analysis produces: ``Finding`` records and the ranked ``Report`` of one run."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}
KINDS = ("cause", "symptom")


@dataclass
class Finding:
    """One root cause or symptom, with its evidence and fix (CONTRACT §3).

    ``steps`` is ``[first, last]`` global step of the evidence; ``layer`` names a
    module or parameter (or None). ``explains`` / ``explained_by`` are the codes of the
    other findings of the run this one's mechanism accounts for / that account for it
    (filled by ``analysis.ranking``); ``related`` is the list the app shows (a cause's
    ``explains``, else ``explained_by``). The JSON carries both lists under ``related``.

    ``marks`` is how the evidence is drawn (plain JSON-able data, produced here in
    ``analysis``, drawn by every view that can; every key optional):

    - ``"onset"``: int, the step the evidence departs from earlier behaviour (= steps[0]);
    - ``"events"``: list[int], specific steps (the spikes, the bad batches, the NaN step);
    - ``"hlines"``: list of ``{"lane": "loss" | "grad_norm" | "lr" | <scalar name>,
      "y": float, "label": str}`` (e.g. the loss floor of a double softmax);
    - ``"layers"``: list[str], module or parameter names involved (heatmap rows to outline);
    - ``"metric"``: str, the heatmap metric that shows it (a key of ``views_data`` metrics);
    - ``"lane"``: str, the timeline lane that shows it;
    - ``"views"``: list of ``"timeline" | "heatmap" | "layer" | "histogram" | "outputs"`` that show the
      evidence (the report renders only these).
    """

    code: str
    kind: str
    severity: str
    confidence: float
    steps: list[int]
    layer: str | None
    title: str
    evidence: str
    fix: str
    related: list[str] = field(default_factory=list)
    explains: list[str] = field(default_factory=list)
    explained_by: list[str] = field(default_factory=list)
    marks: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {self.kind!r}")
        if self.severity not in SEVERITY_ORDER:
            raise ValueError(f"unknown severity {self.severity!r}")
        self.confidence = float(min(max(self.confidence, 0.0), 1.0))
        self.steps = [int(s) for s in self.steps][:2]
        if len(self.steps) == 1:
            self.steps = self.steps * 2

    def to_json(self) -> dict[str, Any]:
        """The CONTRACT §3 record, plus ``related``: ``{"explains": [...], "explained_by": [...]}``."""
        out = asdict(self)
        for key in ("related", "explains", "explained_by", "marks"):
            out.pop(key)
        out["confidence"] = round(self.confidence, 3)
        out["related"] = {"explains": list(self.explains), "explained_by": list(self.explained_by)}
        return out


@dataclass
class Report:
    """Findings of one run, ranked: most likely root cause first.

    ``notes`` are run-level facts (a crashed run, a detector that lacked data or failed).
    """

    trace: str
    steps: int
    findings: list[Finding]
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "trace": self.trace,
            "steps": self.steps,
            "findings": [f.to_json() for f in self.findings],
            "notes": list(self.notes),
        }

    def codes(self) -> list[str]:
        return [f.code for f in self.findings]

    def problems(self) -> list[Finding]:
        """Findings of severity warning or error."""
        return [f for f in self.findings if f.severity in ("warning", "error")]
