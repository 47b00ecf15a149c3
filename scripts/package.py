"""Build a self-contained model wheel (spacy package --code) with its model card."""
from pathlib import Path
from typing import Optional

import typer

from ner_component.cli import run
from ner_component.sharing.package import build_package
from ner_component.training.tracking import log_test_figures
from ner_component.util import read_json


def main(
    model: Path = typer.Argument(..., exists=True, file_okay=False, help="Trained pipeline"),
    output_dir: Path = typer.Argument(..., file_okay=False, help="Folder for the package"),
    lang: str = typer.Option(..., help="WikiANN language code"),
    name: str = typer.Option("wikiann_trf", help="Package name (the language is prepended)"),
    version: str = typer.Option("0.1.0", help="Package version"),
    seqeval_json: Path = typer.Option(..., exists=True, dir_okay=False, help="Cross-check result"),
    test: Path = typer.Option(..., exists=True, dir_okay=False, help="Test .spacy file (widget examples)"),
    license: str = typer.Option("MIT", help="License of the model"),
    curve: Optional[Path] = typer.Option(None, dir_okay=False, help="Training curve PNG for the card"),
) -> None:
    build_package(model, output_dir, lang, name, version, seqeval_json, test, license, curve)
    # the end of `run all`: a run tracked in W&B gets the test-split figures too
    train_info = model.parent / "train_info.json"
    if train_info.exists():
        log_test_figures(read_json(train_info), read_json(seqeval_json))


if __name__ == "__main__":
    run(main)
