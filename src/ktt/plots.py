"""PNG plots of a model's test output: per-level confusion matrices and PR curves.

matplotlib is imported inside the functions and used through its object API
(``Figure`` with the Agg canvas, never ``pyplot``), so importing this module is
cheap, no global backend is switched, and it works without a display.

The runner draws the plots in a child process (:class:`BackgroundPlots`,
``python -m ktt.plots``) while it logs the run, so they cost a spare core rather
than wall time.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Mapping

import numpy as np

from ktt.errors import KttError
from ktt.hierarchy import Hierarchy
from ktt.metrics import average_precision, level_pr_curve, micro_pr_curve, output_columns, output_paths

log = logging.getLogger(__name__)

MAX_CONFUSION_CLASSES = 30
MAX_LABEL_CHARS = 30
#: Follows the name of the class a stopped path ends at (:func:`class_label`).
STOP_SUFFIX = " (stop)"
#: Width of one character of an 8-point tick label, in inches (for the margins).
_CHAR_INCHES = 8 * 0.62 / 72


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height))
    FigureCanvasAgg(figure)
    return figure


def _truncate(name: str, limit: int = MAX_LABEL_CHARS) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "…"


def class_label(hierarchy: Hierarchy, index: int, limit: int = MAX_LABEL_CHARS) -> str:
    """A class's name on a plot, at most ``limit`` characters.

    A stop pseudo-class (a path that ends above this level, see :mod:`ktt.hierarchy`)
    reads ``"X (stop)"``, X the class the path stops at, not ``"X > <stop>"``;
    a long X is cut before the suffix, which stays.
    """
    if not hierarchy.is_stop[index]:
        return _truncate(hierarchy.classes[index], limit)
    return _truncate(hierarchy.classes[hierarchy.display_index[index]], limit - len(STOP_SUFFIX)) + STOP_SUFFIX


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
    restricted = n_classes > max_classes
    if restricted:  # counted sparsely: a dense n_classes x n_classes table of 19k classes is 2.9 GB
        from scipy import sparse

        frequency = np.bincount(true_codes, minlength=n_classes)
        shown = np.sort(np.argsort(-frequency, kind="stable")[:max_classes])
        table = sparse.csr_matrix((np.ones(len(true_codes), dtype=np.int64), (true_codes, pred_codes)),
                                  shape=(n_classes, n_classes))[shown]
        kept = table[:, shown].toarray()
        other = np.asarray(table.sum(axis=1)).ravel() - kept.sum(axis=1)
        counts = np.column_stack([kept, other])
    else:
        counts = np.bincount(true_codes * n_classes + pred_codes, minlength=n_classes * n_classes)
        counts = counts.reshape(n_classes, n_classes)
        shown = np.arange(n_classes)
    totals = counts.sum(axis=1, keepdims=True)
    matrix = np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)
    return matrix, shown, restricted


def _plot_confusion(matrix: np.ndarray, row_labels: list[str], col_labels: list[str], title: str, path: Path) -> None:
    # Margins from the longest labels (cheaper than tight_layout, which draws the figure twice).
    left = 0.6 + _CHAR_INCHES * max(map(len, row_labels))
    bottom = 0.6 + _CHAR_INCHES * max(map(len, col_labels))
    side = min(24.0, max(3.5, 0.32 * len(col_labels)))
    width, height = left + side + 1.4, bottom + side + 0.8
    fig = _figure(width, height)
    ax = fig.add_axes((left / width, bottom / height, side / width, side / height))
    colorbar_axes = fig.add_axes(((left + side + 0.2) / width, bottom / height, 0.25 / width, side / height))
    image = ax.imshow(matrix, cmap="Blues", vmin=0.0, vmax=1.0, aspect="auto")
    fig.colorbar(image, cax=colorbar_axes)
    ax.set_xticks(range(len(col_labels)), col_labels, rotation=90, fontsize=8)
    ax.set_yticks(range(len(row_labels)), row_labels, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=10)
    if len(col_labels) <= 12:
        for (i, j), value in np.ndenumerate(matrix):
            ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=8,
                    color="white" if value > 0.5 else "black")
    fig.savefig(path, dpi=100)


def save_confusion(true_paths: np.ndarray, pred_paths: np.ndarray, hierarchy: Hierarchy, level: int, path: Path) -> Path:
    """Write the row-normalised confusion matrix of ``level`` (0 = top) to ``path``."""
    offset, n_classes = hierarchy.level_offsets[level], hierarchy.level_sizes[level]
    matrix, shown, restricted = level_confusion(
        true_paths[:, level] - offset, pred_paths[:, level] - offset, n_classes
    )
    rows = [class_label(hierarchy, offset + i) for i in shown]
    columns = rows + (["(other)"] if restricted else [])
    title = f"Level {level + 1} confusion matrix (row-normalised)"
    if restricted:
        title += f"\n{len(shown)} most frequent of {n_classes} classes; other predictions in '(other)'"
    _plot_confusion(matrix, rows, columns, title, path)
    return path


# ----------------------------------------------------------------- PR curves
def save_pr_curve(output: Mapping, hierarchy: Hierarchy, path: Path) -> Path:
    """Write the micro-averaged PR curve of the leaves and of every level to ``path``.

    The leaf curve uses ``targets_b`` and ``scores``; level ``k`` uses the
    targets' level-``k`` ancestors and :meth:`Hierarchy.level_scores`. The last level's
    curve equals the leaf curve when the columns cover every leaf.
    """
    column_paths = output_columns(output, hierarchy)
    true_paths, _ = output_paths(output, hierarchy)
    fig = _figure(7, 6)
    ax = fig.add_axes((0.11, 0.09, 0.85, 0.83))
    leaf_curve = micro_pr_curve(output["targets_b"], output["scores"])
    ax.plot(leaf_curve[1], leaf_curve[0], drawstyle="steps-post", linewidth=2.5,
            label=f"leaves, micro (AP={average_precision(*leaf_curve):.3f})")
    for level in range(hierarchy.depth):
        if level == hierarchy.depth - 1:
            precision, recall = leaf_curve
        else:
            precision, recall = level_pr_curve(true_paths, output["scores"], column_paths, hierarchy, level)
        ax.plot(recall, precision, drawstyle="steps-post", linestyle="--",
                label=f"level {level + 1} (AP={average_precision(precision, recall):.3f})")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0.0, 1.0)
    ax.set_ylim(0.0, 1.05)
    ax.set_title("Precision-recall (micro-averaged)")
    ax.legend(loc="lower left")
    fig.savefig(path, dpi=100)
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


# ------------------------------------------------------------ in the background
#: Largest test output handed to the child process (larger ones are drawn in process, not copied to disk).
MAX_PAYLOAD_BYTES = 2**30
#: The arrays of a test output that the plots read (strings are stored as fixed-width text, never pickled).
_PAYLOAD_ARRAYS = ("targets", "predictions", "classes", "paths", "targets_b", "scores")


class BackgroundPlots:
    """Draw :func:`save_plots` in a child process (``python -m ktt.plots``) while the caller goes on.

    Creating it starts the child, which imports matplotlib while the caller
    still computes the output; :meth:`draw` writes the output's arrays to a
    temporary folder and hands it over; :meth:`wait` returns the folder of PNGs.
    If no child can be started, :meth:`wait` draws them in this process instead.
    Use it as a context manager: leaving the block stops an unfinished child and
    removes the temporary files.

    Examples
    --------
    >>> with BackgroundPlots() as plots:  # doctest: +SKIP
    ...     plots.draw(model.test(loader), hierarchy)
    ...     log_the_model()
    ...     folder = plots.wait()
    """

    def __init__(self):
        self.workdir = Path(tempfile.mkdtemp(prefix="ktt-plots-"))
        self.out_dir = self.workdir / "plots"
        self._stderr = open(self.workdir / "stderr.txt", "wb")
        self._pending: tuple[Mapping, Hierarchy] | None = None
        try:
            self.process: subprocess.Popen | None = subprocess.Popen(
                [sys.executable, "-m", "ktt.plots"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                stderr=self._stderr, env=_child_environment())
        except OSError as error:
            log.warning("could not start a process for the plots (%s); drawing them here", error)
            self.process = None

    def draw(self, output: Mapping, hierarchy: Hierarchy) -> None:
        """Hand ``output`` (a model's test output, see :mod:`ktt.metrics`) over to the child.

        An output larger than :data:`MAX_PAYLOAD_BYTES` is not copied to disk:
        the child is stopped and :meth:`wait` draws in this process.
        """
        size = sum(np.asarray(output[key]).nbytes for key in _PAYLOAD_ARRAYS if output.get(key) is not None)
        if self.process is not None and size > MAX_PAYLOAD_BYTES:
            log.info("the test output has %.1f GB; drawing the plots in this process", size / 1e9)
            self.process.kill()
            self.process.wait()
            self.process = None
        if self.process is None:
            self._pending = (output, hierarchy)
            return
        payload = self.workdir / "payload"
        payload.mkdir()
        hierarchy.to_json(payload / "hierarchy.json")
        for key in _PAYLOAD_ARRAYS:
            if output.get(key) is not None:
                value = np.asarray(output[key])
                np.save(payload / f"{key}.npy", value.astype(str) if value.dtype == object else value)
        try:
            self.process.stdin.write(f"{payload}\n{self.out_dir}\n".encode())
            self.process.stdin.close()
        except OSError:
            pass  # the child died; wait() reports why

    def wait(self) -> Path:
        """The folder holding the PNGs, once they are drawn.

        Raises
        ------
        KttError
            If the child process failed (its last error line is in the message).
        """
        if self.process is None:
            if self._pending is None:
                raise KttError("BackgroundPlots.wait() before draw()")
            save_plots(*self._pending, self.out_dir)
            return self.out_dir
        status = self.process.wait()
        self._stderr.close()
        if status or not self.out_dir.is_dir():
            lines = (self.workdir / "stderr.txt").read_text(errors="replace").strip().splitlines()
            raise KttError(f"drawing the plots failed: {lines[-1] if lines else f'exit status {status}'}")
        return self.out_dir

    def close(self) -> None:
        """Stop the child if it still runs and remove the temporary folder."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        if self.process is not None and self.process.stdin and not self.process.stdin.closed:
            self.process.stdin.close()
        self._stderr.close()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> "BackgroundPlots":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def _child_environment() -> dict[str, str]:
    """This environment, with the folder that holds ``ktt`` first on the child's ``PYTHONPATH``."""
    import ktt

    package_root = str(Path(ktt.__file__).resolve().parents[1])
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": package_root + (os.pathsep + path if path else "")}


def _load_payload(payload: Path) -> tuple[dict, Hierarchy]:
    output = {key: np.load(payload / f"{key}.npy") for key in _PAYLOAD_ARRAYS if (payload / f"{key}.npy").exists()}
    return output, Hierarchy.from_json(payload / "hierarchy.json")


def main() -> None:
    """The child process of :class:`BackgroundPlots`.

    Imports matplotlib, then reads two lines on stdin, the payload folder and the
    output folder, and draws. Exits quietly if stdin closes first (nothing to draw).
    """
    _figure(1, 1)  # import matplotlib while the parent is still busy
    lines = sys.stdin.read().splitlines()
    if len(lines) < 2:
        return
    output, hierarchy = _load_payload(Path(lines[0]))
    save_plots(output, hierarchy, Path(lines[1]))


if __name__ == "__main__":
    main()
