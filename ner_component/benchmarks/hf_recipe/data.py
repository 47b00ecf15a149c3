"""WikiANN for the recipe: the words and tags of a split, read through
`ner_component.data.wikiann` (the same sentences the spaCy corpora hold)."""
from typing import List, Tuple

from ner_component.data.wikiann import WikiANNError, repair_iob2, resolve_source
from ner_component.errors import NerComponentError
from ner_component.util import PathLike


def read_split(
    data: str, lang: str, split: str, repair: bool, limit: int = 0, root: PathLike = "."
) -> Tuple[List[List[str]], List[List[str]], str]:
    """Read one WikiANN split through `ner_component.data.wikiann.resolve_source`.

    data (str): "auto", "hub", or a path (see `resolve_source`).
    lang (str): The WikiANN language code.
    split (str): "train", "dev" or "test".
    repair (bool): Turn stray I-X tags into B-X (`repair_iob2`), as the corpora do.
    limit (int): Read only the first `limit` sentences; 0 for all.
    root (PathLike): The project root, for data = "auto".
    RETURNS (Tuple[List[List[str]], List[List[str]], str]): The words and tags of
        each sentence, and the description of the source used.
    """
    try:
        source = resolve_source(data, lang, root)
        tokens: List[List[str]] = []
        tags: List[List[str]] = []
        for sentence in source.sentences(split):
            if limit and len(tokens) >= limit:
                break
            tokens.append(list(sentence.tokens))
            tags.append(repair_iob2(sentence.tags)[0] if repair else list(sentence.tags))
    except WikiANNError as err:
        raise NerComponentError(str(err))
    if not tokens:
        raise NerComponentError(f"{source.description}: the {split} split of '{lang}' has no sentences")
    return tokens, tags, source.description
