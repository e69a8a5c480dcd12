import json
import os

import numpy as np
import pandas as pd
import pytest

from ktt.data.flat_file import FlatFileAdapter
from ktt.data.icd10cm import ICD10CMAdapter
from ktt.errors import KttError
from conftest import shared_data

ROWS = [
    ("salted potato chips", ["Food", "Snacks", "Chips"]),
    ("roasted peanuts", ["Food", "Snacks", "Nuts"]),
    ("green tea bags", ["Food", "Drinks", "Tea"]),
    ("garden hose 20m", ["Home", "Garden", "Hose"]),
    ("rake, steel", ['Home', 'Garden', 'Tools "pro"']),
    ("sweet > salty mix", ["Food", "Snacks", "Sweet>Salty"]),
] * 5


def frame(rows=ROWS):
    return pd.DataFrame({"text": [t for t, _ in rows], "category": [list(p) for _, p in rows]})


def write(tmp_path, fmt, data=None):
    data = frame() if data is None else data
    path = tmp_path / f"data.{fmt}"
    joined = data.assign(category=data["category"].map(lambda p: " > ".join(p) if isinstance(p, list) else p))
    if fmt == "csv":
        joined.to_csv(path, index=False)
    elif fmt == "tsv":
        joined.to_csv(path, index=False, sep="\t")
    elif fmt == "json":
        path.write_text(json.dumps(data.to_dict("records")))
    elif fmt == "jsonl":
        path.write_text("\n".join(json.dumps(r) for r in data.to_dict("records")))
    elif fmt == "parquet":
        data.to_parquet(path)
    elif fmt == "feather":
        data.to_feather(path)
    return path


@pytest.mark.parametrize("fmt", ["csv", "tsv", "json", "jsonl", "parquet", "feather"])
def test_every_format_gives_the_same_dataset(tmp_path, fmt):
    adapter = FlatFileAdapter(path=str(write(tmp_path, fmt)), name="shop")
    dataset = adapter.adapt(tmp_path / "cache")
    assert dataset.hierarchy.level_sizes == [2, 3, 6]
    assert "Sweet>Salty" in dataset.hierarchy.leaf_classes  # '>' inside a name, delimiter ' > '
    assert 'Tools "pro"' in dataset.hierarchy.leaf_classes  # quotes survive CSV
    sizes = {name: len(dataset.split(name)) for name in ("train", "val", "test")}
    assert sizes == {"train": 24, "val": 3, "test": 3}
    texts = pd.concat([dataset.split(n) for n in ("train", "val", "test")])["text"]
    assert sorted(texts) == sorted(t for t, _ in ROWS)


def test_bad_rows_are_dropped_and_counted(tmp_path, caplog):
    rows = frame()
    rows.loc[0, "text"] = ""
    rows.loc[1, "text"] = None
    rows.loc[2, "category"] = None
    rows.loc[3, "category"] = "Food >  > Chips"
    path = write(tmp_path, "csv", rows)
    with caplog.at_level("WARNING"):
        dataset = FlatFileAdapter(path=str(path), name="dirty").adapt(tmp_path / "cache")
    assert dataset.meta["rows_dropped"] == {"empty or missing text": 2, "missing or empty label": 1,
                                            "label path with an empty level": 1}
    assert sum(dataset.meta["sizes"].values()) == len(ROWS) - 4
    assert "Dropped 2 of 30 rows: empty or missing text" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING"):  # the cached dataset says it again
        FlatFileAdapter(path=str(path), name="dirty").adapt(tmp_path / "cache")
    assert "Dropped 1 of 30 rows: label path with an empty level" in caplog.text


