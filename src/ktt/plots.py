"""PNG plots of a model's test output: per-level confusion matrices and PR curves.

matplotlib is imported inside the functions, with the Agg backend, so that
importing this module is cheap and works without a display.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np

from ktt.hierarchy import Hierarchy
from ktt.metrics import average_precision, micro_pr_curve, output_columns, output_paths

MAX_CONFUSION_CLASSES = 30
MAX_LABEL_CHARS = 30


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _truncate(name: str, limit: int = MAX_LABEL_CHARS) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "…"


# ---------------------------------------------------------------- confusion
def level_confusion(
    true_codes: np.ndarray, pred_codes: np.ndarray, n_classes: int, max_classes: int = MAX_CONFUSION_CLASSES
) -> tuple[np.ndarray, np.ndarray, bool]:
    """Row-normalised confusion matrix of one level, limited to the frequent classes.

    Parameters
    ----------
    true_codes, pred_codes : ndarray of shape (n,)
        Class positions within the level (0 .. n_classes - 1).
    n_classes : int
    max_classes : int, optional
        Above this many classes, keep only the ``max_classes`` most frequent in
        ``true_codes``; predictions of the other classes go to one extra last
        column, so every row still sums to 1.

    Returns
    -------
    matrix : ndarray of shape (k, k) or (k, k + 1)
        Row ``i`` is the distribution of predictions for true class ``shown[i]``
        (all zeros if that class has no examples).
    shown : ndarray of shape (k,)
        The class positions kept, in row order.
    restricted : bool
        Whether classes were left out (and the extra column added).
    """
    counts = np.bincount(true_codes * n_classes + pred_codes, minlength=n_classes * n_classes)
    counts = counts.reshape(n_classes, n_classes)
    restricted = n_classes > max_classes
    if restricted:
        frequency = np.bincount(true_codes, minlength=n_classes)
        shown = np.sort(np.argsort(-frequency, kind="stable")[:max_classes])
        kept = counts[np.ix_(shown, shown)]
        other = counts[shown].sum(axis=1) - kept.sum(axis=1)
        counts = np.column_stack([kept, other])
    else:
        shown = np.arange(n_classes)
    totals = counts.sum(axis=1, keepdims=True)
    matrix = np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)
    return matrix, shown, restricted


def _plot_confusion(matrix: np.ndarray, row_labels: list[str], col_labels: list[str], title: str, path: Path) -> None:
    plt = _pyplot()
    side = min(24.0, max(5.0, 0.32 * len(col_labels) + 3.0))
    fig, ax = plt.subplots(figsize=(side + 1.5, side))
    image = ax.imshow(matrix, cmap="Blues", vmin=0.0, vmax=1.0, aspect="auto")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    ax.set_xticks(range(len(col_labels)), col_labels, rotation=90, fontsize=8)
    ax.set_yticks(range(len(row_labels)), row_labels, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=10)
    if len(col_labels) <= 12:
        for (i, j), value in np.ndenumerate(matrix):
            ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=8,
                    color="white" if value > 0.5 else "black")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def save_confusion(true_paths: np.ndarray, pred_paths: np.ndarray, hierarchy: Hierarchy, level: int, path: Path) -> Path:
    """Write the row-normalised confusion matrix of ``level`` (0 = top) to ``path``."""
    offset, n_classes = hierarchy.level_offsets[level], hierarchy.level_sizes[level]
    matrix, shown, restricted = level_confusion(
        true_paths[:, level] - offset, pred_paths[:, level] - offset, n_classes
    )
    names = hierarchy.level_classes(level)
    rows = [_truncate(names[i]) for i in shown]
    columns = rows + (["(other)"] if restricted else [])
    title = f"Level {level + 1} confusion matrix (row-normalised)"
    if restricted:
        title += f"\n{len(shown)} most frequent of {n_classes} classes; other predictions in '(other)'"
    _plot_confusion(matrix, rows, columns, title, path)
    return path


# ----------------------------------------------------------------- PR curves
def _one_hot(codes: np.ndarray, n_classes: int) -> np.ndarray:
    indicator = np.zeros((len(codes), n_classes), dtype=np.uint8)
    indicator[np.arange(len(codes)), codes] = 1
    return indicator


def save_pr_curve(output: Mapping, hierarchy: Hierarchy, path: Path) -> Path:
    """Write the micro-averaged PR curve of the leaves and of every level to ``path``.

    The leaf curve uses ``targets_b`` and ``scores``; level ``k`` uses the
    targets' level-``k`` ancestors and :meth:`Hierarchy.level_scores`. The last level's
    curve equals the leaf curve when the columns cover every leaf.
    """
    column_paths = output_columns(output, hierarchy)
    true_paths, _ = output_paths(output, hierarchy)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 6))
    precision, recall = micro_pr_curve(output["targets_b"], output["scores"])
    ax.plot(recall, precision, drawstyle="steps-post", linewidth=2.5,
            label=f"leaves, micro (AP={average_precision(precision, recall):.3f})")
    for level in range(hierarchy.depth):
        if level == hierarchy.depth - 1:
            scores, targets = output["scores"], output["targets_b"]
        else:
            scores = hierarchy.level_scores(output["scores"], column_paths, level)
            targets = _one_hot(true_paths[:, level] - hierarchy.level_offsets[level], hierarchy.level_sizes[level])
        precision, recall = micro_pr_curve(targets, scores)
        ax.plot(recall, precision, drawstyle="steps-post", linestyle="--",
                label=f"level {level + 1} (AP={average_precision(precision, recall):.3f})")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0.0, 1.0)
    ax.set_ylim(0.0, 1.05)
    ax.set_title("Precision-recall (micro-averaged)")
    ax.legend(loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


# --------------------------------------------------------------------- all
def save_plots(output: Mapping, hierarchy: Hierarchy, out_dir: Path) -> list[Path]:
    """Write ``confusion_level{k}.png`` for every level and ``pr_curve.png``.

    Parameters
    ----------
    output : mapping
        A model's test output (see :mod:`ktt.metrics`).
    hierarchy : Hierarchy
    out_dir : Path
        Created if missing.

    Returns
    -------
    list of Path
        The files written.

    Raises
    ------
    KttError
        On missing keys, unknown class names or mismatched shapes.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    true_paths, pred_paths = output_paths(output, hierarchy)
    written = [
        save_confusion(true_paths, pred_paths, hierarchy, level, out_dir / f"confusion_level{level + 1}.png")
        for level in range(hierarchy.depth)
    ]
    written.append(save_pr_curve(output, hierarchy, out_dir / "pr_curve.png"))
    return written
