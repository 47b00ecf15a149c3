"""Read WikiANN from any of its three homes, as one stream of sentences per split.

Sources:
- the per-language archive `<lang>.tar.gz` of the original release, or its extracted
  folder (files `train`, `dev`, `test`; one `<lang>:<token>\\t<tag>` per line);
- the Hugging Face hub, `datasets.load_dataset("unimelb-nlp/wikiann", lang)`;
- a dataset saved with `datasets` (`save_to_disk`) or the hub's parquet files.

All three yield the same `Sentence` objects for the same language, so the corpora
built from them are identical.
"""
import hashlib
import os
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import (
    IO,
    Any,
    Callable,
    Dict,
    Iterable,
    Iterator,
    List,
    Optional,
    Sequence,
    Tuple,
)

from wasabi import msg

from ner_component.errors import NerComponentError
from ner_component.util import PathLike

HUB_DATASET = "unimelb-nlp/wikiann"
# The label order of the Hugging Face dataset's ClassLabel feature.
TAGS: Tuple[str, ...] = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC")
LABELS: Tuple[str, ...] = ("PER", "ORG", "LOC")
# Our split names, and what the original archive and the hub call them.
SPLITS: Tuple[str, ...] = ("train", "dev", "test")
HUB_SPLITS: Dict[str, str] = {"train": "train", "dev": "validation", "test": "test"}
# Where `data = "auto"` looks, relative to the project root, before falling back to the hub.
LOCAL_DATA_CANDIDATES: Tuple[str, ...] = ("assets/wikiann", "../shared/wikiann")
DATA_ENV_VAR = "WIKIANN_DATA"
# The checksum file published beside the archives (`sha256sum` format).
CHECKSUMS = "SHA256SUMS"


class WikiANNError(NerComponentError):
    """Bad WikiANN input; the message is one line naming the place and the value."""


@dataclass
class Sentence:
    tokens: List[str]
    tags: List[str]
    # "file:line" (or "dataset[split] row n") of the sentence's first token, for messages
    where: str


def repair_iob2(tags: Sequence[str]) -> Tuple[List[str], int]:
    """Turn each `I-X` that doesn't continue an entity of type X into `B-X`.

    WikiANN has a few `I-X` tags after `O` or after another type. spaCy reads them as
    starting an entity and seqeval's default mode does too, but seqeval's strict IOB2
    mode drops them. Repairing them to `B-X` gives one reading everywhere.

    tags (Sequence[str]): IOB2 tags of one sentence.
    RETURNS (Tuple[List[str], int]): The repaired tags and how many were changed.
    """
    repaired = []
    n_changed = 0
    previous = "O"
    for tag in tags:
        if tag.startswith("I-") and previous[2:] != tag[2:]:
            tag = "B-" + tag[2:]
            n_changed += 1
        repaired.append(tag)
        previous = tag
    return repaired, n_changed


def parse_conll(lines: Iterable[str], lang: str, filename: str) -> Iterator[Sentence]:
    """Parse WikiANN's original format: `<lang>:<token>\\t<tag>`, blank line between
    sentences. Only the `<lang>:` prefix is removed, at the first colon.

    lines (Iterable[str]): The file's lines.
    lang (str): The expected language prefix.
    filename (str): Name used in error messages.
    YIELDS (Sentence): One per sentence, tags as written in the file.
    RAISES (WikiANNError): `file:line: ...` for a malformed line or an unknown tag.
    """
    tokens: List[str] = []
    tags: List[str] = []
    start = 0
    for lineno, raw in enumerate(lines, 1):
        line = raw.rstrip("\r\n")
        if not line.strip():
            if tokens:
                yield Sentence(tokens, tags, f"{filename}:{start}")
                tokens, tags = [], []
            continue
        where = f"{filename}:{lineno}"
        fields = line.split("\t")
        if len(fields) != 2:
            raise WikiANNError(
                f"{where}: expected '<lang>:<token><TAB><tag>', found {line!r}"
            )
        prefixed, tag = fields
        prefix, colon, token = prefixed.partition(":")
        if not colon or prefix != lang:
            raise WikiANNError(
                f"{where}: expected a token starting with '{lang}:', found {prefixed!r}"
            )
        if not token.strip():
            raise WikiANNError(f"{where}: empty token in {line!r}")
        if tag not in TAGS:
            raise WikiANNError(
                f"{where}: unknown tag {tag!r}, expected one of {', '.join(TAGS)}"
            )
        if not tokens:
            start = lineno
        tokens.append(token)
        tags.append(tag)
    if tokens:
        yield Sentence(tokens, tags, f"{filename}:{start}")


