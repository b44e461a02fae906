"""The report's figures (seaborn on matplotlib's Agg backend), each saved as PNG and SVG.

Every figure takes one palette (display label -> colour) built once per report from
adaptune.core.systems.colours, so a system has the same colour in every figure: a hue per kind of
system (LoRA on all layers blue, few-shot prompting orange, the baseline grey, ...) and a shade
of it per variant (k, prompt style, quantization, OpenAI model); seeds share their group's colour.
"""

from __future__ import annotations

import math
import os
import textwrap
from collections.abc import Sequence
from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")  # files only; never a display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from sklearn.metrics import ConfusionMatrixDisplay  # noqa: E402

from adaptune.core.io import atomic_path  # noqa: E402
from adaptune.core.names import SPLITS  # noqa: E402

sns.set_theme(context="notebook", style="whitegrid", font_scale=0.95)


def save(fig: plt.Figure, stem: str | os.PathLike, dpi: int) -> None:
    """Write `stem`.png (at `dpi`) and `stem`.svg, each whole or not at all."""
    stem = Path(stem)
    for ext in ("png", "svg"):
        with atomic_path(stem.with_suffix(f".{ext}"), suffix=f".{ext}") as tmp:
            fig.savefig(tmp, format=ext, dpi=dpi, bbox_inches="tight", facecolor="white")
    plt.close(fig)


def _wrap(text: str, width: int = 28) -> str:
    """Break a long label before its parenthesis ('LoRA, all linear layers' / '(raw prompt)'),
    else at spaces."""
    head, paren, tail = text.partition(" (")
    if len(text) > width and paren and len(head) <= width + 6:
        return f"{head}\n({tail}"
    return "\n".join(textwrap.wrap(text, width)) or text


def _spread(values: Sequence[float], gap: float) -> list[float]:
    """Positions for labels that belong at `values`, at least `gap` apart: labels that would
    overlap form a run, centred on their values' mean (each label keeps its rank)."""

    def bottom(run: list[int]) -> float:  # the run's lowest label
        return float(np.mean([values[i] for i in run])) - gap * (len(run) - 1) / 2

    runs: list[list[int]] = []  # indices into `values`, runs bottom to top
    for index in sorted(range(len(values)), key=lambda i: values[i]):
        runs.append([index])
        while len(runs) > 1 and bottom(runs[-1]) < bottom(runs[-2]) + gap * len(runs[-2]):
            runs[-2:] = [runs[-2] + runs[-1]]
    placed = [0.0] * len(values)
    for run in runs:
        for step, index in enumerate(run):
            placed[index] = bottom(run) + step * gap
    return placed


def _placeholder(title: str, message: str) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(6, 2.2))
    ax.set_axis_off()
    ax.set_title(title, fontweight="bold")
    ax.text(0.5, 0.45, _wrap(message, 60), ha="center", va="center", fontsize=11, color="#555")
    return fig


# The verdicts' colours (colour-blind safe): a resolved difference, an equivalence, undecided.
VERDICT_COLOURS = {"beats": "#029e73", "equivalent": "#0173b2", "undecided": "#949494"}


