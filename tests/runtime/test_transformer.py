"""bfloat16 prediction on CPU: ner_component.TransformerModel.v1 and the runtime switch."""
import re
from pathlib import Path

import numpy
import pytest
import spacy

from ner_component.annotate.local import AnnotateError, annotate, load_pipeline
from ner_component.runtime.transformer import (
    apply_cpu_inference_dtype,
    cpu_has_native_bf16,
    pipeline_cpu_inference_dtype,
    resolve_cpu_inference_dtype,
)
from tests.pipelines import build_transformer_pipeline

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


def test_a_onednn_limit_below_bf16_is_no_native_bf16(tmp_path):
    """Held below AVX512_CORE_BF16 (a newer CPU made to compute as an AVX2 one),
    oneDNN emulates bfloat16, so "auto" must pick float32 there."""
    bf16 = _cpuinfo(tmp_path, "avx512f avx512_bf16")
    for held in ({"ONEDNN_MAX_CPU_ISA": "AVX2"}, {"ONEDNN_MAX_CPU_ISA": "avx512_core_vnni"},
                 {"ONEDNN_MAX_CPU_ISA": " AVX512_CORE "}, {"DNNL_MAX_CPU_ISA": "AVX2_VNNI_2"}):
        assert not cpu_has_native_bf16(bf16, held), held
    for free in ({}, {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_BF16"}, {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_AMX"},
                 {"ONEDNN_MAX_CPU_ISA": "ALL"}, {"ONEDNN_MAX_CPU_ISA": ""}):
        assert cpu_has_native_bf16(bf16, free), free
    assert not cpu_has_native_bf16(_cpuinfo(tmp_path, "avx2"), {"ONEDNN_MAX_CPU_ISA": "ALL"})


def test_auto_is_float32_where_onednn_is_held_below_bf16(monkeypatch):
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    assert resolve_cpu_inference_dtype("auto") == "float32"
    assert resolve_cpu_inference_dtype("auto", "cpu_training_dtype") == "float32"


def test_auto_follows_the_cpu(monkeypatch):
    import ner_component.runtime.transformer as module

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


def _our_transformer(tiny_bert: Path, **settings) -> spacy.Language:
    """blank "en" + ner_component.TransformerModel.v1 on the tiny BERT, initialized."""
    nlp = spacy.blank("en")
    model = {
        "@architectures": "ner_component.TransformerModel.v1",
        "name": str(tiny_bert),
        "tokenizer_config": {"use_fast": True},
        "get_spans": {"@span_getters": "spacy-transformers.strided_spans.v1", "window": 32, "stride": 24},
    }
    nlp.add_pipe("transformer", config={"model": {**model, **settings}})
    nlp.initialize()
    return nlp


def test_config_setting_survives_saving_and_loading(tiny_bert, tmp_path):
    nlp = _our_transformer(tiny_bert, cpu_inference_dtype="bfloat16")
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


def test_length_chunks_hold_at_most_the_budget():
    from ner_component.runtime.transformer import plan_length_chunks

    # 10 | 8 8 | 3 3 3 1 (12 positions; 10 8 with 8 3 ... would pad more or exceed 20)
    assert plan_length_chunks([10, 8, 8, 3, 3, 3, 1], 20) == [(0, 1), (1, 3), (3, 7)]
    # A span longer than the budget still gets a chunk of its own.
    assert plan_length_chunks([50, 40, 2], 30) == [(0, 1), (1, 2), (2, 3)]
    assert plan_length_chunks([], 30) == []
    assert plan_length_chunks([0, 0], 4) == [(0, 2)]


