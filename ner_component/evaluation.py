"""Evaluate a trained pipeline: spaCy's scorer, then the seqeval cross-check."""
from pathlib import Path
from typing import Any, Dict, Optional

from wasabi import msg

from .convert import read_docs
from .crosscheck import crosscheck, markdown_table, plot_per_type
from .util import fail, PathLike, read_json, require_device, write_json_atomic, write_text_atomic


def spacy_evaluate(model: PathLike, test_path: PathLike, output: PathLike, gpu_id: int = -1) -> Dict[str, Any]:
    """Run `spacy evaluate` on the test split and write its JSON.

    model (PathLike): The trained pipeline folder or package name.
    test_path (PathLike): The test `.spacy` file.
    output (PathLike): The JSON file to write (written atomically).
    gpu_id (int): -1 for the CPU, else the CUDA device.
    RETURNS (Dict[str, Any]): The scores.
    """
    from spacy.cli.evaluate import evaluate

    require_device(gpu_id)
    scores = evaluate(str(model), test_path, use_gpu=gpu_id, silent=False)
    write_json_atomic(output, scores)
    return scores


def run_crosscheck(
    model: PathLike,
    test_path: PathLike,
    output_dir: PathLike,
    spacy_json: Optional[PathLike] = None,
    gpu_id: int = -1,
    batch_size: int = 128,
) -> Dict[str, Any]:
    """Score the test split with seqeval and spaCy, write `seqeval.json`,
    `seqeval.md` and `seqeval.png` to `output_dir`, and stop with a non-zero exit
    naming both figures when seqeval's strict figures and spaCy's disagree.
    """
    import spacy

    require_device(gpu_id)
    if gpu_id >= 0:
        spacy.require_gpu(gpu_id)
    nlp = spacy.load(model)
    docs = read_docs(test_path, nlp.vocab)
    reported = read_json(spacy_json) if spacy_json is not None else None
    result = crosscheck(nlp, docs, reported, batch_size=batch_size)
    result["model"] = str(model)
    result["test"] = str(test_path)
    output_dir = Path(output_dir)
    write_json_atomic(output_dir / "seqeval.json", result)
    write_text_atomic(output_dir / "seqeval.md", markdown_table(result))
    plot_per_type(result, output_dir / "seqeval.png", title=f"{Path(test_path).parent.name} test")
    print(markdown_table(result))
    if result["problems"]:
        fail("seqeval and spaCy disagree: " + "; ".join(result["problems"]))
    strict = result["seqeval_strict"]
    msg.good(
        f"seqeval strict F1 {100 * strict['f1']:.2f} = spaCy ents_f "
        f"{100 * result['spacy']['ents_f']:.2f} on {result['n_docs']} docs"
    )
    return result
