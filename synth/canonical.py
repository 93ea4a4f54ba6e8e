"""Canonical form of a kernel module for deduplication.

Two kernels that differ only in formatting, comments, docstrings, or the names of
locals, parameters, helpers, structs and the kernel itself are the same training
sample. The key is a 128-bit BLAKE3 digest of the AST dump after renaming every
name the module *defines* (in order of first definition) and dropping docstrings.
Names the module only *uses* (``wp``, ``float``, ``range`` ...) are kept.
"""

from __future__ import annotations

import ast

import blake3

KEY_VERSION = "ast-blake3-128-v1"


def _defined_names(tree: ast.Module) -> list[str]:
    seen: dict[str, None] = {}
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            seen.setdefault(node.name)
        elif isinstance(node, ast.arg):
            seen.setdefault(node.arg)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            seen.setdefault(node.id)
    return list(seen)


defined_names = _defined_names  # public: stream.dataset.neardup normalises the same names away


class _Renamer(ast.NodeTransformer):
    def __init__(self, mapping: dict[str, str]) -> None:
        self.mapping = mapping

    def _strip_docstring(self, node: ast.AST) -> None:
        body = getattr(node, "body", None)
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
            if isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]

    def visit_Module(self, node: ast.Module) -> ast.AST:
        self._strip_docstring(node)
        return self.generic_visit(node)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        self._strip_docstring(node)
        node.name = self.mapping.get(node.name, node.name)
        return self.generic_visit(node)

    def visit_ClassDef(self, node: ast.ClassDef) -> ast.AST:
        self._strip_docstring(node)
        node.name = self.mapping.get(node.name, node.name)
        return self.generic_visit(node)

    def visit_arg(self, node: ast.arg) -> ast.AST:
        node.arg = self.mapping.get(node.arg, node.arg)
        return self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        # Struct fields are defined names too (``s.scale``); Warp's namespace is not.
        if not (isinstance(node.value, ast.Name) and node.value.id == "wp"):
            node.attr = self.mapping.get(node.attr, node.attr)
        return self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> ast.AST:
        node.id = self.mapping.get(node.id, node.id)
        return node


def canonical_dump(source: str) -> str:
    tree = ast.parse(source)
    mapping = {name: f"_n{i}" for i, name in enumerate(_defined_names(tree))}
    tree = _Renamer(mapping).visit(tree)
    return ast.dump(tree, annotate_fields=False, include_attributes=False)


def canonical_key(source: str) -> str:
    """Hex digest (32 chars, 128 bits) of the canonical form; the record id."""
    return blake3.blake3(canonical_dump(source).encode()).hexdigest(length=16)
