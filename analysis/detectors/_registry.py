"""The detector registry: ``@detector(code=..., kind=..., requires=...)`` on a pure function.

A detector takes a ``Trace`` and returns a ``Finding``, a list of them, or None.
``requires`` names schema paths (``"outputs"``, ``"modules/a_dead_frac"``…) the
runner checks before calling it, so a detector never guesses at missing data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from analysis.findings import Finding
from analysis.mechanisms import produces
from analysis.trace import Trace

Result = Finding | Iterable[Finding] | None
DetectFn = Callable[[Trace], Result]


@dataclass(frozen=True)
class Detector:
    code: str
    kind: str
    requires: tuple[str, ...]
    fn: DetectFn
    doc: str

    @property
    def produces(self) -> tuple[str, ...]:
        """What this finding's mechanism can bring about (its row of ``analysis.mechanisms``)."""
        return produces(self.code)

    def missing(self, trace: Trace) -> list[str]:
        """The required paths this trace lacks."""
        return [r for r in self.requires if not trace.has(r)]

    def run(self, trace: Trace) -> list[Finding]:
        result = self.fn(trace)
        if result is None:
            return []
        if isinstance(result, Finding):
            return [result]
        return list(result)


REGISTRY: dict[str, Detector] = {}


def detector(code: str, kind: str, requires: tuple[str, ...] = ()) -> Callable[[DetectFn], DetectFn]:
    """Register ``fn`` under ``code``; its module docstring is its documentation.

    What the finding's mechanism produces is declared in ``analysis.mechanisms.PRODUCES``
    (one table for every code), which ranking reads to put a cause before its consequences.
    """

    def wrap(fn: DetectFn) -> DetectFn:
        import sys

        if code in REGISTRY:
            raise ValueError(f"detector {code!r} registered twice")
        module_doc = sys.modules[fn.__module__].__doc__ or ""
        REGISTRY[code] = Detector(code, kind, tuple(requires), fn, module_doc.strip())
        return fn

    return wrap
