"""Find ``@wp.kernel`` definitions in Python files or packages without importing them.

Runs in the main process of ``jitsynth ingest``: it only reads and parses files (no user
code runs here; importing happens in the pool workers, see ``synth/ingest/worker.py``). The
result is a stable, sorted list of ``IngestItem``; item *i* is the pipeline's "seed" *i*.

A package name is resolved by searching ``sys.path`` for its directory (never
``importlib.util.find_spec``, which imports the parent packages). A kernel is any
function decorated with ``wp.kernel`` / ``warp.kernel`` / ``kernel`` (also called, as in
``@wp.kernel(enable_backward=False)``), under whatever alias the file imports Warp as.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

INGEST_NAME = "jitsynth-ingest"
INGEST_VERSION = "1"  # bump when what the worker makes of an item changes

_DOTTED = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")
_SPDX = re.compile(r"SPDX-License-Identifier:\s*([A-Za-z0-9.+\-() ]+?)\s*(?:\*/)?$", re.MULTILINE)
_SKIP_DIRS = {"__pycache__", "node_modules", "site-packages"}


class DiscoveryError(ValueError):
    """A path or package that cannot be ingested (a usage error: exit status 2)."""


@dataclass(frozen=True, slots=True)
class Target:
    """One PATH_OR_PACKAGE argument, resolved."""

    spec: str  # as given
    kind: str  # "package" (importable by dotted name) or "path" (files loaded by path)
    name: str  # dotted package name, or the directory / file stem
    path: str  # absolute directory (or file) that is walked
    import_root: str | None  # sys.path entry that makes ``package`` importable
    package: str | None  # dotted name of ``path`` when kind == "package"
    distribution: str | None = None
    version: str | None = None
    license: str | None = None


@dataclass(frozen=True, slots=True)
class IngestItem:
    """One kernel definition found in a file."""

    target: int  # index into Discovery.targets
    file: str  # absolute path
    relpath: str  # posix path relative to the target's directory
    module: str | None  # dotted module name to import (None: load the file by path)
    qualname: str  # "k", "Cls.k" or "make.<locals>.k"
    name: str
    line: int  # the ``def`` line
    first_line: int  # first decorator line (what ``co_firstlineno`` reports)
    nested: bool  # defined inside a function: exists only if the module creates it at import
    license: str | None = None  # SPDX identifier from the file header, if any


@dataclass
class Discovery:
    targets: list[Target]
    items: list[IngestItem]
    files_scanned: int = 0
    unparsable: list[tuple[str, str]] = field(default_factory=list)  # (file, error) that mention "kernel"
    file_digests: dict[str, str] = field(default_factory=dict)  # "<target>/<relpath>" -> sha256, files with kernels

    def config_hash(self) -> str:
        """What determines the items and their records: the ingest code version, the resolved
        targets, every item and the content of every file holding one (not where they lie)."""
        spec = {
            "ingest": f"{INGEST_NAME}/{INGEST_VERSION}",
            "targets": [[t.kind, t.name, t.package or "", t.version or ""] for t in self.targets],
            "items": [[it.target, it.relpath, it.qualname, it.first_line] for it in self.items],
            "files": sorted(self.file_digests.items()),
        }
        return hashlib.blake2b(json.dumps(spec, sort_keys=True).encode(), digest_size=8).hexdigest()


# -- resolving PATH_OR_PACKAGE -----------------------------------------------------------------------


def _search_path() -> list[Path]:
    out = []
    for entry in sys.path:
        p = Path(entry or os.getcwd())
        if p.is_dir():
            out.append(p.resolve())
    return out


def _package_of(path: Path) -> tuple[str | None, Path | None]:
    """(dotted name, import root) of a directory or file that is importable by name, else (None, None):
    inside regular packages (``__init__.py`` all the way up), or below a regular package on sys.path
    through namespace directories (``warp/examples/core`` has no ``__init__.py``)."""
    directory = path if path.is_dir() else path.parent
    tail = [] if path.is_dir() else [path.stem]
    if (directory / "__init__.py").is_file():
        parts = list(tail)
        while (directory / "__init__.py").is_file():
            parts.insert(0, directory.name)
            directory = directory.parent
        return ".".join(parts), directory
    for entry in sorted(_search_path(), key=lambda p: len(str(p)), reverse=True):
        if entry != directory and entry not in directory.parents:
            continue
        parts = [*directory.relative_to(entry).parts, *tail]
        if parts and all(p.isidentifier() for p in parts) and (entry / parts[0] / "__init__.py").is_file():
            return ".".join(parts), entry
    return None, None


def _distribution(top: str) -> tuple[str | None, str | None, str | None]:
    """(distribution, version, license) of an installed top-level package, from metadata only."""
    import importlib.metadata as md

    try:
        dists = md.packages_distributions().get(top) or []
        if not dists:
            return None, None, None
        dist = dists[0]
        meta = md.metadata(dist)
        license_ = meta.get("License-Expression") or meta.get("License")
        if not license_ or len(license_) > 64:
            classifiers = [c for c in (meta.get_all("Classifier") or []) if c.startswith("License ::")]
            license_ = classifiers[0].rsplit("::", 1)[-1].strip() if classifiers else None
        return dist, md.version(dist), license_
    except Exception:  # noqa: BLE001 - provenance is best effort
        return None, None, None


def resolve_target(spec: str) -> Target:
    """A path (file or directory) if it exists, else a dotted package name found on sys.path."""
    path = Path(spec).expanduser()
    if path.exists():
        path = path.resolve()
        if path.is_file() and path.suffix != ".py":
            raise DiscoveryError(f"{spec}: not a Python file or directory")
        package, root = _package_of(path)
        name = package or (path.name if path.is_dir() else path.stem)
        kind = "package" if package else "path"
    elif _DOTTED.match(spec):
        rel = Path(*spec.split("."))
        for entry in _search_path():
            candidate = entry / rel
            if (candidate / "__init__.py").is_file() or (candidate.is_dir() and candidate.name.isidentifier()):
                path, root = candidate, entry
                break
            if candidate.with_suffix(".py").is_file():
                path, root = candidate.with_suffix(".py"), entry
                break
        else:
            raise DiscoveryError(f"{spec}: no such file or directory, and no package of that name on sys.path")
        package, name, kind = spec, spec, "package"
    else:
        raise DiscoveryError(f"{spec}: no such file or directory, and not a package name")
    dist = version = license_ = None
    if package:
        dist, version, license_ = _distribution(package.split(".", 1)[0])
    return Target(spec, kind, name, str(path), str(root) if package else None, package, dist, version, license_)


# -- finding kernels in a file ------------------------------------------------------------------------


def _warp_aliases(tree: ast.Module) -> tuple[set[str], set[str]]:
    """Names the file binds to the ``warp`` module, and to ``warp.kernel`` itself. Without any
    ``import warp`` (a star import, a conftest) ``wp`` and ``warp`` are assumed; a bare
    ``@kernel`` counts unless something other than Warp binds that name."""
    modules: set[str] = set()
    kernels: set[str] = set()
    other: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "warp":
                    modules.add(alias.asname or "warp")
                else:
                    other.add(alias.asname or alias.name.split(".", 1)[0])
        elif isinstance(node, ast.ImportFrom):
            for alias in node.names:
                bound = alias.asname or alias.name
                if node.module == "warp" and alias.name in ("kernel", "*"):
                    kernels.add(alias.asname or "kernel")
                else:
                    other.add(bound)
    if "kernel" not in other:
        kernels.add("kernel")
    return (modules or {"wp", "warp"}) - (other - modules), kernels


def _is_kernel_decorator(node: ast.expr, modules: set[str], kernels: set[str]) -> bool:
    target = node.func if isinstance(node, ast.Call) else node
    if isinstance(target, ast.Attribute):
        return target.attr == "kernel" and isinstance(target.value, ast.Name) and target.value.id in modules
    return isinstance(target, ast.Name) and target.id in kernels


@dataclass(frozen=True, slots=True)
class FoundKernel:
    qualname: str
    name: str
    line: int
    first_line: int
    nested: bool


def find_kernels(tree: ast.Module) -> list[FoundKernel]:
    modules, kernels = _warp_aliases(tree)
    found: list[FoundKernel] = []

    def visit(body: list[ast.stmt], prefix: str, nested: bool) -> None:
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                if any(_is_kernel_decorator(d, modules, kernels) for d in node.decorator_list):
                    first = min(d.lineno for d in node.decorator_list)
                    found.append(FoundKernel(prefix + node.name, node.name, node.lineno, first, nested))
                visit(node.body, f"{prefix}{node.name}.<locals>.", True)
            elif isinstance(node, ast.ClassDef):
                visit(node.body, f"{prefix}{node.name}.", nested)
            else:
                # kernels under if/try/with/for at any level keep the enclosing prefix
                for child_body in ("body", "orelse", "finalbody", "handlers"):
                    sub = getattr(node, child_body, None)
                    if isinstance(sub, list):
                        stmts = [s for s in sub if isinstance(s, ast.stmt)]
                        stmts += [s for h in sub if isinstance(h, ast.ExceptHandler) for s in h.body]
                        visit(stmts, prefix, nested)
                for case in getattr(node, "cases", []) or []:
                    visit(case.body, prefix, nested)

    visit(tree.body, "", False)
    return found


def spdx_license(text: str) -> str | None:
    match = _SPDX.search(text[:4000])
    return match.group(1).strip() if match else None


# -- walking targets ----------------------------------------------------------------------------------


def _python_files(root: Path, exclude: list[Path]) -> list[Path]:
    if root.is_file():
        return [root]
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d not in _SKIP_DIRS
                             and not _excluded(here / d, exclude))
        out += [here / f for f in sorted(filenames) if f.endswith(".py") and not _excluded(here / f, exclude)]
    return out


def _excluded(path: Path, exclude: list[Path]) -> bool:
    return any(path == e or e in path.parents for e in exclude)


def _module_name(target: Target, file: Path) -> str | None:
    if target.kind != "package" or target.import_root is None:
        return None
    rel = file.relative_to(target.import_root).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    if not all(p.isidentifier() for p in parts):
        return None
    return ".".join(parts)


def discover(specs: list[str], exclude: list[Path] | None = None) -> Discovery:
    """Resolve ``specs`` and list every kernel definition, in a stable order. Files under
    ``exclude`` (the output location, the state directory) are never read."""
    excluded = [Path(e).expanduser().resolve() for e in (exclude or [])]
    targets = [resolve_target(s) for s in specs]
    items: list[IngestItem] = []
    result = Discovery(targets, items)
    seen: set[str] = set()
    for index, target in enumerate(targets):
        base = Path(target.path)
        walk_root = base.parent if base.is_file() else base
        for file in _python_files(base, excluded):
            if str(file) in seen:  # the same file through two arguments: ingest it once
                continue
            seen.add(str(file))
            result.files_scanned += 1
            data = b""
            try:
                data = file.read_bytes()
                text = data.decode("utf-8")
                tree = ast.parse(text, filename=str(file))
            except (OSError, UnicodeDecodeError, SyntaxError, ValueError) as exc:
                if b"kernel" in data:
                    result.unparsable.append((str(file), f"{type(exc).__name__}: {exc}"))
                continue
            kernels = find_kernels(tree)
            if not kernels:
                continue
            module = _module_name(target, file)
            relpath = file.relative_to(walk_root).as_posix()
            result.file_digests[f"{index}/{relpath}"] = hashlib.sha256(data).hexdigest()
            license_ = spdx_license(text)
            for k in sorted(kernels, key=lambda k: (k.first_line, k.qualname)):
                items.append(IngestItem(index, str(file), relpath, module, k.qualname, k.name, k.line, k.first_line,
                                        k.nested, license_))
    return result


_PRODUCER_BAD = re.compile(r"[^A-Za-z0-9._-]+")


def default_producer(targets: list[Target]) -> str:
    """``ingest-<name>`` from the first target, cut to a valid producer id."""
    name = _PRODUCER_BAD.sub("-", targets[0].name).strip("-._") or "local"
    return f"ingest-{name}"[:64].rstrip("-._")