def forest_figure(paired: pd.DataFrame) -> plt.Figure:
    """The planned comparisons in one look: each difference (A - B) with its 95% interval, the
    equivalence margin shaded, the verdict in colour; rows grouped by comparison family."""
    if paired.empty:
        return _placeholder("The planned comparisons", "The study has no planned comparison.")
    # One block per family, in the order the families first appear.
    family_order = {kind: i for i, kind in enumerate(dict.fromkeys(paired["comparison"]))}
    rows = paired.iloc[paired["comparison"].map(family_order).argsort(kind="stable")].reset_index(
        drop=True
    )
    kinds = rows["verdict"].map(lambda v: "beats" if "beats" in v else v)
    fig, ax = plt.subplots(figsize=(10, 1.4 + 0.42 * len(rows)), layout="constrained")
    margin = float(rows["margin"].iloc[0])
    ax.axvspan(-margin, margin, color=VERDICT_COLOURS["equivalent"], alpha=0.12, lw=0)
    ax.axvline(0, color="#333", lw=0.8)
    positions = np.arange(len(rows))
    for y, (_, row), kind in zip(positions, rows.iterrows(), kinds):
        colour = VERDICT_COLOURS[kind]
        ax.plot(
            [row["ci_low"], row["ci_high"]], [y, y], color=colour, lw=2.2, solid_capstyle="butt"
        )
        ax.plot(row["difference"], y, "o", color=colour, ms=6)
    labels = [
        f"{_wrap(r['a'], 40)}\n  − {_wrap(r['b'], 40)}".replace("\n(", " (")
        for _, r in rows.iterrows()
    ]
    ax.set_yticks(positions, labels, fontsize=8)
    ax.invert_yaxis()
    ax.grid(axis="y", visible=False)
    # A line between families, their names on the right.
    for family, members in rows.groupby("comparison", sort=False):
        top, bottom = members.index.min(), members.index.max()
        ax.text(
            1.01,
            (top + bottom) / 2,
            family,
            transform=ax.get_yaxis_transform(),
            va="center",
            fontsize=9,
            fontweight="bold",
        )
        if top > 0:
            ax.axhline(top - 0.5, color="#bbb", lw=0.8)
    metric = "macro-F1" if rows["metric"].iloc[0] == "macro_f1" else "accuracy"
    ax.set_xlabel(f"Difference in test {metric}, A − B, with its 95% interval")
    handles = [
        Line2D(
            [],
            [],
            color=VERDICT_COLOURS["beats"],
            marker="o",
            lw=2.2,
            label="one beats the other (Holm)",
        ),
        Line2D(
            [],
            [],
            color=VERDICT_COLOURS["equivalent"],
            marker="o",
            lw=2.2,
            label=f"equivalent within ±{margin:g} (Holm-corrected TOST)",
        ),
        Line2D([], [], color=VERDICT_COLOURS["undecided"], marker="o", lw=2.2, label="undecided"),
        plt.Rectangle(
            (0, 0),
            1,
            1,
            color=VERDICT_COLOURS["equivalent"],
            alpha=0.12,
            label=f"equivalence margin ±{margin:g}",
        ),
    ]
    ax.legend(
        handles=handles,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.6 / (1 + 0.3 * len(rows))),
        ncol=2,
        fontsize=8,
        frameon=False,
    )
    ax.set_title(f"The {len(rows)} planned comparisons on the test split", fontweight="bold")
    return fig


def macro_f1_figure(table: pd.DataFrame, palette: dict, n_labels: int) -> plt.Figure:
    """Test macro-F1 and accuracy (mean over seeds) of every system that ran, with 95% intervals,
    in the groups table's order (by val macro-F1 where val was scored: test never ranks)."""
    if table.empty:
        return _placeholder("Macro-F1 and accuracy by system", "No system was evaluated.")
    height = 1.5 + 0.5 * len(table)
    fig, axes = plt.subplots(1, 2, figsize=(11, height), sharey=True, layout="constrained")
    positions = np.arange(len(table))
    colors = [palette[label] for label in table["system"]]
    for ax, metric, title in ((axes[0], "macro_f1", "Macro-F1"), (axes[1], "accuracy", "Accuracy")):
        values = table[f"{metric}_mean"].to_numpy(float)
        low = table[f"{metric}_ci_low"].to_numpy(float)
        high = table[f"{metric}_ci_high"].to_numpy(float)
        ax.barh(
            positions,
            values,
            color=colors,
            height=0.65,
            xerr=[values - low, high - values],
            error_kw={"ecolor": "#333", "capsize": 3, "lw": 1},
        )
        for y, value, top in zip(positions, values, high):
            ax.text(top + 0.015, y, f"{value:.3f}", va="center", fontsize=9)
        ax.set_xlim(0, 1.12)
        ax.set_xticks(np.linspace(0, 1, 6))
        ax.set_xlabel(title)
        ax.set_title(title, fontweight="bold")
        ax.grid(axis="y", visible=False)
    chance = 1 / n_labels
    axes[1].axvline(chance, color="#888", ls=":", lw=1.2)
    axes[1].set_xlabel(f"Accuracy (dotted line: chance, {chance:.2f})")
    axes[0].set_yticks(positions, [_wrap(s, 34) for s in table["system"]])
    axes[0].invert_yaxis()  # the table's first row at the top
    axes[0].set_ylabel("")
    fig.suptitle(
        f"Test split (n = {int(table['n'].iloc[0])}; mean over seeds), systems in the order of "
        "the report's table (val macro-F1); error bars: 95% stratified bootstrap intervals",
        fontweight="bold",
    )
    return fig


