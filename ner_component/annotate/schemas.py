"""The output schemas of `annotate` (and of its Ray variant): what one input line becomes.

- `native`: `{"id", "entities": [{"label", "start", "end", "text", "score"}]}`.
- `hf`: what `transformers.pipeline("token-classification", aggregation_strategy=...)`
  returns for the line's text: a list of `{"entity_group", "score", "word", "start",
  "end"}`, so code written for the Hugging Face pipeline reads it unchanged. Line N of
  the output is line N of the input (the list carries no id).
- `prodigy`: a Prodigy task, `{"text", "spans": [{"start", "end", "label"}], "meta":
  {"id", "scores"}}`, which `prodigy ner.correct` / `ner.manual` take as their source.
- `docbin`: a spaCy `.spacy` file (`DocBin`) of one `Doc` per line with its `doc.ents`,
  the id in `doc.user_data["id"]` and the entity scores in `doc.user_data["scores"]`;
  read it with `DocBin().from_disk(path).get_docs(nlp.vocab)`. It is held in memory
  until the end of the run (a DocBin is one file), so memory grows with the input.

A malformed line is `{"id", "error"}` in every JSON schema under `--on-error record`; in a
DocBin it is an empty `Doc` with `user_data` `{"id", "error"}`, so doc N is line N.

The conversion runs where the doc is (inside the memory zone of `annotate_lines`, on a
Ray worker): `line_record` turns a doc into plain JSON-ready values; the writers put
them in the output on the driver.
"""
import json
import os
import sys
from contextlib import contextmanager
from typing import IO, Any, Dict, Iterator, List, Optional

from spacy.tokens import Doc, DocBin, Span
from spacy.vocab import Vocab

from ner_component.errors import NerComponentError
from ner_component.util import PathLike, atomic_path

SCHEMAS = ("native", "hf", "prodigy", "docbin")
STDIO = "-"


def check_schema(schema: str, output_path: PathLike) -> None:
    """Refuse an unknown schema, or a DocBin to stdout (a DocBin is a binary file).

    RAISES (NerComponentError): One line naming the value.
    """
    if schema not in SCHEMAS:
        raise NerComponentError(f"schema '{schema}' is not one of {', '.join(SCHEMAS)}")
    if schema == "docbin" and str(output_path) == STDIO:
        raise NerComponentError("schema docbin writes a .spacy file: give an OUTPUT path, not -")


def line_record(schema: str, line_id: Any, text: str, entities: List[Dict[str, Any]], doc: Optional[Doc]) -> Any:
    """The JSON-ready value one good line becomes.

    schema (str): One of `SCHEMAS`.
    line_id (Any): The line's id.
    text (str): The line's text.
    entities (List[Dict[str, Any]]): Its entities, as `doc_entities` gives them
        (character offsets into `text`).
    doc (Optional[Doc]): The doc, for `docbin` (its words and spaces); a text cut into
        pieces (longer than `nlp.max_length`) is passed as its pieces joined.
    RETURNS (Any): The record of the line in `schema`.
    """
    if schema == "native":
        return {"id": line_id, "entities": entities}
    if schema == "hf":
        return [
            {"entity_group": e["label"], "score": e["score"], "word": e["text"], "start": e["start"], "end": e["end"]}
            for e in entities
        ]
    if schema == "prodigy":
        spans = [{"start": e["start"], "end": e["end"], "label": e["label"]} for e in entities]
        return {"text": text, "spans": spans, "meta": {"id": line_id, "scores": [e["score"] for e in entities]}}
    if schema == "docbin":
        assert doc is not None
        return {
            "id": line_id,
            "words": [t.text for t in doc],
            "spaces": [bool(t.whitespace_) for t in doc],
            "entities": entities,
        }
    raise NerComponentError(f"schema '{schema}' is not one of {', '.join(SCHEMAS)}")


def record_to_json(record: Any) -> str:
    """One output line (without its newline): compact JSON, UTF-8 kept as is."""
    return json.dumps(record, ensure_ascii=False)


