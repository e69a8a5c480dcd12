"""Batch scoring of a file: ``python -m ktt.predict run_id=... input=... output=...``."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from conftest import mlflow_runs, run_cli

BAD = {3: None, 5: "   ", 8: 42}  # row -> a text that cannot be scored (JSON lines keep the number a number)


def run_predict(*args: str, cwd: Path, check: bool = True):
    return run_cli(*args, cwd=cwd, check=check, timeout=300, module="ktt.predict")


@pytest.fixture(scope="module")
def trained(icd_sample, tmp_path_factory):
    """A finished run on ``icd_sample`` and an input of 300 of its texts with an id, some of them bad."""
    cwd = tmp_path_factory.mktemp("predict")
    run_cli("dataset=file", f"dataset.path={icd_sample}", "min_df=2", "progress=false", "plots=false", cwd=cwd)
    (run,) = mlflow_runs(cwd)
    texts = pd.read_csv(icd_sample)["text"].head(300).astype(object)
    for row, text in BAD.items():
        texts[row] = text
    frame = pd.DataFrame({"id": [f"r{i:04d}" for i in range(len(texts))], "text": texts})
    frame.to_json(cwd / "new.jsonl", orient="records", lines=True)
    frame.assign(text=frame["text"].map(lambda t: t if isinstance(t, str) else None)).to_parquet(cwd / "new.parquet")
    return cwd, run.info.run_id, frame


def model_predictions(cwd: Path, run_id: str, texts: list[str]) -> list[dict]:
    """What the run's model itself says about ``texts``: ModelRuntime.classify of the preprocessed texts."""
    import numpy as np

    from ktt.preprocess import preprocess
    from ktt.serving.runtime import ModelRuntime
    from ktt.tracking import load_model

    model = load_model(run_id, tracking_uri=f"sqlite:///{cwd / 'mlflow.db'}")
    predictions = ModelRuntime(model).classify(preprocess(texts))
    leaves = model.predict(preprocess(texts))
    assert [p["path"][-1] for p in predictions] == list(np.asarray(leaves))
    return predictions


def test_scored_file_equals_the_models_own_predictions(trained):
    cwd, run_id, frame = trained
    result = run_predict(f"run_id={run_id}", "input=new.jsonl", "output=scored.parquet", cwd=cwd)
    assert f"scored 297 of 300 rows with run {run_id} into scored.parquet" in result.stdout
    assert "3 bad rows" in result.stdout
    assert not result.stderr.strip(), result.stderr  # no progress bars or logs when not on a terminal

    scored = pq.read_table(cwd / "scored.parquet")
    assert scored.column_names == ["id", "path", "level_1", "score_1", "level_2", "score_2", "level_3", "score_3",
                                   "error"]
    assert scored.schema.metadata[b"ktt.run_id"] == run_id.encode()
    scored = scored.to_pandas()
    assert scored["id"].tolist() == frame["id"].tolist()  # carried through, in order
    good = [i for i in range(len(frame)) if i not in BAD]
    expected = model_predictions(cwd, run_id, frame["text"][good].tolist())
    rows = scored.iloc[good]
    assert rows["error"].isna().all()
    assert rows["path"].tolist() == [" > ".join(p["path"]) for p in expected]
    for k in (1, 2, 3):
        assert rows[f"level_{k}"].tolist() == [p["path"][k - 1] for p in expected]
        assert rows[f"score_{k}"].tolist() == [p["scores"][k - 1] for p in expected]  # the same floats


def test_bad_rows_are_reported_not_fatal(trained):
    cwd, run_id, _ = trained
    result = run_predict(f"run_id={run_id}", "input=new.jsonl", "output=scored.csv", cwd=cwd)
    assert result.returncode == 0
    assert ("3 bad rows (null path, reason in the error column): 1 missing text, 1 empty text, "
            "1 text is not a string (int)") in result.stdout
    scored = pd.read_csv(cwd / "scored.csv", dtype=str, keep_default_na=False)
    assert len(scored) == 300
    errors = dict(zip(scored.index[scored["error"] != ""], scored["error"][scored["error"] != ""]))
    assert errors == {3: "missing text", 5: "empty text", 8: "text is not a string (int)"}
    bad = scored.loc[list(BAD)]
    assert (bad[["path", "level_1", "score_1", "level_3", "score_3"]] == "").all().all()
    assert (scored.drop(index=list(BAD))["path"].str.count(" > ") == 2).all()


