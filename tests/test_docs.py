import shutil

import srsly

from ner_component.docs import update_readme, vars_table
from tests.util import ROOT


def test_readme_tables_match_project_yml(tmp_path):
    """Regenerating the README's tables from project.yml changes nothing."""
    for name in ("README.md", "project.yml"):
        shutil.copy(ROOT / name, tmp_path / name)
    assert update_readme(tmp_path) == (ROOT / "README.md").read_text(encoding="utf8"), (
        "README.md is out of date: run python scripts/document.py ."
    )


def test_every_var_is_documented():
    project = srsly.read_yaml(ROOT / "project.yml")
    assert set(project["var_help"]) == set(project["vars"])
    for name in project["vars"]:
        assert f"| `{name}` |" in vars_table(project)
