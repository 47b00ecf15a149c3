"""Resident memory of annotate over a long stream of distinct lines, every N lines."""
from pathlib import Path

import typer

from ner_component.benchmarks.annotate_memory import run_annotate_memory
from ner_component.cli import run


def main(
    model: Path = typer.Argument(..., exists=True, file_okay=False, help="Trained pipeline"),
    output: Path = typer.Argument(..., dir_okay=False, help="JSON file of the figures"),
    lines: int = typer.Option(200_000, min=1, help="Distinct lines to annotate"),
    every: int = typer.Option(10_000, min=1, help="Report the resident memory every N lines"),
    cpu_dtype: str = typer.Option("auto", help="CPU prediction dtype: auto, float32, bfloat16"),
) -> None:
    run_annotate_memory(model, output, lines, every, cpu_dtype)


if __name__ == "__main__":
    run(main)
