"""``jitsynth ingest`` in the worker: item indices ("seeds") in, records or failures out.

The main process discovers kernels without running any user code (``synth/ingest/discover.py``)
and hands every worker the item list through the pool initialiser. Here, in the worker,
the kernel's module is imported (``synth/ingest/loader.py``), the kernel object found, Warp's
CPU and CUDA code generated for that kernel alone, forward and backward extracted, and a
record of the usual schema built with ``metadata.origin = "real"`` and provenance in
``metadata.source``. A kernel defined inside a function that the module does not create
at import is hoisted to module scope when it captures nothing (``synth/ingest/hoist.py``).
Whatever stops an item becomes ``Failed(seed, "<category>: ...")``: ``import``,
``closure``, ``conditional``, ``generic``, ``codegen``, ``extract``, ``source``, ``internal``.
"""

from __future__ import annotations

import ast
import os
import re
from dataclasses import dataclass

import warp as wp

from synth import warp_adapter
from synth.canonical import KEY_VERSION, canonical_key
from synth.ingest.compose import compose
from synth.ingest.discover import INGEST_NAME, INGEST_VERSION, IngestItem, Target
from synth.extract import ExtractionError, extract, normalise_names
from synth.ingest.hoist import hoist_kernel, module_tree
from synth.ingest.loader import IngestFailure, Loaded, Loader, NotCreated, config_applied, describe, find_kernel
from synth.metadata import analyse
from synth.record import BackendSource, GeneratorInfo, Metadata, Record, SourceInfo, Validation, encode_line
from synth.worker import Failed, Outcome, Produced


@dataclass(frozen=True, slots=True)
class IngestSettings:
    producer: str
    config_hash: str
    targets: tuple[Target, ...]
    items: tuple[IngestItem, ...]
    import_timeout: float = 60.0  # seconds a module may take to import (then: definitions only)


_settings: IngestSettings | None = None
_loader: Loader | None = None


def init_ingest(settings: IngestSettings) -> None:
    """Pool initialiser: Warp starts once per worker; the item list arrives with it."""
    global _settings, _loader
    _settings = settings
    _loader = Loader(list(settings.targets), settings.import_timeout)
    warp_adapter.init_warp()


def process_items(seeds: list[int]) -> list[Outcome]:
    """The pipeline's task: one outcome per item index, in order."""
    if _settings is None or _loader is None:
        raise RuntimeError("ingest worker not initialised")
    out: list[Outcome] = []
    for seed in seeds:
        try:
            record = build_record(seed, _settings, _loader)
            out.append(Produced(seed, record.id, encode_line(record)))
        except IngestFailure as exc:
            out.append(Failed(seed, _relative(exc.reason, seed, _settings)))
        except Exception as exc:  # noqa: BLE001 - an unforeseen failure is still this item's outcome
            out.append(Failed(seed, _relative(f"internal: {describe(exc)}", seed, _settings)))
    return out


def _relative(text: str, seed: int, settings: IngestSettings) -> str:
    """A failure reason without install paths, cut to a readable length."""
    if 0 <= seed < len(settings.items):
        for root in _roots(settings.targets[settings.items[seed].target]):
            text = text.replace(root, "")
    return text[:500]


def _roots(target: Target) -> list[str]:
    """Directory prefixes stripped from file paths in generated code (so records do not
    depend on where things are installed): the target's import root and Warp's."""
    roots = [target.import_root or os.path.dirname(target.path.rstrip(os.sep)),
             os.path.dirname(os.path.dirname(wp.__file__))]
    return [r.rstrip(os.sep) + os.sep for r in dict.fromkeys(roots) if r]


def _normalise(text: str, gen: warp_adapter.KernelCodegen, mangled: str, kernel_name: str, roots: list[str]) -> str:
    # the kernel: exactly its mangled native name (key + hash) becomes the Python name
    text = re.sub(rf"(?<![A-Za-z0-9_])((?:adj_|wp_args_)?){re.escape(mangled)}(?![A-Za-z0-9])",
                  lambda m: m.group(1) + kernel_name, text)
    text = normalise_names(text, tuple(k for k in (*gen.function_keys, *gen.struct_keys) if k))
    for root in roots:
        text = text.replace(root, "")
    return text


def _extract(full: str, kernel_name: str, backend: str, backward: bool) -> tuple[str, str]:
    # enable_backward=False: Warp emits no adjoint; an empty placeholder lets the forward be cut out
    text = full if backward else f"{full}\nvoid {kernel_name}_{backend}_kernel_backward(\n)\n{{\n}}\n"
    try:
        ir = extract(text, kernel_name, backend)
    except ExtractionError as exc:
        raise IngestFailure(f"extract: {exc}") from exc
    return ir.forward, ir.backward if backward else ""


