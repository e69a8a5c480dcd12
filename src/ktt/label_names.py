"""Leaf class names as training texts.

A taxonomy names its classes in the words of its texts: "Plague", "Early
syphilis", "Potato chips", "Gift cards". Adding each leaf's own name, preprocessed
like a text, as one more training row of that leaf gives every leaf a first
example (classes the training split lacks become predictable from their names)
and adds the name's words to the evidence of classes with few rows.

Names that are codes ("A01B", queue ids) share no words with the texts; they
would add rows whose features no text has. ``label_names="auto"`` therefore
adds the names only when at least :data:`AUTO_SHARE` of them share a word with
the training texts (:func:`share_with_words`). docs/models.md gives the
measurements behind it.
"""

from __future__ import annotations

import re
from typing import Sequence

import numpy as np

from ktt.hierarchy import PATH_SEPARATOR, Hierarchy
from ktt.preprocess import preprocess

#: ``label_names="auto"``: names are added when at least this share of the leaves' names has a word of the texts.
AUTO_SHARE = 0.5
#: Words as the tf-idf word block sees them (scikit-learn's default ``token_pattern``; texts are lower-cased).
WORD = re.compile(r"(?u)\b\w\w+\b")


def leaf_name_texts(hierarchy: Hierarchy) -> list[str]:
    """Each leaf's own name, preprocessed (hierarchy leaf order).

    A leaf's name is the label of its deepest real class (a stop pseudo-class
    stands for the class it stops at), without the path prefix the hierarchy
    adds to labels that name more than one class.
    """
    return preprocess([hierarchy.label_path(leaf)[-1].split(PATH_SEPARATOR)[-1] for leaf in hierarchy.leaf_classes])


def share_with_words(names: Sequence[str], texts: Sequence[str]) -> float:
    """The share of ``names`` that have a word occurring in ``texts``, counted up to :data:`AUTO_SHARE`.

    Reads the texts only until the share reaches :data:`AUTO_SHARE` (then
    returns it), so the usual case, names in the texts' words, costs a few texts.
    """
    if not names:
        return 0.0
    names_of: dict[str, list[int]] = {}
    for i, name in enumerate(names):
        for word in set(WORD.findall(name)):
            names_of.setdefault(word, []).append(i)
    covered = np.zeros(len(names), dtype=bool)
    n_covered, needed = 0, AUTO_SHARE * len(names)
    for text in texts:
        for word in names_of.keys() & WORD.findall(text):
            newly = [i for i in names_of.pop(word) if not covered[i]]
            covered[newly] = True
            n_covered += len(newly)
        if n_covered >= needed or not names_of:
            break
    return n_covered / len(names)


def with_label_names(label_names: bool | str, hierarchy: Hierarchy, texts: Sequence[str],
                     targets: Sequence) -> tuple[list[str], np.ndarray, bool]:
    """The training rows, with one row per leaf (its name, :func:`leaf_name_texts`) when names are used.

    Parameters
    ----------
    label_names : bool or "auto"
        Add the names (True), not (False), or when :func:`share_with_words` is at least :data:`AUTO_SHARE`.
    hierarchy : Hierarchy
        The label hierarchy; its leaves are the rows' targets.
    texts, targets : sequences
        The preprocessed training texts and their leaf class names.

    Returns
    -------
    texts : list of str
    targets : ndarray of object
    used : bool
        Whether the names were added.
    """
    texts, targets = list(texts), np.asarray(targets, dtype=object)
    if label_names is False:
        return texts, targets, False
    names = leaf_name_texts(hierarchy)
    kept = [i for i, name in enumerate(names) if name.strip()]
    if label_names == "auto" and share_with_words([names[i] for i in kept], texts) < AUTO_SHARE:
        return texts, targets, False
    leaves = np.asarray(hierarchy.leaf_classes, dtype=object)[kept]
    return texts + [names[i] for i in kept], np.concatenate([targets, leaves]), bool(kept)
