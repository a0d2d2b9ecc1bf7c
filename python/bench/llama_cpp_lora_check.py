"""Does llama.cpp read our GGUF LoRA adapter as we do? Our greedy answers (one JSON line per
record, from `cargo bench -p ibert-model --bench adapter_greedy`) against llama.cpp's on the same
prompts, the same base GGUF and the adapter written by `ibert model convert-adapter`, loaded
through llama-cpp-python's `lora_path`. Prints each record's verdict and the count that match
token for token; exits 1 when any differs. `none` for the adapter compares the bases alone, the
control that tells the adapter's differences from the engines' own near-ties.

Not part of the locked worker environment: run it from a venv with llama-cpp-python (see
`python/bench/side_by_side.sh`).
    python python/bench/llama_cpp_lora_check.py BASE.gguf ADAPTER.gguf OURS.jsonl [--threads 2]
"""

import argparse
import json
import sys

from llama_cpp import Llama


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("adapter", help="the GGUF LoRA file, or `none` for the base alone (a control)")
    parser.add_argument("ours", help="the JSON lines of the adapter_greedy bench")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    answers = [json.loads(line) for line in open(args.ours, encoding="utf-8") if line.strip()]
    if not answers:
        print(f"error: {args.ours} has no answers", file=sys.stderr)
        return 2
    lora_path = None if args.adapter == "none" else args.adapter
    llm = Llama(model_path=args.model, lora_path=lora_path, n_threads=args.threads, n_ctx=4096, verbose=False)
    same = 0
    for ours in answers:
        theirs = llm.create_completion(
            ours["prompt"], max_tokens=ours["generated_tokens"], temperature=0.0, top_k=1, repeat_penalty=1.0
        )["choices"][0]["text"]
        ours_tokens = llm.tokenize(ours["text"].encode("utf-8"), add_bos=False, special=True)
        theirs_tokens = llm.tokenize(theirs.encode("utf-8"), add_bos=False, special=True)
        if ours_tokens == theirs_tokens:
            same += 1
            print(f"same       {ours['id']}: {len(ours_tokens)} tokens")
        else:
            first = next((i for i, (a, b) in enumerate(zip(ours_tokens, theirs_tokens)) if a != b), min(len(ours_tokens), len(theirs_tokens)))
            print(f"different  {ours['id']}: from token {first} of {len(ours_tokens)}")
            print(f"  ours:      {ours['text'][:200]!r}")
            print(f"  llama.cpp: {theirs[:200]!r}")
    setting = "the bases alone" if lora_path is None else f"the adapter {lora_path}"
    print(f"{same} of {len(answers)} greedy answers the same token for token, with {setting}")
    return 0 if same == len(answers) else 1


if __name__ == "__main__":
    sys.exit(main())
