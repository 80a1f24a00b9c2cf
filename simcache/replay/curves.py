"""Sweep curves: hit ratio and mean service cost against capacity and against radius, as PNGs."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from recvae.storage import atomic_path


def plot_curves(df: pd.DataFrame, out: str | Path) -> list[Path]:
    """Hit ratio and mean service cost against capacity (and against radius) as PNGs (Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    out = Path(out)
    written = []
    for x, group_by, fname in (("capacity", "radius", "curves_capacity.png"),
                               ("radius", "capacity", "curves_radius.png")):
        if df[x].nunique() < 2:
            continue
        fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
        styles = dict(zip(df["policy"].unique(), ["-", "--", ":", "-.", (0, (5, 1)), (0, (1, 3))] * 4))
        groups = sorted(df[group_by].unique())
        colours = {g: plt.cm.viridis(i / max(1, len(groups) - 1) * 0.9) for i, g in enumerate(groups)}
        for (pol, g), sub in df.groupby(["policy", group_by], sort=False):
            sub = sub.sort_values(x)
            label = f"{pol}, {'r' if group_by == 'radius' else 'C'}={g:g}"
            kw = dict(marker="o", ms=3, label=label, linestyle=styles[pol], color=colours[g])
            axes[0].plot(sub[x], sub["hit_ratio"], **kw)
            axes[1].plot(sub[x], sub["mean_service_cost"], **kw)
        for ax, ylabel in zip(axes, ("hit ratio", "mean service cost"), strict=True):
            ax.set_xlabel(x)
            ax.set_ylabel(ylabel)
            vals = df[x].to_numpy(dtype=float)
            if x == "capacity" and vals.min() > 0 and vals.max() / vals.min() >= 10:
                ax.set_xscale("log")
                ticks = sorted(set(vals.tolist()))
                if len(ticks) <= 12:  # label the swept capacities themselves, not powers of ten
                    ax.set_xticks(ticks, [f"{t:,.0f}" for t in ticks])
                    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
            ax.grid(True, alpha=0.3)
        # from 0 up to a little above the largest hit ratio: low ratios stay readable
        axes[0].set_ylim(0, min(1.0, max(0.05, 1.15 * float(df["hit_ratio"].max()))))
        handles, labels = axes[0].get_legend_handles_labels()
        if len(labels) <= 24:
            axes[1].legend(fontsize=7, loc="best")
        fig.suptitle(f"sweep over {x} ({int(df['requests'].iloc[0]):,} requests)")
        fig.tight_layout()
        path = out / fname
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=110, format="png")
        plt.close(fig)
        written.append(path)
    return written


__all__ = ["plot_curves"]