def confusion_figure(
    metrics: Sequence[dict], shown: dict[str, str], labels: Sequence[str]
) -> plt.Figure:
    """One confusion matrix per run in `metrics` (metrics.json records; `shown` maps their
    system names to display labels), each row divided by the number of tweets of that true
    class (so rows sum to 1 unless some answers were no label at all)."""
    if not metrics:
        return _placeholder("Confusion matrices", "No system was evaluated.")
    ordered = sorted(metrics, key=lambda m: (-m["macro_f1"], m["system"]["name"]))
    ncols = 4 if len(ordered) > 9 else min(3, len(ordered))
    nrows = math.ceil(len(ordered) / ncols)
    fig, axes = plt.subplots(
        nrows,
        ncols,
        figsize=(3.6 * ncols + 1.2, 3.5 * nrows + 0.8),
        squeeze=False,
        layout="constrained",
    )
    for index, (ax, m) in enumerate(zip(axes.flat, ordered)):
        counts = np.asarray(m["confusion_matrix"], dtype=float)
        support = np.array(
            [m["per_class"][label].get("support", np.nan) for label in labels], float
        )
        support = np.where(np.isnan(support), counts.sum(axis=1), support)
        with np.errstate(invalid="ignore", divide="ignore"):
            shares = counts / support[:, None]
        # scikit-learn's display, not seaborn's heatmap: that one draws the whole figure once per
        # panel (to check its tick labels), which made this figure most of the report's time.
        ConfusionMatrixDisplay(shares, display_labels=labels).plot(
            ax=ax,
            cmap="Blues",
            values_format=".2f",
            colorbar=False,
            im_kw={"vmin": 0, "vmax": 1},
            text_kw={"fontsize": 10},
        )
        ax.grid(False)
        title = _wrap(shown[m["system"]["name"]], 30)
        invalid = m.get("invalid") or 0
        note = f", {invalid} naming no class" if invalid else ""
        ax.set_title(f"{title}\nmacro-F1 {m['macro_f1']:.3f}{note}", fontsize=10)
        row, col = divmod(index, ncols)
        ax.set_xlabel("Predicted" if row == nrows - 1 or index + ncols >= len(ordered) else "")
        ax.set_ylabel("True" if col == 0 else "")
        ax.tick_params(axis="y", rotation=0)
    for ax in list(axes.flat)[len(ordered) :]:
        ax.set_axis_off()
    mappable = plt.cm.ScalarMappable(cmap="Blues", norm=plt.Normalize(0, 1))
    fig.colorbar(mappable, ax=axes, shrink=0.6, label="Share of the true class's tweets")
    fig.suptitle("Confusion matrices on the test split (rows: true class)", fontweight="bold")
    return fig


def _by_system(labels, systems: dict[str, str] | None) -> dict[str, list[str]]:
    """System label -> the labels of its runs (one per training seed), in the runs' order; a run
    that `systems` does not map is a system of its own."""
    grouped: dict[str, list[str]] = {}
    for label in labels:
        grouped.setdefault((systems or {}).get(label, label), []).append(label)
    return grouped


