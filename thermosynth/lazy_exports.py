"""Lazy public names for package ``__init__`` files, by module ``__getattr__``.

A package that imports its submodules eagerly makes ``import
thermosynth.frames.frame`` load torch, OpenCV and h5py through its siblings.
With ``lazy_exports`` a name such as ``thermosynth.validation.mmd`` imports its
submodule on first access, and ``from package import name`` works as before.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any


def lazy_exports(
    package: str, origins: Mapping[str, Sequence[str]]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Return a module's ``__getattr__`` and ``__dir__`` for its public names.

    Parameters
    ----------
    package
        The package's ``__name__``.
    origins
        Submodule name, relative to ``package``, to the public names it defines.
    """
    module_of = {name: module for module, names in origins.items() for name in names}

    def __getattr__(name: str) -> Any:
        module = module_of.get(name)
        if module is None and importlib.util.find_spec(f"{package}.{name}"):
            # A submodule, as eager imports of the package used to make it.
            return importlib.import_module(f"{package}.{name}")
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        # Later lookups find the name in the package and skip this function.
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[package]), *module_of})

    return __getattr__, __dir__
