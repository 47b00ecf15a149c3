"""Cross-check spaCy's test figures with seqeval (strict IOB2 and default modes)."""
from pathlib import Path
from typing import Optional

import typer

from ner_component.evaluation import run_crosscheck


def main(
    model: Path = typer.Argument(..., exists=True, file_okay=False, help="Trained pipeline"),
    test: Path = typer.Argument(..., exists=True, dir_okay=False, help="Test .spacy file"),
    output_dir: Path = typer.Argument(..., file_okay=False, help="Folder for seqeval.json/.md/.png"),
    spacy_json: Optional[Path] = typer.Option(None, exists=True, dir_okay=False, help="spacy evaluate's JSON, checked too"),
    gpu_id: int = typer.Option(-1, help="CUDA device, -1 for the CPU"),
    batch_size: int = typer.Option(128, help="nlp.pipe batch size"),
) -> None:
    run_crosscheck(model, test, output_dir, spacy_json, gpu_id, batch_size)


if __name__ == "__main__":
    typer.run(main)