def training_figure(
    curves: dict[str, pd.DataFrame], palette: dict, systems: dict[str, str] | None = None
) -> plt.Figure:
    """Training loss, validation loss and validation accuracy against the step: a line per run
    (`curves`: run label -> its curves), in its system's colour; the legend names each system
    once (`systems`: run label -> system label), however many seeds it trained."""
    if not curves:
        return _placeholder("Training curves", "No fine-tuning approach was run.")
    panels = [
        ("train_loss", "Training loss"),
        ("val_loss", "Validation loss"),
        ("val_accuracy", "Validation accuracy"),
    ]
    panels = [
        (c, t)
        for c, t in panels
        if any(c in frame.columns and frame[c].notna().any() for frame in curves.values())
    ]
    if not panels:
        return _placeholder("Training curves", "The training runs logged no losses or accuracies.")
    fig, axes = plt.subplots(
        1,
        len(panels),
        figsize=(4.6 * len(panels), 4.2),
        sharex=True,
        squeeze=False,
        layout="constrained",
    )
    for ax, (column, title) in zip(axes[0], panels):
        for label, frame in curves.items():
            if column not in frame.columns:
                continue
            points = frame.loc[frame[column].notna(), ["step", column]].sort_values("step")
            if points.empty:
                continue
            color = palette[label]
            if column == "train_loss" and len(points) > 12:
                # The per-step loss is noisy: faint raw line, solid rolling mean.
                window = max(3, len(points) // 12)
                ax.plot(points["step"], points[column], color=color, alpha=0.25, lw=0.8)
                smooth = points[column].rolling(window, min_periods=1, center=True).mean()
                ax.plot(points["step"], smooth, color=color, lw=2)
            else:
                ax.plot(points["step"], points[column], color=color, lw=2, marker="o", ms=5)
        ax.set_title(title, fontweight="bold")
        ax.set_xlabel("Training step")
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        if column == "val_accuracy":
            ax.set_ylabel("Accuracy")
            ax.set_ylim(0, 1)
        else:
            # The untrained loss is 10-20x the trained one: a log scale keeps the end readable.
            ax.set_yscale("log")
            ax.yaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
            ax.yaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
            ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
            ax.set_ylabel("Cross-entropy loss (log scale)")
    grouped = _by_system(curves, systems)
    handles = [Line2D([], [], color=palette[system], lw=2.5) for system in grouped]
    seeded = any(len(runs) > 1 for runs in grouped.values())
    fig.legend(
        handles,
        list(grouped),
        loc="outside lower center",
        ncol=min(3, len(grouped)),
        frameon=False,
        title="System (a line per training seed)" if seeded else "System",
    )
    smoothed = any(
        len(frame["train_loss"].dropna()) > 12
        for frame in curves.values()
        if "train_loss" in frame.columns
    )
    fig.suptitle(
        "Training curves"
        + (" (training loss: faint per step, solid rolling mean)" if smoothed else ""),
        fontweight="bold",
    )
    return fig


def sweep_figure(points: pd.DataFrame | None, names: dict[str, str]) -> plt.Figure:
    """The sweep on val: macro-F1 against the epoch, one panel per approach, one line per
    learning rate (the mean over seeds, labelled at its end; each seed a faint point), the
    chosen setting starred. `points`: the sweep's summary.csv (None for a study not tuned);
    `names`: approach -> shown name, in the order of the panels."""
    title = "Sweep on the validation split (tuning numbers, not held-out results)"
    if points is None or points.empty:
        return _placeholder(
            title,
            "The study was not tuned (sweep.tune_study is false): its cells "
            "trained at the configured learning rates and epochs.",
        )
    approaches = [a for a in names if a in set(points["approach"])]
    approaches += sorted(set(points["approach"]) - set(approaches))
    fig, axes = plt.subplots(
        1,
        len(approaches),
        figsize=(4.2 * len(approaches), 4.0),
        sharey=True,
        squeeze=False,
        layout="constrained",
    )
    line_ends = {}  # panel -> (label, epochs, val macro-F1, colour) at each line's end
    for ax, approach in zip(axes[0], approaches):
        mine = points[points["approach"] == approach]
        rates = sorted(mine["learning_rate"].unique())
        # Darker for lower rates, within each panel (approaches sweep different rates).
        shades = dict(zip(rates, sns.color_palette("viridis", len(rates) + 1)))
        line_ends[ax] = []
        for rate in rates:
            runs = mine[mine["learning_rate"] == rate]
            ax.scatter(runs["epochs"], runs["val_macro_f1"], color=shades[rate], alpha=0.35, s=18)
            mean = runs.groupby("epochs")["val_macro_f1"].mean()
            ax.plot(mean.index, mean.values, color=shades[rate], lw=2, marker="o", ms=5)
            line_ends[ax].append((f"lr {rate:g}", mean.index[-1], mean.values[-1], shades[rate]))
        chosen = mine[mine["chosen"].astype(bool)]
        if not chosen.empty:
            best = chosen.groupby("epochs")["val_macro_f1"].mean()
            ax.scatter(
                best.index,
                best.values,
                marker="*",
                s=260,
                color="#d62728",
                zorder=5,
                edgecolor="white",
                linewidth=0.8,
            )
        epochs = sorted(mine["epochs"].unique())
        ax.set_xlim(epochs[0] - 0.25, epochs[-1] + 0.6)  # room for the labels at the lines' ends
        ax.set_xticks(epochs)
        ax.set_title(_wrap(names.get(approach, approach), 34), fontweight="bold")
        ax.set_xlabel("Epochs")
    axes[0][0].set_ylabel("Val macro-F1")
    # Each line labelled at its end; lines that end close together (rates that converge) get
    # their labels spread apart, in the shared y range the panels now have.
    low, high = axes[0][0].get_ylim()
    for ax, ends in line_ends.items():
        heights = _spread([end[2] for end in ends], gap=0.06 * (high - low))
        for (label, epochs, _, colour), height in zip(ends, heights):
            ax.text(epochs + 0.12, height, label, va="center", color=colour, fontsize=9)
    handles = [
        Line2D([], [], color="#d62728", marker="*", ms=14, lw=0),
        Line2D([], [], color="#777", marker="o", ms=5, lw=2),
        Line2D([], [], color="#777", marker="o", ms=4, lw=0, alpha=0.35),
    ]
    fig.legend(
        handles,
        ["chosen setting", "mean over seeds", "one seed"],
        loc="outside lower center",
        ncol=3,
        frameon=False,
    )
    fig.suptitle(title, fontweight="bold")
    return fig


def cost_figure(table: pd.DataFrame, palette: dict) -> plt.Figure:
    """Macro-F1 against trainable parameters and against training minutes. Systems that train
    nothing, or whose cost is not measured here, are horizontal lines at their macro-F1."""
    if table.empty:
        return _placeholder("Quality against cost", "No system was evaluated.")
    legend_rows = math.ceil(len(table) / 3)
    fig, axes = plt.subplots(
        1, 2, figsize=(11, 4.2 + 0.25 * legend_rows), sharey=True, layout="constrained"
    )
    points, lines = {}, {}
    costs = (
        ("trainable_parameters", "Trainable parameters (log scale)", True),
        ("training_minutes", "Training time (minutes)", False),
    )
    for ax, (column, xlabel, log) in zip(axes, costs):
        values = pd.to_numeric(table[column], errors="coerce").astype(float)
        for (_, row), cost in zip(table.iterrows(), values):
            label, color = row["system"], palette[row["system"]]
            y = row["macro_f1_mean"]
            if cost > 0:
                ax.errorbar(
                    cost,
                    y,
                    yerr=[[y - row["macro_f1_ci_low"]], [row["macro_f1_ci_high"] - y]],
                    fmt="o",
                    ms=8,
                    color=color,
                    ecolor=color,
                    capsize=4,
                    lw=1.5,
                )
                points.setdefault(label, Line2D([], [], color=color, marker="o", ms=8, ls=""))
            else:
                style = "--" if cost == 0 else ":"
                ax.axhline(y, color=color, ls=style, lw=1.8)
                note = "nothing trained" if cost == 0 else "cost not measured"
                lines.setdefault(f"{label} ({note})", Line2D([], [], color=color, ls=style, lw=1.8))
        ax.set_xlabel(xlabel)
        if log:
            ax.set_xscale("log")
            ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(_count_tick))
            ax.margins(x=0.1)
        else:
            ax.margins(x=0.08)
            ax.set_xlim(left=0)
        if not (values > 0).any():
            ax.text(
                0.5,
                0.5,
                "no fine-tuned system ran",
                transform=ax.transAxes,
                ha="center",
                color="#777",
            )
    axes[0].set_ylabel("Macro-F1 on the test split (95% interval)")
    axes[0].set_ylim(0, 1.03)  # room for a line at 1.0
    axes[0].set_title("Quality against trainable parameters", fontweight="bold")
    axes[1].set_title("Quality against training time", fontweight="bold")
    handles = {**points, **lines}  # fine-tuned points first, then the reference lines
    fig.legend(
        list(handles.values()),
        list(handles),
        loc="outside lower center",
        ncol=min(3, len(handles)),
        frameon=False,
    )
    return fig


