#!/usr/bin/env bash
# Our native backend and llama.cpp on the same GGUF file, alternately, `ALTERNATIONS` times each
# (3 rounds inside every run), 2 threads both sides: load time, prompt and generated tokens/s,
# peak memory. Run it on an otherwise idle machine; each side runs in its own process, so peak
# memory is that side's alone.
#
#   python/bench/side_by_side.sh MODEL.gguf [ALTERNATIONS]
#
# LLAMA_PYTHON names a Python with llama-cpp-python (default: `python3`); it is not part of the
# worker's lock: `python3 -m venv V && V/bin/pip install cmake ninja && CMAKE_ARGS=-DGGML_NATIVE=ON
# V/bin/pip install llama-cpp-python` builds llama.cpp for this CPU.
set -euo pipefail
cd "$(dirname "$0")/../.."
model=${1:?usage: side_by_side.sh MODEL.gguf [ALTERNATIONS]}
alternations=${2:-2}
python=${LLAMA_PYTHON:-python3}
"$python" -c "import llama_cpp" 2>/dev/null || { echo "error: $python has no llama_cpp; set LLAMA_PYTHON (see the comment at the top of $0)" >&2; exit 1; }
bench=$(python/bench/bench_executable.sh ibert-model engine "$python")
for round in $(seq 1 "$alternations"); do
    echo "== $round: ours"
    RAYON_NUM_THREADS=2 "$bench" --model-path "$model" --backend native --rounds 3 --prompt-tokens 200 --tokens 128 | grep -v '^threads'
    echo "== $round: llama.cpp"
    "$python" python/bench/llama_cpp_bench.py "$model" --threads 2 --rounds 3 --prompt-tokens 200 --tokens 128
done
