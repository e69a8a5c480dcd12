"""Sphinx configuration of ktt's documentation.

Build it offline, warnings as errors (``tests/test_docs.py`` does the same)::

    .venv/bin/python -m sphinx -W --keep-going -b html docs docs/_build/html

Pages are Markdown (MyST) except the API reference, which is reStructuredText
with ``automodule`` pages (``docs/api/``) rendered from the numpydoc docstrings.
Nothing is fetched at build time: no intersphinx, no remote images, no CDN
diagrams (the architecture diagram is text).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Document this checkout's code (src/ holds ktt, ktt_models and hydra_plugins), whatever is installed.
sys.path.insert(0, str(ROOT / "src"))

project = "ktt"
author = "ktt developers"
copyright = "ktt developers"
release = version = __import__("ktt").__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_parser",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]

# -- MyST (Markdown pages)
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence"]

# -- autodoc + numpydoc
autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_member_order = "bysource"
autodoc_typehints = "none"  # numpydoc's Parameters sections say the types
autodoc_mock_imports: list[str] = []
# Members are listed by autodoc itself; numpydoc's per-class autosummary tables would need generated stubs.
numpydoc_show_class_members = False
numpydoc_show_inherited_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
numpydoc_validation_checks: set[str] = set()

# -- HTML (the default theme ships with Sphinx: no extra dependency, no web fonts)
html_theme = "alabaster"
# Wide enough for the 80-column diagram and the tables; fonts stay local (no web fonts).
html_theme_options = {
    "page_width": "1180px",
    "sidebar_width": "220px",
    "body_max_width": "none",
    "font_family": "sans-serif",
    "head_font_family": "sans-serif",
}
html_title = f"ktt {release}"
html_static_path: list[str] = []


# -- Hooks

def skip_foreign_members(app, what, name, obj, skip, options):
    """Leave out members that scikit-learn adds to every estimator subclass.

    ``BaseEstimator.__init_subclass__`` attaches ``set_fit_request`` & co. (metadata
    routing) to each subclass; their docstrings are scikit-learn's and refer to its
    own glossary. They are not ktt's API.
    """
    if str(getattr(obj, "__module__", None) or "").startswith("sklearn."):
        return True
    if name.startswith("set_") and name.endswith("_request"):
        return True
    return None


def setup(app):
    app.connect("autodoc-skip-member", skip_foreign_members)
