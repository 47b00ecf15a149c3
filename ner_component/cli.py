"""Command-line options that several scripts share, declared once."""
import typer

INPUT_FORMAT = typer.Option("auto", "--format", help="auto (by suffix: .jsonl/.ndjson/.json are JSONL), jsonl or text")
TEXT_FIELD = typer.Option("text", help="JSONL field with the text")
ID_FIELD = typer.Option("id", help="JSONL field with the id (default id: the line number)")
ON_ERROR = typer.Option("raise", help="Malformed line: raise (stop, naming the line) or record (write {id, error})")
PROGRESS = typer.Option(True, help="Progress bar with docs/s on stderr")
CPU_DTYPE = typer.Option(
    None,
    help="Transformer prediction dtype on CPU: auto (bfloat16 where the CPU has native bfloat16), "
    "float32 or bfloat16 (default: the pipeline's config)",
)
