"""Order findings by mechanism and time: the cause whose evidence comes first and explains the rest.

Finding ``a`` explains finding ``b`` when (1) ``analysis.mechanisms.PRODUCES[a.code]``
lists ``b.code``, (2) ``a``'s onset is not later than ``b``'s (a small tolerance for
measurement), and (3) the run did not train well for a long stretch between the two
onsets (a property the run trained well with for 3,000 steps did not set off a
blow-up at step 3,100). When two findings could explain each other, the earlier one
does; at the same onset, the weightier one.

Causes come before symptoms. Among causes, in tiers:

1. roots: not explained by any cause of severity warning or error;
2. background: roots that the run trained well with for a long stretch before a later
   warning/error finding they do not explain (kept at their own severity, ranked below);
3. explained: consequences of a ranked cause.

Within a tier: severity, then weight (own severity × confidence plus half the weight of
everything explained), then onset. ``Finding.explains`` / ``explained_by`` record the links.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from analysis.findings import SEVERITY_ORDER, Finding
from analysis.mechanisms import produces

SEVERITY_WEIGHT = {"error": 3.0, "warning": 2.0, "info": 1.0}
HEALTHY_FRAC = 0.2  # a stretch of at least this share of the run …
HEALTHY_MIN_STEPS = 200  # … and this many steps, with a finite loss that did not get worse


@dataclass
class RunFacts:
    """What ranking needs to know about the run itself: its loss per recorded step."""

    steps: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    loss: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def n_steps(self) -> int:
        return int(self.steps[-1]) + 1 if len(self.steps) else 0

    def tolerance(self) -> int:
        """Onsets this close count as simultaneous (measurement resolution)."""
        return max(3, self.n_steps // 100)

    def trained_well(self, s0: int, s1: int) -> bool:
        """Whether steps ``[s0, s1)`` are a long healthy stretch: a finite loss that fell (or had
        already fallen to half the run's first loss) and is no worse at the end."""
        if s1 - s0 < max(HEALTHY_MIN_STEPS, HEALTHY_FRAC * self.n_steps) or not len(self.steps):
            return False
        lo, hi = np.searchsorted(self.steps, [s0, s1])
        seg = np.asarray(self.loss[lo:hi], np.float64)
        if len(seg) < 20 or np.mean(np.isfinite(seg)) < 0.98:
            return False
        seg = seg[np.isfinite(seg)]
        k = max(3, len(seg) // 10)
        first, last = float(np.median(seg[:k])), float(np.median(seg[-k:]))
        head = self.loss[: max(3, len(self.loss) // 100)]
        start = float(np.nanmedian(head)) if np.isfinite(head).any() else np.nan
        learnt = last <= 0.9 * first or (np.isfinite(start) and first <= 0.5 * start)
        return bool(learnt and last <= first * 1.05 + 1e-12)


def weight(f: Finding) -> float:
    return SEVERITY_WEIGHT[f.severity] * f.confidence


def _can_produce(a: Finding, b: Finding, facts: RunFacts) -> bool:
    if a is b or b.code not in produces(a.code):
        return False
    if a.steps[0] > b.steps[0] + facts.tolerance():
        return False
    return not facts.trained_well(a.steps[0], b.steps[0])


def explains(a: Finding, b: Finding, facts: RunFacts) -> bool:
    """Whether ``a``'s mechanism and timing account for ``b``'s evidence."""
    if not _can_produce(a, b, facts):
        return False
    if not _can_produce(b, a, facts):
        return True
    if a.steps[0] != b.steps[0]:
        return a.steps[0] < b.steps[0]
    return (weight(a), b.code) > (weight(b), a.code)


def link(findings: list[Finding], facts: RunFacts) -> None:
    """Fill ``explains``, ``explained_by`` and ``related`` of every finding."""
    for f in findings:
        f.explains = sorted({b.code for b in findings if explains(f, b, facts)})
        f.explained_by = sorted({a.code for a in findings if explains(a, f, facts)})
        f.related = f.explains if f.kind == "cause" else f.explained_by
        if f.kind == "cause" and not f.related:
            f.related = list(f.explained_by)


def _tier(f: Finding, findings: list[Finding], facts: RunFacts) -> int:
    strong = [a for a in findings if a.kind == "cause" and a.severity != "info" and explains(a, f, facts)]
    if strong:
        return 2
    later = [b for b in findings if b.severity != "info" and b.steps[0] > f.steps[0]
             and not explains(f, b, facts) and facts.trained_well(f.steps[0], b.steps[0])]
    return 1 if later else 0


def rank(findings: list[Finding], facts: RunFacts | None = None) -> list[Finding]:
    """Causes (root, background, explained tiers), then symptoms; links filled in."""
    facts = facts or RunFacts()
    link(findings, facts)
    by_code = {f.code: f for f in findings}
    score = {id(f): weight(f) + 0.5 * sum(weight(by_code[c]) for c in f.explains if c in by_code)
             for f in findings}

    def key(f: Finding) -> tuple:
        tier = _tier(f, findings, facts) if f.kind == "cause" else 0
        return (f.kind != "cause", tier, SEVERITY_ORDER[f.severity], -score[id(f)], f.steps[0], f.code)

    return sorted(findings, key=key)
