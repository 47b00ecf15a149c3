"""Convert WikiANN for one language into spaCy corpora (train/dev/test .spacy)."""
from pathlib import Path

import typer
from wasabi import msg

from ner_component.cli import run
from ner_component.data.convert import convert
from ner_component.data.wikiann import resolve_source


def main(
    lang: str = typer.Argument(..., help="WikiANN language code, e.g. en, bn"),
    output_dir: Path = typer.Argument(..., file_okay=False, help="Corpus folder, e.g. corpus/en"),
    data: str = typer.Option("auto", help="'auto', 'hub', 'hub:<dataset id>', or a local path (archive, folder, save_to_disk or parquet)"),
) -> None:
    source = resolve_source(data, lang)
    msg.info(f"WikiANN '{lang}' from {source.description}")
    report = convert(source, output_dir, lang)
    for split, counts in report["splits"].items():
        ents = ", ".join(f"{k} {v}" for k, v in counts["entities"].items())
        msg.good(
            f"{split}: {counts['sentences']} sentences, {counts['tokens']} tokens, {ents}; "
            f"{counts['repaired_i_tags']} stray I- tags read as B-"
            + (f"; {counts['joined_without_spaces']} joined without spaces" if report["character_segmented"] else "")
        )
    if report["character_segmented"]:
        msg.info("Character-segmented language: texts as written (no spaces between characters); the pipeline splits text into characters")
    msg.good(f"Wrote {output_dir}/{{train,dev,test}}.spacy and report.json")


if __name__ == "__main__":
    run(main)