def test_length_chunks_weigh_padding_against_passes():
    import random

    from ner_component.runtime.transformer import plan_length_chunks

    # One pass pads 4 spans of 3 to 9 (24 wasted positions): worth it only while a pass costs more
    assert plan_length_chunks([9, 9, 3, 3, 3, 3], 100, pass_cost=4) == [(0, 2), (2, 6)]
    assert plan_length_chunks([9, 9, 3, 3, 3, 3], 100, pass_cost=48) == [(0, 6)]
    rng = random.Random(0)
    lengths = sorted((rng.choice([3, 4, 5, 8, 12, 20, 30, 60]) for _ in range(256)), reverse=True)
    chunks = plan_length_chunks(lengths, 1024)
    assert [start for start, _ in chunks] == [0] + [end for _, end in chunks[:-1]] and chunks[-1][1] == 256
    assert all((end - start) * lengths[start] <= 1024 for start, end in chunks)
    padded = sum((end - start) * lengths[start] for start, end in chunks)
    # cutting greedily at the budget pads about a quarter of these; the plan, under 5%
    greedy, start = 0, 0
    while start < len(lengths):
        end = min(len(lengths), start + 1024 // lengths[start])
        greedy += (end - start) * lengths[start]
        start = end
    assert padded < 1.05 * sum(lengths) < greedy


LONG_AND_SHORT = [
    "Paris",
    " ".join(["Angela Merkel met Emmanuel Macron in Berlin ."] * 9),
    "Google",
    "John Smith works for the United Nations in New York",
    " ".join(["Kraków is in Poland ."] * 14),
    "",
    "Rome",
]


def test_chunked_prediction_matches_one_padded_pass(stock_pipeline):
    from ner_component.runtime.transformer import set_predict_token_budget

    nlp = spacy.load(stock_pipeline)
    model = nlp.get_pipe("transformer").model
    shim = model.layers[0].shims[0]
    shapes = []
    hook = shim._model.register_forward_hook(lambda module, args, kwargs, out: shapes.append(tuple(kwargs["input_ids"].shape)), with_kwargs=True)
    try:
        set_predict_token_budget(model, 0)
        reference = list(nlp.pipe(LONG_AND_SHORT, batch_size=len(LONG_AND_SHORT)))
        assert len(shapes) == 1
        n_spans, width = shapes[0]
        shapes.clear()
        set_predict_token_budget(model, 64)
        chunked = list(nlp.pipe(LONG_AND_SHORT, batch_size=len(LONG_AND_SHORT)))
    finally:
        hook.remove()
    # Several forward passes, none over the budget unless one span is, shortest padding.
    assert len(shapes) > 2 and sum(rows for rows, _ in shapes) == n_spans
    assert all(rows * length <= 64 or rows == 1 for rows, length in shapes)
    assert max(length for _, length in shapes) == width
    assert sum(rows * length for rows, length in shapes) < n_spans * width * 0.7
    for ref, new in zip(reference, chunked):
        a, b = ref._.trf_data, new._.trf_data
        if not len(ref):
            continue
        assert a.tensors[0].shape == b.tensors[0].shape
        idx = a.align.data.ravel()
        flat_a = numpy.asarray(a.tensors[0]).reshape(-1, a.width)[idx]
        flat_b = numpy.asarray(b.tensors[0]).reshape(-1, b.width)[idx]
        numpy.testing.assert_allclose(flat_a, flat_b, rtol=1e-4, atol=1e-5)
        assert [(e.start, e.end, e.label_) for e in ref.ents] == [(e.start, e.end, e.label_) for e in new.ents]


def test_left_padded_batches_are_not_chunked(stock_pipeline):
    import torch
    from thinc.api import ArgsKwargs

    from ner_component.runtime.transformer import set_predict_token_budget

    nlp = spacy.load(stock_pipeline)
    model = nlp.get_pipe("transformer").model
    set_predict_token_budget(model, 8)
    shim = model.layers[0].shims[0]
    mask = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])
    ids = torch.tensor([[0, 0, 101, 2000, 102], [101, 2000, 2001, 2002, 102]])
    calls = []
    hook = shim._model.register_forward_hook(lambda *args: calls.append(1))
    try:
        out = shim.predict(ArgsKwargs(args=(), kwargs={"input_ids": ids, "attention_mask": mask}))
    finally:
        hook.remove()
    assert len(calls) == 1 and out.last_hidden_state.shape[:2] == (2, 5)


def test_predict_token_budget_is_checked_and_saved(tiny_bert, tmp_path):
    from ner_component.runtime.transformer import set_predict_token_budget

    nlp = _our_transformer(tiny_bert, predict_token_budget=128)
    model = nlp.get_pipe("transformer").model
    assert model.layers[0].shims[0].predict_token_budget == 128
    nlp.to_disk(tmp_path / "model")
    loaded = spacy.load(tmp_path / "model")
    assert loaded.get_pipe("transformer").model.layers[0].shims[0].predict_token_budget == 128
    with pytest.raises(ValueError, match="predict_token_budget must be an integer >= 0, got -1"):
        set_predict_token_budget(model, -1)


def test_the_pass_cost_follows_the_prediction_dtype(stock_pipeline):
    """"auto" weighs one more pass at 48 positions in float32 and 256 under CPU
    bfloat16 autocast (emulated where the CPU lacks it); a number holds in either."""
    import torch
    from thinc.api import ArgsKwargs

    from ner_component.runtime.transformer import (
        set_cpu_inference_dtype,
        set_predict_pass_cost,
        set_predict_token_budget,
    )

    nlp = spacy.load(stock_pipeline)
    model = nlp.get_pipe("transformer").model
    shim = model.layers[0].shims[0]
    set_predict_token_budget(model, 2048)
    # two spans of 30 and eight of 20: one pass pads the eight by 80 positions in all
    lengths = [20, 30, 20, 20, 20, 30, 20, 20, 20, 20]
    mask = torch.tensor([[1] * n + [0] * (30 - n) for n in lengths])
    inputs = ArgsKwargs(args=(), kwargs={"input_ids": mask * 2000, "attention_mask": mask})
    shapes = []
    hook = shim._model.register_forward_hook(lambda module, args, kwargs, out: shapes.append(tuple(kwargs["input_ids"].shape)), with_kwargs=True)

    def passes(dtype, cost):
        set_cpu_inference_dtype(model, dtype)
        set_predict_pass_cost(model, cost)
        shapes.clear()
        assert shim.predict(inputs).last_hidden_state.shape[:2] == (10, 30)
        return list(shapes)

    try:
        assert passes("float32", "auto") == [(2, 30), (8, 20)]
        assert passes("bfloat16", "auto") == [(10, 30)]
        assert passes("bfloat16", 48) == [(2, 30), (8, 20)]
        assert passes("float32", 256) == [(10, 30)]
    finally:
        hook.remove()
    assert model.attrs["predict_pass_cost"] == 256
    for bad in (-1, 1.5, True, "fast"):
        with pytest.raises(ValueError, match=f'predict_pass_cost must be "auto" or an integer >= 0, got {re.escape(repr(bad))}'):
            set_predict_pass_cost(model, bad)


