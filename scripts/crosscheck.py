"""Cross-check spaCy's scorer with seqeval (strict IOB2 and default modes) on the
evaluate step's saved predictions; exits 1 if they disagree."""
from pathlib import Path
from typing import Optional

import typer

from ner_component.cli import run
from ner_component.evaluation.evaluate import run_crosscheck


def main(
    predictions: Path = typer.Argument(..., exists=True, dir_okay=False, help="Predicted test docs (predictions.spacy)"),
    test: Path = typer.Argument(..., exists=True, dir_okay=False, help="Test .spacy file they were predicted from"),
    output_dir: Path = typer.Argument(..., file_okay=False, help="Folder for seqeval.json/.md/.png"),
    spacy_json: Optional[Path] = typer.Option(None, exists=True, dir_okay=False, help="The evaluate step's spacy.json, checked too"),
) -> None:
    run_crosscheck(predictions, test, output_dir, spacy_json)


if __name__ == "__main__":
    run(main)
