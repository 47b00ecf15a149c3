"""The forward and arithmetic ceilings of inference speed on this machine: how fast
the encoder alone could annotate the throughput benchmark's texts (see
ner_component.benchmarks.ceiling)."""
from pathlib import Path
from typing import Optional

import typer

from ner_component.benchmarks.ceiling import DEFAULT_ROUNDS, run_ceiling
from ner_component.benchmarks.throughput import DEFAULT_JOIN, SETTINGS
from ner_component.cli import run
from ner_component.runtime.transformer import DEFAULT_PREDICT_TOKEN_BUDGET


def main(
    hf_model: Path = typer.Argument(..., exists=True, file_okay=False, help="Hugging Face folder on the backbone (its encoder is timed)"),
    test: Path = typer.Argument(..., exists=True, dir_okay=False, help="Test .spacy corpus (its sentences are the texts)"),
    output_dir: Path = typer.Argument(..., file_okay=False, help="Folder for <name>.json/.md/.png"),
    name: str = typer.Option("en", help="File name of the results"),
    throughput: Optional[Path] = typer.Option(None, dir_okay=False, help="A throughput result (metrics/throughput/<name>.json) on the same texts: its pipelines are compared with"),
    limit: Optional[int] = typer.Option(None, help="Use the first N test sentences (default: all); as in the throughput run"),
    join: int = typer.Option(DEFAULT_JOIN, help="Sentences per document in the 'documents' setting; as in the throughput run"),
    settings: str = typer.Option(",".join(SETTINGS), help="Which settings to run: sentences, documents"),
    dtype: str = typer.Option("float32", help="float32 or bfloat16 (CPU autocast)"),
    token_budget: int = typer.Option(DEFAULT_PREDICT_TOKEN_BUDGET, help="Padded positions per forward pass"),
    rounds: int = typer.Option(DEFAULT_ROUNDS, help="Timed rounds, each a pass of the encoder and of each pipeline in turn; medians count"),
    interleave: bool = typer.Option(True, help="Time the pipelines the --throughput result names in this process, in turn with the encoder (--no-interleave: compare with its runs)"),
    torch_threads: Optional[int] = typer.Option(None, help="PyTorch threads (default: CPU cores)"),
) -> None:
    run_ceiling(
        hf_model,
        test,
        output_dir,
        name,
        limit=limit,
        join=join,
        settings=[s.strip() for s in settings.split(",") if s.strip()],
        dtype=dtype,
        token_budget=token_budget,
        rounds=rounds,
        interleave=interleave,
        torch_threads=torch_threads,
        throughput=throughput,
    )


if __name__ == "__main__":
    run(main)
