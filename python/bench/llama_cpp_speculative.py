"""llama.cpp (through `llama-cpp-python`) on the prompts the `speculative` benchmark wrote
(`--prompts-out`), plain and with its own prompt-lookup decoding (`LlamaPromptLookupDecoding`,
the speculative option llama-cpp-python offers), greedy, same GGUF, 2 threads: generated
tokens/s, seconds per answer (p50/p95, prompt included), and whether the answers are the same
as plain llama.cpp's and as ours.

Not part of the locked worker environment: run it from a venv with `pip install llama-cpp-python`.
    python python/bench/llama_cpp_speculative.py MODEL.gguf PROMPTS.jsonl [--tokens 256] [--threads 2]
"""

import argparse
import json
import statistics
import time
from collections import defaultdict

from llama_cpp import Llama
from llama_cpp.llama_speculative import LlamaPromptLookupDecoding


def answer(llm: Llama, tokens: list[int], max_tokens: int) -> tuple[str, int, float]:
    """Greedy answer from an empty cache: text, generated tokens, seconds."""
    ends = {llm.token_eos(), *llm.tokenize(b"<|im_end|>", add_bos=False, special=True)}
    llm.reset()
    started = time.perf_counter()
    out = []
    for token in llm.generate(tokens, top_k=1, top_p=1.0, min_p=0.0, temp=0.0, repeat_penalty=1.0, reset=True):
        if token in ends:
            break
        out.append(token)
        if len(out) >= max_tokens:
            break
    seconds = time.perf_counter() - started
    return llm.detokenize(out).decode("utf-8", errors="replace"), len(out), seconds


def prompt_seconds(llm: Llama, tokens: list[int]) -> float:
    llm.reset()
    started = time.perf_counter()
    llm.eval(tokens)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("prompts")
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--num-pred-tokens", type=int, default=10)
    args = parser.parse_args()

    records = [json.loads(line) for line in open(args.prompts, encoding="utf-8")]
    plain = Llama(model_path=args.model, n_threads=args.threads, n_ctx=4096, verbose=False)
    lookup = Llama(
        model_path=args.model,
        n_threads=args.threads,
        n_ctx=4096,
        verbose=False,
        draft_model=LlamaPromptLookupDecoding(num_pred_tokens=args.num_pred_tokens),
    )
    results: dict[tuple[str, str], list[tuple[str, int, float, float]]] = defaultdict(list)
    for record in records:
        tokens = plain.tokenize(record["prompt"].encode(), add_bos=False, special=True)
        prompt_time = prompt_seconds(plain, tokens)
        for name, llm in (("plain", plain), ("lookup", lookup)):
            text, count, seconds = answer(llm, tokens, args.tokens)
            results[(record["task"], name)].append((text, count, seconds, prompt_time))

    print(f"llama.cpp, {args.threads} threads, {len(records)} prompts of {args.prompts}")
    print(f"{'task':<17} {'decoding':<13} {'tokens':>8} {'tok/s':>7} {'p50 s':>7} {'p95 s':>7} {'same as plain':>13} {'same as ours':>12}")
    by_task = defaultdict(list)
    for record in records:
        by_task[record["task"]].append(record)
    for task, task_records in by_task.items():
        plain_texts = [r[0] for r in results[(task, "plain")]]
        for name in ("plain", "lookup"):
            rows = results[(task, name)]
            tokens = sum(r[1] for r in rows)
            generation = sum(max(r[2] - r[3], 1e-9) for r in rows)
            seconds = sorted(r[2] for r in rows)
            quantile = lambda q: seconds[round((len(seconds) - 1) * q)]
            same_plain = sum(r[0] == p for r, p in zip(rows, plain_texts))
            same_ours = sum(r[0] == rec["text"] for r, rec in zip(rows, task_records))
            print(
                f"{task:<17} {name:<13} {tokens:>8} {tokens / generation:>7.1f} {quantile(0.5):>7.2f} {quantile(0.95):>7.2f}"
                f" {f'{same_plain}/{len(rows)}':>13} {f'{same_ours}/{len(rows)}':>12}"
            )


if __name__ == "__main__":
    main()
