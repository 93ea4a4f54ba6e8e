"""The Warp adapter is the only user of Warp's private API. If a Warp release moves
what it relies on, these tests fail first and say what broke."""

from __future__ import annotations

import pytest

from synth import warp_adapter
from synth.extract import extract, normalise_names

KERNEL = '''import warp as wp

@wp.func
def scale2(a: float) -> float:
    return a * 2.0

@wp.kernel
def saxpy(x: wp.array(dtype=float), y: wp.array(dtype=float), alpha: float):
    tid = wp.tid()
    y[tid] = alpha * scale2(x[tid]) + y[tid]
'''


@pytest.fixture(scope="module", autouse=True)
def warp_ready() -> None:
    warp_adapter.init_warp()


def test_private_api_still_exists() -> None:
    import warp._src.context as ctx

    missing = [name for name in ("user_modules", "ModuleBuilder", "_codegen_lock", "Module") if not hasattr(ctx, name)]
    assert not missing, f"Warp {warp_adapter.WARP_VERSION} no longer has warp._src.context.{missing}: update synth/warp_adapter.py"
    assert hasattr(ctx.Module, "resolve_options"), "Module.resolve_options moved: update synth/warp_adapter.py"
    assert hasattr(ctx.ModuleBuilder, "codegen"), "ModuleBuilder.codegen moved: update synth/warp_adapter.py"


def test_codegen_cpu_and_cuda_and_extract() -> None:
    with warp_adapter.KernelModule(KERNEL, "jitsynth_adapter_test") as module:
        sources = module.codegen()
    assert sources.kernel_keys and sources.kernel_keys[0].endswith("saxpy")
    for backend, full in (("cpu", sources.cpu), ("cuda", sources.cuda)):
        text = normalise_names(full, ["saxpy", "scale2"])
        ir = extract(text, "saxpy", backend)
        assert f"saxpy_{backend}_kernel_forward(" in ir.forward
        assert f"saxpy_{backend}_kernel_backward(" in ir.backward
        assert "scale2(" in ir.forward and "adj_scale2(" in ir.backward
        assert ir.forward.rstrip().endswith("}") and ir.backward.rstrip().endswith("}")
    assert "__global__" in sources.cuda and "__global__" not in sources.cpu


def test_shared_builder_matches_separate_builders() -> None:
    """One ModuleBuilder serves both passes; it must give what Warp's own path gives."""
    import warp as wp
    import warp._src.context as ctx

    with warp_adapter.KernelModule(KERNEL, "jitsynth_adapter_cmp") as module:
        shared = module.codegen()
        wmod = module.warp_module()
        options = wmod.resolve_options(wp.config) | {"output_arch": None}
        cpu = ctx.ModuleBuilder(wmod, options, target="cpu").codegen("cpu")
        cuda = ctx.ModuleBuilder(wmod, options, target="cuda").codegen("cuda")
    strip = lambda s: normalise_names(s, ["saxpy", "scale2"])  # noqa: E731 - func counters differ per builder
    assert strip(shared.cpu) == strip(cpu)
    assert strip(shared.cuda) == strip(cuda)


def test_modules_are_removed_after_use_and_on_error() -> None:
    before = warp_adapter.live_module_count()
    for i in range(5):
        with warp_adapter.KernelModule(KERNEL, f"jitsynth_leak_{i}") as module:
            module.codegen()
    bad = KERNEL.replace("alpha * scale2(x[tid])", "alpha * undefined_fn(x[tid])")
    with pytest.raises(Exception, match="undefined_fn"):
        with warp_adapter.KernelModule(bad, "jitsynth_bad") as module:
            module.codegen()
    assert warp_adapter.live_module_count() == before
    import sys

    assert not [m for m in sys.modules if m.startswith("jitsynth_leak_") or m == "jitsynth_bad"]


def test_normalise_names_strips_hashes_and_counters() -> None:
    text = "void k1_5d1dc674_cpu_kernel_forward(wp_args_k1_5d1dc674 a) { adj_f0_12(x); f0_3(y); k10_ab(z); }"
    assert normalise_names(text, ["k1", "f0"]) == (
        "void k1_cpu_kernel_forward(wp_args_k1 a) { adj_f0(x); f0(y); k10_ab(z); }")


