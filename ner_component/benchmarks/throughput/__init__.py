"""Inference throughput: the spaCy pipeline against the Hugging Face
token-classification pipeline on the same backbone, texts and machine.

Both engines annotate the same texts (`texts`): the sentences of the WikiANN test
split (tokens joined by spaces) and longer documents made by joining consecutive
sentences. Each run is one process of its own, started fresh (`runner`), so that
its peak memory is its own: the parent samples the resident memory of the whole
process tree (`sampling`; spaCy's worker processes included) and the child
(`engines`) reports its own `ru_maxrss`.

The spaCy configurations are swept (`benchmark`) over `nlp.pipe` batch sizes,
process counts, the transformer's CPU prediction dtype (float32, or bfloat16 where
the CPU computes it natively: see `ner_component.runtime.transformer`) and its
prediction chunking (`predict_token_budget`: the pipeline's own, and 0,
spacy-transformers' single padded pass per batch, to show what chunking by length
gains); the Hugging Face pipeline over batch sizes and its model's dtype (float32,
its default, and bfloat16), so that the comparison holds against Hugging Face at
its fastest too. Every run's entities are scored (`summary`) against the gold
entities of the test split (exact character spans and labels, the strict measure),
and against the fastest spaCy run (agreement); `report` writes the table and plot.
Where no fine-tuned Hugging Face model exists yet, `stand_in` writes one with an
untrained head and the same inference cost.
"""
from ner_component.benchmarks.throughput.benchmark import (
    DEFAULT_CPU_DTYPES,
    DEFAULT_HF_BATCH_SIZES,
    DEFAULT_HF_DTYPES,
    DEFAULT_N_PROCESS,
    DEFAULT_SPACY_BATCH_SIZES,
    DEFAULT_TOKEN_BUDGETS,
    run_benchmark,
)
from ner_component.benchmarks.throughput.engines import ENGINES, HF_DTYPES, run_engine, run_engine_file
from ner_component.benchmarks.throughput.report import markdown_table, plot_throughput
from ner_component.benchmarks.throughput.runner import measure, run_label
from ner_component.benchmarks.throughput.stand_in import build_random_token_classifier
from ner_component.benchmarks.throughput.summary import agreement, entity_set, machine, summarize
from ner_component.benchmarks.throughput.texts import (
    DEFAULT_JOIN,
    SETTINGS,
    count_words,
    join_documents,
    join_gold,
    sentence_gold,
    sentence_texts,
)

__all__ = [
    "DEFAULT_CPU_DTYPES",
    "DEFAULT_HF_BATCH_SIZES",
    "DEFAULT_HF_DTYPES",
    "DEFAULT_JOIN",
    "DEFAULT_N_PROCESS",
    "DEFAULT_SPACY_BATCH_SIZES",
    "DEFAULT_TOKEN_BUDGETS",
    "ENGINES",
    "HF_DTYPES",
    "SETTINGS",
    "agreement",
    "build_random_token_classifier",
    "count_words",
    "entity_set",
    "join_documents",
    "join_gold",
    "machine",
    "markdown_table",
    "measure",
    "plot_throughput",
    "run_benchmark",
    "run_engine",
    "run_engine_file",
    "run_label",
    "sentence_gold",
    "sentence_texts",
    "summarize",
]
