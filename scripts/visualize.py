"""displaCy's entity view of the test predictions (gold and predicted, confidences,
mistakes) as one HTML page."""
from pathlib import Path

import typer

from ner_component.cli import run
from ner_component.evaluation.visualize import DEFAULT_LIMIT, render


def main(
    predictions: Path = typer.Argument(..., exists=True, dir_okay=False, help="Predicted test docs (predictions.spacy)"),
    test: Path = typer.Argument(..., exists=True, dir_okay=False, help="Test .spacy file they were predicted from"),
    output: Path = typer.Argument(..., dir_okay=False, help="HTML file to write"),
    limit: int = typer.Option(DEFAULT_LIMIT, min=1, help="How many test sentences"),
) -> None:
    counts = render(predictions, test, output, limit)
    print(f"\u2714 {output}: {counts['sentences']} sentences, {counts['wrong']} wrong and {counts['missed']} missed entities")


if __name__ == "__main__":
    run(main)
