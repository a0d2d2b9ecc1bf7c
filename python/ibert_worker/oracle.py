"""What the oracle answers: compile an Ibis program with real Ibis, or say exactly why not."""

from __future__ import annotations

import ast
import base64
import collections
import itertools
import json
import platform
import re
import traceback

import ibis
import ibis.selectors
import sqlglot

from . import sandbox

_PROBE_SCHEMA = {"a": "int64", "f": "float64"}
_API: dict = {}


def preload(attach: dict[str, str] | None = None) -> None:
    """Import everything requests will need before the sandbox closes the file system, and
    start what creates threads (DuckDB, Arrow): the seccomp filter refuses new threads later."""
    import ibis.backends.sql.compilers  # noqa: F401  (imports every dialect's compiler)

    probe = ibis.table(_PROBE_SCHEMA, name="probe")
    ibis.to_sql(probe.filter(probe.a > 1), dialect="duckdb")
    _API.update(sandbox.public_api())
    _Datasets.open(attach or {})


class _Datasets:
    """The data `execute` runs programs on, in one in-memory DuckDB database opened through Ibis
    (as a user's `ibis.duckdb.connect()`), one schema per dataset, the oldest dropped first.
    External access is off and the configuration locked: a program's SQL reads no files."""

    CAPACITY = 64
    backend = None
    loaded: collections.OrderedDict = collections.OrderedDict()

    @classmethod
    def open(cls, attach: dict[str, str]) -> None:
        import pyarrow

        pyarrow.set_cpu_count(1)
        pyarrow.set_io_thread_count(1)
        # An attached benchmark or user database needs room; the fixtures need little.
        cls.backend = ibis.duckdb.connect(threads=1, memory_limit="4GB" if attach else "1GB")
        # Every result path once, so that lazy imports and thread pools happen now.
        probe = ibis.memtable({"a": [1, 2], "d": [1.5, 2.5], "s": ["x", None]})
        cls.backend.to_pyarrow(probe.mutate(m=probe.d.mean(), t=ibis.date("2024-01-01"), c=ibis.literal(1.25, "decimal(5, 2)")))
        cls.backend.to_pyarrow(probe.d.sum())
        cls.backend.to_pyarrow(probe.a)
        for name, path in attach.items():
            if not re.fullmatch(r"[A-Za-z0-9_]{1,64}", name):
                raise ValueError(f"--attach: `{name}` is not a catalog name")
            cls.backend.raw_sql(f"ATTACH '{path.replace(chr(39), chr(39) * 2)}' AS {name} (READ_ONLY)")
        cls.backend.raw_sql(
            "SET autoinstall_known_extensions = false; SET autoload_known_extensions = false; "
            "SET enable_external_access = false; SET lock_configuration = true;"
        )

    @classmethod
    def use(cls, dataset: dict) -> None:
        """Make `dataset`'s tables the ones unqualified names resolve to, loading it if new."""
        key = str(dataset.get("key", ""))
        if not re.fullmatch(r"[A-Za-z0-9_]{1,64}", key):
            raise _Failure(_error("protocol", "BadRequest", "a dataset needs a `key` of letters, digits and _"))
        attached = dataset.get("schema")
        if attached is not None:
            if not isinstance(attached, str) or not re.fullmatch(r"[A-Za-z0-9_]{1,64}\.[A-Za-z0-9_]{1,64}", attached):
                raise _Failure(_error("protocol", "BadRequest", "a dataset's `schema` must be `catalog.schema`"))
            cls.backend.raw_sql(f"USE {attached}")
            return
        schema = f"data_{key}"
        if key not in cls.loaded:
            setup = dataset.get("setup_sql")
            if not isinstance(setup, str):
                raise _Failure(_error("protocol", "BadRequest", "a dataset needs its `setup_sql`"))
            while len(cls.loaded) >= cls.CAPACITY:
                old, _ = cls.loaded.popitem(last=False)
                cls.backend.raw_sql(f"DROP SCHEMA IF EXISTS memory.data_{old} CASCADE")
            try:
                cls.backend.raw_sql(f"CREATE SCHEMA memory.{schema}; USE memory.{schema}; {setup}")
            except Exception as error:
                cls.backend.raw_sql(f"USE memory.main; DROP SCHEMA IF EXISTS memory.{schema} CASCADE")
                raise _Failure(_error("protocol", "BadData", f"loading dataset `{key}`: {type(error).__name__}: {error}"))
            cls.loaded[key] = True
        cls.loaded.move_to_end(key)
        cls.backend.raw_sql(f"USE memory.{schema}")


