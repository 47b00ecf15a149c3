"""Training setup: the config for the language, the tokenizer of character-segmented ones."""
import pytest

from ner_component.errors import NerComponentError
from tests.util import ROOT


def test_auto_config():
    from ner_component.training.train import resolve_config

    assert resolve_config(ROOT / "configs" / "auto").name == "cpu_e5.cfg"
    assert resolve_config(ROOT / "configs" / "cpu.cfg").name == "cpu.cfg"
    with pytest.raises(NerComponentError, match="nope.cfg: training config not found"):
        resolve_config(ROOT / "configs" / "nope.cfg")


def test_character_segmented_languages_get_a_character_tokenizer():
    from ner_component.training.train import character_overrides

    zh = character_overrides(ROOT / "configs" / "cpu_e5.cfg", "zh")
    assert zh["nlp.tokenizer"] == {"@tokenizers": "spacy.zh.ChineseTokenizer", "segmenter": "char"}
    assert zh["components.transformer.model.character_pieces"] is True
    for lang in ("zh-yue", "zh-classical", "ja"):
        assert character_overrides(ROOT / "configs" / "cpu_e5.cfg", lang)["nlp.tokenizer"] == {"@tokenizers": "ner_component.CharacterTokenizer.v1"}

def test_character_pieces_need_our_transformer(tmp_path):
    from ner_component.training.train import character_overrides

    config = (ROOT / "configs" / "cpu_e5.cfg").read_text().replace("ner_component.TransformerModel.v1", "spacy-transformers.TransformerModel.v3")
    (tmp_path / "st.cfg").write_text(config)
    overrides = character_overrides(tmp_path / "st.cfg", "zh-yue")
    assert "components.transformer.model.character_pieces" not in overrides
    assert overrides["nlp.tokenizer"] == {"@tokenizers": "ner_component.CharacterTokenizer.v1"}


def test_a_small_budget_gets_a_short_warmup():
    from ner_component.training.train import warmup_for_budget

    config = ROOT / "configs" / "cpu_e5.cfg"  # warmup_steps = 100
    assert warmup_for_budget(config, 50) == {"training.optimizer.learn_rate.warmup_steps": 5}
    assert warmup_for_budget(config, 330) == {"training.optimizer.learn_rate.warmup_steps": 33}
    assert warmup_for_budget(config, 1000) == {}
    assert warmup_for_budget(config, 2000) == {}
    assert warmup_for_budget(config, 3) == {"training.optimizer.learn_rate.warmup_steps": 1}


@pytest.mark.parametrize("native", [True, False], ids=["bfloat16 CPU", "AVX2 CPU"])
def test_train_info_names_the_dtype_that_ran(monkeypatch, native):
    """"auto" is resolved for the machine, both kinds forced whatever this CPU is."""
    from ner_component.runtime import transformer
    from ner_component.training.train import training_dtype

    monkeypatch.setattr(transformer, "cpu_has_native_bf16", lambda: native)
    config = {"components": {"transformer": {"model": {"cpu_training_dtype": "auto", "mixed_precision": False}}}}
    assert training_dtype(config) == {
        "training_dtype": "bfloat16" if native else "float32",
        "training_dtype_setting": "cpu_training_dtype = auto",
    }
    config["components"]["transformer"]["model"]["cpu_training_dtype"] = "float32"
    assert training_dtype(config)["training_dtype"] == "float32"
    assert training_dtype(config, gpu_id=0) == {"training_dtype": "float32", "training_dtype_setting": "mixed_precision = false"}
    # spacy-transformers' own architecture has no CPU training dtype: float32
    assert training_dtype({"components": {"transformer": {"model": {}}}})["training_dtype"] == "float32"


def test_train_info_names_what_stayed_frozen():
    from ner_component.training.train import frozen_parameters

    freeze = {"@callbacks": "ner_component.freeze_transformer.v1", "patterns": ["embeddings.*"], "lowest_layers": 4}
    assert frozen_parameters({"initialize": {"after_init": freeze}}) == {"frozen_parameters": ["embeddings.*"], "frozen_lowest_layers": 4}
    del freeze["lowest_layers"]
    assert frozen_parameters({"initialize": {"after_init": freeze}})["frozen_lowest_layers"] == 0
    assert frozen_parameters({"initialize": {"after_init": None}}) == {}
    assert frozen_parameters({"initialize": {"after_init": {"@callbacks": "other.v1"}}}) == {}
