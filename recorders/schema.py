"""The trace file's layout: every dataset path, attribute name and the format version.

Torch-free on purpose: the writer (``recorders._writer``) and the only reader
(``analysis.trace``) both import these names, so the layout is spelled once.
See ``docs/trace-format.md`` for what each dataset means.
"""

from __future__ import annotations

FORMAT_NAME = "trainwreck-trace"
FORMAT_VERSION = 2  # 2: the status dataset replaces the steps_written/closed_cleanly attributes
SUPPORTED_VERSIONS = range(1, FORMAT_VERSION + 1)

# Root attributes.
ATTR_FORMAT = "format"
ATTR_VERSION = "format_version"
ATTR_WRITER = "writer_version"
ATTR_CREATED = "created"
ATTR_STEPS_WRITTEN = "steps_written"  # format 1 only; format 2 keeps it in STATUS
ATTR_CLOSED = "closed_cleanly"  # format 1 only; format 2 keeps it in STATUS
ATTR_RANK = "rank"
ATTR_WORLD = "world_size"

# The status record: one fixed-size row, overwritten in place at every flush (SWMR forbids
# rewriting attributes while the file is open). Counts are what is complete on disk.
STATUS = "status"
STATUS_REASON_BYTES = 240
STATUS_FIELDS = (
    ("steps_written", "<i8"),  # rows complete (the row index of steps/, params/, …)
    ("snapshots_written", "<i8"),  # complete entries of snapshots/
    ("hist_written", "<i8"),  # complete rows of hist/
    ("units_written", "<i8"),  # complete rows of units/
    ("scalars_written", "<i8"),  # complete rows of scalars/
    ("closed_cleanly", "<i8"),  # 1 after close(), else 0
    ("stopped_at", "<i8"),  # -1, or the first rec.step index not recorded when recording failed
    ("reason", f"S{STATUS_REASON_BYTES}"),  # why recording stopped (UTF-8), empty if it did not
)
STATUS_COUNTS = {  # growable datasets whose readable length a status count caps
    "snapshots_written": ("snapshots/step", "snapshots/reason"),
    "hist_written": ("hist/step",),
    "units_written": ("units/step",),
    "scalars_written": ("scalars/step", "scalars/name_id", "scalars/value"),
}

# /meta attributes, each a JSON string.
META = "meta"
META_KEYS = ("model", "optimizer", "loss", "env", "options")

# Per-step scalars, shape (N,) unless noted.
STEPS = "steps"
STEP = "steps/step"  # int64 global step index of each row
TIME = "steps/time"  # float64 seconds since the recorder started
LOSS = "steps/loss"  # float64
LR = "steps/lr"  # (N, G) float64, one column per param group
GRAD_CARRY = "steps/grad_carry"  # float32, see docs
MEASURED = "steps/measured"  # uint8 bit mask per row: which statistic groups the row measured
MEASURED_PARAMS = 1  # params/ w_* and g_* (and the grad probe's grad_carry when armed)
MEASURED_MODULES = 2  # modules/ a_*
MEASURED_UPDATE = 4  # params/update_ratio
MEASURED_GROUPS = {"params": MEASURED_PARAMS, "modules": MEASURED_MODULES, "update": MEASURED_UPDATE}

# Parameters: static index + (N, P) statistics.
PARAMS = "params"
PARAM_NAMES = "params/names"
PARAM_MODULE = "params/module"
PARAM_NUMEL = "params/numel"
PARAM_REQUIRES_GRAD = "params/requires_grad"
PARAM_IN_OPTIMIZER = "params/in_optimizer"
PARAM_LOCAL_NUMEL = "params/local_numel"  # (P,) int64, sharded runs only: elements this rank holds
PARAM_SHARDED = "params/sharded"  # (P,) bool, sharded runs only: the rank holds a shard, not a replica
PARAM_SHAPES_ATTR = "shapes"  # JSON list of shapes, attribute of /params
PARAM_STATS = (
    "w_norm",
    "w_mean",
    "w_std",
    "w_maxabs",
    "w_nonfinite",
    "g_norm",
    "g_maxabs",
    "g_zero_frac",
    "g_nonfinite",
    "update_ratio",
)

