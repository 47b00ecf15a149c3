"""Score a pipeline on raw text, as users send it: entities by character span.

The test scores of `evaluate` run the pipeline on the gold tokens. A user sends
text, which the pipeline's own tokenizer splits; for WikiANN's character-segmented
languages that tokenizer decides whether the pipeline is usable at all (a
whitespace tokenizer makes `香港著名電影` one token). Here each test sentence is
given as text, written as `ner_component.data.convert.natural_spaces` restores it
(characters of character-segmented languages joined, other tokens separated by a
space), and an entity counts when its start and end character and its label are
the gold entity's.
"""
import time
from collections import Counter
from pathlib import Path
from typing import Any, Dict, List, Optional, Set, Tuple

from spacy.tokens import Doc, Span
from tqdm import tqdm

from ner_component.data.convert import LABELS, is_character_segmented, natural_spaces, read_docs
from ner_component.hardware import require_device
from ner_component.util import PathLike, write_json_atomic

RAW_TEXT_SCORES = "raw_text.json"
CharSpan = Tuple[int, int, str]


def raw_text_examples(gold_docs: List[Doc]) -> List[Tuple[str, Set[CharSpan]]]:
    """Each gold doc as raw text, with its entities as character spans of that text.

    The text is rebuilt from the gold tokens, whatever spaces the corpus stored, so a
    corpus converted before texts were written as such gives the same texts.

    gold_docs (List[Doc]): Docs with gold `ents`.
    RETURNS (List[Tuple[str, Set[CharSpan]]]): Text and (start, end, label) per doc.
    """
    words = [[t.text for t in doc] for doc in gold_docs]
    segmented = is_character_segmented(words)
    examples = []
    for doc, doc_words in zip(gold_docs, words):
        spaces = (natural_spaces(doc_words) if segmented else None) or [True] * (len(doc_words) - 1) + [False]
        text_doc = Doc(doc.vocab, words=doc_words, spaces=spaces)
        ents = [Span(text_doc, ent.start, ent.end, ent.label_) for ent in doc.ents]
        examples.append((text_doc.text, {(e.start_char, e.end_char, e.label_) for e in ents}))
    return examples


def prf(tp: int, n_pred: int, n_gold: int) -> Dict[str, float]:
    p = tp / n_pred if n_pred else 0.0
    r = tp / n_gold if n_gold else 0.0
    return {"p": p, "r": r, "f": 2 * p * r / (p + r) if p + r else 0.0}


def score_char_spans(gold: List[Set[CharSpan]], predicted: List[Set[CharSpan]]) -> Dict[str, Any]:
    """Precision, recall and F1 of predicted character spans, overall and per label.

    gold (List[Set[CharSpan]]): Gold (start, end, label) per doc.
    predicted (List[Set[CharSpan]]): Predicted ones, per doc in the same order.
    RETURNS (Dict[str, Any]): `ents_p`, `ents_r`, `ents_f`, `ents_per_type`
        (spaCy's keys) and the counts.
    """
    counts: Dict[str, Counter] = {"tp": Counter(), "pred": Counter(), "gold": Counter()}
    for doc_gold, doc_pred in zip(gold, predicted):
        counts["gold"].update(label for _, _, label in doc_gold)
        counts["pred"].update(label for _, _, label in doc_pred)
        counts["tp"].update(label for _, _, label in doc_gold & doc_pred)
    overall = prf(sum(counts["tp"].values()), sum(counts["pred"].values()), sum(counts["gold"].values()))
    labels = sorted(set(LABELS) | set(counts["gold"]) | set(counts["pred"]))
    return {
        "ents_p": overall["p"],
        "ents_r": overall["r"],
        "ents_f": overall["f"],
        "ents_per_type": {label: prf(counts["tp"][label], counts["pred"][label], counts["gold"][label]) for label in labels},
        "counts": {key: dict(value) for key, value in counts.items()},
    }


def evaluate_raw_text(
    model: PathLike,
    test_path: PathLike,
    output_dir: PathLike,
    gpu_id: int = -1,
    batch_size: Optional[int] = None,
    limit: Optional[int] = None,
) -> Dict[str, Any]:
    """Run the pipeline on the test split as raw text and score entities by
    character span; writes `raw_text.json`.

    model (PathLike): The trained pipeline folder or package name.
    test_path (PathLike): The test `.spacy` file.
    output_dir (PathLike): Folder for `raw_text.json`.
    gpu_id (int): -1 for the CPU, else the CUDA device.
    batch_size (Optional[int]): `nlp.pipe` batch size; None for the pipeline's own.
    limit (Optional[int]): Score the first `limit` sentences only.
    RETURNS (Dict[str, Any]): The scores written.
    """
    import spacy

    require_device(gpu_id)
    nlp = spacy.load(model)
    gold_docs = read_docs(test_path, nlp.vocab)[:limit]
    examples = raw_text_examples(gold_docs)
    start = time.perf_counter()
    texts = [text for text, _ in examples]
    docs = tqdm(nlp.pipe(texts, batch_size=batch_size), total=len(texts), desc="predict raw text", unit=" docs")
    predicted = [{(e.start_char, e.end_char, e.label_) for e in doc.ents} for doc in docs]
    seconds = time.perf_counter() - start
    scores = score_char_spans([spans for _, spans in examples], predicted)
    scores.update({"model": str(model), "test": str(test_path), "n_docs": len(texts), "seconds": round(seconds, 1), "example": texts[0] if texts else ""})
    write_json_atomic(Path(output_dir) / RAW_TEXT_SCORES, scores)
    return scores