def _count_tick(value: float, _position) -> str:
    for unit, size in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= size:
            return f"{value / size:g} {unit}"
    return f"{value:g}"


def class_balance_figure(counts: pd.DataFrame | None, labels: Sequence[str]) -> plt.Figure:
    """Tweets per class in each split."""
    if counts is None or counts.empty:
        return _placeholder("Class balance of the splits", "The split files were not given.")
    order = [s for s in SPLITS if s in set(counts["split"])]
    order += sorted(set(counts["split"]) - set(order))
    names = {"train": "train", "val": "validation", "test": "test"}
    frame = counts.assign(split=counts["split"].map(lambda s: names.get(s, s)))
    fig, ax = plt.subplots(figsize=(7, 4), layout="constrained")
    sns.barplot(
        frame,
        x="split",
        y="count",
        hue="label",
        order=[names.get(s, s) for s in order],
        hue_order=list(labels),
        palette="Set2",
        ax=ax,
    )
    for container in ax.containers:
        ax.bar_label(container, fontsize=8, padding=2)
    ax.margins(y=0.12)
    ax.set_xlabel("Split")
    ax.set_ylabel("Tweets")
    ax.set_title("Tweets per class in each split", fontweight="bold")
    ax.legend(title="Class", frameon=False, loc="upper left", bbox_to_anchor=(1, 1))
    return fig


