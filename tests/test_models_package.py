"""The model folders are the package ``ktt_models``: another project's ``models`` does not collide with it,
and checkpoints saved when it was called ``models`` still load."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from ktt.model import Model
from ktt_models.tfidf_hsgd import TfidfHSGD
from ktt_models.tfidf_lsgd import TfidfLSGD
from test_model_lsgd import hierarchy, loader


def save_as_before_the_rename(model, path, monkeypatch) -> None:
    """``model.save(path)`` as ktt did when the package was ``models``: the class pickled as ``models.<name>...``."""
    module = type(model).__module__  # ktt_models.<name>.<name>
    old = "models" + module.removeprefix("ktt_models")
    with monkeypatch.context() as patch:
        parts = module.split(".")
        for depth in range(1, len(parts) + 1):  # pickle checks that the old name finds the same class
            name = ".".join(parts[:depth])
            patch.setitem(sys.modules, "models" + name.removeprefix("ktt_models"), sys.modules[name])
        patch.setattr(type(model), "__module__", old)
        model.save(path)
    data = path.read_bytes()
    assert old.encode() in data and b"ktt_models" not in data


@pytest.mark.parametrize("cls", [TfidfLSGD, TfidfHSGD])
def test_a_checkpoint_that_names_the_old_package_loads_and_predicts_the_same(cls, tmp_path, monkeypatch):
    model = cls(min_df=1).fit(loader(), hierarchy=hierarchy())
    save_as_before_the_rename(model, tmp_path / "old.joblib", monkeypatch)
    assert "models" not in sys.modules
    texts = loader(seed=2).texts
    for loaded in (cls.from_checkpoint(tmp_path / "old.joblib"), Model.from_checkpoint(tmp_path / "old.joblib")):
        assert type(loaded) is cls  # ktt_models' own class, not a second copy of its module
        np.testing.assert_array_equal(loaded.predict(texts), model.predict(texts))
        np.testing.assert_array_equal(loaded.predict_scores(texts), model.predict_scores(texts))
    assert not [name for name in sys.modules if name == "models" or name.startswith("models.")]  # no alias left


def test_another_projects_models_package_does_not_collide(tmp_path, monkeypatch):
    elsewhere = tmp_path / "elsewhere" / "models"
    elsewhere.mkdir(parents=True)
    (elsewhere / "__init__.py").write_text('NAME = "another project"\n')
    (elsewhere / "mine.py").write_text("from ktt_models.tfidf_lsgd import TfidfLSGD\n\n\n"
                                       "class Mine(TfidfLSGD):\n    pass\n")
    model = TfidfLSGD(min_df=1).fit(loader(), hierarchy=hierarchy())
    model.save(tmp_path / "new.joblib")
    save_as_before_the_rename(model, tmp_path / "old.joblib", monkeypatch)
    expected = model.predict(loader(seed=2).texts).tolist()
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "elsewhere")}

    help_ = subprocess.run([sys.executable, "-m", "ktt", "--help"], cwd=tmp_path, env=env, capture_output=True,
                           text=True, timeout=300)
    assert help_.returncode == 0, help_.stderr[-3000:]
    assert "tfidf_hsgd" in help_.stdout and "tfidf_lsgd" in help_.stdout

    script = textwrap.dedent(f"""
        import json, sys
        from ktt.model import Model
        from test_model_lsgd import hierarchy, loader
        texts = loader(seed=2).texts
        answer = {{}}
        old = Model.from_checkpoint("old.joblib")  # `models` is importable, but is not ktt's
        import models, models.mine
        answer["after_old"] = [sys.modules["models"] is models, models.NAME, type(old).__module__]
        new = Model.from_checkpoint("new.joblib")
        mine = models.mine.Mine(min_df=1).fit(loader(), hierarchy=hierarchy())
        mine.save("mine.joblib")
        again = Model.from_checkpoint("mine.joblib")  # a class of the other `models`: loaded as written
        answer["mine"] = type(again) is models.mine.Mine
        answer["predictions"] = [m.predict(texts).tolist() for m in (old, new)]
        print(json.dumps(answer))
    """)
    env["PYTHONPATH"] += os.pathsep + os.path.dirname(__file__)  # the tests' data helpers
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer["after_old"] == [True, "another project", "ktt_models.tfidf_lsgd.tfidf_lsgd"]
    assert answer["mine"] is True
    assert answer["predictions"] == [expected, expected]
