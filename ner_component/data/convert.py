"""Convert WikiANN to spaCy `DocBin` corpora, with a report of what was converted."""
import shutil
from collections import Counter
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Tuple

from spacy.tokens import Doc, DocBin
from spacy.vocab import Vocab
from tqdm import tqdm

from ner_component.data.wikiann import LABELS, SPLITS, Sentence, Source, repair_iob2
from ner_component.errors import NerComponentError
from ner_component.util import PathLike, atomic_path, check_writable, write_json_atomic

REPORT_NAME = "report.json"


def sentences_to_docs(
    sentences: Iterable[Sentence], vocab: Optional[Vocab] = None, progress: Optional[str] = None
) -> Tuple[List[Doc], Dict[str, Any]]:
    """Build gold `Doc`s with WikiANN's tokens and entities, and count them.

    Tokens are kept exactly as given; `spaces` is left unknown, so spaCy's corpus
    reader keeps these tokens instead of re-tokenizing the text.

    sentences (Iterable[Sentence]): The sentences of one split.
    vocab (Optional[Vocab]): The vocab to use; a new one by default.
    progress (Optional[str]): Show a progress bar with this description.
    RETURNS (Tuple[List[Doc], Dict[str, Any]]): The docs and their counts:
        sentences, tokens, entities per type, repaired `I-` tags.
    """
    vocab = vocab if vocab is not None else Vocab()
    docs = []
    entities: Counter = Counter({label: 0 for label in LABELS})
    n_tokens = 0
    n_repaired = 0
    for sentence in tqdm(sentences, desc=progress, unit=" sents", disable=progress is None):
        tags, changed = repair_iob2(sentence.tags)
        n_repaired += changed
        doc = Doc(vocab, words=sentence.tokens, ents=tags)
        entities.update(ent.label_ for ent in doc.ents)
        n_tokens += len(doc)
        docs.append(doc)
    counts = {
        "sentences": len(docs),
        "tokens": n_tokens,
        "entities": dict(entities),
        "repaired_i_tags": n_repaired,
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
    report: Dict[str, Any] = {"lang": lang, "source": source.description, "splits": {}}
    vocab = Vocab()
    corpora: Dict[str, bytes] = {}
    for split in SPLITS:
        docs, counts = sentences_to_docs(source.sentences(split), vocab, progress=f"{lang} {split}")
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
