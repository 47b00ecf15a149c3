"""What the scripts share: the one-line exit and the options several declare.

Library code raises `NerComponentError`; a script's `main` is run with `run(main)`,
which turns that exception into one line on stderr and exit status 1, a signal that
stopped the work (`Interrupted`) into one line and 128 + the signal number, and a
closed stdout into a quiet exit. This module is the only place that exits.
"""
import functools
import multiprocessing
import os
import signal
import sys
from contextlib import suppress
from typing import Any, Callable, List, NoReturn

import typer

from ner_component.errors import Interrupted, NerComponentError


def fail(message: str) -> NoReturn:
    """Print one error line to stderr and exit with status 1 (no traceback).

    wasabi's `msg.fail` wraps long lines; a message naming a file, line and value
    must stay on one line so that it can be read and grepped.
    """
    print(f"\u2718 {' '.join(message.split())}", file=sys.stderr, flush=True)
    sys.exit(1)


def int_list(value: str, option: str) -> List[int]:
    """A comma-separated option of integers ("16,256"), or a one-line exit naming it."""
    try:
        return [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        fail(f"{option} '{value}' is not a comma-separated list of integers")


def exit_interrupted(stop: Interrupted) -> NoReturn:
    """Reap the worker processes, say why in one line, and exit with 128 + the
    signal number, as a shell reports a process ended by it. `os._exit`: the
    interpreter's own exit joins the feeder threads of spaCy's worker queues,
    which block for ever once the workers are gone."""
    for child in multiprocessing.active_children():
        child.join(2)
        if child.is_alive():
            child.kill()
            child.join(1)
    note = f"; {stop.note}" if stop.note else ""
    print(f"\u2718 Stopped by {signal.Signals(stop.signum).name}{note}", file=sys.stderr, flush=True)
    with suppress(OSError, ValueError):  # stdout may be a closed pipe
        sys.stdout.flush()
    os._exit(128 + stop.signum)


def one_line_errors(main: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a script's `main` so that a `NerComponentError` becomes `fail`, an
    `Interrupted` becomes `exit_interrupted`, and a reader of stdout that went away
    (`... | head`) ends the run quietly, as cat does. The wrapper keeps `main`'s
    signature, so typer still reads the options from it."""

    @functools.wraps(main)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return main(*args, **kwargs)
        except NerComponentError as err:
            fail(str(err))
        except Interrupted as stop:
            exit_interrupted(stop)
        except BrokenPipeError:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(1)

    return wrapper


def run(main: Callable[..., Any]) -> None:
    """`typer.run(main)`, with `NerComponentError` turned into a one-line exit."""
    typer.run(one_line_errors(main))


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
SCHEMA = typer.Option(
    "native",
    help="Output schema: native ({id, entities}), hf (the Hugging Face token-classification pipeline's "
    "records), prodigy (tasks for ner.correct) or docbin (a .spacy file)",
)
