"""Keep the README's project tables in step with project.yml."""
import re
from pathlib import Path
from typing import Any, Dict

import srsly

from ner_component.util import PathLike, write_text_atomic

VARS_START = "<!-- VARS: AUTO-GENERATED FROM project.yml START -->"
VARS_END = "<!-- VARS: AUTO-GENERATED FROM project.yml END -->"


def vars_table(project: Dict[str, Any]) -> str:
    """A Markdown table of the project's vars: name, default, what it means."""
    help_texts = project.get("var_help", {})
    lines = ["| Var | Default | Description |", "| --- | --- | --- |"]
    for name, default in project.get("vars", {}).items():
        description = " ".join(str(help_texts.get(name, "")).split())
        lines.append(f"| `{name}` | `{default}` | {description} |")
    return "\n".join(lines)


def update_readme(project_dir: PathLike = ".") -> str:
    """Regenerate the command/workflow tables (`weasel document`) and the var table
    in README.md, leaving the hand-written sections as they are.

    project_dir (PathLike): The project folder.
    RETURNS (str): The new README text (also written to README.md).
    """
    from weasel.cli.document import project_document

    project_dir = Path(project_dir)
    readme = project_dir / "README.md"
    project_document(project_dir, readme, no_emoji=True)
    text = readme.read_text(encoding="utf8")
    project = srsly.read_yaml(project_dir / "project.yml")
    block = f"{VARS_START}\n\n{vars_table(project)}\n\n{VARS_END}"
    pattern = re.compile(re.escape(VARS_START) + ".*?" + re.escape(VARS_END), re.S)
    if not pattern.search(text):
        raise ValueError(f"{readme}: no '{VARS_START}' marker to put the var table at")
    text = pattern.sub(lambda _: block, text)
    write_text_atomic(readme, text)
    return text
