"""Train a pipeline from a config with spaCy's own training loop."""
import difflib
import json
import os
import re
import shutil
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterator, Optional, Tuple

from spacy.cli._util import parse_config_overrides
from wasabi import msg

from ner_component.backbones import config_transformer, resolve_transformer
from ner_component.errors import NerComponentError
from ner_component.hardware import CACHE_ENV, bound_kernel_caches, describe, require_device
from ner_component.training import batching  # noqa: F401  registers the configs' get_length, entry points or not
from ner_component.training.loggers import TrainingBudgetExhausted
from ner_component.training.tracking import (
    LOG_FILE,
    TIMED_LOGGER,
    WANDB_INFO,
    TrackingError,
    check_logger,
    logger_config,
    new_wandb_run,
    plot_training_curve,
    wandb_project,
    without_machine_paths,
)
from ner_component.util import PathLike, character_segmented_corpus, spacy_lang, write_json_atomic

TRAIN_INFO = "train_info.json"
# `configs/auto`: the default config, for every language (README, "Choosing the config").
AUTO_CONFIG = "auto"
DEFAULT_CONFIG = "cpu_e5.cfg"
OUR_TRANSFORMER = "ner_component.TransformerModel.v1"


def resolve_config(config_path: PathLike) -> Path:
    """The training config to use: `<folder>/auto` is the multilingual one (cased
    multilingual-e5-small, which reads every script WikiANN has) for every language,
    English included (test F1 83 against MiniLM's 80 at less training time on a
    bfloat16 CPU: docs/benchmarks.md); any other path is itself.

    config_path (PathLike): A config, or `<folder>/auto`.
    RETURNS (Path): The config file.
    RAISES (NerComponentError): When it doesn't exist.
    """
    path = Path(config_path)
    if path.name == AUTO_CONFIG:
        path = path.parent / DEFAULT_CONFIG
    if not path.is_file():
        raise NerComponentError(f"{path}: training config not found")
    return path


# The most of a step budget that the learning-rate warmup may take.
MAX_WARMUP_SHARE = 0.1


def warmup_for_budget(config_path: PathLike, max_steps: int) -> Dict[str, Any]:
    """Shorten the config's learning-rate warmup for a small step budget.

    `warmup_linear.v1` over `total_steps = ${training.max_steps}` with 100 warmup
    steps never reaches its peak rate in a 50-step budget, and the model learns
    nothing (dev F1 0.0 after 50 steps of zh-yue with `cpu_e5.cfg`). A budget gets
    at most a tenth of its steps as warmup; the configs' own budgets are unchanged
    (100 of 2,000 and of 1,000).

    config_path (PathLike): The training config.
    max_steps (int): The step budget.
    RETURNS (Dict[str, Any]): The override of `warmup_steps`, or nothing.
    """
    from spacy.util import load_config

    schedule = load_config(config_path, interpolate=False)["training"]["optimizer"].get("learn_rate")
    warmup = schedule.get("warmup_steps") if isinstance(schedule, dict) else None
    if not isinstance(warmup, int) or warmup <= MAX_WARMUP_SHARE * max_steps:
        return {}
    return {"training.optimizer.learn_rate.warmup_steps": max(1, int(MAX_WARMUP_SHARE * max_steps))}


def character_overrides(config_path: PathLike, lang: str) -> Dict[str, Any]:
    """The config overrides of a character-segmented language (WikiANN's zh, ja,
    zh-yue, zh-classical: `ner_component.data.convert.natural_spaces`): a tokenizer
    that splits text into characters, as the training docs are (spaCy's own for
    Chinese; `ner_component.CharacterTokenizer.v1`, the same splitting, where spaCy
    has no tokenizer for the language or its one needs another package), and each
    character its own wordpiece (`character_pieces` of the transformer).

    config_path (PathLike): The training config.
    lang (str): The WikiANN language code.
    RETURNS (Dict[str, Any]): Config overrides.
    """
    from spacy.util import load_config

    if spacy_lang(lang) == "zh":
        tokenizer: Dict[str, Any] = {"@tokenizers": "spacy.zh.ChineseTokenizer", "segmenter": "char"}
    else:
        tokenizer = {"@tokenizers": "ner_component.CharacterTokenizer.v1"}
    overrides: Dict[str, Any] = {"nlp.tokenizer": tokenizer}
    config = load_config(config_path, interpolate=False)
    model = config.get("components", {}).get("transformer", {}).get("model", {})
    if model.get("@architectures") == OUR_TRANSFORMER:
        overrides["components.transformer.model.character_pieces"] = True
    else:
        msg.warn(
            f"{config_path}: the transformer isn't {OUR_TRANSFORMER}, so it reads characters in pieces of "
            "several (character_pieces needs it): entities may start inside a piece"
        )
    return overrides


