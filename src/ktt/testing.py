"""Helpers for ktt's tests and benchmarks: loopback ports, polling, a throwaway PostgreSQL, a local Ray cluster.

Everything here runs real servers on 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Iterator


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(condition, timeout_s: float = 60, step_s: float = 0.1, what: str = "condition"):
    """Poll ``condition`` until it returns something truthy (returned), or fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(step_s)
    raise AssertionError(f"{what} not met within {timeout_s} s")


def stop_process(process: subprocess.Popen, timeout_s: float = 15, group: bool = False) -> None:
    """SIGTERM a server (its whole process group with ``group``), SIGKILL it if it outlives ``timeout_s``."""
    if process.poll() is not None:
        return
    if group:
        os.killpg(process.pid, signal.SIGTERM)
    else:
        process.terminate()
    try:
        process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        if group:
            os.killpg(process.pid, signal.SIGKILL)
        else:
            process.kill()
        process.wait(5)


def postgres_bin_dir() -> Path | None:
    """The folder of Debian's PostgreSQL server binaries (newest version), or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("pg_ctl")
    return Path(on_path).parent if on_path else None


@contextlib.contextmanager
def postgres_server(password: str, user: str = "ktt") -> Iterator[str]:
    """Run a throwaway PostgreSQL server on 127.0.0.1; yield its SQLAlchemy URL.

    The server runs as the ``postgres`` user when started by root (PostgreSQL
    refuses root), with password authentication, and is stopped and deleted on exit.

    Raises
    ------
    FileNotFoundError
        If PostgreSQL is not installed (``bash scripts/setup.sh --dev`` installs it as root).
    """
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        raise FileNotFoundError("PostgreSQL is not installed (bash scripts/setup.sh --dev installs it as root)")
    base = Path(tempfile.mkdtemp(prefix="ktt-postgres-"))  # outside pytest's root-only temp dir
    data, sockets, pwfile = base / "data", base / "sockets", base / "pw"
    sockets.mkdir()
    pwfile.write_text(password + "\n")
    prefix = []
    if os.geteuid() == 0:
        for path in (base, sockets, pwfile):
            shutil.chown(path, "postgres")
        prefix = ["runuser", "-u", "postgres", "--"]
    port = free_port()
    try:
        subprocess.run([*prefix, str(bin_dir / "initdb"), "-D", str(data), "-U", user, f"--pwfile={pwfile}",
                        "-A", "scram-sha-256", "--no-sync"], check=True, capture_output=True)
        subprocess.run([*prefix, str(bin_dir / "pg_ctl"), "-D", str(data), "-w", "-l", str(base / "log"),
                        "-o", f"-p {port} -h 127.0.0.1 -k {sockets} -F", "start"], check=True, capture_output=True)
        yield f"postgresql+psycopg://{user}:{password}@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*prefix, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
                       capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


@contextlib.contextmanager
def ray_cluster(num_cpus: int = 2, object_store_mb: int = 100) -> Iterator[tuple[str, Path, dict[str, str]]]:
    """Run a local Ray cluster (``ray start --head --block`` on 127.0.0.1); yield its address, folder and token.

    The cluster uses Ray's token authentication with a token of its own (whatever
    ``~/.ray/auth_token`` holds): a process joins it with the yielded environment
    (``RAY_AUTH_MODE=token``, ``RAY_AUTH_TOKEN``). Its processes share the process group
    of ``ray start``, which is stopped as a group on exit (``ray stop`` would stop every
    Ray cluster of the machine), and its folder (logs, sockets) is deleted.

    Parameters
    ----------
    num_cpus : int
        CPUs the cluster offers its tasks.
    object_store_mb : int
        Its object store (Ray's minimum is 75 MB).

    Yields
    ------
    address : str
        ``127.0.0.1:<port>``, for ``hydra.launcher.address``.
    folder : Path
        The cluster's temporary folder (``session_*/logs`` has the workers' output).
    env : dict
        The variables a process needs to join the cluster.

    Raises
    ------
    AssertionError
        If the head does not come up within two minutes.
    """
    import secrets
    import sys

    folder = Path(tempfile.gettempdir()) / f"ktt-ray-{os.getpid()}-{free_port()}"  # short: socket paths <= 107 bytes
    port = free_port()
    log_path = Path(f"{folder}.log")
    auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", **auth}
    env.pop("RAY_AUTH_TOKEN_PATH", None)
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "ray"), "start", "--head", "--block", "--node-ip-address", "127.0.0.1",
             "--port", str(port), "--num-cpus", str(num_cpus), "--object-store-memory", str(object_store_mb * 2**20),
             "--include-dashboard=false", "--disable-usage-stats", "--temp-dir", str(folder)],
            stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)

    def up():
        if process.poll() is not None:
            raise AssertionError(f"ray start exited ({process.returncode}):\n{log_path.read_text()[-3000:]}")
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", port)) == 0 and list(folder.glob("session_*/logs/raylet.out"))

    try:
        wait_for(up, timeout_s=120, step_s=0.5, what="Ray head up")
        yield f"127.0.0.1:{port}", folder, auth
    finally:
        stop_process(process, timeout_s=5, group=True)
        shutil.rmtree(folder, ignore_errors=True)
        log_path.unlink(missing_ok=True)
