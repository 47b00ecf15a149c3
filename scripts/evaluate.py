"""Evaluate the trained pipeline on the test split with `spacy evaluate`."""
from pathlib import Path

import typer

from ner_component.evaluation import spacy_evaluate


def main(
    model: Path = typer.Argument(..., exists=True, file_okay=False, help="Trained pipeline"),
    test: Path = typer.Argument(..., exists=True, dir_okay=False, help="Test .spacy file"),
    output: Path = typer.Argument(..., dir_okay=False, help="JSON file for the scores"),
    gpu_id: int = typer.Option(-1, help="CUDA device, -1 for the CPU"),
) -> None:
    spacy_evaluate(model, test, output, gpu_id)


if __name__ == "__main__":
    typer.run(main)
