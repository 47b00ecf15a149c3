"""How far a trained pipeline's predictions move with the nlp.pipe batch size and the
CPU dtype (float32, bfloat16): entity disagreement between the runs."""
from pathlib import Path
from typing import Optional

import typer

from ner_component.benchmarks.agreement import (
    DEFAULT_BATCH_SIZES,
    DEFAULT_DTYPES,
    run_agreement,
)
from ner_component.cli import int_list, run


def main(
    model: Path = typer.Argument(..., exists=True, file_okay=False, help="Trained pipeline"),
    test: Path = typer.Argument(..., exists=True, dir_okay=False, help="Test .spacy corpus"),
    output_dir: Path = typer.Argument(..., file_okay=False, help="Folder for <name>.json/.md"),
    name: str = typer.Option("en", help="File name of the results"),
    batch_sizes: str = typer.Option(",".join(map(str, DEFAULT_BATCH_SIZES)), help="nlp.pipe batch sizes; the first is the reference"),
    dtypes: str = typer.Option(",".join(DEFAULT_DTYPES), help="CPU dtypes to compare: float32, bfloat16"),
    limit: Optional[int] = typer.Option(None, min=1, help="Use the first N test sentences (default: all)"),
) -> None:
    run_agreement(model, test, output_dir, name, int_list(batch_sizes, "--batch-sizes"), [d.strip() for d in dtypes.split(",") if d.strip()], limit)


if __name__ == "__main__":
    run(main)
