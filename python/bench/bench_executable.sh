#!/usr/bin/env bash
# Builds one cargo benchmark without running it and prints the path of its executable, which the
# side-by-side scripts then run under the same thread count as the Python anchor:
# `bench_executable.sh PACKAGE BENCH [PYTHON]` (PYTHON reads cargo's JSON messages).
set -euo pipefail
package=${1:?usage: bench_executable.sh PACKAGE BENCH [PYTHON]}
name=${2:?usage: bench_executable.sh PACKAGE BENCH [PYTHON]}
python=${3:-python3}
cargo bench -p "$package" --bench "$name" --no-run --message-format=json 2>/dev/null \
    | "$python" -c 'import json, sys; name = sys.argv[1]; print([m["executable"] for m in map(json.loads, sys.stdin) if m.get("executable") and m["target"]["name"] == name][-1])' "$name"
