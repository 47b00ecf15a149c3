"""Annotate a large JSONL or plain-text input with a pipeline, one JSON line per input line."""
from typing import Optional

import typer

from ner_component.annotate import DEFAULT_ZONE_LINES, run_cli


def main(
    model: str = typer.Argument(..., metavar="MODEL", help="Pipeline folder or installed package name"),
    input_path: str = typer.Argument(..., metavar="INPUT", help="JSONL or plain text (one doc per line), - for stdin"),
    output_path: str = typer.Argument(..., metavar="OUTPUT", help="JSONL output, - for stdout (a file is written atomically)"),
    input_format: str = typer.Option("auto", "--format", help="auto (by suffix: .jsonl/.ndjson/.json are JSONL), jsonl or text"),
    text_field: str = typer.Option("text", help="JSONL field with the text"),
    id_field: str = typer.Option("id", help="JSONL field with the id (default id: the line number)"),
    batch_size: Optional[int] = typer.Option(None, help="nlp.pipe batch size (default: the pipeline's; larger on a GPU)"),
    n_process: int = typer.Option(1, help="Processes for nlp.pipe (CPU only)"),
    gpu_id: int = typer.Option(-1, help="CUDA device (one process), -1 for the CPU"),
    on_error: str = typer.Option("raise", help="Malformed line: raise (stop, naming the line) or record (write {id, error})"),
    torch_threads: Optional[int] = typer.Option(None, help="PyTorch threads per process (default: cores / n_process)"),
    zone_lines: int = typer.Option(DEFAULT_ZONE_LINES, help="Lines per spaCy memory zone (frees the vocab entries of new words)"),
    progress: bool = typer.Option(True, help="Progress bar with docs/s on stderr"),
) -> None:
    run_cli(
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
    )


if __name__ == "__main__":
    typer.run(main)
