"""ktt: configuration-driven hierarchical text classification with scikit-learn.

Run it as ``python -m ktt``. This package keeps its top level light: importing
``ktt`` loads neither scikit-learn nor MLflow.
"""

__version__ = "0.1.0"
