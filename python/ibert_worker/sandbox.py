"""The sandbox of the iBERT oracle: an `ast` allow-list, then OS limits.

Untrusted programs (templates, mined code, model output, user input) reach this worker. Nothing runs
before `check_program` accepts the program, and the process itself runs under resource limits and a
seccomp filter, so what slips past the allow-list still cannot write files, open sockets or start
processes.
"""

from __future__ import annotations

import ast
import ctypes
import re
import resource
import signal

#: Globals every program may use besides its bound tables.
ALLOWED_GLOBALS = frozenset({"ibis", "_", "s", "selectors"})

#: Builtins a program may call; they are the only builtins present in its namespace.
SAFE_BUILTINS = frozenset(
    {
        "abs", "all", "any", "bool", "dict", "enumerate", "float", "int", "len", "list", "map",
        "max", "min", "range", "reversed", "round", "set", "sorted", "str", "sum", "tuple", "zip",
    }
)

#: Attribute names refused even though they do not start with an underscore: ways out to modules,
#: frames, the file system, the network or a real backend.
DENIED_ATTRIBUTES = frozenset(
    {
        # modules reachable through attribute chains of ibis modules
        "os", "sys", "subprocess", "shutil", "importlib", "builtins", "socket", "ctypes", "pathlib",
        "io", "pickle", "marshal", "inspect", "gc", "types", "code", "codeop", "pty", "signal",
        "resource", "multiprocessing", "threading", "tempfile", "glob", "runpy", "site", "platform",
        "weakref", "operator", "functools", "itertools", "warnings", "traceback", "linecache",
        # process, file and code execution
        "import_object", "system", "popen", "spawn", "fork", "execv", "execve", "open", "eval", "exec", "compile",
        "remove", "unlink", "rmdir", "rename", "replace_file", "write", "write_text", "write_bytes",
        "read_text", "read_bytes", "mkdir", "chmod", "kill",
        # format-string attribute access and frame walking
        "format", "format_map", "mro", "f_globals", "f_locals", "f_builtins", "f_back", "f_code",
        "gi_frame", "gi_code", "cr_frame", "cr_code", "ag_frame", "tb_frame", "tb_next", "co_code",
        "func_globals", "func_code",
        # real backends and I/O through ibis
        "connect", "execute", "raw_sql", "set_backend", "get_backend", "load_extension", "attach",
        "read_csv", "read_parquet", "read_json", "read_delta", "read_xlsx", "read_geo",
        "to_csv", "to_parquet", "to_parquet_dir", "to_delta", "to_json", "to_xlsx", "to_pyarrow",
        "to_pyarrow_batches", "to_pandas", "to_pandas_batches", "to_polars", "to_torch", "to_geo",
        "register", "create_table", "create_view", "insert", "drop_table", "drop_view", "list_tables",
    }
)

#: Names bound to modules in a program's namespace. Attributes of these must be on the module's
#: public allow-list (`public_api`), and the names may only be used as `name.attribute`, never
#: passed around or re-bound, so no program holds a module object it could walk.
MODULE_ROOTS = {"ibis": "ibis", "s": "ibis.selectors", "selectors": "ibis.selectors"}

#: What may follow `ibis.udf`: the namespaces of builtin UDF decorators.
_UDF_PATH = {"ibis.udf": {"scalar", "agg"}, "ibis.udf.scalar": {"builtin"}, "ibis.udf.agg": {"builtin"}}


#: Public methods of Ibis expressions that run the expression or reach a backend: still denied.
EXPRESSION_BACKEND_METHODS = frozenset({"execute", "compile", "get_backend", "cache", "visualize"})


def expression_api() -> frozenset[str]:
    """Public attribute names of Ibis's expression types (tables, columns, scalars, grouped
    tables, ...) other than those that run the expression or reach a backend (`execute`, every
    `to_*`). A word on the deny-list that is one of these (`Table.rename`, `ArrayValue.remove`)
    is Ibis's own method, not the file operation of the same name: the objects a program can
    hold are Ibis expressions and Python literals, and none of the latter has such a method that
    reaches outside (`list.remove` only edits the list)."""
    import inspect

    import ibis.expr.types as ir

    classes = [c for _, c in inspect.getmembers(ir, inspect.isclass) if c.__module__.startswith("ibis.expr.types")]
    names = {n for c in classes for n in dir(c) if not n.startswith("_")}
    return frozenset(n for n in names if not n.startswith("to_") and n not in EXPRESSION_BACKEND_METHODS)


