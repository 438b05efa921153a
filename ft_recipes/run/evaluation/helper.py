"""Runs inside the lm-eval environment (``ftr eval``): ``python helper.py JOB.json OUT.json``.

Evaluates each model of the job in turn, loaded once through lm-eval's ``hf`` model (an adapter through
``peft=``; a QLoRA run's models on its base quantized with bitsandbytes as trained, or unquantized with the
reason when that cannot load): the lm-eval tasks, then the held-out rows (perplexity on the answers; for SFT,
greedy generations with the job's chat template, scored by exact match, BLEU and ROUGE-L). Prints one progress
line per step on stderr and writes the results as JSON. Imports nothing from ft_recipes (this environment does
not have it).
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path


def progress(text: str) -> None:
    print(f"ftr eval: {text}", file=sys.stderr, flush=True)


def load_lm(model: dict, job: dict):
    """lm-eval's hf model, and what became of the quantization asked for (None when none was)."""
    quant = model.get("quantization")
    if not quant:
        return load_plain(model, job), None
    lm, problem = load_quantized(model, job, quant)
    if lm is not None:
        return lm, {**quant, "applied": True}
    note = f"{problem}: evaluated on the unquantized base model"
    progress(f"{model['label']}: note: {note}")
    return load_plain(model, job), {**quant, "applied": False, "note": note}


def load_quantized(model: dict, job: dict, quant: dict):
    """The base model quantized as the QLoRA run trained on it (bitsandbytes, on CPU too from bitsandbytes 0.46),
    the adapter on top; (None, why) when that cannot load."""
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        return None, "bitsandbytes is not installed in the lm-eval environment"
    import torch
    from lm_eval.models.huggingface import HFLM
    from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig

    cuda = torch.cuda.is_available()
    compute = torch.bfloat16 if cuda and torch.cuda.is_bf16_supported() else torch.float32
    bits = int(quant.get("bits") or 4)
    config = BitsAndBytesConfig(load_in_4bit=bits == 4, load_in_8bit=bits == 8,
                                bnb_4bit_quant_type=quant.get("type") or "nf4",
                                bnb_4bit_use_double_quant=bool(quant.get("double_quant", True)),
                                bnb_4bit_compute_dtype=compute)
    remote = bool(job.get("trust_remote_code"))
    try:
        hf = AutoModelForCausalLM.from_pretrained(model["pretrained"], quantization_config=config, dtype=compute,
                                                  device_map="cuda" if cuda else "cpu", trust_remote_code=remote)
        if model.get("peft"):
            from peft import PeftModel

            hf = PeftModel.from_pretrained(hf, model["peft"])
        tok = AutoTokenizer.from_pretrained(model.get("tokenizer") or model["pretrained"], trust_remote_code=remote)
        return HFLM(pretrained=hf, tokenizer=tok, batch_size=job.get("batch_size") or 1), None
    except Exception as exc:  # noqa: BLE001 (any failure to load quantized is reported, and the model loads plain)
        return None, f"loading the base model {bits}-bit failed ({type(exc).__name__}: {str(exc)[:300]})"


def load_plain(model: dict, job: dict):
    import torch
    from lm_eval.api.registry import get_model

    cuda = torch.cuda.is_available()
    args = {"pretrained": model["pretrained"], "dtype": "auto" if cuda else "float32",
            "trust_remote_code": bool(job.get("trust_remote_code"))}
    for key in ("peft", "tokenizer"):
        if model.get(key):
            args[key] = model[key]
    extra = {"batch_size": job.get("batch_size") or 1, "device": "cuda" if cuda else "cpu"}
    return get_model("hf").create_from_arg_obj(args, extra)


def task_specs(job: dict):
    """lm-eval task names as given; a task YAML as its config, with relative data files made absolute against
    the YAML's folder (lm-eval would read them relative to the working directory)."""
    from lm_eval.tasks._yaml_loader import load_yaml  # lm-eval's own reader (!function, include:)

    specs = []
    for task in job["tasks"]:
        if "yaml" not in task:
            specs.append(task["name"])
            continue
        path = Path(task["yaml"])
        config = load_yaml(path)
        kwargs = config.get("dataset_kwargs") or {}
        if kwargs.get("data_files") is not None:
            kwargs["data_files"] = absolute_files(kwargs["data_files"], path.parent)
            config["dataset_kwargs"] = kwargs
        specs.append(config)
    return specs


def absolute_files(value, folder: Path):
    if isinstance(value, dict):
        return {key: absolute_files(item, folder) for key, item in value.items()}
    if isinstance(value, list):
        return [absolute_files(item, folder) for item in value]
    path = Path(value)
    return str(path if path.is_absolute() or "://" in str(value) else folder / path)


def run_tasks(lm, job: dict) -> dict:
    import lm_eval
    from lm_eval.tasks import TaskManager

    if not job["tasks"]:
        return {"results": {}, "versions": {}, "n-shot": {}, "higher_is_better": {}}
    folders = sorted({str(Path(t["yaml"]).parent) for t in job["tasks"] if "yaml" in t})
    manager = TaskManager(include_path=folders or None)
    seed = job["seed"]
    out = lm_eval.simple_evaluate(model=lm, tasks=task_specs(job), task_manager=manager,
                                  num_fewshot=job.get("num_fewshot"), limit=job.get("limit"),
                                  log_samples=False, random_seed=seed, numpy_random_seed=seed,
                                  torch_random_seed=seed, fewshot_random_seed=seed, bootstrap_iters=0)
    return {"results": {name: metrics_of(values) for name, values in out["results"].items()},
            "versions": out.get("versions", {}), "n-shot": out.get("n-shot", {}),
            "higher_is_better": out.get("higher_is_better", {})}


