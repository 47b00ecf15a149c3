"""Build an installable spaCy model package with a model card."""
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional

from spacy.tokens import Doc
from wasabi import msg

from .util import fail, PathLike, read_json

WIKIANN_SOURCE = {
    "name": "WikiANN (PAN-X), balanced splits of Rahimi, Li & Cohn (2019)",
    "url": "https://huggingface.co/datasets/unimelb-nlp/wikiann",
    "license": "ODC-BY",
    "author": "Pan et al. (2017); Rahimi, Li & Cohn (2019)",
}


def widget_texts(docs: List[Doc], n: int = 3, min_ents: int = 2) -> List[str]:
    """Texts for the model card's widget: the first test sentences with at least
    `min_ents` entities (fewer if the split has none such)."""
    chosen = [doc.text.strip() for doc in docs if len(doc.ents) >= min_ents][:n]
    if len(chosen) < n:
        chosen += [doc.text.strip() for doc in docs if doc.ents and doc.text.strip() not in chosen][: n - len(chosen)]
    return chosen


def model_card(
    meta: Dict[str, Any],
    lang: str,
    result: Dict[str, Any],
    train_info: Optional[Dict[str, Any]],
    examples: List[str],
    config_text: str,
) -> str:
    """The package README: Hugging Face YAML metadata, then what the model is, how it
    was trained and how it scores (seqeval strict IOB2 on the WikiANN test split).

    meta (Dict[str, Any]): The pipeline meta (name, version, license, ...).
    lang (str): The WikiANN language code.
    result (Dict[str, Any]): The cross-check result (`seqeval.json`).
    train_info (Optional[Dict[str, Any]]): `train_info.json` of the training run.
    examples (List[str]): Widget example texts from the test split.
    config_text (str): The pipeline's config.cfg.
    RETURNS (str): The Markdown model card.
    """
    package = f"{meta['lang']}_{meta['name']}"
    strict = result["seqeval_strict"]
    metrics = [
        {"name": f"{name.capitalize()} (seqeval strict IOB2)", "type": name, "value": round(strict[name], 4)}
        for name in ("precision", "recall", "f1", "accuracy")
    ]
    yaml_lines = [
        "---",
        f"language:\n- {lang}",
        f"license: {meta.get('license', 'unknown')}",
        "library_name: spacy",
        "tags:\n- spacy\n- token-classification\n- named-entity-recognition",
        "datasets:\n- unimelb-nlp/wikiann",
        "metrics:\n- precision\n- recall\n- f1\n- accuracy",
        "pipeline_tag: token-classification",
        "widget:",
        *[f"- text: {json.dumps(text, ensure_ascii=False)}" for text in examples],
        "model-index:",
        f"- name: {package}",
        "  results:",
        "  - task:",
        "      type: token-classification",
        "      name: Named Entity Recognition",
        "    dataset:",
        f"      name: WikiANN ({lang})",
        "      type: unimelb-nlp/wikiann",
        f"      config: {lang}",
        "      split: test",
        "    metrics:",
        *[
            f"    - name: {m['name']}\n      type: {m['type']}\n      value: {m['value']}"
            for m in metrics
        ],
        "---",
    ]
    info = train_info or {}
    transformer = info.get("transformer") or "see config.cfg"
    per_type = "\n".join(
        f"| {label} | {100 * row['precision']:.2f} | {100 * row['recall']:.2f} | "
        f"{100 * row['f1']:.2f} | {row['support']} |"
        for label, row in strict["per_type"].items()
    )
    default = result["seqeval_default"]
    body = f"""
# {package}

Named-entity recognition (PER, ORG, LOC) for WikiANN language `{lang}`: a spaCy
pipeline `{meta.get('pipeline')}` on a transformer backbone, trained on the WikiANN
train split and evaluated on its test split ({result['n_docs']} sentences).

| | |
|---|---|
| Package | `{package}` {meta['version']} |
| spaCy | `{meta.get('spacy_version', '')}` |
| Backbone | `{transformer}` |
| Labels | {', '.join(meta.get('labels', {}).get('ner', []) or strict['per_type'].keys())} |
| Training data | WikiANN `{lang}` train split (dev split for model selection) |
| License | {meta.get('license', 'unknown')} (data: {WIKIANN_SOURCE['license']}) |

## Use

```bash
pip install {package}-{meta['version']}-py3-none-any.whl
```

```python
import spacy

nlp = spacy.load("{package}")
for doc in nlp.pipe(texts, batch_size=256):
    print([(ent.text, ent.label_, ent.start_char, ent.end_char) for ent in doc.ents])
```

## Evaluation (WikiANN `{lang}` test split)

Scored on WikiANN's own tokens with seqeval in strict IOB2 mode (exact spans; the
same figures as spaCy's scorer, checked at build time) and in seqeval's default mode.

| scorer | precision | recall | F1 | token accuracy |
|---|---:|---:|---:|---:|
| seqeval strict IOB2 | {100 * strict['precision']:.2f} | {100 * strict['recall']:.2f} | {100 * strict['f1']:.2f} | {100 * strict['accuracy']:.2f} |
| seqeval default | {100 * default['precision']:.2f} | {100 * default['recall']:.2f} | {100 * default['f1']:.2f} | {100 * default['accuracy']:.2f} |

| type | precision | recall | F1 | support |
|---|---:|---:|---:|---:|
{per_type}

## Training

| | |
|---|---|
| Config | `{info.get('config', 'config.cfg')}` (full config in the package: `config.cfg`) |
| Overrides | `{json.dumps(info.get('overrides', {}))}` |
| Training time | {info.get('train_seconds', 'unknown')} s on {info.get('hardware', 'unknown hardware')} |

Built with the `wikiann-ner` spaCy project (`spacy project run all`).

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
    return "\n".join(yaml_lines) + "\n" + body


def build_package(
    model_dir: PathLike,
    output_dir: PathLike,
    lang: str,
    name: str,
    version: str,
    seqeval_json: PathLike,
    test_path: PathLike,
    license: str = "MIT",
) -> Path:
    """Build a wheel with `spacy package`, with a model card as its README.

    model_dir (PathLike): The trained pipeline (e.g. training/en/model-best).
    output_dir (PathLike): Where the package folder and wheel go.
    lang (str): The WikiANN language code.
    name (str): The package name without the language, e.g. "wikiann_trf".
    version (str): The package version.
    seqeval_json (PathLike): The cross-check result, for the card's figures.
    test_path (PathLike): The test `.spacy` file, for the widget examples.
    license (str): The model's license.
    RETURNS (Path): The wheel.
    """
    from spacy.cli.package import package
    from spacy.vocab import Vocab

    from .convert import read_docs

    model_dir = Path(model_dir)
    result = read_json(seqeval_json)
    train_info_path = model_dir.parent / "train_info.json"
    train_info = read_json(train_info_path) if train_info_path.exists() else None
    examples = widget_texts(read_docs(test_path, Vocab()))
    with tempfile.TemporaryDirectory(prefix="package-") as tmp:
        staging = Path(tmp) / model_dir.name
        shutil.copytree(model_dir, staging)
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
            }
        )
        (staging / "meta.json").write_text(json.dumps(meta, indent=2), encoding="utf8")
        card = model_card(meta, lang, result, train_info, examples, (staging / "config.cfg").read_text("utf8"))
        (staging / "README.md").write_text(card, encoding="utf8")
        output_dir = Path(output_dir)
        output_dir.mkdir(parents=True, exist_ok=True)
        package(staging, output_dir, create_wheel=True, create_sdist=False, force=True, name=name, version=version)
    package_name = f"{meta['lang']}_{name}"
    wheels = sorted((output_dir / f"{package_name}-{version}" / "dist").glob("*.whl"))
    if not wheels:
        fail(f"spacy package wrote no wheel under {output_dir}")
    msg.good(f"Built {wheels[-1]}")
    if any(req.startswith("ner-component") for req in _requirements(wheels[-1])):
        build_own_wheel(output_dir)
    return wheels[-1]


def _requirements(wheel: Path) -> List[str]:
    import zipfile

    with zipfile.ZipFile(wheel) as whl:
        metadata = next(whl.read(n).decode("utf8") for n in whl.namelist() if n.endswith(".dist-info/METADATA"))
    return [line.split(":", 1)[1].strip() for line in metadata.splitlines() if line.startswith("Requires-Dist:")]


def build_own_wheel(output_dir: PathLike) -> Optional[Path]:
    """Build the `ner-component` wheel next to a model that needs it, so that both
    install into a fresh environment without an index: `pip install packages/*.whl`.

    output_dir (PathLike): The folder to write the wheel to.
    RETURNS (Optional[Path]): The wheel, or None when the source tree isn't here.
    """
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    if not (root / "pyproject.toml").exists():
        msg.info("The model needs ner-component: install it beside the model (no source tree to build it from here)")
        return None
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(output_dir), str(root)],
        check=True,
    )
    wheel = sorted(Path(output_dir).glob("ner_component-*.whl"))[-1]
    msg.good(f"Built {wheel} (the model's registered functions)")
    return wheel
