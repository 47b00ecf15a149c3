"""The runs put together: the fastest configuration of each engine and setting,
how far each run's entities agree with the fastest spaCy run's and with the gold
entities (exact character spans and labels, the strict measure), and the machine."""
import platform
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple

from ner_component.benchmarks.throughput.texts import GoldEntity, count_words
from ner_component.hardware import describe_dict

# (doc index, start char, end char, label)
Entity = Tuple[int, int, int, str]


def entity_set(entities: Sequence[Sequence[Sequence[Any]]]) -> Set[Entity]:
    """The entities of a run as (doc index, start char, end char, label)."""
    return {(i, int(start), int(end), str(label)) for i, doc in enumerate(entities) for start, end, label in doc}


def agreement(reference: Set[Entity], other: Set[Entity]) -> Dict[str, float]:
    """Precision, recall and F1 of `other` against `reference` (exact char spans and labels).

    reference (Set[Entity]): The reference entities.
    other (Set[Entity]): The entities compared to them.
    RETURNS (Dict[str, float]): precision, recall, f1 (1.0 when both are empty).
    """
    both = len(reference & other)
    precision = both / len(other) if other else float(not reference)
    recall = both / len(reference) if reference else float(not other)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def _fastest(runs: List[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    return max(runs, key=lambda run: run["words_per_second"]) if runs else None


def summarize(
    runs: List[Dict[str, Any]],
    texts_by_setting: Dict[str, List[str]],
    settings: Sequence[str],
    gold_by_setting: Optional[Dict[str, List[List[GoldEntity]]]] = None,
) -> Dict[str, Any]:
    """Put the runs together: the fastest spaCy configuration of each setting,
    each run's entity agreement with it and, with gold entities, its strict F1
    against them; the runs without their entities.

    runs (List[Dict[str, Any]]): The results of `runner.measure`.
    texts_by_setting (Dict[str, List[str]]): The texts of each setting.
    settings (Sequence[str]): The settings run.
    gold_by_setting (Optional[Dict[str, List[List[GoldEntity]]]]): The gold
        entities of each setting's texts.
    RETURNS (Dict[str, Any]): settings {setting: {docs, words, best_spacy, best_hf,
        speedups, agreement}} and runs.
    """
    summary: Dict[str, Any] = {}
    for setting in settings:
        setting_runs = [run for run in runs if run["setting"] == setting]
        gold = entity_set(gold_by_setting[setting]) if gold_by_setting else None
        summary[setting] = _summarize_setting(setting_runs, texts_by_setting[setting], gold)
    slim_runs = [{key: value for key, value in run.items() if key != "entities"} for run in runs]
    return {"settings": summary, "runs": slim_runs}


def _summarize_setting(runs: List[Dict[str, Any]], texts: List[str], gold: Optional[Set[Entity]]) -> Dict[str, Any]:
    """One setting's summary; adds each run's agreement figures to it (in place)."""
    spacy_runs = [run for run in runs if run["engine"] == "spacy"]
    hf_runs = [run for run in runs if run["engine"] == "hf"]
    best_spacy = _fastest(spacy_runs)
    best_hf = _fastest(hf_runs)
    best_hf_default = _fastest([run for run in hf_runs if run.get("dtype", "float32") == "float32"])
    reference = entity_set(best_spacy["entities"])
    for run in runs:
        found = entity_set(run["entities"])
        run["agreement_with_best_spacy"] = agreement(reference, found)
        run["n_entities"] = sum(len(doc) for doc in run["entities"])
        if gold is not None:
            run["against_gold"] = agreement(gold, found)
    return {
        "docs": len(texts),
        "words": count_words(texts),
        "best_spacy": best_spacy["label"],
        "best_spacy_batch_size": best_spacy["batch_size"],
        "best_spacy_n_process": best_spacy["n_process"],
        "best_hf": best_hf["label"],
        "best_spacy_dtype": best_spacy.get("dtype"),
        "speedup_best_spacy_over_best_hf": best_spacy["words_per_second"] / best_hf["words_per_second"],
        "best_hf_float32": best_hf_default["label"] if best_hf_default else None,
        "speedup_best_spacy_over_best_hf_float32": (
            best_spacy["words_per_second"] / best_hf_default["words_per_second"] if best_hf_default else None
        ),
        "gold_entities": len(gold) if gold is not None else None,
        "hf_f1_against_spacy": best_hf["agreement_with_best_spacy"]["f1"],
        "min_f1_between_spacy_runs": min(run["agreement_with_best_spacy"]["f1"] for run in spacy_runs),
    }


def describe_machine(machine: Dict[str, Any], memory: bool = False) -> str:
    """How a report names the machine of a result: `describe()`'s words (cores, CPU
    model, native bfloat16 or not), or, in results written before it was recorded,
    the cores and bfloat16 alone.

    machine (Dict[str, Any]): The result's `machine()`.
    memory (bool): Name the memory too.
    RETURNS (str): E.g. "2 CPU cores (Intel(R) Xeon(R) Processor, native bfloat16), 23.6 GB".
    """
    gb = f", {machine['memory_gb']} GB" if memory else ""
    if machine.get("hardware"):
        return f"{machine['hardware']}{gb}"
    return f"{machine['cpu_count']} CPU cores{gb}, native bfloat16: {'yes' if machine.get('cpu_native_bf16') else 'no'}"


def machine() -> Dict[str, Any]:
    """What a benchmark ran on: the CPU (`ner_component.hardware.describe_dict`)
    and the versions of the libraries that compute."""
    import spacy
    import torch
    import transformers

    return {
        **describe_dict(),
        "python": platform.python_version(),
        "spacy": spacy.__version__,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
    }
