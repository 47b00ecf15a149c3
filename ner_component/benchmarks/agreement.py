"""How much predictions move with the `nlp.pipe` batch size and the CPU dtype.

The project promises (README, "Evaluation"; tests/test_agreement.py):

- float32: the same entities at every batch size (and prediction chunk budget);
  confidences differ by float rounding only;
- bfloat16: a batch cut differently rounds differently, so a few entities near a
  decision boundary change; the share that differs between two batch sizes stays
  below `BF16_MAX_DISAGREEMENT` (measured on the WikiANN en test split with
  `scripts/benchmark_agreement.py`).

Disagreement between two prediction runs is |A Δ B| / |A ∪ B| over their entity sets
(doc index, start, end, label): 0 when they predict the same entities.
"""
from typing import Any, Dict, Iterable, List, Optional, Sequence, Set, Tuple

from spacy.tokens import Doc
from wasabi import msg

from ner_component import reporting
from ner_component.data.convert import read_docs
from ner_component.errors import NerComponentError
from ner_component.evaluation.crosscheck import predict_docs
from ner_component.reporting import percent, write_report
from ner_component.runtime.token_ner import doc_confidences
from ner_component.runtime.transformer import (
    apply_cpu_inference_dtype,
    pipeline_cpu_inference_dtype,
    resolve_cpu_inference_dtype,
)
from ner_component.util import PathLike

DEFAULT_BATCH_SIZES = (8, 64, 256)
DEFAULT_DTYPES = ("float32", "bfloat16")
# The promise for bfloat16: at most this share of entities differs between any two
# batch sizes (and between bfloat16 and float32 at the same batch size).
BF16_MAX_DISAGREEMENT = 0.01
# float32: confidences of the same entity may differ by this much between batch sizes.
FLOAT32_MAX_CONFIDENCE_DIFF = 1e-4

Entity = Tuple[int, int, int, str]


def entity_set(docs: Iterable[Doc]) -> Set[Entity]:
    """The entities of a prediction run as (doc index, start token, end token, label)."""
    return {(i, ent.start, ent.end, ent.label_) for i, doc in enumerate(docs) for ent in doc.ents}


def confidences(docs: Iterable[Doc]) -> Dict[Entity, float]:
    """`Span._.confidence` of each entity that has one."""
    found = {}
    for i, doc in enumerate(docs):
        scores = doc_confidences(doc)
        for ent in doc.ents:
            value = scores.get((ent.start, ent.end, ent.label))
            if value is not None:
                found[(i, ent.start, ent.end, ent.label_)] = value
    return found


def disagreement(a: Sequence[Doc], b: Sequence[Doc]) -> Dict[str, Any]:
    """How two prediction runs over the same docs differ.

    RETURNS (Dict[str, Any]): entities in each, `differing` (|A Δ B|), `rate`
        (|A Δ B| / |A ∪ B|), `docs_differing`, and `max_confidence_diff` over the
        entities both predict.
    """
    ents_a, ents_b = entity_set(a), entity_set(b)
    differing = ents_a ^ ents_b
    conf_a, conf_b = confidences(a), confidences(b)
    common = set(conf_a) & set(conf_b)
    return {
        "entities_a": len(ents_a),
        "entities_b": len(ents_b),
        "differing": len(differing),
        "rate": len(differing) / max(1, len(ents_a | ents_b)),
        "docs_differing": len({ent[0] for ent in differing}),
        "max_confidence_diff": max((abs(conf_a[k] - conf_b[k]) for k in common), default=0.0),
    }


