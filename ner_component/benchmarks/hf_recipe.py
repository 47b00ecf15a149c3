"""The Hugging Face fine-tuning recipe for token classification, as a baseline.

What users know from the Hugging Face token-classification tutorial:
`AutoModelForTokenClassification` on the backbone, words tokenized with
`is_split_into_words=True`, the word's label put on its subwords
(`label_all_tokens`), `Trainer` with batch 16, lr 2e-5, weight decay 0.01, 2 epochs,
scored with seqeval. Here it reads WikiANN through `ner_component.data.wikiann` (the same
sentences the spaCy corpora hold), trains under a wall-clock budget with a
`TrainerCallback` that scores a fixed dev subset at regular points of training
time (evaluation excluded), and scores the full test split word by word.

Two departures from the tutorial, both to measure the same thing as the spaCy side:
- the tutorial's `compute_metrics` scores every labelled subword, so with
  `label_all_tokens = True` a long word counts several times; here each word is
  scored once, by its first subword's prediction;
- seqeval is run in strict IOB2 mode (spaCy's exact-span reading) as well as its
  default mode, on gold tags whose stray `I-X` are repaired as in the spaCy corpora.
"""
import json
import os
import time
from collections import deque
from pathlib import Path
from typing import Any, Callable, Deque, Dict, List, Mapping, Optional, Sequence, Tuple

from thinc.api import Config
from wasabi import msg

from ner_component.backbones import resolve_transformer
from ner_component.data.wikiann import TAGS, WikiANNError, repair_iob2, resolve_source
from ner_component.errors import NerComponentError
from ner_component.evaluation.crosscheck import seqeval_scores
from ner_component.hardware import require_device
from ner_component.util import (
    PathLike,
    atomic_dir,
    write_json_atomic,
    write_text_atomic,
)

# Label id of tokens the loss ignores (PyTorch's CrossEntropyLoss ignore_index).
IGNORE_INDEX = -100
SUBWORD_LABELS: Tuple[str, ...] = ("repeat", "b_to_i", "first")
RESULTS_NAME = "results.json"
CURVE_NAME = "dev_curve.jsonl"
CONFIG_NAME = "config.cfg"
MODEL_DIR = "model"
SYSTEM_NAME = "hf_trainer"
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


# ---------------------------------------------------------------------------
# Config


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


# ---------------------------------------------------------------------------
# Labels on subwords, and predictions back on words


def label_maps() -> Tuple[Dict[int, str], Dict[str, int]]:
    """WikiANN's tags in the Hugging Face dataset's order, as id2label and label2id."""
    id2label = dict(enumerate(TAGS))
    return id2label, {tag: i for i, tag in id2label.items()}


def align_labels(
    word_ids: Sequence[Optional[int]],
    word_labels: Sequence[int],
    subword_labels: str,
    id2label: Mapping[int, str],
    label2id: Mapping[str, int],
) -> List[int]:
    """The training label of each subword token (the tutorial's
    `tokenize_and_align_labels` for one sentence).

    word_ids (Sequence[Optional[int]]): The word of each token (`encoding.word_ids()`),
        None for [CLS], [SEP] and padding.
    word_labels (Sequence[int]): The label id of each word.
    subword_labels (str): What the 2nd, 3rd... subword of a word gets: "repeat" (the
        word's label, B-X included), "b_to_i" (B-X turned into I-X) or "first"
        (IGNORE_INDEX).
    id2label (Mapping[int, str]): Label names by id.
    label2id (Mapping[str, int]): Label ids by name.
    RETURNS (List[int]): One label id per token; IGNORE_INDEX where the loss skips it.
    """
    if subword_labels not in SUBWORD_LABELS:
        raise ValueError(
            f"subword_labels ({subword_labels!r}) must be one of {', '.join(SUBWORD_LABELS)}"
        )
    labels = []
    previous: Optional[int] = None
    for word_id in word_ids:
        if word_id is None:
            labels.append(IGNORE_INDEX)
        elif word_id != previous:
            labels.append(word_labels[word_id])
        elif subword_labels == "first":
            labels.append(IGNORE_INDEX)
        else:
            label = word_labels[word_id]
            name = id2label[label]
            if subword_labels == "b_to_i" and name.startswith("B-"):
                label = label2id["I-" + name[2:]]
            labels.append(label)
        previous = word_id
    return labels