def seeds_figure(groups: pd.DataFrame, palette: dict) -> plt.Figure:
    """Every seed's macro-F1 and accuracy as points, the mean over seeds as a bar, per system."""
    ran = groups[groups["status"] == "ran"]
    if ran.empty:
        return _placeholder("Every seed's result", "No system was evaluated.")
    fig, axes = plt.subplots(
        1, 2, figsize=(11, 1.5 + 0.5 * len(ran)), sharey=True, layout="constrained"
    )
    positions = np.arange(len(ran))
    for ax, metric, title in ((axes[0], "macro_f1", "Macro-F1"), (axes[1], "accuracy", "Accuracy")):
        for y, (_, row) in zip(positions, ran.iterrows()):
            color = palette[row["system"]]
            ax.barh(y, row[f"{metric}_mean"], color=color, alpha=0.35, height=0.65)
            points = row[f"{metric}_per_seed"]
            jitter = np.linspace(-0.15, 0.15, len(points)) if len(points) > 1 else [0.0]
            ax.scatter(
                points, y + np.asarray(jitter), color=color, edgecolor="#222", s=36, zorder=3
            )
        ax.set_xlim(0, 1)
        ax.set_title(title, fontweight="bold")
        ax.set_xlabel(f"{title} on the test split")
        ax.grid(axis="y", visible=False)
    axes[0].set_yticks(positions, [_wrap(s, 34) for s in ran["system"]])
    axes[0].invert_yaxis()
    fig.suptitle("Every training seed's result (dots) and their mean (bar)", fontweight="bold")
    return fig


