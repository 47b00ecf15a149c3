import shutil
from pathlib import Path

import pytest
import srsly

from ner_component.docs import broken_links, heading_anchors, markdown_links, update_command_docs, vars_table
from tests.util import ROOT

# The README is a user's guide; measurements, design reasons and the rest go to docs/.
README_MAX_BYTES = 10_240
MARKDOWN_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_command_tables_match_project_yml(tmp_path):
    """Regenerating docs/commands.md's tables from project.yml changes nothing."""
    (tmp_path / "docs").mkdir()
    for name in ("docs/commands.md", "project.yml"):
        shutil.copy(ROOT / name, tmp_path / name)
    assert update_command_docs(tmp_path) == (ROOT / "docs" / "commands.md").read_text(encoding="utf8"), (
        "docs/commands.md is out of date: run python scripts/document.py ."
    )


def test_every_var_is_documented():
    project = srsly.read_yaml(ROOT / "project.yml")
    assert set(project["var_help"]) == set(project["vars"])
    for name in project["vars"]:
        assert f"| `{name}` |" in vars_table(project)


def test_var_defaults_read_as_typed():
    table = vars_table({"vars": {"a": False, "b": "", "c": 0}, "var_help": {}})
    assert "| `a` | `false` |" in table and '| `b` | `""` |' in table and "| `c` | `0` |" in table


def test_readme_is_short():
    size = (ROOT / "README.md").stat().st_size
    assert size <= README_MAX_BYTES, f"README.md is {size:,} bytes; move details to docs/ (limit {README_MAX_BYTES:,})"


@pytest.mark.parametrize("path", MARKDOWN_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_point_at_files_and_headings(path: Path):
    assert broken_links(path) == []


def test_broken_links_are_found(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# A title\n\n## Why: `x` and y\n", encoding="utf8")
    readme = tmp_path / "README.md"
    readme.write_text(
        "[ok](docs/a.md#why-x-and-y) [top](#intro) ![img](docs/missing.png) [bad](docs/a.md#nope)\n"
        "[web](https://example.com/x.md) `[code](not/a/link.md)`\n\n# Intro\n\n"
        "```bash\n# not a heading\necho [x](missing.md)\n```\n",
        encoding="utf8",
    )
    assert broken_links(readme) == [
        f"{readme}: docs/missing.png: no such file",
        f"{readme}: docs/a.md#nope: no such heading",
    ]
    assert "not-a-heading" not in heading_anchors(readme.read_text(encoding="utf8"))


def test_heading_anchors_repeat_with_a_number():
    assert heading_anchors("# Data\n## Data\n### `nlp.pipe` vs HF\n") == {"data", "data-1", "nlppipe-vs-hf"}


def test_links_in_code_are_not_links():
    assert markdown_links("`[a](b.md)`\n\n```\n[c](d.md)\n```\n[e](f.md)") == ["f.md"]