def versions() -> dict:
    return {
        "ibis": ibis.__version__,
        "sqlglot": sqlglot.__version__,
        "python": platform.python_version(),
    }


def dialects() -> dict:
    """Every dialect Ibis can compile to, and those whose compiler fails here with the reason."""
    import ibis.backends.sql.compilers as compilers

    available, unavailable = [], {}
    probe = ibis.table(_PROBE_SCHEMA, name="probe")
    # Floats and an aggregate: some compilers (pyspark) need their engine's session for these.
    probe_expr = probe.filter(probe.f > 1).group_by("a").agg(m=probe.f.mean())
    for name in sorted(dir(compilers)):
        module = getattr(compilers, name)
        if name.startswith("_") or getattr(module, "compiler", None) is None:
            continue
        try:
            ibis.to_sql(probe_expr, dialect=name)
            available.append(name)
        except Exception as error:  # the real reason, e.g. a missing optional package
            unavailable[name] = f"{type(error).__name__}: {error}"
    return {"dialects": available, "unavailable": unavailable}


def handle_line(line: str) -> dict:
    try:
        request = json.loads(line)
    except json.JSONDecodeError as error:
        return {"id": None, "ok": False, "error": _error("protocol", "JSONDecodeError", str(error))}
    # The nonce is never visible to the program, so a program that reached the protocol pipe
    # still could not forge an answer the Rust side accepts.
    head = {"id": request.get("id"), "nonce": request.pop("nonce", None)}
    try:
        result = _dispatch(request)
    except _Failure as failure:
        return head | {"ok": False, "error": failure.payload}
    except MemoryError:
        return head | {"ok": False, "error": _error("resource", "MemoryError", "memory limit reached")}
    except Exception as error:  # a bug in the worker itself; keep serving
        detail = traceback.format_exc(limit=3)
        return head | {"ok": False, "error": _error("internal", type(error).__name__, f"{error}\n{detail}")}
    return head | {"ok": True} | result


def _dispatch(request: dict) -> dict:
    op = request.get("op")
    if op == "version":
        return versions()
    if op == "dialects":
        return dialects()
    if op == "check":
        tables = _tables(request)
        _parse_checked(request.get("code", ""), tables)
        return {}
    if op == "compile":
        return _compile(request)
    if op == "execute":
        return _execute(request)
    if op == "attached_schemas":
        return _attached_schemas(request)
    if op == "outline":
        return _outline(request.get("source", ""))
    raise _Failure(_error("protocol", "UnknownOp", f"unknown op `{op}`"))


class _Failure(Exception):
    def __init__(self, payload: dict):
        super().__init__(payload["message"])
        self.payload = payload


def _error(kind: str, error_type: str, message: str, line: int | None = None) -> dict:
    payload = {"kind": kind, "type": error_type, "message": message}
    if line is not None:
        payload["line"] = line
    return payload


def _tables(request: dict) -> dict:
    tables = request.get("tables") or {}
    if not isinstance(tables, dict):
        raise _Failure(_error("protocol", "BadRequest", "`tables` must be an object of table schemas"))
    return tables


def _parse_checked(code: str, tables: dict) -> ast.Module:
    try:
        return sandbox.check_program(code, set(tables), sandbox.data_names(tables), _API or None)
    except SyntaxError as error:
        raise _Failure(_error("syntax", "SyntaxError", error.msg or str(error), error.lineno))
    except sandbox.SandboxViolation as violation:
        raise _Failure(_error("sandbox", "SandboxViolation", str(violation), violation.line))
    except (RecursionError, MemoryError, ValueError) as error:
        raise _Failure(_error("syntax", type(error).__name__, str(error)))


def _bind_tables(tables: dict) -> dict:
    bound = {}
    for name, schema in tables.items():
        try:
            bound[name] = ibis.table(schema, name=name)
        except Exception as error:
            raise _Failure(_error("schema", type(error).__name__, f"table `{name}`: {error}"))
    return bound


def _fresh_table_names() -> None:
    """Ibis names unnamed tables `unbound_table_0`, `_1`, ... from one counter per process, so
    the SQL of `ibis.table(schema)` would depend on what the worker ran before (and two runs of
    a pipeline, or two workers, would disagree); each program counts from 0 again."""
    ibis.expr.api._table_names = (f"unbound_table_{i:d}" for i in itertools.count())