def rows_to_sentences(
    rows: Iterable[Dict[str, Any]], tag_names: Optional[Sequence[str]], name: str
) -> Iterator[Sentence]:
    """Read rows of a Hugging Face WikiANN dataset (`tokens`, `ner_tags`).

    rows (Iterable[Dict[str, Any]]): The dataset rows.
    tag_names (Optional[Sequence[str]]): The ClassLabel names, when `ner_tags` are ids.
    name (str): Name of the dataset split, for messages.
    YIELDS (Sentence): One per non-empty row.
    RAISES (WikiANNError): `name row n: ...` for a bad tag, token or length.
    """
    for i, row in enumerate(rows):
        where = f"{name} row {i}"
        tokens = list(row["tokens"])
        raw_tags = list(row["ner_tags"])
        if len(tokens) != len(raw_tags):
            raise WikiANNError(
                f"{where}: {len(tokens)} tokens but {len(raw_tags)} tags"
            )
        tags = []
        for value in raw_tags:
            if isinstance(value, str):
                tag = value
            elif tag_names is not None and 0 <= int(value) < len(tag_names):
                tag = tag_names[int(value)]
            else:
                raise WikiANNError(f"{where}: unknown tag id {value!r}")
            if tag not in TAGS:
                raise WikiANNError(
                    f"{where}: unknown tag {tag!r}, expected one of {', '.join(TAGS)}"
                )
            tags.append(tag)
        for token in tokens:
            if not isinstance(token, str) or not token.strip():
                raise WikiANNError(f"{where}: empty token in {tokens!r}")
        if tokens:
            yield Sentence(tokens, tags, where)


class Source:
    """One language of WikiANN from one place."""

    description: str

    def sentences(self, split: str) -> Iterator[Sentence]:
        raise NotImplementedError


class ArchiveSource(Source):
    """The original release: `<lang>.tar.gz`, or the folder it extracts to.

    An archive listed in a `SHA256SUMS` file beside it is checked against it
    before it is read (weasel's asset checksums are one fixed MD5 per asset, not one
    per language: see project.yml).
    """

    def __init__(self, path: PathLike, lang: str):
        self.path = Path(path)
        self.lang = lang
        self.description = f"local WikiANN archive {self.path}"
        self.checksum: Optional[str] = None
        if self.path.is_file():
            self.checksum = verify_checksum(self.path)
            if self.checksum is not None:
                self.description += f" (SHA-256 as in {CHECKSUMS})"

    def sentences(self, split: str) -> Iterator[Sentence]:
        if self.path.is_dir():
            file_path = self.path / split
            if not file_path.is_file():
                raise WikiANNError(f"{file_path}: missing split file '{split}'")
            with file_path.open("rb") as f:
                yield from checked_split(parse_conll(decode_lines(f, str(file_path)), self.lang, str(file_path)), str(file_path))
            return
        try:
            with tarfile.open(self.path, "r:gz") as archive:
                member = _find_member(archive, split, self.path)
                stream = archive.extractfile(member)
                assert stream is not None  # a regular file member always has a stream
                name = f"{self.path}/{member.name}"
                yield from checked_split(parse_conll(decode_lines(stream, name), self.lang, name), name)
        except (tarfile.TarError, EOFError, OSError, zlib.error) as err:
            # truncated, zero-byte, garbage, uncompressed or bit-flipped archives
            problem = " ".join(str(err).split()) or type(err).__name__
            raise WikiANNError(f"{self.path}: not a readable .tar.gz archive ({problem})") from err


def verify_checksum(path: Path) -> Optional[str]:
    """Check a file against the `SHA256SUMS` beside it, if it is listed there.

    path (Path): The archive.
    RETURNS (Optional[str]): Its SHA-256 when checked; None without a listing.
    RAISES (WikiANNError): When the file's SHA-256 differs from the listed one.
    """
    sums = path.parent / CHECKSUMS
    if not sums.is_file():
        return None
    expected = None
    for line in sums.read_text(encoding="utf8", errors="replace").splitlines():
        digest, _, name = line.strip().partition(" ")
        if name.strip().lstrip("*") == path.name:
            expected = digest.lower()
    if expected is None:
        return None
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    found = digest.hexdigest()
    if found != expected:
        raise WikiANNError(f"{path}: SHA-256 {found} differs from {expected} in {sums}: a damaged or different archive")
    return found


