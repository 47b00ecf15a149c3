"""Small trained pipelines for the annotation tests, saved to disk as a user's would be."""
from pathlib import Path
from typing import Any, Dict, List, Tuple

import spacy
from spacy.language import Language
from spacy.tokens import Doc, DocBin
from spacy.training import Example

TRAIN_DATA: List[Tuple[str, List[Tuple[int, int, str]]]] = [
    ("Barack Obama visited Paris today", [(0, 12, "PER"), (21, 26, "LOC")]),
    ("Google hired John Smith in London", [(0, 6, "ORG"), (13, 23, "PER"), (27, 33, "LOC")]),
    ("The United Nations met in New York City", [(4, 18, "ORG"), (26, 39, "LOC")]),
    ("Nothing happened here", []),
]
# A CNN tok2vec small enough for unit tests.
TINY_TOK2VEC: Dict[str, Any] = {
    "@architectures": "spacy.HashEmbedCNN.v2",
    "pretrained_vectors": None,
    "width": 16,
    "depth": 1,
    "embed_size": 500,
    "window_size": 1,
    "maxout_pieces": 2,
    "subword_features": True,
}
# Gold sentences of the benchmark tests' test corpora (words, IOB2 tags).
BENCHMARK_SENTENCES: List[Tuple[List[str], List[str]]] = [
    (["Zoë", "moved", "to", "Zürich", "."], ["B-PER", "O", "O", "B-LOC", "O"]),
    (["Acme", "Corp", "hired", "her", "in", "東京"], ["B-ORG", "I-ORG", "O", "O", "O", "B-LOC"]),
    (["Nothing", "here"], ["O", "O"]),
]
# The entity ruler after `ner` makes some entities certain, whatever the tiny
# random transformer predicts, so order and offset checks have something to check.
RULER_PATTERNS = [
    {"label": "LOC", "pattern": "Zürich"},
    {"label": "LOC", "pattern": "東京"},
    {"label": "ORG", "pattern": [{"LOWER": "acme"}, {"LOWER": "corp"}]},
    {"label": "PER", "pattern": "Zoë"},
]


def add_transformer(nlp: Language, bert_dir: Path, window: int, stride: int) -> None:
    """spacy-transformers' transformer over `bert_dir`, in strided windows."""
    model = {
        "@architectures": "spacy-transformers.TransformerModel.v3",
        "name": str(bert_dir),
        "tokenizer_config": {"use_fast": True},
        "get_spans": {"@span_getters": "spacy-transformers.strided_spans.v1", "window": window, "stride": stride},
    }
    nlp.add_pipe("transformer", config={"model": model})


def add_our_transformer_and_token_ner(nlp: Language, bert_dir: Path, **settings: Any) -> None:
    """ner_component.TransformerModel.v1 over `bert_dir` (float32, windows of 64) and
    `token_ner` listening to it, as the project's configs build them."""
    nlp.add_pipe("transformer", config={"model": {
        "@architectures": "ner_component.TransformerModel.v1",
        "name": str(bert_dir),
        "tokenizer_config": {"use_fast": True},
        "cpu_inference_dtype": "float32",
        "get_spans": {"@span_getters": "spacy-transformers.strided_spans.v1", "window": 64, "stride": 48},
        **settings,
    }})
    nlp.add_pipe("token_ner", name="ner", config={"model": {
        "@architectures": "ner_component.TokenClassifier.v1",
        "lr_scale": 30.0,
        "tok2vec": {
            "@architectures": "spacy-transformers.TransformerListener.v1",
            "grad_factor": 1.0,
            "pooling": {"@layers": "ner_component.reduce_first.v1"},
        },
    }})


def fit_to_real_sentences(bert_dir: Path, docs: List[Doc], steps: int = 40) -> Language:
    """token_ner on `bert_dir` (`add_our_transformer_and_token_ner`), fitted to
    real gold sentences until it predicts entities with some confidence."""
    spacy.util.fix_random_seed(0)
    nlp = spacy.blank("en")
    add_our_transformer_and_token_ner(nlp, bert_dir)
    examples = [Example(nlp.make_doc(doc.text), doc) for doc in docs]
    optimizer = nlp.initialize(lambda: examples)
    optimizer.learn_rate = 1e-3
    for _ in range(steps):
        nlp.update(examples, sgd=optimizer, drop=0.0)
    return nlp


def _train(nlp: Language, steps: int) -> None:
    examples = [Example.from_dict(nlp.make_doc(text), {"entities": ents}) for text, ents in TRAIN_DATA]
    optimizer = nlp.initialize(lambda: examples)
    for _ in range(steps):
        nlp.update(examples, sgd=optimizer, drop=0.0)


def build_transformer_pipeline(tiny_bert: Path, output: Path, steps: int = 10) -> Path:
    """blank "en" + transformer (the tiny BERT, short strided windows) + ner,
    trained for a few updates, + an entity ruler; saved to `output`."""
    spacy.util.fix_random_seed(0)
    nlp = spacy.blank("en")
    add_transformer(nlp, tiny_bert, window=32, stride=24)
    nlp.add_pipe(
        "ner",
        config={
            "model": {
                "@architectures": "spacy.TransitionBasedParser.v2",
                "state_type": "ner",
                "extra_state_tokens": False,
                "hidden_width": 16,
                "maxout_pieces": 2,
                "use_upper": False,
                "tok2vec": {
                    "@architectures": "spacy-transformers.TransformerListener.v1",
                    "grad_factor": 1.0,
                    "pooling": {"@layers": "reduce_mean.v1"},
                },
            }
        },
    )
    _train(nlp, steps)
    ruler = nlp.add_pipe("entity_ruler", after="ner", config={"overwrite_ents": True})
    ruler.add_patterns(RULER_PATTERNS)
    nlp.to_disk(output)
    return output


def build_token_ner_pipeline(output: Path, steps: int = 60) -> Path:
    """blank "en" + a `token_ner` over a tiny CNN tok2vec, trained until it
    predicts the training entities (with confidences); saved to `output`."""
    import ner_component.runtime.token_ner  # noqa: F401  registers the factory

    spacy.util.fix_random_seed(0)
    nlp = spacy.blank("en")
    tok2vec = TINY_TOK2VEC
    nlp.add_pipe("token_ner", name="ner", config={"model": {"@architectures": "ner_component.TokenClassifier.v1", "tok2vec": tok2vec}})
    _train(nlp, steps)
    nlp.to_disk(output)
    return output


def write_benchmark_corpus(path: Path, copies: int) -> Path:
    """A test `.spacy` corpus: BENCHMARK_SENTENCES repeated `copies` times."""
    vocab = spacy.blank("en").vocab
    docs = [Doc(vocab, words=words, ents=tags) for words, tags in BENCHMARK_SENTENCES * copies]
    DocBin(docs=docs).to_disk(path)
    return path
