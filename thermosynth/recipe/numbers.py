"""Number types for recipe keys that reject booleans and quoted numbers.

pydantic's lax mode reads a YAML ``true`` as 1 or 1.0 and ``"20"`` as 20, so a
recipe with ``seed: true`` or ``emissivity_top: "0.9"`` would run without a
word. These types reject both before pydantic converts the value. Other text
fails pydantic's own check. Python and numpy numbers still pass.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator

# Text that pydantic's lax mode would read as a number: digits with an
# optional sign, point, underscores and exponent.
_NUMBER_TEXT = re.compile(r"\s*[-+]?[0-9_.]+([eE][-+]?[0-9]+)?\s*")


def _rejecting_bool_and_number_text(expected: str) -> BeforeValidator:
    def reject(value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError(f"it should be {expected}, not true or false")
        if isinstance(value, str) and _NUMBER_TEXT.fullmatch(value):
            raise ValueError(
                f"it should be {expected}, not a string; remove the quotes"
            )
        return value

    return BeforeValidator(reject)


# Whole floats such as 20.0 still pass.
Integer = Annotated[int, _rejecting_bool_and_number_text("an integer")]

# Integers such as 20 still pass and become 20.0.
Float = Annotated[float, _rejecting_bool_and_number_text("a number")]