def _find_member(archive: tarfile.TarFile, split: str, path: Path) -> tarfile.TarInfo:
    """The one file of the archive named `split` (in any folder)."""
    members = [m for m in archive.getmembers() if m.isfile() and Path(m.name).name == split]
    if not members:
        raise WikiANNError(f"{path}: no file '{split}' in the archive")
    if len(members) > 1:
        names = ", ".join(m.name for m in members)
        raise WikiANNError(f"{path}: {len(members)} files named '{split}' in the archive ({names}): ambiguous")
    return members[0]


def decode_lines(stream: IO[bytes], name: str) -> Iterator[str]:
    """The lines of a binary stream, decoded as UTF-8 one by one, so that a bad
    byte is reported with its line.

    stream (IO[bytes]): The file.
    name (str): Its name, for messages.
    YIELDS (str): The lines, line endings kept.
    RAISES (WikiANNError): `name:line: not valid UTF-8 ...`.
    """
    for lineno, raw in enumerate(stream, 1):
        try:
            yield raw.decode("utf8")
        except UnicodeDecodeError as err:
            raise WikiANNError(f"{name}:{lineno}: not valid UTF-8 ({err.reason} at byte {err.start}): {raw[:60]!r}") from None


def checked_split(sentences: Iterable[Sentence], name: str) -> Iterator[Sentence]:
    """Pass the sentences of a split through, then refuse a split without any
    sentence or without any entity: WikiANN's sentences each have an entity, and
    an empty corpus would replace a good one (and break the seqeval cross-check).

    sentences (Iterable[Sentence]): The sentences of one split.
    name (str): The split's file or dataset, for messages.
    YIELDS (Sentence): The sentences.
    RAISES (WikiANNError): After the last sentence, for an empty or entity-free split.
    """
    n_sentences = 0
    has_entity = False
    for sentence in sentences:
        n_sentences += 1
        has_entity = has_entity or any(tag != "O" for tag in sentence.tags)
        yield sentence
    if n_sentences == 0:
        raise WikiANNError(f"{name}: no sentences (an empty split)")
    if not has_entity:
        raise WikiANNError(f"{name}: {n_sentences} sentences but not one entity (every WikiANN sentence has one)")


class DatasetSource(Source):
    """A Hugging Face `DatasetDict` (from the hub, `save_to_disk` or parquet files)."""

    def __init__(self, load: Callable[[], Any], description: str):
        self._load = load
        self._dataset: Any = None
        self.description = description

    @property
    def dataset(self) -> Any:
        if self._dataset is None:
            self._dataset = self._load()
        return self._dataset

    def sentences(self, split: str) -> Iterator[Sentence]:
        hub_split = HUB_SPLITS[split]
        if hub_split not in self.dataset:
            raise WikiANNError(
                f"{self.description}: no split '{hub_split}' "
                f"(found: {', '.join(self.dataset.keys())})"
            )
        data = self.dataset[hub_split]
        feature = data.features["ner_tags"].feature
        # parquet written without the datasets metadata has plain ids: WikiANN's order
        tag_names = getattr(feature, "names", None) or TAGS
        name = f"{self.description}[{hub_split}]"
        yield from checked_split(rows_to_sentences(data, tag_names, name), name)


def hub_source(lang: str, dataset_id: str = HUB_DATASET) -> DatasetSource:
    """WikiANN from the Hugging Face hub (needs network, or the datasets cache)."""

    def load() -> Any:
        import datasets

        try:
            return datasets.load_dataset(dataset_id, lang)
        except ValueError as err:  # unknown config: the message lists the valid ones
            raise WikiANNError(f"{dataset_id}: no language '{lang}' ({_first_line(err)})") from err
        except Exception as err:  # no network, hub down, dataset moved: one clear line
            raise WikiANNError(
                f"{dataset_id} ({lang}): could not load it from the Hugging Face hub "
                f"({type(err).__name__}: {_first_line(err)}); without network, set the data "
                "var to a local WikiANN folder, e.g. --vars.data ../shared/wikiann"
            ) from err

    return DatasetSource(load, f"Hugging Face hub dataset {dataset_id} ({lang})")


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0][:300] if text else ""


def disk_source(path: PathLike) -> DatasetSource:
    """A `DatasetDict` written by `save_to_disk`."""
    path = Path(path)

    def load() -> Any:
        import datasets

        return datasets.load_from_disk(str(path))

    return DatasetSource(load, f"saved dataset {path}")


