"""oneDNN kernel cache capacity: training memory against bfloat16 speed, one fresh
process per capacity."""
from pathlib import Path
from typing import Optional

import typer

from ner_component.benchmarks.onednn_cache import (
    DEFAULT_CAPACITIES,
    PHASES,
    run_benchmark,
)
from ner_component.cli import int_list, run


def main(
    model: Path = typer.Argument(..., exists=True, file_okay=False, help="Trained pipeline"),
    corpus: Path = typer.Argument(..., exists=True, file_okay=False, help="Folder with train.spacy and dev.spacy"),
    output_dir: Path = typer.Argument(..., file_okay=False, help="Folder for <name>.json/.md"),
    name: str = typer.Option("en", help="File name of the results"),
    capacities: str = typer.Option(",".join(map(str, DEFAULT_CAPACITIES)), help="Cache capacities to compare"),
    phases: str = typer.Option(",".join(PHASES), help="Which phases: pipe, train, train_bf16"),
    pipe_docs: int = typer.Option(2000, min=1, help="Dev sentences for nlp.pipe"),
    train_steps: int = typer.Option(150, min=1, help="spaCy training steps"),
    bf16_steps: int = typer.Option(40, min=1, help="bfloat16 autocast steps of the HF token classifier"),
    backbone: Optional[str] = typer.Option(None, help="Backbone folder for train_bf16 (default: the pipeline's transformer)"),
) -> None:
    caps = int_list(capacities, "--capacities")
    if backbone is None:
        from ner_component.backbones import config_transformer, resolve_transformer

        name_in_config = config_transformer(model / "config.cfg")
        backbone = resolve_transformer(name_in_config) if name_in_config else None
    run_benchmark(model, corpus, output_dir, name, capacities=caps, phases=[p.strip() for p in phases.split(",")],
                  pipe_docs=pipe_docs, train_steps=train_steps, bf16_steps=bf16_steps, backbone=backbone)


if __name__ == "__main__":
    run(main)