def public_api() -> dict[str, frozenset[str]]:
    """Public, non-module attributes of `ibis` and `ibis.selectors` (plus the `selectors` and `udf`
    namespaces of `ibis`), and under `expressions` the methods of Ibis expressions
    ([`expression_api`]). Backend entry points (`ibis.duckdb`), `ibis.util` and every other
    module are left out: they lead to real backends, files and `import_object`."""
    import types

    import ibis
    import ibis.selectors

    def plain(module, names):
        return {n for n in names if not n.startswith("_") and not isinstance(module.__dict__.get(n), types.ModuleType)}

    ibis_names = plain(ibis, ibis.__all__) | {"selectors", "udf"}
    selector_names = plain(ibis.selectors, dir(ibis.selectors))
    return {"ibis": frozenset(ibis_names), "ibis.selectors": frozenset(selector_names), "expressions": expression_api()}

#: The largest constant exponent a program may use; `10**10**10` would hang the worker.
MAX_CONSTANT_EXPONENT = 512

_ALLOWED_NODES = (
    ast.Module, ast.Expr, ast.Assign, ast.AugAssign, ast.Import, ast.ImportFrom, ast.alias, ast.Pass,
    ast.Name, ast.Attribute, ast.Call, ast.keyword, ast.Constant, ast.BinOp, ast.UnaryOp, ast.BoolOp,
    ast.Compare, ast.IfExp, ast.Lambda, ast.arguments, ast.arg, ast.List, ast.Tuple, ast.Dict,
    ast.Set, ast.Subscript, ast.Slice, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp,
    ast.comprehension, ast.Starred, ast.JoinedStr, ast.FormattedValue,
    ast.Load, ast.Store, ast.operator, ast.unaryop, ast.boolop, ast.cmpop, ast.expr_context,
)


class SandboxViolation(Exception):
    """A program the allow-list refuses; the message says which construct and where."""

    def __init__(self, message: str, line: int | None = None):
        super().__init__(message)
        self.line = line


def check_program(
    source: str,
    bound_names: set[str],
    data_names: frozenset[str] = frozenset(),
    api: dict[str, frozenset[str]] | None = None,
) -> ast.Module:
    """Parse `source` and accept it only if every node is on the allow-list.

    `data_names` are column and struct field names of the bound tables: attribute access to them
    is column access (`events.properties.os`), so they are allowed even where the deny-list has
    the same word; so are the methods of Ibis expressions (`Table.rename`, see `expression_api`). The seccomp filter and resource limits still contain anything reached that way.

    Raises SyntaxError for code that does not parse and SandboxViolation for code that parses but
    uses something outside the allow-list.
    """
    tree = ast.parse(source, mode="exec")
    api = api if api is not None else public_api()
    roots = dict(MODULE_ROOTS)
    roots.update(_module_aliases(tree))
    assigned = _assigned_names(tree) - set(roots)
    allowed_names = set(bound_names) | ALLOWED_GLOBALS | SAFE_BUILTINS | assigned | set(roots)
    parents = {child: parent for parent in ast.walk(tree) for child in ast.iter_child_nodes(parent)}
    for node in ast.walk(tree):
        line = getattr(node, "lineno", None)
        if isinstance(node, ast.FunctionDef):
            _check_builtin_udf(node, line)
            continue
        if not isinstance(node, _ALLOWED_NODES):
            raise SandboxViolation(f"`{type(node).__name__}` statements are not allowed", line)
        if isinstance(node, ast.Name):
            _check_name(node.id, allowed_names, line)
            if node.id in roots:
                _check_module_use(node, parents.get(node), line)
        elif isinstance(node, ast.Attribute):
            path = _module_path(node.value, roots)
            if path is not None:
                _check_attribute(node.attr, frozenset(), line)
                _check_module_attribute(path, node.attr, api, line)
            else:
                _check_attribute(node.attr, data_names | api.get("expressions", frozenset()), line)
        elif isinstance(node, ast.arg):
            _check_identifier(node.arg, line)
        elif isinstance(node, ast.keyword) and node.arg is not None:
            _check_identifier(node.arg, line)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            _check_import(node, api, line)
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
            _check_power(node, line)
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                _check_assign_target(target, line)
        elif isinstance(node, ast.AugAssign):
            _check_assign_target(node.target, line)
    return tree


