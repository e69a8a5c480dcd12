"""A search space in Hydra's override grammar, as Optuna distributions.

=========================================  ==========================================
``hydra.sweeper.params`` (or command line)  Optuna distribution
=========================================  ==========================================
``choice(hinge, log_loss, 2, 0.5)``         ``CategoricalDistribution``
``range(1, 129, 8)`` (ints)                 ``IntDistribution(1, 121, step=8)``
``range(0.1, 1.0, 0.1)``                    ``FloatDistribution(0.1, 0.9, step=0.1)``
``interval(0.0, 1.0)``                      ``FloatDistribution(0.0, 1.0)``
``int(interval(1, 128))``                   ``IntDistribution(1, 128)``
``tag(log, interval(1e-5, 1e-1))``          ``FloatDistribution(1e-5, 1e-1, log=True)``
``tag(log, int(interval(1, 128)))``         ``IntDistribution(1, 128, log=True)``
``key=value`` (no sweep)                    fixed: passed to every trial as is
=========================================  ==========================================

``hydra.sweeper.conditions`` samples a parameter only for some values of another
(``loss: {learner: [sgd]}``): a trial of another learner leaves it at the config's
value, so two trials never differ only in a setting their model ignores (and the
search's duplicate check sees them as the same configuration).
"""

from __future__ import annotations

import math
from typing import Any, Mapping

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, Override, RangeSweep
from hydra.errors import CompactHydraException


class SearchSpaceError(CompactHydraException):
    """A search-space entry Optuna cannot sample; printed by Hydra as its one-line message."""


def distribution(override: Override):
    """The Optuna distribution of one sweep override (see the module's table)."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    key = override.get_key_element()
    value = override.value()
    if isinstance(value, ChoiceSweep):
        if "log" in value.tags:
            raise SearchSpaceError(f"ktt: error: {key}: tag(log, ...) needs an interval or a range, not a choice")
        choices = list(override.sweep_iterator())
        if not choices or not all(c is None or isinstance(c, (str, int, float, bool)) for c in choices):
            raise SearchSpaceError(f"ktt: error: {key}: choice(...) values must be numbers, strings or booleans")
        return CategoricalDistribution(choices)
    if isinstance(value, RangeSweep):
        start, stop, step = value.start, value.stop, 1 if value.step is None else value.step
        if step <= 0 or stop <= start:
            raise SearchSpaceError(f"ktt: error: {key}: range(start, stop, step) needs start < stop and step > 0")
        last = start + step * math.floor((stop - start) / step - 1e-9)
        log = "log" in value.tags
        if all(isinstance(x, int) for x in (start, stop, step)):
            return IntDistribution(int(start), int(last), log=log, step=1 if log else int(step))
        return FloatDistribution(float(start), float(last), log=log, step=None if log else float(step))
    if isinstance(value, IntervalSweep):
        low, high, log = value.start, value.end, "log" in value.tags
        if low is None or high is None or not low < high:
            raise SearchSpaceError(f"ktt: error: {key}: interval(low, high) needs low < high")
        if log and low <= 0:
            raise SearchSpaceError(f"ktt: error: {key}: tag(log, interval(low, high)) needs low > 0")
        if isinstance(low, int) and isinstance(high, int):
            return IntDistribution(low, high, log=log)
        return FloatDistribution(float(low), float(high), log=log)
    raise SearchSpaceError(f"ktt: error: {key}: not a sweep Optuna can sample ({override.input_line})")


def search_space(params: Mapping[str, Any] | None, arguments: list[str],
                 parser: OverridesParser) -> tuple[dict, dict[str, str]]:
    """Split the sweeper's ``params`` and the command line into a search space and fixed overrides.

    Parameters
    ----------
    params : mapping
        ``hydra.sweeper.params``: key to a sweep (``choice(...)``) or a fixed value.
    arguments : list of str
        The command line's overrides; they win over ``params`` for the same key.
    parser : OverridesParser

    Returns
    -------
    space : dict
        Override key (as typed, e.g. ``min_df`` or ``+foo``) to its Optuna distribution.
    fixed : dict
        Override key to the override every trial gets (``key=value``).
    """
    lines = [f"{key}={value}" if isinstance(value, str) else as_override(key, value)
             for key, value in (params or {}).items()] + list(arguments)
    space, fixed = {}, {}
    for override in parser.parse_overrides(lines):
        key = override.get_key_element()
        space.pop(key, None)
        fixed.pop(key, None)
        if override.is_sweep_override():
            space[key] = distribution(override)
        else:
            fixed[key] = override.input_line if override.input_line else f"{key}={override.get_value_element_as_str()}"
    return space, fixed


def checked_conditions(conditions: Mapping[str, Any] | None, space: Mapping[str, Any],
                       fixed: Mapping[str, str]) -> dict[str, dict[str, list[str]]]:
    """``hydra.sweeper.conditions`` as ``{parameter: {other: [values as override strings]}}``.

    Raises
    ------
    SearchSpaceError
        If a condition is not a mapping of another parameter to its values, or that
        parameter is neither searched (unconditionally) nor set.
    """
    checked: dict[str, dict[str, list[str]]] = {}
    for key, rule in (conditions or {}).items():
        if not isinstance(rule, Mapping) or not rule:
            raise SearchSpaceError(f"ktt: error: hydra.sweeper.conditions.{key} must map a parameter to the values "
                                   "for which it is sampled, e.g. {learner: [sgd]}")
        checked[key] = {}
        for other, values in rule.items():
            if (other not in space or other in (conditions or {})) and other not in fixed:
                raise SearchSpaceError(f"ktt: error: hydra.sweeper.conditions.{key} depends on {other}, which is "
                                       "neither searched (without a condition of its own) nor set")
            values = values if isinstance(values, (list, tuple)) else [values]
            checked[key][other] = [Override._get_value_element_as_str(value) for value in values]
    return checked


def suggest_all(trial, space: Mapping[str, Any], conditions: Mapping[str, Mapping[str, list[str]]],
                fixed: Mapping[str, str]) -> None:
    """Sample a trial's parameters: those without a condition, then those whose condition holds.

    ``fixed`` holds the value (override string) of each set parameter a condition may name.
    """
    for key in sorted(space, key=lambda name: name in conditions):  # stable: the unconditional ones first
        rule = conditions.get(key, {})
        if all((Override._get_value_element_as_str(trial.params[other]) if other in trial.params
                else fixed.get(other)) in values for other, values in rule.items()):
            _suggest(trial, key, space[key])


def _suggest(trial, key: str, distribution) -> None:
    from optuna.distributions import CategoricalDistribution, IntDistribution

    if isinstance(distribution, CategoricalDistribution):
        trial.suggest_categorical(key, distribution.choices)
    elif isinstance(distribution, IntDistribution):
        trial.suggest_int(key, distribution.low, distribution.high, step=distribution.step, log=distribution.log)
    else:
        trial.suggest_float(key, distribution.low, distribution.high, step=distribution.step, log=distribution.log)


def as_override(key: str, value: Any) -> str:
    """``key=value`` for a sampled value, quoted and escaped as Hydra's grammar needs."""
    return f"{key}={Override._get_value_element_as_str(value)}"
