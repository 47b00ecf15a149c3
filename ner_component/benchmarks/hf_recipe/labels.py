"""WikiANN's word labels on subword tokens for training, and subword predictions
back on words for scoring (the tutorial's `tokenize_and_align_labels`, per sentence)."""
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from ner_component.data.wikiann import TAGS

# Label id of tokens the loss ignores (PyTorch's CrossEntropyLoss ignore_index).
IGNORE_INDEX = -100
SUBWORD_LABELS: Tuple[str, ...] = ("repeat", "b_to_i", "first")


def label_maps() -> Tuple[Dict[int, str], Dict[str, int]]:
    """WikiANN's tags in the Hugging Face dataset's order, as id2label and label2id."""
    id2label = dict(enumerate(TAGS))
    return id2label, {tag: i for i, tag in id2label.items()}


def align_labels(
    word_ids: Sequence[Optional[int]],
    word_labels: Sequence[int],
    subword_labels: str,
    id2label: Mapping[int, str],
    label2id: Mapping[str, int],
) -> List[int]:
    """The training label of each subword token (the tutorial's
    `tokenize_and_align_labels` for one sentence).

    word_ids (Sequence[Optional[int]]): The word of each token (`encoding.word_ids()`),
        None for [CLS], [SEP] and padding.
    word_labels (Sequence[int]): The label id of each word.
    subword_labels (str): What the 2nd, 3rd... subword of a word gets: "repeat" (the
        word's label, B-X included), "b_to_i" (B-X turned into I-X) or "first"
        (IGNORE_INDEX).
    id2label (Mapping[int, str]): Label names by id.
    label2id (Mapping[str, int]): Label ids by name.
    RETURNS (List[int]): One label id per token; IGNORE_INDEX where the loss skips it.
    """
    if subword_labels not in SUBWORD_LABELS:
        raise ValueError(
            f"subword_labels ({subword_labels!r}) must be one of {', '.join(SUBWORD_LABELS)}"
        )
    labels = []
    previous: Optional[int] = None
    for word_id in word_ids:
        if word_id is None:
            labels.append(IGNORE_INDEX)
        elif word_id != previous:
            labels.append(word_labels[word_id])
        elif subword_labels == "first":
            labels.append(IGNORE_INDEX)
        else:
            label = word_labels[word_id]
            name = id2label[label]
            if subword_labels == "b_to_i" and name.startswith("B-"):
                label = label2id["I-" + name[2:]]
            labels.append(label)
        previous = word_id
    return labels


def word_predictions(
    word_ids: Sequence[Optional[int]],
    token_predictions: Sequence[int],
    n_words: int,
    default: int,
) -> Tuple[List[int], int]:
    """Map subword predictions back to words: each word takes its first subword's.

    word_ids (Sequence[Optional[int]]): The word of each token, None for specials.
    token_predictions (Sequence[int]): The predicted label id of each token.
    n_words (int): The number of words of the sentence.
    default (int): The label of words without any subword: cut off by truncation,
        or made only of characters the tokenizer drops (e.g. a zero-width space).
    RETURNS (Tuple[List[int], int]): The label id of each word, and how many words
        had no subword.
    """
    predictions: List[Optional[int]] = [None] * n_words
    for word_id, prediction in zip(word_ids, token_predictions):
        if word_id is not None and predictions[word_id] is None:
            predictions[word_id] = int(prediction)
    n_missing = sum(1 for p in predictions if p is None)
    return [default if p is None else p for p in predictions], n_missing


def tokenize_and_align(
    tokenizer: Any,
    tokens: Sequence[Sequence[str]],
    tags: Sequence[Sequence[str]],
    subword_labels: str,
    max_length: int,
) -> Dict[str, List[Any]]:
    """Tokenize sentences of words and align their labels, for `Trainer`.

    tokenizer (Any): A fast Hugging Face tokenizer.
    tokens (Sequence[Sequence[str]]): The words of each sentence.
    tags (Sequence[Sequence[str]]): The IOB2 tag of each word.
    subword_labels (str): See `align_labels`.
    max_length (int): Subword tokens per sentence; longer ones are truncated.
    RETURNS (Dict[str, List[Any]]): The tokenizer's features plus `labels`, and
        `n_words` (the sentence's word count, for the training words/s figure).
    """
    id2label, label2id = label_maps()
    encoded = tokenizer(
        [list(words) for words in tokens],
        is_split_into_words=True,
        truncation=True,
        max_length=max_length,
    )
    features: Dict[str, List[Any]] = {key: list(value) for key, value in encoded.items()}
    features["labels"] = [
        align_labels(
            encoded.word_ids(i), [label2id[t] for t in sentence_tags], subword_labels, id2label, label2id
        )
        for i, sentence_tags in enumerate(tags)
    ]
    features["n_words"] = [len(words) for words in tokens]
    return features
