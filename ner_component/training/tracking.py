"""Experiment tracking: the training log and curve every run keeps, and Weights &
Biases when asked (`--vars.logger wandb`).

Every training run writes `training/<lang>/log.jsonl` (one line per dev evaluation,
from `ner_component.TimedConsoleLogger.v1`) and draws it as
`metrics/<lang>/training_curve.png`. With W&B, spaCy's training logger becomes
spacy-loggers' `spacy.ChainLogger.v1` of the training config's own logger (console
output and log.jsonl stay) and `spacy.WandbLogger.v5` as `configs/wandb.cfg` sets it;
the package step then adds the test-split seqeval figures to the same run.
`WANDB_MODE=offline` keeps the run in `wandb/offline-run-*` for a later `wandb sync`.
"""
import os
import uuid
from pathlib import Path
from typing import Any, Dict, List, Optional

from ner_component.errors import NerComponentError
from ner_component.util import PathLike, atomic_path, require_extra

LOGGERS = ("console", "wandb")
TIMED_LOGGER = "ner_component.TimedConsoleLogger.v1"
LOG_FILE = "log.jsonl"
CURVE_FILE = "training_curve.png"
WANDB_CONFIG = Path(__file__).parents[2] / "configs" / "wandb.cfg"
# train_info.json key with the W&B run, so later steps log to the same run
WANDB_INFO = "wandb"


class TrackingError(NerComponentError):
    """A tracking setting is wrong; the message says which."""


def check_logger(logger: str) -> str:
    if logger not in LOGGERS:
        raise TrackingError(f"--logger: expected one of {', '.join(LOGGERS)}, found '{logger}'")
    if logger == "wandb":
        require_extra("wandb", "wandb", "--logger wandb (Weights & Biases)")
    return logger


def logger_config(
    base: Dict[str, Any], log_path: PathLike, logger: str, wandb_config: PathLike = WANDB_CONFIG
) -> Dict[str, Any]:
    """The [training.logger] block a run uses: the training config's own logger with
    its JSONL log at `log_path`, chained with W&B's logger for `logger="wandb"`.

    base (Dict[str, Any]): The config's [training.logger] block (uninterpolated).
    log_path (PathLike): Where the timed logger writes its JSON lines.
    logger (str): "console" or "wandb".
    wandb_config (PathLike): The partial config with the W&B chain.
    RETURNS (Dict[str, Any]): The block.
    """
    from thinc.api import Config

    check_logger(logger)
    console = dict(base)
    if console.get("@loggers") != TIMED_LOGGER:
        raise TrackingError(
            f"[training.logger] is {console.get('@loggers')}: the training log "
            f"({LOG_FILE}) needs {TIMED_LOGGER}"
        )
    console["log_path"] = str(log_path)
    if logger == "console":
        return console
    chain = dict(Config().from_disk(wandb_config, interpolate=False)["training"]["logger"])
    chain["logger1"] = console
    return chain


def without_machine_paths(block: Dict[str, Any], config: Dict[str, Any]) -> Dict[str, Any]:
    """Add to the W&B logger's `remove_config_values` every config value that is an
    absolute path on this machine, and drop names the config doesn't have (the
    logger fails on those), so the config W&B records holds no machine path.

    block (Dict[str, Any]): The chain block from `logger_config`.
    config (Dict[str, Any]): The interpolated training config.
    RETURNS (Dict[str, Any]): The block, changed in place.
    """
    from spacy.util import dict_to_dot

    dotted = dict_to_dot(config)
    for key, sub in block.items():
        if isinstance(sub, dict) and sub.get("@loggers", "").startswith("spacy.WandbLogger"):
            wanted = list(sub.get("remove_config_values") or [])
            wanted += [k for k, v in dotted.items() if isinstance(v, str) and os.path.isabs(v)]
            # the logger's own section is logged too, with the log path in it
            wanted += [k for k in dotted if k.startswith("training.logger.") and k.endswith(".log_path")]
            sub["remove_config_values"] = sorted({k for k in wanted if k in dotted})
    return block


