"""Score one set of predictions with seqeval, the metric Hugging Face reports, and
with spaCy's scorer, and check that the two metric implementations agree.

spaCy scores exact entity spans (`ents_p/r/f`). seqeval in strict IOB2 mode scores
the same spans read from IOB2 word tags, so on the same predicted docs the two must
agree to the last bit of precision and recall; a difference means the corpus, the
tokens or the scorer setup is off. seqeval's default mode (conlleval's reading,
where a stray `I-X` starts an entity) is reported too.

Both scorers read the same predicted docs: the test split is predicted once (the
evaluate step keeps them as `predictions.spacy`), never once per scorer, because a
second inference run need not give the same entities (bfloat16 rounding depends on
how a batch is cut; docs/design.md, "One prediction, two scorers").
"""
import math
from typing import Any, Dict, Iterable, List, Optional, Sequence

from seqeval.metrics import accuracy_score, classification_report
from seqeval.scheme import IOB2
from spacy.language import Language
from spacy.scorer import get_ner_prf
from spacy.tokens import Doc
from spacy.training import Example
from spacy.training.iob_utils import biluo_to_iob, doc_to_biluo_tags
from tqdm import tqdm

from ner_component.errors import NerComponentError
from ner_component.reporting import figure, per_type_table, scores_table, spacy_prf
from ner_component.util import PathLike

# Both scorers read the same predictions: precision and recall are the same counts
# divided the same way (bit-identical); F1 may differ in its last bits only.
RELATIVE_TOLERANCE = 1e-12


def doc_to_iob2(doc: Doc) -> List[str]:
    """The IOB2 tag of each token of `doc`, from `doc.ents`."""
    return biluo_to_iob(doc_to_biluo_tags(doc, missing="O"))


def seqeval_scores(
    y_true: Sequence[Sequence[str]], y_pred: Sequence[Sequence[str]], strict: bool
) -> Dict[str, Any]:
    """Overall and per-type seqeval figures.

    y_true (Sequence[Sequence[str]]): Gold IOB2 tags per sentence.
    y_pred (Sequence[Sequence[str]]): Predicted IOB2 tags per sentence.
    strict (bool): seqeval's strict IOB2 mode (`mode="strict", scheme=IOB2`), else
        its default, conlleval-compatible mode.
    RETURNS (Dict[str, Any]): precision, recall, f1, accuracy (token accuracy) and
        per_type {label: {precision, recall, f1, support}}.
    """
    kwargs: Dict[str, Any] = {"mode": "strict", "scheme": IOB2} if strict else {}
    report = classification_report(
        y_true, y_pred, output_dict=True, zero_division=0, **kwargs
    )
    micro = report["micro avg"]
    per_type = {
        label: {
            "precision": float(row["precision"]),
            "recall": float(row["recall"]),
            "f1": float(row["f1-score"]),
            "support": int(row["support"]),
        }
        for label, row in sorted(report.items())
        if not label.endswith(" avg")
    }
    return {
        "precision": float(micro["precision"]),
        "recall": float(micro["recall"]),
        "f1": float(micro["f1-score"]),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "support": int(micro["support"]),
        "per_type": per_type,
    }


def predict_docs(nlp: Language, gold_docs: Iterable[Doc], batch_size: Optional[int] = None) -> List[Doc]:
    """Run `nlp` over the gold docs' own tokens (WikiANN's tokens, not spaCy's
    tokenizer): the predictions that both scorers read.

    nlp (Language): The trained pipeline.
    gold_docs (Iterable[Doc]): Docs with gold `ents`.
    batch_size (Optional[int]): Batch size for `nlp.pipe`; None for the pipeline's
        own `nlp.batch_size`.
    RETURNS (List[Doc]): One predicted doc per gold doc, in order.
    """
    gold_docs = list(gold_docs)
    inputs = (
        Doc(nlp.vocab, words=[t.text for t in doc], spaces=[bool(t.whitespace_) for t in doc])
        for doc in gold_docs
    )
    predicted = tqdm(
        nlp.pipe(inputs, batch_size=batch_size), total=len(gold_docs), desc="predict", unit=" docs"
    )
    return list(predicted)


