"""Which --set item a recipe key came from."""

from __future__ import annotations

import pickle

from thermosynth.errors import FrameError
from thermosynth.recipe import LoadedRecipe, load_demo_recipe
from thermosynth.recipe.origins import KeyOrigins

ORIGINS = KeyOrigins(
    "r.yaml",
    (
        (("scenario",), "scenario.0.power_W=3"),
        (("scenarios", "0", "power_W"), "scenarios.hot.power_W=2"),
        (("physics",), "physics={dt_s: 1}"),
        (("physics", "dt_s"), "physics.dt_s=fast"),
    ),
)


def test_label_file_key_names_file():
    assert ORIGINS.label(("scenarios", 1, "power_W")) == "r.yaml"
    assert ORIGINS.label(("scenarios", 0, "radius_mm")) == "r.yaml"
    assert ORIGINS.label(("scenarios",)) == "r.yaml"


def test_label_set_key_names_set():
    label = ORIGINS.label(("scenarios", 0, "power_W"))

    assert label == "--set scenarios.hot.power_W=2 (recipe r.yaml)"


def test_label_key_below_added_key():
    label = ORIGINS.label(("scenario", "0", "power_W"))

    assert label == "--set scenario.0.power_W=3 (recipe r.yaml)"


def test_label_last_writer_wins():
    dt_label = ORIGINS.label(("physics", "dt_s"))
    ambient_label = ORIGINS.label(("physics", "ambient_C"))

    assert dt_label == "--set physics.dt_s=fast (recipe r.yaml)"
    assert ambient_label == "--set physics={dt_s: 1} (recipe r.yaml)"


def test_label_several_keys_names_each_set_once():
    label = ORIGINS.label(
        ("physics", "ambient_C"), ("scenario", "0"), ("physics", "n_layers")
    )

    assert (
        label == "--set scenario.0.power_W=3, --set physics={dt_s: 1} (recipe r.yaml)"
    )


def test_label_several_file_keys_names_file():
    assert ORIGINS.label(("split", "train_normal"), ("scenarios", 1)) == "r.yaml"
    assert ORIGINS.label() == "r.yaml"


def test_loaded_recipe_without_origins_names_file():
    demo = load_demo_recipe(overrides=["seed=3"])
    bare = LoadedRecipe(demo.recipe, demo.text, demo.sha256, demo.source)

    assert bare.label(("seed",)) == "<demo>"
    assert demo.label(("seed",)) == "--set seed=3 (recipe <demo>)"


def test_loaded_recipe_origins_survive_pickle():
    demo = load_demo_recipe(overrides=["seed=3"])

    assert pickle.loads(pickle.dumps(demo)).origins == demo.origins


def test_error_keys_survive_pickle():
    error = FrameError("too few frames", keys=(("split", "train_normal"),))
    copy = pickle.loads(pickle.dumps(error))

    assert type(copy) is FrameError
    assert str(copy) == "too few frames"
    assert copy.keys == (("split", "train_normal"),)
