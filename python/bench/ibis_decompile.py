"""Ibis's own SQL -> Ibis path, for the side-by-side transpiler bench.

Reads JSON lines {"id", "sql", "tables": {table: {column: type}}} on stdin and writes
{"id", "code"} (the program `ibis.decompile(ibis.parse_sql(...))` returns) or {"id", "error"}.
The input is the project's own corpus; the programs it prints are verified by the sandboxed oracle.
"""

import json
import signal
import sys

import ibis


SECONDS_PER_QUERY = 20


class QueryTimeout(Exception):
    pass


def on_alarm(signum, frame):
    raise QueryTimeout(f"no result within {SECONDS_PER_QUERY} s")


def main() -> None:
    signal.signal(signal.SIGALRM, on_alarm)
    for line in sys.stdin:
        item = json.loads(line)
        signal.alarm(SECONDS_PER_QUERY)
        try:
            catalog = {name: ibis.schema(columns) for name, columns in item["tables"].items()}
            expr = ibis.parse_sql(item["sql"], catalog, dialect="duckdb")
            reply = {"id": item["id"], "code": ibis.decompile(expr)}
        except Exception as error:  # every failure is a data point of the comparison
            reply = {"id": item["id"], "error": f"{type(error).__name__}: {error}"[:300]}
        finally:
            signal.alarm(0)
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