def word_predictions(
    word_ids: Sequence[Optional[int]],
    token_predictions: Sequence[int],
    n_words: int,
    default: int,
) -> Tuple[List[int], int]:
    """Map subword predictions back to words: each word takes its first subword's.

    word_ids (Sequence[Optional[int]]): The word of each token, None for specials.
    token_predictions (Sequence[int]): The predicted label id of each token.
    n_words (int): The number of words of the sentence.
    default (int): The label of words without any subword: cut off by truncation,
        or made only of characters the tokenizer drops (e.g. a zero-width space).
    RETURNS (Tuple[List[int], int]): The label id of each word, and how many words
        had no subword.
    """
    predictions: List[Optional[int]] = [None] * n_words
    for word_id, prediction in zip(word_ids, token_predictions):
        if word_id is not None and predictions[word_id] is None:
            predictions[word_id] = int(prediction)
    n_missing = sum(1 for p in predictions if p is None)
    return [default if p is None else p for p in predictions], n_missing


def tokenize_and_align(
    tokenizer: Any,
    tokens: Sequence[Sequence[str]],
    tags: Sequence[Sequence[str]],
    subword_labels: str,
    max_length: int,
) -> Dict[str, List[Any]]:
    """Tokenize sentences of words and align their labels, for `Trainer`.

    tokenizer (Any): A fast Hugging Face tokenizer.
    tokens (Sequence[Sequence[str]]): The words of each sentence.
    tags (Sequence[Sequence[str]]): The IOB2 tag of each word.
    subword_labels (str): See `align_labels`.
    max_length (int): Subword tokens per sentence; longer ones are truncated.
    RETURNS (Dict[str, List[Any]]): The tokenizer's features plus `labels`, and
        `n_words` (the sentence's word count, for the training words/s figure).
    """
    id2label, label2id = label_maps()
    encoded = tokenizer(
        [list(words) for words in tokens],
        is_split_into_words=True,
        truncation=True,
        max_length=max_length,
    )
    features: Dict[str, List[Any]] = {key: list(value) for key, value in encoded.items()}
    features["labels"] = [
        align_labels(
            encoded.word_ids(i), [label2id[t] for t in sentence_tags], subword_labels, id2label, label2id
        )
        for i, sentence_tags in enumerate(tags)
    ]
    features["n_words"] = [len(words) for words in tokens]
    return features


# ---------------------------------------------------------------------------
# Data


def read_split(
    data: str, lang: str, split: str, repair: bool, limit: int = 0, root: PathLike = "."
) -> Tuple[List[List[str]], List[List[str]], str]:
    """Read one WikiANN split through `ner_component.data.wikiann.resolve_source`.

    data (str): "auto", "hub", or a path (see `resolve_source`).
    lang (str): The WikiANN language code.
    split (str): "train", "dev" or "test".
    repair (bool): Turn stray I-X tags into B-X (`repair_iob2`), as the corpora do.
    limit (int): Read only the first `limit` sentences; 0 for all.
    root (PathLike): The project root, for data = "auto".
    RETURNS (Tuple[List[List[str]], List[List[str]], str]): The words and tags of
        each sentence, and the description of the source used.
    """
    try:
        source = resolve_source(data, lang, root)
        tokens: List[List[str]] = []
        tags: List[List[str]] = []
        for sentence in source.sentences(split):
            if limit and len(tokens) >= limit:
                break
            tokens.append(list(sentence.tokens))
            tags.append(repair_iob2(sentence.tags)[0] if repair else list(sentence.tags))
    except WikiANNError as err:
        raise NerComponentError(str(err))
    if not tokens:
        raise NerComponentError(f"{source.description}: the {split} split of '{lang}' has no sentences")
    return tokens, tags, source.description


