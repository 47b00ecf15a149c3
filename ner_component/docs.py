"""Keep docs/commands.md (the project's command, workflow and var tables) in step
with project.yml, and the links of README.md and docs/ pointing at files and
headings that exist."""
import re
from pathlib import Path
from typing import Any, Dict, List, Set

import srsly

from ner_component.util import PathLike, write_text_atomic

VARS_START = "<!-- VARS: AUTO-GENERATED FROM project.yml START -->"
VARS_END = "<!-- VARS: AUTO-GENERATED FROM project.yml END -->"
# What a link can't be: code (fenced or inline) shows link syntax without linking.
FENCED_CODE = re.compile(r"^ *(```|~~~).*?^ *\1", re.S | re.M)
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)
EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.I)


def var_default(value: Any) -> str:
    """A var's default as a user types it on the command line: `true`, not `True`;
    an empty string as `""`, not an empty code span (which Markdown shows as two
    backticks).

    value (Any): The default in project.yml's `vars`.
    RETURNS (str): The table cell, a Markdown code span.
    """
    if isinstance(value, bool):
        value = str(value).lower()
    return f"`{value}`" if value != "" else '`""`'


def vars_table(project: Dict[str, Any]) -> str:
    """A Markdown table of the project's vars: name, default, what it means."""
    help_texts = project.get("var_help", {})
    lines = ["| Var | Default | Description |", "| --- | --- | --- |"]
    for name, default in project.get("vars", {}).items():
        description = " ".join(str(help_texts.get(name, "")).split())
        lines.append(f"| `{name}` | {var_default(default)} | {description} |")
    return "\n".join(lines)


COMMANDS_DOC = Path("docs") / "commands.md"


def update_command_docs(project_dir: PathLike = ".") -> str:
    """Regenerate the command/workflow tables (`weasel document`) and the var table
    in docs/commands.md, leaving the hand-written text around them as it is.

    project_dir (PathLike): The project folder.
    RETURNS (str): The new text (also written to docs/commands.md).
    """
    from weasel.cli.document import project_document

    project_dir = Path(project_dir)
    readme = project_dir / COMMANDS_DOC
    project_document(project_dir, readme, no_emoji=True)
    # weasel links project.yml from the project root; this file is one folder down
    text = readme.read_text(encoding="utf8").replace("](project.yml)", "](../project.yml)")
    project = srsly.read_yaml(project_dir / "project.yml")
    block = f"{VARS_START}\n\n{vars_table(project)}\n\n{VARS_END}"
    pattern = re.compile(re.escape(VARS_START) + ".*?" + re.escape(VARS_END), re.S)
    if not pattern.search(text):
        raise ValueError(f"{readme}: no '{VARS_START}' marker to put the var table at")
    text = pattern.sub(lambda _: block, text)
    write_text_atomic(readme, text)
    return text


def _without_code(text: str) -> str:
    return INLINE_CODE.sub("", FENCED_CODE.sub("", text))


def markdown_links(text: str) -> List[str]:
    """The targets of a Markdown text's links and images, outside code.

    text (str): Markdown.
    RETURNS (List[str]): Each target as written, e.g. "docs/design.md#the-run-cache".
    """
    return LINK.findall(_without_code(text))


def heading_anchors(text: str) -> Set[str]:
    """The anchors GitHub gives a Markdown text's headings: lower case, punctuation
    dropped, spaces to hyphens, "-1", "-2"... on repeats.

    text (str): Markdown.
    RETURNS (Set[str]): The anchors, without "#".
    """
    anchors: Set[str] = set()
    for heading in HEADING.findall(FENCED_CODE.sub("", text)):
        base = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        anchor, n = base, 0
        while anchor in anchors:
            n += 1
            anchor = f"{base}-{n}"
        anchors.add(anchor)
    return anchors


def broken_links(path: PathLike) -> List[str]:
    """The relative links of a Markdown file whose file or heading doesn't exist.

    path (PathLike): The Markdown file.
    RETURNS (List[str]): One line per broken link, naming the file and the target.
    """
    path = Path(path)
    broken = []
    for target in markdown_links(path.read_text(encoding="utf8")):
        if EXTERNAL.match(target):
            continue
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part) if file_part else path
        if not linked.exists():
            broken.append(f"{path}: {target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in heading_anchors(linked.read_text(encoding="utf8")):
            broken.append(f"{path}: {target}: no such heading")
    return broken
