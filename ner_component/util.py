"""Small shared helpers: atomic writes, language codes, JSON, booleans and optional dependencies."""
import importlib.util
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterator, Union

PathLike = Union[str, Path]

from ner_component.errors import NerComponentError


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def check_writable(path: PathLike, what: str) -> None:
    """Refuse, before any work, a place that can't be written: `path` (a file or a
    folder to create or replace) is an existing folder where a file is wanted, or
    its nearest existing ancestor is a file or not writable.

    path (PathLike): The output file or folder.
    what (str): "file" or "folder": what `path` is to be.
    RAISES (NerComponentError): One line naming the path and the problem.
    """
    path = Path(path)
    if what == "file" and path.is_dir():
        raise NerComponentError(f"{path}: is a folder; the output must be a file path")
    if what == "folder" and path.exists() and not path.is_dir():
        raise NerComponentError(f"{path}: is a file; the output must be a folder")
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise NerComponentError(f"{path}: can't be created, {parent} is not a folder")
    if what == "folder" and path.is_dir():
        parent = path
    if not os.access(parent, os.W_OK | os.X_OK):
        raise NerComponentError(f"{path}: can't be written, {parent} is not writable")


@contextmanager
def atomic_path(path: PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only when the
    block finishes without an exception, so readers never see a half-written file.
    The file gets the mode a plain `open()` would give it (mkstemp's is 0600).

    path (PathLike): The final path.
    YIELDS (Path): The temporary path to write to.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if tmp_path.exists():
            tmp_path.chmod(0o666 & ~_umask())
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextmanager
def atomic_dir(path: PathLike) -> Iterator[Path]:
    """Yield a temporary folder beside `path`; when the block finishes without an
    exception, swap it into place (replacing an older `path`), so readers find the
    old folder or the new one, never half of one. The folder gets the mode a plain
    `mkdir` would give it (mkdtemp's is 0700).

    path (PathLike): The final folder.
    YIELDS (Path): The temporary folder to fill.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        yield tmp
        tmp.chmod(0o777 & ~_umask())
        replace_dir(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def replace_dir(src: PathLike, dst: PathLike) -> None:
    """Rename folder `src` onto `dst`, moving an existing `dst` aside first and
    deleting it after (a folder can't be renamed onto a non-empty one)."""
    src, dst = Path(src), Path(dst)
    if not dst.exists():
        os.replace(src, dst)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{dst.name}.old-", dir=dst.parent))
    os.replace(dst, old / dst.name)
    try:
        os.replace(src, dst)
    except OSError:
        os.replace(old / dst.name, dst)  # put the old one back
        raise
    finally:
        shutil.rmtree(old, ignore_errors=True)


def write_text_atomic(path: PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf8")


def write_json_atomic(path: PathLike, data: Any) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


# The conversion report beside a corpus (`ner_component.data.convert` writes it).
CORPUS_REPORT = "report.json"


def character_segmented_corpus(corpus_dir: PathLike) -> bool:
    """Whether a converted corpus is of a character-segmented language (its
    `report.json` says so; `ner_component.data.convert.natural_spaces`). A corpus
    without a report, or from before reports said it, is not."""
    path = Path(corpus_dir) / CORPUS_REPORT
    return path.is_file() and bool(read_json(path).get("character_segmented", False))


def spacy_lang(code: str) -> str:
    """Map a WikiANN language code to the spaCy language used for the pipeline.

    WikiANN has codes spaCy doesn't know ("bat-smg", "zh-yue") and languages whose
    spaCy tokenizer needs extra packages (ja, ko, th, vi); those use "xx", spaCy's
    multi-language class. Training uses WikiANN's own tokens either way.

    code (str): The WikiANN language code.
    RETURNS (str): A spaCy language code that `spacy.blank` can create here.
    """
    import spacy

    candidates = ["en"] if code == "simple" else [code]
    for candidate in candidates:
        try:
            spacy.blank(candidate)
        except Exception:  # unknown code, or a tokenizer dependency not installed
            continue
        return candidate
    return "xx"


def read_json(path: PathLike) -> Dict[str, Any]:
    with Path(path).open(encoding="utf8") as f:
        return json.load(f)


TRUE_WORDS = ("true", "1", "yes")
FALSE_WORDS = ("false", "0", "no")


def parse_bool(value: str, option: str) -> bool:
    """A boolean project var as a script receives it ("true", "False", "1", ...).

    value (str): The text.
    option (str): The option's name, for the error.
    RETURNS (bool): The value; ValueError names the option and the text otherwise.
    """
    word = value.strip().lower()
    if word in TRUE_WORDS or word in FALSE_WORDS:
        return word in TRUE_WORDS
    raise NerComponentError(f"{option}: expected true or false, found '{value}'")


def require_extra(module: str, extra: str, what: str) -> None:
    """Fail in one line, naming the install command, when an optional dependency is
    missing: before any work starts, not as an ImportError deep in a library.

    module (str): The importable module, e.g. "accelerate".
    extra (str): The project's optional-dependency group that installs it, e.g. "bench".
    what (str): What needs it, e.g. "The Hugging Face Trainer recipe".
    RAISES (NerComponentError): When `module` can't be imported.
    """
    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a finder that blocks it; a module set to None
        found = False
    if not found:
        raise NerComponentError(
            f"{what} needs {module}, which is not installed: pip install -e '.[{extra}]' in the project folder"
        )
