"""``python_source`` of an ingested kernel: the kernel's own definition plus what it needs.

From what Warp actually built for the kernel (the ``@wp.func`` helpers and ``@wp.struct``
types its code generation emitted), the source is: the imports its code refers to, the
module-level constants and assignments it refers to, the structs, the helpers (callees
first) and the kernel. Helpers and structs from the ingested tree are inlined; those from
elsewhere (Warp itself, other libraries) stay behind their import. Values a kernel factory
captured (closure variables) are written as assignments when they are plain numbers or
Warp types.
"""

from __future__ import annotations

import ast
import inspect
import os
import textwrap

from synth.ingest.hoist import module_tree
from synth.ingest.loader import IngestFailure


def _source_of(obj: object) -> tuple[str, str, int]:
    """(dedented source, file, first line) of a function or class."""
    try:
        lines, first = inspect.getsourcelines(obj)
        file = inspect.getsourcefile(obj) or ""
    except (OSError, TypeError) as exc:
        raise IngestFailure(f"source: cannot read the source of {getattr(obj, '__qualname__', obj)!r}: {exc}") from exc
    return textwrap.dedent("".join(lines)), os.path.realpath(file), first


def _referenced(tree: ast.AST) -> list[str]:
    names: dict[str, None] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            names.setdefault(node.id)
    return list(names)


def _defined(tree: ast.AST) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.add(node.name)
        elif isinstance(node, ast.arg):
            out.add(node.arg)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            out.add(node.id)
    return out


def _top_level(body: list[ast.stmt]) -> list[ast.stmt]:
    """Module-level statements, looking into if/try blocks (conditional imports and constants)."""
    out: list[ast.stmt] = []
    for node in body:
        if isinstance(node, ast.If):
            out += _top_level(node.body) + _top_level(node.orelse)
        elif isinstance(node, ast.Try):
            out += _top_level(node.body) + [s for h in node.handlers for s in _top_level(h.body)]
            out += _top_level(node.orelse) + _top_level(node.finalbody)
        else:
            out.append(node)
    return out


def _binding(file: str, name: str) -> tuple[str, str, int] | None:
    """("import" | "assign", source text, line) of the module-level statement of ``file`` binding ``name``."""
    parsed = module_tree(file)
    if parsed is None:
        return None
    text, tree = parsed
    found = None
    for node in _top_level(tree.body):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                bound = alias.asname or alias.name.split(".", 1)[0]
                if bound == name:
                    if isinstance(node, ast.Import):
                        stmt = ast.Import(names=[alias])
                    else:
                        stmt = ast.ImportFrom(module=node.module, names=[alias], level=node.level)
                    found = ("import", ast.unparse(stmt), node.lineno)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == name for t in targets):
                found = ("assign", ast.get_source_segment(text, node) or ast.unparse(node), node.lineno)
    return found  # the last binding wins, as at run time


def _closure_lines(func: object) -> list[str]:
    code = getattr(func, "__code__", None)
    cells = getattr(func, "__closure__", None) or ()
    out = []
    for name, cell in zip(getattr(code, "co_freevars", ()), cells, strict=False):
        try:
            value = cell.cell_contents
        except ValueError:
            continue
        if isinstance(value, (bool, int, float)) and not isinstance(value, type):
            out.append(f"{name} = {value!r}")
        elif isinstance(value, type) and getattr(value, "__module__", "").startswith("warp"):
            out.append(f"{name} = wp.{value.__name__}")
    return out


def compose(kernel_func: object, functions: tuple[object, ...], structs: tuple[type, ...], local_root: str) -> str:
    """The kernel's ``python_source``; ``functions`` and ``structs`` as Warp emitted them."""
    kernel_src, kernel_file, _ = _source_of(kernel_func)
    root = os.path.realpath(local_root)

    def local(file: str) -> bool:
        return file == kernel_file or file.startswith(root.rstrip(os.sep) + os.sep)

    blocks: list[tuple[str, str]] = []  # (source, file)
    seen: set[tuple[str, int]] = set()
    for obj in (*structs, *functions):
        if obj is None or obj is kernel_func:
            continue
        try:
            src, file, first = _source_of(obj)
        except IngestFailure:
            continue  # built into Warp or generated at run time: nothing to inline
        if local(file) and (file, first) not in seen:
            seen.add((file, first))
            blocks.append((src, file))
    closures = [line for f in (*functions, kernel_func) if f is not None for line in _closure_lines(f)]
    blocks.append(("\n".join(dict.fromkeys(closures)) + "\n\n\n" + kernel_src if closures else kernel_src,
                   kernel_file))

    defined: set[str] = set()
    wanted: list[tuple[str, str]] = []  # (name, file where it is looked up)
    for src, file in blocks:
        try:
            tree = ast.parse(src)
        except SyntaxError as exc:
            raise IngestFailure(f"source: the definition does not parse on its own: {exc}") from exc
        defined |= {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
        defined |= {t.id for n in tree.body if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)}
        local_names = _defined(tree)
        wanted += [(n, file) for n in _referenced(tree) if n not in local_names]

    imports: dict[str, None] = {}
    assigns: dict[tuple[str, int], str] = {}
    resolved: set[tuple[str, str]] = set()
    while wanted:
        name, file = wanted.pop(0)
        if name in defined or (name, file) in resolved:
            continue
        resolved.add((name, file))
        binding = _binding(file, name)
        if binding is None:
            continue  # a Python builtin (float, range...) or not resolvable statically
        kind, text, line = binding
        if kind == "import":
            imports.setdefault(text)
        else:
            assigns[(file, line)] = text
            defined.add(name)
            wanted += [(n, file) for n in _referenced(ast.parse(text)) if n != name]
    if not any(t.startswith(("import warp", "from warp")) for t in imports) and "wp" not in defined:
        imports = {"import warp as wp": None, **imports}
    parts = ["\n".join(imports)]
    if assigns:
        parts.append("\n".join(text for _, text in sorted(assigns.items())))
    parts += [src.strip("\n") for src, _ in blocks]
    return "\n\n\n".join(p for p in parts if p) + "\n"