def read_curve_points(log_path: PathLike) -> List[Dict[str, float]]:
    """The evaluations of a training log as curve points: step, training minutes,
    dev F1 (percent) and the mean training loss per step since the previous point."""
    from ner_component.training.loggers import read_log

    rows, _ = read_log(log_path)
    points = []
    previous_step = 0
    for row in rows:
        steps = max(row["step"] - previous_step, 1)
        loss = sum(float(v) for v in (row.get("losses") or {}).values())
        points.append(
            {
                "step": row["step"],
                "minutes": row["train_seconds"] / 60,
                "dev_f1": 100 * (row["dev_f1"] or 0.0),
                "loss": loss / steps if row.get("losses") else float("nan"),
            }
        )
        previous_step = row["step"]
    return points


def plot_training_curve(log_path: PathLike, path: PathLike, title: str = "") -> Path:
    """Draw dev F1 and training loss against steps (left) and training minutes,
    evaluation excluded (right).

    log_path (PathLike): The training log (`log.jsonl`).
    path (PathLike): The PNG to write.
    title (str): The figure title.
    RETURNS (Path): The PNG.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = read_curve_points(log_path)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, x_key, x_label in zip(axes, ("step", "minutes"), ("steps", "training minutes (evaluation excluded)")):
        xs = [p[x_key] for p in points]
        ax.plot(xs, [p["dev_f1"] for p in points], marker="o", markersize=3, color="tab:blue", label="dev F1")
        ax.set_xlabel(x_label)
        ax.set_ylabel("dev F1 (%)", color="tab:blue")
        ax.set_ylim(0, 100)
        ax.set_xlim(left=0)
        ax.grid(alpha=0.3)
        loss_ax = ax.twinx()
        loss_ax.plot(xs, [p["loss"] for p in points], marker=".", color="tab:red", label="loss")
        loss_ax.set_ylabel("training loss per step", color="tab:red")
    fig.suptitle(title or "Training curve")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    return Path(path)


def new_wandb_run(project_name: str) -> Dict[str, str]:
    """Pick the id of the W&B run that training will open (wandb.init reads
    WANDB_RUN_ID), so that the package step can add the test figures to it."""
    run = {"project": project_name, "run_id": uuid.uuid4().hex[:8]}
    os.environ["WANDB_RUN_ID"] = run["run_id"]
    return run


def wandb_project(block: Dict[str, Any]) -> str:
    return next(
        sub["project_name"]
        for sub in block.values()
        if isinstance(sub, dict) and sub.get("@loggers", "").startswith("spacy.WandbLogger")
    )


def log_test_figures(train_info: Optional[Dict[str, Any]], result: Dict[str, Any]) -> Optional[str]:
    """Add the test-split seqeval figures to the training run's W&B run, when
    training logged to W&B (as summary values `test/seqeval_strict_f1`, ...).

    train_info (Optional[Dict[str, Any]]): train_info.json of the run.
    result (Dict[str, Any]): The cross-check result (seqeval.json).
    RETURNS (Optional[str]): The run id, or None when training didn't use W&B.
    """
    run_info = (train_info or {}).get(WANDB_INFO)
    if not run_info:
        return None
    import wandb

    figures: Dict[str, float] = {}
    for mode in ("seqeval_strict", "seqeval_default"):
        for name in ("precision", "recall", "f1", "accuracy"):
            figures[f"test/{mode}_{name}"] = result[mode][name]
    for label, row in result["seqeval_strict"]["per_type"].items():
        figures[f"test/seqeval_strict_{label}_f1"] = row["f1"]
    run = wandb.init(project=run_info["project"], id=run_info["run_id"], resume="allow")
    try:
        run.summary.update(figures)
        run.log(figures)
    finally:
        run.finish()
    return run_info["run_id"]
