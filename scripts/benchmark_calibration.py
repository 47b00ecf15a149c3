"""How well `Span._.confidence` reads as a probability: precision against confidence
on the predictions `evaluate` wrote (reliability diagram and expected calibration error)."""
from pathlib import Path

import typer

from ner_component.benchmarks.calibration import DEFAULT_BINS, run_calibration
from ner_component.cli import run


def main(
    predictions: Path = typer.Argument(..., exists=True, dir_okay=False, help="predictions.spacy of evaluate"),
    gold: Path = typer.Argument(..., exists=True, dir_okay=False, help="The test .spacy corpus it predicted"),
    output_dir: Path = typer.Argument(..., file_okay=False, help="Folder for <name>.json/.md/.png"),
    name: str = typer.Option("en", help="File name of the results"),
    bins: int = typer.Option(DEFAULT_BINS, min=1, help="Equal-width confidence bins"),
) -> None:
    run_calibration(predictions, gold, output_dir, name, bins)


if __name__ == "__main__":
    run(main)
