"""Batch scoring: a file of texts in, a file of label paths with a score per level out.

``python -m ktt.predict run_id=<id> input=new.csv output=scored.parquet`` (see
:mod:`ktt.predict.__main__`) is :class:`InputFile` plus :func:`score_file`:

* the input (CSV/TSV, JSON lines, JSON, Parquet, Feather; read by
  :func:`ktt.data.flat_file.iter_frames`) is streamed in chunks of ``chunk_size`` rows;
* each chunk's texts are preprocessed (:func:`ktt.preprocess.preprocess`) and
  classified by :meth:`ktt.serving.ModelRuntime.classify`, the prediction path the
  services use;
* the output (Parquet, CSV or TSV, by its suffix) has the input's other columns
  (an id, say) unchanged, then ``path`` (the label path joined by ``" > "``), then
  ``level_<k>`` and ``score_<k>`` for k = 1..depth (the class and its score on each
  level, top level first), then ``error``;
* a row whose text is missing, not a string or empty is not scored: its ``path``,
  levels and scores are null and ``error`` says why (null on scored rows);
* the output is written to a temporary file beside it and renamed when complete,
  so a file under the output's name is always a finished one.
"""

from __future__ import annotations

import collections
import contextlib
import os
import re
import time
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from ktt.data.flat_file import arrow_schema, count_rows, file_format, iter_frames
from ktt.errors import KttError

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

__all__ = ["DEFAULT_CHUNK_SIZE", "OUTPUT_FORMATS", "InputFile", "ScoreSummary", "output_columns",
           "output_format", "score_file", "text_error"]

DEFAULT_CHUNK_SIZE = 10_000
#: Output formats by file suffix.
OUTPUT_FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".tsv": "tsv"}
_RESERVED = re.compile(r"^(path|error|level_\d+|score_\d+)$")


def text_error(value) -> str | None:
    """Why ``value`` cannot be scored (``missing text``, ``empty text``, ``text is not a string (int)``), or None."""
    if value is None or (isinstance(value, float) and value != value):
        return "missing text"
    if not isinstance(value, str):
        return f"text is not a string ({type(value).__name__})"
    if not value.strip():
        return "empty text"
    return None


def output_format(path: str | Path) -> str:
    """``parquet``, ``csv`` or ``tsv`` from the output's suffix, once its folder is known to exist.

    Raises
    ------
    KttError
        For any other suffix, or a missing folder.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in OUTPUT_FORMATS:
        raise KttError(f"cannot tell the output format of {path} from its suffix "
                       f"(allowed: {', '.join(OUTPUT_FORMATS)})")
    if not path.parent.is_dir():
        raise KttError(f"output folder {path.parent} does not exist")
    return OUTPUT_FORMATS[suffix]


def output_columns(carried: list[str], depth: int) -> list[str]:
    """The output's columns: ``carried``, ``path``, ``level_1``, ``score_1``, ..., ``error``."""
    levels = [name for k in range(1, depth + 1) for name in (f"level_{k}", f"score_{k}")]
    return [*carried, "path", *levels, "error"]


