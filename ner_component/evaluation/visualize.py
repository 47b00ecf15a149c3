"""displaCy's entity view of the test predictions: each sentence's gold entities
above its predicted ones, each prediction with its confidence, mistakes in red.

Reads the evaluate step's `predictions.spacy` (the docs the scores were computed
from) and the test split; no model is loaded. `spacy evaluate --displacy-path`
renders entities only for pipelines whose component factory is `ner` (spaCy's
transition-based parser), so it shows nothing for `token_ner` pipelines; this view
replaces it, and shows more: gold beside predicted, confidences and mistakes.
"""
import html
from typing import Any, Dict, List, Sequence, Tuple

from spacy.tokens import Doc
from spacy.vocab import Vocab

from ner_component.data.convert import read_docs
from ner_component.errors import NerComponentError
from ner_component.evaluation.crosscheck import pair_predictions
from ner_component.runtime.token_ner import get_confidence
from ner_component.util import PathLike, write_text_atomic

DEFAULT_LIMIT = 25
# displaCy's own colours for the WikiANN types; mistakes in red, whatever their type
TYPE_COLORS = {"PER": "#aa9cfc", "ORG": "#7aecec", "LOC": "#ff9561"}
MISTAKE_COLOR = "#ff6b6b"
MISSED = "missed"
WRONG = "wrong"


def _key(span: Any) -> Tuple[int, int, str]:
    return (span.start_char, span.end_char, span.label_)


def _confidence(span: Any) -> Any:
    # read from the span group token_ner keeps (what `Span._.confidence` returns),
    # without relying on the extension being registered in this process
    return get_confidence(span)


def sentence_views(predicted: Doc, gold: Doc, index: int) -> List[Dict[str, Any]]:
    """Two displaCy manual-mode records for one sentence: gold, then predicted.

    A gold entity the model did not predict (same span and type) is labelled
    `<TYPE> missed`; a predicted entity that is not a gold one `<TYPE> <conf> wrong`.
    """
    gold_keys = {_key(e) for e in gold.ents}
    pred_keys = {_key(e) for e in predicted.ents}
    gold_ents = [
        {"start": e.start_char, "end": e.end_char, "label": e.label_ if _key(e) in pred_keys else f"{e.label_} {MISSED}"}
        for e in gold.ents
    ]
    pred_ents = []
    for e in predicted.ents:
        conf = _confidence(e)
        label = e.label_ if conf is None else f"{e.label_} {conf:.2f}"
        if _key(e) not in gold_keys:
            label += f" {WRONG}"
        pred_ents.append({"start": e.start_char, "end": e.end_char, "label": label})
    return [
        {"text": gold.text, "ents": gold_ents, "title": f"#{index} gold"},
        {"text": predicted.text, "ents": pred_ents, "title": f"#{index} predicted"},
    ]


def label_colors(records: Sequence[Dict[str, Any]]) -> Dict[str, str]:
    """A colour per label string displaCy will see (it looks them up upper-cased)."""
    colors = {}
    for record in records:
        for ent in record["ents"]:
            label = ent["label"]
            mistake = label.endswith(MISSED) or label.endswith(WRONG)
            colors[label.upper()] = MISTAKE_COLOR if mistake else TYPE_COLORS.get(label.split()[0], "#ddd")
    return colors


def render(predictions: PathLike, test_path: PathLike, output: PathLike, limit: int = DEFAULT_LIMIT) -> Dict[str, int]:
    """Write displaCy's entity view of the first `limit` test sentences to `output`.

    predictions (PathLike): The evaluate step's `predictions.spacy`.
    test_path (PathLike): The test `.spacy` file they were predicted from.
    output (PathLike): The HTML file (written atomically).
    limit (int): How many sentences.
    RETURNS (Dict[str, int]): sentences shown, and mistakes among them (wrong, missed).
    """
    from spacy import displacy

    if limit < 1:
        raise NerComponentError(f"limit must be at least 1, got {limit}")
    vocab = Vocab()
    examples = pair_predictions(read_docs(predictions, vocab), read_docs(test_path, vocab), where=str(predictions))
    records: List[Dict[str, Any]] = []
    for i, eg in enumerate(examples[:limit]):
        records.extend(sentence_views(eg.predicted, eg.reference, i))
    counts = {
        "sentences": min(limit, len(examples)),
        "wrong": sum(e["label"].endswith(WRONG) for r in records for e in r["ents"]),
        "missed": sum(e["label"].endswith(MISSED) for r in records for e in r["ents"]),
    }
    body = displacy.render(records, style="ent", manual=True, page=False, options={"colors": label_colors(records)})
    legend = (
        f"<p>WikiANN test split, first {counts['sentences']} sentences of {html.escape(str(predictions))}: "
        "each sentence's gold entities, then the predicted ones with their confidence. "
        f"<span style='background:{MISTAKE_COLOR};padding:0 4px'>red</span>: a predicted entity that is not "
        f"a gold one (<b>wrong</b>: {counts['wrong']}) or a gold one not predicted (<b>missed</b>: {counts['missed']}).</p>"
    )
    page = (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>Predictions</title></head>"
        "<body style='font-family: -apple-system, sans-serif; padding: 2rem; max-width: 1100px'>"
        f"<h2>Predicted entities</h2>{legend}{body}</body></html>"
    )
    write_text_atomic(output, page)
    return counts
