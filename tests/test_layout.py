"""The package's shape: no import cycles, the runtime apart from the tooling, and
exits only where the scripts are served."""
import ast
import random
import subprocess
import sys
from pathlib import Path
from typing import List, Set

import pytest

from tests.util import ROOT

PACKAGE = ROOT / "ner_component"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = sorted(module_name(p) for p in PACKAGE.rglob("*.py"))


def imported_modules(path: Path) -> Set[str]:
    """The ner_component modules a file imports, at any depth of the file."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name in MODULES}


def test_every_module_imports_alone_in_a_fresh_interpreter():
    """Each module imports first, alone, in a fresh interpreter: a cycle between two
    modules fails whichever of them comes first. The order is shuffled (seeded), and
    then reversed, so that any two modules meet in both orders."""
    order = MODULES[:]
    random.Random(0).shuffle(order)
    failures: List[str] = []
    for sequence in (order, order[::-1]):
        code = (
            "import importlib, sys\n"
            f"for name in {sequence!r}:\n"
            "    for loaded in [m for m in sys.modules if m.startswith('ner_component')]:\n"
            "        del sys.modules[loaded]\n"
            "    importlib.import_module(name)\n"
        )
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
        if proc.returncode:
            failures.append(proc.stderr.strip().splitlines()[-1])
    assert not failures, failures


def test_no_import_cycle_between_modules():
    """The import graph (every import, lazy ones in functions too) has no cycle."""
    graph = {module_name(p): imported_modules(p) - {module_name(p)} for p in PACKAGE.rglob("*.py")}
    # a package's __init__ is imported by its own modules' import; that's not a cycle
    for name, deps in graph.items():
        graph[name] = {d for d in deps if not name.startswith(d + ".")}
    state = {}

    def visit(node: str, path: List[str]) -> None:
        state[node] = "open"
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == "open":
                pytest.fail("import cycle: " + " -> ".join(path[path.index(dep):] + [node, dep]) if dep in path else f"{node} -> {dep}")
            if dep not in state:
                visit(dep, path + [node])
        state[node] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [])


@pytest.mark.parametrize("folder", ["runtime", "training"])
def test_runtime_and_training_never_import_the_tooling(folder):
    """What spaCy resolves from a config (the runtime a model wheel carries, and the
    training callbacks and loggers) imports nothing of the project's tooling."""
    allowed = {"ner_component.errors", "ner_component.util", "ner_component.hardware", "ner_component.backbones"}
    for path in (PACKAGE / folder).rglob("*.py"):
        for name in imported_modules(path):
            inside = name.startswith(f"ner_component.{folder}") or name.startswith("ner_component.runtime")
            assert inside or name in allowed, f"{path.relative_to(ROOT)} imports {name}"


def test_only_the_cli_module_exits():
    """Library code raises NerComponentError; `ner_component.cli` alone turns it into
    an exit (`fail`), and no library module calls sys.exit."""
    for path in PACKAGE.rglob("*.py"):
        if path.name == "cli.py":
            continue
        text = path.read_text(encoding="utf8")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Call):
                func = node.func
                name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
                owner = func.value.id if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) else ""
                assert name != "fail" or owner == "msg", f"{path.relative_to(ROOT)}:{node.lineno} calls fail()"
                assert (owner, name) != ("sys", "exit"), f"{path.relative_to(ROOT)}:{node.lineno} calls sys.exit()"


def test_no_test_module_imports_another():
    for path in (ROOT / "tests").rglob("test_*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf8"))):
            if isinstance(node, ast.ImportFrom):
                module = ("." * node.level) + (node.module or "")
                assert ".test_" not in f".{module}" and not module.startswith("test_"), f"{path.relative_to(ROOT)} imports {module}"
