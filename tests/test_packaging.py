"""A wheel (non-editable) install carries the configs and the model modules (as ``ktt_models``)."""

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from test_docs import copy_checkout

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_install_finds_configs_and_models(tmp_path):
    # built from a copy: a checkout's build/ keeps whatever earlier builds put there (a setuptools build never
    # empties it), e.g. the package `models` of before the rename, and the wheel would carry it again
    project = copy_checkout(tmp_path / "project")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, project / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path / "dist"), str(project)], check=True, capture_output=True)
    (wheel,) = (tmp_path / "dist").glob("ktt-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "ktt/conf/config.yaml" in names and "ktt/conf/model/tfidf_lsgd.yaml" in names
    assert "ktt_models/tfidf_lsgd/tfidf_lsgd.py" in names
    assert not [name for name in names if name.startswith("models/")]  # no top-level `models` to collide with
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
                   check=True, capture_output=True)
    env = {**os.environ, "PYTHONPATH": str(site)}
    where = subprocess.run([sys.executable, "-c", "import ktt, ktt_models.tfidf_lsgd; print(ktt.__file__)"],
                           cwd=tmp_path, env=env, capture_output=True, text=True, check=True)
    assert where.stdout.startswith(str(site))
    job = subprocess.run([sys.executable, "-m", "ktt", "loss=hinge", "--cfg", "job"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, check=True)
    assert "loss: hinge" in job.stdout and "_target_: ktt_models.tfidf_hsgd.TfidfHSGD" in job.stdout