def corpus_overrides(config_path: PathLike, corpus_dir: PathLike, lang: str) -> Dict[str, Any]:
    """The config overrides that point a config at a corpus: its train and dev files,
    the spaCy language, and for a character-segmented corpus the character tokenizer
    (`character_overrides`).

    config_path (PathLike): The training config.
    corpus_dir (PathLike): The folder with `train.spacy` and `dev.spacy`.
    lang (str): The WikiANN language code.
    RETURNS (Dict[str, Any]): Config overrides.
    """
    corpus_dir = Path(corpus_dir)
    overrides: Dict[str, Any] = {
        "paths.train": str(corpus_dir / "train.spacy"),
        "paths.dev": str(corpus_dir / "dev.spacy"),
        "nlp.lang": spacy_lang(lang),
    }
    if character_segmented_corpus(corpus_dir):
        overrides.update(character_overrides(config_path, lang))
    return overrides


def train(
    config_path: PathLike,
    output_dir: PathLike,
    corpus_dir: PathLike,
    lang: str,
    transformer: Optional[str] = None,
    gpu_id: int = -1,
    max_steps: Optional[int] = None,
    overrides: Optional[Dict[str, Any]] = None,
    logger: str = "console",
    curve_path: Optional[PathLike] = None,
    wandb_config: Optional[PathLike] = None,
) -> Dict[str, Any]:
    """Train with `spacy train`'s code, after checking the device and resolving the
    transformer (offline alias, local folder or hub id).

    config_path (PathLike): The training config, or `configs/auto` (`resolve_config`).
    output_dir (PathLike): Where `model-best` and `model-last` go.
    corpus_dir (PathLike): The folder with `train.spacy` and `dev.spacy`.
    lang (str): The WikiANN language code; sets `nlp.lang`.
    transformer (Optional[str]): Overrides `paths.transformer` in the config; None
        trains the config's own (either is resolved: an offline alias becomes its
        local folder).
    gpu_id (int): -1 for the CPU, else the CUDA device.
    max_steps (Optional[int]): Overrides `training.max_steps` (the step budget).
    overrides (Optional[Dict[str, Any]]): More config overrides; $SPACY_CONFIG_OVERRIDES
        is read as well, as `spacy train` does.
    logger (str): "console", or "wandb" to chain Weights & Biases after the config's
        own logger (`configs/wandb.cfg`, see `ner_component.training.tracking`).
    curve_path (Optional[PathLike]): Where to draw the training curve (dev F1 and
        loss against steps and minutes) from the run's log; None for no curve.
    wandb_config (Optional[PathLike]): The W&B logger's partial config; None for
        the project's `configs/wandb.cfg`.
    RETURNS (Dict[str, Any]): What `train_info.json` records: time, steps, device.
    """
    bound_kernel_caches()
    from spacy.cli.train import train as spacy_train
    from spacy.util import load_config

    require_device(gpu_id)
    corpus_dir = Path(corpus_dir)
    for split in ("train", "dev"):
        if not (corpus_dir / f"{split}.spacy").exists():
            raise NerComponentError(f"{corpus_dir / split}.spacy not found: run the convert step first")
    config_path = resolve_config(config_path)
    all_overrides = corpus_overrides(config_path, corpus_dir, lang)
    check_config_sections(config_path, overrides or {})
    if transformer is None:
        transformer = config_transformer(config_path)
    if transformer is not None:
        all_overrides["paths.transformer"] = resolve_transformer(transformer)
        check_hub_model(all_overrides["paths.transformer"])
    if max_steps is not None:
        all_overrides["training.max_steps"] = max_steps
        all_overrides.update(warmup_for_budget(config_path, max_steps))
    all_overrides.update(parse_config_overrides([]))
    all_overrides.update(overrides or {})
    try:
        check_logger(logger)
    except TrackingError as err:
        raise NerComponentError(str(err))
    created = not Path(output_dir).exists()
    try:
        with _logged_config(config_path, output_dir, all_overrides, logger, wandb_config) as (run_config, log_path, wandb_run):
            run = load_config(run_config, overrides=all_overrides, interpolate=True)
            _evaluate_last_step(run["training"], all_overrides)
            # what ran, for train_info.json and the model card
            settings = {"max_steps": run["training"]["max_steps"], **training_dtype(run, gpu_id), **frozen_parameters(run)}
            start = time.perf_counter()
            stopped_by_budget = False
            try:
                spacy_train(run_config, output_dir, use_gpu=gpu_id, overrides=all_overrides)
            except TrainingBudgetExhausted as stop:
                # ner_component.TimedConsoleLogger.v1 ends the loop this way; spaCy has
                # saved model-best and model-last on the way out
                stopped_by_budget = True
                msg.info(f"Stopped: {stop}")
            seconds = time.perf_counter() - start
    except BaseException:
        if created:
            _remove_empty_dirs(Path(output_dir))
        raise
    if curve_path is not None and log_path.exists():
        plot_training_curve(log_path, curve_path, f"WikiANN {lang}: {Path(config_path).name}")
    info = {
        "lang": lang,
        "config": str(config_path),
        "transformer": transformer,
        "overrides": {k: v for k, v in all_overrides.items() if not k.startswith("paths.")},
        **settings,
        "train_seconds": round(seconds, 1),
        "stopped_by_budget": stopped_by_budget,
        "device": f"cuda:{gpu_id}" if gpu_id >= 0 else "cpu",
        "hardware": describe(gpu_id),
        "kernel_cache_capacity": {name: os.environ.get(name) for name in CACHE_ENV},
        "log": str(log_path),
        "logger": logger,
    }
    if wandb_run is not None:
        info[WANDB_INFO] = wandb_run
    write_json_atomic(Path(output_dir) / TRAIN_INFO, info)
    msg.good(f"Trained in {seconds / 60:.1f} min", json.dumps(info["overrides"]))
    return info


