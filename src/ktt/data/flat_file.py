"""The flat-file adapter: CSV, JSON (records or lines), Parquet and Feather."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd

from ktt.data.adapter import Adapter
from ktt.errors import KttError
from ktt.params import Options

FORMATS = ("csv", "tsv", "json", "jsonl", "parquet", "feather")
_SUFFIX_FORMAT = {".csv": "csv", ".tsv": "tsv", ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl",
                  ".parquet": "parquet", ".pq": "parquet", ".feather": "feather", ".arrow": "feather"}


class FlatFileAdapter(Adapter):
    """Read labelled text from one file.

    Parameters
    ----------
    path : str
        The file.
    format : str or None
        One of ``csv``, ``tsv``, ``json`` (a list of records), ``jsonl`` (one record
        per line), ``parquet``, ``feather``; None infers it from the file suffix.
    text_col : str
        Column holding the text.
    label_col : str
        Column holding the label path: a list of labels (Parquet, Feather, JSON) or
        a string of labels joined by ``delimiter``.
    delimiter : str
        Separator of the labels in a string label path. It is matched as a whole
        string, so with ``" > "`` a label may itself contain ``>``. Labels are stripped.
    **kwargs
        Passed to :class:`~ktt.data.adapter.Adapter` (name, depth, split, proportion, seed).
    """

    _parameter_constraints = {
        "format": [None, Options(FORMATS)],
        "text_col": [str],
        "label_col": [str],
        "delimiter": [str],
    }

    def __init__(self, path: str, format: str | None = None, text_col: str = "text",
                 label_col: str = "category", delimiter: str = " > ", **kwargs):
        super().__init__(**kwargs)
        self.path = path
        self.format = format
        self.text_col = text_col
        self.label_col = label_col
        self.delimiter = delimiter

    def validate(self) -> None:
        super().validate()
        if not self.delimiter:
            raise KttError("invalid delimiter='' (allowed: a non-empty string, e.g. ' > ')")
        if Path(self.path).is_dir():
            raise KttError(f"dataset.path={self.path} is a folder; give the data file in it")
        if not Path(self.path).is_file():
            raise KttError(f"dataset file {self.path} does not exist")
        self._format()

    def settings(self) -> dict:
        return super().settings() | {
            "format": self._format(),
            "text_col": self.text_col,
            "label_col": self.label_col,
            "delimiter": self.delimiter,
        }

    def fingerprint(self) -> str:
        digest = hashlib.sha256()
        with open(self.path, "rb") as source:
            for block in iter(lambda: source.read(1 << 20), b""):
                digest.update(block)
        return f"sha256:{digest.hexdigest()}"

    def _format(self) -> str:
        if self.format is not None:
            return self.format
        suffix = Path(self.path).suffix.lower()
        if suffix not in _SUFFIX_FORMAT:
            raise KttError(
                f"cannot tell the format of {self.path} from its suffix; set dataset.format "
                f"(allowed: {', '.join(FORMATS)})"
            )
        return _SUFFIX_FORMAT[suffix]

    def read(self) -> pd.DataFrame:
        frame = self._read_file()
        missing = [c for c in (self.text_col, self.label_col) if c not in frame.columns]
        if missing:
            which = "text_col" if missing[0] == self.text_col else "label_col"
            raise KttError(
                f"column {missing[0]!r} not found in {self.path} (columns: {', '.join(map(str, frame.columns))}); "
                f"set dataset.{which}"
            )
        labels = frame[self.label_col].map(self._split_labels)
        return pd.DataFrame({"text": frame[self.text_col], "path": labels})

    def _read_file(self) -> pd.DataFrame:
        fmt = self._format()
        try:
            if fmt in ("csv", "tsv"):
                # Labels and text stay strings: "001" must not become 1.
                return pd.read_csv(self.path, sep="," if fmt == "csv" else "\t", dtype=str,
                                   keep_default_na=False, na_values=[""])
            if fmt in ("json", "jsonl"):
                return pd.read_json(self.path, lines=fmt == "jsonl", dtype=False)
            if fmt == "parquet":
                return pd.read_parquet(self.path)
            return pd.read_feather(self.path)
        except (ValueError, OSError, pd.errors.ParserError, UnicodeDecodeError) as error:
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise KttError(f"cannot read {self.path} as {fmt}: {first_line}") from None

    def _split_labels(self, value):
        if isinstance(value, str):
            return [label.strip() for label in value.split(self.delimiter)]
        if value is None or (isinstance(value, float) and value != value):
            return None
        if hasattr(value, "__len__"):
            return [_label(label) for label in value]
        return None


def _label(value):
    """One label of a list-valued path as a stripped string (None if missing)."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    return str(value).strip()
