"""The runtime of ktt's BentoML services, shared by every model.

The service file of a bento (ktt's template ``bento/service.py.template``, rendered for
the model at export) only wires these pieces into BentoML:
:class:`ServiceSettings` (the bento's ``ktt_service.json``),
:class:`RequestHandler` (validation, preprocessing), :class:`ModelRuntime`
(verified checkpoint, label paths, monitoring hook) and :class:`RequestGuard`
(ktt's own 400/413/415 answers to bodies that are not acceptable JSON, logged in one line). See :mod:`ktt.export.bento` for how a bento is built.

The names are imported when first used, so that the exporter can read the settings
table (:mod:`ktt.serving.settings`) without importing the runtime's numerical code.
"""

import importlib

#: Public name -> the module that defines it.
EXPORTS = {
    "BodySizeLimit": "ktt.serving.limits", "RequestGuard": "ktt.serving.limits",
    "MonitoringClient": "ktt.serving.monitoring", "monitoring_rows": "ktt.serving.monitoring",
    "InputError": "ktt.serving.runtime", "ModelRuntime": "ktt.serving.runtime",
    "RequestHandler": "ktt.serving.runtime", "parse_texts": "ktt.serving.runtime",
    "ServiceSettings": "ktt.serving.settings",
}
__all__ = sorted(EXPORTS)


def __getattr__(name: str):
    if name not in EXPORTS:
        raise AttributeError(f"module 'ktt.serving' has no attribute {name!r}")
    return getattr(importlib.import_module(EXPORTS[name]), name)
