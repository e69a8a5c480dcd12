"""Shared fixtures: small real data, an isolated MLflow store, a CLI runner."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


def shared_data(*parts: str) -> Path:
    """A file of ../shared/data, or skip the test with the reason."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent (../shared/data is not beside this checkout)")
    return path


@pytest.fixture(scope="session")
def icd_sample(tmp_path_factory) -> Path:
    """About 3,000 real ICD-10-CM rows from the first 3 chapters, as a CSV (made from the bundled package)."""
    from ktt.data.icd10cm import ICD10CMAdapter

    frame = ICD10CMAdapter(name="icd10cm").read()
    chapters = frame["path"].map(lambda p: p[0])
    keep = chapters.isin(chapters.unique()[:3])
    frame = frame[keep].sample(n=3000, random_state=0).sort_index()
    path = tmp_path_factory.mktemp("data") / "icd_sample.csv"
    pd.DataFrame({"text": frame["text"], "category": frame["path"].map(" > ".join)}).to_csv(path, index=False)
    return path


def run_cli(*args: str, cwd: Path, check: bool = True, env: dict | None = None, timeout: int = 600):
    """Run ``python -m ktt`` in ``cwd`` (so its MLflow store and outputs stay there)."""
    full_env = {**os.environ, "KTT_SHARED_DATA": str(SHARED_DATA), **(env or {})}
    full_env.pop("MLFLOW_TRACKING_URI", None)
    result = subprocess.run([sys.executable, "-m", "ktt", *args], cwd=cwd, capture_output=True, text=True,
                            env=full_env, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"ktt {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def mlflow_client(cwd: Path):
    """A client of the default sqlite store that ``python -m ktt`` creates in ``cwd``."""
    import mlflow

    return mlflow.MlflowClient(f"sqlite:///{cwd / 'mlflow.db'}")


def mlflow_runs(cwd: Path) -> list:
    """Every run of the default store in ``cwd``, newest first."""
    client = mlflow_client(cwd)
    ids = [e.experiment_id for e in client.search_experiments()]
    return client.search_runs(ids, order_by=["attributes.start_time DESC"])


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def postgres_url():
    """A real PostgreSQL server on 127.0.0.1 for this test session (Debian's binaries).

    Yields a SQLAlchemy URL with a password (user ``ktt``, password ``s3cret-pw``,
    database ``postgres``). Skips if PostgreSQL is not installed.
    """
    import glob
    import shutil

    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl")) or ([shutil.which("pg_ctl")] if shutil.which("pg_ctl") else [])
    if not found:
        pytest.skip("PostgreSQL is not installed (bash scripts/setup.sh --dev installs it as root)")
    import tempfile

    bin_dir = Path(found[-1]).parent
    base = Path(tempfile.mkdtemp(prefix="ktt-postgres-"))  # outside pytest's root-only temp dir
    data, sockets, pwfile = base / "data", base / "sockets", base / "pw"
    sockets.mkdir()
    pwfile.write_text("s3cret-pw\n")
    prefix = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        shutil.chown(base, "postgres")
        shutil.chown(sockets, "postgres")
        shutil.chown(pwfile, "postgres")
        prefix = ["runuser", "-u", "postgres", "--"]
    port = free_port()
    subprocess.run([*prefix, str(bin_dir / "initdb"), "-D", str(data), "-U", "ktt", f"--pwfile={pwfile}",
                    "-A", "scram-sha-256", "--no-sync"], check=True, capture_output=True)
    subprocess.run([*prefix, str(bin_dir / "pg_ctl"), "-D", str(data), "-w", "-l", str(base / "log"),
                    "-o", f"-p {port} -h 127.0.0.1 -k {sockets} -F", "start"], check=True, capture_output=True)
    try:
        yield f"postgresql+psycopg://ktt:s3cret-pw@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*prefix, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
                       capture_output=True)
        shutil.rmtree(base, ignore_errors=True)
