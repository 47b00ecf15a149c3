"""Benchmark inference: the spaCy pipeline (batch sizes x processes) against the
Hugging Face token-classification pipeline, words/s, peak memory and agreement."""
from pathlib import Path
from typing import Optional

import typer

from ner_component.benchmarks.throughput import (
    DEFAULT_CPU_DTYPES,
    DEFAULT_HF_DTYPES,
    DEFAULT_JOIN,
    DEFAULT_SPACY_BATCH_SIZES,
    DEFAULT_TOKEN_BUDGETS,
    SETTINGS,
    run_benchmark,
)
from ner_component.cli import int_list, run


def main(
    model: str = typer.Argument(..., metavar="MODEL", help="spaCy pipeline: folder or installed package name"),
    test: Path = typer.Argument(..., exists=True, dir_okay=False, help="Test .spacy corpus (its sentences are the texts)"),
    output_dir: Path = typer.Argument(..., file_okay=False, help="Folder for <name>.json/.md/.png"),
    hf_model: Path = typer.Option(..., exists=True, file_okay=False, help="Hugging Face token-classification folder on the same backbone"),
    name: str = typer.Option("en", help="File name of the results"),
    batch_sizes: str = typer.Option(",".join(map(str, DEFAULT_SPACY_BATCH_SIZES)), help="spaCy nlp.pipe batch sizes to sweep"),
    n_process: str = typer.Option("1,2", help="spaCy process counts to sweep"),
    hf_batch_sizes: str = typer.Option("1,32", help="Hugging Face pipeline batch sizes"),
    torch_threads: Optional[int] = typer.Option(None, help="PyTorch threads in all, shared by a run's processes (default: CPU cores)"),
    limit: Optional[int] = typer.Option(None, help="Use the first N test sentences (default: all)"),
    join: int = typer.Option(DEFAULT_JOIN, help="Sentences per document in the 'documents' setting"),
    settings: str = typer.Option(",".join(SETTINGS), help="Which settings to run: sentences, documents"),
    cpu_dtypes: str = typer.Option(
        ",".join(DEFAULT_CPU_DTYPES), help="spaCy CPU prediction dtypes to sweep: auto, float32, bfloat16, config (the pipeline's)"
    ),
    hf_dtypes: str = typer.Option(",".join(DEFAULT_HF_DTYPES), help="Hugging Face model dtypes to sweep: float32, bfloat16"),
    token_budgets: str = typer.Option(
        ",".join("config" if b is None else str(b) for b in DEFAULT_TOKEN_BUDGETS),
        help="spaCy prediction chunk sizes (predict_token_budget) to sweep: config (the pipeline's), 0 (one padded pass per batch), N",
    ),
) -> None:
    run_benchmark(
        model,
        test,
        hf_model,
        output_dir,
        name,
        batch_sizes=int_list(batch_sizes, "--batch-sizes"),
        n_processes=int_list(n_process, "--n-process"),
        hf_batch_sizes=int_list(hf_batch_sizes, "--hf-batch-sizes"),
        torch_threads=torch_threads,
        limit=limit,
        join=join,
        settings=[s.strip() for s in settings.split(",") if s.strip()],
        cpu_dtypes=[None if d.strip() == "config" else d.strip() for d in cpu_dtypes.split(",") if d.strip()],
        hf_dtypes=[d.strip() for d in hf_dtypes.split(",") if d.strip()],
        token_budgets=[None if b.strip() == "config" else int_list(b, "--token-budgets")[0] for b in token_budgets.split(",") if b.strip()],
    )


if __name__ == "__main__":
    run(main)
