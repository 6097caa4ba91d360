"""A set of names whose membership DataLoader workers share."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, MutableSet

import torch


class SharedNames(MutableSet[str]):
    """Set of names from a fixed tuple, kept as flags in shared memory.

    Processes forked after it is made share its memory, and so do the
    DataLoader workers that receive it pickled under spawn, so a name that
    one process adds is in the set in the others. A deep copy is this same
    set, so that a deep-copied dataset and its original share one set. A
    plain pickle round trip copies the names added so far into new shared
    memory, which the processes forked after it share. Adding a name
    outside ``names`` raises ValueError.

    NOTE: a check and an add are two steps, not one atomic step, so two
    processes that check a missing name at the same moment both add it.
    """

    def __init__(self, names: Iterable[str]) -> None:
        self.names = tuple(names)
        self._flags = torch.zeros(len(self.names), dtype=torch.bool).share_memory_()

    def __deepcopy__(self, memo: dict[int, object]) -> SharedNames:
        return self

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        # Plain pickle rebuilds the flags in private memory. Spawned
        # DataLoader workers get them in shared memory, where this does nothing.
        self._flags.share_memory_()

    def __contains__(self, name: object) -> bool:
        if name not in self.names:
            return False
        return bool(self._flags[self.names.index(str(name))])

    def __iter__(self) -> Iterator[str]:
        flags = self._flags.tolist()
        return iter(
            [name for name, flag in zip(self.names, flags, strict=True) if flag]
        )

    def __len__(self) -> int:
        return int(self._flags.sum())

    def add(self, name: str) -> None:
        if name not in self.names:
            raise ValueError(f"name {name!r} is not one of {self.names}")
        self._flags[self.names.index(name)] = True

    def discard(self, name: str) -> None:
        if name in self.names:
            self._flags[self.names.index(name)] = False
