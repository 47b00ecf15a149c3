"""One run of the recipe, step by step: read the data, load the backbone with a new
classification head, train under the budget, save (and push) the model, score the
test split, and write `results.json`."""
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Tuple

from thinc.api import Config
from wasabi import msg

from ner_component.backbones import resolve_transformer
from ner_component.benchmarks.hf_recipe.callback import WordCountingCollator, make_budget_callback
from ner_component.benchmarks.hf_recipe.data import read_split
from ner_component.benchmarks.hf_recipe.labels import label_maps, tokenize_and_align
from ner_component.benchmarks.hf_recipe.predict import predict_tags, score_tags
from ner_component.errors import NerComponentError
from ner_component.hardware import describe, require_device
from ner_component.util import PathLike, atomic_dir, write_json_atomic, write_text_atomic

RESULTS_NAME = "results.json"
CURVE_NAME = "dev_curve.jsonl"
CONFIG_NAME = "config.cfg"
MODEL_DIR = "model"
SYSTEM_NAME = "hf_trainer"


@dataclass
class Split:
    """The words and IOB2 tags of each sentence of a split."""

    tokens: List[List[str]]
    tags: List[List[str]]

    @property
    def words(self) -> int:
        return sum(len(words) for words in self.tokens)


@dataclass
class Recipe:
    """What a run reads from its config, and where it writes."""

    config: Config
    output_dir: Path
    gpu_id: int
    root: PathLike

    @property
    def lang(self) -> str:
        return self.config["data"]["lang"]

    @property
    def max_length(self) -> int:
        return self.config["data"]["max_length"]

    @property
    def batch_size(self) -> int:
        return self.config["evaluation"]["batch_size"]

    @property
    def sharing(self) -> Dict[str, Any]:
        return self.config["sharing"]

    def read(self, split: str, limit: int) -> Tuple[Split, str]:
        """A split of the config's WikiANN source, and the source's description."""
        data = self.config["data"]
        tokens, tags, source = read_split(
            self.config["paths"]["data"], data["lang"], split, data["repair_iob2"], limit, self.root
        )
        return Split(tokens, tags), source


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
    recipe = _prepare(config, Path(output_dir), gpu_id, root)
    train, source = recipe.read("train", train_limit)
    dev, _ = recipe.read("dev", config["data"]["dev_limit"])
    msg.info(f"WikiANN {recipe.lang} from {source}: {len(train.tokens)} train, {len(dev.tokens)} dev sentences")
    model_path, model, tokenizer = _load_model(config)
    trainer, callback = _build_trainer(recipe, model, tokenizer, train, dev)
    train_info = _train(trainer, callback, len(train.tokens))
    _save_model(recipe, trainer, tokenizer)
    test_scores = _score_test(recipe, trainer.model, tokenizer, test_limit)
    results: Dict[str, Any] = {
        "system": SYSTEM_NAME,
        "lang": recipe.lang,
        "source": source,
        "transformer": config["paths"]["transformer"],
        "transformer_path": model_path,
        "subword_labels": config["labels"]["subword_labels"],
        "dev_limit": config["data"]["dev_limit"],
        "dev_sentences": len(dev.tokens),
        "train": train_info,
        "dev_curve": callback.curve,
        "test": test_scores,
        "model": str(recipe.output_dir / MODEL_DIR),
        "device": f"cuda:{gpu_id}" if gpu_id >= 0 else "cpu",
        "hardware": describe(gpu_id),
        "config": dict(config),
    }
    write_json_atomic(recipe.output_dir / RESULTS_NAME, results)
    strict = test_scores["seqeval_strict"]
    msg.good(
        f"HF recipe: test F1 {100 * strict['f1']:.2f} (seqeval strict IOB2) after "
        f"{train_info['seconds']:.0f} s of training, {train_info['words_per_second']} words/s"
    )
    return results


def _prepare(config: Config, output_dir: Path, gpu_id: int, root: PathLike) -> Recipe:
    """Check the device (and the hub token, before hours of training, not after),
    create the run's folder and keep the config in it."""
    import torch

    require_device(gpu_id)
    if gpu_id >= 0:
        torch.cuda.set_device(gpu_id)
    output_dir.mkdir(parents=True, exist_ok=True)
    if config["sharing"]["push_to_hub"]:
        check_hub_token()
    write_text_atomic(output_dir / CONFIG_NAME, config.to_str())
    return Recipe(config, output_dir, gpu_id, root)


def _load_model(config: Config) -> Tuple[str, Any, Any]:
    """The backbone's fast tokenizer and the backbone with a new token-classification
    head for WikiANN's tags, initialized from the training seed.

    RETURNS (Tuple[str, Any, Any]): The backbone's path, the model, the tokenizer.
    """
    from transformers import AutoModelForTokenClassification, AutoTokenizer, set_seed

    model_path = resolve_transformer(config["paths"]["transformer"])
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    if not getattr(tokenizer, "is_fast", False):
        raise NerComponentError(f"{model_path}: the recipe needs a fast tokenizer (word_ids()); this one is {type(tokenizer).__name__}")
    id2label, label2id = label_maps()
    set_seed(config["training"].get("seed", 42))  # the new classification head is initialized from this seed
    model = AutoModelForTokenClassification.from_pretrained(
        model_path, num_labels=len(id2label), id2label=id2label, label2id=label2id
    )
    return model_path, model, tokenizer


