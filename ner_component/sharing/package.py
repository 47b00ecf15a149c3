"""Build a self-contained spaCy model wheel with a Hugging Face model card.

The wheel carries the pipeline's own code (`ner_component/runtime/*.py`, bundled
with `spacy package --code`), so it installs from any index with only spaCy,
spacy-transformers (which brings torch and transformers) and what the backbone's
tokenizer needs: never `ner-component`, its data tools or its offline backbones.
"""
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as installed_version
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

from spacy.tokens import Doc
from wasabi import msg

from ner_component.backbones import OFFLINE_HUB_IDS
from ner_component.errors import NerComponentError
from ner_component.reporting import markdown_table, per_type_table, scores_table
from ner_component.util import PathLike, read_json

if TYPE_CHECKING:
    from huggingface_hub import ModelCard
    from spacy.language import Language

WIKIANN_SOURCE = {
    "name": "WikiANN (PAN-X), balanced splits of Rahimi, Li & Cohn (2019)",
    "url": "https://huggingface.co/datasets/unimelb-nlp/wikiann",
    "license": "ODC-BY",
    "author": "Pan et al. (2017); Rahimi, Li & Cohn (2019)",
}
WIKIANN_HUB_ID = "unimelb-nlp/wikiann"
RUNTIME_DIR = Path(__file__).parent.parent / "runtime"
# The distribution of this project: spaCy records it as a requirement of any pipeline
# whose registered functions it finds through our entry points; the wheel carries
# that code itself, so the requirement is dropped.
OWN_DISTRIBUTION = "ner-component"
# Written beside the pipeline files, and embedded in the card.
CURVE_FILE = "training_curve.png"
CARD_TEMPLATE = "---\n{{ card_data }}\n---\n{{ body }}"
FRAMEWORKS = ("spacy", "spacy-transformers", "transformers", "torch", "huggingface-hub")
SEQEVAL_METRICS = ("precision", "recall", "f1", "accuracy")


class ShareError(NerComponentError):
    """Packaging or pushing a model failed; the message says why, on one line."""


def widget_texts(docs: List[Doc], n: int = 3, min_ents: int = 2) -> List[str]:
    """Texts for the model card's widget: the first test sentences with at least
    `min_ents` entities (fewer if the split has none such)."""
    chosen = [doc.text.strip() for doc in docs if len(doc.ents) >= min_ents][:n]
    if len(chosen) < n:
        chosen += [doc.text.strip() for doc in docs if doc.ents and doc.text.strip() not in chosen][: n - len(chosen)]
    return chosen


def is_local_model(name: str) -> bool:
    """Whether a transformer name is a folder on this machine rather than an
    offline alias or a hub id."""
    return name not in OFFLINE_HUB_IDS and (os.path.isabs(name) or name.startswith(".") or Path(name).exists())


def backbone_hub_id(transformer: Optional[str]) -> Optional[str]:
    """The Hugging Face hub id of the backbone a model was trained from: the one an
    offline alias was built from, a hub id as it is, None for a local folder.

    transformer (Optional[str]): What training was given (`train_info.json`).
    RETURNS (Optional[str]): The hub id, or None when unknown.
    """
    if not transformer or is_local_model(transformer):
        return None
    return OFFLINE_HUB_IDS.get(transformer, transformer)


def hub_license(license: str) -> str:
    """The license id the Hub accepts: lower case, dashes ("MIT" -> "mit")."""
    return "-".join(license.split()).lower()


def framework_versions() -> Dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in FRAMEWORKS:
        try:
            versions[name] = installed_version(name)
        except PackageNotFoundError:
            continue
    return versions


def frozen_description(info: Dict[str, Any]) -> str:
    """What training left frozen, for the model card, from `train_info.json`."""
    parts = [f"`{p}`" for p in info.get("frozen_parameters", [])]
    if info.get("frozen_lowest_layers"):
        parts.append(f"the lowest {info['frozen_lowest_layers']} encoder layers")
    return ", ".join(parts) or "nothing"


def _config_value(config_text: str, *keys: str) -> Optional[Any]:
    """The value at `keys` in a config's text, uninterpolated; None where it has none."""
    from thinc.api import Config

    value: Any = Config().from_str(config_text, interpolate=False)
    try:
        for key in keys:
            value = value[key]
    except (KeyError, TypeError):
        return None
    return value


def head_description(config_text: str) -> str:
    """The architecture of the `ner` component's model, for the model card: the
    softmax head (`ner_component.TokenClassifier.v1`), the same with a CRF
    (`ner_component.TokenClassifierCRF.v1`), or spaCy's own."""
    architecture = _config_value(config_text, "components", "ner", "model", "@architectures")
    return f"`{architecture}`" if architecture is not None else "unknown"