def test_overload_cache_gives_byte_identical_code() -> None:
    """The memoised overload resolution must never change what Warp generates."""
    from synth.gen.generator import generate

    def sources(tag: str) -> list[tuple[str, str]]:
        out = []
        for seed in range(40):
            kernel = generate(seed)
            names = (kernel.kernel_name, *kernel.helper_names, *kernel.struct_names)
            with warp_adapter.KernelModule(kernel.source, f"jitsynth_cache_{tag}_{seed}", filename="k.py") as module:
                generated = module.codegen()
            out.append((normalise_names(generated.cpu, names), normalise_names(generated.cuda, names)))
        return out

    try:
        warp_adapter.set_overload_cache(False)
        plain = sources("off")
        warp_adapter.set_overload_cache(True)
        cached = sources("on")
    finally:
        warp_adapter.set_overload_cache(True)
    assert cached == plain


# -- validation tiers (synth/validate/tiers.py) ---------------------------------------------------------

VALIDATION_KERNEL = '''import warp as wp


@wp.struct
class P:
    scale: float
    offset: wp.vec3


@wp.kernel
def k(p: P, grid: wp.array2d(dtype=wp.mat33), n: int):
    i, j = wp.tid()
    grid[i, j] = grid[i, j] * p.scale
'''


def test_validation_private_api_still_exists() -> None:
    import inspect

    import warp as wp
    import warp._src.build as build
    import warp._src.context as ctx

    problems = [name for name in ("_resolve_cpu_compiler_flags", "Module", "runtime") if not hasattr(ctx, name)]
    if not hasattr(ctx.runtime, "get_nvrtc_pch_dir"):
        problems.append("runtime.get_nvrtc_pch_dir")
    wanted = {"pch_dir", "config", "optimization_level", "verify_fp", "fast_math", "fuse_fp", "lineinfo",
              "use_precompiled_headers"}
    problems += [f"build_cuda({p}=)" for p in sorted(wanted - set(inspect.signature(build.build_cuda).parameters))]
    problems += [f"Kernel({p}=)" for p in ("func", "key", "module", "options")
                 if p not in inspect.signature(wp.Kernel.__init__).parameters]
    assert not problems, f"Warp {warp_adapter.WARP_VERSION} moved {problems}: update synth/warp_adapter.py (validation)"


def test_validation_helpers_read_types_batch_and_compile_ptx(tmp_path) -> None:  # noqa: ANN001
    import warp as wp
    import warp._src.context as ctx

    with warp_adapter.KernelModule(VALIDATION_KERNEL, "jitsynth_adapter_validation") as module:
        kernel = module.pymodule.k
        params = warp_adapter.kernel_params(kernel)
        assert [name for name, _ in params] == ["p", "grid", "n"]
        assert params[1][1].ndim == 2 and params[1][1].dtype is wp.mat33f and params[2][1] is wp.int32
        assert warp_adapter.struct_fields(params[0][1]) == {"scale": wp.float32, "offset": wp.vec3f}
        assert warp_adapter.composite_layout(wp.mat33f) == (wp.float32, (3, 3))
        assert warp_adapter.composite_layout(wp.float32) == (wp.float32, ())
        batch, (copy,) = warp_adapter.batch_module("jitsynth_adapter_batch", [kernel], {"cpu_compiler_flags": ""})
        assert copy.module is batch and copy.key != kernel.key and "jitsynth_adapter_batch" not in ctx.user_modules
        assert warp_adapter.resolved_cpu_flags(batch) == ""
        cuda = normalise_names(module.codegen().cuda, ["k", "P"])
    ptx = warp_adapter.nvrtc_ptx(cuda, 75, str(tmp_path))
    assert ".target sm_75" in ptx and ".visible .entry k_cuda_kernel_forward(" in ptx


# -- builtin registry (synth/gen/signatures.py derives the generator's productions from it) ----------