# ---------------------------------------------------------------------------
# Prediction


def predict_tags(
    model: Any,
    tokenizer: Any,
    tokens: Sequence[Sequence[str]],
    batch_size: int,
    max_length: int,
) -> Tuple[List[List[str]], int]:
    """Tag sentences of words with a token-classification model, word by word.

    Sentences are batched by length (less padding), and each word takes its first
    subword's prediction.

    model (Any): An `AutoModelForTokenClassification` model with `config.id2label`.
    tokenizer (Any): Its fast tokenizer.
    tokens (Sequence[Sequence[str]]): The words of each sentence.
    batch_size (int): Sentences per forward pass.
    max_length (int): Subword tokens per sentence; words beyond it are predicted O.
    RETURNS (Tuple[List[List[str]], int]): The IOB2 tag of each word per sentence,
        and the number of words without a subword (predicted O).
    """
    import torch

    id2label = {int(i): label for i, label in model.config.id2label.items()}
    outside = next(i for i, label in id2label.items() if label == "O")
    order = sorted(range(len(tokens)), key=lambda i: len(tokens[i]))
    results: List[List[str]] = [[] for _ in tokens]
    n_missing = 0
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for start in range(0, len(order), batch_size):
                indices = order[start : start + batch_size]
                encoded = tokenizer(
                    [list(tokens[i]) for i in indices],
                    is_split_into_words=True,
                    truncation=True,
                    max_length=max_length,
                    padding=True,
                    return_tensors="pt",
                )
                inputs = {k: v.to(model.device) for k, v in encoded.items()}
                predicted = model(**inputs).logits.argmax(-1).tolist()
                for row, i in enumerate(indices):
                    ids, missing = word_predictions(
                        encoded.word_ids(row), predicted[row], len(tokens[i]), outside
                    )
                    n_missing += missing
                    results[i] = [id2label[label] for label in ids]
    finally:
        model.train(was_training)
    return results, n_missing


def score_tags(
    y_true: Sequence[Sequence[str]], y_pred: Sequence[Sequence[str]]
) -> Dict[str, Any]:
    """seqeval's strict IOB2 and default-mode figures of word tags."""
    return {
        "seqeval_strict": seqeval_scores(y_true, y_pred, strict=True),
        "seqeval_default": seqeval_scores(y_true, y_pred, strict=False),
    }


# ---------------------------------------------------------------------------
# Training under a time budget


class WordCountingCollator:
    """`DataCollatorForTokenClassification` that also counts the WikiANN words of
    each batch it builds, for the training words/s figure.

    The counts queue up in build order; the budget callback takes one per
    optimizer step. The queue may run a batch ahead (accelerate's dataloader
    prefetches one), which the first-in-first-out order absorbs.
    """

    def __init__(self, tokenizer: Any):
        from transformers import DataCollatorForTokenClassification

        self.collator = DataCollatorForTokenClassification(tokenizer)
        self.word_counts: Deque[int] = deque()

    def __call__(self, features: List[Dict[str, Any]]) -> Dict[str, Any]:
        self.word_counts.append(sum(int(f["n_words"]) for f in features))
        return self.collator([{k: v for k, v in f.items() if k != "n_words"} for f in features])


