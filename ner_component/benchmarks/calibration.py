"""How far `Span._.confidence` can be read as a probability: of the predicted
entities given a confidence near p, about a share p should be right.

Reads what `evaluate` wrote (the test split predicted once, `predictions.spacy`, with
each entity's confidence in its span group) beside the gold corpus: no model runs
here. A predicted entity is right when the gold doc has the same entity (start, end,
label), as spaCy's scorer counts it. Entities are put in equal-width confidence bins;
each bin's precision against its mean confidence is the reliability diagram, and the
expected calibration error (ECE) is their gap averaged over entities:

    ECE = sum over bins of (entities in bin / entities) * |precision - mean confidence|
"""
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy
from spacy.tokens import Doc
from spacy.vocab import Vocab
from wasabi import msg

from ner_component.benchmarks.agreement import confidences as entity_confidences
from ner_component.data.convert import read_docs
from ner_component.errors import NerComponentError
from ner_component.reporting import figure, markdown_table, number, percent, write_report
from ner_component.util import PathLike

DEFAULT_BINS = 10


def scored_entities(
    predicted: Sequence[Doc], gold: Sequence[Doc], names: Tuple[str, str] = ("predicted", "gold")
) -> Tuple[numpy.ndarray, numpy.ndarray]:
    """The confidence of each predicted entity and whether gold has it.

    predicted (Sequence[Doc]): Predicted docs, entities with `Span._.confidence`.
    gold (Sequence[Doc]): The gold docs, in the same order and with the same tokens.
    names (Tuple[str, str]): What the errors call the two (their files).
    RETURNS (Tuple[numpy.ndarray, numpy.ndarray]): confidences (float64) and right (bool).
    """
    if len(predicted) != len(gold):
        raise NerComponentError(f"{names[0]} has {len(predicted)} docs, {names[1]} {len(gold)}: not the same corpus")
    found = entity_confidences(predicted)
    confidences: List[float] = []
    right: List[bool] = []
    for i, (pred, ref) in enumerate(zip(predicted, gold)):
        words, gold_words = [t.text for t in pred], [t.text for t in ref]
        if words != gold_words:
            j = next((j for j, (a, b) in enumerate(zip(words, gold_words)) if a != b), min(len(words), len(gold_words)))
            mine, theirs = (w[j] if j < len(w) else "<end>" for w in (words, gold_words))
            raise NerComponentError(
                f"{names[0]}: doc {i}, token {j} is {mine!r} where {names[1]} has {theirs!r}: not the same corpus"
            )
        gold_ents = {(e.start, e.end, e.label_) for e in ref.ents}
        for ent in pred.ents:
            confidence = found.get((i, ent.start, ent.end, ent.label_))
            if confidence is None:
                raise NerComponentError(
                    f"{names[0]}: doc {i}, entity {ent.text!r} has no confidence (not predicted by token_ner)"
                )
            confidences.append(confidence)
            right.append((ent.start, ent.end, ent.label_) in gold_ents)
    return numpy.asarray(confidences, dtype="float64"), numpy.asarray(right, dtype=bool)


def calibration(confidences: numpy.ndarray, right: numpy.ndarray, n_bins: int = DEFAULT_BINS) -> Dict[str, Any]:
    """Reliability bins and the expected calibration error.

    confidences (numpy.ndarray): One confidence in [0, 1] per predicted entity.
    right (numpy.ndarray): Whether each is right.
    n_bins (int): Equal-width bins over [0, 1]; a confidence of exactly 1 falls in the last.
    RETURNS (Dict[str, Any]): entities, precision, mean_confidence, ece and bins
        [{low, high, entities, mean_confidence, precision}] (the last two None when empty).
    """
    if n_bins < 1:
        raise NerComponentError(f"n_bins must be at least 1, got {n_bins}")
    if len(confidences) == 0:
        raise NerComponentError("no predicted entities to score")
    if len(confidences) != len(right):
        raise NerComponentError(f"{len(confidences)} confidences for {len(right)} entities")
    which = numpy.minimum((confidences * n_bins).astype("int64"), n_bins - 1)
    bins = []
    ece = 0.0
    for b in range(n_bins):
        inside = which == b
        count = int(inside.sum())
        mean = float(confidences[inside].mean()) if count else None
        precision = float(right[inside].mean()) if count else None
        if count:
            ece += count / len(confidences) * abs(precision - mean)
        bins.append({"low": b / n_bins, "high": (b + 1) / n_bins, "entities": count, "mean_confidence": mean, "precision": precision})
    return {
        "entities": int(len(confidences)),
        "precision": float(right.mean()),
        "mean_confidence": float(confidences.mean()),
        "ece": float(ece),
        "bins": bins,
    }


