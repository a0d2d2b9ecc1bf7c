"""What the oracle answers: compile an Ibis program with real Ibis, or say exactly why not."""

from __future__ import annotations

import ast
import json
import platform
import traceback

import ibis
import ibis.selectors
import sqlglot

from . import sandbox

_PROBE_SCHEMA = {"a": "int64", "f": "float64"}
_API: dict = {}


def preload() -> None:
    """Import everything requests will need before the sandbox closes the file system."""
    import ibis.backends.sql.compilers  # noqa: F401  (imports every dialect's compiler)

    probe = ibis.table(_PROBE_SCHEMA, name="probe")
    ibis.to_sql(probe.filter(probe.a > 1), dialect="duckdb")
    _API.update(sandbox.public_api())


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


def _compile(request: dict) -> dict:
    tables = _tables(request)
    code = request.get("code", "")
    tree = _parse_checked(code, tables)
    namespace = {"__builtins__": sandbox.safe_builtins(), "ibis": ibis, "_": ibis._}
    namespace |= {"s": ibis.selectors, "selectors": ibis.selectors}
    namespace |= _bind_tables(tables)

    value = _run(tree, namespace, request.get("expr_name"))
    if not isinstance(value, ibis.Expr):
        raise _Failure(_error("result", "NotAnExpression", f"the program's result is a `{type(value).__name__}`, not an Ibis expression"))
    dialect = request.get("dialect") or "duckdb"
    try:
        sql = ibis.to_sql(value, dialect=dialect)
    except Exception as error:
        raise _Failure(_error("ibis", type(error).__name__, str(error)))
    result = {"sql": str(sql), "expr_type": type(value).__name__}
    if isinstance(value, ibis.expr.types.Table):
        result["columns"] = [[name, str(dtype)] for name, dtype in value.schema().items()]
    return result


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
