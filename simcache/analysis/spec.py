"""What an analysis declares about itself: its options and its registry record.

A registry record (:class:`Analysis`) names the functions that compute, draw and report one
analysis, the options it reads (:class:`Option`: type, default, help, command-line spelling) and
whether it needs user ids. :mod:`simcache.analysis.registry` holds the records; the
``simcache analyze`` commands, ``analyze all``'s order, the report sections and the tests are
derived from them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from recvae.errors import UserError


@dataclass(frozen=True)
class Option:
    """One knob of an analysis: Python name (also its key in the JSON ``options``), type, default, help.

    The command line spells it ``flag`` (default ``--`` + the name with dashes). A boolean whose
    default is ``True`` is switched off by a ``--no-...`` flag. ``zero_means_none``: the command
    line's ``0`` stands for ``None`` ("no limit"). ``points``: the value is bounded by the number of
    points analysed (``"<="`` or ``"<"``), counted after the subsample option named ``sample``;
    :func:`check_against_data` checks it (a default value is left to the analysis, which bounds it).
    """

    name: str
    type: type
    default: Any
    help: str
    flag: str = ""
    min: float | None = None
    choices: tuple[str, ...] = ()
    zero_means_none: bool = False
    points: str = ""  # "", "<=" or "<": bounded by the number of points analysed
    sample: str = ""  # the option that subsamples the points this option applies to

    @property
    def cli_flag(self) -> str:
        """The option as typed on the command line."""
        return self.flag or "--" + self.name.replace("_", "-")

    @property
    def negated(self) -> bool:
        """Whether the flag switches a default-on boolean off (``--no-umap`` sets ``umap=False``)."""
        return self.type is bool and bool(self.default)

    @property
    def cli_default(self) -> Any:
        """The command line's default (``False`` for a flag; ``0`` for a ``zero_means_none`` option at ``None``)."""
        if self.type is bool:
            return False
        if self.zero_means_none and self.default is None:
            return 0
        return self.default

    def from_cli(self, value: Any) -> Any:
        """The option's value from what the command line parsed."""
        if self.negated:
            return not value
        if self.zero_means_none and value == 0:
            return None
        return value


def check_against_data(options: Iterable[Option], values: Mapping[str, Any], n_points: int) -> None:
    """Refuse option values the data cannot support (``--max-components`` above the points, ...).

    One place for every analysis: each :class:`Option` declares its bound (``points``); the
    error names the flag, the problem and the allowed range, like a command-line usage error.
    """
    for opt in options:
        value = values.get(opt.name)
        if not opt.points or value is None or value == opt.default:
            continue
        n = n_points
        if opt.sample:
            cap = values.get(opt.sample)
            n = n if cap is None else min(n, int(cap))
        lo = "" if opt.min is None else f"{opt.min:g}"
        if opt.points == "<=" and value > n:
            raise UserError(f"{opt.cli_flag}: {value:g} exceeds the {n:,} points analysed (allowed: {lo} .. {n:,})")
        if opt.points == "<" and value >= n:
            raise UserError(f"{opt.cli_flag}: {value:g} must be below the {n:,} points analysed "
                            f"(allowed: {lo} .. < {n:,})")


@dataclass(frozen=True)
class AnalysisContext:
    """What an analysis' ``compute`` receives: the input, the options, the run's shared baselines.

    ``results`` holds the results of the analyses that ran before it in the same call (``map``
    reads the number of components ``gmm`` chose); ``progress`` is ``None`` (bars on a terminal),
    ``True`` or ``False``.
    """

    input: Any  # simcache.analysis.inputs.AnalysisInput
    options: Any  # simcache.analysis.registry.AnalysisOptions
    baselines: Any  # simcache.analysis.baselines.Baselines, matched with options.baseline_center
    results: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    progress: bool | None = None

    @property
    def points(self) -> Any:
        """The analysed points, float64 ``(n, d)``."""
        return self.input.points


@dataclass(frozen=True)
class Analysis:
    """One analysis: name, one-line summary, report title and its three functions.

    - ``compute(ctx) -> dict``: the JSON-ready result (``"analysis"`` set to ``name``);
    - ``plot(result, path)``: the PNG, from the result alone (returns the figure);
    - ``report(result) -> list[str]``: the Markdown lines of its section in ``report.md``.

    ``needs_users``: the analysis needs a ``user_id`` column (``analyze <name>`` refuses inputs
    without one; ``analyze all`` records it as skipped). ``every_row``: it reads every row of the
    input whatever the row selection (its command has no ``--latest-per-user``). ``check(options)``
    may raise :class:`~recvae.errors.UserError` for option combinations no single option can refuse.
    """

    name: str
    summary: str
    title: str
    compute: Callable[[AnalysisContext], dict[str, Any]]
    plot: Callable[[Mapping[str, Any], str | os.PathLike], Any]
    report: Callable[[Mapping[str, Any]], list[str]]
    options: tuple[Option, ...] = ()
    needs_users: bool = False
    every_row: bool = False
    check: Callable[[Any], None] | None = None
    description: str = ""
