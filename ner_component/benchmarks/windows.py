"""How the transformer's windows trade speed for accuracy on long documents.

spacy-transformers reads a doc longer than a window (`strided_spans`: `window` tokens,
a new one every `stride`) in overlapping windows. Sentences of WikiANN fit in one
window, so the windows only matter for documents: this benchmark joins the test
split's sentences into documents (`join` at a time, as the throughput benchmark
does) and runs one pipeline with each window and stride given, in turn: the strict
F1 of its entities against the gold ones (exact character spans and labels), the
positions the encoder computed (padding included, counted at its forward pass), and
`nlp.pipe`'s words/s, medians of the rounds, with each window's speed as the median
of the rounds' ratios to the first window's. With `first_window`, each window runs a
second time with spacy-transformers' own alignment (a token where windows overlap
takes its first window's wordpieces) instead of this project's (the window where it
is most central: `ner_component.runtime.transformer.central_alignment`).

The joined documents are WikiANN fragments side by side, not running text: their
F1 says how the windows compare on the same texts, not what a real document scores.
"""
import statistics
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ner_component import reporting
from ner_component.benchmarks.ceiling import median_ratio, timed_rounds
from ner_component.benchmarks.throughput.summary import agreement, describe_machine, entity_set, machine
from ner_component.benchmarks.throughput.texts import (
    count_words,
    join_documents,
    join_gold,
    sentence_gold,
    sentence_texts,
)
from ner_component.errors import NerComponentError
from ner_component.reporting import number, write_report
from ner_component.util import PathLike, check_writable

DEFAULT_WINDOWS = ("128/112",)  # the configs' window and stride
DEFAULT_JOINS = (16, 64)
DEFAULT_BATCH_SIZE = 16
ALIGNMENTS = ("central", "first")


def parse_window(text: str) -> Tuple[int, int]:
    """"128/96" -> (128, 96): a window of 128 tokens every 96 (1 <= stride <= window)."""
    try:
        window, stride = (int(part) for part in text.split("/"))
    except ValueError:
        raise NerComponentError(f"window '{text}' is not <window>/<stride>, e.g. 128/96") from None
    if not 1 <= stride <= window:
        raise NerComponentError(f"window '{text}': the stride must be from 1 to the window")
    return window, stride


def load_windowed(model: PathLike, window: int, stride: int) -> Any:
    """The pipeline with its transformer's strided windows set to `window`/`stride`."""
    from ner_component.annotate.local import load_pipeline

    spans = {"components": {"transformer": {"model": {"get_spans": {"window": window, "stride": stride}}}}}
    try:
        return load_pipeline(model, config=spans)
    except Exception as e:  # spaCy's config errors are many lines
        if isinstance(e, NerComponentError):
            raise
        raise NerComponentError(
            f"can't load '{model}' with windows of {window} tokens every {stride}: its 'transformer' must "
            f"read spans with spacy-transformers.strided_spans.v1 ({type(e).__name__})"
        ) from e


def _transformer_model(nlp: Any, model: PathLike) -> Any:
    if "transformer" not in nlp.pipe_names:
        raise NerComponentError(f"'{model}' has no 'transformer' component")
    return nlp.get_pipe("transformer").model


def _alignments(transformer: Any, first_window: bool) -> Tuple[str, ...]:
    """The alignments to run: the pipeline's own first ("central" for
    ner_component.TransformerModel.v1, "first" for spacy-transformers' own), then
    "first" too with `first_window` where the pipeline's own is "central"."""
    from ner_component.runtime.transformer import _transformer_model_class

    if not isinstance(transformer, _transformer_model_class()):
        return ("first",)
    return ALIGNMENTS if first_window else ALIGNMENTS[:1]


def _set_alignment(transformer: Any, alignment: str) -> None:
    """Our forward pass (central windows) or spacy-transformers' (first window)."""
    from spacy_transformers.layers.transformer_model import forward

    from ner_component.runtime.transformer import _forward_with_central_windows

    transformer._func = _forward_with_central_windows if alignment == "central" else forward


