"""How the transformer's windows trade speed for accuracy on long documents: the test
sentences joined into documents, one run per window, in turn (see
ner_component.benchmarks.windows)."""
from pathlib import Path

import typer

from ner_component.benchmarks.ceiling import DEFAULT_ROUNDS
from ner_component.benchmarks.windows import DEFAULT_BATCH_SIZE, DEFAULT_JOINS, DEFAULT_WINDOWS, run_windows
from ner_component.cli import int_list, run


def main(
    model: str = typer.Argument(..., help="Trained pipeline: folder or package name"),
    test: Path = typer.Argument(..., exists=True, dir_okay=False, help="Test .spacy corpus (its sentences are joined)"),
    output_dir: Path = typer.Argument(..., file_okay=False, help="Folder for <name>.json/.md"),
    name: str = typer.Option("en", help="File name of the results"),
    windows: str = typer.Option(",".join(DEFAULT_WINDOWS), help="Comma-separated <window>/<stride> in spaCy tokens; speeds are relative to the first"),
    joins: str = typer.Option(",".join(map(str, DEFAULT_JOINS)), help="Sentences per document, comma-separated"),
    limit: int = typer.Option(None, help="Use the first N test sentences (default: all)"),
    rounds: int = typer.Option(DEFAULT_ROUNDS, help="Timed rounds in turn (0: F1 and positions only)"),
    batch_size: int = typer.Option(DEFAULT_BATCH_SIZE, help="nlp.pipe batch size"),
    first_window: bool = typer.Option(False, help="Also run each window with spacy-transformers' alignment (a token's first window)"),
) -> None:
    run_windows(
        model,
        test,
        output_dir,
        name,
        [w.strip() for w in windows.split(",") if w.strip()],
        joins=int_list(joins, "--joins"),
        limit=limit,
        rounds=rounds,
        batch_size=batch_size,
        first_window=first_window,
    )


if __name__ == "__main__":
    run(main)