def _expression(request: dict):
    """The Ibis expression the request's program leaves, run under the allow-list."""
    _fresh_table_names()
    tables = _tables(request)
    code = request.get("code", "")
    tree = _parse_checked(code, tables)
    namespace = {"__builtins__": sandbox.safe_builtins(), "ibis": ibis, "_": ibis._}
    namespace |= {"s": ibis.selectors, "selectors": ibis.selectors}
    namespace |= _bind_tables(tables)

    value = _run(tree, namespace, request.get("expr_name"))
    if not isinstance(value, ibis.Expr):
        raise _Failure(_error("result", "NotAnExpression", f"the program's result is a `{type(value).__name__}`, not an Ibis expression"))
    return value


def _execute(request: dict) -> dict:
    """Execute the program's expression as a user does (`to_pyarrow` on a DuckDB connection) on
    each dataset; the results as Arrow IPC streams, so the Rust side reads them exactly as it
    reads DuckDB's own results."""
    value = _expression(request)
    datasets = request.get("datasets")
    if not isinstance(datasets, list) or not datasets:
        raise _Failure(_error("protocol", "BadRequest", "`datasets` must be a non-empty list"))
    results = []
    backend = _Datasets.backend
    backend.compile = _compiled_once(backend.compile)
    try:
        for dataset in datasets:
            if not isinstance(dataset, dict):
                raise _Failure(_error("protocol", "BadRequest", "each dataset must be an object"))
            _Datasets.use(dataset)
            try:
                result = backend.to_pyarrow(value)
            except MemoryError:
                raise
            except Exception as error:
                raise _Failure(_error("execute", type(error).__name__, f"{error}"))
            results.append(_arrow_stream(value, result))
    finally:
        del backend.compile
    return {"results": results, "columns": _output_types(value)}


def _compiled_once(compile):
    """`compile` remembering its SQL for the length of one execute request. `to_pyarrow` compiles
    the expression again for every dataset, though its SQL does not depend on the data (the
    table names resolve in each dataset's schema), and compiling is a third of its time; Ibis
    still runs everything else of `to_pyarrow` (its hooks, the query, the cast to the
    expression's schema) on each."""
    memo = {}

    def compile_once(expr, *, limit=None, params=None, **kwargs):
        if params or kwargs:
            return compile(expr, limit=limit, params=params, **kwargs)
        key = (expr.op(), limit)
        if key not in memo:
            memo[key] = compile(expr, limit=limit)
        return memo[key]

    return compile_once


def _arrow_stream(value, result) -> str:
    """An executed result as a base64 Arrow IPC stream, a scalar or a column as a one-column table."""
    import pyarrow

    if isinstance(result, pyarrow.Scalar):
        result = pyarrow.table({value.get_name(): pyarrow.array([result.as_py()], type=result.type)})
    elif isinstance(result, (pyarrow.Array, pyarrow.ChunkedArray)):
        result = pyarrow.table({value.get_name(): result})
    sink = pyarrow.BufferOutputStream()
    with pyarrow.ipc.new_stream(sink, result.schema) as writer:
        writer.write_table(result)
    return base64.b64encode(sink.getvalue().to_pybytes()).decode("ascii")


def _attached_schemas(request: dict) -> dict:
    """The Ibis schema of every table of an attached database, as Ibis reads it (what a user's
    `con.table(name)` gives); nothing of the request runs."""
    catalog = request.get("catalog")
    if not isinstance(catalog, str) or not re.fullmatch(r"[A-Za-z0-9_]{1,64}", catalog):
        raise _Failure(_error("protocol", "BadRequest", "`catalog` must be an attached catalog's name"))
    backend = _Datasets.backend
    tables = {}
    listed = backend.raw_sql(
        f"SELECT table_name FROM duckdb_tables() WHERE database_name = '{catalog}' AND schema_name = 'main' ORDER BY table_name"
    ).fetchall()
    for (name,) in listed:
        schema = backend.table(name, database=(catalog, "main")).schema()
        tables[name] = {column: str(dtype) for column, dtype in schema.items()}
    return {"tables": tables}