def metrics_of(values: dict) -> dict:
    """lm-eval's ``acc,none`` style keys -> ``acc`` (the filter kept when it is not ``none``); numbers only."""
    out = {}
    for key, value in values.items():
        if not isinstance(value, (int, float)) or isinstance(value, bool) or "_stderr" in key:
            continue
        metric, _, filt = key.partition(",")
        name = metric if filt in ("", "none") else f"{metric},{filt}"
        out[name] = None if isinstance(value, float) and not math.isfinite(value) else value
    out.pop("sample_len", None)
    return out


def render(tok, messages: list[dict], template: str | None, generation: bool) -> str:
    return tok.apply_chat_template(messages, chat_template=template, tokenize=False,
                                   add_generation_prompt=generation)


def answer_nll(model, tok, prompt: str, full: str) -> tuple[float, int]:
    """Summed negative log-likelihood of the tokens of ``full`` after ``prompt`` (all of them when ``prompt`` is
    empty or not a prefix of ``full``), and their count."""
    import torch

    ids = tok(full, add_special_tokens=False, return_tensors="pt")["input_ids"].to(model.device)
    start = len(tok(prompt, add_special_tokens=False)["input_ids"]) if prompt and full.startswith(prompt) else 1
    start = max(1, min(start, ids.shape[1]))
    with torch.no_grad():
        logits = model(input_ids=ids).logits.float()
    logprobs = torch.log_softmax(logits[0, :-1], dim=-1)
    targets = ids[0, 1:]
    picked = logprobs.gather(1, targets[:, None])[:, 0][start - 1:]
    return float(-picked.sum()), int(picked.numel())


def perplexity(model, tok, rows: list[dict], template: str | None) -> float | None:
    total, count = 0.0, 0
    for row in rows:
        if row.get("text") is not None:
            nll, n = answer_nll(model, tok, "", row["text"])
        else:
            prompt = render(tok, row["prompt"], template, generation=True)
            full = render(tok, row["prompt"] + [{"role": "assistant", "content": row["answer"]}], template, False)
            nll, n = answer_nll(model, tok, prompt, full)
        total, count = total + nll, count + n
    return math.exp(total / count) if count else None


def generate(model, tok, row: dict, template: str | None, max_new_tokens: int) -> str:
    import torch

    prompt = render(tok, row["prompt"], template, generation=True)
    ids = tok(prompt, add_special_tokens=False, return_tensors="pt")["input_ids"].to(model.device)
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    with torch.no_grad():
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                             do_sample=False, pad_token_id=pad, eos_token_id=tok.eos_token_id)
    return tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True).strip()


def generation_scores(answers: list[str], references: list[str]) -> dict:
    import sacrebleu
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"])
    rouge = [scorer.score(ref, hyp)["rougeL"].fmeasure for ref, hyp in zip(references, answers)]
    exact = [hyp.strip() == ref.strip() for ref, hyp in zip(references, answers)]
    return {"exact_match": sum(exact) / len(exact), "bleu": sacrebleu.corpus_bleu(answers, [references]).score,
            "rouge_l": sum(rouge) / len(rouge)}


def held_out_rows(held: dict) -> list[dict]:
    """The held-out rows: as given, or ``split`` of them taken as the backends' seeded train/test split does."""
    rows = held["rows"]
    split = held.get("split")
    if not split:
        return rows
    from datasets import Dataset

    table = Dataset.from_list([{"i": i} for i in range(len(rows))])
    parts = table.train_test_split(test_size=split["size"], seed=split["seed"])
    return [rows[i] for i in sorted(parts["test"]["i"])]


def run_held_out(lm, job: dict) -> dict | None:
    held = job.get("held_out")
    if not held:
        return None
    rows = held_out_rows(held)
    model, tok = lm.model, lm.tokenizer
    model.eval()
    template = held.get("template")
    out = {"rows": len(rows), "perplexity": perplexity(model, tok, rows, template)}
    chat = [row for row in rows if row.get("answer") is not None]
    if held.get("generate") and chat:
        chat = chat[:held.get("max_rows") or len(chat)]
        answers = [generate(model, tok, row, template, held.get("max_new_tokens", 64)) for row in chat]
        out.update(generation_scores(answers, [row["answer"] for row in chat]))
        out["generated"] = len(chat)
        out["samples"] = [{"prompt": row["prompt"], "reference": row["answer"], "generated": answer}
                          for row, answer in zip(chat, answers)][:held.get("samples", 5)]
    return out


def evaluate(model: dict, job: dict) -> dict:
    started = time.monotonic()
    progress(f"{model['label']}: loading {model['pretrained']}" + (f" + {model['peft']}" if model.get("peft") else ""))
    lm, quantization = load_lm(model, job)
    names = ", ".join(t.get("name") or Path(t["yaml"]).stem for t in job["tasks"]) or "no tasks"
    progress(f"{model['label']}: lm-eval on {names}")
    tasks = run_tasks(lm, job)
    if job.get("held_out"):
        progress(f"{model['label']}: held-out rows")
    held = run_held_out(lm, job)
    return {"tasks": tasks["results"], "versions": tasks["versions"], "n_shot": tasks["n-shot"],
            "higher_is_better": tasks["higher_is_better"],
            "held_out": held, "quantization": quantization, "seconds": round(time.monotonic() - started, 1)}


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python helper.py JOB.json OUT.json", file=sys.stderr)
        return 2
    from importlib.metadata import version

    job = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    results = {"lm_eval_version": version("lm_eval"), "models": {}}
    for model in job["models"]:
        results["models"][model["label"]] = evaluate(model, job)
    Path(argv[1]).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
