"""Tagging words with a token-classification model, and scoring the tags with
seqeval word by word (each word once, by its first subword's prediction)."""
from typing import Any, Dict, List, Sequence, Tuple

from ner_component.benchmarks.hf_recipe.labels import word_predictions
from ner_component.evaluation.crosscheck import seqeval_scores


def predict_tags(
    model: Any,
    tokenizer: Any,
    tokens: Sequence[Sequence[str]],
    batch_size: int,
    max_length: int,
) -> Tuple[List[List[str]], int]:
    """Tag sentences of words with a token-classification model, word by word.

    Sentences are batched by length (less padding), and each word takes its first
    subword's prediction.

    model (Any): An `AutoModelForTokenClassification` model with `config.id2label`.
    tokenizer (Any): Its fast tokenizer.
    tokens (Sequence[Sequence[str]]): The words of each sentence.
    batch_size (int): Sentences per forward pass.
    max_length (int): Subword tokens per sentence; words beyond it are predicted O.
    RETURNS (Tuple[List[List[str]], int]): The IOB2 tag of each word per sentence,
        and the number of words without a subword (predicted O).
    """
    import torch

    id2label = {int(i): label for i, label in model.config.id2label.items()}
    outside = next(i for i, label in id2label.items() if label == "O")
    order = sorted(range(len(tokens)), key=lambda i: len(tokens[i]))
    results: List[List[str]] = [[] for _ in tokens]
    n_missing = 0
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for start in range(0, len(order), batch_size):
                indices = order[start : start + batch_size]
                encoded = tokenizer(
                    [list(tokens[i]) for i in indices],
                    is_split_into_words=True,
                    truncation=True,
                    max_length=max_length,
                    padding=True,
                    return_tensors="pt",
                )
                inputs = {k: v.to(model.device) for k, v in encoded.items()}
                predicted = model(**inputs).logits.argmax(-1).tolist()
                for row, i in enumerate(indices):
                    ids, missing = word_predictions(
                        encoded.word_ids(row), predicted[row], len(tokens[i]), outside
                    )
                    n_missing += missing
                    results[i] = [id2label[label] for label in ids]
    finally:
        model.train(was_training)
    return results, n_missing


def score_tags(
    y_true: Sequence[Sequence[str]], y_pred: Sequence[Sequence[str]]
) -> Dict[str, Any]:
    """seqeval's strict IOB2 and default-mode figures of word tags."""
    return {
        "seqeval_strict": seqeval_scores(y_true, y_pred, strict=True),
        "seqeval_default": seqeval_scores(y_true, y_pred, strict=False),
    }
