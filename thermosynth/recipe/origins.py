"""Find the option that wrote a recipe key, so an error message can name it.

The options are the --set items and the others that set one recipe key, such
as ``-o`` of ``thermosynth generate``, which sets ``output.dir``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class OptionOverride:
    """A recipe key that a command-line option other than --set writes.

    Attributes
    ----------
    key : str
        Dotted recipe key, such as ``output.dir``.
    value : str
        Value stored at ``key`` as given. Unlike a --set value, it is not
        parsed as YAML, so a folder named ``out #2`` keeps its ``#``.
    option : str
        The option as the user typed it, such as ``-o out/pv``, which error
        messages name in place of ``--set KEY=VALUE``.
    """

    key: str
    value: str
    option: str


@dataclass(frozen=True)
class KeyOrigins:
    """The recipe file and the keys that its --set items and options wrote.

    Attributes
    ----------
    source : str
        Recipe name as messages show it, such as ``base.yaml`` or ``<demo>``.
    written : tuple of (tuple of str, str)
        For each override in the order applied, the key path of the subtree
        it wrote and the option as typed, such as ``--set seed=3`` or
        ``-o out/pv``. The path is the first key that the override added to
        the recipe, or the key that it set. A list item is named by its
        index, also where the item named it by ``name``.
    """

    source: str
    written: tuple[tuple[tuple[str, ...], str], ...] = ()

    def label(self, *keys: Sequence[Any]) -> str:
        """Return the origin of ``keys``: the file, or ``OPTION (recipe FILE)``.

        Each key is a path of recipe keys and list indices, such as
        ``("scenarios", 0, "power_W")``. For each key the last option that
        wrote the key or a key above it is named, such as ``--set
        scenarios.0.power_W=2`` or ``-o out/pv``, because each write replaces
        the subtree below it. Options named for several keys appear once, in
        the order applied.
        """
        blamed = {self._last_writer(key) for key in keys} - {None}
        if not blamed:
            return self.source
        options = [
            option for index, (_, option) in enumerate(self.written) if index in blamed
        ]
        return f"{', '.join(options)} (recipe {self.source})"

    def _last_writer(self, key: Sequence[Any]) -> int | None:
        """Return the index of the last option that wrote ``key`` or above."""
        parts = tuple(str(part) for part in key)
        blamed = None
        for index, (path, _) in enumerate(self.written):
            if parts[: len(path)] == path:
                blamed = index
        return blamed