def dtype_setting(config_text: str) -> Optional[str]:
    """The transformer's `cpu_inference_dtype` in the config ("auto", "float32",
    "bfloat16"); None where the config has none (spacy-transformers' own layer)."""
    setting = _config_value(config_text, "components", "transformer", "model", "cpu_inference_dtype")
    return str(setting) if setting is not None else None


def model_card(
    meta: Dict[str, Any],
    lang: str,
    result: Dict[str, Any],
    train_info: Optional[Dict[str, Any]],
    examples: List[str],
    config_text: str,
    curve: Optional[str] = None,
) -> "ModelCard":
    """The model card: Hub metadata (one YAML block, written by `huggingface_hub`),
    then what the model is, how it was trained and how it scores (seqeval strict IOB2
    on the WikiANN test split, overall and per entity type).

    meta (Dict[str, Any]): The pipeline meta (name, version, license, ...).
    lang (str): The WikiANN language code.
    result (Dict[str, Any]): The cross-check result (`seqeval.json`).
    train_info (Optional[Dict[str, Any]]): `train_info.json` of the training run.
    examples (List[str]): Widget example texts from the test split.
    config_text (str): The pipeline's config.cfg.
    curve (Optional[str]): File name of the training curve beside the card, or None.
    RETURNS (ModelCard): The card; `str(card)` is the README.
    """
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    package = f"{meta['lang']}_{meta['name']}"
    strict = result["seqeval_strict"]
    default = result["seqeval_default"]
    info = train_info or {}
    base_model = backbone_hub_id(info.get("transformer"))
    card_data = ModelCardData(
        language=[lang],
        license=hub_license(meta.get("license", "other")),
        library_name="spacy",
        pipeline_tag="token-classification",
        tags=["spacy", "token-classification", "named-entity-recognition"],
        datasets=[WIKIANN_HUB_ID],
        metrics=list(SEQEVAL_METRICS),
        base_model=base_model,
        model_name=package,
        eval_results=[
            EvalResult(
                task_type="token-classification",
                task_name="Named Entity Recognition",
                dataset_type=WIKIANN_HUB_ID,
                dataset_name=f"WikiANN ({lang})",
                dataset_config=lang,
                dataset_split="test",
                metric_type=name,
                # exactly seqeval.json's figure, unrounded
                metric_value=strict[name],
                metric_name=f"{name.capitalize()} (seqeval strict IOB2)",
            )
            for name in SEQEVAL_METRICS
        ],
        widget=[{"text": text} for text in examples],
    )
    facts = _key_value_table(
        [
            ("Package", f"`{package}` {meta['version']}"),
            ("spaCy", f"`{meta.get('spacy_version', '')}`"),
            ("Backbone", f"`{base_model}`" if base_model else "a local model folder (see config.cfg)"),
            ("Labels", ", ".join(meta.get("labels", {}).get("ner", []) or strict["per_type"].keys())),
            ("Training data", f"WikiANN `{lang}` train split (dev split for model selection)"),
            ("License", f"{meta.get('license', 'unknown')} (data: {WIKIANN_SOURCE['license']})"),
        ]
    )
    training = _key_value_table(
        [
            ("Config", f"`{info.get('config', 'config.cfg')}` (full config in the package: `config.cfg`)"),
            ("Overrides", f"`{json.dumps(info.get('overrides', {}))}`"),
            ("Step budget", f"{info['max_steps']:,} steps" if info.get("max_steps") else "unknown"),
            ("Training dtype", f"{info['training_dtype']} (`{info.get('training_dtype_setting')}`)" if info.get("training_dtype") else "unknown"),
            ("Frozen", frozen_description(info)),
            ("Head", head_description(config_text)),
            ("Training time", f"{info.get('train_seconds', 'unknown')} s on {info.get('hardware', 'unknown hardware')}"),
        ]
    )
    scores = scores_table([("seqeval strict IOB2", strict), ("seqeval default", default)])
    per_type = per_type_table(strict["per_type"])
    versions = _key_value_table(list(framework_versions().items()))
    curve_section = (
        f"\n![Dev F1 and training loss against steps and training minutes]({curve})\n" if curve else ""
    )
    body = f"""
# {package}

Named-entity recognition (PER, ORG, LOC) for WikiANN language `{lang}`: a spaCy
pipeline `{meta.get('pipeline')}` on a transformer backbone, trained on the WikiANN
train split and evaluated on its test split ({result['n_docs']} sentences).

{facts}

## Use

The wheel holds the pipeline's code: it needs spaCy and spacy-transformers only.

```bash
pip install {package}-{meta['version']}-py3-none-any.whl
```

```python
import spacy

nlp = spacy.load("{package}")
for doc in nlp.pipe(texts):  # nlp.batch_size texts at a time
    print([(ent.text, ent.label_, ent._.confidence) for ent in doc.ents])
```

## Evaluation (WikiANN `{lang}` test split)

Scored on WikiANN's own tokens with seqeval in strict IOB2 mode (exact spans; the
same figures as spaCy's scorer, checked at build time) and in seqeval's default mode.
{prediction_description(result.get("predicted_with"), dtype_setting(config_text))}

{scores}

{per_type}

## Training

{training}
{curve_section}
Built with the `wikiann-ner` spaCy project (`spacy project run all`).

## Framework versions

{versions}

## Data

{WIKIANN_SOURCE['name']}, {WIKIANN_SOURCE['url']} ({WIKIANN_SOURCE['license']}).
WikiANN is silver-standard data derived from Wikipedia links: expect noise in both
the training labels and the test figures.

<details><summary>config.cfg</summary>

```ini
{config_text.strip()}
```

</details>
"""
    return ModelCard.from_template(card_data, template_str=CARD_TEMPLATE, body=body)