def test_builtin_registry_api_still_exists() -> None:
    import warp._src.codegen as codegen
    import warp._src.context as ctx

    assert hasattr(ctx, "builtin_functions") and hasattr(codegen, "func_match_args"), (
        f"Warp {warp_adapter.WARP_VERSION} moved its builtin registry: update synth/warp_adapter.py")
    sin = ctx.builtin_functions["sin"]
    missing = [a for a in ("overloads", "group", "hidden", "defaults") if not hasattr(sin, a)]
    missing += [a for a in ("input_types", "value_func", "value_type", "variadic", "signature")
                if not hasattr(sin.overloads[0], a)]
    assert not missing, f"warp Function lost {missing}: update synth/warp_adapter.py"


def test_builtin_overloads_and_return_types() -> None:
    overloads = warp_adapter.builtin_overloads()
    sins = [o for o in overloads if o.name == "sin"]
    assert sins and all(o.group == "Scalar Math" for o in sins)
    assert any(o.params == (("x", "float32"),) and o.returns == "float32" for o in sins)
    assert any(o.documented for o in overloads if o.name == "lerp")
    resolve = warp_adapter.builtin_return_type
    assert resolve("add", ("float32", "float32")) == "float32"
    assert resolve("mul", ("mat33f", "vec3f")) == "vec3f"
    assert resolve("lerp", ("vec3f", "vec3f", "float32")) == "vec3f"
    assert resolve("transformation", ("vec3f", "quatf")) == "transformf"
    assert resolve("svd3", ("mat33f",)) == "tuple[mat33f,vec3f,mat33f]"
    assert resolve("transform_set_translation", ("transformf", "vec3f")) == "None"
    assert resolve("sin", ("vec3f",)) is None and resolve("no_such_builtin", ()) is None


# -- jitsynth ingest: one real kernel at a time out of an imported module ----------------------------


def test_ingest_private_api_still_exists() -> None:
    import inspect

    import warp._src.context as ctx

    assert hasattr(ctx, "ModuleHasher"), "warp._src.context.ModuleHasher moved: update warp_adapter.codegen_kernel"
    params = inspect.signature(ctx.ModuleBuilder.__init__).parameters
    assert "hasher" in params and "target" in params, "ModuleBuilder(hasher=, target=) changed: update codegen_kernel"
    assert "block_dim" in inspect.signature(ctx.Module.resolve_options).parameters, \
        "Module.resolve_options(config, block_dim=) changed: update codegen_kernel"
    for owner, name in ((ctx.Module, "_get_live_kernels"), (ctx.Module, "load"), (ctx.Kernel, "get_mangled_name")):
        assert hasattr(owner, name), f"warp._src.context.{owner.__name__}.{name} moved: update synth/warp_adapter.py"


def test_codegen_of_one_kernel_out_of_a_module() -> None:
    two = KERNEL + '''

@wp.kernel
def other(x: wp.array(dtype=float)):
    x[wp.tid()] = 1.0
'''
    with warp_adapter.KernelModule(two, "jitsynth_adapter_one") as module:
        saxpy = module.pymodule.saxpy
        assert saxpy in warp_adapter.live_kernels() and module.pymodule.other in warp_adapter.live_kernels()
        assert warp_adapter.concrete_kernel(saxpy) is saxpy
        gen = warp_adapter.codegen_kernel(saxpy)
    assert gen.cpu_mangled.startswith("saxpy_") and gen.cuda_mangled.startswith("saxpy_") and gen.backward
    assert gen.function_keys == ("scale2",) and gen.functions[0].__name__ == "scale2"
    for backend, full, mangled in (("cpu", gen.cpu, gen.cpu_mangled), ("cuda", gen.cuda, gen.cuda_mangled)):
        assert f"{mangled}_{backend}_kernel_forward(" in full and f"{mangled}_{backend}_kernel_backward(" in full
        assert "other_" not in full  # the module's other kernel is not generated
    assert "WP_TILE_BLOCK_DIM 256" in gen.cuda and "WP_TILE_BLOCK_DIM 1\n" in gen.cpu  # as Warp launches them
    with warp_adapter.KernelModule(KERNEL, "jitsynth_adapter_bd") as module:
        assert "WP_TILE_BLOCK_DIM 64" in warp_adapter.codegen_kernel(module.pymodule.saxpy, block_dim=64).cuda