_UDF_DECORATORS = ("ibis.udf.scalar.builtin", "ibis.udf.agg.builtin")


def _dotted(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return "?"


def _check_builtin_udf(node: ast.FunctionDef, line: int | None) -> None:
    """The one `def` allowed: a builtin UDF, which maps to a backend function by name, so its body
    (`...`, `pass` or a docstring) never runs. Its annotations and defaults are checked like any
    other expression by the walk."""
    if len(node.decorator_list) != 1:
        raise SandboxViolation("`def` is allowed only for `@ibis.udf.scalar.builtin` / `@ibis.udf.agg.builtin` functions", line)
    decorator = node.decorator_list[0]
    target = decorator.func if isinstance(decorator, ast.Call) else decorator
    if _dotted(target) not in _UDF_DECORATORS:
        raise SandboxViolation("`def` is allowed only for `@ibis.udf.scalar.builtin` / `@ibis.udf.agg.builtin` functions", line)
    for statement in node.body:
        trivial = isinstance(statement, ast.Pass) or (
            isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant) and isinstance(statement.value.value, (str, type(Ellipsis)))
        )
        if not trivial:
            raise SandboxViolation("a builtin UDF's body must be `...`, `pass` or a docstring", getattr(statement, "lineno", line))
    _check_identifier(node.name, line)


def _assigned_names(tree: ast.Module) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef):
            names.add(node.name)
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.alias):
            names.add((node.asname or node.name).split(".")[0])
    return names


def _check_identifier(name: str, line: int | None) -> None:
    if name.startswith("__"):
        raise SandboxViolation(f"dunder name `{name}` is not allowed", line)


def _check_name(name: str, allowed: set[str], line: int | None) -> None:
    _check_identifier(name, line)
    if name not in allowed:
        raise SandboxViolation(
            f"name `{name}` is not allowed: only bound tables, `ibis`, `_`, `s`, names the "
            "program assigns and safe builtins",
            line,
        )


def _check_attribute(attr: str, data_names: frozenset[str], line: int | None) -> None:
    if attr.startswith("_"):
        raise SandboxViolation(f"private or dunder attribute `{attr}` is not allowed", line)
    if attr in DENIED_ATTRIBUTES and attr not in data_names:
        raise SandboxViolation(f"attribute `{attr}` is not allowed", line)


def _module_aliases(tree: ast.Module) -> dict[str, str]:
    """Names that imports bind to modules: `import ibis.selectors as sel`, `from ibis import selectors`."""
    aliases = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    aliases[alias.asname] = alias.name
        elif isinstance(node, ast.ImportFrom) and node.module == "ibis":
            for alias in node.names:
                if alias.name == "selectors":
                    aliases[alias.asname or alias.name] = "ibis.selectors"
    return aliases


def _module_path(node: ast.expr, roots: dict[str, str]) -> str | None:
    """`ibis`, `ibis.udf`, `ibis.udf.scalar` ... when `node` is a chain of plain attributes from a
    module root; None for anything else (a column, a call result, a table)."""
    if isinstance(node, ast.Name):
        return roots.get(node.id)
    if isinstance(node, ast.Attribute):
        base = _module_path(node.value, roots)
        if base == "ibis" and node.attr in ("selectors", "udf"):
            return "ibis.selectors" if node.attr == "selectors" else "ibis.udf"
        if base in _UDF_PATH:
            return f"{base}.{node.attr}"
    return None


def _check_module_attribute(path: str, attr: str, api: dict[str, frozenset[str]], line: int | None) -> None:
    if path in _UDF_PATH:
        allowed = _UDF_PATH[path]
    elif path.startswith("ibis.udf."):
        allowed = frozenset()
    else:
        allowed = api.get(path, frozenset())
    if attr not in allowed:
        raise SandboxViolation(f"`{path}.{attr}` is not part of the Ibis API a program may use", line)


