"""Annotate a large JSONL or plain-text input on a Ray cluster (Ray Data), writing
the same JSON lines, in the same order, as scripts/annotate.py."""
import sys
from typing import Optional

import typer

from ner_component import cli
from ner_component.annotate.distributed import DEFAULT_LINES_PER_CHUNK, annotate_ray
from ner_component.annotate.local import summary_line


def main(
    model: str = typer.Argument(..., metavar="MODEL", help="Pipeline: a package installed on the workers or a folder they can read"),
    input_path: str = typer.Argument(..., metavar="INPUT", help="JSONL or plain text: a path the workers can read, or an s3:// / gs:// URI"),
    output_path: str = typer.Argument(..., metavar="OUTPUT", help="JSONL output on the driver, - for stdout (a file is written atomically)"),
    address: Optional[str] = typer.Option(None, help="Ray cluster, e.g. ray://head:10001 or auto (default: $RAY_ADDRESS, else a local Ray)"),
    concurrency: int = typer.Option(2, help="Annotation workers, each loading the pipeline once"),
    num_cpus: float = typer.Option(1.0, help="CPUs per worker (its PyTorch threads)"),
    gpu: bool = typer.Option(False, "--gpu", help="One GPU per worker (num_gpus=1)"),
    batch_size: int = typer.Option(256, help="Lines per batch handed to a worker"),
    spacy_batch_size: Optional[int] = typer.Option(None, help="nlp.pipe batch size inside a worker (default: the pipeline's)"),
    input_format: str = cli.INPUT_FORMAT,
    text_field: str = cli.TEXT_FIELD,
    id_field: str = cli.ID_FIELD,
    on_error: str = cli.ON_ERROR,
    lines_per_chunk: int = typer.Option(DEFAULT_LINES_PER_CHUNK, help="Lines per read task"),
    progress: bool = cli.PROGRESS,
    cpu_dtype: Optional[str] = cli.CPU_DTYPE,
    schema: str = cli.SCHEMA,
) -> None:
    summary = annotate_ray(
        model=model,
        input_path=input_path,
        output_path=output_path,
        fmt=input_format,
        text_field=text_field,
        id_field=id_field,
        concurrency=concurrency,
        batch_size=batch_size,
        spacy_batch_size=spacy_batch_size,
        use_gpu=gpu,
        num_cpus=num_cpus,
        on_error=on_error,
        address=address,
        lines_per_chunk=lines_per_chunk,
        progress=progress,
        cpu_dtype=cpu_dtype,
        schema=schema,
    )
    print(summary_line(summary), file=sys.stderr)


if __name__ == "__main__":
    cli.run(main)