def pair_predictions(predicted: Sequence[Doc], gold: Sequence[Doc], where: str = "predictions") -> List[Example]:
    """Pair saved predictions with the gold docs they were made from, checking that
    they are the same sentences with the same tokens (a stale predictions file from
    another corpus would otherwise be scored silently).

    predicted (Sequence[Doc]): The predicted docs (e.g. `predictions.spacy`).
    gold (Sequence[Doc]): The gold docs (e.g. `test.spacy`).
    where (str): How to name the predictions in an error.
    RETURNS (List[Example]): One Example (predicted, reference) per doc.
    """
    if len(predicted) != len(gold):
        raise NerComponentError(
            f"{where} holds {len(predicted)} docs but the gold corpus {len(gold)}: predict the same split again"
        )
    for i, (pred, ref) in enumerate(zip(predicted, gold)):
        if [t.text for t in pred] != [t.text for t in ref]:
            raise NerComponentError(
                f"{where}: doc {i} has other tokens than the gold corpus "
                f"({pred.text[:60]!r} vs {ref.text[:60]!r}): predict the same split again"
            )
    return [Example(pred, ref) for pred, ref in zip(predicted, gold)]


def predict_with_gold_tokens(
    nlp: Language, gold_docs: Iterable[Doc], batch_size: Optional[int] = None
) -> List[Example]:
    """Predict the gold docs' tokens with `nlp` and pair each prediction with its gold."""
    gold_docs = list(gold_docs)
    return pair_predictions(predict_docs(nlp, gold_docs, batch_size), gold_docs)


def spacy_scores(examples: Iterable[Example]) -> Dict[str, Any]:
    """spaCy's entity scores (what `spacy evaluate` reports as ents_p/r/f)."""
    prf = get_ner_prf(list(examples))
    return {"ents_p": prf["ents_p"], "ents_r": prf["ents_r"], "ents_f": prf["ents_f"],
            "ents_per_type": prf["ents_per_type"]}


def _same(a: Optional[float], b: Optional[float]) -> bool:
    """Equal up to the last bits of the F1 formula: the two libraries divide the same
    counts the same way for precision and recall (bit-identical), and compute F1 from
    them in a different order of operations (2pr/(p+r) vs 2(pr/(p+r)))."""
    return a is not None and b is not None and math.isclose(a, b, rel_tol=RELATIVE_TOLERANCE, abs_tol=1e-15)


def compare(seqeval_strict: Dict[str, Any], spacy: Dict[str, Any], name: str = "spaCy") -> List[str]:
    """The disagreements between seqeval's strict figures and spaCy's, overall and
    per entity type, as messages.

    seqeval_strict (Dict[str, Any]): `seqeval_scores(..., strict=True)`.
    spacy (Dict[str, Any]): spaCy's scores with `ents_p`, `ents_r`, `ents_f` and,
        where present, `ents_per_type`.
    name (str): How to name spaCy's side in the messages.
    RETURNS (List[str]): Empty when they agree.
    """
    problems = []
    for ours, theirs in (("precision", "ents_p"), ("recall", "ents_r"), ("f1", "ents_f")):
        a, b = seqeval_strict[ours], spacy.get(theirs)
        if not _same(a, b):
            problems.append(f"seqeval strict {ours} {a!r} != {name} {theirs} {b!r}")
    per_type = spacy.get("ents_per_type")
    if per_type is not None:
        for label in sorted(set(seqeval_strict["per_type"]) | set(per_type)):
            ours_row = seqeval_strict["per_type"].get(label, {})
            theirs_row = per_type.get(label, {})
            for ours, theirs in (("precision", "p"), ("recall", "r"), ("f1", "f")):
                a, b = ours_row.get(ours, 0.0), theirs_row.get(theirs, 0.0)
                if not _same(a, b):
                    problems.append(f"seqeval strict {label} {ours} {a!r} != {name} {label} {theirs} {b!r}")
    return problems


