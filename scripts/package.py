"""Build an installable model package (wheel) with a model card."""
from pathlib import Path

import typer

from ner_component.packaging import build_package


def main(
    model: Path = typer.Argument(..., exists=True, file_okay=False, help="Trained pipeline"),
    output_dir: Path = typer.Argument(..., file_okay=False, help="Folder for the package"),
    lang: str = typer.Option(..., help="WikiANN language code"),
    name: str = typer.Option("wikiann_trf", help="Package name (the language is prepended)"),
    version: str = typer.Option("0.1.0", help="Package version"),
    seqeval_json: Path = typer.Option(..., exists=True, dir_okay=False, help="Cross-check result"),
    test: Path = typer.Option(..., exists=True, dir_okay=False, help="Test .spacy file (widget examples)"),
    license: str = typer.Option("MIT", help="License of the model"),
) -> None:
    build_package(model, output_dir, lang, name, version, seqeval_json, test, license)


if __name__ == "__main__":
    typer.run(main)