def test_chunked_scoring_gives_the_same_file(trained, icd_sample):
    cwd, _, _ = trained
    # run_id=latest: the newest FINISHED run of the model in the dataset's experiment, as ktt.export picks it
    latest = ["run_id=latest", "dataset=file", f"dataset.path={icd_sample}"]
    run_predict(*latest, "input=new.parquet", "output=whole.parquet", cwd=cwd)
    result = run_predict(*latest, "input=new.parquet", "output=chunked.parquet", "chunk_size=37", cwd=cwd)
    assert "scored 297 of 300 rows" in result.stdout
    whole, chunked = pq.read_table(cwd / "whole.parquet"), pq.read_table(cwd / "chunked.parquet")
    assert pq.ParquetFile(cwd / "chunked.parquet").num_row_groups == 9  # written as it was read
    assert chunked.equals(whole)


def test_a_registered_model_version_or_alias(trained):
    import mlflow

    cwd, run_id, _ = trained
    client = mlflow.MlflowClient(f"sqlite:///{cwd / 'mlflow.db'}")
    client.create_registered_model("icd")
    version = client.create_model_version("icd", f"runs:/{run_id}/model", run_id=run_id).version
    client.set_registered_model_alias("icd", "champion", version)
    result = run_predict("run_id=models:/icd@champion", "input=new.parquet", "output=registered.parquet", cwd=cwd)
    assert f"with models:/icd@champion (run {run_id})" in result.stdout
    result = run_predict("run_id=models:/icd@retired", "input=new.parquet", "output=other.parquet", cwd=cwd,
                         check=False)
    assert result.returncode == 2 and result.stderr.startswith("ktt: error: no registered model models:/icd@retired")
    assert not (cwd / "other.parquet").exists()


@pytest.mark.parametrize("args, message", [
    (["run_id=0123456789abcdef", "input=new.parquet"], "no MLflow run '0123456789abcdef'"),
    (["run_id=latest", "input=missing.csv"], "input file missing.csv does not exist"),
    (["run_id=latest", "input=new.parquet", "text_col=title"],
     "column 'title' not found in new.parquet (columns: id, text); set text_col="),
    (["run_id=latest", "input=new.parquet", "chunk_size=0"], "invalid chunk_size='0' (allowed: an integer >= 1)"),
    (["input=new.parquet"], "give one run_id=<MLflow run id>"),
    # an error ktt.errors translates (not a KttError): one line too
    (["run_id=latest", "input=new.parquet", "tracking.uri=foo://bar"], "MLflow does not support tracking.uri='foo://bar'"),
])
def test_errors_are_one_line_and_leave_no_file(trained, args, message):
    cwd, _, _ = trained
    result = run_predict(*args, "output=failed.parquet", cwd=cwd, check=False)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ktt: error: ") and message in lines[0], result.stderr
    assert not list(cwd.glob("*failed.parquet*"))


def test_a_failure_in_the_middle_leaves_no_file(trained):
    cwd, run_id, frame = trained
    lines = [json.dumps({"id": i, "text": text}) for i, text in enumerate(frame["text"].head(20).fillna("x"))]
    lines[15] = json.dumps({"id": "fifteen", "text": "Cholera"})  # the id column changes type in the 3rd chunk
    (cwd / "changing.jsonl").write_text("\n".join(lines) + "\n")
    result = run_predict(f"run_id={run_id}", "input=changing.jsonl", "output=half.csv", "chunk_size=7", cwd=cwd,
                         check=False)
    assert result.returncode == 2
    assert result.stderr.startswith("ktt: error: column 'id' of changing.jsonl changes type in rows 15-20 (int64 "
                                    "before): Could not convert 'fifteen'")
    assert not list(cwd.glob("*half.csv*"))  # neither the output nor its temporary file


@pytest.mark.parametrize("fmt", ["csv", "tsv", "json", "jsonl", "parquet", "feather"])
def test_every_input_format_streams_the_same_rows(tmp_path, fmt):
    from ktt.data.flat_file import count_rows, iter_frames

    frame = pd.DataFrame({"id": [f"{i:03d}" for i in range(25)], "text": [f"text {i}" for i in range(25)]})
    path = tmp_path / f"data.{fmt}"
    if fmt in ("csv", "tsv"):
        frame.to_csv(path, index=False, sep="," if fmt == "csv" else "\t")
    elif fmt in ("json", "jsonl"):
        frame.to_json(path, orient="records", lines=fmt == "jsonl")
    else:
        getattr(frame, f"to_{fmt}")(path)
    frames = list(iter_frames(path, fmt, chunk_size=10))
    assert [len(f) for f in frames] == [10, 10, 5]
    assert pd.concat(frames, ignore_index=True).equals(frame)  # "001" stays a string
    assert count_rows(path, fmt) == (25 if fmt in ("parquet", "feather") else None)