def test_the_pass_cost_is_read_from_the_config(tiny_bert, tmp_path):
    nlp = _our_transformer(tiny_bert, predict_pass_cost=96)
    assert nlp.get_pipe("transformer").model.layers[0].shims[0].predict_pass_cost == 96
    nlp.to_disk(tmp_path / "model")
    loaded = spacy.load(tmp_path / "model")
    assert loaded.get_pipe("transformer").model.layers[0].shims[0].predict_pass_cost == 96
    assert _our_transformer(tiny_bert).get_pipe("transformer").model.layers[0].shims[0].predict_pass_cost is None


def test_chunking_keeps_every_output_in_its_place(stock_pipeline):
    """hidden_states (one tensor per layer) and pooler_output are put back too."""
    import torch
    from thinc.api import ArgsKwargs

    from ner_component.runtime.transformer import set_predict_token_budget

    nlp = spacy.load(stock_pipeline)
    model = nlp.get_pipe("transformer").model
    shim = model.layers[0].shims[0]
    set_predict_token_budget(model, 0)
    shim._model.config.output_hidden_states = True
    mask = torch.tensor([[1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 1], [1, 1, 0, 0, 0, 0]])
    ids = torch.tensor([[101, 2000, 102, 0, 0, 0], [101, 2000, 2001, 2002, 2003, 102], [101, 102, 0, 0, 0, 0]])
    inputs = ArgsKwargs(args=(), kwargs={"input_ids": ids, "attention_mask": mask})
    one_pass = shim.predict(inputs)
    set_predict_token_budget(model, 6)
    chunked = shim.predict(inputs)
    assert set(chunked.keys()) == set(one_pass.keys()) and "hidden_states" in chunked
    real = mask.bool()
    torch.testing.assert_close(chunked.last_hidden_state[real], one_pass.last_hidden_state[real], rtol=1e-4, atol=1e-5)
    assert len(chunked.hidden_states) == len(one_pass.hidden_states)
    for a, b in zip(chunked.hidden_states, one_pass.hidden_states):
        assert a.shape == b.shape
        torch.testing.assert_close(a[real], b[real], rtol=1e-4, atol=1e-5)
    if "pooler_output" in one_pass:
        torch.testing.assert_close(chunked.pooler_output, one_pass.pooler_output, rtol=1e-4, atol=1e-5)


# ------------------------------------------------------------------ the shim class


def test_our_architecture_builds_the_shim_subclass_without_swapping(tiny_bert, monkeypatch):
    """`ner_component.TransformerModel.v1` constructs its shim as the subclass: the
    class change in `_shim` is left for pipelines of spacy-transformers' own layer."""
    import ner_component.runtime.transformer as module

    def no_swap(model):
        shim = model.layers[0].shims[0]
        assert isinstance(shim, module._autocast_shim_class()), type(shim)
        return shim

    monkeypatch.setattr(module, "_shim", no_swap)
    nlp = _our_transformer(tiny_bert, cpu_inference_dtype="float32", predict_token_budget=64)
    shim = nlp.get_pipe("transformer").model.layers[0].shims[0]
    assert type(shim) is module._autocast_shim_class()
    assert shim.predict_token_budget == 64 and shim.cpu_inference_dtype == "float32"


def test_the_shim_subclass_adds_no_instance_state():
    """What makes `_shim`'s class change of an existing HFShim safe."""
    from spacy_transformers.layers.hf_shim import HFShim

    from ner_component.runtime.transformer import _autocast_shim_class

    cls = _autocast_shim_class()
    assert cls.__bases__ == (HFShim,)
    assert "__init__" not in vars(cls) and "__slots__" not in vars(cls)
    assert {name for name, value in vars(cls).items() if not callable(value) and not name.startswith("__")} == {
        "cpu_inference_dtype",
        "cpu_training_dtype",
        "predict_token_budget",
        "predict_pass_cost",
        "train_token_budget",
        "train_pass_cost",
        "layer_lr_decay",
    }


def test_loading_fills_the_shim_in_place(tiny_bert, tmp_path):
    """spacy-transformers' from_bytes/from_disk load into the shim the architecture
    built (thinc's Model.from_bytes calls HFShim.from_bytes on it), so it keeps its
    class and settings; a pipeline saved by the stock layer loads into ours."""
    from ner_component.runtime.transformer import _autocast_shim_class

    nlp = _our_transformer(tiny_bert, cpu_inference_dtype="float32", predict_token_budget=96)
    before = _hidden_states(nlp, TEXTS)
    copy = spacy.blank("en").from_config(nlp.config)
    shim = copy.get_pipe("transformer").model.layers[0].shims[0]
    copy.from_bytes(nlp.to_bytes())
    assert copy.get_pipe("transformer").model.layers[0].shims[0] is shim
    assert type(shim) is _autocast_shim_class() and shim.predict_token_budget == 96
    for a, b in zip(before, _hidden_states(copy, TEXTS)):
        numpy.testing.assert_array_equal(a, b)
    # the stock layer's weights, loaded by our architecture from disk
    stock = _our_transformer(tiny_bert)
    nlp.get_pipe("transformer").to_disk(tmp_path / "transformer")
    stock.get_pipe("transformer").from_disk(tmp_path / "transformer")
    assert type(stock.get_pipe("transformer").model.layers[0].shims[0]) is _autocast_shim_class()


