"""Declarative parameter validation, in the spirit of sklearn's ``_parameter_constraints``.

A class lists its constraints once, as a dict from parameter name to a list of
allowed forms; :func:`validate_params` checks an object's parameters against them
and raises :class:`~ktt.errors.InvalidParameter` (a :class:`~ktt.errors.KttError`)
naming the parameter and what is allowed.
This module is pure Python so that configs can be checked before anything heavy
is imported or any data is read.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any, Mapping

from ktt.errors import InvalidParameter


@dataclass(frozen=True)
class Options:
    """One of a fixed set of values."""

    values: tuple

    def accepts(self, value: Any) -> bool:
        return value in self.values

    def __str__(self) -> str:
        return ", ".join("null" if v is None else str(v) for v in self.values)


@dataclass(frozen=True)
class Interval:
    """A number of ``kind`` (int or float) within ``[left, right]`` (``None`` = unbounded).

    ``closed`` says which ends are included: ``"both"``, ``"left"``, ``"right"``, ``"neither"``.
    """

    kind: type
    left: float | None
    right: float | None
    closed: str = "both"

    def accepts(self, value: Any) -> bool:
        if isinstance(value, bool):
            return False
        if self.kind is int and not isinstance(value, numbers.Integral):
            return False
        if self.kind is float and not isinstance(value, numbers.Real):
            return False
        if self.left is not None:
            if value < self.left or (value == self.left and self.closed in ("right", "neither")):
                return False
        if self.right is not None:
            if value > self.right or (value == self.right and self.closed in ("left", "neither")):
                return False
        return True

    def __str__(self) -> str:
        name = "an integer" if self.kind is int else "a number"
        lo = "[" if self.closed in ("both", "left") else "("
        hi = "]" if self.closed in ("both", "right") else ")"
        left = "-inf" if self.left is None else f"{self.left:g}"
        right = "inf" if self.right is None else f"{self.right:g}"
        return f"{name} in {lo}{left}, {right}{hi}"


@dataclass(frozen=True)
class NgramRange:
    """Two integers ``[low, high]`` with ``minimum <= low <= high <= maximum``."""

    minimum: int
    maximum: int

    def accepts(self, value: Any) -> bool:
        if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != 2:
            return False
        low, high = value
        integers = all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in (low, high))
        return integers and self.minimum <= low <= high <= self.maximum

    def __str__(self) -> str:
        return f"[low, high] with {self.minimum} <= low <= high <= {self.maximum}"


def validate_params(params: Mapping[str, Any], constraints: Mapping[str, list]) -> None:
    """Check each parameter against its allowed forms.

    Parameters
    ----------
    params : mapping
        Parameter name to value.
    constraints : mapping
        Parameter name to a list of :class:`Options`, :class:`Interval` or types;
        a value is valid if any of them accepts it. ``None`` in the list allows None.

    Raises
    ------
    InvalidParameter
        For the first invalid parameter, naming it and the allowed values.
    """
    for name, allowed in constraints.items():
        if name not in params:
            continue
        value = params[name]
        if any(_accepts(form, value) for form in allowed):
            continue
        raise InvalidParameter(name, value, " or ".join(_describe(form) for form in allowed))


def validate_attributes(obj: Any) -> None:
    """Check an object's attributes against the ``_parameter_constraints`` of every class in its MRO.

    Subclasses add to (and may override) their bases' constraints; each constrained
    name is read from ``obj`` as an attribute.

    Raises
    ------
    InvalidParameter
        For the first invalid attribute, naming it and the allowed values.
    """
    constraints: dict = {}
    for klass in reversed(type(obj).__mro__):
        constraints.update(klass.__dict__.get("_parameter_constraints", {}))
    validate_params({name: getattr(obj, name) for name in constraints}, constraints)


def _accepts(form: Any, value: Any) -> bool:
    if form is None:
        return value is None
    if isinstance(form, type):
        return isinstance(value, form) and not (form is not bool and isinstance(value, bool))
    return form.accepts(value)


def _describe(form: Any) -> str:
    if form is None:
        return "null"
    if isinstance(form, type):
        return f"any {form.__name__}"
    return str(form)