def measure_agreement(
    nlp: Any,
    gold_docs: Sequence[Doc],
    batch_sizes: Sequence[int] = DEFAULT_BATCH_SIZES,
    dtypes: Sequence[str] = DEFAULT_DTYPES,
) -> Dict[str, Any]:
    """Predict `gold_docs` once per dtype and batch size and compare the runs.

    nlp (Language): A pipeline with a `ner_component` transformer (its CPU dtype is
        switched in place, and put back).
    gold_docs (Sequence[Doc]): The docs to predict (their own tokens are used).
    batch_sizes (Sequence[int]): `nlp.pipe` batch sizes; the first is each dtype's reference.
    dtypes (Sequence[str]): CPU dtypes ("float32", "bfloat16"); bfloat16 is emulated,
        and slow, on CPUs without native support.
    RETURNS (Dict[str, Any]): {"runs": [...], "within_dtype": {...}, "across_dtypes": {...}}.
    """
    if not batch_sizes or any(not isinstance(b, int) or b < 1 for b in batch_sizes):
        raise NerComponentError(f"batch sizes must be whole numbers >= 1, got {list(batch_sizes)}")
    for dtype in dtypes:
        if dtype not in ("float32", "bfloat16"):
            raise NerComponentError(f"dtype must be float32 or bfloat16, got {dtype!r}")
    before = pipeline_cpu_inference_dtype(nlp)
    if before is None:
        raise NerComponentError("the pipeline has no transformer: nothing depends on the dtype")
    predictions: Dict[Tuple[str, int], List[Doc]] = {}
    try:
        for dtype in dtypes:
            apply_cpu_inference_dtype(nlp, dtype)
            for batch_size in batch_sizes:
                msg.info(f"Predicting {len(gold_docs)} docs in {dtype} at batch size {batch_size}")
                predictions[(dtype, batch_size)] = predict_docs(nlp, gold_docs, batch_size)
    finally:
        apply_cpu_inference_dtype(nlp, before)
    within = {
        dtype: {
            str(b): disagreement(predictions[(dtype, batch_sizes[0])], predictions[(dtype, b)])
            for b in batch_sizes[1:]
        }
        for dtype in dtypes
    }
    across = {}
    if len(dtypes) > 1:
        across = {
            str(b): disagreement(predictions[(dtypes[0], b)], predictions[(dtypes[1], b)]) for b in batch_sizes
        }
    return {
        "n_docs": len(gold_docs),
        "batch_sizes": list(batch_sizes),
        "dtypes": list(dtypes),
        "entities": {f"{d} bs {b}": len(entity_set(docs)) for (d, b), docs in predictions.items()},
        "within_dtype": within,
        "across_dtypes": across,
    }


def worst(result: Dict[str, Any], dtype: Optional[str] = None) -> Dict[str, float]:
    """The largest disagreement rate and confidence difference between batch sizes
    of one dtype (or, with dtype None, between the two dtypes)."""
    rows = list(result["across_dtypes"].values()) if dtype is None else list(result["within_dtype"][dtype].values())
    return {
        "rate": max((r["rate"] for r in rows), default=0.0),
        "differing": max((r["differing"] for r in rows), default=0),
        "max_confidence_diff": max((r["max_confidence_diff"] for r in rows), default=0.0),
    }


def markdown_table(result: Dict[str, Any]) -> str:
    """The comparisons as Markdown: one row per pair of prediction runs."""
    rows = []
    first = result["batch_sizes"][0]
    for dtype, pairs in result["within_dtype"].items():
        rows += [_cells(f"{dtype}: batch {first} vs {b}", row) for b, row in pairs.items()]
    if result["across_dtypes"]:
        a, b = result["dtypes"][:2]
        rows += [_cells(f"batch {size}: {a} vs {b}", row) for size, row in result["across_dtypes"].items()]
    header = ["runs compared", "entities", "differing", "disagreement", "docs differing", "max confidence diff"]
    return reporting.markdown_table(header, rows) + "\n"


def _cells(name: str, row: Dict[str, Any]) -> List[Any]:
    return [
        name,
        f"{row['entities_a']:,} / {row['entities_b']:,}",
        row["differing"],
        f"{percent(row['rate'], 3)}%",
        row["docs_differing"],
        f"{row['max_confidence_diff']:.2e}",
    ]


def run_agreement(
    model: PathLike,
    test_path: PathLike,
    output_dir: PathLike,
    name: str,
    batch_sizes: Sequence[int] = DEFAULT_BATCH_SIZES,
    dtypes: Sequence[str] = DEFAULT_DTYPES,
    limit: Optional[int] = None,
) -> Dict[str, Any]:
    """Measure agreement for a trained pipeline on a test corpus; write
    `<name>.json` and `<name>.md` to `output_dir` and print the table."""
    import spacy

    from ner_component.runtime.transformer import cpu_has_native_bf16

    nlp = spacy.load(model)
    docs = read_docs(test_path, nlp.vocab)
    if limit is not None:
        docs = docs[:limit]
    result = measure_agreement(nlp, docs, batch_sizes, dtypes)
    result.update(
        model=str(model),
        test=str(test_path),
        native_bf16=cpu_has_native_bf16(),
        auto_dtype=resolve_cpu_inference_dtype("auto"),
    )
    table = markdown_table(result)
    write_report(output_dir, name, result, table)
    print(table)
    return result