def crosscheck_examples(
    examples: Sequence[Example], spacy_reported: Optional[Dict[str, Any]] = None
) -> Dict[str, Any]:
    """Score one set of predictions with seqeval (strict and default) and with
    spaCy's scorer, and list where seqeval's strict figures and spaCy's disagree.

    examples (Sequence[Example]): Predicted docs paired with their gold docs.
    spacy_reported (Optional[Dict[str, Any]]): Figures the evaluate step wrote with
        spaCy's scorer for the same predictions (`spacy.json`), checked as well.
    RETURNS (Dict[str, Any]): {"seqeval_strict", "seqeval_default", "spacy",
        "spacy_evaluate", "problems", "n_docs"}.
    """
    if not examples:
        raise NerComponentError("no docs to score: the test corpus is empty")
    y_true = [doc_to_iob2(eg.reference) for eg in examples]
    y_pred = [doc_to_iob2(eg.predicted) for eg in examples]
    result: Dict[str, Any] = {
        "n_docs": len(examples),
        "seqeval_strict": seqeval_scores(y_true, y_pred, strict=True),
        "seqeval_default": seqeval_scores(y_true, y_pred, strict=False),
        "spacy": spacy_scores(examples),
    }
    problems = compare(result["seqeval_strict"], result["spacy"])
    if spacy_reported is not None:
        result["spacy_evaluate"] = {k: spacy_reported.get(k) for k in ("ents_p", "ents_r", "ents_f")}
        problems += compare(result["seqeval_strict"], spacy_reported, name="spacy.json")
    result["problems"] = problems
    return result


def crosscheck(
    nlp: Language,
    gold_docs: Iterable[Doc],
    spacy_reported: Optional[Dict[str, Any]] = None,
    batch_size: Optional[int] = None,
) -> Dict[str, Any]:
    """Predict `gold_docs` once with `nlp` and cross-check the scorers on those
    predictions (`crosscheck_examples`).

    batch_size (Optional[int]): Batch size for `nlp.pipe`; None for `nlp.batch_size`.
    """
    return crosscheck_examples(predict_with_gold_tokens(nlp, gold_docs, batch_size), spacy_reported)


def markdown_table(result: Dict[str, Any]) -> str:
    """The cross-check as Markdown: overall figures and the per-type table."""
    overall = scores_table(
        [
            ("seqeval strict IOB2", result["seqeval_strict"]),
            ("seqeval default", result["seqeval_default"]),
            ("spaCy scorer", spacy_prf(result["spacy"])),
        ]
    )
    return f"{overall}\n\n{per_type_table(result['seqeval_strict']['per_type'])}\n"


def plot_per_type(result: Dict[str, Any], path: PathLike, title: str = "") -> None:
    """A bar chart of per-type F1, seqeval strict beside spaCy, saved as PNG."""
    labels = list(result["seqeval_strict"]["per_type"])
    seq = [100 * result["seqeval_strict"]["per_type"][lb]["f1"] for lb in labels]
    spc = [100 * (result["spacy"]["ents_per_type"].get(lb, {}).get("f") or 0.0) for lb in labels]
    labels.append("overall")
    seq.append(100 * result["seqeval_strict"]["f1"])
    spc.append(100 * result["spacy"]["ents_f"])
    xs = range(len(labels))
    with figure(path, figsize=(6, 3.5)) as (_, ax):
        ax.bar([x - 0.2 for x in xs], seq, width=0.4, label="seqeval strict IOB2")
        ax.bar([x + 0.2 for x in xs], spc, width=0.4, label="spaCy scorer")
        for x, value in zip(xs, seq):
            ax.text(x - 0.2, value + 1, f"{value:.1f}", ha="center", fontsize=8)
        ax.set_xticks(list(xs), labels)
        ax.set_ylabel("F1 (test)")
        ax.set_ylim(0, 105)
        ax.set_title(title)
        ax.legend(loc="lower right", fontsize=8)
