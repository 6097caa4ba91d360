"""The YAML loader for recipes and ``--set`` values.

PyYAML follows YAML 1.1, whose float pattern needs a dot in the mantissa and
a sign in the exponent, so it reads ``2.4e6``, ``1e-3`` and ``1E+6`` as
strings. YAML 1.2 reads them as numbers. `RecipeYamlLoader` adds YAML
1.2's exponent forms to PyYAML's safe loader and changes nothing else:
``.inf``, ``.nan``, ``1.5`` and ``6.0e+3`` resolve as before.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

__all__ = ["RecipeYamlLoader", "load_yaml"]

# YAML 1.2 core-schema floats that have an exponent. The mantissa may lack a
# dot and the exponent a sign; floats without an exponent already match
# PyYAML's own pattern.
_EXPONENT_FLOAT = re.compile(r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)[eE][-+]?[0-9]+$")


class RecipeYamlLoader(yaml.SafeLoader):
    """Safe YAML loader that also reads ``2.4e6`` and ``1e-3`` as floats."""


RecipeYamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float", _EXPONENT_FLOAT, list("-+.0123456789")
)


def load_yaml(text: str) -> Any:
    """Parse YAML text with `RecipeYamlLoader`.

    Raises
    ------
    yaml.YAMLError
        If ``text`` is not valid YAML.
    """
    return yaml.load(text, Loader=RecipeYamlLoader)