def test_paths_written_with_another_delimiter_are_warned_about(tmp_path, caplog):
    """Labels joined by ">" read with the default " > " are one level each: a warning names the way out,
    also when the dataset comes from the cache; the right delimiter gives the tree and no warning."""
    rows = frame([row for row in ROWS if "Sweet>Salty" not in row[1]]).assign(category=lambda f: f["category"].map(">".join))
    path = tmp_path / "data.csv"
    rows.to_csv(path, index=False)
    for _ in range(2):  # adapted, then from the cache
        caplog.clear()
        with caplog.at_level("WARNING"):
            dataset = FlatFileAdapter(path=str(path), name="joined").adapt(tmp_path / "cache")
        assert dataset.hierarchy.depth == 1
        warnings = [r.getMessage() for r in caplog.records if "label paths have one level" in r.getMessage()]
        assert warnings == ["25 of 25 label paths have one level whose label contains '>' (e.g. "
                            "'Food>Snacks>Chips'): if these are paths, their levels were not split; set the label "
                            "delimiter (dataset.delimiter for a file)"]
    caplog.clear()
    with caplog.at_level("WARNING"):
        dataset = FlatFileAdapter(path=str(path), name="joined", delimiter=">").adapt(tmp_path / "cache")
    assert dataset.hierarchy.depth == 3 and "label paths have one level" not in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING"):  # ROWS hold one label with ">" inside a path of three levels: no warning
        FlatFileAdapter(path=str(write(tmp_path, "csv")), name="clean").adapt(tmp_path / "cache")
    assert "label paths have one level" not in caplog.text


def test_depth_cuts_paths_and_too_deep_is_an_error(tmp_path):
    path = str(write(tmp_path, "parquet"))
    dataset = FlatFileAdapter(path=path, name="shop", depth=2).adapt(tmp_path / "cache")
    assert dataset.hierarchy.level_sizes == [2, 3]
    with pytest.raises(KttError, match=r"depth=4 is deeper than the data: the longest label path has 3 level"):
        FlatFileAdapter(path=path, name="shop", depth=4).adapt(tmp_path / "cache")


def test_paths_of_different_lengths_make_a_ragged_tree(tmp_path):
    rows = frame(ROWS + [("tulip bulbs", ["Home", "Garden"]), ("gift card", ["Gift cards"])] * 3)
    path = str(write(tmp_path, "jsonl", rows))
    hierarchy = FlatFileAdapter(path=path, name="shop").adapt(tmp_path / "cache").hierarchy
    assert hierarchy.ragged and hierarchy.depth == 3
    assert hierarchy.level_sizes == [3, 4, 8]  # + Gift cards, its stop; + two stops on level 3
    assert "Garden > <stop>" in hierarchy.leaf_classes
    assert hierarchy.label_path("Garden > <stop>") == ["Home", "Garden"]
    assert hierarchy.label_path("Gift cards > <stop> > <stop>") == ["Gift cards"]
    assert hierarchy.display_names(["Gift cards > <stop> > <stop>", "Hose"]) == ["Gift cards", "Hose"]
    cut = FlatFileAdapter(path=path, name="shop", depth=2).adapt(tmp_path / "cache").hierarchy
    assert cut.level_sizes == [3, 4] and cut.leaf_classes.count("Gift cards > <stop>") == 1


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"text_col": "title"}, r"column 'title' not found in .*data.csv \(columns: text, category\); set dataset.text_col"),
        ({"label_col": "cat"}, r"column 'cat' not found .*; set dataset.label_col"),
        ({"split": [0.5, 0.5, 0.0]}, r"invalid split=\[0.5, 0.5, 0.0\]"),
        ({"proportion": 0}, r"invalid proportion=0 \(allowed: a number in \(0, 1\]\)"),
        ({"format": "xlsx"}, r"invalid format='xlsx' \(allowed: .*csv, tsv, json, jsonl, parquet, feather\)"),
        ({"depth": 0}, r"invalid depth=0"),
        ({"path": "nope.csv"}, r"dataset file nope.csv does not exist"),
    ],
)
def test_bad_settings_are_one_line_errors(tmp_path, kwargs, message):
    settings = {"path": str(write(tmp_path, "csv")), "name": "shop"} | kwargs
    with pytest.raises(KttError, match=message) as error:
        FlatFileAdapter(**settings).adapt(tmp_path / "cache")
    assert "\n" not in str(error.value)


