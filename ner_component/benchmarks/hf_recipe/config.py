"""The recipe's config: `configs/hf_recipe.cfg`, its sections and keys checked
before anything runs, so that a misspelt key stops the run in one line."""
from typing import Any, Dict, Mapping, Optional, Tuple

from thinc.api import Config

from ner_component.benchmarks.hf_recipe.labels import SUBWORD_LABELS
from ner_component.errors import NerComponentError
from ner_component.util import PathLike

# The sections and keys the recipe reads; [training] is TrainingArguments' own.
CONFIG_KEYS: Dict[str, Tuple[str, ...]] = {
    "paths": ("transformer", "data"),
    "data": ("lang", "repair_iob2", "dev_limit", "max_length"),
    "labels": ("subword_labels",),
    "budget": ("budget_seconds", "eval_every_seconds", "eval_at_start"),
    "evaluation": ("batch_size",),
    "sharing": ("report_to", "push_to_hub", "hub_model_id", "hub_private_repo"),
}
# What [sharing] report_to may name (the recipe installs no other tracker).
REPORT_TO: Tuple[str, ...] = ("wandb",)
# TrainingArguments the recipe sets itself: the run is timed and scored by the
# callback, nothing is checkpointed or reported, batches are collated in-process
# (the word counter needs that) and extra columns reach the collator.
RESERVED_TRAINING_ARGS: Tuple[str, ...] = (
    "output_dir",
    "save_strategy",
    "eval_strategy",
    "evaluation_strategy",
    "report_to",
    "use_cpu",
    "no_cuda",
    "remove_unused_columns",
    "dataloader_num_workers",
    "gradient_accumulation_steps",
    # [sharing] sets these
    "push_to_hub",
    "hub_model_id",
    "hub_private_repo",
)


def load_config(path: PathLike, overrides: Optional[Dict[str, Any]] = None) -> Config:
    """Read and check the recipe's config; stop with one line when it's wrong.

    path (PathLike): The config file, e.g. `configs/hf_recipe.cfg`.
    overrides (Optional[Dict[str, Any]]): Dotted overrides, e.g.
        {"training.learning_rate": 5e-5}, as `spacy train` takes them.
    RETURNS (Config): The interpolated config.
    """
    try:
        config = Config().from_disk(path, overrides=overrides or {}, interpolate=True)
    except Exception as err:  # thinc's parse and override errors span many lines
        raise NerComponentError(f"{path}: cannot read the config: {' '.join(str(err).split())}")
    try:
        check_config(config)
    except ValueError as err:
        raise NerComponentError(f"{path}: {err}")
    return config


def check_config(config: Mapping[str, Any]) -> None:
    """Check the sections, keys and values the recipe reads.

    config (Mapping[str, Any]): The interpolated config.
    RAISES (ValueError): One line naming the first bad section, key or value.
    """
    from transformers import TrainingArguments

    for section, keys in CONFIG_KEYS.items():
        if section not in config:
            raise ValueError(f"missing section [{section}]")
        missing = [key for key in keys if key not in config[section]]
        if missing:
            raise ValueError(f"[{section}] is missing {', '.join(missing)}")
        unknown = [key for key in config[section] if key not in keys]
        if unknown:
            raise ValueError(
                f"[{section}] has unknown key(s) {', '.join(unknown)}; expected {', '.join(keys)}"
            )
    if "training" not in config:
        raise ValueError("missing section [training] (TrainingArguments)")
    fields = set(TrainingArguments.__dataclass_fields__)
    for key in config["training"]:
        if key in RESERVED_TRAINING_ARGS:
            raise ValueError(f"[training] {key} is set by the recipe itself; remove it")
        if key not in fields:
            raise ValueError(f"[training] {key} is not a transformers.TrainingArguments field")
    subword_labels = config["labels"]["subword_labels"]
    if subword_labels not in SUBWORD_LABELS:
        raise ValueError(
            f"[labels] subword_labels is {subword_labels!r}; expected one of {', '.join(SUBWORD_LABELS)}"
        )
    sharing = config["sharing"]
    unknown_trackers = [name for name in sharing["report_to"] if name not in REPORT_TO]
    if not isinstance(sharing["report_to"], list) or unknown_trackers:
        raise ValueError(f"[sharing] report_to is {sharing['report_to']!r}; expected a list of {', '.join(REPORT_TO)} or []")
    if sharing["push_to_hub"] and not sharing["hub_model_id"]:
        raise ValueError("[sharing] push_to_hub is true but hub_model_id is null; expected '<user or org>/<name>'")
    budget = config["budget"]["budget_seconds"]
    if budget is not None and not (isinstance(budget, (int, float)) and budget > 0):
        raise ValueError(f"[budget] budget_seconds is {budget!r}; expected a number > 0 or null")
    every = config["budget"]["eval_every_seconds"]
    if not (isinstance(every, (int, float)) and every > 0):
        raise ValueError(f"[budget] eval_every_seconds is {every!r}; expected a number > 0")
    for section, key, low in (("data", "dev_limit", 0), ("data", "max_length", 3), ("evaluation", "batch_size", 1)):
        value = config[section][key]
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ValueError(f"[{section}] {key} is {value!r}; expected an integer >= {low}")
