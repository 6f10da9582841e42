"""An objective's knobs: its own config values (``objective.<name>`` beside ``_target_``), each
stated once, in a ``knobs`` mapping of name -> :class:`Knob` on the class or mixin that reads
it. :class:`~pretrainlab.objectives.base.PretrainObjective` turns the table into constructor
arguments stored as attributes of the same name, the rule checks of ``validate`` and the
objective's hyperparameters (saved in checkpoints: a resume compares them)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pretrainlab.config import check_value
from pretrainlab.errors import PretrainlabError


@dataclass(frozen=True)
class Knob:
    """One knob: its default and its rule. The rule: one of ``choices`` where they are given,
    else ``rule(value)`` (raises on a bad value) where that is, else the knob's entry in
    config.py's table; ``hint`` is appended to what is accepted (e.g. what BERT uses).
    ``optional``: a knob added after runs were made without it; it enters the
    hyperparameters only when it differs from its default, so those runs resume."""

    default: Any = None
    hint: str = ""
    rule: Callable[[Any], None] | None = None
    choices: tuple[str, ...] = ()
    optional: bool = False

    def check(self, owner: type, name: str, value: Any) -> Any:
        """``value`` checked for the objective class ``owner``: what the objective keeps."""
        if self.choices:
            if value not in self.choices:
                raise PretrainlabError(
                    f"objective.{name}={value!r} is not valid: expected one of "
                    f"{', '.join(self.choices)}{self.hint}."
                )
        elif self.rule is not None:
            self.rule(value)
        else:
            check_value(f"objective.{name}", value, self.hint)
        return value


def knob_table(owner: type) -> dict[str, Knob]:
    """Every knob of the class ``owner``: those its bases and mixins declare, the most basic
    first (the order of its hyperparameters and of the checks)."""
    table: dict[str, Knob] = {}
    for cls in reversed(owner.__mro__):
        table.update(vars(cls).get("knobs", {}))
    return table


def check_knobs(owner: type, values: dict[str, Any]) -> dict[str, Any]:
    """Each knob of ``owner`` at its value in ``values`` (its default where absent), checked;
    other keys are not looked at."""
    return {
        name: knob.check(owner, name, values.get(name, knob.default))
        for name, knob in knob_table(owner).items()
    }


def knob_hparams(owner: type, values: dict[str, Any]) -> dict[str, Any]:
    """The hyperparameters of the knobs at ``values``: all but an optional knob at its
    default."""
    table = knob_table(owner)
    return {
        name: value
        for name, value in values.items()
        if not (table[name].optional and value == table[name].default)
    }
