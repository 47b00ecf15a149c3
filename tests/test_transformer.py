"""bfloat16 prediction on CPU: ner_component.TransformerModel.v1 and the runtime switch."""
from pathlib import Path

import numpy
import pytest
import spacy

from ner_component.annotate import AnnotateError, annotate, load_pipeline
from ner_component.transformer import (
    apply_cpu_inference_dtype,
    cpu_has_native_bf16,
    pipeline_cpu_inference_dtype,
    resolve_cpu_inference_dtype,
)

from .annotate_pipelines import build_transformer_pipeline

TEXTS = ["Barack Obama visited Paris today", "Google hired John Smith in London and Zürich"]


def _cpuinfo(tmp_path: Path, flags: str) -> str:
    path = tmp_path / f"cpuinfo-{abs(hash(flags))}"
    path.write_text(f"processor\t: 0\nvendor_id\t: X\nflags\t\t: fpu sse2 {flags}\n\nprocessor\t: 1\nflags\t\t: fpu\n")
    return str(path)


def test_native_bf16_is_read_from_the_cpu_flags(tmp_path):
    assert cpu_has_native_bf16(_cpuinfo(tmp_path, "avx512f avx512_bf16"))
    assert cpu_has_native_bf16(_cpuinfo(tmp_path, "amx_tile amx_bf16"))
    assert not cpu_has_native_bf16(_cpuinfo(tmp_path, "avx512f avx512bw avx2"))
    assert not cpu_has_native_bf16(str(tmp_path / "no-such-file"))


def test_auto_follows_the_cpu(monkeypatch):
    import ner_component.transformer as module

    monkeypatch.setattr(module, "cpu_has_native_bf16", lambda: True)
    assert resolve_cpu_inference_dtype("auto") == "bfloat16"
    monkeypatch.setattr(module, "cpu_has_native_bf16", lambda: False)
    assert resolve_cpu_inference_dtype("auto") == "float32"
    assert resolve_cpu_inference_dtype("bfloat16") == "bfloat16"
    with pytest.raises(ValueError, match="cpu_inference_dtype must be one of auto, float32, bfloat16, got 'half'"):
        resolve_cpu_inference_dtype("half")


@pytest.fixture(scope="module")
def stock_pipeline(tiny_bert, tmp_path_factory) -> Path:
    """A pipeline saved with spacy-transformers' own TransformerModel.v3."""
    return build_transformer_pipeline(tiny_bert, tmp_path_factory.mktemp("stock") / "model")


def _hidden_states(nlp, texts):
    return [numpy.asarray(doc._.trf_data.tensors[0]) for doc in nlp.pipe(texts)]


def test_runtime_switch_predicts_in_bfloat16_and_returns_float32(stock_pipeline):
    nlp = spacy.load(stock_pipeline)
    assert pipeline_cpu_inference_dtype(nlp) == "float32"
    reference = _hidden_states(nlp, TEXTS)
    assert apply_cpu_inference_dtype(nlp, "bfloat16") == "bfloat16"
    assert pipeline_cpu_inference_dtype(nlp) == "bfloat16"
    lowered = _hidden_states(nlp, TEXTS)
    for ref, low in zip(reference, lowered):
        assert low.dtype == numpy.float32
        assert not numpy.array_equal(ref, low), "bfloat16 should round the hidden states"
        cosine = (ref * low).sum(-1) / (numpy.linalg.norm(ref, axis=-1) * numpy.linalg.norm(low, axis=-1))
        assert cosine.min() > 0.99
    # And back: float32 reproduces the original exactly.
    apply_cpu_inference_dtype(nlp, "float32")
    for ref, again in zip(reference, _hidden_states(nlp, TEXTS)):
        numpy.testing.assert_array_equal(ref, again)


def test_training_steps_stay_float32_under_bfloat16_prediction(stock_pipeline):
    import torch

    nlp = spacy.load(stock_pipeline)
    apply_cpu_inference_dtype(nlp, "bfloat16")
    model = nlp.get_pipe("transformer").model
    docs = [nlp.make_doc(text) for text in TEXTS]
    output, _ = model.begin_update(docs)
    tensor = output.model_output.last_hidden_state
    assert isinstance(tensor, torch.Tensor) and tensor.dtype == torch.float32 and tensor.requires_grad


def test_config_setting_survives_saving_and_loading(tiny_bert, tmp_path):
    nlp = spacy.blank("en")
    nlp.add_pipe(
        "transformer",
        config={
            "model": {
                "@architectures": "ner_component.TransformerModel.v1",
                "name": str(tiny_bert),
                "tokenizer_config": {"use_fast": True},
                "get_spans": {"@span_getters": "spacy-transformers.strided_spans.v1", "window": 32, "stride": 24},
                "cpu_inference_dtype": "bfloat16",
            }
        },
    )
    nlp.initialize()
    assert pipeline_cpu_inference_dtype(nlp) == "bfloat16"
    before = _hidden_states(nlp, TEXTS)
    nlp.to_disk(tmp_path / "model")
    loaded = spacy.load(tmp_path / "model")
    assert loaded.config["components"]["transformer"]["model"]["cpu_inference_dtype"] == "bfloat16"
    assert pipeline_cpu_inference_dtype(loaded) == "bfloat16"
    for a, b in zip(before, _hidden_states(loaded, TEXTS)):
        numpy.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_annotate_reports_and_checks_the_dtype(stock_pipeline, tmp_path):
    source = tmp_path / "in.txt"
    source.write_text("\n".join(TEXTS) + "\n", encoding="utf8")
    summary = annotate(stock_pipeline, source, tmp_path / "out.jsonl", cpu_dtype="bfloat16", progress=False)
    assert summary["cpu_dtype"] == "bfloat16" and summary["lines"] == 2
    summary = annotate(stock_pipeline, source, tmp_path / "out.jsonl", progress=False)
    assert summary["cpu_dtype"] == "float32"
    with pytest.raises(AnnotateError, match="cpu_dtype 'fp8' is not one of auto, float32, bfloat16"):
        load_pipeline(stock_pipeline, cpu_dtype="fp8")