def _build_trainer(recipe: Recipe, model: Any, tokenizer: Any, train: Split, dev: Split) -> Tuple[Any, Any]:
    """A `Trainer` over the tokenized, label-aligned train split, with the budget
    callback scoring the dev split.

    RETURNS (Tuple[Trainer, TrainerCallback]): The trainer and its budget callback.
    """
    from datasets import Dataset
    from transformers import Trainer, TrainingArguments

    config, sharing = recipe.config, recipe.sharing
    subword_labels = config["labels"]["subword_labels"]
    train_dataset = Dataset.from_dict({"tokens": train.tokens, "tags": train.tags}).map(
        lambda batch: tokenize_and_align(tokenizer, batch["tokens"], batch["tags"], subword_labels, recipe.max_length),
        batched=True,
        remove_columns=["tokens", "tags"],
        desc="Tokenizing and aligning labels",
    )
    collator = WordCountingCollator(tokenizer)

    def evaluate_dev(trained: Any) -> Dict[str, Any]:
        predicted, _ = predict_tags(trained, tokenizer, dev.tokens, recipe.batch_size, recipe.max_length)
        return score_tags(dev.tags, predicted)

    budget = config["budget"]
    callback = make_budget_callback(
        evaluate_dev,
        collator.word_counts,
        budget["budget_seconds"],
        budget["eval_every_seconds"],
        budget["eval_at_start"],
        recipe.output_dir / CURVE_NAME,
    )
    args = TrainingArguments(
        output_dir=str(recipe.output_dir / "trainer"),
        save_strategy="no",
        eval_strategy="no",
        report_to=list(sharing["report_to"]),
        push_to_hub=bool(sharing["push_to_hub"]),
        hub_model_id=sharing["hub_model_id"],
        hub_private_repo=bool(sharing["hub_private_repo"]),
        use_cpu=recipe.gpu_id < 0,
        remove_unused_columns=False,  # n_words must reach the collator
        dataloader_num_workers=0,  # the collator counts words in this process
        gradient_accumulation_steps=1,  # one counted batch per optimizer step
        **dict(config["training"]),
    )
    trainer = Trainer(
        model=model, args=args, train_dataset=train_dataset, data_collator=collator, callbacks=[callback]
    )
    return trainer, callback


def _train(trainer: Any, callback: Any, n_sentences: int) -> Dict[str, Any]:
    """Train, and put the callback's timing figures together with the run's own."""
    load_start, cpu_start = os.getloadavg(), time.process_time()
    wall_start = time.perf_counter()
    output = trainer.train()
    wall_seconds = time.perf_counter() - wall_start
    cpu_seconds, load_end = time.process_time() - cpu_start, os.getloadavg()
    state = trainer.state
    train_info = callback.summary()
    train_info.update(
        {
            "wall_seconds": round(wall_seconds, 2),
            "steps": state.global_step,
            "epochs": round(float(state.epoch or 0.0), 4),
            "sentences": n_sentences,
            "train_loss": round(float(output.training_loss), 4),
            # how much CPU the run got: a shared machine shows in these
            "process_cpu_seconds": round(cpu_seconds, 1),
            "load_average_start": [round(x, 2) for x in load_start],
            "load_average_end": [round(x, 2) for x in load_end],
        }
    )
    return train_info


def _save_model(recipe: Recipe, trainer: Any, tokenizer: Any) -> None:
    """Save the trained model into `model/`, push it when the config says so, and
    remove the Trainer's own (empty) output folder."""
    save_model_atomic(trainer.model, tokenizer, recipe.output_dir / MODEL_DIR)
    if recipe.sharing["push_to_hub"]:
        _push_trainer_model(trainer, tokenizer, f"HF recipe on WikiANN {recipe.lang}")
    trainer_dir = Path(trainer.args.output_dir)
    if trainer_dir.is_dir() and not any(trainer_dir.iterdir()):
        trainer_dir.rmdir()  # Trainer creates it; nothing is saved there


def _score_test(recipe: Recipe, model: Any, tokenizer: Any, test_limit: int) -> Dict[str, Any]:
    """Tag the test split word by word and score it; time the tagging."""
    test, _ = recipe.read("test", test_limit)
    started = time.perf_counter()
    predicted, n_missing = predict_tags(model, tokenizer, test.tokens, recipe.batch_size, recipe.max_length)
    seconds = time.perf_counter() - started
    return {
        "sentences": len(test.tokens),
        "words": test.words,
        "words_without_subword": n_missing,
        "seconds": round(seconds, 2),
        "words_per_second": round(test.words / seconds, 1) if seconds > 0 else None,
        **score_tags(test.tags, predicted),
    }


def check_hub_token() -> None:
    """Refuse, in one line, to push without a Hugging Face token."""
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
