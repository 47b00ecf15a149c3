"""Fine-tune with the Hugging Face Trainer recipe on WikiANN and score it with
seqeval; config values can be overridden, e.g. --training.learning_rate 5e-5."""
from pathlib import Path

import typer
from spacy.cli._util import parse_config_overrides

from ner_component.benchmarks.hf_recipe import load_config, run_recipe
from ner_component.cli import one_line_errors

app = typer.Typer(add_completion=False)


def main(
    ctx: typer.Context,
    config: Path = typer.Argument(..., exists=True, dir_okay=False, help="Recipe config, e.g. configs/hf_recipe.cfg"),
    output_dir: Path = typer.Argument(..., file_okay=False, help="Run folder: model/, results.json, dev_curve.jsonl"),
    gpu_id: int = typer.Option(-1, help="CUDA device, -1 for the CPU"),
) -> None:
    run_recipe(load_config(config, parse_config_overrides(ctx.args)), output_dir, gpu_id)


# `run(main)` as the other scripts, but the config overrides are extra arguments,
# which `typer.run` refuses.
app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(one_line_errors(main))

if __name__ == "__main__":
    app()