def test_corrupt_file_is_a_one_line_error(tmp_path):
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"not parquet at all")
    with pytest.raises(KttError, match="cannot read .*broken.parquet as parquet"):
        FlatFileAdapter(path=str(path), name="x").adapt(tmp_path / "cache")


def test_cache_is_reused_and_redone_on_change(tmp_path):
    path = write(tmp_path, "csv")
    cache = tmp_path / "cache"
    first = FlatFileAdapter(path=str(path), name="shop").adapt(cache)
    marker = first.path / "train.parquet"
    mtime = marker.stat().st_mtime_ns
    again = FlatFileAdapter(path=str(path), name="shop").adapt(cache)
    assert again.path == first.path and marker.stat().st_mtime_ns == mtime
    other_seed = FlatFileAdapter(path=str(path), name="shop", seed=7).adapt(cache)
    assert other_seed.path != first.path
    with open(path, "a") as f:
        f.write('"new row",Food > Snacks > Chips\n')
    changed = FlatFileAdapter(path=str(path), name="shop").adapt(cache)
    assert changed.path != first.path
    assert changed.meta["rows_read"] == len(ROWS) + 1


class LowercasingAdapter(FlatFileAdapter):
    """A flat-file adapter with one more constructor parameter, and no word about the cache."""

    def __init__(self, path, lowercase: bool = False, **kwargs):
        super().__init__(path, **kwargs)
        self.lowercase = lowercase

    def read(self):
        frame = super().read()
        return frame.assign(text=frame["text"].str.lower()) if self.lowercase else frame


class CountingAdapter(FlatFileAdapter):
    """A flat-file adapter that counts how often its source is fingerprinted and read."""

    calls: list = []

    def fingerprint(self):
        self.calls.append("fingerprint")
        return super().fingerprint()

    def read(self):
        self.calls.append("read")
        return super().read()


def test_a_new_constructor_parameter_is_part_of_the_cache_key(tmp_path):
    path = str(write(tmp_path, "csv"))
    cache = tmp_path / "cache"
    plain = LowercasingAdapter(path, name="shop").adapt(cache)
    lowered = LowercasingAdapter(path, name="shop", lowercase=True).adapt(cache)
    assert lowered.path != plain.path  # not the stale cache of lowercase=False
    assert lowered.meta["settings"]["lowercase"] is True
    assert LowercasingAdapter(path, name="shop", lowercase=True).adapt(cache).path == lowered.path


def test_the_source_is_fingerprinted_once_per_adaptation(tmp_path):
    path = str(write(tmp_path, "csv"))
    CountingAdapter.calls.clear()
    CountingAdapter(path, name="shop").adapt(tmp_path / "cache")
    assert CountingAdapter.calls == ["fingerprint", "read"]  # a miss
    CountingAdapter.calls.clear()
    CountingAdapter(path, name="shop").adapt(tmp_path / "cache")
    assert CountingAdapter.calls == ["fingerprint"]  # a hit


def test_split_and_proportion_are_seeded(tmp_path):
    path = str(write(tmp_path, "csv"))
    a = FlatFileAdapter(path=path, name="a", proportion=0.5, seed=3).adapt(tmp_path / "c1")
    b = FlatFileAdapter(path=path, name="a", proportion=0.5, seed=3).adapt(tmp_path / "c2")
    assert sum(a.meta["sizes"].values()) == 15
    for split in ("train", "val", "test"):
        pd.testing.assert_frame_equal(a.split(split), b.split(split))


def test_bundled_icd10cm_matches_the_shared_copy():
    bundled = ICD10CMAdapter(name="icd10cm").read()
    assert len(bundled) == 74505
    shared = pd.read_parquet(shared_data("icd10cm", "icd10cm.parquet"))
    assert bundled["text"].tolist() == shared["text"].tolist()
    assert [list(p) for p in bundled["path"]] == [list(p) for p in shared["category"]]


# ------------------------------------------------------------------ given splits
def _texts(dataset, split):
    return sorted(dataset.split(split)["text"])


