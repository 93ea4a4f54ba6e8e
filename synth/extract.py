"""Pull the forward and adjoint (backward) kernel functions out of Warp's generated
source, and strip the hash suffixes Warp appends to kernel and function names.

Pure text processing: no Warp import, so it is unit-testable on stored sources.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class BackendIR:
    forward: str
    backward: str
    full: str


class ExtractionError(ValueError):
    pass


def normalise_names(text: str, names: list[str] | tuple[str, ...]) -> str:
    """Replace ``name_<hex>`` (kernel hash) and ``name_<n>`` (function counter) by ``name``,
    and the install path in front of Warp's own source files by ``warp/``.

    Warp mangles kernel names with a content hash and ``@wp.func`` names with a
    per-process counter; both would make identical kernels differ between workers.
    One pass with an alternation of all names (longest first): a pass per name over
    ~100 KB of generated source was the worker's second-largest cost.
    """
    # Warp's own functions (math.py's norm_l2 ...) come with a "// <install path>:line"
    # comment: without this a record would carry the machine's site-packages path.
    text = _WARP_PATH.sub(r"\1\2", text)
    if not names:
        return text
    alternation = "|".join(re.escape(n) for n in sorted(set(names), key=len, reverse=True))
    # The suffix ends where a non-alphanumeric follows ("_cpu_kernel_forward", "(").
    pattern = _compiled(rf"(?<![A-Za-z0-9])((?:adj_|wp_args_)?(?:{alternation}))_[0-9a-f]+(?![0-9A-Za-z])")
    return pattern.sub(r"\1", text)


_WARP_PATH = re.compile(r"(// )[^\s]*?/(warp/_src/)")


@functools.lru_cache(maxsize=256)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _function_block(source: str, signature: re.Pattern[str]) -> str:
    """The text of the function whose header matches ``signature``: from its header
    (and a preceding ``template<...>`` line) to the first closing brace at column 0."""
    match = signature.search(source)
    if match is None:
        raise ExtractionError(f"function matching {signature.pattern!r} not found")
    start = source.rfind("\n", 0, match.start()) + 1
    previous_line_start = source.rfind("\n", 0, max(start - 1, 0)) + 1
    if source[previous_line_start:start].lstrip().startswith("template"):
        start = previous_line_start
    end = source.find("\n}", match.end())
    if end < 0:
        raise ExtractionError(f"unterminated function {signature.pattern!r}")
    return source[start : end + 2] + "\n"


def extract(full: str, kernel_name: str, backend: str, backward: bool = True) -> BackendIR:
    """Extract ``{kernel}_{backend}_kernel_forward`` / ``_backward`` from normalised source;
    ``backward=False`` for a kernel built with ``enable_backward=False`` (no adjoint: "")."""
    forward = _function_block(full, re.compile(rf"\b{re.escape(kernel_name)}_{backend}_kernel_forward\("))
    if not backward:
        return BackendIR(forward=forward, backward="", full=full)
    adjoint = _function_block(full, re.compile(rf"\b{re.escape(kernel_name)}_{backend}_kernel_backward\("))
    return BackendIR(forward=forward, backward=adjoint, full=full)


def extract_sources(cpu: str, cuda: str, kernel_name: str, names: tuple[str, ...],
                    backward: bool = True) -> tuple[BackendIR, BackendIR]:
    """(CPU, CUDA) IR of a kernel from Warp's generated text: ``names`` (the kernel, its helpers
    and structs) normalised, then forward and backward cut out."""
    return (extract(normalise_names(cpu, names), kernel_name, "cpu", backward),
            extract(normalise_names(cuda, names), kernel_name, "cuda", backward))