class JsonLinesWriter:
    """Writes each record as one JSON line."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out

    def write(self, line: str) -> None:
        """line (str): A record as `record_to_json` gives it."""
        self.out.write(line + "\n")


class DocBinWriter:
    """Collects the records of the `docbin` schema into one `DocBin`.

    The docs have their own vocab, apart from the pipeline's, whose strings the
    annotation frees in memory zones.
    """

    def __init__(self) -> None:
        self.vocab = Vocab()
        self.docbin = DocBin(attrs=["ORTH", "ENT_IOB", "ENT_TYPE"], store_user_data=True)

    def write(self, line: str) -> None:
        """line (str): A `docbin` record as JSON, or an error record."""
        record = json.loads(line)
        if "error" in record:
            doc = Doc(self.vocab, words=[])
            doc.user_data.update({"id": record["id"], "error": record["error"]})
        else:
            doc = Doc(self.vocab, words=record["words"], spaces=record["spaces"])
            ents = [doc.char_span(e["start"], e["end"], label=e["label"]) for e in record["entities"]]
            if any(span is None for span in ents):  # pragma: no cover - entities are token spans
                raise NerComponentError(f"line of id {record['id']}: an entity is not on token boundaries")
            doc.ents = [span for span in ents if isinstance(span, Span)]
            doc.user_data.update({"id": record["id"], "scores": [e["score"] for e in record["entities"]]})
        self.docbin.add(doc)


@contextmanager
def stdout_for_records_only(output_path: PathLike) -> Iterator[Optional[IO[str]]]:
    """When the output is stdout ("-"), keep stdout for the records alone while the
    block runs: yield a stream on the process's stdout for them, and meanwhile send
    everything else that would reach stdout (`print`, `sys.stdout`, writes to file
    descriptor 1 from C code) to stderr. Ray's driver, for one, prints the errors it
    hears of ("A worker died or was killed ...") to stdout whatever `log_to_driver`
    says. Yields None, changing nothing, for any other output.

    output_path (PathLike): The output, "-" for stdout.
    YIELDS (Optional[IO[str]]): The records' stream, or None.
    """
    if str(output_path) != STDIO:
        yield None
        return
    original = sys.stdout
    original.flush()
    try:
        on_fd_1 = original.fileno() == 1
    except (AttributeError, OSError, ValueError):  # a notebook's or a test's capture
        on_fd_1 = False
    if not on_fd_1:
        # Python-level only: the records to the stream sys.stdout was, prints elsewhere
        sys.stdout = sys.stderr
        try:
            yield original
        finally:
            original.flush()
            sys.stdout = original
        return
    encoding = getattr(original, "encoding", None) or "utf-8"
    records = open(os.dup(1), "w", encoding=encoding, newline="\n", closefd=True)
    saved_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    try:
        yield records
    finally:
        records.flush()
        sys.stderr.flush()
        sys.stdout = original
        os.dup2(saved_fd, 1)
        os.close(saved_fd)
        records.close()


@contextmanager
def open_output(path: PathLike, stdout: Optional[IO[str]] = None) -> Iterator[IO[str]]:
    """Open an output for writing text; "-" is stdout (or the `stdout` stream given,
    as `stdout_for_records_only` yields). A file is written to a temporary file
    renamed into place only when the block succeeds, so a failed run leaves nothing
    half-written (and an existing output untouched)."""
    if str(path) == STDIO:
        stream = stdout if stdout is not None else sys.stdout
        yield stream
        stream.flush()
        return
    with atomic_path(path) as tmp:
        with tmp.open("w", encoding="utf8", newline="\n") as f:
            yield f


@contextmanager
def open_writer(schema: str, output_path: PathLike, stdout: Optional[IO[str]] = None) -> Iterator[Any]:
    """A writer for the schema's output; the file appears, atomically, only when the
    block succeeds.

    schema (str): One of `SCHEMAS`.
    output_path (PathLike): The output, "-" for stdout (not for `docbin`).
    stdout (Optional[IO[str]]): The stream for "-" (default: `sys.stdout`).
    YIELDS (Any): A writer with `write(line)`.
    """
    if schema == "docbin":
        writer = DocBinWriter()
        yield writer
        with atomic_path(output_path) as tmp:
            writer.docbin.to_disk(tmp)
    else:
        with open_output(output_path, stdout) as out:
            yield JsonLinesWriter(out)
