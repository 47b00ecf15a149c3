"""Accuracy per training minute: the Hugging Face Trainer recipe and our spaCy
pipeline under the same wall-clock budget, side by side."""
from pathlib import Path
from typing import Optional

import typer

from ner_component.benchmarks.accuracy import run_benchmark
from ner_component.cli import run


def main(
    lang: str = typer.Argument(..., help="WikiANN language code"),
    corpus: Path = typer.Option(..., exists=True, file_okay=False, help="spaCy corpus folder (train/dev/test.spacy)"),
    spacy_config: Path = typer.Option(Path("configs/auto"), dir_okay=False, help="Our pipeline's training config; configs/auto: by language"),
    hf_config: Path = typer.Option(Path("configs/hf_recipe.cfg"), exists=True, dir_okay=False, help="The HF recipe's config"),
    transformer: str = typer.Option("config", help="Backbone of both sides: offline alias, local folder or hub id; 'config': the spaCy config's paths.transformer"),
    data: str = typer.Option("auto", help="WikiANN source of the HF side: auto, hub or a path"),
    budget_minutes: float = typer.Option(10.0, help="Training minutes per side, evaluation excluded (0: no budget)"),
    sides: str = typer.Option("hf,spacy", help="Sides to run (hf, spacy, or none to redo the table); a side not run is read from its last results.json"),
    training_dir: Path = typer.Option(Path("training/benchmark_accuracy"), file_okay=False, help="Runs go to <dir>/<lang>/{hf,spacy}"),
    metrics_dir: Path = typer.Option(Path("metrics/benchmark_accuracy"), file_okay=False, help="Results go to <dir>/<lang>"),
    spacy_max_steps: Optional[int] = typer.Option(None, help="Override the spaCy config's training.max_steps"),
    gpu_id: int = typer.Option(-1, help="CUDA device, -1 for the CPU"),
) -> None:
    run_benchmark(
        lang,
        corpus,
        spacy_config,
        hf_config,
        training_dir / lang,
        metrics_dir / lang,
        None if transformer == "config" else transformer,
        budget_minutes * 60 if budget_minutes > 0 else None,
        data=data,
        sides=[side.strip() for side in sides.split(",") if side.strip() not in ("", "none")],
        gpu_id=gpu_id,
        spacy_max_steps=spacy_max_steps,
    )


if __name__ == "__main__":
    run(main)
