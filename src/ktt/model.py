"""The ``Model`` contract every ktt model fulfils.

The methods are those of the original KTT guide: ``from_checkpoint``, ``save``,
``load``, ``fit``, ``test`` and ``gen_reference_set``. A model knows how to save
itself; where the checkpoint goes is the runner's business, and the exporters
(:mod:`ktt.export`) ask the model for what they need (its checkpoint, hierarchy,
classes and, for ONNX, its ``onnx_pipeline()``).
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.abc
import importlib.util
import sys
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

from ktt.errors import KttError
from ktt.files import file_sha256, write_atomic

#: The package of the model folders (the repository's ``models/``), and its name in checkpoints
#: saved before it was renamed (a top-level ``models`` collides with other projects').
MODELS_PACKAGE, OLD_MODELS_PACKAGE = "ktt_models", "models"


def read_checkpoint(path: str | Path, sha256: str | None = None) -> Any:
    """Unpickle a checkpoint after checking its sha256.

    A joblib file is code: it is opened only if its bytes match ``sha256`` or,
    when that is not given, the digest recorded beside it in ``<path>.sha256``.

    Raises
    ------
    KttError
        If the file is missing, has no recorded digest, does not match it, or cannot be read.
    """
    path = Path(path)
    if not path.is_file():
        raise KttError(f"checkpoint {path} does not exist")
    if sha256 is None:
        sidecar = path.with_name(path.name + ".sha256")
        if not sidecar.is_file():
            raise KttError(f"checkpoint {path} has no {sidecar.name} beside it; refusing to unpickle an unverified file")
        sha256 = sidecar.read_text().split()[0] if sidecar.read_text().split() else ""
    actual = file_sha256(path)
    if actual != sha256:
        raise KttError(
            f"checkpoint {path} does not match its recorded sha256 (corrupt or replaced); refusing to load it"
        )
    try:
        return _unpickle(path)
    except Exception as error:  # a verified file that still fails: versions differ
        raise KttError(f"cannot load checkpoint {path}: {type(error).__name__}: {error}".splitlines()[0]) from None


def _unpickle(path: Path) -> Any:
    """``joblib.load``; ``models.<x>`` in a checkpoint saved before the rename is read as ``ktt_models.<x>``.

    A checkpoint naming a module that ktt_models lacks is read again with its names as
    written (a class of another project's ``models`` package).
    """
    import joblib

    try:
        with _old_models_package():
            return joblib.load(path)
    except ModuleNotFoundError as error:
        if not (error.name or "").startswith(MODELS_PACKAGE + "."):
            raise
    return joblib.load(path)


def _old_module_name(name: str | None) -> bool:
    return name == OLD_MODELS_PACKAGE or (name or "").startswith(OLD_MODELS_PACKAGE + ".")


class _OldModelsFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports ``models.<x>`` as the very module ``ktt_models.<x>`` (the same classes, not a copy)."""

    def find_spec(self, fullname, path=None, target=None):
        return importlib.util.spec_from_loader(fullname, self) if _old_module_name(fullname) else None

    def create_module(self, spec):
        return None

    def exec_module(self, module) -> None:
        # the module replaces itself in sys.modules, so the import returns ktt_models' one
        new_name = MODELS_PACKAGE + module.__name__[len(OLD_MODELS_PACKAGE):]
        sys.modules[module.__name__] = importlib.import_module(new_name)


@contextlib.contextmanager
def _old_models_package():
    """While the block runs, ``models`` is ``ktt_models``; then every ``models`` name is as it was.

    For unpickling only: the alias is never left behind, and another project's
    ``models`` (imported or not) is hidden only meanwhile (an import of it by another
    thread meanwhile would get ktt_models).
    """
    hidden = {name: sys.modules.pop(name) for name in list(sys.modules) if _old_module_name(name)}
    finder = _OldModelsFinder()
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)
        for name in [name for name in sys.modules if _old_module_name(name)]:
            del sys.modules[name]
        sys.modules.update(hidden)


class Model(ABC):
    """Abstract base of ktt models.

    Subclasses follow scikit-learn's conventions: the constructor only stores its
    parameters; ``fit`` learns, sets attributes ending in ``_`` and returns self.
    """

    #: Parameter name -> allowed forms (see :mod:`ktt.params`), checked by :meth:`validate_params`.
    _parameter_constraints: dict = {}

    def validate_params(self) -> None:
        """Check the parameters against ``_parameter_constraints`` (all classes of the MRO)."""
        from ktt.params import validate_attributes

        validate_attributes(self)

    # --------------------------------------------------------------- persistence
    @classmethod
    def from_checkpoint(cls, path: str | Path, sha256: str | None = None) -> "Model":
        """Rebuild a saved model, topology included, from its checkpoint alone.

        Parameters
        ----------
        path : path-like
            A file written by :meth:`save`.
        sha256 : str, optional
            Expected digest; defaults to the one recorded beside the file.
        """
        model = read_checkpoint(path, sha256)
        if not isinstance(model, cls):
            raise KttError(f"checkpoint {path} holds a {type(model).__name__}, not a {cls.__name__}")
        return model

    def save(self, path: str | Path) -> str:
        """Write the whole model to ``path`` and its sha256 to ``<path>.sha256``.

        Returns
        -------
        str
            The checkpoint's sha256.
        """
        import joblib

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, lambda tmp: joblib.dump(self, tmp))
        digest = file_sha256(path)
        path.with_name(path.name + ".sha256").write_text(f"{digest}  {path.name}\n")
        return digest

    def load(self, path: str | Path, sha256: str | None = None) -> "Model":
        """Replace this instance's state with a checkpoint's; returns self."""
        loaded = type(self).from_checkpoint(path, sha256)
        self.__dict__.clear()
        self.__dict__.update(loaded.__dict__)
        return self

    # ------------------------------------------------------------------ learning
    @abstractmethod
    def fit(self, train, val=None, hierarchy=None) -> "Model":
        """Learn from ``train`` (a :class:`~ktt.data.loaders.Loader`); ``val`` is optional.

        ``hierarchy`` (a :class:`~ktt.hierarchy.Hierarchy`) is the label tree of the
        dataset; the model keeps it as fitted state (``hierarchy_``), not as a
        hyperparameter, so that ``clone`` and ``get_params`` never carry data.
        """

    def fitted_settings(self) -> dict:
        """The settings ``fit`` decided (an ``auto`` parameter's value, a weight chosen on the validation
        split), by parameter name; logged as the run's ``fitted_<name>`` params. None by default."""
        return {}

    @abstractmethod
    def test(self, loader, return_encodings: bool = False) -> dict:
        """Score a loader; returns ``targets``, ``targets_b``, ``predictions``, ``scores``
        (and ``encodings`` when asked)."""

    @abstractmethod
    def gen_reference_set(self, loader):
        """The reference DataFrame for drift monitoring (``targets``, ``F0..``, ``C<class>``)."""
