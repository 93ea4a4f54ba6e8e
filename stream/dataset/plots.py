"""PNG plots of a dataset's distributions for its card (matplotlib, Agg, no pyplot state)."""

from __future__ import annotations

import io
import math
from collections.abc import Callable

from stream.dataset.stats import DatasetStats

BLUE, ORANGE, GREEN, RED, GREY = "#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8C8C8C"


def _figure(width: float, height: float):  # noqa: ANN202 - matplotlib Figure
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=110, layout="constrained")


def _png(fig) -> bytes:  # noqa: ANN001
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def loc_plot(st: DatasetStats) -> bytes:
    fig = _figure(9, 3.6)
    ax1, ax2, ax3 = fig.subplots(1, 3)
    for ax, values, title, color in ((ax1, st.loc, "Python lines of code", BLUE),
                                     (ax2, st.complexity, "cyclomatic complexity", ORANGE),
                                     (ax3, st.n_params, "kernel parameters", GREEN)):
        data = list(values)
        if data:
            lo, hi = min(data), max(data)
            step = max(1, math.ceil((hi - lo + 1) / 40))  # integer-aligned bins: no comb artefacts
            edges = [lo - 0.5 + step * i for i in range((hi - lo) // step + 2)]
            ax.hist(data, bins=edges, color=color, edgecolor="white", linewidth=0.4)
            mean = sum(data) / len(data)
            ax.axvline(mean, color="black", linestyle="--", linewidth=1, label=f"mean {mean:.1f}")
            ax.legend(fontsize=8, frameon=False)
        ax.set_title(title, fontsize=9)
        ax.set_ylabel("records", fontsize=8)
        ax.tick_params(labelsize=8)
    fig.suptitle(f"Kernel size and shape ({st.records:,} records)", fontsize=10)
    return _png(fig)


def _bars(counter_items: list[tuple[str, int]], total: int, title: str, color: str, height: float) -> bytes:
    fig = _figure(7, height)
    ax = fig.subplots()
    names = [k for k, _ in counter_items][::-1]
    shares = [100 * v / max(total, 1) for _, v in counter_items][::-1]
    bars = ax.barh(names, shares, color=color)
    for bar, share in zip(bars, shares):
        ax.text(bar.get_width() + 0.8, bar.get_y() + bar.get_height() / 2, f"{share:.1f}%", va="center", fontsize=7)
    ax.set_xlim(0, 112)
    ax.set_xlabel("share of records (%)", fontsize=8)
    ax.tick_params(labelsize=8)
    ax.set_title(title, fontsize=10)
    return _png(fig)


def features_plot(st: DatasetStats) -> bytes:
    items = st.features.most_common()
    return _bars(items, st.records, f"Language features used ({st.records:,} records)", BLUE,
                 max(2.5, 0.3 * len(items) + 1))


def builtins_plot(st: DatasetStats, top: int = 30) -> bytes:
    items = st.builtins.most_common(top)
    return _bars(items, st.records, f"Top {len(items)} of {len(st.builtins)} Warp builtins called", ORANGE,
                 max(2.5, 0.24 * len(items) + 1))


def sizes_plot(st: DatasetStats) -> bytes:
    fig = _figure(9, 3.8)
    ax1, ax2 = fig.subplots(1, 2)
    series = [("python_source", "Python source", GREY), ("cpu.forward", "C++ forward", BLUE),
              ("cpu.backward", "C++ backward (adjoint)", GREEN), ("cuda.forward", "CUDA forward", ORANGE),
              ("cuda.backward", "CUDA backward (adjoint)", RED)]
    values = [v for k, _, _ in series for v in st.sizes[k] if v > 0]
    if values:
        lo, hi = math.log10(min(values)), math.log10(max(values))
        edges = [10 ** (lo + (hi - lo + 1e-9) * i / 40) for i in range(41)]
        for key, label, color in series:
            ax1.hist(list(st.sizes[key]), bins=edges, histtype="step", linewidth=1.4, color=color, label=label)
        ax1.set_xscale("log")
    ax1.set_xlabel("characters (log scale)", fontsize=8)
    ax1.set_ylabel("records", fontsize=8)
    ax1.set_title("Source and extracted IR sizes", fontsize=9)
    ax1.legend(fontsize=7, frameon=False)
    ax1.tick_params(labelsize=8)
    py = list(st.sizes["python_source"])
    fwd = list(st.sizes["cpu.forward"])
    if py and fwd:
        ax2.scatter(py, fwd, s=5, alpha=0.4, color=BLUE, label="C++ forward")
        ax2.scatter(py, list(st.sizes["cuda.forward"]), s=5, alpha=0.4, color=ORANGE, label="CUDA forward")
        ratio = sum(fwd) / max(sum(py), 1)
        ax2.set_title(f"IR vs Python size (C++ forward is {ratio:.1f}x the source)", fontsize=9)
        ax2.legend(fontsize=7, frameon=False, markerscale=3)
    ax2.set_xlabel("Python source characters", fontsize=8)
    ax2.set_ylabel("forward function characters", fontsize=8)
    ax2.tick_params(labelsize=8)
    return _png(fig)


def seeds_plot(st: DatasetStats) -> bytes:
    """Where each shard's seeds went: new records, duplicates, failures."""
    fig = _figure(9, 3.4)
    ax = fig.subplots()
    commits = st.per_commit
    x = list(range(len(commits)))
    recs = [c["records"] for c in commits]
    dups = [c["duplicates"] for c in commits]
    fails = [c["failures"] for c in commits]
    width = 0.8 if len(commits) < 200 else 1.0
    ax.bar(x, recs, width, color=GREEN, label=f"records ({sum(recs):,})")
    ax.bar(x, dups, width, bottom=recs, color=ORANGE, label=f"duplicates ({sum(dups):,})")
    ax.bar(x, fails, width, bottom=[r + d for r, d in zip(recs, dups)], color=RED, label=f"failures ({sum(fails):,})")
    if len(commits) <= 24:
        ax.set_xticks(x, [f"{c['producer']}/{c['seq']}" for c in commits], fontsize=7, rotation=45 if
                      len(commits) > 8 else 0)
    ax.set_xlabel("shard (producer/seq, commit order)", fontsize=8)
    ax.set_ylabel("seeds", fontsize=8)
    ax.set_title("Outcome of every seed consumed, per committed shard", fontsize=10)
    tallest = max((r + d + f for r, d, f in zip(recs, dups, fails)), default=1)
    ax.set_ylim(0, tallest * 1.2)
    ax.legend(fontsize=8, frameon=False, loc="upper center", ncol=3)
    ax.tick_params(labelsize=8)
    return _png(fig)


PLOTS: dict[str, tuple[str, Callable[[DatasetStats], bytes]]] = {
    "loc.png": ("Kernel size: Python LOC, complexity and parameter count", loc_plot),
    "features.png": ("Language features: share of records using each", features_plot),
    "builtins.png": ("Most used Warp builtins", builtins_plot),
    "sizes.png": ("Sizes of the Python source and of the extracted C++/CUDA functions", sizes_plot),
    "seeds.png": ("Seeds per shard: records, duplicates and failures", seeds_plot),
}
