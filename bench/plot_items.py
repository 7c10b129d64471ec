"""A plot of a ``bench.items`` JSON file: the three ways to run a workflow per item, side by side.

    python -m bench.plot_items bench/results/items-10000.json --out bench/results/items-10000.png

Three panels, one row (raw loop, sliding window, ours) per bar: items per second; the start
latency (an item's wait from its start to its first workflow task), p50 and p99; and the server's
work per item (history events and billable actions).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

ORDER = ("raw loop", "sliding window", "ours", "ours, own queue", "ours + reports")


def plot(data: dict[str, Any], path: Path, title: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = sorted(data["rows"], key=lambda r: ORDER.index(r["name"]) if r["name"] in ORDER else 9)
    names = [r["name"] for r in rows]
    xs = list(range(len(rows)))
    fig, (rate, latency, work) = plt.subplots(1, 3, figsize=(12, 3.6))
    bars = rate.bar(xs, [r["items_per_s"] for r in rows], color=[f"C{i}" for i in xs])
    rate.bar_label(bars, fmt="%.1f", fontsize=8)
    rate.set_title("items per second (higher is better)", fontsize=9)
    width = 0.38
    for i, (key, label) in enumerate((("start_p50_ms", "p50"), ("start_p99_ms", "p99"))):
        vals = [(r[key] or 0) / 1000 for r in rows]
        latency.bar(
            [x + (i - 0.5) * width for x in xs], vals, width, label=label, color=f"C{i + 3}"
        )
    latency.set_title("start latency, s (lower is better)", fontsize=9)
    latency.legend(fontsize=8)
    for i, (key, label) in enumerate(
        (("events_per_item", "history events"), ("actions_per_item", "billable actions"))
    ):
        vals = [r[key] for r in rows]
        b = work.bar(
            [x + (i - 0.5) * width for x in xs], vals, width, label=label, color=f"C{i + 5}"
        )
        work.bar_label(b, fmt="%.1f", fontsize=7)
    work.set_title("server work per item (lower is better)", fontsize=9)
    work.legend(fontsize=8)
    for ax in (rate, latency, work):
        ax.set_xticks(xs, names, fontsize=8)
    n = rows[0]["items"] if rows else 0
    fig.suptitle(title or f"a workflow per item: {n:,} items", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.plot_items", description=__doc__)
    ap.add_argument("json", type=Path)
    ap.add_argument("--out", type=Path, default=None, help="the PNG (default: beside the JSON)")
    ap.add_argument("--title", default="")
    opts = ap.parse_args(argv)
    out = opts.out or opts.json.with_suffix(".png")
    plot(json.loads(opts.json.read_text()), out, opts.title)
    print(f"[bench.plot_items] wrote {out}")


if __name__ == "__main__":
    main()
