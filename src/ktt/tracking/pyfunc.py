"""The MLflow pyfunc flavour of a ktt model: raw text in, leaf class names out.

``mlflow.pyfunc.load_model("runs:/<run_id>/model").predict(["some text"])``
preprocesses the texts exactly as training did and returns the predicted leaf
classes. The model's code (``ktt`` and ``ktt_models``) travels with it.
"""

from __future__ import annotations

from pathlib import Path

import mlflow.pyfunc
import numpy as np


class KttPythonModel(mlflow.pyfunc.PythonModel):
    """Wraps a ktt checkpoint (artifact ``checkpoint``: the folder holding ``model.joblib``)."""

    def load_context(self, context) -> None:
        """Load the verified checkpoint from the model's ``checkpoint`` artifact."""
        from ktt.model import Model

        self.model = Model.from_checkpoint(Path(context.artifacts["checkpoint"]) / "model.joblib")

    def predict(self, context, model_input, params=None):
        """The predicted class names of raw texts (a list, an array, a Series or a DataFrame).

        The leaf, or in a ragged tree or with ``predict_threshold`` the deepest class the prediction reaches.
        """
        from ktt.preprocess import preprocess

        texts = _texts(model_input)
        if getattr(self.model, "stop_thresholds_", None) is not None:  # the deepest class kept (ktt.stopping)
            from ktt.serving.runtime import ModelRuntime

            return [prediction["path"][-1] for prediction in ModelRuntime(self.model).classify(preprocess(texts))]
        leaves = self.model.predict(preprocess(texts)).tolist()
        hierarchy = getattr(self.model, "hierarchy", None)
        # in a ragged tree a leaf that stops above the deepest level is named by the class it stops at
        return hierarchy.display_names(leaves) if hierarchy is not None else leaves


def _texts(model_input) -> list[str]:
    """Strings from a list, a 1-D array, a Series or a DataFrame's ``text`` (or only) column."""
    if hasattr(model_input, "columns"):
        column = "text" if "text" in model_input.columns else model_input.columns[0]
        model_input = model_input[column]
    return [str(t) for t in np.asarray(model_input, dtype=object).ravel()]
