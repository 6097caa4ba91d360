"""Find the --set item that wrote a recipe key, so an error message can name it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class KeyOrigins:
    """The recipe file and the keys that its --set items wrote.

    Attributes
    ----------
    source : str
        Recipe name as messages show it, such as ``base.yaml`` or ``<demo>``.
    written : tuple of (tuple of str, str)
        For each --set item in the order applied, the key path of the subtree
        it wrote and the item as typed. The path is the first key that the
        item added to the recipe, or the key that it set. A list item is
        named by its index, also where the item named it by ``name``.
    """

    source: str
    written: tuple[tuple[tuple[str, ...], str], ...] = ()

    def label(self, *keys: Sequence[Any]) -> str:
        """Return the origin of ``keys``: the file, or ``--set ITEM (recipe FILE)``.

        Each key is a path of recipe keys and list indices, such as
        ``("scenarios", 0, "power_W")``. For each key the last --set item
        that wrote the key or a key above it is named, because each write
        replaces the subtree below it. Items named for several keys appear
        once, in the order applied.
        """
        blamed = {self._last_writer(key) for key in keys} - {None}
        if not blamed:
            return self.source
        items = [
            item for index, (_, item) in enumerate(self.written) if index in blamed
        ]
        named = ", ".join(f"--set {item}" for item in items)
        return f"{named} (recipe {self.source})"

    def _last_writer(self, key: Sequence[Any]) -> int | None:
        """Return the index of the last --set item that wrote ``key`` or above."""
        parts = tuple(str(part) for part in key)
        blamed = None
        for index, (path, _) in enumerate(self.written):
            if parts[: len(path)] == path:
                blamed = index
        return blamed