def make_budget_callback(
    score_dev: Callable[[Any], Dict[str, Any]],
    word_counts: Deque[int],
    budget_seconds: Optional[float],
    eval_every_seconds: float,
    eval_at_start: bool,
    log_path: Optional[PathLike] = None,
) -> Any:
    """A `TrainerCallback` that times training without its evaluations, scores the
    dev subset every `eval_every_seconds` of training, and stops training (after a
    last evaluation) once `budget_seconds` of training are spent.

    score_dev (Callable[[Any], Dict[str, Any]]): Scores the model on the dev subset,
        returning `score_tags`'s figures.
    word_counts (Deque[int]): The collator's word counts, one per batch.
    budget_seconds (Optional[float]): Training seconds allowed; None for no budget.
    eval_every_seconds (float): Training seconds between dev evaluations.
    eval_at_start (bool): Score the untrained model first.
    log_path (Optional[PathLike]): A JSONL file; one line per evaluation.
    RETURNS (TrainerCallback): The callback; its `curve` holds the evaluations,
        `summary()` the timing figures.
    """
    from transformers import TrainerCallback

    class TimeBudgetCallback(TrainerCallback):
        def __init__(self) -> None:
            self.curve: List[Dict[str, Any]] = []
            self.start = 0.0
            self.paused = 0.0  # seconds spent evaluating, excluded from training time
            self.eval_seconds = 0.0
            self.words = 0
            self.train_seconds = 0.0  # at the end of the latest step
            self.next_eval = eval_every_seconds
            self.stopped_by_budget = False
            self.last_step = -1
            self.log = None

        def elapsed(self) -> float:
            return time.perf_counter() - self.start - self.paused

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if log_path is not None:
                Path(log_path).parent.mkdir(parents=True, exist_ok=True)
                self.log = open(log_path, "w", encoding="utf8")
            self.start = time.perf_counter()
            if eval_at_start:
                self.evaluate(kwargs["model"], state, final=False)

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if word_counts:
                self.words += word_counts.popleft()
            self.train_seconds = self.elapsed()
            if budget_seconds is not None and self.train_seconds >= budget_seconds:
                self.stopped_by_budget = True
                control.should_training_stop = True
                self.evaluate(kwargs["model"], state, final=True)
            elif state.max_steps and state.global_step >= state.max_steps:
                self.evaluate(kwargs["model"], state, final=True)
            elif self.train_seconds >= self.next_eval:
                self.evaluate(kwargs["model"], state, final=False)
                while self.next_eval <= self.train_seconds:
                    self.next_eval += eval_every_seconds

        def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            # the last step's evaluation normally happened in on_step_end already
            if self.last_step != state.global_step:
                self.evaluate(kwargs["model"], state, final=True)
            if self.log is not None:
                self.log.close()
                self.log = None

        def evaluate(self, model: Any, state: Any, final: bool) -> None:
            started = time.perf_counter()
            scores = score_dev(model)
            seconds = time.perf_counter() - started
            self.paused += seconds
            self.eval_seconds += seconds
            self.last_step = state.global_step
            strict = scores["seqeval_strict"]
            point = {
                "step": state.global_step,
                "epoch": round(float(state.epoch or 0.0), 4),
                "words": self.words,
                "train_seconds": round(self.train_seconds, 2),
                "eval_seconds": round(seconds, 2),
                "dev_f1": strict["f1"],
                "dev_precision": strict["precision"],
                "dev_recall": strict["recall"],
                "dev_f1_default": scores["seqeval_default"]["f1"],
                "final": final,
            }
            self.curve.append(point)
            if self.log is not None:
                self.log.write(json.dumps(point) + "\n")
                self.log.flush()
            msg.text(
                f"step {point['step']} epoch {point['epoch']:.2f}: dev F1 "
                f"{100 * point['dev_f1']:.2f} after {point['train_seconds']:.0f} s of training "
                f"(eval {seconds:.1f} s)"
            )

        def summary(self) -> Dict[str, Any]:
            seconds = self.train_seconds
            return {
                "seconds": round(seconds, 2),
                "eval_seconds": round(self.eval_seconds, 2),
                "words": self.words,
                "words_per_second": round(self.words / seconds, 1) if seconds > 0 else None,
                "stopped_by_budget": self.stopped_by_budget,
                "budget_seconds": budget_seconds,
            }

    return TimeBudgetCallback()