def test_stock_pipelines_get_the_subclass_at_run_time(stock_pipeline):
    from spacy_transformers.layers.hf_shim import HFShim

    from ner_component.runtime.transformer import _autocast_shim_class, apply_predict_token_budget

    nlp = spacy.load(stock_pipeline)
    shim = nlp.get_pipe("transformer").model.layers[0].shims[0]
    assert type(shim) is HFShim
    assert apply_predict_token_budget(nlp, 64) == 64
    assert nlp.get_pipe("transformer").model.layers[0].shims[0] is shim
    assert type(shim) is _autocast_shim_class() and shim.predict_token_budget == 64


# ------------------------------------------------------------- mutable defaults


def test_config_dicts_default_to_frozen_and_are_copied(tiny_bert):
    """spacy-transformers writes into the dicts it is given (grad_scaler_config
    "enabled", transformer_config "return_dict"): it gets copies, never the
    frozen defaults (which would raise) nor the caller's dicts."""
    import inspect

    from spacy.util import SimpleFrozenDict
    from spacy_transformers.span_getters import configure_strided_spans

    from ner_component.runtime.transformer import create_transformer_model

    params = inspect.signature(create_transformer_model).parameters
    for name in ("tokenizer_config", "transformer_config", "grad_scaler_config"):
        assert isinstance(params[name].default, SimpleFrozenDict), name
    get_spans = configure_strided_spans(window=32, stride=24)
    defaults = create_transformer_model(str(tiny_bert), get_spans)
    defaults.initialize()
    assert defaults._init_transformer_config == {"return_dict": True}
    given = {"tokenizer_config": {"use_fast": True}, "transformer_config": {}, "grad_scaler_config": {}}
    model = create_transformer_model(str(tiny_bert), get_spans, **given)
    model.initialize()
    assert given == {"tokenizer_config": {"use_fast": True}, "transformer_config": {}, "grad_scaler_config": {}}
    assert model._init_transformer_config is not defaults._init_transformer_config
    assert all(not params[name].default for name in ("tokenizer_config", "transformer_config", "grad_scaler_config"))


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_training_step_in_either_dtype(tiny_bert, dtype):
    """A training step's forward pass under CPU bfloat16 autocast (emulated on CPUs
    without native bfloat16) returns float32 hidden states that backpropagate into
    float32 weights; float32 is the default."""
    import torch

    nlp = _our_transformer(tiny_bert, cpu_training_dtype=dtype)
    model = nlp.get_pipe("transformer").model
    assert model.attrs["cpu_training_dtype"] == dtype
    docs = [nlp.make_doc(text) for text in TEXTS]
    torch.manual_seed(0)  # the same dropout masks as the float32 reference
    output, backprop = model.begin_update(docs)
    hidden = output.model_output.last_hidden_state
    assert hidden.dtype == torch.float32 and hidden.requires_grad
    float32_model = _our_transformer(tiny_bert).get_pipe("transformer").model
    torch.manual_seed(0)
    reference, _ = float32_model.begin_update(docs)
    reference = reference.model_output.last_hidden_state.detach()
    tolerance = 1e-4 if dtype == "float32" else 0.1
    torch.testing.assert_close(hidden.detach(), reference, rtol=tolerance, atol=tolerance)
    shim = model.layers[0].shims[0]
    weights = [p for p in shim._model.parameters() if p.requires_grad]
    assert all(p.dtype == torch.float32 for p in weights)
    backprop(_ones_like(output))
    grads = [p.grad for p in weights if p.grad is not None]
    assert grads and all(g.dtype == torch.float32 and torch.isfinite(g).all() for g in grads)
    assert any(float(g.abs().sum()) > 0 for g in grads)