def test_module_loads_blocked_stops_launches() -> None:
    import warp as wp

    with warp_adapter.KernelModule(KERNEL, "jitsynth_adapter_block") as module:
        x = wp.zeros(4, dtype=float, device="cpu")
        with pytest.raises(warp_adapter.ModuleLoadBlocked), warp_adapter.module_loads_blocked():
            wp.launch(module.pymodule.saxpy, dim=4, inputs=[x, x, 1.0], device="cpu")
    import warp._src.context as ctx

    assert ctx.Module.load.__name__ == "load"  # restored


def test_tile_kernel_cuda_is_generated_for_a_gpu_without_mathdx() -> None:
    tile = '''import warp as wp

@wp.kernel
def fft_rows(x: wp.array2d(dtype=wp.vec2f)):
    a = wp.tile_load(x, shape=(1, 64))
    wp.tile_fft(a)
    wp.tile_store(x, a)
'''
    with warp_adapter.KernelModule(tile, "jitsynth_adapter_tile") as module:
        gen = warp_adapter.codegen_kernel(module.pymodule.fft_rows, block_dim=32)
        assert "WP_TILE_BLOCK_DIM 32" in gen.cuda and "WP_TILE_BLOCK_DIM 1\n" in gen.cpu
        assert "tile_fft(/* scalar */ 0" in gen.cuda  # Warp's own path, no libmathdx LTO symbol
        with pytest.raises(Exception, match="on GPU without libmathdx"):  # GPU rules apply to the CUDA pass
            warp_adapter.codegen_kernel(module.pymodule.fft_rows, block_dim=128)


TILE_SUM = '''import warp as wp

TILE = wp.constant(16)


@wp.kernel
def block_sums(x: wp.array(dtype=float), out: wp.array(dtype=float)):
    i = wp.tid()
    t = wp.tile_load(x, shape=TILE, offset=i * TILE, storage="shared")
    s = wp.tile_sum(wp.tile_map(wp.abs, t))
    wp.tile_store(out, s, offset=i)
'''


def test_tile_kernel_gets_cuda_text_from_a_cuda_target_build() -> None:
    """The one-builder shortcut holds for plain kernels only. A tile kernel's text depends on
    the target and block size its builder was made for: the shortcut (a CPU-target builder
    at the module's default block size) emits CUDA for 256 threads and applies CPU rules,
    so ``codegen(block_dim=...)`` builds each target as its launch would."""
    with warp_adapter.KernelModule(TILE_SUM, "jitsynth_adapter_tile_sum") as module:
        shortcut = module.codegen()
        per_target = module.codegen(block_dim=64)
    assert "WP_TILE_BLOCK_DIM 64" in per_target.cuda and "WP_TILE_BLOCK_DIM 1\n" in per_target.cpu
    assert "WP_TILE_BLOCK_DIM 64" not in shortcut.cuda and per_target.cuda != shortcut.cuda
    assert "blockDim" in per_target.cuda and "threadIdx" in per_target.cuda
    assert "tile_shared_t" in per_target.cuda or "__shared__" in per_target.cuda
    fft = TILE_SUM.split("@wp.kernel")[0] + '''@wp.kernel
def fft_rows(x: wp.array2d(dtype=wp.vec2f)):
    a = wp.tile_load(x, shape=(1, 64))
    wp.tile_fft(a)
    wp.tile_store(x, a)
'''
    with warp_adapter.KernelModule(fft, "jitsynth_adapter_tile_fft") as module:
        with pytest.raises(ValueError, match="on CPU requires fft_size to be divisible by block_dim"):
            module.codegen()  # CPU rules applied to the CUDA pass
        cuda = module.codegen(block_dim=32).cuda
    assert "tile_fft(/* scalar */ 0" in cuda and "WP_TILE_BLOCK_DIM 32" in cuda
