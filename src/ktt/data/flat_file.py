"""The flat-file adapter: CSV, JSON (records or lines), Parquet and Feather.

The readers are module functions, shared with batch scoring (:mod:`ktt.predict`):
:func:`file_format` (the format from a file's suffix), :func:`read_frame` (a whole
file) and :func:`iter_frames` (a file in chunks of rows).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pandas as pd

from ktt.data.adapter import Adapter, check_distinct_columns
from ktt.errors import KttError
from ktt.files import file_sha256
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
    split_col : str or None
        Column giving each row's split: ``train``, ``val`` or ``test`` (any case).
        None (default): rows are split at random by ``split``.
    val_path, test_path : str or None
        Files (same format and columns as ``path``) holding the validation and the
        test split; ``path`` then holds the training rows. With only one of them,
        the other split is drawn at random from ``path`` (``split`` renormalised).
        Neither can be combined with ``split_col``.
    **kwargs
        Passed to :class:`~ktt.data.adapter.Adapter` (name, depth, split, proportion, seed).
    """

    _parameter_constraints = {
        "format": [None, Options(FORMATS)],
        "text_col": [str],
        "label_col": [str],
        "delimiter": [str],
        "split_col": [None, str],
        "val_path": [None, str],
        "test_path": [None, str],
    }

    def __init__(self, path: str, format: str | None = None, text_col: str = "text",
                 label_col: str = "category", delimiter: str = " > ", split_col: str | None = None,
                 val_path: str | None = None, test_path: str | None = None, **kwargs):
        super().__init__(**kwargs)
        self.path = path
        self.format = format
        self.text_col = text_col
        self.label_col = label_col
        self.delimiter = delimiter
        self.split_col = split_col
        self.val_path = val_path
        self.test_path = test_path

    def _split_files(self) -> dict[str, str]:
        """The given split files by split name (``val``, ``test``), where set."""
        return {name: path for name, path in (("val", self.val_path), ("test", self.test_path)) if path}

    def given_splits(self) -> tuple[str, ...]:
        return tuple(self._split_files()) or super().given_splits()

    def split_setting(self) -> str:
        files = self._split_files()
        if files:
            return " and ".join(f"dataset.{name}_path" for name in files)
        return f"dataset.split_col={self.split_col}"

    def validate(self) -> None:
        super().validate()
        if not self.delimiter:
            raise KttError("invalid delimiter='' (allowed: a non-empty string, e.g. ' > ')")
        check_distinct_columns({"text_col": self.text_col, "label_col": self.label_col, "split_col": self.split_col})
        if Path(self.path).is_dir():
            raise KttError(f"dataset.path={self.path} is a folder; give the data file in it")
        if not Path(self.path).is_file():
            raise KttError(f"dataset file {self.path} does not exist")
        if self.split_col is not None and not self.split_col:
            raise KttError("invalid split_col='' (allowed: a column name, or null to split at random)")
        if self.split_col and self._split_files():
            raise KttError("set either dataset.split_col or dataset.val_path/dataset.test_path, not both")
        for name, path in self._split_files().items():
            if Path(path).is_dir() or not Path(path).is_file():
                raise KttError(f"dataset.{name}_path={path} is not a file; give the {name} split's data file")
        self._format()

    def fingerprint(self) -> str:
        fingerprint = f"sha256:{file_sha256(self.path)}"
        for name, path in self._split_files().items():
            fingerprint += f";{name}:sha256:{file_sha256(path)}"
        return fingerprint

    def _format(self) -> str:
        return file_format(self.path, self.format)

    def read(self) -> pd.DataFrame:
        frame = self._read_file()
        rows = self._rows(self.path, frame)
        if self.split_col:
            if self.split_col not in frame.columns:
                raise KttError(f"column {self.split_col!r} not found in {self.path} "
                               f"(columns: {', '.join(map(str, frame.columns))}); set dataset.split_col")
            # an empty cell is a bad value (the error names its row), not a row to split at random
            rows["split"] = frame[self.split_col].map(lambda v: "" if v is None or v != v else v).to_numpy()
        elif self._split_files():
            parts = [rows.assign(split=None)]
            for name, path in self._split_files().items():
                parts.append(self._rows(path, read_frame(path, self._format())).assign(split=name))
            rows = pd.concat(parts, ignore_index=True)
        return rows

    def _rows(self, path, frame: pd.DataFrame) -> pd.DataFrame:
        """``text`` and ``path`` (list of labels) of one file's rows."""
        missing = [c for c in (self.text_col, self.label_col) if c not in frame.columns]
        if missing:
            which = "text_col" if missing[0] == self.text_col else "label_col"
            raise KttError(
                f"column {missing[0]!r} not found in {path} (columns: {', '.join(map(str, frame.columns))}); "
                f"set dataset.{which}"
            )
        labels = frame[self.label_col].map(self._split_labels)
        return pd.DataFrame({"text": frame[self.text_col], "path": labels})

    def _read_file(self) -> pd.DataFrame:
        return read_frame(self.path, self._format())

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


