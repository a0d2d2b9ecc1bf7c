"""llama.cpp (through the `llama-cpp-python` package, which builds it from source) on the same
GGUF, prompt and thread count as `cargo bench --workspace --bench engine`, for the side-by-side
figures of the engine: load time, prompt tokens/s and generated tokens/s (medians of the rounds).

Not part of the locked worker environment: run it from a venv with `pip install llama-cpp-python`.
    python python/bench/llama_cpp_bench.py MODEL.gguf [--rounds 3] [--prompt-tokens 200] [--tokens 128]
"""

import argparse
import resource
import statistics
import time

from llama_cpp import Llama

UNIT = 'expr = orders.filter(orders.amount > 100).group_by("status").aggregate(total=orders.amount.sum())\n'


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--prompt-tokens", type=int, default=200)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    started = time.perf_counter()
    llm = Llama(model_path=args.model, n_threads=args.threads, n_ctx=2048, verbose=False)
    load = time.perf_counter() - started

    prompt = ""
    while len(llm.tokenize(prompt.encode(), add_bos=False, special=True)) < args.prompt_tokens:
        prompt += UNIT
    tokens = llm.tokenize(prompt.encode(), add_bos=False, special=True)
    prompt_rates, generation_rates = [], []
    for _ in range(args.rounds):
        llm.reset()
        started = time.perf_counter()
        llm.eval(tokens)
        prompt_rates.append(len(tokens) / (time.perf_counter() - started))
        started = time.perf_counter()
        for _ in range(args.tokens):
            token = llm.sample(top_k=1, temp=0.0, repeat_penalty=1.0)
            llm.eval([token])
        generation_rates.append(args.tokens / (time.perf_counter() - started))
    print(f"llama.cpp        load {load:.2f} s")
    print(f"prompt           {len(tokens)} tokens: {statistics.median(prompt_rates):.1f} tok/s (median of {args.rounds})")
    print(f"generation       {args.tokens} tokens: {statistics.median(generation_rates):.1f} tok/s (median of {args.rounds})")
    print(f"peak memory      {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024} MB (max RSS)")


if __name__ == "__main__":
    main()
