"""Convert WikiANN to spaCy `DocBin` corpora, with a report of what was converted."""
import re
import shutil
from collections import Counter
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from spacy.tokens import Doc, DocBin
from spacy.vocab import Vocab
from tqdm import tqdm

from ner_component.data.wikiann import LABELS, SPLITS, Sentence, Source, repair_iob2
from ner_component.errors import NerComponentError
from ner_component.util import CORPUS_REPORT, PathLike, atomic_path, check_writable, write_json_atomic

REPORT_NAME = CORPUS_REPORT
# Characters of the scripts written without spaces between words: Han (with CJK
# radicals and ideographic marks), Hiragana, Katakana, Thai, Lao, Tibetan, Myanmar
# and Khmer.
UNSPACED_CHARACTER = re.compile(
    "[\u0e00-\u0eff\u0f00-\u0fff\u1000-\u109f\u1780-\u17ff\u19e0-\u19ff"
    "\u2e80-\u2fdf\u3005-\u3007\u3021-\u3029\u3038-\u303b\u3040-\u30ff\u31f0-\u31ff"
    "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f\U00020000-\U0003134f]"
)
# A language whose train split has at least this share of docs rebuilt without
# spaces is character-segmented: its pipeline splits text into characters.
CHARACTER_SEGMENTED_SHARE = 0.5


def natural_spaces(words: Sequence[str]) -> Optional[List[bool]]:
    """The spaces between WikiANN tokens as the text was written, or None to keep
    them unknown (a space after every token, as spaCy assumes).

    WikiANN segments Chinese, Japanese, Cantonese and Classical Chinese into one
    token per character, Latin letters and digits included (`R E D I R E C T #
    亞 馬 遜 河`); joined with spaces, that is text nobody writes. A run of two or
    more single-character tokens holding a character of a script written without
    spaces is such a segmentation, and is joined without spaces
    (`REDIRECT#亞馬遜河`). Latin letters in the run are joined too: the letters of
    one word were split by the segmentation, not written apart (`ATM` in Japanese
    text, never `A T M`); the price is that a space between two Latin words in such
    a run is lost (`NottingHill`), as the segmentation lost it. Everything else
    keeps its space, so space-separated languages, and the multi-character tokens
    of Khmer or Tibetan WikiANN (whitespace-separated chunks, as written), are
    unchanged.

    words (Sequence[str]): The tokens of one sentence.
    RETURNS (Optional[List[bool]]): Whether each token is followed by a space, the
        last one not; None when no run was joined.
    """
    spaces = [True] * len(words)
    joined = False
    start = 0
    while start < len(words):
        end = start
        while end < len(words) and len(words[end]) == 1:
            end += 1
        if end - start >= 2 and any(UNSPACED_CHARACTER.match(word) for word in words[start:end]):
            spaces[start : end - 1] = [False] * (end - 1 - start)
            joined = True
        start = max(end, start + 1)
    if not joined:
        return None
    spaces[-1] = False
    return spaces


def is_character_segmented(sentences: Sequence[Sequence[str]]) -> bool:
    """Whether WikiANN segmented a language into characters: at least half of its
    (train) sentences hold a character-segmented run (see `natural_spaces`). Only
    then are runs joined, and the pipeline splits text into characters; a language
    segmented into words (wuu, gan, km, bo) keeps its spaces everywhere, since its
    single-character tokens are words."""
    n_segmented = sum(natural_spaces(words) is not None for words in sentences)
    return bool(sentences) and n_segmented >= CHARACTER_SEGMENTED_SHARE * len(sentences)