def file_format(path: str | Path, format: str | None = None, setting: str = "dataset.format") -> str:
    """``format`` if given, else the format of ``path`` from its suffix (one of :data:`FORMATS`).

    Raises
    ------
    KttError
        If the suffix is unknown; the message names ``setting`` as the way out.
    """
    if format is not None:
        return format
    suffix = Path(path).suffix.lower()
    if suffix not in _SUFFIX_FORMAT:
        raise KttError(f"cannot tell the format of {path} from its suffix; set {setting} "
                       f"(allowed: {', '.join(FORMATS)})")
    return _SUFFIX_FORMAT[suffix]


def read_frame(path: str | Path, fmt: str) -> pd.DataFrame:
    """The whole file as a DataFrame; CSV/TSV cells stay strings (``"001"`` is not 1), empty cells are NaN.

    Raises
    ------
    KttError
        If the file cannot be read in that format (one line).
    """
    try:
        if fmt in ("csv", "tsv"):
            return pd.read_csv(path, **_csv_options(fmt))
        if fmt in ("json", "jsonl"):
            return pd.read_json(path, lines=fmt == "jsonl", dtype=False)
        if fmt == "parquet":
            return pd.read_parquet(path)
        return pd.read_feather(path)
    except _READ_ERRORS as error:
        raise _read_error(path, fmt, error) from None


def iter_frames(path: str | Path, fmt: str, chunk_size: int) -> Iterator[pd.DataFrame]:
    """The file as DataFrames of at most ``chunk_size`` rows, in file order, read as they are needed.

    Parquet is read in record batches, Feather in its record batches, CSV/TSV and
    JSON lines in pandas chunks (cells as :func:`read_frame` reads them). A JSON
    array cannot be read in parts: it is read whole, then cut. At least one frame
    is yielded, empty for a file without rows, so the columns are always known.

    Raises
    ------
    KttError
        If the file cannot be read in that format (one line), also in the middle of the file.
    """
    import pyarrow as pa

    try:
        empty = True
        for frame in _frames(path, fmt, chunk_size, pa):
            empty = False
            yield frame
        if empty:
            schema = arrow_schema(path, fmt)
            yield schema.empty_table().to_pandas() if schema is not None else pd.DataFrame()
    except _READ_ERRORS + (pa.ArrowException,) as error:
        raise _read_error(path, fmt, error) from None


def arrow_schema(path: str | Path, fmt: str) -> "pyarrow.Schema | None":
    """The file's column types as Arrow has them, when the file fixes them (Parquet, Feather; CSV/TSV: all strings).

    None for JSON, whose types are only known from the values.
    """
    import pyarrow as pa

    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            return pq.read_schema(path)
        if fmt == "feather":
            with pa.memory_map(str(path)) as source:
                return pa.ipc.open_file(source).schema
        if fmt in ("csv", "tsv"):
            columns = pd.read_csv(path, nrows=0, **_csv_options(fmt)).columns
            return pa.schema([(str(c), pa.string()) for c in columns])
    except _READ_ERRORS + (pa.ArrowException,) as error:
        raise _read_error(path, fmt, error) from None
    return None


def count_rows(path: str | Path, fmt: str) -> int | None:
    """The number of rows, when the file says it without being read (Parquet, Feather); else None."""
    import pyarrow as pa

    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            return pq.ParquetFile(path).metadata.num_rows
        if fmt == "feather":
            with pa.memory_map(str(path)) as source:  # memory-mapped: the batches are not read
                reader = pa.ipc.open_file(source)
                return sum(reader.get_batch(i).num_rows for i in range(reader.num_record_batches))
    except (OSError, pa.ArrowException):
        return None
    return None


def _frames(path, fmt: str, chunk_size: int, pa) -> Iterator[pd.DataFrame]:
    if fmt == "parquet":
        import pyarrow.parquet as pq

        with pq.ParquetFile(path) as source:
            for batch in source.iter_batches(batch_size=chunk_size):
                yield batch.to_pandas()
    elif fmt == "feather":
        with pa.memory_map(str(path)) as source:
            reader = pa.ipc.open_file(source)
            for i in range(reader.num_record_batches):
                batch = reader.get_batch(i)
                for start in range(0, batch.num_rows, chunk_size):
                    yield batch.slice(start, chunk_size).to_pandas()
    elif fmt in ("csv", "tsv"):
        with pd.read_csv(path, chunksize=chunk_size, **_csv_options(fmt)) as chunks:
            yield from chunks
    elif fmt == "jsonl":
        with pd.read_json(path, lines=True, dtype=False, chunksize=chunk_size) as chunks:
            yield from chunks
    else:
        frame = read_frame(path, fmt)
        for start in range(0, len(frame), chunk_size):
            yield frame.iloc[start : start + chunk_size]


def _csv_options(fmt: str) -> dict:
    return {"sep": "," if fmt == "csv" else "\t", "dtype": str, "keep_default_na": False, "na_values": [""]}


_READ_ERRORS = (ValueError, OSError, pd.errors.ParserError, UnicodeDecodeError)


def _read_error(path, fmt: str, error: Exception) -> KttError:
    if isinstance(error, UnicodeDecodeError):
        file = Path(path)
        return KttError(f"cannot read {path} as {fmt}: it is not UTF-8 text (byte 0x{error.object[error.start]:02x}); "
                        f"convert it first, e.g. iconv -f latin1 -t utf-8 {file.name} > {file.stem}.utf8{file.suffix}")
    first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return KttError(f"cannot read {path} as {fmt}: {first_line}")