@contextmanager
def _logged_config(
    config_path: PathLike,
    output_dir: PathLike,
    overrides: Dict[str, Any],
    logger: str,
    wandb_config: Optional[PathLike],
) -> Iterator[Tuple[Path, Path, Optional[Dict[str, str]]]]:
    """The config to train from, with the training log at `<output_dir>/log.jsonl`
    (unless the config or the overrides name another file) and, for W&B, the chained
    logger: a derived config in a temporary file, as the logger block changes shape.

    YIELDS (Tuple[Path, Path, Optional[Dict[str, str]]]): The config, the log path,
        and the W&B project and run id (None without W&B).
    """
    from spacy.util import load_config
    from thinc.api import Config

    config = Config().from_disk(config_path, interpolate=False)
    base = dict(config["training"].get("logger", {}))
    if base.get("@loggers") != TIMED_LOGGER:
        raise NerComponentError(f"{config_path}: [training.logger] is {base.get('@loggers')}; the training log needs {TIMED_LOGGER}")
    log_path = Path(overrides.get("training.logger.log_path") or base.get("log_path") or Path(output_dir) / LOG_FILE)
    overrides.pop("training.logger.log_path", None)
    block = logger_config(base, log_path, logger, **({"wandb_config": wandb_config} if wandb_config else {}))
    config["training"]["logger"] = block
    with tempfile.TemporaryDirectory(prefix="train-config-") as tmp:
        derived = Path(tmp) / Path(config_path).name
        config.to_disk(derived)
        wandb_run = None
        if logger == "wandb":
            interpolated = load_config(derived, overrides=overrides, interpolate=True)
            config["training"]["logger"] = without_machine_paths(block, interpolated)
            config.to_disk(derived)
            wandb_run = new_wandb_run(wandb_project(block))
        try:
            yield derived, log_path, wandb_run
        finally:
            if wandb_run is not None:
                os.environ.pop("WANDB_RUN_ID", None)


def _evaluate_last_step(training: Dict[str, Any], overrides: Dict[str, Any]) -> None:
    """spaCy evaluates (and saves model-best) every `eval_frequency` steps only: with a
    step budget below it, model-best would be the untrained model. Evaluate at the end.

    training (Dict[str, Any]): The interpolated `[training]` section.
    overrides (Dict[str, Any]): The run's config overrides; gets `eval_frequency`.
    """
    max_steps, frequency = training["max_steps"], training["eval_frequency"]
    if max_steps and max_steps < frequency:
        overrides["training.eval_frequency"] = max_steps
    elif max_steps and max_steps % frequency:
        msg.warn(
            f"training.max_steps ({max_steps}) is not a multiple of training.eval_frequency "
            f"({frequency}): the last {max_steps % frequency} steps can't become model-best"
        )


def training_dtype(config: Dict[str, Any], gpu_id: int = -1) -> Dict[str, str]:
    """The dtype training steps compute in on this machine: on CPU, the transformer's
    `cpu_training_dtype` with "auto" resolved (bfloat16 where the CPU has it natively);
    on a GPU, float16 mixed precision or float32 as `mixed_precision` says.

    config (Dict[str, Any]): The interpolated training config.
    gpu_id (int): -1 for the CPU, else the CUDA device.
    RETURNS (Dict[str, str]): `training_dtype` and the `training_dtype_setting` it comes from.
    """
    from ner_component.runtime.transformer import resolve_cpu_inference_dtype

    model = config.get("components", {}).get("transformer", {}).get("model", {})
    if gpu_id >= 0:
        mixed = bool(model.get("mixed_precision", False))
        return {"training_dtype": "float16 mixed precision" if mixed else "float32", "training_dtype_setting": f"mixed_precision = {str(mixed).lower()}"}
    setting = model.get("cpu_training_dtype", "float32")
    return {"training_dtype": resolve_cpu_inference_dtype(setting, "cpu_training_dtype"), "training_dtype_setting": f"cpu_training_dtype = {setting}"}


