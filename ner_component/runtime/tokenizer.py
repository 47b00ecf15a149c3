"""A character tokenizer: every character that isn't a space is a token.

WikiANN segments Chinese, Japanese, Cantonese (zh-yue) and Classical Chinese
(zh-classical) into one token per character, Latin letters included; a pipeline
trained on those tokens must split a user's text the same way, or `香港著名電影`
arrives as one token. spaCy's own Chinese tokenizer does this with its `char`
segmenter (`spacy.zh.ChineseTokenizer`, the project's choice for zh); Japanese's
needs SudachiPy, and spaCy has no Cantonese or Classical Chinese, so their pipelines
(spaCy's multi-language class) use this one. It keeps spaCy's usual whitespace
handling (a space after a token is its `whitespace_`; other whitespace runs are
tokens), as the `char` segmenter does.
"""
from typing import Any, Callable, Iterable, Iterator

from spacy.tokens import Doc
from spacy.util import get_words_and_spaces, registry
from spacy.vocab import Vocab


class CharacterTokenizer:
    """Split a text into its characters; spaces become token whitespace."""

    def __init__(self, vocab: Vocab):
        self.vocab = vocab

    def __call__(self, text: str) -> Doc:
        words, spaces = get_words_and_spaces([char for char in text if not char.isspace()], text)
        return Doc(self.vocab, words=words, spaces=spaces)

    def pipe(self, texts: Iterable[str], batch_size: int = 1000) -> Iterator[Doc]:
        for text in texts:
            yield self(text)

    # No settings and no data: nothing to save, nothing to load.
    def to_bytes(self, **kwargs: Any) -> bytes:
        return b""

    def from_bytes(self, data: bytes, **kwargs: Any) -> "CharacterTokenizer":
        return self

    def to_disk(self, path: Any, **kwargs: Any) -> None:
        return None

    def from_disk(self, path: Any, **kwargs: Any) -> "CharacterTokenizer":
        return self


@registry.tokenizers("ner_component.CharacterTokenizer.v1")
def create_character_tokenizer() -> Callable[[Any], CharacterTokenizer]:
    """Every non-space character a token (see the module docstring)."""

    def make_tokenizer(nlp: Any) -> CharacterTokenizer:
        return CharacterTokenizer(nlp.vocab)

    return make_tokenizer

