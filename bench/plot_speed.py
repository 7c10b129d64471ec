"""Plots of ``bench.throughput`` JSON files: the SqlSource sweep and worker scaling.

    python -m bench.plot_speed bench/results/speed-sweep.json --out bench/results/speed

writes ``<out>-sweep.png`` (time to finish over the ideal, per page time and cap: lookahead
found by itself, fixed at 1, and a raw Temporal baseline) and ``<out>-workers.png`` (pages/s
against 1, 2 and 3 worker processes, with the ideal), for whichever of the two the file holds.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bench.throughput import RAW, SQL, SQL_LA1, SWEEP_CAPS, SWEEP_DURATIONS, Result, _dur


def plot_sweep(results: list[Result], path: Path) -> bool:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sweep = [r for r in results if r.spec.group == "sweep" and r.ideal_s]
    if not sweep:
        return False
    fig, axes = plt.subplots(1, len(SWEEP_DURATIONS), figsize=(12, 3.8), sharey=True)
    names = {
        SQL: "SqlSource, lookahead by itself",
        SQL_LA1: "SqlSource, lookahead 1",
        RAW: "raw Temporal baseline",
    }
    width = 0.27
    for ax, d in zip(axes, SWEEP_DURATIONS, strict=True):
        for i, kind in enumerate((SQL, SQL_LA1, RAW)):
            xs, ys = [], []
            for j, cap in enumerate(SWEEP_CAPS):
                r = next(
                    (
                        x
                        for x in sweep
                        if (x.spec.kind, x.spec.page_seconds, x.spec.cap) == (kind, d, cap)
                    ),
                    None,
                )
                if r is not None and r.ideal_s:
                    xs.append(j + (i - 1) * width)
                    ys.append(r.wall_s / r.ideal_s)
            ax.bar(xs, ys, width, label=names[kind], color=f"C{i}")
        ax.axhline(1.2, color="grey", linestyle="--", linewidth=1)
        ax.set_xticks(range(len(SWEEP_CAPS)), [f"cap {c}" for c in SWEEP_CAPS])
        ax.set_title(f"{_dur(d)} pages")
        ax.set_yscale("log")
    axes[0].set_ylabel("time to finish / ideal (log)")
    fig.legend(
        *axes[-1].get_legend_handles_labels(),
        fontsize=8,
        loc="upper center",
        bbox_to_anchor=(0.5, 0.92),
        ncol=3,
        frameon=False,
    )
    fig.suptitle(
        "One chain through SqlSource on SQLite, no tuning (dashed: the 1.2 x goal)", y=0.99
    )
    fig.tight_layout(rect=(0, 0, 1, 0.86))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def plot_workers(results: list[Result], path: Path) -> bool:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in results if r.spec.group == "workers"]
    if not rows:
        return False
    fig, ax = plt.subplots(figsize=(6, 3.8))
    for kind, label in ((RAW, "raw Temporal baseline"), ("ours", "Batch Orchestra, 8 chains la8")):
        pts = sorted((r.spec.workers, r.pages_per_s) for r in rows if r.spec.kind == kind)
        ax.plot([w for w, _ in pts], [p for _, p in pts], marker="o", label=label)
    ideal = sorted({(r.spec.workers, r.pages / r.ideal_s) for r in rows if r.ideal_s})
    ax.plot([w for w, _ in ideal], [p for _, p in ideal], "k--", label="ideal (every slot busy)")
    ax.set_xlabel("worker processes (100 activity slots each)")
    ax.set_ylabel("pages/s (1 s pages, cap 300)")
    ax.set_xticks([1, 2, 3])
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.plot_speed", description=__doc__)
    ap.add_argument("json", type=Path, nargs="+")
    ap.add_argument("--out", type=Path, required=True, help="path prefix of the PNGs")
    opts = ap.parse_args(argv)
    results = [Result.from_dict(d) for f in opts.json for d in json.loads(f.read_text())["results"]]
    for name, fn in (("sweep", plot_sweep), ("workers", plot_workers)):
        path = opts.out.with_name(f"{opts.out.name}-{name}.png")
        if fn(results, path):
            print(f"wrote {path}")


if __name__ == "__main__":
    main()
