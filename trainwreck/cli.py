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
       trainwreck report TRACE [-o REPORT.html]
                                        the diagnosis with its evidence figures (no display needed)
       trainwreck demo [--quick] [--no-gui] [--out DIR]
                                        record traces of classic failures and open them
       trainwreck detectors             every finding code and what it looks at
       trainwreck --version

Each command takes --help. Record a run from Python: `from recorders import TraceRecorder`."""


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


def _analyze_path(path: str, progress=None):
    """``analyze(path)``, every reader failure turned into one ``TraceError`` line."""
    from analysis import analyze
    from analysis.errors import TraceCorrupt

    try:
        return analyze(path, progress=progress)
    except (OSError, KeyError, ValueError, RuntimeError) as exc:
        raise TraceCorrupt(path, str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from None


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
def _default_report(trace: str) -> str:
    stem = os.path.splitext(os.path.basename(trace))[0]
    return os.path.join(os.path.dirname(os.path.abspath(trace)), f"{stem}-diagnosis.html")


def cmd_report(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog=f"{PROG} report",
        description="Write the diagnosis of a recorded run with the figures that show each finding's "
        "evidence, as one HTML page (figures embedded) or Markdown. Needs no display.",
        epilog="Exit 0 when written, 2 with one line on stderr when the trace cannot be read or the "
        "report cannot be written.")
    parser.add_argument("trace", metavar="TRACE",
                        help="a trace file (or any rank's file of a multi-process run)")
    parser.add_argument("-o", "--out", metavar="REPORT",
                        help="report file, .html or .md (default: <trace>-diagnosis.html beside the trace); "
                        "figures go to <REPORT>_files/")
    args = parser.parse_args(argv)
    out = args.out or _default_report(args.trace)
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
    except ImportError as exc:  # gui.report imports Qt only when it draws
        _err(f"the report's figures need PySide6 and pyqtgraph ({exc.name}): pip install 'trainwreck[app]'")
        return EXIT_BAD_FILE
    except (TraceError, OSError) as exc:
        _err(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        return EXIT_BAD_FILE
    print(f"wrote {path} ({len(report.findings)} finding(s))")
    return EXIT_OK


# --------------------------------------------------------------------------- demo
def _scenario_names() -> list[str]:
    """Scenarios the demo can record: those shipped in ``resources.demo``, plus a checkout's ``examples``."""
    from resources import demo

    names = set(demo.names())
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if os.path.isfile(os.path.join(root, "examples", "__init__.py")):
        names |= {n[:-3] for n in os.listdir(os.path.join(root, "examples"))
                  if n.endswith(".py") and not n.startswith("_")}
    return sorted(names)


def _record_in_child(names: list[str], out: str, quick: bool, progress=None):
    """Record ``names`` in a child process (``resources.demo.record``), yielding each trace when written."""
    import atexit
    import subprocess

    from resources.demo.record import TRACE_PREFIX

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p))
    cmd = [sys.executable, "-m", "resources.demo.record", "--out", out, *(["--quick"] if quick else []),
           *names]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env, bufsize=1)
    atexit.register(lambda: proc.poll() is None and proc.kill())  # the app closed while recording
    done = 0
    for line in proc.stdout:
        line = line.rstrip("\n")
        if line.startswith(TRACE_PREFIX):
            done += 1
            yield line[len(TRACE_PREFIX):]
            continue
        print(line, flush=True)
        if progress and line.startswith("[") and " recording " in line:
            progress(done, len(names), line)
    if proc.wait() != 0:
        raise RuntimeError(f"recording stopped after {done} of {len(names)} traces (exit {proc.returncode})")
    if progress:
        progress(len(names), len(names), "all demo traces written")


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
        import sklearn  # noqa: F401 - the scenarios train on scikit-learn's bundled datasets

        from resources.demo import DEMO_SCENARIOS
    except ImportError as exc:
        _err(f"the demo needs its extra dependencies ({exc.name}): pip install 'trainwreck[demo]'")
        return EXIT_USAGE

    known = _scenario_names()
    names = args.scenarios or [n for n in DEMO_SCENARIOS if n in known]
    unknown = [n for n in names if n not in known]
    if unknown:
        _err(f"unknown scenario(s): {', '.join(unknown)}; known: {', '.join(known)}")
        return EXIT_USAGE
    if not args.no_gui and _no_display():
        _err(NO_DISPLAY + f"; or only record the demo traces: `{PROG} demo --no-gui`")
        return EXIT_BAD_FILE
    os.makedirs(args.out, exist_ok=True)

    def record(progress=None):
        return _record_in_child(names, args.out, args.quick, progress)

    if args.no_gui:
        try:
            paths = list(record())
        except RuntimeError as exc:
            _err(str(exc))
            return EXIT_BAD_FILE
        return cmd_analyze(paths)
    # The window opens at once; each trace opens in it as soon as it is recorded.
    return _run_app([], demo_progress=record)


# --------------------------------------------------------------------------- app
NO_DISPLAY = (f"no display to open the app on (DISPLAY and WAYLAND_DISPLAY are unset); diagnose in the "
              f"terminal with `{PROG} analyze TRACE`, or write `{PROG} report TRACE -o report.html`")


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


COMMANDS = {"analyze": cmd_analyze, "report": cmd_report, "demo": cmd_demo, "detectors": cmd_detectors}


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
