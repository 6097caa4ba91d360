"""Which --set item or other option a recipe key came from."""

from __future__ import annotations

import pickle
from pathlib import Path

import yaml

from thermosynth.errors import FrameError
from thermosynth.recipe import LoadedRecipe, load_demo_recipe, load_recipe
from thermosynth.recipe.origins import KeyOrigins, OptionOverride

ORIGINS = KeyOrigins(
    "r.yaml",
    (
        (("scenario",), "--set scenario.0.power_W=3"),
        (("scenarios", "0", "power_W"), "--set scenarios.hot.power_W=2"),
        (("physics",), "--set physics={dt_s: 1}"),
        (("physics", "dt_s"), "--set physics.dt_s=fast"),
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


def test_option_override_named_as_typed():
    folder = OptionOverride("output.dir", "/data/out #2", "-o 'out #2'")
    demo = load_demo_recipe(overrides=["seed=3", folder])

    assert demo.label(("output", "dir")) == "-o 'out #2' (recipe <demo>)"
    assert demo.label(("output", "hdf5")) == "<demo>"
    assert demo.label(("seed",), ("output", "dir")) == (
        "--set seed=3, -o 'out #2' (recipe <demo>)"
    )
    assert demo.recipe.output.dir == Path("/data/out #2")
    assert yaml.safe_load(demo.text)["output"]["dir"] == "/data/out #2"


def test_option_override_adds_missing_section():
    keys = yaml.safe_load(load_demo_recipe().text)
    del keys["output"]
    folder = OptionOverride("output.dir", "/data/out", "-o /data/out")
    loaded = load_recipe(keys, overrides=[folder])

    assert loaded.origins == KeyOrigins("<dict>", ((("output",), "-o /data/out"),))
    assert loaded.recipe.output.dir == Path("/data/out")


def test_loaded_recipe_origins_survive_pickle():
    demo = load_demo_recipe(overrides=["seed=3"])

    assert pickle.loads(pickle.dumps(demo)).origins == demo.origins


def test_error_keys_survive_pickle():
    error = FrameError("too few frames", keys=(("split", "train_normal"),))
    copy = pickle.loads(pickle.dumps(error))

    assert type(copy) is FrameError
    assert str(copy) == "too few frames"
    assert copy.keys == (("split", "train_normal"),)
