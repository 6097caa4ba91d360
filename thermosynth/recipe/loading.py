"""Read a YAML recipe, apply command-line overrides and validate it.

Every problem becomes one ``RecipeError`` whose message names the file, the
recipe key, the value and what to do. A scenario whose heat source can be
smaller than one grid cell gets a warning instead, because it still runs.
"""

from __future__ import annotations

import difflib
import hashlib
import logging
import os
import re
import reprlib
import typing
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path, PurePath
from typing import Any

import numpy as np
import yaml
from pydantic import BaseModel, ValidationError

from thermosynth.errors import RecipeError
from thermosynth.recipe.distributions import bounds, describe
from thermosynth.recipe.models import MAX_COUNT, MAX_N_LAYERS, Recipe
from thermosynth.recipe.origins import KeyOrigins, OptionOverride
from thermosynth.recipe.yaml12 import RecipeYamlLoader
from thermosynth.recipe.yaml_values import find_unwritable, unwritable_message

logger = logging.getLogger(__name__)

INPUT_PATH_KEYS = (
    ("frames", "path"),
    ("frames", "valid_mask"),
    ("frames", "ignore_mask"),
)

# Scenario keys that set the size of a heat source [mm], with the smallest
# size in grid cells that the grid resolves. A disc of radius below half a
# cell contains at most one cell centre, and a strip narrower than a cell
# covers one column, so the simulation heats one whole cell or column.
# x_mm and y_mm are positions, not sizes.
MIN_SOURCE_SIZE_CELLS = {"radius_mm": 0.5, "strip_width_mm": 1.0}


@dataclass(frozen=True)
class LoadedRecipe:
    """A validated recipe with the text it came from.

    Attributes
    ----------
    recipe : Recipe
        Validated recipe; relative paths are resolved against ``base_dir``.
    text : str
        YAML text after overrides, as stored with the output.
    sha256 : str
        Hash of ``text``.
    source : str
        File name, ``<demo>`` for the embedded recipe, or ``<dict>`` for a
        recipe given as a dict.
    origins : KeyOrigins or None
        The --set items and options applied and the keys they wrote, so that
        errors raised after loading can name them. None where they are not
        known.
    base_dir : Path or None
        Absolute folder that relative paths in ``text`` start from: the
        recipe file's folder, or a dict recipe's ``base_dir``; None where it
        is not known.
    """

    recipe: Recipe
    text: str
    sha256: str
    source: str
    origins: KeyOrigins | None = None
    base_dir: Path | None = None

    def label(self, *keys: typing.Sequence[Any]) -> str:
        """Return the origin of ``keys``, as `KeyOrigins.label` does.

        Without ``origins`` it returns the file name.
        """
        if self.origins is None:
            return self.source
        return self.origins.label(*keys)


def load_recipe(
    path: str | Path | Mapping[str, Any],
    *,
    overrides: typing.Sequence[str | OptionOverride] = (),
    base_dir: str | Path | None = None,
) -> LoadedRecipe:
    """Load and validate a recipe file, or a dict of recipe keys.

    Parameters
    ----------
    path : str, Path or dict
        YAML recipe file; relative paths inside it start at its folder. A
        dict of the keys a recipe file contains is validated the same way,
        with the source name ``<dict>`` in messages.
    overrides : sequence of str or OptionOverride
        ``key.path=value`` items, whose value is parsed as YAML, applied in
        order. An `OptionOverride` sets its value as given, and messages
        name its option in place of ``--set``.
    base_dir : str or Path, optional
        Folder that relative paths in a dict start from; the working folder
        by default. Only for a dict.

    Raises
    ------
    RecipeError
        If the file is missing or invalid, with the key, value and fix, or
        if ``path`` is YAML text (a str with a newline) rather than a path.
    TypeError
        If ``overrides`` is not a sequence of strings and `OptionOverride`
        items, such as a dict.
    ValueError
        If ``base_dir`` is given with a file's path.
    """
    if isinstance(path, Mapping):
        return _load_mapping(path, overrides=overrides, base_dir=base_dir)
    if isinstance(path, str) and "\n" in path:
        # A str with a newline is taken for YAML text, because file names
        # almost never contain one.
        raise RecipeError(
            f"got YAML text, not a path (it starts {path.lstrip()[:30]!r}); pass "
            "the recipe's path, or a dict from yaml.safe_load(text)"
        )
    if base_dir is not None:
        raise ValueError(
            f"base_dir = {str(base_dir)!r} applies only to a dict recipe; "
            f"relative paths in {path} start at that file's folder"
        )

    path = Path(path)
    if path.is_dir():
        raise RecipeError(
            f"recipe path {path} is a folder, not a recipe file; give a YAML "
            "file such as recipes/flir-pouch-cell.yaml"
        )
    if not path.is_file():
        where = "" if path.is_absolute() else f" (looked for {path.absolute()})"
        raise RecipeError(f"recipe file not found: {path}{where}; check the path")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise RecipeError(
            f"{path} is not a YAML recipe because it is not UTF-8 text (byte "
            f"{exc.start} is invalid), so it may be an image or another binary "
            "file; give the path of a YAML recipe, such as those in recipes/, "
            "and name the frames in its frames.path key"
        ) from None
    return parse_recipe(
        text, source=str(path), base_dir=path.parent, overrides=overrides
    )


