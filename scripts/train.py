"""Train the NER pipeline from a config (spaCy's training loop)."""
from pathlib import Path
from typing import Optional

import typer

from ner_component.training import train


def main(
    config: Path = typer.Argument(..., exists=True, dir_okay=False, help="Training config"),
    output_dir: Path = typer.Argument(..., file_okay=False, help="Output folder"),
    corpus: Path = typer.Option(..., exists=True, file_okay=False, help="Folder with train.spacy and dev.spacy"),
    lang: str = typer.Option(..., help="WikiANN language code"),
    transformer: Optional[str] = typer.Option(None, help="Offline alias, local folder or hub id"),
    gpu_id: int = typer.Option(-1, help="CUDA device, -1 for the CPU"),
    max_steps: Optional[int] = typer.Option(None, help="Step budget (training.max_steps)"),
) -> None:
    train(config, output_dir, corpus, lang, transformer, gpu_id, max_steps)


if __name__ == "__main__":
    typer.run(main)
