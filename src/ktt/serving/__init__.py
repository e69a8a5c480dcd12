"""The runtime of ktt's BentoML services, shared by every model.

The service file of a bento (ktt's template ``bento/service.py.template``, rendered for
the model at export) only wires these pieces into BentoML: :class:`ServiceSettings` (the bento's ``ktt_service.json``),
:class:`RequestHandler` (validation, preprocessing), :class:`ModelRuntime`
(verified checkpoint, label paths, monitoring hook) and :class:`RequestGuard`
(ktt's own 400/413/415 answers to bodies that are not acceptable JSON, logged in one line). See :mod:`ktt.export.bento` for how a bento is built.
"""

from ktt.serving.limits import BodySizeLimit, RequestGuard
from ktt.serving.monitoring import MonitoringClient, monitoring_rows
from ktt.serving.runtime import InputError, ModelRuntime, RequestHandler, parse_texts
from ktt.serving.settings import ServiceSettings

__all__ = ["BodySizeLimit", "InputError", "ModelRuntime", "MonitoringClient", "RequestGuard", "RequestHandler",
           "ServiceSettings", "monitoring_rows", "parse_texts"]