DICT_SOURCE = "<dict>"
"""Source name of a recipe given as a dict, as messages show it."""


class _RecipeDumper(yaml.SafeDumper):
    """Safe YAML dumper that also writes paths and numpy scalars."""


_RecipeDumper.add_multi_representer(
    PurePath, lambda dumper, value: dumper.represent_str(str(value))
)
_RecipeDumper.add_multi_representer(
    np.generic, lambda dumper, value: dumper.represent_data(value.item())
)


def _load_mapping(
    data: Mapping[str, Any],
    *,
    overrides: typing.Sequence[str | OptionOverride],
    base_dir: str | Path | None,
) -> LoadedRecipe:
    """Validate a dict of recipe keys through its YAML text, as a file is."""
    source = DICT_SOURCE
    try:
        text = yaml.dump(dict(data), Dumper=_RecipeDumper, sort_keys=False)
    except yaml.representer.RepresenterError:
        found = find_unwritable(data, _RecipeDumper)
        keys = (found[0],) if found is not None and found[0] else ()
        message = f"{source}: {unwritable_message(found)}"
        raise RecipeError(message, keys=keys) from None
    folder = Path.cwd() if base_dir is None else Path(base_dir)
    return parse_recipe(text, source=source, base_dir=folder, overrides=overrides)


def load_demo_recipe(
    *, overrides: typing.Sequence[str | OptionOverride] = ()
) -> LoadedRecipe:
    """Load the embedded demo recipe, which needs no data files."""
    text = resources.files("thermosynth").joinpath("recipes/demo.yaml").read_text()
    return parse_recipe(text, source="<demo>", base_dir=Path.cwd(), overrides=overrides)


def parse_recipe(
    text: str,
    *,
    source: str,
    base_dir: Path,
    overrides: typing.Sequence[str | OptionOverride] = (),
) -> LoadedRecipe:
    """Validate recipe text; see `load_recipe`."""
    _check_overrides(overrides)
    data = _parse_yaml(text, source)
    written = [_apply(data, item, source) for item in overrides]
    origins = KeyOrigins(source, tuple(written))

    try:
        recipe = Recipe.model_validate(data)
    except ValidationError as exc:
        message = format_validation_error(exc, source)
        message = _scenario_names_back(message, data, overrides)
        # The label replaces the file name only after the scenario names are
        # back, so the --set item in it stays as the user typed it.
        where = origins.label(validation_error_key(exc))
        raise RecipeError(where + message.removeprefix(source)) from None

    recipe = _resolve_paths(recipe, base_dir, origins)
    recipe = _layers_from_stack(recipe, origins)
    warn_small_sources(recipe, source)
    warn_early_separator_short(recipe, source)
    warn_short_frame_interval(recipe, source)
    final_text = yaml.safe_dump(data, sort_keys=False) if overrides else text
    digest = hashlib.sha256(final_text.encode()).hexdigest()
    return LoadedRecipe(
        recipe=recipe,
        text=final_text,
        sha256=digest,
        source=source,
        origins=origins,
        base_dir=tidy_path(base_dir.absolute()),
    )


def _layers_from_stack(recipe: Recipe, origins: KeyOrigins) -> Recipe:
    """Set ``physics.n_layers`` to the layer count of a layout's stack.

    A layout key ``stack_layers`` (the prismatic cell's) builds the layout
    with its own through-thickness stack, whose simulation layers fix
    ``physics.n_layers``. A recipe that gives another ``physics.n_layers``,
    or a stack of more than ``MAX_N_LAYERS`` layers, is rejected.
    """
    stack_layers = recipe.layout.options().get("stack_layers")
    if stack_layers is None:
        return recipe

    # Imported here because thermosynth.build imports the recipe package.
    from thermosynth.build import build_layout

    n_layers = build_layout(recipe.layout, recipe.materials).n_layers
    assert n_layers is not None  # stack_layers builds a stack
    walls = n_layers - stack_layers
    count = (
        f"layout.stack_layers = {stack_layers} stack layers plus {walls} wall "
        f"layers make {n_layers} simulation layers"
    )
    if n_layers > MAX_N_LAYERS:
        where = origins.label(("layout", "stack_layers"))
        raise RecipeError(
            f"{where}: {count}, more than the maximum of {MAX_N_LAYERS}; set "
            f"layout.stack_layers to {MAX_N_LAYERS - walls} or less"
        )
    physics = recipe.physics
    if "n_layers" in physics.model_fields_set and physics.n_layers != n_layers:
        where = origins.label(("physics", "n_layers"))
        raise RecipeError(
            f"{where}: key 'physics.n_layers' = {physics.n_layers}, but "
            f"{count}; leave physics.n_layers out or set it to {n_layers}"
        )
    physics = physics.model_copy(update={"n_layers": n_layers})
    return recipe.model_copy(update={"physics": physics})


