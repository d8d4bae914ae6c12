"""The ``trainwreck`` command (also ``python -m trainwreck`` and, in a checkout, ``python main.py``)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence

EXIT_OK, EXIT_USAGE, EXIT_BAD_FILE = 0, 1, 2
PROG = "trainwreck"
USAGE = """\
usage: trainwreck [TRACE ...]           open the desktop app (with those traces)
       trainwreck analyze TRACE [TRACE ...] [--json]
                                        diagnose recorded runs in the terminal
       trainwreck demo [--quick] [--no-gui] [--out DIR]
                                        record traces of classic failures and open them
       trainwreck detectors             every finding code and what it looks at
       trainwreck --version

Each command takes --help. Record a run from Python: `from recorders import TraceRecorder`."""
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
        if f.explains:
            lines.append(f"     explains: {', '.join(f.explains)}")
        if f.explained_by:
            lines.append(f"     explained by: {', '.join(f.explained_by)}")
    for note in report.notes:
        lines.append(f"  note: {note}")
    return "\n".join(lines)


def cmd_analyze(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog=f"{PROG} analyze",
        description="Diagnose recorded runs: the findings, most likely root cause first.",
        epilog="Exit 0 when every trace was analysed (whatever was found), 2 when a file is missing, "
        "not a trace, too new or too old, or corrupt (one line on stderr each).",
    )
    parser.add_argument("traces", nargs="+", metavar="TRACE",
                        help="a trace file; for a multi-process run, the path given to the recorder "
                        "or any rank's file")
    parser.add_argument("--json", action="store_true",
                        help='one JSON object per run on stdout: {"trace", "steps", "findings": [{"code", '
                        '"kind", "severity", "confidence", "steps", "layer", "title", "evidence", "fix"}…]}')
    args = parser.parse_args(argv)

    from analysis import analyze
    from analysis.errors import TraceCorrupt, TraceError

    status = EXIT_OK
    for path in args.traces:
        try:
            try:
                report = analyze(path, progress=None if args.json else _progress_printer(path))
            except (OSError, KeyError, ValueError, RuntimeError) as exc:
                raise TraceCorrupt(path, str(exc).splitlines()[0] if str(exc) else type(exc).__name__) \
                    from None
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


# --------------------------------------------------------------------------- demo
def _scenarios():
    """The demo scenarios: the checkout's ``examples`` package (it is not installed)."""
    try:
        import examples
    except ImportError:
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        if not os.path.isfile(os.path.join(root, "examples", "__init__.py")):
            raise
        sys.path.insert(0, root)
        import examples
    return examples


def cmd_demo(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog=f"{PROG} demo",
                                     description="Record traces of classic failures and open them.")
    parser.add_argument("--out", default="demo_traces", help="folder for the traces (default: %(default)s)")
    parser.add_argument("--quick", action="store_true", help="short runs")
    parser.add_argument("--no-gui", action="store_true", help="only write the traces and print diagnoses")
    parser.add_argument("--scenarios", nargs="*",
                        help="scenario names (default: a classic selection; an unknown name lists them)")
    args = parser.parse_args(argv)

    try:
        import sklearn  # noqa: F401 - the examples train on scikit-learn's bundled datasets

        examples = _scenarios()
    except ImportError as exc:
        _err(f"the demo needs its extra dependencies ({exc.name}): pip install 'trainwreck[demo]'")
        return EXIT_USAGE

    names = args.scenarios or [n for n in DEMO_SCENARIOS if n in examples.SCENARIOS]
    if not names:
        names = sorted(examples.SCENARIOS)[:8]
    unknown = [n for n in names if n not in examples.SCENARIOS]
    if unknown:
        _err(f"unknown scenario(s): {', '.join(unknown)}; known: {', '.join(sorted(examples.SCENARIOS))}")
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
    # The window opens at once; each trace opens in it as soon as it is recorded.
    return _run_app([], demo_progress=record)


# --------------------------------------------------------------------------- app
def _run_app(paths: Sequence[str], demo_progress=None) -> int:
    try:
        from gui.app import run_app
    except ImportError as exc:
        missing = exc.name or exc
        _err(f"the desktop app needs PySide6 and pyqtgraph ({missing}): pip install 'trainwreck[app]'")
        return EXIT_USAGE
    return int(run_app(list(paths), demo_progress=demo_progress) or 0)


def cmd_detectors(argv: Sequence[str]) -> int:
    argparse.ArgumentParser(prog=f"{PROG} detectors",
                            description="List every finding code with what it looks at, when it fires, "
                            "its evidence and fix.").parse_args(argv)
    from analysis.detectors import REGISTRY

    for code, det in sorted(REGISTRY.items(), key=lambda kv: (kv[1].kind, kv[0])):
        print(f"{code} ({det.kind})")
        for line in det.doc.splitlines():
            print(f"    {line}")
        print()
    return EXIT_OK


COMMANDS = {"analyze": cmd_analyze, "demo": cmd_demo, "detectors": cmd_detectors}


def _dispatch(argv: list[str]) -> int:
    if argv and argv[0] in COMMANDS:
        return COMMANDS[argv[0]](argv[1:])
    if argv and argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return EXIT_OK
    if argv and argv[0] == "--version":
        from trainwreck import __version__

        print(f"{PROG} {__version__}")
        return EXIT_OK
    if argv and argv[0].startswith("-"):
        _err(f"unknown option {argv[0]}; see {PROG} --help")
        return EXIT_USAGE
    return _run_app(argv)


def _quiet_broken_pipe() -> int:
    """stdout's reader went away (``trainwreck analyze … | head``): stop without a traceback."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # the interpreter's final flush must not fail again
    except (OSError, ValueError):
        pass
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    try:
        code = _dispatch(list(sys.argv[1:] if argv is None else argv))
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        return _quiet_broken_pipe()
    except KeyboardInterrupt:
        return 130
