"""What the README promises of predictions under other batch sizes and dtypes:
float32 gives the same entities at every batch size; bfloat16 (forced here, emulated
where the CPU lacks it) changes at most BF16_MAX_DISAGREEMENT of them."""
import itertools

import pytest
import spacy
from spacy.tokens import Doc

from ner_component.benchmarks.agreement import (
    BF16_MAX_DISAGREEMENT,
    FLOAT32_MAX_CONFIDENCE_DIFF,
    disagreement,
    measure_agreement,
    worst,
)
from ner_component.data.convert import sentences_to_docs
from ner_component.data.wikiann import resolve_source
from ner_component.errors import NerComponentError
from tests.pipelines import fit_to_real_sentences

N_TRAIN = 48
N_OTHER = 48


def test_disagreement_counts_the_symmetric_difference():
    vocab = spacy.blank("en").vocab
    words = ["Ada", "Lovelace", "in", "London"]
    a = [Doc(vocab, words=words, ents=["B-PER", "I-PER", "O", "B-LOC"])]
    b = [Doc(vocab, words=words, ents=["B-PER", "I-PER", "O", "B-ORG"])]
    row = disagreement(a, b)
    # London/LOC and London/ORG differ; Ada Lovelace is shared: 2 of 3 distinct entities
    assert (row["differing"], row["docs_differing"]) == (2, 1)
    assert row["rate"] == pytest.approx(2 / 3)
    assert disagreement(a, a)["rate"] == 0.0


@pytest.fixture(scope="module")
def real_sentences(wikiann_dir):
    source = resolve_source(str(wikiann_dir), "en")
    docs, _ = sentences_to_docs(itertools.islice(source.sentences("test"), N_TRAIN + N_OTHER))
    return docs


@pytest.fixture(scope="module")
def fitted_nlp(tiny_bert, real_sentences):
    """token_ner on the tiny BERT through ner_component.TransformerModel.v1, fitted to
    real English sentences until it predicts entities with some confidence."""
    return fit_to_real_sentences(tiny_bert, real_sentences[:N_TRAIN])


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_batch_size_changes_no_entity_in_float32_and_few_in_bfloat16(fitted_nlp, real_sentences, dtype):
    result = measure_agreement(fitted_nlp, real_sentences, batch_sizes=(1, 7, 96), dtypes=(dtype,))
    assert min(result["entities"].values()) >= 20, result["entities"]  # something to compare
    found = worst(result, dtype)
    if dtype == "float32":
        assert found["differing"] == 0, result
        assert found["max_confidence_diff"] <= FLOAT32_MAX_CONFIDENCE_DIFF, result
    else:
        assert found["rate"] <= BF16_MAX_DISAGREEMENT, result
    # the pipeline's own dtype is put back
    assert fitted_nlp.get_pipe("transformer").model.attrs["cpu_inference_dtype"] == "float32"


def test_bfloat16_stays_close_to_float32(fitted_nlp, real_sentences):
    result = measure_agreement(fitted_nlp, real_sentences, batch_sizes=(96,), dtypes=("float32", "bfloat16"))
    assert worst(result)["rate"] <= BF16_MAX_DISAGREEMENT, result


def test_bad_settings_are_refused(fitted_nlp, real_sentences):
    with pytest.raises(NerComponentError, match="batch sizes must be whole numbers >= 1"):
        measure_agreement(fitted_nlp, real_sentences, batch_sizes=(0,))
    with pytest.raises(NerComponentError, match="dtype must be float32 or bfloat16, got 'float16'"):
        measure_agreement(fitted_nlp, real_sentences, dtypes=("float16",))
