"""KTT's intermediate dataset: what every adapter writes and every model reads.

A folder with ``train.parquet``, ``val.parquet``, ``test.parquet`` (columns
``text`` and ``codes``: the example's class index on every level, into
``hierarchy.json``'s ``classes``), ``hierarchy.json`` and ``meta.json`` (source
fingerprint, adapter settings, row counts, dropped rows).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from ktt.errors import KttError
from ktt.files import write_atomic
from ktt.hierarchy import Hierarchy

SPLITS = ("train", "val", "test")
#: What every meta.json holds.
META_KEYS = ("name", "source", "settings", "rows_read", "rows_dropped", "sizes", "level_sizes")


class IntermediateDataset:
    """A written intermediate dataset, read lazily.

    Parameters
    ----------
    path : path-like
        The dataset folder.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not (self.path / "meta.json").is_file():
            raise KttError(f"{self.path} is not a ktt intermediate dataset (no meta.json)")
        with damaged(self.path):
            self.meta = json.loads((self.path / "meta.json").read_text(encoding="utf-8"))
            lacking = sorted(set(META_KEYS) - set(self.meta))
            if lacking:
                raise KeyError(f"meta.json has no {', '.join(lacking)}")
            self.hierarchy = Hierarchy.from_json(self.path / "hierarchy.json")

    @property
    def name(self) -> str:
        return self.meta["name"]

    def split(self, name: str) -> pd.DataFrame:
        """The ``text`` and ``codes`` of one split."""
        if name not in SPLITS:
            raise KttError(f"unknown split {name!r} (allowed: {', '.join(SPLITS)})")
        with damaged(self.path):
            return pd.read_parquet(self.path / f"{name}.parquet")

    def leaf_targets(self, frame: pd.DataFrame) -> np.ndarray:
        """Leaf class names of a split's rows."""
        classes = np.asarray(self.hierarchy.classes, dtype=object)
        return classes[[codes[-1] for codes in frame["codes"]]]

    def preprocessed_texts(self, name: str, progress: bool = False) -> list[str]:
        """A split's texts after :func:`ktt.preprocess.preprocess`, cached beside the split."""
        from ktt.preprocess import preprocess

        cache = self.path / "preprocessed" / f"{name}.parquet"
        if cache.is_file():
            with damaged(self.path):
                return pd.read_parquet(cache)["text"].tolist()
        texts = preprocess(self.split(name)["text"].tolist(), progress=progress)
        cache.parent.mkdir(exist_ok=True)
        write_atomic(cache, lambda tmp: pd.DataFrame({"text": texts}).to_parquet(tmp, index=False))
        return texts


@contextlib.contextmanager
def damaged(path: Path):
    """Turn a cache file that cannot be parsed (truncated, edited, another version's) into a one-line error."""
    try:
        yield
    except FileNotFoundError as error:
        raise KttError(f"the cached dataset {path} is incomplete ({Path(error.filename or '?').name} is missing); "
                       f"delete {path} to rebuild it") from None
    except (ValueError, KeyError, TypeError, IndexError) as error:  # JSON, Parquet (ArrowInvalid) or content errors
        text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise KttError(f"the cached dataset {path} is damaged ({text[:200]}); delete {path} to rebuild it") from None


def write_dataset(
    destination: Path,
    frames: dict[str, pd.DataFrame],
    hierarchy: Hierarchy,
    meta: dict,
) -> IntermediateDataset:
    """Write an intermediate dataset atomically.

    Everything goes to a temporary folder beside ``destination`` that is then
    renamed into place, so a crash never leaves a half-written dataset and two
    concurrent writers of the same dataset both end with a complete one.
    """
    destination.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=destination.parent))
    try:
        for name, frame in frames.items():
            frame.to_parquet(tmp / f"{name}.parquet", index=False)
        hierarchy.to_json(tmp / "hierarchy.json")
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1, ensure_ascii=False), encoding="utf-8")
        try:
            os.rename(tmp, destination)
        except OSError:
            if not (destination / "meta.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return IntermediateDataset(destination)
