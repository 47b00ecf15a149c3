"""Score the pipeline on the test split given as raw text (what users send):
entities by character span and label, into raw_text.json."""
from pathlib import Path
from typing import Optional

import typer
from wasabi import msg

from ner_component.cli import run
from ner_component.evaluation.raw_text import RAW_TEXT_SCORES, evaluate_raw_text


def main(
    model: Path = typer.Argument(..., exists=True, file_okay=False, help="Trained pipeline"),
    test: Path = typer.Argument(..., exists=True, dir_okay=False, help="Test .spacy file"),
    output_dir: Path = typer.Argument(..., file_okay=False, help=f"Folder for {RAW_TEXT_SCORES}"),
    gpu_id: int = typer.Option(-1, help="CUDA device, -1 for the CPU"),
    batch_size: Optional[int] = typer.Option(None, min=1, help="nlp.pipe batch size (default: the pipeline's nlp.batch_size)"),
    limit: Optional[int] = typer.Option(None, min=1, help="Only the first N test sentences"),
) -> None:
    scores = evaluate_raw_text(model, test, output_dir, gpu_id, batch_size, limit)
    per_type = ", ".join(f"{label} {s['f'] * 100:.2f}" for label, s in scores["ents_per_type"].items())
    msg.good(
        f"Raw text ({scores['n_docs']} sentences): P {scores['ents_p'] * 100:.2f} R {scores['ents_r'] * 100:.2f} "
        f"F {scores['ents_f'] * 100:.2f} ({per_type}) -> {output_dir / RAW_TEXT_SCORES}"
    )


if __name__ == "__main__":
    run(main)
