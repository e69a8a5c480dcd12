"""The old home of :class:`ktt.tracking.pyfunc.KttPythonModel`, kept for runs logged before it moved.

A logged pyfunc model pickles ``KttPythonModel`` by its import path; runs logged
when it lived here keep loading through this name.
"""

from ktt.tracking.pyfunc import KttPythonModel

__all__ = ["KttPythonModel"]