def _check_module_use(node: ast.Name, parent: ast.AST | None, line: int | None) -> None:
    """A module name may appear only as the base of an attribute (`ibis.desc`)."""
    if isinstance(parent, ast.Attribute) and parent.value is node:
        return
    if isinstance(parent, ast.alias) or isinstance(node.ctx, ast.Store):
        raise SandboxViolation(f"`{node.id}` names a module and cannot be re-bound", line)
    raise SandboxViolation(f"the module `{node.id}` can only be used as `{node.id}.<name>`", line)


_IMPORTABLE = {"ibis": "ibis", "ibis.selectors": "ibis.selectors"}


def _check_import(node: ast.Import | ast.ImportFrom, api: dict[str, frozenset[str]], line: int | None) -> None:
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.name not in _IMPORTABLE:
                raise SandboxViolation(f"import of `{alias.name}` is not allowed: only `ibis` and `ibis.selectors`", line)
            if alias.name == "ibis" and alias.asname not in (None, "ibis"):
                raise SandboxViolation("`ibis` cannot be imported under another name", line)
        return
    module = node.module or ""
    if module not in _IMPORTABLE or node.level:
        raise SandboxViolation(f"import from `{module}` is not allowed: only `ibis` and `ibis.selectors`", line)
    for alias in node.names:
        if alias.name == "*":
            raise SandboxViolation("`import *` is not allowed", line)
        allowed = api.get(_IMPORTABLE[module], frozenset()) | ({"_"} if module == "ibis" else set())
        if alias.name not in allowed:
            raise SandboxViolation(f"`{alias.name}` is not part of the Ibis API a program may import", line)
        if alias.name == "udf" or (alias.asname and alias.asname in MODULE_ROOTS and alias.name != "selectors"):
            raise SandboxViolation(f"`from {module} import {alias.name}` is not allowed", line)


def _check_power(node: ast.BinOp, line: int | None) -> None:
    exponent = node.right
    if isinstance(exponent, ast.BinOp) and isinstance(exponent.op, ast.Pow):
        raise SandboxViolation("nested powers are not allowed", line)
    if isinstance(exponent, ast.Constant) and isinstance(exponent.value, (int, float)):
        if abs(exponent.value) > MAX_CONSTANT_EXPONENT:
            raise SandboxViolation(f"exponent {exponent.value} is too large", line)


def _check_assign_target(target: ast.expr, line: int | None) -> None:
    if isinstance(target, ast.Name):
        return
    if isinstance(target, (ast.Tuple, ast.List)):
        for element in target.elts:
            _check_assign_target(element, line)
        return
    raise SandboxViolation("only assignments to plain names are allowed", line)


_FIELD_NAME = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*:")


def data_names(tables: dict) -> frozenset[str]:
    """Column names of every table, and field names inside struct types."""
    names = set()
    for schema in tables.values():
        if not isinstance(schema, dict):
            continue
        for column, dtype in schema.items():
            names.add(str(column))
            names.update(_FIELD_NAME.findall(str(dtype)))
    return frozenset(names)


def safe_builtins() -> dict:
    import builtins

    real_import = builtins.__import__

    def restricted_import(name, globals=None, locals=None, fromlist=(), level=0):
        # The allow-list has already checked every import statement; this keeps `import` from
        # reaching anything else at run time.
        if name not in _IMPORTABLE or level:
            raise ImportError(f"import of `{name}` is not allowed")
        return real_import(name, globals, locals, fromlist, level)

    safe = {name: getattr(builtins, name) for name in SAFE_BUILTINS}
    safe["__import__"] = restricted_import
    return safe


# --- OS limits ---------------------------------------------------------------------------------


def apply_process_limits(memory_bytes: int) -> None:
    """Limits that hold for the life of the worker: memory, no file writes, no core dumps."""
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    try:
        resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))
    except (ValueError, OSError):
        pass
    # Writing past RLIMIT_FSIZE raises an error instead of killing the worker.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


