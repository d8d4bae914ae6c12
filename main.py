"""Trainwreck entry point.

    python main.py [TRACE ...]              open the desktop app (with those traces)
    python main.py analyze TRACE [...] [--json]
                                            headless diagnosis; exit 2 on unusable files
    python main.py report TRACE [-o REPORT.html]
                                            the diagnosis with its figures; needs no display
    python main.py demo [--out DIR] [--quick] [--no-gui]
                                            record traces of classic failures, open them
    python main.py detectors                list every finding code with its documentation
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence

EXIT_OK, EXIT_USAGE, EXIT_BAD_FILE = 0, 1, 2
DEMO_SCENARIOS = (
    "seed003_double_softmax_binary",
    "seed000_large_init_onehot",
    "seed001_constant_targets",
    "seed001_relu_output",
    "seed002_symmetric_init",
    "seed004_label_leakage",
    "lr_too_high",
    "dead_relu",
    "healthy_cnn_digits",
)


def _err(msg: str) -> None:
    print(f"trainwreck: {msg}", file=sys.stderr)


# --------------------------------------------------------------------------- analyze
def _progress_printer(path: str):
    """A progress bar on stderr for long traces, shown only on a terminal."""
    if not sys.stderr.isatty():
        return None
    start = time.monotonic()

    def show(done: int, total: int, code: str) -> None:
        if time.monotonic() - start < 0.5 and done < total:
            return
        width = 24
        fill = int(width * done / max(total, 1))
        end = "\n" if done >= total else ""
        sys.stderr.write(f"\ranalysing {os.path.basename(path)} [{'#' * fill}{'.' * (width - fill)}] "
                         f"{done}/{total} {code:<24}{end}")
        sys.stderr.flush()

    return show


def _format_report(report) -> str:
    lines = [f"{report.trace} — {report.steps} steps, {len(report.findings)} finding(s)"]
    if not report.findings:
        lines.append("  no problem found")
    for i, f in enumerate(report.findings, 1):
        where = f"steps {f.steps[0]}–{f.steps[1]}" + (f", layer {f.layer}" if f.layer else "")
        lines.append(f"  {i}. {f.severity.upper():<7} {f.code} ({f.kind}, confidence {f.confidence:.2f}) "
                     f"{where}")
        lines.append(f"     {f.title}")
        lines.append(f"     evidence: {f.evidence}")
        lines.append(f"     fix: {f.fix}")
        if f.related:
            rel = "explains" if f.kind == "cause" else "explained by"
            lines.append(f"     {rel}: {', '.join(f.related)}")
    for note in report.notes:
        lines.append(f"  note: {note}")
    return "\n".join(lines)


def _analyze_path(path: str, progress=None):
    """``analyze(path)``, every reader failure turned into one ``TraceError`` line."""
    from analysis import analyze
    from analysis.errors import TraceCorrupt

    try:
        return analyze(path, progress=progress)
    except (OSError, KeyError, ValueError, RuntimeError) as exc:
        raise TraceCorrupt(path, str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from None


def cmd_analyze(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="main.py analyze", description="Diagnose recorded runs.")
    parser.add_argument("traces", nargs="+", metavar="TRACE")
    parser.add_argument("--json", action="store_true", help="one JSON object per run (CONTRACT §3)")
    args = parser.parse_args(argv)

    from analysis.errors import TraceError

    status = EXIT_OK
    for path in args.traces:
        try:
            report = _analyze_path(path, progress=None if args.json else _progress_printer(path))
        except TraceError as exc:
            _err(str(exc))
            status = EXIT_BAD_FILE
            continue
        if args.json:
            print(json.dumps(report.to_json()))
        else:
            print(_format_report(report))
        sys.stdout.flush()
    return status


# --------------------------------------------------------------------------- report
def cmd_report(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="main.py report",
        description="Write the diagnosis of a recorded run with its evidence figures (HTML or Markdown). "
                    "Needs no display.")
    parser.add_argument("trace", metavar="TRACE")
    parser.add_argument("-o", "--out", metavar="REPORT",
                        help="report file, .html or .md (default: <trace>-diagnosis.html beside the trace)")
    args = parser.parse_args(argv)
    out = args.out or os.path.join(os.path.dirname(os.path.abspath(args.trace)),
                                   os.path.splitext(os.path.basename(args.trace))[0] + "-diagnosis.html")
    if not out.lower().endswith((".html", ".htm", ".md")):
        _err(f"{out}: the report is written as .html or .md")
        return EXIT_BAD_FILE
    from analysis.errors import TraceError

    try:
        report = _analyze_path(args.trace, progress=_progress_printer(args.trace))
    except TraceError as exc:
        _err(str(exc))
        return EXIT_BAD_FILE
    try:
        from gui.report import write_headless
    except ImportError as exc:
        _err(f"the report's figures need PySide6 and pyqtgraph ({exc.name}): pip install 'trainwreck[app]'")
        return EXIT_BAD_FILE
    try:
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        path = write_headless(args.trace, out, report)
    except (TraceError, OSError) as exc:
        _err(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        return EXIT_BAD_FILE
    print(f"wrote {path} ({len(report.findings)} finding(s))")
    return EXIT_OK


# --------------------------------------------------------------------------- demo
def cmd_demo(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="main.py demo",
                                     description="Record traces of classic failures and open them.")
    parser.add_argument("--out", default="demo_traces", help="folder for the traces (default: %(default)s)")
    parser.add_argument("--quick", action="store_true", help="short runs")
    parser.add_argument("--no-gui", action="store_true", help="only write the traces and print diagnoses")
    parser.add_argument("--scenarios", nargs="*", help="example names (default: a classic selection)")
    args = parser.parse_args(argv)

    try:
        import sklearn  # noqa: F401 - the examples train on scikit-learn's bundled datasets

        import examples
    except ImportError as exc:
        _err(f"the demo needs the example dependencies ({exc.name}): pip install -e '.[demo]'")
        return EXIT_USAGE

    names = args.scenarios or [n for n in DEMO_SCENARIOS if n in examples.SCENARIOS]
    if not names:
        names = sorted(examples.SCENARIOS)[:8]
    unknown = [n for n in names if n not in examples.SCENARIOS]
    if unknown:
        _err(f"unknown scenario(s): {', '.join(unknown)}; see examples/")
        return EXIT_USAGE
    os.makedirs(args.out, exist_ok=True)

    def record(progress=None):
        """Record each scenario, yielding its trace as soon as it is written."""
        for i, name in enumerate(names):
            path = os.path.join(args.out, f"{name}.h5")
            label = f"[{i + 1}/{len(names)}] recording {name} → {path}"
            print(label, flush=True)
            if progress:
                progress(i, len(names), label)
            examples.run_scenario(name, path, quick=args.quick)
            yield path
        if progress:
            progress(len(names), len(names), "all demo traces written")

    if args.no_gui:
        return cmd_analyze(list(record()))
    if _no_display():
        _err(NO_DISPLAY + "; or record the demo traces only: `main.py demo --no-gui`")
        return EXIT_BAD_FILE
    # The window opens at once; each trace opens in it as soon as it is recorded.
    return _run_app([], demo_progress=record)


# --------------------------------------------------------------------------- app
NO_DISPLAY = ("no display to open the app on (DISPLAY and WAYLAND_DISPLAY are unset); diagnose in the "
              "terminal with `trainwreck analyze TRACE`, or write `trainwreck report TRACE -o report.html`")


def _no_display() -> bool:
    """Whether Qt would abort for want of a display (X11/Wayland systems with neither set)."""
    if sys.platform.startswith(("win", "darwin")):
        return False
    return not any(os.environ.get(k) for k in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"))


def _run_app(paths: Sequence[str], demo_progress=None) -> int:
    if _no_display():
        _err(NO_DISPLAY)
        return EXIT_BAD_FILE
    try:
        from gui.app import run_app
    except ImportError as exc:
        _err(f"the desktop app needs PySide6 and pyqtgraph ({exc}); `pip install -e .`")
        return EXIT_USAGE
    return int(run_app(list(paths), demo_progress=demo_progress) or 0)


def cmd_detectors(argv: Sequence[str]) -> int:
    from analysis.detectors import REGISTRY

    for code, det in sorted(REGISTRY.items(), key=lambda kv: (kv[1].kind, kv[0])):
        print(f"{code} ({det.kind})")
        for line in det.doc.splitlines():
            print(f"    {line}")
        print()
    return EXIT_OK


COMMANDS = {"analyze": cmd_analyze, "report": cmd_report, "demo": cmd_demo, "detectors": cmd_detectors}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in COMMANDS:
        return COMMANDS[argv[0]](argv[1:])
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__)
        return EXIT_OK
    return _run_app(argv)


if __name__ == "__main__":
    sys.exit(main())