def prediction_description(predicted_with: Optional[Dict[str, Any]], setting: Optional[str] = None) -> str:
    """The card's sentence on how the test split was predicted: the dtype matters on
    CPUs, where `cpu_inference_dtype = "auto"` (`setting`, from the config) picks
    bfloat16 or float32 by the CPU that loads the pipeline (empty without the
    evaluate step's record)."""
    if not predicted_with or not predicted_with.get("device"):
        return ""
    device = predicted_with["device"]
    batch = predicted_with.get("batch_size")
    batch_text = f", `nlp.pipe` batches of {batch:,}" if isinstance(batch, int) else ""
    if device != "cpu":
        return f"The test split was predicted on a GPU ({device}){batch_text}.\n"
    dtype = predicted_with.get("cpu_inference_dtype")
    if dtype is None:  # no transformer
        return f"The test split was predicted on a CPU{batch_text}.\n"
    predicted = f"The test split was predicted on a CPU in {dtype}{batch_text}."
    if setting != "auto":
        fixed = f' The config\'s `cpu_inference_dtype = "{setting}"` keeps it on every CPU.' if setting else ""
        return predicted + fixed + "\n"
    return predicted + (
        ' With the config\'s `cpu_inference_dtype = "auto"` the pipeline predicts in bfloat16 on CPUs that compute it '
        "natively (`avx512_bf16` or `amx_bf16`) and in float32 on the others; the two give the "
        "same entities but for a few near a decision boundary.\n"
    )


def _key_value_table(rows: List[Tuple[str, Any]]) -> str:
    """A two-column table without a header: a name and its value per row."""
    return markdown_table(["", ""], rows, align="ll")


def portable_config(config_path: PathLike, transformer: Optional[str]) -> None:
    """Rewrite a pipeline's config.cfg so that it records no path of this machine:
    `paths.transformer` becomes what training was given (an offline alias or a hub id),
    or "" for a local folder (not null: the transformer architectures type `name` as a
    str; loading reads the weights from the pipeline, not from `name`); any other
    absolute path in [paths] becomes null.

    config_path (PathLike): The config.cfg to rewrite in place.
    transformer (Optional[str]): The transformer training was given (train_info.json).
    """
    from thinc.api import Config

    config = Config().from_disk(config_path, interpolate=False)
    paths = config.get("paths", {})
    for key, value in paths.items():
        if isinstance(value, str) and os.path.isabs(value):
            paths[key] = "" if key == "transformer" else None
    if "transformer" in paths:
        paths["transformer"] = "" if not transformer or is_local_model(transformer) else transformer
    config.to_disk(config_path)


def runtime_code_files() -> List[Path]:
    """The `--code` files of a packaged pipeline, in import order."""
    from ner_component.runtime import RUNTIME_MODULES

    return [RUNTIME_DIR / f"{name}.py" for name in RUNTIME_MODULES]


def tokenizer_requirements(nlp: "Language") -> List[str]:
    """What the pipeline's transformer tokenizers need beyond transformers itself:
    sentencepiece for tokenizers with a sentencepiece model (XLM-R, multilingual-e5)."""
    from spacy.util import get_minor_version_range
    from spacy_transformers import Transformer

    needs_sentencepiece = False
    for _, pipe in nlp.pipeline:
        if isinstance(pipe, Transformer):
            files = getattr(pipe.model.tokenizer, "vocab_files_names", {}) or {}
            needs_sentencepiece |= any(str(f).endswith(".model") for f in files.values())
    if not needs_sentencepiece:
        return []
    try:
        return [f"sentencepiece{get_minor_version_range(installed_version('sentencepiece'))}"]
    except PackageNotFoundError:
        return ["sentencepiece"]


def requirement_name(requirement: str) -> str:
    return re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0].strip().lower().replace("_", "-")