def label_distribution_figure(groups: pd.DataFrame, labels: Sequence[str]) -> plt.Figure:
    """The share of test tweets each system gives each label (mean over seeds): a system that
    always answers one label is one solid bar. The test split is balanced, so the ideal is equal
    thirds."""
    ran = groups[groups["status"] == "ran"]
    if ran.empty:
        return _placeholder("Predicted labels per system", "No system was evaluated.")
    fig, ax = plt.subplots(figsize=(9, 1.5 + 0.45 * len(ran)), layout="constrained")
    positions = np.arange(len(ran))
    left = np.zeros(len(ran))
    colors = sns.color_palette("Set2", len(labels) + 1)
    for color, label in zip(colors, [*labels, "no label"]):
        column = f"share_{label}"
        shares = (
            ran[column].to_numpy(float)
            if column in ran
            else 1 - ran[[f"share_{lab}" for lab in labels]].sum(axis=1).to_numpy(float)
        )
        shares = np.clip(np.nan_to_num(shares), 0, 1)
        ax.barh(positions, shares, left=left, color=color, label=label, height=0.65)
        left += shares
    for share in np.arange(1, len(labels)) / len(labels):
        ax.axvline(share, color="#555", ls=":", lw=1)
    ax.set_yticks(positions, [_wrap(s, 34) for s in ran["system"]])
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("Share of the test tweets given each label (dotted: the true balanced shares)")
    ax.legend(title="Predicted", frameon=False, loc="upper left", bbox_to_anchor=(1, 1))
    ax.set_title("Predicted labels per system", fontweight="bold")
    return fig


def calibration_figure(
    curves: dict[str, dict], palette: dict, systems: dict[str, str] | None = None
) -> plt.Figure:
    """Reliability diagram of the fine-tuned runs: accuracy against confidence of the top label
    (softmax over the label log-likelihoods), a line per run in its system's colour; the legend
    gives each system (`systems`: run label -> system label) once, with its runs' mean ECE and
    Brier score, as the report's table does."""
    if not curves:
        return _placeholder("Calibration", "No fine-tuned system with label scores was evaluated.")
    fig, ax = plt.subplots(figsize=(6.5, 5.5), layout="constrained")
    ax.plot([0, 1], [0, 1], color="#888", ls=":", lw=1.2, label="perfect calibration")
    for system, runs in _by_system(curves, systems).items():
        for run in runs:
            points = curves[run]["points"]
            ax.plot(
                [p["confidence"] for p in points],
                [p["accuracy"] for p in points],
                marker="o",
                color=palette[system],
                lw=1.5 if len(runs) == 1 else 1.0,
                ms=4 if len(runs) == 1 else 3,
            )
        ece = np.mean([curves[run]["ece"] for run in runs])
        brier = np.mean([curves[run]["brier"] for run in runs])
        seeds = f", mean of {len(runs)} seeds" if len(runs) > 1 else ""
        ax.plot(
            [],
            [],
            marker="o",
            color=palette[system],
            lw=1.5,
            ms=4,
            label=f"{system}: ECE {ece:.3f}, Brier {brier:.3f}{seeds}",
        )
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("Confidence of the predicted label")
    ax.set_ylabel("Accuracy")
    ax.set_title("Calibration of the fine-tuned models (test split)", fontweight="bold")
    fig.legend(loc="outside lower center", frameon=False, fontsize=8, ncol=1)
    return fig