def warn_small_sources(recipe: Recipe, source: str) -> None:
    """Warn for each scenario size [mm] that the grid cannot resolve.

    That is a radius below half a grid cell or a strip narrower than one
    (`MIN_SOURCE_SIZE_CELLS`). The grid spacing is ``layout.resolution_mm``,
    and a layout's actual spacing is close to it
    (`thermosynth.geometry.layouts`). A distribution warns when its smallest
    value is below the limit. Each key warns once per load.
    """
    spacing_mm = recipe.layout.resolution_mm
    for index, spec in enumerate(recipe.scenarios):
        for name, cells in MIN_SOURCE_SIZE_CELLS.items():
            value = getattr(spec, name, None)
            if value is None:
                continue
            low_mm, _ = bounds(value)
            if low_mm >= cells * spacing_mm:
                continue

            key = f"scenarios.{index}.{name}"
            if isinstance(value, int | float):
                size = f"{key} = {low_mm:g} mm is"
            else:
                size = f"{key} = {describe(value)} can be {low_mm:g} mm,"
            limit = "half the grid spacing" if cells == 0.5 else "the grid spacing"
            logger.warning(
                "%s: %s less than %s (layout.resolution_mm = %g mm), so the "
                "source of scenario %r can be narrower than one grid cell, and "
                "the simulation widens it to a whole cell or column; raise %s "
                "or lower layout.resolution_mm",
                source,
                size,
                limit,
                spacing_mm,
                spec.name or spec.kind,
                key,
            )


def warn_early_separator_short(recipe: Recipe, source: str) -> None:
    """Warn for a separator short that fails at or below the ambient temperature.

    Every cell then shorts at t = 0, which is almost always a unit or typing
    mistake rather than the intent.
    """
    ambient_C = recipe.physics.ambient_C
    for index, spec in enumerate(recipe.scenarios):
        onset_C = getattr(spec, "separator_short_C", None)
        if onset_C is None or onset_C > ambient_C:
            continue
        logger.warning(
            "%s: scenarios.%d.separator_short_C = %g C is at or below "
            "physics.ambient_C = %g C, so every cell shorts at t = 0; give the "
            "separator's failure temperature, about 130 C for polyethylene",
            source,
            index,
            onset_C,
            ambient_C,
        )


def warn_short_frame_interval(recipe: Recipe, source: str) -> None:
    """Warn when a sequence's frames come faster than ``physics.dt_s``.

    Every solver ends a step on each frame time, so its steps shrink to the
    frame interval, and a simulation takes ``dt_s * fps`` times as many.
    """
    sequence = recipe.sequence
    dt_s = recipe.physics.dt_s
    if sequence is None or 1.0 / sequence.fps >= dt_s:
        return
    logger.warning(
        "%s: sequence.fps = %g s-1 puts frames %g s apart, less than "
        "physics.dt_s = %g s, so the solver's steps shrink to %g s to end on "
        "each of the %d frames; lower sequence.fps if the sequence needs "
        "fewer frames",
        source,
        sequence.fps,
        1.0 / sequence.fps,
        dt_s,
        1.0 / sequence.fps,
        sequence.n_frames,
    )


def _check_overrides(overrides: Any) -> None:
    """Raise TypeError unless ``overrides`` is a sequence of "key=value" strings.

    A dict or a single string would otherwise be iterated into its keys or
    characters, and each one reported as a malformed --set option.
    """
    if isinstance(overrides, Mapping):
        example = [f"{key}={value}" for key, value in overrides.items()]
        raise TypeError(
            f"overrides must be a list of 'key.path=value' strings, got a "
            f"{type(overrides).__name__} {overrides!r}; pass {example!r}"
        )
    if isinstance(overrides, str | bytes) or not isinstance(overrides, typing.Sequence):
        raise TypeError(
            f"overrides must be a list of 'key.path=value' strings, got a "
            f"{type(overrides).__name__} {overrides!r}; pass a list such as "
            f"{[overrides] if isinstance(overrides, str) else ['seed=4']!r}"
        )
    for item in overrides:
        if not isinstance(item, str | OptionOverride):
            raise TypeError(
                f"overrides must be a list of 'key.path=value' strings, but it "
                f"contains the {type(item).__name__} {item!r}; write each "
                "override as a string such as 'seed=4'"
            )


