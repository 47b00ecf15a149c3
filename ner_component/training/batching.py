"""The length spaCy's training batchers give an example: its tokens, or more when
its tokens are long in wordpieces (`[training.batcher.get_length]` in the configs).

`spacy.batch_by_padded.v1` counts spaCy tokens by default: a batch holds at most
`size` padded tokens (and at most `buffer` docs). The transformer computes
wordpieces, and a training step's memory grows with the padded wordpieces, and
faster than linearly with the length of the spans (the attention holds a square of
it). On ordinary text a token is one to a few wordpieces and tokens measure the
cost well enough. Where tokens are long they don't: Chinese rebuilt with
`spaces=False` and re-tokenized by the whitespace tokenizer is one or two tokens a
sentence, of up to hundreds of wordpieces, so 256 of them count about 500 and make
one batch of about 100,000 padded wordpieces, which ran training out of memory
(issue 18).

`ner_component.wordpiece_bounded_length.v1` counts a doc of `tokens` tokens and
`pieces` wordpieces (the backbone's own tokenizer, special tokens left out) as

    max(tokens,
        ceil(pieces / max_pieces_per_token),
        ceil((pieces - spare_pieces) / pieces_per_token))

The settings come from the wordpieces per token of every WikiANN language's train
split with both offline backbones (docs/training.md, "Batches of long tokens"):
short docs of a few long names reach 8 wordpieces per token (`max_pieces_per_token`),
while longer docs average no more than about 2.7 (multilingual-e5-small on
Malayalam): no doc has more than `pieces_per_token` = 3 per token beyond its first
`spare_pieces` = 40. So an ordinary doc counts its tokens, as before, and its
batches are the ones it had; a doc of long tokens counts about its wordpieces / 3
once it has more than a few dozen, and its batch holds few docs where their spans
are long.
"""
import math
from typing import Any, Callable, Dict, Optional

from spacy.util import registry

from ner_component.errors import NerComponentError

WORDPIECE_BOUNDED_LENGTH = "ner_component.wordpiece_bounded_length.v1"
DEFAULT_MAX_PIECES_PER_TOKEN = 8
DEFAULT_PIECES_PER_TOKEN = 3
DEFAULT_SPARE_PIECES = 40
# Texts whose wordpieces are kept: far more than a WikiANN train split (20,000), and
# at most a few hundred MB; past it the counts start over (an augmenter that makes
# new texts every epoch would otherwise grow them without end).
MAX_CACHED_TEXTS = 1_000_000


class WordpieceBoundedLength:
    """An example's length for spaCy's batchers: its tokens, or more when its tokens
    are long in wordpieces (see the module docstring).

    The tokenizer loads on the first call (resolving a config loads nothing), and
    each text is tokenized once: the counts are kept per text, so later epochs,
    which batch the same examples again, tokenize nothing.

    name (str): The transformer whose tokenizer counts the wordpieces: a local
        folder or a Hugging Face hub id, as `[components.transformer.model] name`.
    max_pieces_per_token (int): A doc counts at least its wordpieces over this.
    pieces_per_token (int): ... and at least its wordpieces beyond `spare_pieces`
        over this.
    spare_pieces (int): See `pieces_per_token`.
    tokenizer (Optional[Any]): A Hugging Face tokenizer to count with instead of
        loading `name`'s (for tests).
    """

    def __init__(
        self,
        name: str,
        max_pieces_per_token: int = DEFAULT_MAX_PIECES_PER_TOKEN,
        pieces_per_token: int = DEFAULT_PIECES_PER_TOKEN,
        spare_pieces: int = DEFAULT_SPARE_PIECES,
        tokenizer: Optional[Any] = None,
    ) -> None:
        for setting, value, least in (
            ("max_pieces_per_token", max_pieces_per_token, 1),
            ("pieces_per_token", pieces_per_token, 1),
            ("spare_pieces", spare_pieces, 0),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise NerComponentError(f"{WORDPIECE_BOUNDED_LENGTH}: {setting} must be a whole number >= {least}, got {value!r}")
        self.name = name
        self.max_pieces_per_token = max_pieces_per_token
        self.pieces_per_token = pieces_per_token
        self.spare_pieces = spare_pieces
        self._tokenizer = tokenizer
        self._pieces: Dict[str, int] = {}

    def __call__(self, example: Any) -> int:
        """The length of an `Example` (of its predicted doc, which the transformer
        reads) or of a `Doc`.

        example (Union[Example, Doc]): What the batcher sizes.
        RETURNS (int): Its tokens, or more for long tokens.
        """
        doc = getattr(example, "predicted", example)
        return self.length(len(doc), self.count_pieces(doc.text))

    def length(self, n_tokens: int, n_pieces: int) -> int:
        """The length of a doc of `n_tokens` tokens and `n_pieces` wordpieces."""
        return max(
            n_tokens,
            math.ceil(n_pieces / self.max_pieces_per_token),
            math.ceil((n_pieces - self.spare_pieces) / self.pieces_per_token),
        )

    def count_pieces(self, text: str) -> int:
        """The wordpieces of a text, without the special tokens; kept per text.

        text (str): The text.
        RETURNS (int): The number of wordpieces.
        """
        n_pieces = self._pieces.get(text)
        if n_pieces is None:
            if len(self._pieces) >= MAX_CACHED_TEXTS:
                self._pieces.clear()
            # verbose=False: a text longer than the model's maximum is what this
            # measures, not a mistake to warn about (the transformer truncates its spans)
            encoding = self.tokenizer(text, add_special_tokens=False, verbose=False)
            n_pieces = self._pieces[text] = len(encoding["input_ids"])
        return n_pieces

    @property
    def tokenizer(self) -> Any:
        if self._tokenizer is None:
            from transformers import AutoTokenizer

            try:
                self._tokenizer = AutoTokenizer.from_pretrained(self.name, use_fast=True)
            except (OSError, ValueError) as err:
                reason = " ".join(str(err).split())[:200]
                raise NerComponentError(
                    f"{WORDPIECE_BOUNDED_LENGTH}: can't load the tokenizer of '{self.name}' (name: the "
                    f"transformer's local folder or hub id, as paths.transformer after scripts/train.py): {reason}"
                ) from err
        return self._tokenizer


@registry.misc(WORDPIECE_BOUNDED_LENGTH)
def create_wordpiece_bounded_length(
    name: str,
    max_pieces_per_token: int = DEFAULT_MAX_PIECES_PER_TOKEN,
    pieces_per_token: int = DEFAULT_PIECES_PER_TOKEN,
    spare_pieces: int = DEFAULT_SPARE_PIECES,
) -> Callable[[Any], int]:
    """A `get_length` for spaCy's batchers: an example's tokens, or more when its
    tokens are long in wordpieces (see the module docstring).

    name (str): The transformer whose tokenizer counts the wordpieces
        (`${paths.transformer}`).
    max_pieces_per_token (int): A doc counts at least its wordpieces over this.
    pieces_per_token (int): ... and at least its wordpieces beyond `spare_pieces`
        over this.
    spare_pieces (int): See `pieces_per_token`.
    RETURNS (Callable[[Any], int]): The length function.
    """
    return WordpieceBoundedLength(name, max_pieces_per_token, pieces_per_token, spare_pieces)
