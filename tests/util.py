"""Builders and readers several test modules share (no test module imports another)."""
import io
import json
import os
import shutil
import struct
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List

import spacy
from spacy.language import Language
from spacy.training import Example

from ner_component.data.wikiann import TAGS
from tests.pipelines import TRAIN_DATA, add_transformer  # noqa: F401  TRAIN_DATA: shared from here too

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


# The project's outputs, data and environment: top-level folders only (the package
# has a `training` subpackage of its own).
_NOT_COPIED_AT_ROOT = {"corpus", "training", "metrics", "packages", "assets", "wandb", ".git", ".venv", "project.lock"}
_NOT_COPIED = {"__pycache__", ".pytest_cache"}


def copy_project(dest: Path) -> Path:
    """The project's files without data, outputs, caches or the venv."""

    def ignore(folder: str, names: List[str]) -> List[str]:
        at_root = Path(folder) == ROOT
        return [n for n in names if n in _NOT_COPIED or (at_root and n in _NOT_COPIED_AT_ROOT)]

    shutil.copytree(ROOT, dest, ignore=ignore)
    return dest


def project_run(root: Path, command: str, *args: str, env: Dict[str, str] = None) -> subprocess.CompletedProcess:
    """`spacy project run <command> <root> <args>` in a subprocess, offline."""
    cmd = [sys.executable, "-m", "spacy", "project", "run", command, str(root), *args]
    return subprocess.run(cmd, cwd=root, env=dict(os.environ, **OFFLINE_ENV, **(env or {})), capture_output=True, text=True)


@dataclass
class ProjectRun:
    """A finished `spacy project run all` of a copy of the project: its folder, the
    `--vars` it ran with and its environment (for later commands on the same copy)."""

    root: Path
    var_args: List[str]
    env: Dict[str, str]


def run_all_bn(dest: Path, wikiann_dir: Path, tiny_bert: Path, cpu_dtype: str, tracked: bool = False) -> ProjectRun:
    """`spacy project run all` for bn in a fresh copy of the project: the real WikiANN
    data, the tiny model, 20 steps, the CPU prediction dtype forced (bfloat16 is
    emulated where it isn't native); with `tracked`, in W&B offline."""
    root = copy_project(dest)
    var_args = [
        "--vars.lang", LANG, "--vars.data", str(wikiann_dir), "--vars.transformer", str(tiny_bert),
        "--vars.max_steps", "20",
    ]
    env = {"SPACY_CONFIG_OVERRIDES": f"--components.transformer.model.cpu_inference_dtype={cpu_dtype}"}
    if tracked:
        var_args += ["--vars.logger", "wandb"]
        env["WANDB_MODE"] = "offline"
    proc = project_run(root, "all", *var_args, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return ProjectRun(root, var_args, dict(os.environ, **OFFLINE_ENV, **env))


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


TEXTS = [
    "Barack Obama visited Paris today",
    "Zoë moved from Zürich to 東京 with Acme Corp",
    "",
    "😀🇫🇷 Zürich — naïve café, Zoë’s Acme Corp in 東京 again",
    "Nothing happened here",
    "Google hired John Smith in London",
]


def write_lines(path: Path, lines: List[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf8")
    return path


def read_records(path: Path) -> List[Dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf8").splitlines()]


def many_lines(n: int) -> List[str]:
    """`n` documents, each one with a ruler entity and its own line number."""
    return [f"Line {i} : Zoë met Acme Corp in Zürich {'and 東京 ' * (i % 4)}." for i in range(1, n + 1)]




def make_examples(nlp: Language) -> List[Example]:
    return [Example.from_dict(nlp.make_doc(text), {"entities": ents}) for text, ents in TRAIN_DATA]


def make_transformer_nlp(bert_dir: Path, pooling: str) -> Language:
    """transformer + token_ner through a listener, as configs/cpu_token_ner.cfg."""
    spacy.util.fix_random_seed(0)
    nlp = spacy.blank("en")
    add_transformer(nlp, bert_dir, window=16, stride=12)
    listener = {
        "@architectures": "spacy-transformers.TransformerListener.v1",
        "grad_factor": 1.0,
        "upstream": "*",
        "pooling": {"@layers": pooling},
    }
    model = {"@architectures": "ner_component.TokenClassifier.v1", "tok2vec": listener, "lr_scale": 5.0}
    nlp.add_pipe("token_ner", name="ner", config={"model": model})
    return nlp


# Hand-made WikiANN files: a token with colons, a stray I- tag, an empty line at the end.
FILES: Dict[str, str] = {
    "train": "xy:R.H.\tB-ORG\nxy:Saunders\tI-ORG\nxy:(\tO\n\nxy:12:30\tO\nxy:Paris\tB-LOC\n\n",
    "dev": "xy:Ada\tB-PER\nxy:Lovelace\tI-PER\n\nxy:the\tO\nxy:UN\tI-ORG\n",
    "test": "xy:Berlin\tB-LOC\nxy:Mitte\tI-LOC\nxy:and\tO\nxy:Bonn\tB-LOC\n",
}


def write_archive(folder: Path, lang: str = "xy", files: Dict[str, str] = FILES) -> Path:
    path = folder / f"{lang}.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        for name, text in files.items():
            data = text.replace("xy:", f"{lang}:").encode("utf8")
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def build_dataset_dict(source):
    """A Hugging Face DatasetDict with WikiANN's features, built from a local source."""
    import datasets

    features = datasets.Features(
        {
            "tokens": datasets.Sequence(datasets.Value("string")),
            "ner_tags": datasets.Sequence(datasets.ClassLabel(names=list(TAGS))),
            "langs": datasets.Sequence(datasets.Value("string")),
        }
    )
    splits = {}
    for split, hub_split in (("train", "train"), ("dev", "validation"), ("test", "test")):
        rows: Dict[str, List] = {"tokens": [], "ner_tags": [], "langs": []}
        for sent in source.sentences(split):
            rows["tokens"].append(sent.tokens)
            rows["ner_tags"].append([TAGS.index(t) for t in sent.tags])
            rows["langs"].append(["xy"] * len(sent.tokens))
        splits[hub_split] = datasets.Dataset.from_dict(rows, features=features)
    return datasets.DatasetDict(splits)