def sentences_to_docs(
    sentences: Iterable[Sentence],
    vocab: Optional[Vocab] = None,
    progress: Optional[str] = None,
    join_segmented: bool = False,
) -> Tuple[List[Doc], Dict[str, Any]]:
    """Build gold `Doc`s with WikiANN's tokens and entities, and count them.

    Tokens are kept exactly as given, and `spaces` is left unknown, so spaCy's
    corpus reader keeps these tokens instead of re-tokenizing the text. With
    `join_segmented` (a character-segmented language), a doc where `natural_spaces`
    finds WikiANN's character segmentation gets the text as it was written instead:
    the same tokens and entities, joined without spaces there. spaCy's corpus
    reader re-tokenizes a doc with known spaces in training, with the character
    tokenizer such languages' pipelines get: the same tokens again.

    sentences (Iterable[Sentence]): The sentences of one split.
    vocab (Optional[Vocab]): The vocab to use; a new one by default.
    progress (Optional[str]): Show a progress bar with this description.
    join_segmented (bool): Join character-segmented runs without spaces.
    RETURNS (Tuple[List[Doc], Dict[str, Any]]): The docs and their counts:
        sentences, tokens, entities per type, repaired `I-` tags, docs joined
        without spaces.
    """
    vocab = vocab if vocab is not None else Vocab()
    docs = []
    entities: Counter = Counter({label: 0 for label in LABELS})
    n_tokens = 0
    n_repaired = 0
    n_joined = 0
    for sentence in tqdm(sentences, desc=progress, unit=" sents", disable=progress is None):
        tags, changed = repair_iob2(sentence.tags)
        n_repaired += changed
        spaces = natural_spaces(sentence.tokens) if join_segmented else None
        n_joined += spaces is not None
        doc = Doc(vocab, words=sentence.tokens, spaces=spaces, ents=tags)
        entities.update(ent.label_ for ent in doc.ents)
        n_tokens += len(doc)
        docs.append(doc)
    counts = {
        "sentences": len(docs),
        "tokens": n_tokens,
        "entities": dict(entities),
        "repaired_i_tags": n_repaired,
        "joined_without_spaces": n_joined,
    }
    return docs, counts


def convert(source: Source, output_dir: PathLike, lang: str) -> Dict[str, Any]:
    """Write `train.spacy`, `dev.spacy`, `test.spacy` and `report.json` to `output_dir`.

    Every split is read and checked before anything is written (nothing is
    created for a failed conversion, not even the folder), and each file is
    renamed into place only when complete: a failed run leaves the previous
    corpus as it was.

    source (Source): Where the WikiANN data comes from.
    output_dir (PathLike): The corpus folder, e.g. `corpus/en`.
    lang (str): The WikiANN language code.
    RETURNS (Dict[str, Any]): The report written to `report.json`.
    RAISES (NerComponentError): One line, for bad data (a `WikiANNError`) or an
        output folder that can't be written.
    """
    output_dir = Path(output_dir)
    check_writable(output_dir, "folder")
    # The train split decides whether the language is character-segmented, for all three.
    train = list(source.sentences("train"))
    segmented = is_character_segmented([sentence.tokens for sentence in train])
    report: Dict[str, Any] = {"lang": lang, "source": source.description, "character_segmented": segmented, "splits": {}}
    vocab = Vocab()
    corpora: Dict[str, bytes] = {}
    for split in SPLITS:
        sentences = train if split == "train" else source.sentences(split)
        docs, counts = sentences_to_docs(sentences, vocab, progress=f"{lang} {split}", join_segmented=segmented)
        report["splits"][split] = counts
        corpora[split] = DocBin(docs=docs, store_user_data=False).to_bytes()
    _write_corpus(output_dir, corpora, report)
    return report


def _write_corpus(output_dir: Path, corpora: Dict[str, bytes], report: Dict[str, Any]) -> None:
    """Write the serialized splits and the report; on failure, remove the folders
    this call created."""
    created = output_dir
    while not created.parent.exists():
        created = created.parent
    created = None if created.exists() else created
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
        for split, data in corpora.items():
            with atomic_path(output_dir / f"{split}.spacy") as tmp:
                tmp.write_bytes(data)
        write_json_atomic(output_dir / REPORT_NAME, report)
    except OSError as err:
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)
        raise NerComponentError(f"{output_dir}: can't write the corpus ({err.strerror or err})") from err


def read_docs(path: PathLike, vocab: Optional[Vocab] = None) -> List[Doc]:
    """Read the docs of a `.spacy` corpus file."""
    vocab = vocab if vocab is not None else Vocab()
    return list(DocBin().from_disk(path).get_docs(vocab))
