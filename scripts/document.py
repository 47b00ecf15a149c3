"""Regenerate docs/commands.md's command, workflow and var tables from project.yml."""
from pathlib import Path

import typer

from ner_component.cli import run
from ner_component.docs import update_command_docs


def main(project_dir: Path = typer.Argument(Path("."), exists=True, file_okay=False)) -> None:
    update_command_docs(project_dir)


if __name__ == "__main__":
    run(main)
