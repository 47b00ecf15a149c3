"""A stand-in for the fine-tuned Hugging Face model: the WikiANN tags (in the
recipe's order, `hf_recipe.labels.label_maps`) on an untrained classification head,
with the same inference cost, where none has been trained yet."""
from pathlib import Path

from ner_component.util import PathLike


def build_random_token_classifier(output: PathLike, backbone: PathLike, tiny: bool = False, seed: int = 0) -> Path:
    """Write a Hugging Face token-classification folder with the WikiANN tags and
    an untrained classification head.

    output (PathLike): The folder to write (replaced when complete).
    backbone (PathLike): A BERT folder whose tokenizer (and, unless `tiny`, weights) to use.
    tiny (bool): A 2-layer, 32-wide random BERT around the backbone's tokenizer
        (for tests) instead of the backbone's own weights.
    seed (int): Seed of the random weights.
    RETURNS (Path): The folder.
    """
    from transformers import (
        AutoTokenizer,
        BertConfig,
        BertForTokenClassification,
        set_seed,
    )

    # here, not at the top: a run's process imports this package, and the recipe
    # would load spaCy into Hugging Face's runs (their memory and start-up time)
    from ner_component.benchmarks.hf_recipe.labels import label_maps
    from ner_component.benchmarks.hf_recipe.run import save_model_atomic

    set_seed(seed)
    id2label, label2id = label_maps()
    tokenizer = AutoTokenizer.from_pretrained(str(backbone))
    if tiny:
        config = BertConfig(
            vocab_size=tokenizer.vocab_size,
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
            max_position_embeddings=512,
            num_labels=len(id2label),
            id2label=id2label,
            label2id=label2id,
        )
        model = BertForTokenClassification(config)
    else:
        model = BertForTokenClassification.from_pretrained(
            str(backbone), num_labels=len(id2label), id2label=id2label, label2id=label2id
        )
    save_model_atomic(model, tokenizer, output)
    return Path(output)
