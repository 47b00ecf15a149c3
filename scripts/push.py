"""Push the packaged model to the Hugging Face Hub (wheel, pipeline files, card),
or with --dry-run true only stage the folder it would upload."""
from pathlib import Path

import typer

from ner_component.cli import run
from ner_component.sharing.hub import check_repo_id, find_wheel, push, stage_upload
from ner_component.util import parse_bool, spacy_lang


def main(
    packages: Path = typer.Argument(..., exists=True, file_okay=False, help="Folder the package step wrote"),
    lang: str = typer.Option(..., help="WikiANN language code"),
    name: str = typer.Option("wikiann_trf", help="Package name (the language is prepended)"),
    version: str = typer.Option("0.1.0", help="Package version"),
    hub_repo: str = typer.Option(..., help="Hub model repo, <user or org>/<name>"),
    private: str = typer.Option("false", help="Create the repo private: true or false"),
    dry_run: str = typer.Option("false", help="true: stage packages/<package>-<version>/hub/ and upload nothing"),
) -> None:
    is_private, is_dry_run = parse_bool(private, "--private"), parse_bool(dry_run, "--dry-run")
    check_repo_id(hub_repo)
    folder = stage_upload(find_wheel(packages, f"{spacy_lang(lang)}_{name}", version))
    n_files = sum(1 for p in folder.rglob("*") if p.is_file())
    if is_dry_run:
        print(f"Dry run: staged {n_files} files for {hub_repo} in {folder}; nothing uploaded")
        return
    push(folder, hub_repo, private=is_private)


if __name__ == "__main__":
    run(main)