def parquet_source(files: Dict[str, List[str]], where: Path) -> DatasetSource:
    """Parquet files, one or more per hub split (the hub's own layout)."""

    def load() -> Any:
        import datasets

        return datasets.load_dataset("parquet", data_files=files)

    return DatasetSource(load, f"parquet files in {where}")


def _parquet_files(folder: Path) -> Dict[str, List[str]]:
    files: Dict[str, List[str]] = {}
    for path in sorted(folder.glob("*.parquet")):
        for split, hub_split in HUB_SPLITS.items():
            if path.name.startswith((hub_split, split)):
                files.setdefault(hub_split, []).append(str(path))
    return files


def _source_in_folder(folder: Path, lang: str, strict: bool = False) -> Optional[Source]:
    """The WikiANN source for `lang` in `folder`, in any supported layout, or None.
    With `strict`, an extracted folder missing a split file is an error naming it."""
    if (folder / "dataset_dict.json").is_file():
        return disk_source(folder)
    present = [split for split in SPLITS if (folder / split).is_file()]
    if len(present) == len(SPLITS):
        return ArchiveSource(folder, lang)
    if present and strict:
        missing = [split for split in SPLITS if split not in present]
        raise WikiANNError(
            f"{folder / missing[0]}: missing split file '{missing[0]}' (the folder has {', '.join(present)})"
        )
    parquet = _parquet_files(folder)
    if parquet:
        return parquet_source(parquet, folder)
    for name in (f"{lang}.tar.gz", f"{lang}.tgz"):
        if (folder / name).is_file():
            return ArchiveSource(folder / name, lang)
    if (folder / lang).is_dir():
        return _source_in_folder(folder / lang, lang, strict)
    return None


def available_languages(folder: PathLike) -> List[str]:
    """The languages a local WikiANN folder holds."""
    folder = Path(folder)
    langs = set()
    for path in folder.iterdir():
        if path.name.endswith((".tar.gz", ".tgz")):
            langs.add(path.name.rsplit(".t", 1)[0])
        elif path.is_dir() and _source_in_folder(path, path.name) is not None:
            langs.add(path.name)
    return sorted(langs)


def find_local_data(root: PathLike = ".") -> Optional[Path]:
    """The local WikiANN folder `data = "auto"` uses: $WIKIANN_DATA, then
    `assets/wikiann`, then `../shared/wikiann` (relative to the project root)."""
    env = os.environ.get(DATA_ENV_VAR)
    if env:
        return Path(env)
    for candidate in LOCAL_DATA_CANDIDATES:
        path = Path(root) / candidate
        if path.exists():
            return path
    return None


def resolve_source(data: str, lang: str, root: PathLike = ".") -> Source:
    """Pick the WikiANN source a project var names.

    data (str): "auto" (a local folder if one is configured or present, else the hub),
        "hub" or "hub:<dataset id>", or a path: an archive, an extracted folder, a
        `save_to_disk` folder, a folder of parquet files, or a folder holding any of
        these per language (`<lang>.tar.gz`, `<lang>/`).
    lang (str): The WikiANN language code.
    root (PathLike): The project root, for "auto".
    RETURNS (Source): The source; its `description` says which was used.
    RAISES (WikiANNError): One line when the path or the language isn't there.
    """
    if data == "auto":
        local = find_local_data(root)
        if local is None:
            msg.info(
                f"No local WikiANN folder (${DATA_ENV_VAR}, "
                f"{', '.join(LOCAL_DATA_CANDIDATES)}): using the Hugging Face hub"
            )
            return hub_source(lang)
        data = str(local)
    if data == "hub" or data.startswith("hub:"):
        return hub_source(lang, data[4:] or HUB_DATASET)
    path = Path(data)
    if not path.exists():
        raise WikiANNError(
            f"{path}: WikiANN data not found (give a folder, an archive, or 'hub')"
        )
    if path.is_file():
        if path.name.endswith((".tar.gz", ".tgz")):
            return ArchiveSource(path, lang)
        raise WikiANNError(f"{path}: not a WikiANN archive (expected <lang>.tar.gz)")
    source = _source_in_folder(path, lang, strict=True)
    if source is None:
        langs = available_languages(path)
        raise WikiANNError(
            f"{path}: no WikiANN data for language '{lang}'; available: "
            f"{', '.join(langs) if langs else 'none'}"
        )
    return source