def test_a_split_column_is_used_as_given(tmp_path):
    data = frame()
    data["fold"] = ["TRAIN", "train ", "Val", "test", "train", "train"] * 5
    path = str(write(tmp_path, "csv", data))
    dataset = FlatFileAdapter(path=path, name="shop", split_col="fold").adapt(tmp_path / "cache")
    assert dataset.meta["sizes"] == {"train": 20, "val": 5, "test": 5}
    assert _texts(dataset, "val") == ["green tea bags"] * 5
    assert _texts(dataset, "test") == ["garden hose 20m"] * 5
    random = FlatFileAdapter(path=path, name="shop").adapt(tmp_path / "cache")
    assert random.path != dataset.path  # the cache key covers split_col


def test_split_files_are_used_as_given(tmp_path):
    train = write(tmp_path, "parquet")
    (tmp_path / "val").mkdir()
    (tmp_path / "test").mkdir()
    val = write(tmp_path / "val", "parquet", frame(ROWS[:2]))
    test = write(tmp_path / "test", "parquet", frame(ROWS[2:5]))
    both = FlatFileAdapter(path=str(train), val_path=str(val), test_path=str(test), name="shop").adapt(tmp_path / "c")
    assert both.meta["sizes"] == {"train": 30, "val": 2, "test": 3}
    assert _texts(both, "test") == sorted(t for t, _ in ROWS[2:5])
    # a test file alone: validation rows are drawn from path, 1 in 9 by split=[0.8, 0.1, 0.1]
    test_only = FlatFileAdapter(path=str(train), test_path=str(test), name="shop").adapt(tmp_path / "c")
    assert test_only.meta["sizes"] == {"train": 27, "val": 3, "test": 3}
    assert test_only.path != both.path
    # the cache key follows the content of the split files
    write(tmp_path / "test", "parquet", frame(ROWS[2:6]))
    changed = FlatFileAdapter(path=str(train), test_path=str(test), name="shop").adapt(tmp_path / "c")
    assert changed.meta["sizes"]["test"] == 4 and changed.path != test_only.path


@pytest.mark.parametrize(
    "folds, message",
    [
        (["train", "val", "test", "training"] * 7 + ["train", "val"],
         r"dataset.split_col=fold: row 3 has the split 'training' \(allowed: train, val, test, in any case\)"),
        (["train", "val", "", "test"] * 7 + ["train", "val"], r"row 2 has the split ''"),
        (["train", "test"] * 15, r"the val split of dataset 'shop' is empty \(given by dataset.split_col=fold"),
    ],
    ids=["unknown-value", "empty-cell", "empty-split"],
)
def test_bad_given_splits_are_one_line_errors(tmp_path, folds, message):
    data = frame()
    data["fold"] = folds
    path = str(write(tmp_path, "parquet", data))
    with pytest.raises(KttError, match=message) as error:
        FlatFileAdapter(path=path, name="shop", split_col="fold").adapt(tmp_path / "cache")
    assert "\n" not in str(error.value)


def test_bad_split_settings_are_one_line_errors(tmp_path):
    path = str(write(tmp_path, "csv"))
    cases = [
        ({"split_col": "fold"}, r"column 'fold' not found in .*data.csv .*; set dataset.split_col"),
        ({"split_col": "fold", "test_path": path}, r"set either dataset.split_col or dataset.val_path"),
        ({"test_path": "nope.csv"}, r"dataset.test_path=nope.csv is not a file"),
        ({"split_col": ""}, r"invalid split_col=''"),
    ]
    for kwargs, message in cases:
        with pytest.raises(KttError, match=message):
            FlatFileAdapter(path=path, name="shop", **kwargs).adapt(tmp_path / "cache")
    empty = tmp_path / "empty.csv"
    empty.write_text("text,category\n")
    with pytest.raises(KttError, match=r"the test split of dataset 'shop' is empty \(given by dataset.test_path"):
        FlatFileAdapter(path=path, name="shop", test_path=str(empty)).adapt(tmp_path / "cache")