# Leaf modules: static index + (N, M) activation statistics.
MODULES = "modules"
MODULE_NAMES = "modules/names"
MODULE_TYPES = "modules/types"
MODULE_STATS = (
    "a_mean",
    "a_std",
    "a_maxabs",
    "a_zero_frac",
    "a_sat_frac",
    "a_dead_frac",
    "a_nonfinite",
)

# Batch summaries of what was passed to rec.step.
OUTPUTS = "outputs"
OUTPUT_FIELDS = (
    "sample",  # (N, R, C) float32
    "col_mean",  # (N, C)
    "col_std",  # (N, C)
    "argmax_hist",  # (N, C) int32
    "row_sum_mean",  # (N,)
    "row_sum_std",  # (N,)
    "min",  # (N,)
    "max",  # (N,)
    "frac_in_01",  # (N,)
    "softmax_maxprob",  # (N,)
    "nonfinite",  # (N,)
)
TARGETS = "targets"
TARGET_FIELDS = ("sample", "class_hist", "mean", "std", "min", "max", "nonfinite")
INPUTS = "inputs"
INPUT_FIELDS = ("sample", "feat_mean", "feat_std", "mean", "std", "maxabs", "nonfinite")

# Extra scalars from rec.log: a long table.
SCALARS = "scalars"
SCALAR_NAMES = "scalars/names"  # (64,) fixed-capacity vlen str
SCALAR_CAPACITY = 64
SCALAR_STEP = "scalars/step"  # (K,) int64
SCALAR_ID = "scalars/name_id"  # (K,) int32
SCALAR_VALUE = "scalars/value"  # (K,) float64

# Periodic full tensors.
SNAPSHOTS = "snapshots"
SNAP_STEP = "snapshots/step"  # (S,) int64
SNAP_REASON = "snapshots/reason"  # (S,) int8
SNAP_WEIGHT = "snapshots/weight"  # group: p{i} -> (S, *reduced_shape)
SNAP_GRAD = "snapshots/grad"  # group: p{i} -> (S, *reduced_shape)
SNAP_REASONS = {0: "periodic", 1: "first", 2: "last", 3: "nonfinite"}

# Periodic fixed-bin histograms.
HIST = "hist"
HIST_STEP = "hist/step"  # (H,) int64
HIST_BINS = 64
HIST_KINDS = ("weight", "grad", "act")  # hist/<kind>: (H, P|M, B) int32; hist/<kind>_range: (H, P|M, 2)

# Per-unit liveness, OR-ed over windows of steps.
UNITS = "units"
UNIT_STEP = "units/step"  # (W,) int64 last step of each window
UNIT_ALIVE = "units/alive"  # group: m{j} -> (W, U_j) uint8


# Multi-resolution summary: min / max / mean of per-step series over blocks of steps.
SUMMARY = "summary"
SUMMARY_LEVELS = (1, 16)  # block sizes, in units of the summary_block option (default 1024 steps)
SUMMARY_SCALARS = ("loss", "grad_carry", "lr0", "g_norm_total", "w_norm_total", "update_ratio_max")
SUMMARY_PARAM_STATS = ("w_norm", "g_norm", "update_ratio")
SUMMARY_MODULE_STATS = ("a_std", "a_zero_frac", "a_dead_frac")


def summary_level(block_steps: int) -> str:
    """Group of one summary level: ``summary/b1024``."""
    return f"{SUMMARY}/b{block_steps}"


def param_key(index: int) -> str:
    """Dataset name of parameter ``index`` inside the snapshot groups."""
    return f"p{index}"


def module_key(index: int) -> str:
    """Dataset name of module ``index`` inside ``units/alive``."""
    return f"m{index}"


def sibling_path(path: str, tag: str) -> str:
    """``run.h5`` -> ``run.<tag>.h5``: where an existing trace is moved (``prev1``), or where a
    run records when ``path`` is in use by another process (``pid<PID>``)."""
    stem, dot, ext = path.rpartition(".")
    if not dot or "/" in ext:
        return f"{path}.{tag}"
    return f"{stem}.{tag}.{ext}"


def rank_path(path: str, rank: int) -> str:
    """The file a DDP rank writes beside ``path``: ``run.h5`` -> ``run.rank1.h5``."""
    stem, dot, ext = path.rpartition(".")
    if not dot or "/" in ext:
        return f"{path}.rank{rank}"
    return f"{stem}.rank{rank}.{ext}"
