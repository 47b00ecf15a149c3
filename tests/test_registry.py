"""Every registered name resolves through the entry points in pyproject.toml, so
configs work without `--code` and packaged pipelines find them."""
import json
import subprocess
import sys

import pytest
from spacy.util import registry

from tests.util import ROOT

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
ENTRY_POINTS = PYPROJECT["project"]["entry-points"]
REGISTRIES = {
    "spacy_factories": "factories",
    "spacy_architectures": "architectures",
    "thinc_layers": "layers",
    "spacy_loggers": "loggers",
    "spacy_callbacks": "callbacks",
    "spacy_tokenizers": "tokenizers",
    "spacy_readers": "readers",
    "spacy_scorers": "scorers",
    "spacy_misc": "misc",
}
NAMES = [(group, name) for group, names in ENTRY_POINTS.items() for name in names]


RESOLVE = """
import json, sys
import spacy
from spacy.util import registry
group, registry_name, name = sys.argv[1:]
if group == "spacy_factories":
    spacy.blank("xx").add_pipe(name)  # spaCy loads factory entry points when a pipe is created by name
found = registry.get(registry_name, name)
print(json.dumps([found.__module__, found.__name__]))
"""


@pytest.mark.parametrize("group,name", NAMES)
def test_registered_name_resolves(group, name):
    """In a new process, with nothing of the project imported: what a user's config
    or a packaged pipeline sees. (In this one, `spacy package`'s own import of each
    runtime file in the packaging tests registers the names a second time.)"""
    proc = subprocess.run(
        [sys.executable, "-c", RESOLVE, group, REGISTRIES[group], name], capture_output=True, text=True, cwd=ROOT.parent
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    module, _, attr = ENTRY_POINTS[group][name].partition(":")
    assert json.loads(proc.stdout.splitlines()[-1]) == [module, attr]


def test_entry_points_cover_every_registered_name():
    """A function registered in code but not in pyproject.toml would be missing
    from packaged pipelines' requirements."""
    import ner_component.runtime.token_ner  # noqa: F401
    import ner_component.training.batching  # noqa: F401
    import ner_component.training.callbacks  # noqa: F401
    import ner_component.training.loggers  # noqa: F401

    for reg_name in set(REGISTRIES.values()) - {"factories"}:
        ours = {n for n in getattr(registry, reg_name).get_all() if n.startswith("ner_component.")}
        group = next(g for g, r in REGISTRIES.items() if r == reg_name)
        assert ours == set(ENTRY_POINTS.get(group, {})), reg_name
