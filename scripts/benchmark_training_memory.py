"""Resident memory and step time of training steps, with the config's trimming of
freed memory, another interval or none."""
from pathlib import Path
from typing import Optional

import typer

from ner_component.benchmarks.training_memory import run_training_memory
from ner_component.cli import run


def main(
    config: Path = typer.Argument(..., help="Training config, or configs/auto"),
    corpus: Path = typer.Argument(..., exists=True, file_okay=False, help="Folder with train.spacy and dev.spacy"),
    output: Path = typer.Argument(..., dir_okay=False, help="JSON file of the figures"),
    lang: str = typer.Option("en", help="WikiANN language code"),
    transformer: Optional[str] = typer.Option(None, help="Backbone: an offline alias, a folder or a hub id (default: the config's)"),
    steps: int = typer.Option(120, min=1, help="Training steps"),
    every: int = typer.Option(20, min=1, help="Report the resident memory every N steps"),
    trim_every: Optional[int] = typer.Option(
        None, min=0, help="Trim freed memory every N steps; 0: never; default: as the config's [training.before_update]"
    ),
) -> None:
    run_training_memory(config, corpus, lang, output, steps, every, trim_every, transformer=transformer)


if __name__ == "__main__":
    run(main)