def run_recipe(
    config: Config,
    output_dir: PathLike,
    gpu_id: int = -1,
    root: PathLike = ".",
    train_limit: int = 0,
    test_limit: int = 0,
) -> Dict[str, Any]:
    """Fine-tune with the Hugging Face recipe under the config's time budget, score
    the test split, and write `model/` (save_pretrained: model and tokenizer, loadable
    with `pipeline("token-classification")`), `results.json`, `dev_curve.jsonl` and
    `config.cfg` to `output_dir`.

    config (Config): The checked config (`load_config`).
    output_dir (PathLike): The run's folder.
    gpu_id (int): -1 for the CPU, else the CUDA device.
    root (PathLike): The project root, for data = "auto".
    train_limit (int): Train on the first N sentences only (tests); 0 for all.
    test_limit (int): Score the first N test sentences only (tests); 0 for all.
    RETURNS (Dict[str, Any]): What `results.json` holds.
    """
    import torch
    from datasets import Dataset
    from transformers import (
        AutoModelForTokenClassification,
        AutoTokenizer,
        Trainer,
        TrainingArguments,
        set_seed,
    )

    require_device(gpu_id)
    if gpu_id >= 0:
        torch.cuda.set_device(gpu_id)
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    paths, data_cfg, budget = config["paths"], config["data"], config["budget"]
    lang = data_cfg["lang"]
    max_length = data_cfg["max_length"]
    batch_size = config["evaluation"]["batch_size"]
    training_args = dict(config["training"])
    sharing = config["sharing"]
    if sharing["push_to_hub"]:
        _check_hub_token()  # before hours of training, not after
    write_text_atomic(output_dir / CONFIG_NAME, config.to_str())

    def read(split: str, limit: int) -> Tuple[List[List[str]], List[List[str]], str]:
        return read_split(paths["data"], lang, split, data_cfg["repair_iob2"], limit, root)

    train_tokens, train_tags, source = read("train", train_limit)
    dev_tokens, dev_tags, _ = read("dev", data_cfg["dev_limit"])
    msg.info(f"WikiANN {lang} from {source}: {len(train_tokens)} train, {len(dev_tokens)} dev sentences")

    model_path = resolve_transformer(paths["transformer"])
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    if not getattr(tokenizer, "is_fast", False):
        raise NerComponentError(f"{model_path}: the recipe needs a fast tokenizer (word_ids()); this one is {type(tokenizer).__name__}")
    id2label, label2id = label_maps()
    seed = training_args.get("seed", 42)
    set_seed(seed)  # the new classification head is initialized from this seed
    model = AutoModelForTokenClassification.from_pretrained(
        model_path, num_labels=len(id2label), id2label=id2label, label2id=label2id
    )
    subword_labels = config["labels"]["subword_labels"]
    train_dataset = Dataset.from_dict({"tokens": train_tokens, "tags": train_tags}).map(
        lambda batch: tokenize_and_align(tokenizer, batch["tokens"], batch["tags"], subword_labels, max_length),
        batched=True,
        remove_columns=["tokens", "tags"],
        desc="Tokenizing and aligning labels",
    )
    collator = WordCountingCollator(tokenizer)

    def evaluate_dev(trained: Any) -> Dict[str, Any]:
        predicted, _ = predict_tags(trained, tokenizer, dev_tokens, batch_size, max_length)
        return score_tags(dev_tags, predicted)

    callback = make_budget_callback(
        evaluate_dev,
        collator.word_counts,
        budget["budget_seconds"],
        budget["eval_every_seconds"],
        budget["eval_at_start"],
        output_dir / CURVE_NAME,
    )
    args = TrainingArguments(
        output_dir=str(output_dir / "trainer"),
        save_strategy="no",
        eval_strategy="no",
        report_to=list(sharing["report_to"]),
        push_to_hub=bool(sharing["push_to_hub"]),
        hub_model_id=sharing["hub_model_id"],
        hub_private_repo=bool(sharing["hub_private_repo"]),
        use_cpu=gpu_id < 0,
        remove_unused_columns=False,  # n_words must reach the collator
        dataloader_num_workers=0,  # the collator counts words in this process
        gradient_accumulation_steps=1,  # one counted batch per optimizer step
        **training_args,
    )
    trainer = Trainer(
        model=model, args=args, train_dataset=train_dataset, data_collator=collator, callbacks=[callback]
    )
    load_start, cpu_start = os.getloadavg(), time.process_time()
    wall_start = time.perf_counter()
    output = trainer.train()
    wall_seconds = time.perf_counter() - wall_start
    cpu_seconds, load_end = time.process_time() - cpu_start, os.getloadavg()
    state = trainer.state

    save_model_atomic(trainer.model, tokenizer, output_dir / MODEL_DIR)
    if sharing["push_to_hub"]:
        _push_trainer_model(trainer, tokenizer, f"HF recipe on WikiANN {lang}")
    if Path(args.output_dir).is_dir() and not any(Path(args.output_dir).iterdir()):
        Path(args.output_dir).rmdir()  # Trainer creates it; nothing is saved there

    test_tokens, test_tags, _ = read("test", test_limit)
    started = time.perf_counter()
    predicted, n_missing = predict_tags(trainer.model, tokenizer, test_tokens, batch_size, max_length)
    test_seconds = time.perf_counter() - started
    n_test_words = sum(len(words) for words in test_tokens)
    train_info = callback.summary()
    train_info.update(
        {
            "wall_seconds": round(wall_seconds, 2),
            "steps": state.global_step,
            "epochs": round(float(state.epoch or 0.0), 4),
            "sentences": len(train_tokens),
            "train_loss": round(float(output.training_loss), 4),
            # how much CPU the run got: a shared machine shows in these
            "process_cpu_seconds": round(cpu_seconds, 1),
            "load_average_start": [round(x, 2) for x in load_start],
            "load_average_end": [round(x, 2) for x in load_end],
        }
    )
    results: Dict[str, Any] = {
        "system": SYSTEM_NAME,
        "lang": lang,
        "source": source,
        "transformer": paths["transformer"],
        "transformer_path": model_path,
        "subword_labels": subword_labels,
        "dev_limit": data_cfg["dev_limit"],
        "dev_sentences": len(dev_tokens),
        "train": train_info,
        "dev_curve": callback.curve,
        "test": {
            "sentences": len(test_tokens),
            "words": n_test_words,
            "words_without_subword": n_missing,
            "seconds": round(test_seconds, 2),
            "words_per_second": round(n_test_words / test_seconds, 1) if test_seconds > 0 else None,
            **score_tags(test_tags, predicted),
        },
        "model": str(output_dir / MODEL_DIR),
        "device": f"cuda:{gpu_id}" if gpu_id >= 0 else "cpu",
        "hardware": hardware(gpu_id),
        "config": dict(config),
    }
    write_json_atomic(output_dir / RESULTS_NAME, results)
    strict = results["test"]["seqeval_strict"]
    msg.good(
        f"HF recipe: test F1 {100 * strict['f1']:.2f} (seqeval strict IOB2) after "
        f"{train_info['seconds']:.0f} s of training, {train_info['words_per_second']} words/s"
    )
    return results