class InputFile:
    """A file to score, checked and opened: its format is known and it has the text column.

    Creating it reads the first chunk only, so a wrong path or column fails fast,
    before any model is loaded.

    Parameters
    ----------
    path : str or Path
    text_col : str
        The column holding the raw text.
    chunk_size : int
        Rows per chunk.
    format : str, optional
        One of :data:`ktt.data.flat_file.FORMATS`; default: from the suffix.

    Attributes
    ----------
    carried : list of str
        The other columns, copied to the output.
    total : int or None
        The number of rows, when the file tells it up front (Parquet, Feather).

    Raises
    ------
    KttError
        If the file is missing or unreadable, the text column is absent, or another
        column has a name the output uses (``path``, ``error``, ``level_<k>``, ``score_<k>``).
    """

    def __init__(self, path: str | Path, text_col: str = "text", chunk_size: int = DEFAULT_CHUNK_SIZE,
                 format: str | None = None):
        self.path = Path(path)
        self.text_col = text_col
        if not self.path.is_file():
            raise KttError(f"input file {path} does not exist")
        self.format = file_format(self.path, format, setting="format=<csv|tsv|json|jsonl|parquet|feather>")
        self._frames = iter_frames(self.path, self.format, chunk_size)
        self._first = next(self._frames)
        columns = [str(c) for c in self._first.columns]
        if text_col not in columns:
            raise KttError(f"column {text_col!r} not found in {path} (columns: {', '.join(columns) or 'none'}); "
                           "set text_col=")
        self.carried = [c for c in columns if c != text_col]
        clashes = [c for c in self.carried if _RESERVED.match(c)]
        if clashes:
            raise KttError(f"input column {clashes[0]!r} has the name of an output column "
                           "(path, level_<k>, score_<k>, error); rename it")
        schema = arrow_schema(self.path, self.format)
        #: Arrow types of the carried columns when the file fixes them; else (JSON) taken from the first chunk.
        self.types = {name: schema.field(name).type for name in self.carried} if schema is not None else None
        self.total = count_rows(self.path, self.format)

    def frames(self) -> Iterator["pd.DataFrame"]:
        """The chunks, from the first; they can be iterated once."""
        first, self._first = self._first, None
        if first is None:
            raise RuntimeError(f"{self.path} has been read already")
        return chain([first], self._frames)


@dataclass
class ScoreSummary:
    """What :func:`score_file` did.

    Attributes
    ----------
    rows : int
        Rows read.
    scored : int
        Rows with a prediction.
    bad : collections.Counter
        Rows not scored, by reason (the ``error`` column's values).
    output : Path
    seconds : float
    """

    rows: int = 0
    scored: int = 0
    bad: collections.Counter = field(default_factory=collections.Counter)
    output: Path | None = None
    seconds: float = 0.0

    def line(self, source: str = "") -> str:
        """One line for the user."""
        by = f" with {source}" if source else ""
        rate = f", {self.rows / self.seconds:,.0f} rows/s" if self.seconds > 0 and self.rows else ""
        text = f"scored {self.scored:,} of {self.rows:,} rows{by} into {self.output} in {self.seconds:.1f} s{rate}"
        if self.bad:
            reasons = ", ".join(f"{n:,} {reason}" for reason, n in self.bad.most_common())
            text += f"; {sum(self.bad.values()):,} bad rows (null path, reason in the error column): {reasons}"
        return text


def score_file(model, source: InputFile, output: str | Path, progress: bool = False,
               metadata: dict[str, str] | None = None) -> ScoreSummary:
    """Score every row of ``source`` with ``model`` and write ``output`` (see the module's description).

    Parameters
    ----------
    model : ktt.model.Model
        A fitted model (``ktt.tracking.load_model``).
    source : InputFile
    output : str or Path
        ``.parquet``/``.pq``, ``.csv`` or ``.tsv``. Written atomically: a temporary
        file in the same folder, renamed when complete, removed on any error.
    progress : bool
        A progress bar on stderr (on a terminal only).
    metadata : dict, optional
        Key-value metadata of a Parquet output (e.g. the run id).

    Returns
    -------
    ScoreSummary

    Raises
    ------
    KttError
        If the output cannot be written, or a carried column changes type in the
        middle of the input (JSON lines: types are inferred chunk by chunk).
    """
    import pyarrow as pa

    from ktt.preprocess import preprocess
    from ktt.progress import counter
    from ktt.serving.runtime import ModelRuntime

    output = Path(output)
    fmt = output_format(output)
    runtime = ModelRuntime(model)
    depth = model.hierarchy.depth
    summary = ScoreSummary(output=output)
    start = time.perf_counter()
    schema = None
    with _atomic(output) as temporary, contextlib.ExitStack() as stack:  # the stack (writer) closes first
        bar = stack.enter_context(counter(f"scoring {source.path.name}", source.total, enabled=progress))
        writer = None
        for frame in source.frames():
            texts = frame[source.text_col].tolist()
            errors = [text_error(text) for text in texts]
            good = [i for i, error in enumerate(errors) if error is None]
            predictions = runtime.classify(preprocess([texts[i] for i in good])) if good else []
            carried = _carried_arrays(frame, source, schema, summary.rows)
            if schema is None:
                types = {name: array.type for name, array in zip(source.carried, carried)}
                schema = _schema(types, depth, metadata if fmt == "parquet" else None)
                writer = stack.enter_context(_writer(temporary, fmt, schema))
            columns = _prediction_columns(len(texts), good, predictions, errors, depth)
            arrays = [*carried, *(pa.array(values, type=schema.field(name).type) for name, values in columns.items())]
            writer.write_table(pa.Table.from_arrays(arrays, schema=schema))
            summary.rows += len(texts)
            summary.scored += len(good)
            summary.bad.update(error for error in errors if error is not None)
            bar.update(len(texts))
    summary.seconds = time.perf_counter() - start
    return summary


