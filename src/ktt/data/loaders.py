"""What a model reads: each split of an intermediate dataset as preprocessed texts and leaf class names."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Loader(NamedTuple):
    """One split as a model sees it: preprocessed texts and their leaf class names."""

    texts: list[str]
    targets: np.ndarray


def get_loaders(dataset, progress: bool = False, test: bool = True) -> tuple[Loader, Loader, Loader | None]:
    """The train, validation and test loaders of an intermediate dataset.

    Texts are preprocessed (tokenised and stemmed) once and cached beside the dataset.

    Parameters
    ----------
    dataset : ktt.data.intermediate.IntermediateDataset
    progress : bool
        Show progress bars while preprocessing.
    test : bool
        Read the test split. False (tuning) never opens its files and returns None in its place.
    """
    loaders = []
    for name in ("train", "val", "test") if test else ("train", "val"):
        frame = dataset.split(name)
        loaders.append(Loader(dataset.preprocessed_texts(name, progress=progress), dataset.leaf_targets(frame)))
    return (*loaders, None) if not test else tuple(loaders)
