"""Property tests for recipe loading: any input gives a recipe or a RecipeError.

A recipe is user input, so no mapping, value, type or override may end in a
traceback from inside thermosynth or pydantic.
"""

from __future__ import annotations

import copy
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from thermosynth.errors import RecipeError
from thermosynth.recipe.loading import LoadedRecipe, parse_recipe
from thermosynth.recipe.models import Recipe

DEMO_TEXT = resources.files("thermosynth").joinpath("recipes/demo.yaml").read_text()
DEMO = yaml.safe_load(DEMO_TEXT)
BASE_DIR = Path(__file__).resolve().parent
KEYS = sorted(Recipe.model_fields) + ["kind", "path", "power_W", "uniform", "choice"]

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.sampled_from(["hotspot", "joule", "synthetic", "images", "C", "-1"])
)
values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(KEYS) | st.text(max_size=6), children, max_size=3
        )
    ),
    max_leaves=8,
)


def paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    """List the key paths of every mapping entry and list item under ``node``."""
    found = []
    items = node.items() if isinstance(node, dict) else enumerate(node)
    for key, child in items:
        found.append((*prefix, key))
        if isinstance(child, dict | list):
            found.extend(paths(child, (*prefix, key)))
    return found


DEMO_PATHS = paths(DEMO)


@st.composite
def mutated_demos(draw) -> dict:
    """Replace, delete or add one to four entries of the demo recipe."""
    data = copy.deepcopy(DEMO)
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(DEMO_PATHS))
        parent = data
        try:
            for key in path[:-1]:
                parent = parent[key]
            action = draw(st.sampled_from(["replace", "delete", "add"]))
            if action == "replace":
                parent[path[-1]] = draw(values)
            elif action == "delete":
                del parent[path[-1]]
            elif isinstance(parent, dict):
                parent[draw(st.sampled_from(KEYS) | st.text(max_size=6))] = draw(values)
        except (KeyError, IndexError, TypeError):
            pass  # an earlier change removed or retyped this path
    return data


def load(text: str, overrides: tuple[str, ...] = ()) -> LoadedRecipe | None:
    """Parse ``text``; return None for a RecipeError, re-raise anything else."""
    try:
        loaded = parse_recipe(
            text, source="<hypothesis>", base_dir=BASE_DIR, overrides=overrides
        )
    except RecipeError as error:
        assert str(error)
        return None
    assert isinstance(loaded.recipe, Recipe)
    return loaded


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_demos())
def test_mutated_demo_loads_or_raises_recipe_error(data):
    load(yaml.safe_dump(data, allow_unicode=True))


@settings(max_examples=50, deadline=None)
@given(st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), values, max_size=6))
def test_random_mapping_loads_or_raises_recipe_error(data):
    load(yaml.safe_dump(data, allow_unicode=True))


@settings(max_examples=50, deadline=None)
@given(st.text(max_size=60))
def test_random_text_loads_or_raises_recipe_error(text):
    load(text)


override_keys = st.sampled_from(
    [".".join(map(str, path)) for path in DEMO_PATHS] + ["", ".", "a..b", "seed.x"]
)
override_values = st.sampled_from(
    ["1", "-3", "nan", "[1, 2]", "{a: 1}", "", "x: [", "~"]
)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(override_keys, override_values), max_size=3))
def test_random_overrides_load_or_raise_recipe_error(pairs):
    overrides = tuple(f"{key}={value}" for key, value in pairs)
    load(DEMO_TEXT, overrides)


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**63),
    ambient_C=st.floats(-40.0, 80.0),
    n_layers=st.integers(1, 16),
    train=st.integers(0, 50),
    power=st.tuples(st.floats(0.01, 10.0), st.floats(0.01, 10.0)).map(sorted),
)
def test_valid_recipes_load(seed, ambient_C, n_layers, train, power):
    data = copy.deepcopy(DEMO)
    data["seed"] = seed
    data["physics"] |= {"ambient_C": ambient_C, "n_layers": n_layers}
    data["split"]["train_normal"] = train
    data["scenarios"][0]["power_W"] = {"loguniform": list(power)}
    loaded = load(yaml.safe_dump(data))

    assert loaded is not None
    recipe = loaded.recipe
    assert recipe.seed == seed
    assert recipe.physics.ambient_C == ambient_C
    assert recipe.physics.n_layers == n_layers
    assert recipe.split.train_normal == train