class _UniqueKeyLoader(RecipeYamlLoader):
    """Recipe YAML loader that rejects a key given twice in one mapping.

    PyYAML keeps the last of two equal keys, so a second ``physics:`` section
    pasted below a recipe would drop the first one without a word.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> Any:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, Hashable):
                break  # The base class raises its own error for this key.
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"key {key!r} appears twice in one mapping; merge the two",
                    key_node.start_mark,
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _parse_yaml(text: str, source: str) -> dict[str, Any]:
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        fix = ""
        if isinstance(exc, (yaml.scanner.ScannerError, yaml.parser.ParserError)):
            # PyYAML's message ("expected <block end>") names the token that
            # the parser met, not the change that fixes the recipe.
            fix = (
                "; check the indentation (spaces, not tabs), colons and brackets "
                "on that line and the line above it"
            )
        raise RecipeError(
            f"{source}: not valid YAML: {_yaml_problem(exc)}{fix}"
        ) from None
    if data is None and _blank_or_comments(text):
        contents = "is empty" if not text.strip() else "contains only comments"
        raise RecipeError(
            f"{source}: the recipe file {contents}; a recipe needs at least the "
            "keys frames, layout and scenarios, as in the example recipes in "
            "the recipes/ folder"
        )
    if not isinstance(data, dict):
        got = "an empty document (null)" if data is None else type(data).__name__
        raise RecipeError(
            f"{source}: a recipe must be a mapping of keys such as frames, layout "
            f"and scenarios, got {got}"
        )
    return data


def _blank_or_comments(text: str) -> bool:
    """Return whether every line of ``text`` is blank or a YAML comment."""
    return all(
        not line.strip() or line.lstrip().startswith("#") for line in text.splitlines()
    )


def _apply(
    data: dict[str, Any], item: str | OptionOverride, source: str
) -> tuple[tuple[str, ...], str]:
    """Apply one override to ``data`` in place.

    Return the path of the subtree that it wrote and its option as typed,
    the pair that `KeyOrigins.written` stores.
    """
    if isinstance(item, OptionOverride):
        return _apply_option(data, item, source), item.option
    return _apply_override(data, item, source), f"--set {item}"


def _apply_option(
    data: dict[str, Any], override: OptionOverride, source: str
) -> tuple[str, ...]:
    """Set ``override.value`` at its key, adding the mappings above it.

    Return the path of the subtree written, as `_apply_override` does.
    """
    parts = override.key.split(".")
    node: Any = data
    added_depth = None
    for depth, part in enumerate(parts):
        if not isinstance(node, dict):
            parent = ".".join(parts[:depth])
            raise RecipeError(
                f"{override.option} (recipe {source}): cannot set "
                f"{override.key}, because key '{parent}' = {_short_repr(node)} "
                f"is not a mapping; make '{parent}' a mapping with keys such as "
                f"'{parts[depth]}', or remove it from the recipe"
            )
        if added_depth is None and part not in node:
            added_depth = depth + 1
        if depth == len(parts) - 1:
            node[part] = override.value
        else:
            node = node.setdefault(part, {})
    return tuple(parts[:added_depth])


def _apply_override(data: dict[str, Any], item: str, source: str) -> tuple[str, ...]:
    """Apply one ``key.path=value`` --set item to ``data`` in place.

    Return the path of the subtree that the item wrote (`KeyOrigins.written`):
    the first key that it added, or else the key that it set. List items are
    named by index in the path.
    """
    key, sep, raw_value = item.partition("=")
    if not sep or not key:
        raise RecipeError(f"--set {item!r} is invalid; write it as key.path=value")
    value = _override_value(raw_value, item)

    parts = key.split(".")
    node: Any = data
    path: list[str] = []
    added_depth = None
    for depth, part in enumerate(parts[:-1]):
        if added_depth is None and isinstance(node, dict) and part not in node:
            added_depth = depth + 1
        node, name = _child(node, part, ".".join(parts[: depth + 1]), source)
        path.append(name)

    last = parts[-1]
    if isinstance(node, list):
        index = _list_index(node, last, key, source)
        node[index] = value
        path.append(str(index))
    elif isinstance(node, dict):
        node[last] = value
        path.append(last)
    else:
        raise RecipeError(f"--set {key}: {'.'.join(parts[:-1])} is not a mapping")
    return tuple(path[:added_depth])


_YAML11_BOOLEANS = frozenset({"on", "off", "yes", "no"})


def _override_value(raw_value: str, item: str) -> Any:
    """Parse an override value as YAML, or keep it as a plain string.

    A value that is not valid YAML, or that starts with a YAML anchor or alias
    (``*.bmp``), stays a string. Only a broken flow list or mapping, which
    starts with ``[`` or ``{``, is an error. The YAML 1.1 words that PyYAML
    reads as booleans (``on``, ``off``, ``yes``, ``no``) stay strings, as in
    YAML 1.2, so ``--set bank.mode=off`` is saved as ``off``; a boolean key
    still accepts them. Numbers such as ``1e-3`` are floats, as in a recipe
    file (`RecipeYamlLoader`).
    """
    if raw_value.lstrip().startswith(("&", "*")):
        return raw_value
    if raw_value.strip().lower() in _YAML11_BOOLEANS:
        return raw_value.strip()
    try:
        return yaml.load(raw_value, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        if not raw_value.lstrip().startswith(("[", "{")):
            return raw_value
        raise RecipeError(
            f"--set {item!r}: the value is not valid YAML ({_yaml_problem(exc)}); "
            "check the brackets and commas, or quote the value to keep it a string"
        ) from None


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """Describe a YAML error on one line, with its line and column."""
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    mark = getattr(exc, "problem_mark", None)
    if mark is None:
        return str(problem)
    return f"{problem} at line {mark.line + 1}, column {mark.column + 1}"


def _child(node: Any, part: str, key: str, source: str) -> tuple[Any, str]:
    """Return the item that ``part`` names in ``node``, and its key or index."""
    if isinstance(node, list):
        index = _list_index(node, part, key, source)
        return node[index], str(index)
    if not isinstance(node, dict):
        raise RecipeError(f"--set {key}: the parent key is not a mapping in {source}")
    return node.setdefault(part, {}), part


def _list_index(node: list[Any], part: str, key: str, source: str) -> int:
    """Return the index that ``part`` names: a number, or an item's ``name``."""
    named = [
        i
        for i, item in enumerate(node)
        if isinstance(item, dict) and item.get("name") == part
    ]
    if not part.isdigit() and len(named) == 1:
        return named[0]
    if not part.isdigit() or int(part) >= len(node):
        item = "a scenario" if key.startswith(f"scenarios.{part}") else "an item"
        raise RecipeError(
            f"--set {key}: {part!r} is not an index or a unique name of a list "
            f"of {len(node)} items in {source}; {_valid_choices(node)}, or add "
            f"{item} to the recipe file"
        )
    return int(part)


def _valid_choices(node: list[Any]) -> str:
    """Name the indices of a list, and the names of its items that have one."""
    indices = _valid_indices(len(node))
    names = [str(i["name"]) for i in node if isinstance(i, dict) and "name" in i]
    if not names:
        return indices
    return (
        f"use a name ({', '.join(names)}) or an index ({indices.removeprefix('use ')})"
    )


def _valid_indices(n_items: int) -> str:
    if n_items == 0:
        return "the list is empty"
    return "use 0" if n_items == 1 else f"use 0..{n_items - 1}"


def _resolve_paths(recipe: Recipe, base_dir: Path, origins: KeyOrigins) -> Recipe:
    frames = recipe.frames
    updates: dict[str, Any] = {}
    for section, name in INPUT_PATH_KEYS:
        value = getattr(frames, name, None)
        if value is None:
            continue
        if isinstance(value, dict):
            updates[name] = {
                part: _existing(path, base_dir, (section, name, part), origins)
                for part, path in value.items()
            }
        else:
            updates[name] = _existing(value, base_dir, (section, name), origins)
    if frames.kind == "images":
        _check_image_folder(updates["path"], origins.label(("frames", "path")))

    select = getattr(frames, "select", None)
    if select is not None:
        key = ("frames", "select", "metadata")
        metadata = _existing(select.metadata, base_dir, key, origins)
        updates["select"] = select.model_copy(update={"metadata": metadata})

    layout = recipe.layout
    mask_path = layout.options().get("path")
    if layout.kind == "mask" and mask_path is not None:
        where = origins.label(("layout", "path"))
        if not isinstance(mask_path, str):
            raise RecipeError(
                f"{where}: key 'layout.path' = {mask_path!r} is invalid; give the "
                "mask image's file path, relative to the recipe or absolute"
            )
        resolved = _from_base(Path(mask_path), base_dir)
        if not resolved.exists():
            raise RecipeError(
                f"{where}: key 'layout.path': mask image not found: {resolved}"
            )
        layout = layout.model_copy(update={"path": _tidy(resolved.absolute())})

    output_dir = expand_home(recipe.output.dir)
    if not output_dir.is_absolute():
        output_dir = tidy_path((base_dir / output_dir).absolute())
    # The bank file, like the output, may not exist yet. The copy keeps the
    # fields the recipe set, which tell whether it named a bank file.
    bank = recipe.bank
    bank_path = expand_home(bank.path)
    if not bank_path.is_absolute():
        bank_path = tidy_path((base_dir / bank_path).absolute())
    if bank_path != bank.path:
        fields = {**dict(bank), "path": bank_path}
        bank = type(bank).model_construct(bank.model_fields_set, **fields)
    return recipe.model_copy(
        update={
            "frames": frames.model_copy(update=updates),
            "layout": layout,
            "output": recipe.output.model_copy(update={"dir": output_dir}),
            "bank": bank,
        }
    )


def _existing(
    path: Path, base_dir: Path, key: tuple[str, ...], origins: KeyOrigins
) -> Path:
    resolved = _from_base(path, base_dir).absolute()
    if not resolved.exists():
        start = _relative_start(origins.source)
        raise RecipeError(
            f"{origins.label(key)}: key '{'.'.join(key)}': file or folder not "
            f"found: {resolved}; fix the path (relative paths start at {start})"
        )
    return _tidy(resolved)


def expand_home(path: Path) -> Path:
    """Return ``path`` with a leading ``~`` or ``~user`` replaced by a home folder.

    A recipe is not read by a shell, so ``frames.path: ~/frames`` would
    otherwise name a folder called ``~`` inside the recipe's folder. A home
    folder that cannot be found leaves ``path`` as written.
    """
    try:
        return path.expanduser()
    except RuntimeError:
        return path


def _from_base(path: Path, base_dir: Path) -> Path:
    """Return ``path`` with ``~`` expanded, under ``base_dir`` where relative."""
    path = expand_home(path)
    return path if path.is_absolute() else base_dir / path


def _check_image_folder(path: Path, source: str) -> None:
    """Raise RecipeError if frames.path of kind images names a file."""
    if path.is_dir():
        return
    raise RecipeError(
        f"{source}: key 'frames.path': {path} is a file, but frames of kind "
        "'images' are read from a folder; set frames.path to the folder that "
        f"contains the frames, such as {path.parent}, and frames.pattern to "
        f"the files to read in it ({path.name!r} reads this file alone)"
    )


def _relative_start(source: str) -> str:
    """Name the folder that relative paths of the recipe ``source`` start at."""
    if source == DICT_SOURCE:
        return "base_dir, the working folder by default"
    return "the recipe's folder"


def tidy_path(path: Path) -> Path:
    """Return ``path`` without ``..`` parts, also where it does not exist yet.

    The deepest folder of ``path`` that exists is tidied as ``_tidy`` does,
    and the parts below it are kept as written.
    """
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    return _tidy(existing) / path.relative_to(existing)


def _tidy(path: Path) -> Path:
    """Return ``path`` without ``.`` and ``..`` parts where that names the same file.

    A recipe in ``recipes/`` that reads ``../frames`` would otherwise put
    ``.../recipes/../frames`` into every sample's metadata. Where a symbolic
    link makes the shorter path point elsewhere, ``path`` is kept.
    """
    tidy = Path(os.path.normpath(path))
    if tidy != path and tidy.exists() and os.path.samefile(tidy, path):
        return tidy
    return path


DISTRIBUTION_FORMS = {
    "uniform": "[low, high]",
    "loguniform": "[low, high]",
    "normal": "[mean, std]",
    "choice": "[a, b, ...]",
}
"""Distribution names of `thermosynth.recipe.distributions` and their arguments."""

_DISTRIBUTION_MEMBERS = ("float", "Uniform", "LogUniform", "Normal", "Choice")
"""Union members that pydantic names in the location of a distribution error."""


def _scenario_names_back(
    message: str, data: Any, overrides: typing.Sequence[str | OptionOverride]
) -> str:
    """Write ``scenarios.NAME.`` back where a --set item named a scenario.

    An override finds a scenario by its ``name`` (`_list_index`), but
    pydantic's error gives the scenario's index, which the user never typed.
    """
    scenarios = data.get("scenarios") if isinstance(data, dict) else None
    if not isinstance(scenarios, list):
        return message
    for item in overrides:
        if not isinstance(item, str):
            continue
        parts = item.partition("=")[0].strip().split(".")
        if len(parts) < 3 or parts[0] != "scenarios" or parts[1].isdigit():
            continue
        try:
            index = _list_index(scenarios, parts[1], item, "the recipe")
        except RecipeError:
            # Another --set item renamed the scenario, so the index stays.
            continue
        message = message.replace(f"scenarios.{index}.", f"scenarios.{parts[1]}.")
    return message


def _first_error(exc: ValidationError) -> tuple[Any, tuple[Any, ...], list[Any]]:
    """Return the error a message reports, its location and all errors.

    An unknown key is reported first, because a misspelled key can also cause
    a missing-key error. A misspelled ``kind`` is located at the ``kind`` key.
    """
    errors = _collapse_distributions(exc.errors())
    errors.sort(key=lambda e: e["type"] != "extra_forbidden")
    first = errors[0]
    loc = tuple(first["loc"])
    if first["type"] == "union_tag_invalid":
        loc = (*loc, "kind")
        first = {**first, "input": first["ctx"]["tag"]}
    return first, loc, errors


def validation_error_key(exc: ValidationError) -> list[Any]:
    """Return the recipe key that `format_validation_error` reports, as a path."""
    return _user_loc(_first_error(exc)[1])


def format_validation_error(exc: ValidationError, source: str) -> str:
    """Turn pydantic's error list into one message with key, value and fix."""
    first, loc, errors = _first_error(exc)
    key = ".".join(str(part) for part in _user_loc(loc))
    value = first.get("input")
    more = _other_problems(errors[1:])

    if first["type"] == "extra_forbidden":
        hint = _COUNT_HINT if loc[-1] == "count" else _suggest_key(loc)
        return f"{source}: unknown key '{key}'{hint}{more}"
    if first["type"] == "missing":
        return f"{source}: missing required key '{key}'; add it to the recipe{more}"
    if "count" in loc and first["type"] != "extra_forbidden":
        return _count_problem(first, loc, source) + more
    if first["type"] == "distribution":
        reason = _distribution_reason(value, first["members"])
        forms = ", ".join(f"{{{n}: {f}}}" for n, f in DISTRIBUTION_FORMS.items())
        return (
            f"{source}: key '{key}' = {value!r} is invalid: {reason}; write a "
            f"number or one of {forms}{more}"
        )
    kinds = _expected_kinds(first, loc)
    if kinds:
        return f"{source}: {_unknown_kind(value, key, kinds)}{more}"
    if first["type"] in ("model_type", "dict_type") and not isinstance(value, dict):
        return f"{source}: {_not_a_section(key, value)}{more}"
    if first["type"] in ("too_short", "too_long"):
        message = _length_problem(first)
    elif first["type"] == "path_type":
        message = "it should be a file or folder path, such as out/run1"
    else:
        message = first["msg"].removeprefix("Value error, ")
        message = message.replace("Input should", "it should")
    if isinstance(value, dict) and _expects_scalar(first["type"]):
        return (
            f"{source}: key '{key}' = {value!r} is invalid: {message}; this key "
            "takes one value, not a section or a distribution, so fix it in the "
            f"recipe or with --set {key}=...{more}"
        )
    if isinstance(value, dict) and len(value) == 1:
        name = next(iter(value))
        if name in DISTRIBUTION_FORMS:
            # A distribution's check, such as a range below zero: --set
            # replaces the whole distribution, never one key inside it.
            form = f"{key}={{{name}: {DISTRIBUTION_FORMS[name]}}}"
            return (
                f"{source}: key '{key}' = {value!r} is invalid: {message}; fix "
                f"it in the recipe or with --set '{form}' or --set {key}=..."
                f"{more}"
            )
    if isinstance(value, dict):
        # A check across a section's keys: the message names them, and the
        # whole section would bury it.
        return (
            f"{source}: section '{key}'{_section_name(value)} is invalid: "
            f"{message}; fix it in the recipe or with --set {key}.KEY=VALUE{more}"
        )
    return (
        f"{source}: key '{key}' = {value!r} is invalid: {message}; fix it in the "
        f"recipe or with --set {key}=...{more}"
    )


def _not_a_section(key: str, value: Any) -> str:
    """Return the problem of a section given as one value, such as bank: null."""
    off = "; to turn the bank off, set bank.mode: off" if key == "bank" else ""
    return (
        f"key '{key}' = {value!r} is invalid: '{key}' is a section of keys, "
        f"not one value; give its keys in the recipe or with --set "
        f"{key}.KEY=VALUE (docs/recipes.md lists them){off}"
    )


def _expects_scalar(error_type: str) -> bool:
    """Return whether a pydantic error type rejects a value of the wrong type.

    Such types, like ``float_type`` or ``bool_parsing``, mean that the key takes
    one number, flag or string; a check across a section's keys reports
    ``value_error`` instead.
    """
    return error_type.endswith(("_type", "_parsing"))


def _section_name(section: dict[str, Any]) -> str:
    """Return " (kind 'joule', name 'hot_cell')" from the keys a section has."""
    named = [f"{k} {section[k]!r}" for k in ("kind", "name") if k in section]
    return f" ({', '.join(named)})" if named else ""


def _is_union_member(part: Any) -> bool:
    """Tell whether a location part names a union member, not a recipe key."""
    if not isinstance(part, str):
        return False
    return "[" in part or part.startswith("function-") or part in _DISTRIBUTION_MEMBERS


def _collapse_distributions(errors: list[Any]) -> list[Any]:
    """Replace the errors of each distribution union by one error.

    pydantic reports one error per union member (a number, each distribution
    mapping); the collapsed error has type ``distribution``, the location of
    the recipe key, the value as written and the member errors in ``members``.
    """
    collapsed: list[Any] = []
    groups: dict[tuple[Any, ...], list[Any]] = {}
    for error in errors:
        loc = tuple(error["loc"])
        split = next((i for i, p in enumerate(loc) if _is_union_member(p)), None)
        if split is None or not _names_distribution(loc[split]):
            collapsed.append(error)
            continue

        prefix = loc[:split]
        if prefix not in groups:
            groups[prefix] = []
            collapsed.append(
                {"type": "distribution", "loc": prefix, "members": groups[prefix]}
            )
        groups[prefix].append(error)

    for error in collapsed:
        if error["type"] == "distribution":
            size = len(error["loc"]) + 1
            whole = [e for e in error["members"] if len(e["loc"]) == size]
            error["input"] = (whole or error["members"])[0].get("input")
    return collapsed


def _names_distribution(part: str) -> bool:
    names = _DISTRIBUTION_MEMBERS
    return part in names or any(part.endswith(f", {n}]") for n in names)


def _distribution_reason(value: Any, members: list[Any]) -> str:
    """Say why ``value`` fits no member of a distribution union."""
    for error in members:
        if error["type"] == "value_error":
            return str(error["msg"]).removeprefix("Value error, ")

    if not isinstance(value, dict) or len(value) != 1:
        return "it is neither a number nor a one-key distribution mapping"
    name, arguments = next(iter(value.items()))
    if name in DISTRIBUTION_FORMS:
        return f"{name} takes {DISTRIBUTION_FORMS[name]}, got {arguments!r}"
    close = difflib.get_close_matches(str(name), list(DISTRIBUTION_FORMS), n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"unknown distribution {name!r}{hint}"


def _unknown_kind(value: Any, key: str, kinds: list[str]) -> str:
    listed = ", ".join(kinds)
    close = difflib.get_close_matches(str(value), kinds, n=1)
    if close:
        return (
            f"unknown kind {value!r} at key '{key}'; did you mean '{close[0]}'? "
            f"Valid kinds: {listed}"
        )
    return f"unknown kind {value!r} at key '{key}'; valid kinds: {listed}"


def _expected_kinds(error: Any, loc: tuple[Any, ...]) -> list[str]:
    """Return the valid kinds when ``error`` is a misspelled ``kind``, else []."""
    if error["type"] == "union_tag_invalid":
        return re.findall(r"'([^']*)'", error["ctx"]["expected_tags"])
    if error["type"] == "literal_error" and loc and loc[-1] == "kind":
        return re.findall(r"'([^']*)'", error["ctx"]["expected"])
    return []


def _user_loc(loc: tuple[Any, ...]) -> list[Any]:
    """Drop union tags (e.g. 'hotspot') and union members from a location."""
    tags = {
        *("images", "arrays", "hdf5", "synthetic", "video"),
        *("hotspot", "joule", "held_patch", "runaway"),
    }
    kept = []
    for i, part in enumerate(loc):
        previous = loc[i - 1] if i else None
        is_tag = part in tags and (previous == "frames" or isinstance(previous, int))
        if not is_tag and not _is_union_member(part):
            kept.append(part)
    return kept


_COUNT_HINT = (
    "; count applies to hotspot scenarios and to joule scenarios on one_cell "
    "or one_strip, because a held temperature and runaway chemistry do not "
    "add up"
)


def _count_problem(error: Any, loc: tuple[Any, ...], source: str) -> str:
    """Say why a scenario's ``count`` is invalid, naming the key and the fix."""
    key = ".".join(str(part) for part in _user_loc(loc[: loc.index("count") + 1]))
    reason = f"count takes a whole number from 1 to {MAX_COUNT}, or {{choice: [2, 3]}}"
    if error["type"] == "value_error":
        reason = str(error["msg"]).removeprefix("Value error, ")
    return (
        f"{source}: key '{key}' = {error.get('input')!r} is invalid: {reason}; fix "
        f"it in the recipe or with --set {key}=..."
    )


def _suggest_key(loc: tuple[Any, ...]) -> str:
    """Name the closest valid key to an unknown one, if any is close."""
    model = _model_at(Recipe, loc[:-1])
    if model is None:
        return ""
    allowed = list(model.model_fields)
    close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
    if close:
        return f"; did you mean '{close[0]}'? Valid keys here: {', '.join(allowed)}"
    return f"; valid keys here: {', '.join(allowed)}"


def _model_at(model: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """Follow a pydantic error location through nested models and unions."""
    candidates = [model]
    for part in loc:
        if isinstance(part, int):
            continue
        owner = next((m for m in candidates if part in m.model_fields), None)
        if owner is not None:
            candidates = _models_in(owner.model_fields[part].annotation)
        else:
            candidates = [m for m in candidates if _tag(m) == part]
        if not candidates:
            return None
    return candidates[0]


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for arg in typing.get_args(annotation):
        found.extend(_models_in(arg))
    return found


def _tag(model: type[BaseModel]) -> str | None:
    field = model.model_fields.get("kind")
    if field is None:
        return None
    args = typing.get_args(field.annotation)
    return args[0] if len(args) == 1 else None


def _more_problems(count: int) -> str:
    return "1 more problem" if count == 1 else f"{count} more problems"


_MAX_LISTED_PROBLEMS = 5
"""Further problems named after the first one; the rest are only counted."""


def _other_problems(errors: list[Any]) -> str:
    """Return " (N more problems after this one: ...)" naming ``errors``, or ""."""
    if not errors:
        return ""
    listed = ", ".join(_problem_summary(e) for e in errors[:_MAX_LISTED_PROBLEMS])
    unlisted = len(errors) - _MAX_LISTED_PROBLEMS
    rest = f" and {unlisted} more" if unlisted > 0 else ""
    return f" ({_more_problems(len(errors))} after this one: {listed}{rest})"


def _problem_summary(error: Any) -> str:
    """Describe one validation problem by its kind and recipe key."""
    loc = tuple(error["loc"])
    value = error.get("input")
    if error["type"] == "union_tag_invalid":
        loc = (*loc, "kind")
        value = error["ctx"]["tag"]
    key = ".".join(str(part) for part in _user_loc(loc))
    if error["type"] == "extra_forbidden":
        return f"unknown key '{key}'"
    if error["type"] == "missing":
        return f"missing key '{key}'"
    if error["type"] == "union_tag_invalid" or _expected_kinds(error, loc):
        return f"unknown kind {_short_repr(value)} at key '{key}'"
    # The key exists; its value is what failed.
    return f"key '{key}' = {_short_repr(value)} is invalid"


def _short_repr(value: Any) -> str:
    """Return ``repr(value)`` cut to about 40 characters, for a list of problems."""
    shortener = reprlib.Repr()
    shortener.maxstring = shortener.maxother = 40
    return shortener.repr(value)


def _length_problem(error: Any) -> str:
    """Describe how many items a too short or too long list (or text) has and needs."""
    context = error.get("ctx", {})
    noun = "character" if context.get("field_type") == "String" else "item"
    if error["type"] == "too_short":
        bound, limit = "at least", context.get("min_length")
    else:
        bound, limit = "at most", context.get("max_length")
    needs = f"{bound} {limit} {noun}{'' if limit == 1 else 's'}"
    actual = context.get("actual_length")
    if actual is None:
        return f"it needs {needs}"
    return f"it has {actual} {noun}{'' if actual == 1 else 's'} but needs {needs}"
