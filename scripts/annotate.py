"""Annotate a large JSONL or plain-text input with a pipeline, one JSON line per input line."""
import sys
from typing import Optional

import typer

from ner_component import cli
from ner_component.annotate.local import (
    DEFAULT_ZONE_LINES,
    annotate_until_stopped,
    summary_line,
)


def main(
    model: str = typer.Argument(..., metavar="MODEL", help="Pipeline folder or installed package name"),
    input_path: str = typer.Argument(..., metavar="INPUT", help="JSONL or plain text (one doc per line), - for stdin"),
    output_path: str = typer.Argument(..., metavar="OUTPUT", help="JSONL output, - for stdout (a file is written atomically)"),
    input_format: str = cli.INPUT_FORMAT,
    text_field: str = cli.TEXT_FIELD,
    id_field: str = cli.ID_FIELD,
    batch_size: Optional[int] = typer.Option(None, help="nlp.pipe batch size (default: the pipeline's; larger on a GPU)"),
    n_process: int = typer.Option(1, help="Processes for nlp.pipe (CPU only)"),
    gpu_id: int = typer.Option(-1, help="CUDA device (one process), -1 for the CPU"),
    on_error: str = cli.ON_ERROR,
    torch_threads: Optional[int] = typer.Option(None, help="PyTorch threads per process (default: cores / n_process)"),
    zone_lines: int = typer.Option(DEFAULT_ZONE_LINES, help="Lines per spaCy memory zone (frees the vocab entries of new words)"),
    progress: bool = cli.PROGRESS,
    cpu_dtype: Optional[str] = cli.CPU_DTYPE,
    schema: str = cli.SCHEMA,
) -> None:
    summary = annotate_until_stopped(
        model=model,
        input_path=input_path,
        output_path=output_path,
        fmt=input_format,
        text_field=text_field,
        id_field=id_field,
        batch_size=batch_size,
        n_process=n_process,
        gpu_id=gpu_id,
        on_error=on_error,
        torch_threads=torch_threads,
        progress=progress,
        zone_lines=zone_lines,
        cpu_dtype=cpu_dtype,
        schema=schema,
    )
    print(summary_line(summary), file=sys.stderr)


if __name__ == "__main__":
    cli.run(main)