def _prediction_columns(n: int, good: list[int], predictions: list[dict], errors: list, depth: int) -> dict:
    columns = {"path": [None] * n}
    for k in range(1, depth + 1):
        columns[f"level_{k}"] = [None] * n
        columns[f"score_{k}"] = [None] * n
    for i, prediction in zip(good, predictions):
        columns["path"][i] = " > ".join(prediction["path"])
        for k, (name, score) in enumerate(zip(prediction["path"], prediction["scores"]), start=1):
            columns[f"level_{k}"][i] = name
            columns[f"score_{k}"][i] = score
    columns["error"] = errors
    return columns


def _schema(types: dict, depth: int, metadata: dict | None) -> "pa.Schema":
    import pyarrow as pa

    fields = [pa.field(name, type) for name, type in types.items()] + [pa.field("path", pa.string())]
    for k in range(1, depth + 1):
        fields += [pa.field(f"level_{k}", pa.string()), pa.field(f"score_{k}", pa.float64())]
    fields.append(pa.field("error", pa.string()))
    return pa.schema(fields, metadata=metadata)


def _carried_arrays(frame: "pd.DataFrame", source: InputFile, schema: "pa.Schema | None", row: int) -> list:
    """The carried columns of a chunk as Arrow arrays of the output's types (the file's, or the first chunk's)."""
    import pyarrow as pa

    arrays = []
    for name in source.carried:
        if schema is not None:
            arrow_type = schema.field(name).type
        else:
            arrow_type = source.types[name] if source.types is not None else None
        try:
            arrays.append(pa.array(frame[name], type=arrow_type, from_pandas=True))
        except (pa.ArrowException, ValueError, TypeError) as error:
            rows = f"rows {row + 1:,}-{row + len(frame):,}"
            found = f"changes type in {rows} ({arrow_type} before)" if arrow_type is not None \
                else f"mixes types in {rows}"
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise KttError(f"column {name!r} of {source.path} {found}: {first}; give a Parquet input") from None
    return arrays


@contextlib.contextmanager
def _atomic(path: Path) -> Iterator[Path]:
    """A temporary path beside ``path``, renamed to it if the body completes, removed otherwise."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield temporary
        os.replace(temporary, path)
    except OSError as error:
        raise KttError(f"cannot write {path}: {error.strerror or error}") from None
    finally:
        temporary.unlink(missing_ok=True)


@contextlib.contextmanager
def _writer(path: Path, fmt: str, schema: "pa.Schema"):
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    if fmt == "parquet":
        writer = pq.ParquetWriter(path, schema)
    else:
        writer = pcsv.CSVWriter(path, schema, write_options=pcsv.WriteOptions(delimiter="," if fmt == "csv" else "\t"))
    try:
        yield writer
    finally:
        writer.close()