def frozen_parameters(config: Dict[str, Any]) -> Dict[str, Any]:
    """What of the transformer training leaves as it was: the settings of
    `[initialize.after_init]` when it is `ner_component.freeze_transformer.v1`.

    config (Dict[str, Any]): The training config.
    RETURNS (Dict[str, Any]): `frozen_parameters` (the patterns) and `frozen_lowest_layers`;
        empty when nothing is frozen.
    """
    callback = config.get("initialize", {}).get("after_init") or {}
    if callback.get("@callbacks") != "ner_component.freeze_transformer.v1":
        return {}
    return {"frozen_parameters": list(callback.get("patterns", [])), "frozen_lowest_layers": int(callback.get("lowest_layers", 0))}


def check_config_sections(config_path: PathLike, overrides: Dict[str, Any]) -> None:
    """Refuse a misspelt section before training: a `[training.X]` spaCy doesn't
    know, or a `[components.X]` that isn't in `nlp.pipeline` (spaCy ignores it,
    so `[components.nerr.model]` would silently train `ner` with its default model).

    config_path (PathLike): The training config.
    overrides (Dict[str, Any]): The config overrides.
    RAISES (NerComponentError): One line naming the section and the likely intent.
    """
    from spacy.schemas import ConfigSchemaTraining
    from spacy.util import load_config
    from thinc.api import ConfigValidationError

    try:
        config = load_config(config_path, overrides=overrides, interpolate=False)
    except ConfigValidationError as err:
        # e.g. [components.nerr.model] without [components.nerr]: "Section 'nerr' is not defined"
        headers = re.findall(r"^\[([^\]]+)\]", Path(config_path).read_text(encoding="utf8"), re.MULTILINE)
        problems = []
        for error in err.errors or [{"loc": [], "msg": err.title}]:
            loc = [str(part) for part in error.get("loc", [])]
            section, message = ".".join(loc), str(error.get("msg"))
            # compare the undefined part of the path with the sections at its depth
            undefined = re.search(r"Section '([^']+)' is not defined", message)
            missing = ".".join(loc[: loc.index(undefined.group(1)) + 1]) if undefined and undefined.group(1) in loc else section
            candidates = [h for h in headers if h.count(".") == missing.count(".") and not h.startswith(missing)]
            close = difflib.get_close_matches(missing, candidates, n=1)
            hint = f"; did you mean [{close[0]}{section[len(missing):]}]?" if close else ""
            problems.append(f"[{section}]: {message}{hint}" if section else message)
        raise NerComponentError(f"{config_path}: {' '.join('; '.join(problems).split())}") from err
    known = getattr(ConfigSchemaTraining, "model_fields", None) or ConfigSchemaTraining.__fields__
    pipeline = list(config["nlp"]["pipeline"])
    sections = [("training", key, list(known)) for key in config.get("training", {}) if key not in known]
    sections += [("components", name, pipeline) for name in config.get("components", {}) if name not in pipeline]
    for parent, key, expected in sections:
        close = difflib.get_close_matches(key, expected, n=1)
        hint = f"did you mean [{parent}.{close[0]}]?" if close else f"expected one of {', '.join(expected)}"
        where = "a training setting" if parent == "training" else f"in nlp.pipeline ({', '.join(pipeline)})"
        raise NerComponentError(f"{config_path}: [{parent}.{key}] is not {where}; {hint}")


def check_hub_model(name: str) -> None:
    """Refuse, before training, a transformer that is neither a local folder nor
    a Hugging Face hub model that loads here (with HF_HUB_OFFLINE=1: in the
    local cache); Hugging Face's own failure is a traceback of hundreds of lines.

    name (str): A local folder or a hub id (as `resolve_transformer` returns it).
    RAISES (NerComponentError): One line naming the model.
    """
    if Path(name).exists():
        return
    from huggingface_hub import constants
    from transformers import AutoConfig

    try:
        AutoConfig.from_pretrained(name)
    except (OSError, ValueError) as err:
        offline = " (HF_HUB_OFFLINE is set: only models in the local Hugging Face cache load)" if constants.HF_HUB_OFFLINE else ""
        reason = " ".join(str(err).split())[:200]
        raise NerComponentError(
            f"transformer '{name}' is not a local folder, an offline alias or a Hugging Face hub model "
            f"that loads here{offline}: {reason}"
        ) from err


def _remove_empty_dirs(path: Path) -> None:
    """Remove `path` if it holds no file, only (empty) folders."""
    if not path.is_dir() or any(p.is_file() or p.is_symlink() for p in path.rglob("*")):
        return
    shutil.rmtree(path, ignore_errors=True)
