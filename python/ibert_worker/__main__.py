"""Entry point of one oracle worker process: `python -m ibert_worker`.

Reads one JSON request per line on stdin and writes one JSON response per line on stdout. The first
line written is a `hello` with the versions in use. Anything the program under test prints is
captured, so stdout carries the protocol alone. See docs/oracle-protocol.md.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys

from . import oracle, sandbox


def main() -> int:
    parser = argparse.ArgumentParser(prog="ibert_worker")
    parser.add_argument("--memory-mb", type=int, default=2048)
    parser.add_argument("--cpu-seconds", type=int, default=10)
    parser.add_argument("--no-seccomp", action="store_true")
    parser.add_argument("--attach", action="append", default=[], metavar="NAME=PATH", help="a DuckDB file to attach read-only for `execute`")
    args = parser.parse_args()

    protocol_out = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8", buffering=1)
    sys.stdout = io.StringIO()
    sys.dont_write_bytecode = True

    oracle.preload(dict(item.split("=", 1) for item in args.attach))
    sandbox.apply_process_limits(args.memory_mb * 1024 * 1024)
    seccomp = "off: disabled by --no-seccomp" if args.no_seccomp else sandbox.install_seccomp()

    hello = {"hello": oracle.versions() | {"seccomp": seccomp, "pid": os.getpid()}}
    protocol_out.write(json.dumps(hello) + "\n")

    for line in sys.stdin:
        if not line.strip():
            continue
        sandbox.limit_cpu_for_next_request(args.cpu_seconds)
        response = oracle.handle_line(line)
        sys.stdout = io.StringIO()
        protocol_out.write(json.dumps(response) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
