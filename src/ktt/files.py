"""File utilities: a file's sha256, writing a file so that readers never see it half-written, and
copying the project's code into an export."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file's bytes, read 1 MiB at a time."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_atomic(path: Path, write) -> None:
    """Call ``write(tmp_path)`` and move the result onto ``path`` in one step.

    Parameters
    ----------
    path : Path
        The file to write; its folder must exist.
    write : callable
        Writes the content to the temporary path it is given (beside ``path``).
    """
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def copy_code(folder: Path) -> list[Path]:
    """Copy the ``ktt`` and ``ktt_models`` packages (as imported now) into ``folder``, under those names.

    What a bento and a pyfunc model carry. ``ktt_models`` is the repository's ``models/``
    folder (``src/ktt_models`` links to it), so the copy is named after the package, not
    after the folder it resolves to.

    Returns
    -------
    list of Path
        The two copies.
    """
    import ktt
    import ktt_models

    copies = []
    for package in (ktt, ktt_models):
        destination = Path(folder) / package.__name__
        if destination.exists():
            shutil.rmtree(destination)
        shutil.copytree(Path(package.__file__).resolve().parent, destination,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".tmp-*"))
        copies.append(destination)
    return copies