def limit_cpu_for_next_request(seconds: int) -> None:
    """Let the next request use `seconds` more CPU; past that the kernel ends the worker."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    used = int(usage.ru_utime + usage.ru_stime) + 1
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    resource.setrlimit(resource.RLIMIT_CPU, (used + seconds, hard))


# --- seccomp ------------------------------------------------------------------------------------

# System calls refused with EPERM, by name: new processes, program execution, sockets, io_uring
# (which performs file and network operations the filter would not see), changes to the file
# system, signals to other processes and tracing. libseccomp resolves each name for the running
# architecture; one an architecture lacks (`fork` on aarch64) is left out there.
DENIED_SYSCALLS = (
    "fork", "vfork", "clone", "clone3", "execve", "execveat",
    "socket", "socketpair", "connect", "bind", "listen", "accept", "accept4",
    "io_uring_setup", "io_uring_enter", "io_uring_register",
    "openat2", "creat", "mknod", "mknodat", "unlink", "unlinkat", "rename", "renameat", "renameat2",
    "mkdir", "mkdirat", "rmdir", "link", "linkat", "symlink", "symlinkat",
    "chmod", "fchmod", "fchmodat", "chown", "fchown", "fchownat", "lchown", "truncate", "ftruncate",
    "mount", "umount2", "chroot", "pivot_root",
    "kill", "tkill", "tgkill", "ptrace", "process_vm_writev",
)
# `open` and `openat` are refused when their flags hold any of O_WRONLY, O_RDWR, O_CREAT, O_TRUNC
# or O_APPEND: reading stays possible (imports), writing does not. (`openat2` takes its flags in
# a struct no filter can read, so it is refused whole.)
_WRITE_OPEN_FLAGS = (0o1, 0o2, 0o100, 0o1000, 0o2000)
_OPEN_FLAGS_ARGUMENT = {"open": 1, "openat": 2}

_SCMP_ACT_ALLOW = 0x7FFF0000
_SCMP_ACT_ERRNO_EPERM = 0x00050000 | 1
_SCMP_FLTATR_ACT_BADARCH = 2
_SCMP_FLTATR_CTL_TSYNC = 4
_SCMP_CMP_MASKED_EQ = 7


class _ArgCmp(ctypes.Structure):
    """libseccomp's `struct scmp_arg_cmp`."""

    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int), ("datum_a", ctypes.c_uint64), ("datum_b", ctypes.c_uint64)]


def install_seccomp() -> str:
    """Install the seccomp filter, built by libseccomp (the library systemd and container runtimes
    use) from the syscall names above, on every thread of the process; returns "on", or why it is
    off on this machine. System calls of another ABI than the native one (x32 on x86_64, 32-bit
    calls through int 0x80) are refused with EPERM, since the rules only cover the native ABI."""
    try:
        lib = ctypes.CDLL("libseccomp.so.2", use_errno=True)
    except OSError:
        return "off: libseccomp is not installed (Debian/Ubuntu: apt-get install libseccomp2)"
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint, ctypes.POINTER(_ArgCmp)]
    lib.seccomp_attr_set.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32]
    lib.seccomp_load.argtypes = [ctypes.c_void_p]
    lib.seccomp_release.argtypes = [ctypes.c_void_p]
    context = lib.seccomp_init(_SCMP_ACT_ALLOW)
    if not context:
        return "off: seccomp_init failed"
    try:
        def rule(name: str, conditions: list[_ArgCmp]) -> str | None:
            number = lib.seccomp_syscall_resolve_name(name.encode())
            if number < 0:
                return None  # this architecture has no such call
            array = (_ArgCmp * max(1, len(conditions)))(*conditions)
            status = lib.seccomp_rule_add_array(context, _SCMP_ACT_ERRNO_EPERM, number, len(conditions), array)
            return None if status == 0 else f"off: adding the rule for {name} failed ({status})"

        for name in DENIED_SYSCALLS:
            if failure := rule(name, []):
                return failure
        for name, argument in _OPEN_FLAGS_ARGUMENT.items():
            for flag in _WRITE_OPEN_FLAGS:
                if failure := rule(name, [_ArgCmp(argument, _SCMP_CMP_MASKED_EQ, flag, flag)]):
                    return failure
        for attribute, value in ((_SCMP_FLTATR_ACT_BADARCH, _SCMP_ACT_ERRNO_EPERM), (_SCMP_FLTATR_CTL_TSYNC, 1)):
            if lib.seccomp_attr_set(context, attribute, value) != 0:
                return f"off: seccomp_attr_set({attribute}) failed"
        status = lib.seccomp_load(context)
        return "on" if status == 0 else f"off: seccomp_load failed ({status})"
    finally:
        lib.seccomp_release(context)