NO_DROPOUT = {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_chunked_training_step_matches_one_padded_pass(tiny_bert, dtype):
    """`train_token_budget`: a training step's forward pass over spans sorted by
    length in chunks (each within the budget, least padding), in either dtype, gives
    the hidden states and weight gradients of one padded pass (dropout off; the
    gradient at padding is zero, as a listener's is)."""
    import torch

    results = {}
    for budget in (0, 48):
        nlp = _our_transformer(
            tiny_bert, transformer_config=NO_DROPOUT, cpu_training_dtype=dtype, train_token_budget=budget, train_pass_cost=0
        )
        model = nlp.get_pipe("transformer").model
        assert model.attrs["train_token_budget"] == budget
        shim = model.layers[0].shims[0]
        shapes = []
        hook = shim._model.register_forward_hook(
            lambda module, args, kwargs, out: shapes.append(tuple(kwargs["input_ids"].shape)), with_kwargs=True
        )
        try:
            output, backprop = model.begin_update([nlp.make_doc(text) for text in LONG_AND_SHORT])
        finally:
            hook.remove()
        hidden = output.model_output.last_hidden_state
        assert hidden.dtype == torch.float32 and hidden.requires_grad
        mask = output.wordpieces.attention_mask
        mask = torch.as_tensor(numpy.asarray(mask), dtype=hidden.dtype)[..., None]
        gradient = _ones_like(output)
        gradient.model_output.last_hidden_state.mul_(mask)
        backprop(gradient)
        weights = dict(shim._model.named_parameters())
        results[budget] = (shapes, (hidden * mask).detach(), {name: w.grad.clone() for name, w in weights.items() if w.grad is not None})
    (padded_shapes, reference, reference_grads), (shapes, hidden, grads) = results[0], results[48]
    assert len(padded_shapes) == 1
    n_spans, width = padded_shapes[0]
    assert len(shapes) > 2 and sum(rows for rows, _ in shapes) == n_spans
    assert all(rows * length <= 48 or rows == 1 for rows, length in shapes)
    assert sum(rows * length for rows, length in shapes) < n_spans * width * 0.7
    tolerance = 1e-4 if dtype == "float32" else 0.05
    torch.testing.assert_close(hidden, reference, rtol=tolerance, atol=tolerance)
    assert grads.keys() == reference_grads.keys() and grads
    for name, grad in grads.items():
        torch.testing.assert_close(grad, reference_grads[name], rtol=tolerance, atol=tolerance * 10, msg=name)


def test_train_token_budget_is_checked_and_kept_by_copies(tiny_bert):
    from ner_component.runtime.transformer import set_train_pass_cost, set_train_token_budget

    nlp = _our_transformer(tiny_bert, train_token_budget=512, train_pass_cost=96)
    model = nlp.get_pipe("transformer").model
    shim = model.layers[0].shims[0]
    assert (shim.train_token_budget, shim.train_pass_cost) == (512, 96)
    copied = model.copy().layers[0].shims[0]
    assert (copied.train_token_budget, copied.train_pass_cost) == (512, 96)
    assert set_train_pass_cost(model, "auto") == "auto" and shim.train_pass_cost is None
    for bad in (-1, 1.5, True, "2048"):
        with pytest.raises(ValueError, match=f"train_token_budget must be an integer >= 0, got {re.escape(repr(bad))}"):
            set_train_token_budget(model, bad)
    with pytest.raises(ValueError, match="train_pass_cost must be \"auto\" or an integer >= 0, got -2"):
        set_train_pass_cost(model, -2)


def test_averaged_weights_reach_the_transformer(tiny_bert):
    """With `use_averages = true`, `nlp.use_params(optimizer.averages)` (spaCy's dev
    scoring and saving) puts the averaged weights into the transformer and the
    trained ones back afterwards; frozen weights keep their values throughout.
    thinc's own PyTorchShim.use_params looks for other keys and would change nothing."""
    import torch
    from thinc.api import Adam

    nlp = _our_transformer(tiny_bert)
    model = nlp.get_pipe("transformer").model
    shim = model.layers[0].shims[0]
    frozen = "embeddings.word_embeddings.weight"
    shim._model.get_parameter(frozen).requires_grad_(False)
    optimizer = Adam(0.01, use_averages=True)
    docs = [nlp.make_doc(text) for text in TEXTS]
    for _ in range(3):
        output, backprop = model.begin_update(docs)
        backprop(_ones_like(output))
        model.finish_update(optimizer)
    weights = dict(shim._model.named_parameters())
    trained = {name: value.detach().clone() for name, value in weights.items()}
    averaged = {key[1]: torch.from_numpy(value) for key, value in optimizer.averages.items() if key[0] == shim.id}
    assert averaged and frozen not in averaged
    assert set(averaged) == {name for name, value in weights.items() if value.grad is not None}
    name = "encoder.layer.0.attention.self.query.weight"
    assert not torch.equal(averaged[name], trained[name])
    before = _hidden_states(nlp, TEXTS)
    with nlp.use_params(optimizer.averages):
        for key, value in averaged.items():
            torch.testing.assert_close(weights[key].detach(), value)
        assert torch.equal(weights[frozen], trained[frozen])
        during = _hidden_states(nlp, TEXTS)
    for key, value in trained.items():
        assert torch.equal(weights[key].detach(), value)
    assert not all(numpy.allclose(a, b) for a, b in zip(before, during))
    for a, b in zip(before, _hidden_states(nlp, TEXTS)):
        numpy.testing.assert_array_equal(a, b)


def test_layer_lr_scales_follow_the_layers(tiny_bert):
    from ner_component.runtime.transformer import layer_lr_scales

    hf_model = _our_transformer(tiny_bert).get_pipe("transformer").model.layers[0].shims[0]._model
    top = hf_model.config.num_hidden_layers - 1
    scales = layer_lr_scales(hf_model, 0.5)
    assert scales[f"encoder.layer.{top}.output.dense.weight"] == 1.0
    assert scales["encoder.layer.0.attention.self.query.weight"] == 0.5**top
    assert scales["embeddings.word_embeddings.weight"] == 0.5 ** (top + 1)
    assert "pooler.dense.weight" not in scales
    assert set(layer_lr_scales(hf_model, 1.0).values()) == {1.0}


@pytest.mark.parametrize("decay", [0, -0.5, 1.5, True, "0.9"])
def test_layer_lr_decay_is_checked(tiny_bert, decay):
    with pytest.raises(ValueError, match="layer_lr_decay"):
        _our_transformer(tiny_bert, layer_lr_decay=decay)


def test_layer_lr_decay_scales_each_layers_step(tiny_bert):
    """One plain SGD step: with decay d the top layer moves as without decay, the
    lowest layer d**top as far, the embeddings d**(top + 1); the setting is saved."""
    import torch
    from thinc.api import SGD

    moves = {}
    for decay in (1.0, 0.5):
        nlp = _our_transformer(tiny_bert, layer_lr_decay=decay)
        model = nlp.get_pipe("transformer").model
        hf_model = model.layers[0].shims[0]._model
        before = {name: value.detach().clone() for name, value in hf_model.named_parameters()}
        torch.manual_seed(0)  # the same dropout masks
        output, backprop = model.begin_update([nlp.make_doc(text) for text in TEXTS])
        backprop(_ones_like(output))
        model.finish_update(SGD(0.1))
        moves[decay] = {name: (value.detach() - before[name]) for name, value in hf_model.named_parameters()}
    top = hf_model.config.num_hidden_layers - 1
    for name, factor in [
        (f"encoder.layer.{top}.output.dense.weight", 1.0),
        ("encoder.layer.0.attention.self.query.weight", 0.5**top),
        ("embeddings.word_embeddings.weight", 0.5 ** (top + 1)),
    ]:
        assert float(moves[1.0][name].abs().sum()) > 0
        torch.testing.assert_close(moves[0.5][name], moves[1.0][name] * factor)
    assert nlp.config["components"]["transformer"]["model"]["layer_lr_decay"] == 0.5


def _ones_like(output):
    """The gradient of the sum of the hidden states: ones."""
    import torch
    from spacy_transformers.data_classes import FullTransformerBatch
    from transformers.modeling_outputs import BaseModelOutput

    ones = BaseModelOutput(last_hidden_state=torch.ones_like(output.model_output.last_hidden_state))
    return FullTransformerBatch(spans=output.spans, wordpieces=output.wordpieces, model_output=ones, align=output.align)

# ------------------------------------------------------- spans cut at tokenization

# CJK characters: the tiny BERT's tokenizer (MiniLM's) makes each one a wordpiece.
HAN = "北京香港廣州東京上海台灣新加坡"
# Spans over the model's 512 positions among short ones: one token of 600
# characters, three of 300, and a text of several windows of such tokens.
OVERSIZE = TEXTS + [HAN * 40, " ".join([HAN * 20] * 3), " ".join(["Paris", HAN * 10] * 30), "Rome"]


def _ours_and_stock(tiny_bert):
    """Our architecture (float32, unchunked) and spacy-transformers' own, with the same weights."""
    from tests.pipelines import add_transformer

    ours = _our_transformer(tiny_bert, cpu_inference_dtype="float32", predict_token_budget=0)
    stock = spacy.blank("en")
    add_transformer(stock, tiny_bert, window=32, stride=24)
    stock.initialize()
    stock.get_pipe("transformer").from_bytes(ours.get_pipe("transformer").to_bytes())
    return ours, stock


def _tokenized_widths(monkeypatch):
    """Record the padded width of every tokenization in the transformer's forward pass."""
    import spacy_transformers.layers.transformer_model as module

    widths = []
    tokenize = module.huggingface_tokenize

    def recording(tokenizer, texts):
        encoding = tokenize(tokenizer, texts)
        widths.append(encoding["input_ids"].shape[1])
        return encoding

    monkeypatch.setattr(module, "huggingface_tokenize", recording)
    return widths


def test_oversize_spans_are_cut_before_padding_with_the_same_result(tiny_bert, monkeypatch):
    """spacy-transformers pads every span of a batch to the longest before it cuts
    them at 512 positions; ours cuts at 513 first. The model's input, the alignment
    and the hidden states are the same, in prediction and in a training step."""
    ours, stock = _ours_and_stock(tiny_bert)
    widths = _tokenized_widths(monkeypatch)
    ours_docs = list(ours.pipe(OVERSIZE, batch_size=len(OVERSIZE)))
    ours_width = widths.pop()
    stock_docs = list(stock.pipe(OVERSIZE, batch_size=len(OVERSIZE)))
    stock_width = widths.pop()
    assert ours_width == 513 and stock_width > 2000  # 16 tokens of 150 characters in one window
    for a, b in zip(ours_docs, stock_docs):
        x, y = a._.trf_data, b._.trf_data
        numpy.testing.assert_array_equal(x.wordpieces.input_ids, y.wordpieces.input_ids)
        numpy.testing.assert_array_equal(x.wordpieces.attention_mask, y.wordpieces.attention_mask)
        assert x.wordpieces.strings == y.wordpieces.strings
        numpy.testing.assert_array_equal(x.align.data, y.align.data)
        numpy.testing.assert_array_equal(x.align.lengths, y.align.lengths)
        numpy.testing.assert_allclose(numpy.asarray(x.tensors[0]), numpy.asarray(y.tensors[0]), rtol=1e-5, atol=1e-6)
    assert max(doc._.trf_data.wordpieces.input_ids.shape[1] for doc in ours_docs) == 512
    # a token past the 512th wordpiece gets no wordpiece, in both
    assert ours_docs[3]._.trf_data.align.lengths[-1] == 0
    docs = [ours.make_doc(text) for text in OVERSIZE]
    out_ours, _ = ours.get_pipe("transformer").model.begin_update(docs)
    out_stock, _ = stock.get_pipe("transformer").model.begin_update([stock.make_doc(text) for text in OVERSIZE])
    numpy.testing.assert_array_equal(out_ours.wordpieces.input_ids, out_stock.wordpieces.input_ids)
    numpy.testing.assert_array_equal(out_ours.align.data, out_stock.align.data)


def test_the_cut_warns_once_and_the_saved_tokenizer_is_the_original(tiny_bert, tmp_path, caplog):
    import logging

    from ner_component.runtime.transformer import _transformer_model_class, _warn_cut_once

    ours, _ = _ours_and_stock(tiny_bert)
    model = ours.get_pipe("transformer").model
    _warn_cut_once.cache_clear()
    with caplog.at_level(logging.WARNING, logger="ner_component.runtime.transformer"):
        list(ours.pipe(OVERSIZE))
        list(ours.pipe(OVERSIZE))
    assert [r.getMessage() for r in caplog.records].count(
        "A span of more than 512 wordpieces: its wordpieces past the 512th are dropped "
        "(spacy-transformers' truncation), and the tokens there get zero vectors"
    ) == 1
    saved = model.layers[0].shims[0]._hfmodel.tokenizer
    assert not type(saved).__name__.startswith("Cut") and type(model.tokenizer).__bases__ == (type(saved),)
    assert model.tokenizer.__dict__ is saved.__dict__
    ours.to_disk(tmp_path / "model")
    loaded = spacy.load(tmp_path / "model")
    assert type(loaded.get_pipe("transformer").model) is _transformer_model_class()
    assert type(loaded.get_pipe("transformer").model.copy()) is _transformer_model_class()
    assert [len(doc._.trf_data.align.lengths) for doc in loaded.pipe(OVERSIZE)] == [len(doc) for doc in ours.pipe(OVERSIZE)]



@pytest.mark.parametrize("saved_native, loaded_native", [(True, False), (False, True)])
def test_auto_resolves_on_the_machine_that_loads(tiny_bert, tmp_path, monkeypatch, saved_native, loaded_native):
    """A pipeline saved where "auto" meant bfloat16 predicts and reports float32 where
    the CPU lacks it, and the reverse: thinc restores the saved attrs, but the dtype
    is this machine's (the other CPU kind is forced either way)."""
    import ner_component.runtime.transformer as module

    monkeypatch.setattr(module, "cpu_has_native_bf16", lambda: saved_native)
    nlp = _our_transformer(tiny_bert, cpu_inference_dtype="auto", cpu_training_dtype="auto")
    saved = "bfloat16" if saved_native else "float32"
    assert pipeline_cpu_inference_dtype(nlp) == saved
    nlp.to_disk(tmp_path / "model")
    monkeypatch.setattr(module, "cpu_has_native_bf16", lambda: loaded_native)
    loaded = spacy.load(tmp_path / "model")
    here = "bfloat16" if loaded_native else "float32"
    model = loaded.get_pipe("transformer").model
    shim = model.layers[0].shims[0]
    assert (shim.cpu_inference_dtype, shim.cpu_training_dtype) == (here, here)
    assert (model.attrs["cpu_inference_dtype"], model.attrs["cpu_training_dtype"]) == (here, here)
    assert pipeline_cpu_inference_dtype(loaded) == here

def test_a_copy_keeps_the_settings(tiny_bert):
    # what spaCy's replace_listeners does to the transformer's model
    nlp = _our_transformer(
        tiny_bert, cpu_inference_dtype="float32", predict_token_budget=512, predict_pass_cost=7, layer_lr_decay=0.9
    )
    model = nlp.get_pipe("transformer").model
    copied = model.copy()
    assert copied.attrs == model.attrs
    assert copied.attrs["predict_pass_cost"] == 7 and copied.attrs["cpu_inference_dtype"] == "float32"
    shim, copied_shim = model.layers[0].shims[0], copied.layers[0].shims[0]
    assert copied_shim is not shim
    assert (copied_shim.predict_token_budget, copied_shim.predict_pass_cost) == (512, 7)
    docs = [nlp.make_doc(text) for text in TEXTS]
    numpy.testing.assert_allclose(
        copied.predict(docs).tensors[0], model.predict(docs).tensors[0], rtol=1e-5, atol=1e-5
    )


def test_central_alignment_takes_each_token_from_its_most_central_window():
    from thinc.types import Ragged

    from ner_component.runtime.transformer import central_alignment

    # spans of 10 positions: span 0 is [CLS] t0..t7 [SEP], span 1 [CLS] t5..t8 [SEP];
    # t5, t6, t7 are in both, t9 has no wordpiece
    pieces = [[1], [2], [3], [4], [5], [6, 11], [7, 12], [8, 13], [14], []]
    data = numpy.array([i for p in pieces for i in p], dtype="int32")  # 1-d, as spacy-transformers aligns
    align = Ragged(data, numpy.array([len(p) for p in pieces], dtype="int32"))
    central = central_alignment(align, numpy.array([10, 6]), 10)
    # t5: 3 positions from span 0's end, 1 from span 1's start; t6: 2 and 2 (a tie:
    # the first); t7: 1 and 2
    assert central.dataXd.tolist() == [1, 2, 3, 4, 5, 6, 7, 13, 14]
    assert central.lengths.tolist() == [1] * 9 + [0]
    single = Ragged(numpy.arange(1, 9, dtype="int32"), numpy.ones(8, dtype="int32"))
    assert central_alignment(single, numpy.array([10]), 10) is single


def test_tokens_in_two_windows_take_the_more_central_one(tiny_bert):
    """A doc over several windows: each token's vectors come from one window, the one
    where it is furthest from an edge; a doc in one window is aligned as
    spacy-transformers aligns it, and the vectors are the same."""
    ours, stock = _ours_and_stock(tiny_bert)
    text = " ".join(f"w{i}" for i in range(60))  # windows of 32 tokens, every 24
    ours_docs = list(ours.pipe([text, TEXTS[0]]))
    stock_docs = list(stock.pipe([text, TEXTS[0]]))
    short_ours, short_stock = ours_docs[1]._.trf_data, stock_docs[1]._.trf_data
    numpy.testing.assert_array_equal(short_ours.align.data, short_stock.align.data)
    numpy.testing.assert_array_equal(short_ours.align.lengths, short_stock.align.lengths)
    x, y = ours_docs[0]._.trf_data, stock_docs[0]._.trf_data
    width = x.wordpieces.input_ids.shape[1]
    assert len(x.wordpieces.lengths) == 3 and y.align.lengths.max() > x.align.lengths.max()
    assert x.align.dataXd.shape[1:] == y.align.dataXd.shape[1:]
    rows, moved = [], 0
    for i, (ours_pieces, stock_pieces) in enumerate(zip(x.align, y.align)):
        ours_index, stock_index = ours_pieces.dataXd.ravel(), stock_pieces.dataXd.ravel()
        ours_rows = set((ours_index // width).tolist())
        assert len(ours_rows) == 1 and set(ours_index.tolist()) <= set(stock_index.tolist())
        row = ours_rows.pop()
        rows.append(row)
        moved += row != stock_index[0] // width

        def margin(r: int) -> int:
            positions = stock_index[stock_index // width == r] % width
            return min(int(positions.min()), x.wordpieces.lengths[r] - 1 - int(positions.max()))

        assert all(margin(row) >= margin(r) for r in set((stock_index // width).tolist()))
    assert rows == sorted(rows) and moved > 0  # the windows follow each other; some tokens moved on
    vectors = x.tensors[0].reshape(-1, x.tensors[0].shape[-1])
    numpy.testing.assert_allclose(vectors, y.tensors[0].reshape(vectors.shape), rtol=1e-5, atol=1e-6)


def test_a_training_step_over_several_windows(tiny_bert, tmp_path):
    """Training on a doc longer than a window sends the gradient through the central
    windows' wordpieces only; the step runs and the model learns; a saved pipeline
    aligns the same way when loaded."""
    from spacy.training import Example

    from tests.pipelines import add_our_transformer_and_token_ner

    spacy.util.fix_random_seed(0)
    nlp = spacy.blank("en")
    add_our_transformer_and_token_ner(nlp, tiny_bert)  # windows of 64 tokens, every 48
    words = ["Paris", "is", "nice", "."] * 30
    doc = spacy.tokens.Doc(nlp.vocab, words=words, ents=["B-LOC", "O", "O", "O"] * 30)
    examples = [Example(nlp.make_doc(doc.text), doc)]
    optimizer = nlp.initialize(lambda: examples)
    losses = [nlp.update(examples, sgd=optimizer, losses={})["ner"] for _ in range(12)]
    assert all(numpy.isfinite(losses)) and losses[-1] < losses[0]
    assert len(nlp.get_pipe("transformer").model.attrs["get_spans"]([nlp.make_doc(doc.text)])[0]) == 3
    predicted = nlp(doc.text)
    assert set(predicted._.trf_data.align.lengths.tolist()) == {1}  # one wordpiece per token, in one window
    nlp.to_disk(tmp_path / "model")
    loaded = spacy.load(tmp_path / "model")(doc.text)
    numpy.testing.assert_array_equal(loaded._.trf_data.align.dataXd, predicted._.trf_data.align.dataXd)
    assert [e.text for e in loaded.ents] == [e.text for e in predicted.ents]
