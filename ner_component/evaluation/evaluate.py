"""Evaluate a trained pipeline on the test split: predict once, keep the predictions,
score them with spaCy's scorer, then cross-check the same predictions with seqeval."""
import time
from pathlib import Path
from typing import Any, Dict, Optional

from spacy.scorer import Scorer
from spacy.tokens import DocBin
from wasabi import msg

from ner_component.data.convert import read_docs
from ner_component.errors import NerComponentError
from ner_component.evaluation.crosscheck import (
    crosscheck_examples,
    markdown_table,
    pair_predictions,
    plot_per_type,
    predict_docs,
)
from ner_component.hardware import require_device
from ner_component.runtime.transformer import pipeline_cpu_inference_dtype
from ner_component.util import (
    PathLike,
    atomic_path,
    read_json,
    write_json_atomic,
    write_text_atomic,
)

PREDICTIONS = "predictions.spacy"
SPACY_SCORES = "spacy.json"
# `spacy evaluate`'s JSON keys for what a NER pipeline reports (spacy/cli/evaluate.py).
SPACY_EVALUATE_KEYS = ("token_acc", "ents_p", "ents_r", "ents_f", "speed", "ents_per_type")


def evaluate_test(
    model: PathLike,
    test_path: PathLike,
    output_dir: PathLike,
    gpu_id: int = -1,
    batch_size: Optional[int] = None,
) -> Dict[str, Any]:
    """Predict the test split once and score the predictions with spaCy's scorer.

    Writes `predictions.spacy` (the predicted docs, on the test split's own tokens,
    with the entity confidences in `doc.spans`) and `spacy.json` (what `spacy
    evaluate` reports: token_acc, ents_p/r/f, ents_per_type, speed, from the same
    `Scorer`). `spacy evaluate` itself is not run: it predicts internally and can't
    score saved predictions, and the cross-check must score these same docs.

    model (PathLike): The trained pipeline folder or package name.
    test_path (PathLike): The test `.spacy` file.
    output_dir (PathLike): Folder for `predictions.spacy` and `spacy.json`.
    gpu_id (int): -1 for the CPU, else the CUDA device.
    batch_size (Optional[int]): `nlp.pipe` batch size; None for the pipeline's own.
    RETURNS (Dict[str, Any]): The scores written to `spacy.json`.
    """
    import spacy

    require_device(gpu_id)
    if gpu_id >= 0:
        spacy.require_gpu(gpu_id)
    nlp = spacy.load(model)
    gold = read_docs(test_path, nlp.vocab)
    if not gold:
        raise NerComponentError(f"{test_path}: the test corpus holds no docs")
    start = time.perf_counter()
    predicted = predict_docs(nlp, gold, batch_size)
    seconds = time.perf_counter() - start
    examples = pair_predictions(predicted, gold)
    scores = Scorer(nlp).score(examples)
    data: Dict[str, Any] = {key: scores[key] for key in SPACY_EVALUATE_KEYS if key in scores}
    data["speed"] = sum(len(doc) for doc in predicted) / max(seconds, 1e-9)
    data["predictions"] = {
        "file": PREDICTIONS,
        "n_docs": len(predicted),
        "batch_size": batch_size if batch_size is not None else nlp.batch_size,
        "cpu_inference_dtype": pipeline_cpu_inference_dtype(nlp),
        "device": f"cuda:{gpu_id}" if gpu_id >= 0 else "cpu",
    }
    output_dir = Path(output_dir)
    with atomic_path(output_dir / PREDICTIONS) as tmp:
        DocBin(docs=predicted, store_user_data=True).to_disk(tmp)
    write_json_atomic(output_dir / SPACY_SCORES, data)
    msg.table(
        {"NER P": f"{100 * data['ents_p']:.2f}", "NER R": f"{100 * data['ents_r']:.2f}",
         "NER F": f"{100 * data['ents_f']:.2f}", "SPEED": f"{data['speed']:.0f}"},
        title=f"spaCy scorer on {len(predicted)} predicted docs ({output_dir / PREDICTIONS})",
    )
    return data


def run_crosscheck(
    predictions: PathLike,
    test_path: PathLike,
    output_dir: PathLike,
    spacy_json: Optional[PathLike] = None,
) -> Dict[str, Any]:
    """Score the saved predictions of the test split with seqeval and spaCy's scorer,
    write `seqeval.json`, `seqeval.md` and `seqeval.png` to `output_dir`, and raise
    NerComponentError naming both figures when seqeval's strict figures and spaCy's
    disagree (overall or for any entity type).

    predictions (PathLike): The predicted docs (`predictions.spacy` of `evaluate_test`).
    test_path (PathLike): The test `.spacy` file the predictions were made from.
    output_dir (PathLike): Folder for the outputs.
    spacy_json (Optional[PathLike]): The evaluate step's `spacy.json`, checked too.
    RETURNS (Dict[str, Any]): The cross-check result.
    """
    from spacy.vocab import Vocab

    vocab = Vocab()
    gold = read_docs(test_path, vocab)
    try:
        examples = pair_predictions(read_docs(predictions, vocab), gold, where=str(predictions))
        reported = read_json(spacy_json) if spacy_json is not None else None
        result = crosscheck_examples(examples, reported)
    except ValueError as err:
        raise NerComponentError(str(err)) from err
    result["predictions"] = str(predictions)
    result["test"] = str(test_path)
    if reported is not None and isinstance(reported.get("predictions"), dict):
        # how they were predicted (dtype, device, batch size), for the model card
        result["predicted_with"] = {
            key: reported["predictions"][key]
            for key in ("cpu_inference_dtype", "device", "batch_size")
            if key in reported["predictions"]
        }
    output_dir = Path(output_dir)
    write_json_atomic(output_dir / "seqeval.json", result)
    write_text_atomic(output_dir / "seqeval.md", markdown_table(result))
    plot_per_type(result, output_dir / "seqeval.png", title=f"{Path(test_path).parent.name} test")
    print(markdown_table(result))
    if result["problems"]:
        raise NerComponentError("seqeval and spaCy disagree: " + "; ".join(result["problems"]))
    strict = result["seqeval_strict"]
    msg.good(
        f"seqeval strict F1 {100 * strict['f1']:.2f} = spaCy ents_f "
        f"{100 * result['spacy']['ents_f']:.2f} on the same {result['n_docs']} predicted docs"
    )
    return result
