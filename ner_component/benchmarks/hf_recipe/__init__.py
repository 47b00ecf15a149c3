"""The Hugging Face fine-tuning recipe for token classification, as a baseline.

What users know from the Hugging Face token-classification tutorial:
`AutoModelForTokenClassification` on the backbone, words tokenized with
`is_split_into_words=True`, the word's label put on its subwords
(`label_all_tokens`), `Trainer` with batch 16, lr 2e-5, weight decay 0.01, 2 epochs,
scored with seqeval. Here it reads WikiANN through `ner_component.data.wikiann` (the same
sentences the spaCy corpora hold), trains under a wall-clock budget with a
`TrainerCallback` that scores a fixed dev subset at regular points of training
time (evaluation excluded), and scores the full test split word by word.

The recipe's parts: `config` (the config file, checked), `labels` (word labels on
subwords and predictions back on words), `data` (WikiANN's splits), `predict`
(tagging and seqeval scores), `callback` (the time budget) and `run` (one run).

Two departures from the tutorial, both to measure the same thing as the spaCy side:
- the tutorial's `compute_metrics` scores every labelled subword, so with
  `label_all_tokens = True` a long word counts several times; here each word is
  scored once, by its first subword's prediction;
- seqeval is run in strict IOB2 mode (spaCy's exact-span reading) as well as its
  default mode, on gold tags whose stray `I-X` are repaired as in the spaCy corpora.
"""
from ner_component.benchmarks.hf_recipe.callback import WordCountingCollator, make_budget_callback
from ner_component.benchmarks.hf_recipe.config import (
    CONFIG_KEYS,
    REPORT_TO,
    RESERVED_TRAINING_ARGS,
    check_config,
    load_config,
)
from ner_component.benchmarks.hf_recipe.data import read_split
from ner_component.benchmarks.hf_recipe.labels import (
    IGNORE_INDEX,
    SUBWORD_LABELS,
    align_labels,
    label_maps,
    tokenize_and_align,
    word_predictions,
)
from ner_component.benchmarks.hf_recipe.predict import predict_tags, score_tags
from ner_component.benchmarks.hf_recipe.run import (
    CONFIG_NAME,
    CURVE_NAME,
    MODEL_DIR,
    RESULTS_NAME,
    SYSTEM_NAME,
    check_hub_token,
    run_recipe,
    save_model_atomic,
)

__all__ = [
    "CONFIG_KEYS",
    "CONFIG_NAME",
    "CURVE_NAME",
    "IGNORE_INDEX",
    "MODEL_DIR",
    "REPORT_TO",
    "RESERVED_TRAINING_ARGS",
    "RESULTS_NAME",
    "SUBWORD_LABELS",
    "SYSTEM_NAME",
    "WordCountingCollator",
    "align_labels",
    "check_config",
    "check_hub_token",
    "label_maps",
    "load_config",
    "make_budget_callback",
    "predict_tags",
    "read_split",
    "run_recipe",
    "save_model_atomic",
    "score_tags",
    "tokenize_and_align",
    "word_predictions",
]
