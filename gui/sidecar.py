"""State kept beside a trace (viewer spec D0.6): ``run.h5.trainwreck.json``.

Bookmarks, notes, suppressed findings and locked colour limits, as plain JSON. Pure
Python (no Qt). A sidecar is never trusted: anything that is not the expected shape
(wrong types, NaN, huge files, hostile nesting) is dropped, and ``load`` says what it
ignored in one line instead of raising.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from typing import Any

SUFFIX = ".trainwreck.json"
VERSION = 1
MAX_BYTES = 2_000_000
MAX_ITEMS = 10_000
MAX_TEXT = 4_000


def sidecar_path(trace_path: str) -> str:
    return os.fspath(trace_path) + SUFFIX


def finding_key(finding: Any) -> str:
    """How a finding is named in the sidecar: ``code@layer`` (stable across re-analysis)."""
    return f"{finding.code}@{finding.layer or ''}"


@dataclass
class Sidecar:
    bookmarks: list[int] = field(default_factory=list)
    notes: list[dict[str, Any]] = field(default_factory=list)  # {"step": int, "text": str}
    suppressed: list[str] = field(default_factory=list)  # finding keys
    levels: dict[str, list[float]] = field(default_factory=dict)  # heatmap metric → [lo, hi]

    def to_json(self) -> dict[str, Any]:
        return {"format": "trainwreck-sidecar", "version": VERSION, "bookmarks": sorted(set(self.bookmarks)),
                "notes": self.notes, "suppressed": sorted(set(self.suppressed)), "levels": self.levels}

    def empty(self) -> bool:
        return not (self.bookmarks or self.notes or self.suppressed or self.levels)


def _int(v: Any) -> int | None:
    return int(v) if isinstance(v, int) and not isinstance(v, bool) and abs(v) < 2**62 else None


def _levels(raw: Any) -> tuple[dict[str, list[float]], int]:
    out, bad = {}, 0
    for k, v in (raw.items() if isinstance(raw, dict) else []):
        ok = (isinstance(k, str) and len(k) < 100 and isinstance(v, list) and len(v) == 2
              and all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in v)
              and v[0] < v[1])
        if ok:
            out[k] = [float(v[0]), float(v[1])]
        else:
            bad += 1
    return out, bad


def parse(data: Any) -> tuple[Sidecar, int]:
    """A ``Sidecar`` from decoded JSON, and how many entries were dropped as malformed."""
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    bad = 0
    marks = data.get("bookmarks", [])
    marks = marks[:MAX_ITEMS] if isinstance(marks, list) else []
    bookmarks = [b for b in (_int(x) for x in marks) if b is not None]
    bad += len(marks) - len(bookmarks)
    notes = []
    raw_notes = data.get("notes", [])
    for n in (raw_notes[:MAX_ITEMS] if isinstance(raw_notes, list) else []):
        if isinstance(n, dict) and _int(n.get("step")) is not None and isinstance(n.get("text"), str):
            notes.append({"step": int(n["step"]), "text": n["text"][:MAX_TEXT]})
        else:
            bad += 1
    raw_sup = data.get("suppressed", [])
    raw_sup = raw_sup[:MAX_ITEMS] if isinstance(raw_sup, list) else []
    suppressed = [s for s in raw_sup if isinstance(s, str) and len(s) < 500]
    bad += len(raw_sup) - len(suppressed)
    levels, bad_levels = _levels(data.get("levels", {}))
    return Sidecar(bookmarks, notes, suppressed, levels), bad + bad_levels


def load(trace_path: str) -> tuple[Sidecar, str | None]:
    """The sidecar beside ``trace_path`` (empty when there is none) and a one-line message when
    the file was unreadable or partly malformed (what was kept is still returned)."""
    path = sidecar_path(trace_path)
    if not os.path.exists(path):
        return Sidecar(), None
    name = os.path.basename(path)
    try:
        if os.path.getsize(path) > MAX_BYTES:
            return Sidecar(), f"{name}: ignored (larger than {MAX_BYTES // 1_000_000} MB)"
        with open(path, encoding="utf-8") as fh:
            data = json.loads(fh.read(), parse_constant=lambda c: None)
        sc, bad = parse(data)
    except (OSError, UnicodeDecodeError, RecursionError, ValueError) as exc:
        return Sidecar(), f"{name}: ignored ({type(exc).__name__}: {str(exc)[:80]})"
    return sc, (f"{name}: {bad} malformed entries ignored" if bad else None)


def save(trace_path: str, sc: Sidecar) -> str | None:
    """Write atomically; returns a one-line message when the folder is not writable (never raises)."""
    path = sidecar_path(trace_path)
    try:
        if sc.empty() and not os.path.exists(path):
            return None
        fd, tmp = tempfile.mkstemp(prefix=".tw-", suffix=".json", dir=os.path.dirname(path) or ".")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(sc.to_json(), fh, indent=1)
        os.replace(tmp, path)
    except OSError as exc:
        return f"cannot save {os.path.basename(path)}: {exc.strerror or exc}"
    return None