def markdown(result: Dict[str, Any]) -> str:
    """The report: overall figures, then one row per bin."""
    overall = markdown_table(
        ["entities", "precision", "mean confidence", "ECE"],
        [[number(result["entities"]), percent(result["precision"]), percent(result["mean_confidence"]), percent(result["ece"])]],
    )
    rows = [
        [f"{b['low']:.1f}-{b['high']:.1f}", number(b["entities"]), percent(b["mean_confidence"]), percent(b["precision"])]
        for b in result["bins"]
    ]
    bins = markdown_table(["confidence", "entities", "mean confidence", "precision"], rows)
    return (
        f"# Calibration of `Span._.confidence`: {result['predictions']}\n\n"
        f"Gold: {result['gold']}. ECE: the gap between precision and mean confidence, "
        f"bin by bin, weighted by entities (percentage points).\n\n{overall}\n\n{bins}\n"
    )


def plot(result: Dict[str, Any], path: PathLike) -> None:
    """The reliability diagram: precision against mean confidence per bin (a
    calibrated model lies on the diagonal), and the entities per bin below."""
    with figure(path, nrows=2, figsize=(5, 6), sharex=True, gridspec_kw={"height_ratios": [3, 1]}) as (_, (top, bottom)):
        full = [b for b in result["bins"] if b["entities"]]
        top.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="calibrated")
        top.plot([b["mean_confidence"] for b in full], [b["precision"] for b in full], marker="o", label="this model")
        top.set_ylabel("precision of the bin's entities")
        top.set_title(f"ECE {100 * result['ece']:.2f} points, {result['entities']:,} entities")
        top.legend(loc="upper left")
        width = 1 / len(result["bins"])
        bottom.bar([b["low"] for b in result["bins"]], [b["entities"] for b in result["bins"]], width=width, align="edge")
        bottom.set_xlabel("Span._.confidence")
        bottom.set_ylabel("entities")
        bottom.set_xlim(0, 1)


def run_calibration(
    predictions: PathLike, gold: PathLike, output_dir: PathLike, name: str, n_bins: int = DEFAULT_BINS
) -> Dict[str, Any]:
    """Score the confidences of a predictions file against gold; write
    `<name>.json`, `.md` and the reliability diagram `<name>.png`.

    predictions (PathLike): `predictions.spacy` of `evaluate`.
    gold (PathLike): The gold corpus it predicted (the test `.spacy`).
    output_dir (PathLike): Folder for the report.
    name (str): The report's file name.
    n_bins (int): Confidence bins.
    RETURNS (Dict[str, Any]): What `<name>.json` holds.
    """
    vocab = Vocab()
    found = scored_entities(read_docs(predictions, vocab), read_docs(gold, vocab), (str(predictions), str(gold)))
    if len(found[0]) == 0:
        raise NerComponentError(f"{predictions}: no predicted entities to score")
    result: Dict[str, Optional[Any]] = {"predictions": str(predictions), "gold": str(gold), **calibration(*found, n_bins)}
    json_path = write_report(output_dir, name, result, markdown(result), plot=plot)
    msg.good(
        f"{result['entities']:,} entities: precision {percent(result['precision'])}, mean confidence "
        f"{percent(result['mean_confidence'])}, ECE {percent(result['ece'])} points ({json_path.with_suffix('.md')})"
    )
    return result