def _compile(request: dict) -> dict:
    value = _expression(request)
    dialect = request.get("dialect") or "duckdb"
    try:
        sql = ibis.to_sql(value, dialect=dialect)
    except Exception as error:
        raise _Failure(_error("ibis", type(error).__name__, str(error)))
    result = {"sql": str(sql), "expr_type": type(value).__name__, "output_types": _output_types(value)}
    if isinstance(value, ibis.expr.types.Table):
        result["columns"] = result["output_types"]
    return result


def _output_types(value) -> list:
    """(name, Ibis type) of each output column: the schema Ibis casts a result to."""
    if isinstance(value, ibis.expr.types.Table):
        return [[name, str(dtype)] for name, dtype in value.schema().items()]
    return [[value.get_name(), str(value.type())]]


def _run(tree: ast.Module, namespace: dict, expr_name: str | None):
    """Execute the program; its result is `expr_name` if given, else `expr`, else the last statement."""
    body = tree.body
    last = body[-1] if body else None
    try:
        if isinstance(last, ast.Expr):
            exec(compile(ast.Module(body=body[:-1], type_ignores=[]), "<program>", "exec"), namespace)
            tail = eval(compile(ast.Expression(body=last.value), "<program>", "eval"), namespace)
        else:
            exec(compile(tree, "<program>", "exec"), namespace)
            tail = None
    except MemoryError:
        raise
    except Exception as error:
        raise _Failure(_error("ibis", type(error).__name__, str(error), _error_line(error)))

    for name in (expr_name, "expr"):
        if name and name in namespace:
            return namespace[name]
    if tail is not None:
        return tail
    if isinstance(last, ast.Assign) and isinstance(last.targets[-1], ast.Name):
        return namespace[last.targets[-1].id]
    raise _Failure(_error("result", "NoResult", "the program has no result: end it with an expression or assign `expr`"))


def _error_line(error: Exception) -> int | None:
    line = None
    for frame in traceback.extract_tb(error.__traceback__):
        if frame.filename == "<program>":
            line = frame.lineno
    return line


def _outline(source: str) -> dict:
    """What mining needs from a Python file, read with Python's own parser (nothing is run):
    functions with docstrings (their code without the docstring), and `.sql("...")` strings."""
    try:
        tree = ast.parse(source)
    except SyntaxError as error:
        raise _Failure(_error("syntax", "SyntaxError", error.msg or str(error), error.lineno))
    except (RecursionError, MemoryError, ValueError) as error:
        raise _Failure(_error("syntax", type(error).__name__, str(error)))
    lines = source.splitlines(keepends=True)
    functions, sql_calls = [], []
    scopes = [(tree, "")]
    while scopes:
        node, prefix = scopes.pop()
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef):
                scopes.append((child, f"{prefix}{child.name}."))
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                docstring = ast.get_docstring(child, clean=True)
                documented = _documented_function(child, prefix, docstring, lines) if docstring else None
                if documented:
                    functions.append(documented)
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "sql"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            sql_calls.append({"sql": node.args[0].value, "line": node.lineno})
    functions.sort(key=lambda f: f["line"])
    return {"functions": functions, "sql_calls": sql_calls}


def _documented_function(node, prefix: str, docstring: str, lines: list) -> dict | None:
    first = node.decorator_list[0].lineno if node.decorator_list else node.lineno
    doc_node = node.body[0]
    if doc_node.lineno == node.lineno:
        # `def f(): """Doc."""` on one line: the signature up to the docstring, then a body.
        if len(node.body) > 1 and node.body[1].lineno == node.lineno:
            return None  # `def f(): """Doc."""; return x`: too rare to cut apart
        signature = lines[node.lineno - 1][: doc_node.col_offset].rstrip()
        kept = lines[first - 1 : node.lineno - 1] + [signature + "\n"] + lines[doc_node.end_lineno : node.end_lineno]
    else:
        kept = lines[first - 1 : doc_node.lineno - 1] + lines[doc_node.end_lineno : node.end_lineno]
    if len(node.body) == 1:
        kept.append(" " * (node.col_offset + 4) + "...\n")
    # Dedent by the `def`'s own column: string contents may sit further left.
    margin = node.col_offset
    code = "".join("\n" if not line.strip() else line[margin:] if line[:margin].isspace() else line for line in kept)
    args = [a.arg for a in node.args.posonlyargs + node.args.args + node.args.kwonlyargs]
    return {
        "name": node.name,
        "qualname": prefix + node.name,
        "line": node.lineno,
        "args": args,
        "returns": node.returns is not None,
        "docstring": docstring,
        "code": code if code.endswith("\n") else code + "\n",
    }
