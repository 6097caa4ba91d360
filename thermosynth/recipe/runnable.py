"""The recipe text that a run writes beside its outputs.

A recipe names its inputs relative to its own folder. Written unchanged into
an output folder, it would look for them there. So the copy gets absolute
input paths, as the run resolved them, and ``thermosynth generate
OUT/recipe.yaml`` runs it again from any folder. Its ``output.dir`` is the
absolute output folder, so a rerun targets OUT itself (which then needs
``--overwrite``) unless ``-o`` names another folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from thermosynth.recipe.loading import INPUT_PATH_KEYS, LoadedRecipe
from thermosynth.recipe.yaml12 import load_yaml


def runnable_text(loaded: LoadedRecipe) -> str:
    """Return the recipe's text with every input path and output.dir absolute.

    The bank file's path is written too wherever the bank is used or the
    recipe names it, because a relative one is read from the recipe's
    folder. ``output.dir`` is written as the folder the run writes to,
    because a relative one would name a folder inside the output. A recipe
    that needs no change keeps its text, comments included.
    """
    data = load_yaml(loaded.text)
    changed = False
    output = (("output", "dir"), str(loaded.recipe.output.dir))
    for keys, value in [*_absolute_paths(loaded), output]:
        node = data
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        if node.get(keys[-1]) != value:
            node[keys[-1]] = value
            changed = True
    return yaml.safe_dump(data, sort_keys=False) if changed else loaded.text


def input_paths(loaded: LoadedRecipe, *, bank: bool = True) -> list[tuple[str, Path]]:
    """Return (recipe key, absolute path) of each file or folder the recipe reads.

    A mask per camera gives one item per camera, keyed such as
    ``frames.valid_mask.CAM1``. The bank file is left out where
    ``bank.mode`` is off, or where ``bank`` is false because the caller
    does not read it. The recipe file itself is not listed.
    """
    found: list[tuple[str, Path]] = []
    for keys, value in _absolute_paths(loaded):
        key = ".".join(keys)
        if key == "bank.path" and (not bank or loaded.recipe.bank.mode == "off"):
            continue
        if isinstance(value, dict):
            found += [(f"{key}.{part}", Path(p)) for part, p in value.items()]
        else:
            found.append((key, Path(value)))
    return found


def _absolute_paths(loaded: LoadedRecipe) -> list[tuple[tuple[str, ...], Any]]:
    """Return (keys, value) of each input path as the run resolved it."""
    # Imported here because thermosynth.bank imports the recipe package.
    from thermosynth.bank import resolve_bank_path

    recipe = loaded.recipe
    found: list[tuple[tuple[str, ...], Any]] = []
    for section, key in INPUT_PATH_KEYS:
        value = getattr(recipe.frames, key, None)
        if isinstance(value, dict):
            found.append(((section, key), {k: str(p) for k, p in value.items()}))
        elif value is not None:
            found.append(((section, key), str(value)))
    select = getattr(recipe.frames, "select", None)
    if select is not None:
        found.append((("frames", "select", "metadata"), str(select.metadata)))

    layout_path = recipe.layout.options().get("path")
    if recipe.layout.kind == "mask" and layout_path is not None:
        found.append((("layout", "path"), str(layout_path)))
    if recipe.bank.mode != "off" or "path" in recipe.bank.model_fields_set:
        bank = resolve_bank_path(recipe.bank.path, loaded.source)
        found.append((("bank", "path"), str(Path(bank).absolute())))
    return found
