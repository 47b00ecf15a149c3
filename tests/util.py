"""Builders and readers several test modules share (no test module imports another)."""
import json
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Iterator, List

ROOT = Path(__file__).parent.parent
LANG = "bn"
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}

# A W&B run file (.wandb): a 7-byte header, then LevelDB log records in 32 KiB blocks,
# each record a serialized wandb_internal_pb2.Record (wandb's own Python reader of
# these files is gone from recent releases; its Go core writes them this way).
_WANDB_HEADER = 7
_BLOCK = 32 * 1024
_RECORD_HEADER = 7  # crc32 (4), length (2), type (1)
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4


def copy_project(dest: Path) -> Path:
    """The project's files without data, outputs, caches or the venv."""
    ignore = shutil.ignore_patterns(
        "corpus", "training", "metrics", "packages", "wandb", "__pycache__", ".git", ".venv", "project.lock"
    )
    shutil.copytree(ROOT, dest, ignore=ignore)
    return dest


def project_run(root: Path, command: str, *args: str, env: Dict[str, str] = None) -> subprocess.CompletedProcess:
    """`spacy project run <command> <root> <args>` in a subprocess, offline."""
    cmd = [sys.executable, "-m", "spacy", "project", "run", command, str(root), *args]
    return subprocess.run(cmd, cwd=root, env=dict(os.environ, **OFFLINE_ENV, **(env or {})), capture_output=True, text=True)


def _wandb_payloads(data: bytes) -> Iterator[bytes]:
    pos, pending = _WANDB_HEADER, b""
    while pos + _RECORD_HEADER <= len(data):
        left_in_block = _BLOCK - pos % _BLOCK
        if left_in_block < _RECORD_HEADER:  # the block's tail is padding
            pos += left_in_block
            continue
        length, kind = struct.unpack("<HB", data[pos + 4 : pos + 7])
        chunk = data[pos + 7 : pos + 7 + length]
        pos += _RECORD_HEADER + length
        if kind == _FULL:
            yield chunk
        elif kind == _FIRST:
            pending = chunk
        elif kind == _MIDDLE:
            pending += chunk
        elif kind == _LAST:
            yield pending + chunk
            pending = b""
        elif kind == 0:  # zero padding at the end of the file
            pos += _BLOCK - pos % _BLOCK
    return


def read_wandb_run(path: Path) -> Dict[str, Any]:
    """The history rows and the config a W&B run file holds.

    path (Path): The run's `run-<id>.wandb` file.
    RETURNS (Dict[str, Any]): {"history": [{key: value}], "config": {key: value}}.
    """
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B run file"
    history: List[Dict[str, Any]] = []
    config: Dict[str, Any] = {}
    for payload in _wandb_payloads(data):
        record = wandb_internal_pb2.Record()
        record.ParseFromString(payload)
        kind = record.WhichOneof("record_type")
        if kind == "history":
            history.append({item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in record.history.item})
        elif kind in ("config", "run"):  # wandb.init(config=...) comes with the run record
            updates = record.config.update if kind == "config" else record.run.config.update
            config.update({item.key: json.loads(item.value_json) for item in updates})
    return {"history": history, "config": config}