def _launch_block_dim(item: IngestItem, module: object) -> int | None:
    """``block_dim`` of the first ``wp.launch``/``wp.launch_tiled`` of this kernel in its file, when it
    is a literal or a module-level integer: tile kernels are generated for the block size they run with."""
    parsed = module_tree(item.file)
    if parsed is None:
        return None
    for node in ast.walk(parsed[1]):
        if not (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None))
                in ("launch", "launch_tiled")):
            continue
        first = node.args[0] if node.args else next((k.value for k in node.keywords if k.arg == "kernel"), None)
        if getattr(first, "id", getattr(first, "attr", None)) != item.name:
            continue
        value = next((k.value for k in node.keywords if k.arg == "block_dim"), None)
        if isinstance(value, ast.Constant):
            found = value.value
        elif isinstance(value, ast.Name):
            found = vars(module).get(value.id)
        else:
            continue
        if isinstance(found, int) and not isinstance(found, bool) and found > 0:
            return found
    return None


def build_record(seed: int, settings: IngestSettings, loader: Loader) -> Record:
    if not 0 <= seed < len(settings.items):
        raise IngestFailure(f"internal: no item {seed}")
    item = settings.items[seed]
    target = settings.targets[item.target]
    loaded = loader.load(item)
    hoisted = False
    try:
        kernel, instances = find_kernel(loaded, item)
    except NotCreated:
        kernel, instances, hoisted = hoist_kernel(loaded, item), 1, True
    concrete = warp_adapter.concrete_kernel(kernel)
    if concrete is None:
        raise IngestFailure("generic: kernel has generic parameters and no concrete overload (wp.overload) "
                            "was registered at import")
    block_dim = _launch_block_dim(item, loaded.module)
    cpu_block_dim = None
    try:
        with config_applied(loaded.config):
            try:
                gen = warp_adapter.codegen_kernel(concrete, block_dim)
            except Exception:  # noqa: BLE001
                # a tile kernel may need its whole block on CPU too: Warp's enable_cpu_blocks mode
                cpu_block_dim = block_dim or kernel.module.options.get("block_dim") or 1
                if cpu_block_dim == 1:
                    raise
                gen = warp_adapter.codegen_kernel(concrete, block_dim, cpu_block_dim)
    except Exception as exc:  # noqa: BLE001 - Warp rejected the kernel
        raise IngestFailure(f"codegen: {describe(exc, limit=None)}") from exc
    kernel_name = item.name
    roots = _roots(target)
    cpu_full = _normalise(gen.cpu, gen, gen.cpu_mangled, kernel_name, roots)
    cuda_full = _normalise(gen.cuda, gen, gen.cuda_mangled, kernel_name, roots)
    cpu_fwd, cpu_bwd = _extract(cpu_full, kernel_name, "cpu", gen.backward)
    cuda_fwd, cuda_bwd = _extract(cuda_full, kernel_name, "cuda", gen.backward)
    local_root = target.path if os.path.isdir(target.path) else os.path.dirname(target.path)
    source = compose(kernel.func, gen.functions, gen.structs, local_root)
    try:
        facts = analyse(source, kernel_name)
        record_id = canonical_key(source)
    except SyntaxError as exc:
        raise IngestFailure(f"source: composed source does not parse: {exc}") from exc
    return Record(
        id=record_id,
        schema_version=1,
        seed=seed,
        producer=settings.producer,
        kernel_name=kernel_name,
        python_source=source,
        cpu=BackendSource(cpu_fwd, cpu_bwd, cpu_full),
        cuda=BackendSource(cuda_fwd, cuda_bwd, cuda_full),
        validation=Validation(codegen=True),
        metadata=Metadata(
            loc=facts.loc, n_params=facts.n_params, param_types=facts.param_types, features=facts.features,
            builtins=facts.builtins, complexity=facts.complexity, warp_version=warp_adapter.WARP_VERSION,
            generator=GeneratorInfo(INGEST_NAME, INGEST_VERSION, settings.config_hash),
            dedup_key_version=KEY_VERSION, origin="real",
            source=_provenance(item, target, loaded, instances, block_dim, cpu_block_dim, hoisted),
        ),
    )


def _provenance(item: IngestItem, target: Target, loaded: Loaded, instances: int, block_dim: int | None,
                cpu_block_dim: int | None, hoisted: bool) -> SourceInfo:
    if target.import_root:
        path = os.path.relpath(item.file, target.import_root)
    else:
        base = target.path if os.path.isdir(target.path) else os.path.dirname(target.path)
        path = os.path.relpath(item.file, os.path.dirname(base.rstrip(os.sep)))
    package = target.package or target.name
    if target.path.endswith(".py") and "." in package:  # a single module: name the package holding it
        package = package.rsplit(".", 1)[0]
    return SourceInfo(package=package, version=target.version,
                      path=path.replace(os.sep, "/"), line=item.line, license=item.license or target.license,
                      qualname=item.qualname, loader=loaded.mode, stubbed=list(loaded.stubbed), instances=instances,
                      block_dim=block_dim, cpu_block_dim=cpu_block_dim, hoisted=hoisted)