def build_package(
    model_dir: PathLike,
    output_dir: PathLike,
    lang: str,
    name: str,
    version: str,
    seqeval_json: PathLike,
    test_path: PathLike,
    license: str = "MIT",
    curve: Optional[PathLike] = None,
) -> Path:
    """Build a self-contained wheel with `spacy package --code`, with the model card
    as its README.

    model_dir (PathLike): The trained pipeline (e.g. training/en/model-best).
    output_dir (PathLike): Where the package folder and wheel go.
    lang (str): The WikiANN language code.
    name (str): The package name without the language, e.g. "wikiann_trf".
    version (str): The package version.
    seqeval_json (PathLike): The cross-check result, for the card's figures.
    test_path (PathLike): The test `.spacy` file, for the widget examples.
    license (str): The model's license.
    curve (Optional[PathLike]): The training curve PNG, shipped beside the card.
    RETURNS (Path): The wheel.
    """
    import spacy
    from spacy.cli.package import package
    from spacy.vocab import Vocab

    from ner_component.data.convert import read_docs

    model_dir = Path(model_dir)
    result = read_json(seqeval_json)
    train_info_path = model_dir.parent / "train_info.json"
    train_info = read_json(train_info_path) if train_info_path.exists() else None
    examples = widget_texts(read_docs(test_path, Vocab()))
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="package-") as tmp:
        staging = Path(tmp) / model_dir.name
        shutil.copytree(model_dir, staging)
        portable_config(staging / "config.cfg", (train_info or {}).get("transformer"))
        curve_name = None
        if curve is not None and Path(curve).exists():
            shutil.copy(curve, staging / CURVE_FILE)
            curve_name = CURVE_FILE
        meta = read_json(staging / "meta.json")
        strict = result["seqeval_strict"]
        meta.update(
            {
                "name": name,
                "version": version,
                "license": license,
                "description": f"Transformer NER (PER, ORG, LOC) for WikiANN '{lang}'; "
                f"test F1 {100 * strict['f1']:.2f} (seqeval strict IOB2).",
                "sources": [WIKIANN_SOURCE],
                "requirements": tokenizer_requirements(spacy.load(staging)),
            }
        )
        (staging / "meta.json").write_text(json.dumps(meta, indent=2), encoding="utf8")
        card = model_card(meta, lang, result, train_info, examples, (staging / "config.cfg").read_text("utf8"), curve_name)
        card.save(staging / "README.md")
        # The package folder only: its requirements are fixed before the wheel is built.
        package(
            staging, output_dir, code_paths=runtime_code_files(), name=name, version=version,
            create_wheel=False, create_sdist=False, require_parent=True, force=True,
        )
    package_name = f"{meta['lang']}_{name}"
    main_path = output_dir / f"{package_name}-{version}"
    requirements = drop_own_requirement(main_path / "meta.json")
    wheel = build_wheel(main_path, f"{package_name}-{version}")
    msg.good(f"Built {wheel}", f"requires {', '.join(requirements)}")
    return wheel


def drop_own_requirement(meta_path: Path) -> List[str]:
    """Remove `ner-component` from the requirements `spacy package` recorded in the
    package's meta.json (setup.py reads them from there).

    RETURNS (List[str]): The requirements kept.
    """
    meta = read_json(meta_path)
    meta["requirements"] = [r for r in meta.get("requirements", []) if requirement_name(r) != OWN_DISTRIBUTION]
    meta_path.write_text(json.dumps(meta, indent=2), encoding="utf8")
    return meta["requirements"]


def build_wheel(main_path: Path, versioned_name: str) -> Path:
    """Build the package folder's wheel as `spacy package --build wheel` does, without
    build isolation: setuptools and wheel are installed with the project, so no index
    is needed.

    RETURNS (Path): The wheel.
    """
    proc = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "."],
        cwd=main_path, capture_output=True, text=True,
    )
    if proc.returncode != 0:
        last = (proc.stderr.strip() or proc.stdout.strip() or "no output").splitlines()[-1]
        raise ShareError(f"building the wheel in {main_path} failed: {last}")
    wheel = main_path / "dist" / f"{re.sub('_+', '_', versioned_name)}-py3-none-any.whl"
    if not wheel.exists():
        raise ShareError(f"python -m build wrote no wheel {wheel.name} in {main_path / 'dist'}")
    return wheel


def wheel_requirements(wheel: PathLike) -> List[str]:
    """The Requires-Dist lines of a wheel."""
    import zipfile

    with zipfile.ZipFile(wheel) as whl:
        metadata = next(whl.read(n).decode("utf8") for n in whl.namelist() if n.endswith(".dist-info/METADATA"))
    return [line.split(":", 1)[1].strip() for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
