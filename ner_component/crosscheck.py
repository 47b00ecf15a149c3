"""Score a pipeline with seqeval, the metric Hugging Face reports, and check the
figures against spaCy's scorer on the same documents.

spaCy scores exact entity spans (`ents_p/r/f`). seqeval in strict IOB2 mode scores
the same spans read from IOB2 word tags, so on the same docs the two must agree; a
difference means the corpus, the tokens or the scorer setup is off. seqeval's default
mode (conlleval's reading, where a stray `I-X` starts an entity) is reported too.
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

# spaCy's and seqeval's figures are the same counts divided the same way: allow for
# float rounding only (and for the 4 decimals a rounded JSON report keeps).
TOLERANCE = 1e-4


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


def predict_with_gold_tokens(
    nlp: Language, gold_docs: Iterable[Doc], batch_size: int = 128
) -> List[Example]:
    """Run `nlp` over the gold docs' own tokens and pair predictions with the gold.

    nlp (Language): The trained pipeline.
    gold_docs (Iterable[Doc]): Docs with gold `ents`.
    batch_size (int): Batch size for `nlp.pipe`.
    RETURNS (List[Example]): One Example (predicted, reference) per doc.
    """
    gold_docs = list(gold_docs)
    inputs = (
        Doc(nlp.vocab, words=[t.text for t in doc], spaces=[bool(t.whitespace_) for t in doc])
        for doc in gold_docs
    )
    predicted = tqdm(
        nlp.pipe(inputs, batch_size=batch_size), total=len(gold_docs), desc="predict", unit=" docs"
    )
    return [Example(pred, gold) for pred, gold in zip(predicted, gold_docs)]


def spacy_scores(examples: Iterable[Example]) -> Dict[str, Any]:
    """spaCy's entity scores (what `spacy evaluate` reports as ents_p/r/f)."""
    prf = get_ner_prf(list(examples))
    return {"ents_p": prf["ents_p"], "ents_r": prf["ents_r"], "ents_f": prf["ents_f"],
            "ents_per_type": prf["ents_per_type"]}


def compare(
    seqeval_strict: Dict[str, Any], spacy: Dict[str, Any], tolerance: float = TOLERANCE
) -> List[str]:
    """The disagreements between seqeval's strict figures and spaCy's, as messages.

    seqeval_strict (Dict[str, Any]): `seqeval_scores(..., strict=True)`.
    spacy (Dict[str, Any]): spaCy's scores with `ents_p`, `ents_r`, `ents_f`.
    tolerance (float): Largest difference that counts as rounding.
    RETURNS (List[str]): Empty when they agree.
    """
    problems = []
    for ours, theirs in (("precision", "ents_p"), ("recall", "ents_r"), ("f1", "ents_f")):
        a, b = seqeval_strict[ours], spacy.get(theirs)
        if b is None or not math.isclose(a, b, abs_tol=tolerance):
            problems.append(f"seqeval strict {ours} {a:.6f} != spaCy {theirs} {b}")
    return problems


def crosscheck(
    nlp: Language,
    gold_docs: Iterable[Doc],
    spacy_reported: Optional[Dict[str, Any]] = None,
    batch_size: int = 128,
) -> Dict[str, Any]:
    """Score `nlp` on `gold_docs` with seqeval (strict and default) and with spaCy's
    scorer, and list where seqeval's strict figures and spaCy's disagree.

    nlp (Language): The trained pipeline.
    gold_docs (Iterable[Doc]): The test docs with gold entities.
    spacy_reported (Optional[Dict[str, Any]]): Figures `spacy evaluate` wrote for the
        same docs (its JSON output), checked as well.
    batch_size (int): Batch size for `nlp.pipe`.
    RETURNS (Dict[str, Any]): {"seqeval_strict", "seqeval_default", "spacy",
        "spacy_evaluate", "problems", "n_docs"}.
    """
    examples = predict_with_gold_tokens(nlp, gold_docs, batch_size)
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
        problems += [
            p.replace("spaCy", "spacy evaluate")
            for p in compare(result["seqeval_strict"], spacy_reported)
        ]
    result["problems"] = problems
    return result


def markdown_table(result: Dict[str, Any]) -> str:
    """The cross-check as Markdown: overall figures and the per-type table."""
    strict, default, sp = result["seqeval_strict"], result["seqeval_default"], result["spacy"]
    lines = [
        "| scorer | precision | recall | F1 | token accuracy |",
        "|---|---:|---:|---:|---:|",
        _row("seqeval strict IOB2", strict),
        _row("seqeval default", default),
        f"| spaCy scorer | {100 * sp['ents_p']:.2f} | {100 * sp['ents_r']:.2f} | "
        f"{100 * sp['ents_f']:.2f} | |",
        "",
        "| type | precision | recall | F1 | support |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, row in strict["per_type"].items():
        lines.append(
            f"| {label} | {100 * row['precision']:.2f} | {100 * row['recall']:.2f} | "
            f"{100 * row['f1']:.2f} | {row['support']} |"
        )
    return "\n".join(lines) + "\n"


def _row(name: str, scores: Dict[str, Any]) -> str:
    return (
        f"| {name} | {100 * scores['precision']:.2f} | {100 * scores['recall']:.2f} | "
        f"{100 * scores['f1']:.2f} | {100 * scores['accuracy']:.2f} |"
    )


def plot_per_type(result: Dict[str, Any], path: Any, title: str = "") -> None:
    """A bar chart of per-type F1, seqeval strict beside spaCy, saved as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .util import atomic_path

    labels = list(result["seqeval_strict"]["per_type"])
    seq = [100 * result["seqeval_strict"]["per_type"][lb]["f1"] for lb in labels]
    spc = [100 * (result["spacy"]["ents_per_type"].get(lb, {}).get("f") or 0.0) for lb in labels]
    labels.append("overall")
    seq.append(100 * result["seqeval_strict"]["f1"])
    spc.append(100 * result["spacy"]["ents_f"])
    xs = range(len(labels))
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.bar([x - 0.2 for x in xs], seq, width=0.4, label="seqeval strict IOB2")
    ax.bar([x + 0.2 for x in xs], spc, width=0.4, label="spaCy scorer")
    for x, value in zip(xs, seq):
        ax.text(x - 0.2, value + 1, f"{value:.1f}", ha="center", fontsize=8)
    ax.set_xticks(list(xs), labels)
    ax.set_ylabel("F1 (test)")
    ax.set_ylim(0, 105)
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
