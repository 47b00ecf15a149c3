"""The texts both engines annotate, and their gold entities: the sentences of a
`.spacy` corpus with their tokens joined by spaces ("sentences"), and longer
documents of consecutive sentences joined ("documents")."""
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from ner_component.errors import NerComponentError
from ner_component.util import PathLike

SETTINGS = ("sentences", "documents")
DEFAULT_JOIN = 16

# (start char, end char, label) in a text
GoldEntity = Tuple[int, int, str]


def check_settings(settings: Sequence[str]) -> None:
    """Refuse an empty list of settings or one not in SETTINGS, in one line."""
    unknown = [s for s in settings if s not in SETTINGS]
    if unknown or not settings:
        raise NerComponentError(f"settings ({', '.join(settings) or 'none'}) must be among {', '.join(SETTINGS)}")


def sentence_docs(test_path: PathLike, limit: Optional[int] = None) -> List[Any]:
    """The docs of a `.spacy` corpus, the first `limit` of them (None for all)."""
    from ner_component.data.convert import read_docs

    docs = read_docs(test_path)
    return docs if limit is None else docs[:limit]


def doc_text(doc: Any) -> str:
    """A doc's tokens joined by single spaces."""
    return " ".join(token.text for token in doc)


def doc_gold(doc: Any) -> List[GoldEntity]:
    """A doc's entities as (start char, end char, label) in `doc_text(doc)`."""
    starts, offset = [], 0
    for token in doc:
        starts.append(offset)
        offset += len(token.text) + 1
    return [(starts[ent.start], starts[ent.end - 1] + len(doc[ent.end - 1].text), ent.label_) for ent in doc.ents]


def sentence_texts(test_path: PathLike, limit: Optional[int] = None) -> List[str]:
    """The sentences of a `.spacy` corpus as texts: tokens joined by spaces.

    test_path (PathLike): The corpus, e.g. `corpus/en/test.spacy`.
    limit (Optional[int]): Keep the first `limit` sentences; None for all.
    RETURNS (List[str]): One text per sentence.
    """
    return [doc_text(doc) for doc in sentence_docs(test_path, limit)]


def sentence_gold(test_path: PathLike, limit: Optional[int] = None) -> List[List[GoldEntity]]:
    """The gold entities of the texts `sentence_texts` makes: (start char, end char,
    label) in the space-joined sentence."""
    return [doc_gold(doc) for doc in sentence_docs(test_path, limit)]


def join_documents(sentences: Sequence[str], n: int) -> List[str]:
    """Longer documents: every `n` consecutive sentences joined by a space.

    sentences (Sequence[str]): The sentences.
    n (int): Sentences per document (the last document may have fewer).
    RETURNS (List[str]): The documents.
    """
    if n < 1:
        raise ValueError(f"n ({n}) must be >= 1")
    return [" ".join(sentences[i : i + n]) for i in range(0, len(sentences), n)]


def join_gold(sentences: Sequence[str], gold: Sequence[Sequence[GoldEntity]], n: int) -> List[List[GoldEntity]]:
    """The gold entities of `join_documents(sentences, n)`, shifted into each document."""
    joined: List[List[GoldEntity]] = []
    for i in range(0, len(sentences), n):
        doc: List[GoldEntity] = []
        offset = 0
        for sentence, entities in zip(sentences[i : i + n], gold[i : i + n]):
            doc.extend((start + offset, end + offset, label) for start, end, label in entities)
            offset += len(sentence) + 1
        joined.append(doc)
    return joined


def texts_by_setting(sentences: List[str], join: int) -> Dict[str, List[str]]:
    """The texts of each setting: the sentences, and every `join` of them joined."""
    return {"sentences": sentences, "documents": join_documents(sentences, join)}


def describe_texts(test: str, limit: Optional[int], join: int) -> str:
    """How a report names its texts: the corpus, how many sentences, how many joined."""
    sentences = f"first {limit}" if limit is not None else "all"
    return f"Texts: {test} ({sentences} sentences); documents = {join} sentences joined."


def count_words(texts: Iterable[str]) -> int:
    """Whitespace-separated words: the unit of words/s, the same for both engines."""
    return sum(len(text.split()) for text in texts)