def compare_windows(
    model: PathLike,
    test_path: PathLike,
    windows: Sequence[Tuple[int, int]],
    joins: Sequence[int] = DEFAULT_JOINS,
    limit: Optional[int] = None,
    rounds: int = 3,
    batch_size: int = DEFAULT_BATCH_SIZE,
    first_window: bool = False,
    progress: bool = True,
) -> Dict[str, Any]:
    """Run the pipeline with each window over the joined test sentences, in turn.

    model (PathLike): A trained pipeline (folder or package) with a transformer.
    test_path (PathLike): The test `.spacy` corpus.
    windows (Sequence[Tuple[int, int]]): (window, stride) pairs, in spaCy tokens; the
        first is the one the others' speeds are relative to.
    joins (Sequence[int]): Sentences per document, one setting each.
    limit (Optional[int]): The first N test sentences; None for all.
    rounds (int): Timed rounds after one untimed pass each (0: F1 and positions only).
    batch_size (int): `nlp.pipe` batch size.
    first_window (bool): Also run each window with spacy-transformers' alignment
        (a pipeline of spacy-transformers' own architecture runs with it anyway).
    progress (bool): A line per setting and round on stderr.
    RETURNS (Dict[str, Any]): The machine, the settings and one row per run.
    """
    if not windows:
        raise NerComponentError("no windows to compare")
    if rounds < 0 or batch_size < 1 or any(join < 1 for join in joins):
        raise NerComponentError(f"rounds ({rounds}) must be >= 0, batch size ({batch_size}) and joins ({list(joins)}) >= 1")
    sentences = sentence_texts(test_path, limit)
    sentence_entities = sentence_gold(test_path, limit)
    pipelines = {}
    for window, stride in windows:
        nlp = load_windowed(model, window, stride)
        pipelines[(window, stride)] = (nlp, _transformer_model(nlp, model))
    rows: List[Dict[str, Any]] = []
    for join in joins:
        texts = join_documents(sentences, join)
        gold = entity_set(join_gold(sentences, sentence_entities, join))
        passes, found, shapes = {}, {}, {}
        for (window, stride), (nlp, transformer) in pipelines.items():
            hf_model = transformer.layers[0].shims[0]._model
            for alignment in _alignments(transformer, first_window):
                key = (window, stride, alignment)
                shapes[key] = []

                def annotate(
                    nlp: Any = nlp, transformer: Any = transformer, hf_model: Any = hf_model, key: Tuple[int, int, str] = key
                ) -> None:
                    _set_alignment(transformer, key[2])
                    hook = hf_model.register_forward_pre_hook(
                        lambda module, args, kwargs: shapes[key].append(tuple(kwargs["input_ids"].shape)), with_kwargs=True
                    )
                    try:
                        docs = nlp.pipe(texts, batch_size=batch_size)
                        found[key] = [[(e.start_char, e.end_char, e.label_) for e in doc.ents] for doc in docs]
                    finally:
                        hook.remove()

                passes[key] = annotate
        if progress:
            print(f"{len(texts)} documents of {join} sentences: {len(passes)} runs, timed rounds: {rounds}", file=sys.stderr, flush=True)
        seconds = timed_rounds({_label(*key): run for key, run in passes.items()}, rounds, progress=progress)
        words = count_words(texts)
        base = _label(*next(iter(passes)))
        for key in passes:
            label = _label(*key)
            shape_list = shapes[key]
            per_pass = len(shape_list) // (rounds + 1)
            rows.append({
                "join": join,
                "documents": len(texts),
                "words": words,
                "window": key[0],
                "stride": key[1],
                "alignment": key[2],
                "f1": 100 * agreement(gold, entity_set(found[key]))["f1"],
                "encoder_passes": per_pass,
                "positions": sum(r * c for r, c in shape_list[:per_pass]),
                "words_per_second": words / statistics.median(seconds[label]) if rounds else None,
                "speed": median_ratio(seconds[base], seconds[label]) if rounds else None,
            })
    return {
        "machine": machine(),
        "model": str(model),
        "test": str(test_path),
        "limit": limit,
        "batch_size": batch_size,
        "rounds": rounds,
        "runs": rows,
    }


def _label(window: int, stride: int, alignment: str) -> str:
    return f"{window}/{stride}" + ("" if alignment == "central" else " first")


def markdown_table(result: Dict[str, Any]) -> str:
    """The runs as a markdown table, under a line naming the machine and settings."""
    lines = [
        f"Windows on {describe_machine(result['machine'])}: `{result['model']}`, "
        f"{result['limit'] or 'all'} test sentences joined into documents, nlp.pipe batch {result['batch_size']}, "
        f"timed rounds in turn: {result['rounds']} (medians; speed relative to the first window).",
        "",
    ]
    columns = ["sentences per document", "window / stride", "alignment", "F1 vs gold", "encoder positions", "words/s", "speed"]
    rows = [
        [
            run["join"], f"{run['window']}/{run['stride']}", run["alignment"], f"{run['f1']:.2f}", number(run["positions"]),
            number(run["words_per_second"], missing="-"), "-" if run["speed"] is None else f"{run['speed']:.2f}x",
        ]
        for run in result["runs"]
    ]
    return "\n".join(lines + [reporting.markdown_table(columns, rows, align="rllrrrr")]) + "\n"


def run_windows(
    model: PathLike,
    test_path: PathLike,
    output_dir: PathLike,
    name: str,
    windows: Sequence[str],
    **options: Any,
) -> Dict[str, Any]:
    """Compare the windows (`compare_windows`), write `<name>.json` and `<name>.md` to
    `output_dir` and print the table."""
    pairs = [parse_window(window) for window in windows]
    output = Path(output_dir)
    check_writable(output / f"{name}.json", "the result")
    result = compare_windows(model, test_path, pairs, **options)
    markdown = markdown_table(result)
    write_report(output, name, result, markdown)
    print(markdown)
    return result
