"""Predict the test split once (kept as predictions.spacy) and score it with spaCy's
scorer into spacy.json, in `spacy evaluate`'s format."""
from pathlib import Path
from typing import Optional

import typer

from ner_component.cli import run
from ner_component.evaluation.evaluate import evaluate_test


def main(
    model: Path = typer.Argument(..., exists=True, file_okay=False, help="Trained pipeline"),
    test: Path = typer.Argument(..., exists=True, dir_okay=False, help="Test .spacy file"),
    output_dir: Path = typer.Argument(..., file_okay=False, help="Folder for predictions.spacy and spacy.json"),
    gpu_id: int = typer.Option(-1, help="CUDA device, -1 for the CPU"),
    batch_size: Optional[int] = typer.Option(None, min=1, help="nlp.pipe batch size (default: the pipeline's nlp.batch_size)"),
) -> None:
    evaluate_test(model, test, output_dir, gpu_id, batch_size)


if __name__ == "__main__":
    run(main)