def _check_hub_token() -> None:
    import huggingface_hub

    from ner_component.sharing.hub import NO_TOKEN

    if not huggingface_hub.get_token():
        raise NerComponentError(NO_TOKEN.replace("--vars.dry_run true", "[sharing] push_to_hub = false"))


def _push_trainer_model(trainer: Any, tokenizer: Any, commit_message: str) -> None:
    """`Trainer.push_to_hub` (the model, its tokenizer and the Trainer's card) into
    `hub_model_id`; one line when it fails."""
    trainer.processing_class = tokenizer  # so the tokenizer is saved and pushed too
    try:
        url = trainer.push_to_hub(commit_message=commit_message)
    except Exception as err:  # network, permissions: the model is saved locally either way
        raise NerComponentError(f"push to {trainer.args.hub_model_id} failed ({type(err).__name__}: {' '.join(str(err).split())[:200]}); the model is saved in {trainer.args.output_dir}")
    msg.good(f"Pushed to {url}")


def save_model_atomic(model: Any, tokenizer: Any, path: PathLike) -> None:
    """`save_pretrained` the model and tokenizer into a folder beside `path`, then
    swap it into place, so a reader never finds half a model."""
    with atomic_dir(path) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)


def hardware(gpu_id: int) -> str:
    """The device the run used, as train_info.json names it."""
    from ner_component.training.train import _hardware

    return _hardware(gpu_id)
