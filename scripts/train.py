"""Train the NER pipeline from a config (spaCy's training loop)."""
from pathlib import Path
from typing import Optional

import typer

from ner_component.cli import fail, run
from ner_component.training.train import train

FROM_CONFIG = "config"


def main(
    config: Path = typer.Argument(..., dir_okay=False, help="Training config; configs/auto: the English one for en, the multilingual one otherwise"),
    output_dir: Path = typer.Argument(..., file_okay=False, help="Output folder"),
    corpus: Path = typer.Option(..., exists=True, file_okay=False, help="Folder with train.spacy and dev.spacy"),
    lang: str = typer.Option(..., help="WikiANN language code"),
    transformer: str = typer.Option(FROM_CONFIG, help="Offline alias, local folder or hub id; 'config': the config's paths.transformer"),
    gpu_id: int = typer.Option(-1, help="CUDA device, -1 for the CPU"),
    max_steps: str = typer.Option(FROM_CONFIG, help="Step budget (training.max_steps); 'config': the config's"),
    logger: str = typer.Option("console", help="console, or wandb: W&B after the console (configs/wandb.cfg)"),
    curve: Optional[Path] = typer.Option(None, dir_okay=False, help="PNG of dev F1 and loss against steps and minutes"),
    wandb_config: Optional[Path] = typer.Option(None, exists=True, dir_okay=False, help="W&B logger config (default configs/wandb.cfg)"),
) -> None:
    steps = None
    if max_steps != FROM_CONFIG:
        try:
            steps = int(max_steps)
        except ValueError:
            fail(f"--max-steps: expected a whole number of steps or '{FROM_CONFIG}', found '{max_steps}'")
        if steps < 1:
            # spaCy reads 0 as "no limit" and a negative budget trains nothing
            fail(f"--max-steps: expected at least 1 step, found {steps}")
    train(
        config, output_dir, corpus, lang, None if transformer == FROM_CONFIG else transformer, gpu_id, steps,
        logger=logger, curve_path=curve, wandb_config=wandb_config,
    )


if __name__ == "__main__":
    run(main)
