"""How the project writes its reports: Markdown tables and PNG figures.

Every report (the seqeval cross-check, the model card, the accuracy, throughput,
agreement and ceiling benchmarks) renders its tables with `markdown_table`, its
precision/recall/F1 figures with `scores_table` and `per_type_table`, and saves its
figures with `figure` (matplotlib's Agg backend, written atomically), so a change of
layout is made once. Reports are read by people and compared by tests as text: the
same result renders to the same bytes.
"""
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple

from ner_component.util import PathLike, atomic_path, write_json_atomic, write_text_atomic

# Column alignments, as GitHub-flavoured Markdown writes them under the header.
ALIGNMENTS = {"l": "---", "r": "---:", "c": ":---:"}
# The header and keys of the precision/recall/F1 tables (seqeval's keys).
PRF_KEYS: Tuple[str, ...] = ("precision", "recall", "f1")
PRF_HEADER: Tuple[str, ...] = ("precision", "recall", "F1")
DPI = 120


def markdown_table(header: Sequence[Any], rows: Iterable[Sequence[Any]], align: Optional[str] = None) -> str:
    """A Markdown table, one line per row, without a final newline.

    header (Sequence[Any]): The column names ("" for an empty one).
    rows (Iterable[Sequence[Any]]): The cells of each row, as many as the header's;
        each is written with `str` ("" for an empty cell).
    align (Optional[str]): One letter per column: "l" (left), "r" (right) or "c";
        None for the first column left and the others right (a name, then figures).
    RETURNS (str): The table.
    """
    align = align if align is not None else "l" + "r" * (len(header) - 1)
    if len(align) != len(header) or any(a not in ALIGNMENTS for a in align):
        raise ValueError(f"align ({align!r}) must give one of {', '.join(ALIGNMENTS)} for each of {len(header)} columns")
    lines = [_line(header), "|" + "|".join(ALIGNMENTS[a] for a in align) + "|"]
    for row in rows:
        if len(row) != len(header):
            raise ValueError(f"a row has {len(row)} cells, the header {len(header)}: {list(row)!r}")
        lines.append(_line(row))
    return "\n".join(lines)


def _line(cells: Sequence[Any]) -> str:
    # an empty cell is one space, as in "| | |"
    return "|" + "|".join(f" {cell} " if str(cell) else " " for cell in cells) + "|"


def percent(value: Optional[float], digits: int = 2, missing: str = "") -> str:
    """A share (0.8123) as a percentage without the sign ("81.23"); `missing` for None."""
    return missing if value is None else f"{100 * value:.{digits}f}"


def number(value: Optional[float], digits: int = 0, missing: str = "") -> str:
    """A figure with thousands separators ("12,345"); `missing` for None."""
    return missing if value is None else f"{value:,.{digits}f}"


def prf_cells(scores: Mapping[str, Any], keys: Sequence[str] = PRF_KEYS) -> List[str]:
    """Precision, recall and F1 of a scores dict as percentages."""
    return [percent(scores.get(key)) for key in keys]


def scores_table(scorers: Sequence[Tuple[str, Mapping[str, Any]]]) -> str:
    """Overall precision, recall, F1 and token accuracy, one row per scorer.

    scorers (Sequence[Tuple[str, Mapping[str, Any]]]): The scorer's name and its
        figures under seqeval's keys (precision, recall, f1 and, where it has one,
        accuracy).
    RETURNS (str): The table.
    """
    rows = [[name, *prf_cells(scores), percent(scores.get("accuracy"))] for name, scores in scorers]
    return markdown_table(["scorer", *PRF_HEADER, "token accuracy"], rows)


def spacy_prf(scores: Mapping[str, Any]) -> Dict[str, Any]:
    """spaCy's entity scores (ents_p, ents_r, ents_f) under seqeval's keys."""
    return {"precision": scores["ents_p"], "recall": scores["ents_r"], "f1": scores["ents_f"]}


def per_type_table(per_type: Mapping[str, Mapping[str, Any]]) -> str:
    """Precision, recall, F1 and support per entity type (seqeval's `per_type`).

    per_type (Mapping[str, Mapping[str, Any]]): {label: {precision, recall, f1, support}}.
    RETURNS (str): The table, in the mapping's order.
    """
    rows = [[label, *prf_cells(row), row["support"]] for label, row in per_type.items()]
    return markdown_table(["type", *PRF_HEADER, "support"], rows)


def pyplot() -> Any:
    """`matplotlib.pyplot` on the Agg backend: reports are files, and a machine
    without a display (or a worker process) must draw them too."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


@contextmanager
def figure(path: PathLike, dpi: int = DPI, **subplots: Any) -> Iterator[Tuple[Any, Any]]:
    """A matplotlib figure to draw on, laid out tightly and saved as PNG when the
    block ends (atomically: a reader finds the old file or the new one), and closed
    either way.

    path (PathLike): The PNG to write.
    dpi (int): Its resolution.
    **subplots: What `plt.subplots` takes (figsize, nrows, squeeze, ...).
    YIELDS (Tuple[Figure, Any]): The figure and its axes.
    """
    plt = pyplot()
    fig, axes = plt.subplots(**subplots)
    try:
        yield fig, axes
        fig.tight_layout()
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=dpi)
    finally:
        plt.close(fig)


def write_report(
    output_dir: PathLike,
    name: str,
    result: Mapping[str, Any],
    markdown: str,
    plot: Optional[Callable[[Any, Path], None]] = None,
    png_name: Optional[str] = None,
) -> Path:
    """Write a result as `<name>.json`, its Markdown as `<name>.md` and, with a plot,
    its figure as `<name>.png` (or `png_name`), each atomically.

    output_dir (PathLike): The folder (created if missing).
    name (str): The files' stem, e.g. "en".
    result (Mapping[str, Any]): What the JSON holds.
    markdown (str): The Markdown report.
    plot (Optional[Callable[[Any, Path], None]]): Draws `result` into a PNG path.
    png_name (Optional[str]): The figure's file name instead of `<name>.png`.
    RETURNS (Path): The JSON file.
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    json_path = output_dir / f"{name}.json"
    write_json_atomic(json_path, result)
    write_text_atomic(output_dir / f"{name}.md", markdown)
    if plot is not None:
        plot(result, output_dir / (png_name or f"{name}.png"))
    return json_path

