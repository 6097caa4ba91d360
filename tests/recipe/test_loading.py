"""Recipe validation: every bad input gives one message with key and value."""

from __future__ import annotations

import logging
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import yaml

from thermosynth.build import build_camera, build_layout
from thermosynth.errors import RecipeError
from thermosynth.recipe import load_demo_recipe, load_recipe, parse_recipe
from thermosynth.recipe.distributions import Uniform
from thermosynth.simulation import resolved_physics

LOADING = "thermosynth.recipe.loading"

MINIMAL = """
frames: {kind: synthetic, n_frames: 4}
layout: {kind: pouch_cell, resolution_mm: 2.0}
scenarios:
  - kind: hotspot
    power_W: 1.0
    radius_mm: 3.0
"""


def parse(text: str = MINIMAL, overrides: tuple[str, ...] = ()):
    return parse_recipe(
        text, source="r.yaml", base_dir=Path("/tmp"), overrides=overrides
    )


def test_minimal_recipe_gets_defaults():
    recipe = parse().recipe
    assert recipe.seed == 0
    assert recipe.physics.ambient_C == 25.0
    assert recipe.scenarios[0].power_W == 1.0
    assert recipe.output.dir == Path("/tmp/thermosynth-output")


def test_demo_recipe_is_valid():
    loaded = load_demo_recipe()
    assert loaded.recipe.frames.kind == "synthetic"
    assert len(loaded.sha256) == 64


def test_misspelled_key_suggests_fix():
    text = MINIMAL.replace("power_W", "powr_W")
    with pytest.raises(
        RecipeError, match=r"unknown key 'scenarios\.0\.powr_W'; did you mean 'power_W'"
    ):
        parse(text)


def test_misspelled_section_suggests_fix():
    with pytest.raises(
        RecipeError, match=r"unknown key 'physcs'; did you mean 'physics'"
    ):
        parse(overrides=("physcs.dt_s=1",))


def test_wrong_type_names_key_and_value():
    with pytest.raises(RecipeError, match=r"key 'physics\.dt_s' = 'fast' is invalid"):
        parse(overrides=("physics.dt_s=fast",))


@pytest.mark.parametrize(
    ("override", "hint"),
    [("bank=null", "to turn the bank off, set bank.mode: off"), ("physics=3", "")],
)
def test_section_given_one_value_names_keys(override, hint):
    key = override.split("=")[0]
    with pytest.raises(RecipeError) as error:
        parse(overrides=(override,))

    message = str(error.value)
    assert f"'{key}' is a section of keys, not one value" in message
    assert f"--set {key}.KEY=VALUE" in message
    assert hint in message
    assert "BankSpec" not in message


def test_camera_band_default_and_override():
    assert parse().recipe.camera.band_um == (7.5, 14.0)

    loaded = parse(overrides=("camera.band_um=[3.0, 5.0]",))
    assert loaded.recipe.camera.band_um == (3.0, 5.0)
    assert build_camera(loaded.recipe.camera).band_um == (3.0, 5.0)


def test_camera_band_rejected_with_fix():
    with pytest.raises(
        RecipeError,
        match=(
            r"key 'camera\.band_um' = \[14, 7\.5\] is invalid: its first "
            r"wavelength must be shorter than its second; give \[low, high\] in um"
        ),
    ):
        parse(overrides=("camera.band_um=[14, 7.5]",))


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("camera.band_um=[true, 14]", r"camera\.band_um"),
        ('camera.band_um=["8", 14]', r"camera\.band_um"),
        ("physics.h_top_W_m2K=true", r"physics\.h_top_W_m2K"),
        ("physics.dt_s='5'", r"physics\.dt_s"),
    ],
)
def test_bool_or_string_number_rejected(override, key):
    with pytest.raises(RecipeError, match=rf"key '{key}' = .* is invalid"):
        parse(overrides=(override,))


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("seed=true", r"key 'seed' = True is invalid: .* not true or false"),
        ("seed='3'", r"key 'seed' = '3' is invalid: .* remove the quotes"),
        ("split.train_normal=' 20'", r"key 'split\.train_normal' = ' 20'"),
        ("physics.n_layers=false", r"key 'physics\.n_layers' = False"),
        ("seed=first", r"key 'seed' = 'first' is invalid: .* unable to parse"),
    ],
)
def test_bool_or_string_integer_rejected(override, message):
    with pytest.raises(RecipeError, match=message):
        parse(overrides=(override,))


COLORBAR_FRAMES = (
    "frames={kind: images, path: /tmp, mode: colorbar, "
    "colorbar: {x_px: [300, 310], y_px: [20, 220], top: 40, bottom: 20}}"
)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ("frames.shape=[true, 160]",),
            r"key 'frames\.shape\.0' = True is invalid: it should be an integer, "
            r"not true or false",
        ),
        (
            ("frames.shape=[120, '160']",),
            r"key 'frames\.shape\.1' = '160' is invalid: .* remove the quotes",
        ),
        (
            (COLORBAR_FRAMES, "frames.colorbar.x_px=[300, false]"),
            r"key 'frames\.colorbar\.x_px\.1' = False is invalid: .* true or false",
        ),
        (
            (COLORBAR_FRAMES, "frames.colorbar.y_px=['20', 220]"),
            r"key 'frames\.colorbar\.y_px\.0' = '20' is invalid: .* remove the quotes",
        ),
        (
            (COLORBAR_FRAMES, "frames.ignore_rects=[[0, 0, 4, 4], [0, 0, true, 4]]"),
            r"key 'frames\.ignore_rects\.1\.2' = True is invalid: .* true or false",
        ),
        (
            (COLORBAR_FRAMES, "frames.ignore_rects=[['0', 0, 4, 4]]"),
            r"key 'frames\.ignore_rects\.0\.0' = '0' is invalid: .* remove the quotes",
        ),
    ],
)
def test_bool_or_string_pixel_rejected(overrides, message):
    with pytest.raises(RecipeError, match=message):
        parse(overrides=overrides)


@pytest.mark.parametrize("shape", ["[0, 160]", "[120, -3]", "[31, 160]"])
def test_synthetic_shape_too_small_rejected(shape):
    with pytest.raises(RecipeError, match=r"key 'frames\.shape\.[01]' = -?\d+ is"):
        parse(overrides=(f"frames.shape={shape}",))


def test_dict_recipe_pixel_keys_take_integers():
    data = yaml.safe_load(MINIMAL)
    data["frames"]["shape"] = [np.int64(96), 128.0]

    shape = load_recipe(data).recipe.frames.shape

    assert shape == (96, 128)
    assert all(type(size) is int for size in shape)

    data["frames"] = {
        "kind": "images",
        "path": "/tmp",
        "mode": "colorbar",
        "colorbar": {
            "x_px": [np.int32(300), 310],
            "y_px": [20.0, 220],
            "top": 40,
            "bottom": 20,
        },
        "ignore_rects": [[0, 0, np.uint16(4), 4.0]],
    }
    frames = load_recipe(data).recipe.frames

    assert frames.colorbar.x_px == (300, 310)
    assert frames.colorbar.y_px == (20, 220)
    assert frames.ignore_rects == [(0, 0, 4, 4)]
    assert all(type(edge) is int for edge in frames.ignore_rects[0])


def test_dict_recipe_bool_seed_rejected():
    data = yaml.safe_load(MINIMAL)
    data["seed"] = True

    with pytest.raises(RecipeError, match=r"<dict>: key 'seed' = True is invalid"):
        load_recipe(data)

    data["seed"] = 3.0
    assert load_recipe(data).recipe.seed == 3


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            "physics.emissivity_top=true",
            r"key 'physics\.emissivity_top' = True is invalid: it should be a "
            r"number, not true or false",
        ),
        (
            "physics.ambient_C='20'",
            r"key 'physics\.ambient_C' = '20' is invalid: .* remove the quotes",
        ),
        ("physics.emissivity_bottom='1e-1'", r"'physics\.emissivity_bottom' = '1e-1'"),
        (
            "physics.emissivity_top_regions={tabs: false}",
            r"key 'physics\.emissivity_top_regions\.tabs' = False is invalid",
        ),
        ("camera.reflected_C=true", r"key 'camera\.reflected_C' = True"),
        ("scenarios.0.x_mm=true", r"key 'scenarios\.0\.x_mm' = True .* true or false"),
        (
            "scenarios.0.power_W={uniform: ['1', 2]}",
            r"key 'scenarios\.0\.power_W' = .* remove the quotes",
        ),
        (
            "scenarios.0.radius_mm={choice: [2, true]}",
            r"key 'scenarios\.0\.radius_mm' = .* not true or false",
        ),
    ],
)
def test_bool_or_string_float_rejected(override, message):
    with pytest.raises(RecipeError, match=message):
        parse(overrides=(override,))


def test_dict_recipe_float_keys_take_numbers():
    data = yaml.safe_load(MINIMAL)
    data["physics"] = {"ambient_C": 20, "emissivity_top": np.float32(0.5)}
    data["camera"] = {"band_um": [np.int64(3), 5.0]}
    data["scenarios"][0]["power_W"] = {"uniform": [1, np.float64(2.5)]}

    recipe = load_recipe(data).recipe

    assert recipe.physics.ambient_C == 20.0
    assert type(recipe.physics.ambient_C) is float
    assert recipe.physics.emissivity_top == 0.5
    assert recipe.camera.band_um == (3.0, 5.0)
    assert recipe.scenarios[0].power_W == Uniform(uniform=(1.0, 2.5))

    data["frames"] = {"kind": "arrays", "path": "a.npy", "offset": True}
    with pytest.raises(RecipeError, match=r"key 'frames\.offset' = True is invalid"):
        load_recipe(data)


def test_emissivity_pair_with_list_name_rejected():
    # A list as a region name is unhashable: rejected, not a TypeError.
    override = "physics.emissivity_top_regions=[[[], 0.1]]"
    message = r"key 'physics\.emissivity_top_regions' = \[\[\[\], 0\.1\]\] is invalid"
    with pytest.raises(RecipeError, match=message):
        load_demo_recipe(overrides=[override])


def test_negative_coefficient_rejected():
    with pytest.raises(
        RecipeError,
        match=r"key 'physics\.h_top_W_m2K' = -3 is invalid: it should be greater",
    ):
        parse(overrides=("physics.h_top_W_m2K=-3",))


@pytest.mark.parametrize("value", [".inf", ".nan"])
def test_infinite_weight_rejected(value):
    with pytest.raises(
        RecipeError,
        match=r"key .scenarios\.0\.weight. = (inf|nan) is invalid: it should be a fin",
    ):
        parse(overrides=(f"scenarios.0.weight={value}",))


def test_negative_power_distribution_rejected():
    with pytest.raises(
        RecipeError, match=r"power_W must be positive, but its lowest value is -1"
    ):
        parse(overrides=("scenarios.0.power_W={uniform: [-1, 2]}",))


def test_normal_distribution_rejected_for_positive_quantity():
    with pytest.raises(RecipeError, match="use uniform, loguniform or choice"):
        parse(overrides=("scenarios.0.radius_mm={normal: [3, 1]}",))


KINDS = [
    (
        "scenarios.0.kind=hotpsot",
        "unknown kind 'hotpsot' at key 'scenarios.0.kind'; did you mean "
        "'hotspot'? Valid kinds: hotspot, joule, held_patch, runaway",
    ),
    (
        "frames.kind=imgs",
        "unknown kind 'imgs' at key 'frames.kind'; did you mean 'images'? "
        "Valid kinds: images, arrays, hdf5, synthetic, video",
    ),
    (
        "layout.kind=pouch",
        "unknown kind 'pouch' at key 'layout.kind'; did you mean "
        "'pouch_cell'? Valid kinds: pouch_cell, prismatic_cell, cylindrical_array, "
        "module, cell_grid, mask",
    ),
    (
        "scenarios.0.kind=zzz",
        "unknown kind 'zzz' at key 'scenarios.0.kind'; valid kinds: "
        "hotspot, joule, held_patch, runaway",
    ),
]


@pytest.mark.parametrize(("override", "message"), KINDS)
def test_unknown_kind_suggests_fix(override, message):
    with pytest.raises(RecipeError) as excinfo:
        parse(overrides=(override,))
    assert str(excinfo.value) == f"--set {override} (recipe r.yaml): {message}"


DISTRIBUTION_FORMS = (
    "write a number or one of {uniform: [low, high]}, {loguniform: [low, high]}, "
    "{normal: [mean, std]}, {choice: [a, b, ...]}"
)
BAD_DISTRIBUTIONS = [
    (
        "{loguniform: [-5, 3]}",
        "{'loguniform': [-5, 3]} is invalid: loguniform bounds must satisfy "
        "0 < low <= high, got -5.0, 3.0",
    ),
    (
        "{loguniform: [1]}",
        "{'loguniform': [1]} is invalid: loguniform takes [low, high], got [1]",
    ),
    (
        "{loguniformm: [1, 3]}",
        "{'loguniformm': [1, 3]} is invalid: unknown distribution 'loguniformm' "
        "(did you mean 'loguniform'?)",
    ),
    (
        "{uniform: [3, 1]}",
        "{'uniform': [3, 1]} is invalid: uniform bounds must satisfy low <= high, "
        "got 3.0, 1.0",
    ),
    (
        "fast",
        "'fast' is invalid: it is neither a number nor a one-key distribution mapping",
    ),
]


@pytest.mark.parametrize(("value", "reason"), BAD_DISTRIBUTIONS)
def test_bad_distribution_one_problem(value, reason):
    with pytest.raises(RecipeError) as excinfo:
        parse(overrides=(f"scenarios.0.power_W={value}",))
    where = f"--set scenarios.0.power_W={value} (recipe r.yaml)"
    problem = f"key 'scenarios.0.power_W' = {reason}; {DISTRIBUTION_FORMS}"
    expected = f"{where}: {problem}"
    assert str(excinfo.value) == expected


def test_bad_distribution_counts_other_problems():
    overrides = ("scenarios.0.power_W={loguniform: [1]}", "physics.dt_s=fast")
    with pytest.raises(RecipeError) as excinfo:
        parse(overrides=overrides)
    message = str(excinfo.value)
    assert message.endswith(
        "(1 more problem after this one: key 'scenarios.0.power_W' = "
        "{'loguniform': [1]} is invalid)"
    )
    assert "[_" not in message
    assert "Uniform" not in message


def test_other_problem_names_value_not_key():
    text = MINIMAL.replace("{kind: synthetic, n_frames: 4}", "{kind: arrays, path: a}")
    overrides = ("seed=first", "frames.pattern=null")
    with pytest.raises(RecipeError) as excinfo:
        parse(text, overrides=overrides)
    message = str(excinfo.value)

    assert message.startswith(
        "--set seed=first (recipe r.yaml): key 'seed' = 'first' is invalid"
    )
    assert message.endswith(
        "(1 more problem after this one: key 'frames.pattern' = None is invalid)"
    )
    assert "invalid key" not in message


def test_other_problem_names_unknown_kind():
    overrides = ("physics.dt_s=fast", "scenarios.0.kind=hotpsot")
    with pytest.raises(RecipeError) as excinfo:
        parse(overrides=overrides)

    assert str(excinfo.value).endswith(
        "(1 more problem after this one: unknown kind 'hotpsot' at key "
        "'scenarios.0.kind')"
    )


def test_further_problems_named_up_to_five():
    overrides = [f"extra{i}=1" for i in range(7)]
    with pytest.raises(RecipeError) as excinfo:
        parse(overrides=(*overrides, "physics.dt_s=fast"))
    message = str(excinfo.value)

    assert message.startswith("--set extra0=1 (recipe r.yaml): unknown key 'extra0'")
    assert message.endswith(
        "(7 more problems after this one: unknown key 'extra1', unknown key "
        "'extra2', unknown key 'extra3', unknown key 'extra4', unknown key "
        "'extra5' and 2 more)"
    )


def test_misspelled_override_key_names_the_override():
    with pytest.raises(RecipeError) as excinfo:
        parse(overrides=("split.test_anomolous=3",))

    assert str(excinfo.value).startswith(
        "--set split.test_anomolous=3 (recipe r.yaml): unknown key "
        "'split.test_anomolous'; did you mean 'test_anomalous'?"
    )


def test_empty_scenario_list_plain_message():
    with pytest.raises(RecipeError) as excinfo:
        parse(overrides=("scenarios=[]",))
    assert str(excinfo.value) == (
        "--set scenarios=[] (recipe r.yaml): key 'scenarios' = [] is invalid: it "
        "has 0 items but needs at "
        "least 1 item; fix it in the recipe or with --set scenarios=..."
    )


def test_override_glob_stays_string():
    loaded = parse(overrides=("output.dir=*.bmp",))
    assert loaded.recipe.output.dir == Path("/tmp/*.bmp")


def test_override_anchor_stays_string():
    loaded = parse(overrides=("output.dir=&out",))
    assert loaded.recipe.output.dir == Path("/tmp/&out")


def test_override_invalid_yaml_stays_string():
    loaded = parse(overrides=("output.dir=a: b: c",))
    assert loaded.recipe.output.dir == Path("/tmp/a: b: c")


def test_override_yaml11_boolean_words_stay_strings():
    loaded = parse(overrides=("bank.mode=off", "output.hdf5=no"))

    assert loaded.recipe.bank.mode == "off"
    assert loaded.recipe.output.hdf5 is False
    assert "mode: 'off'" in loaded.text
    assert "hdf5: 'no'" in loaded.text


def test_override_still_parses_yaml():
    corners = "registration.corners_px=[[0, 0], [9, 0], [9, 9], [0, 9]]"
    overrides = ("physics.dt_s=2", "registration.method=corners", corners)
    recipe = parse(overrides=overrides).recipe
    assert recipe.physics.dt_s == 2.0
    assert recipe.registration.corners_px == [(0, 0), (9, 0), (9, 9), (0, 9)]


def test_override_broken_mapping_one_line():
    with pytest.raises(RecipeError) as excinfo:
        parse(overrides=("scenarios.0.power_W={uniform: [1, 2]",))
    assert str(excinfo.value) == (
        "--set 'scenarios.0.power_W={uniform: [1, 2]': the value is not valid YAML "
        "(expected ',' or '}', but got '<stream end>' at line 1, column 17); check "
        "the brackets and commas, or quote the value to keep it a string"
    )


def test_missing_frame_folder_names_key(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        MINIMAL.replace(
            "{kind: synthetic, n_frames: 4}", "{kind: images, path: nowhere}"
        )
    )
    with pytest.raises(
        RecipeError, match=r"key 'frames\.path': file or folder not found: .*nowhere"
    ):
        load_recipe(recipe)


def test_frame_path_loses_dot_dot_parts(tmp_path):
    (tmp_path / "frames").mkdir()
    (tmp_path / "recipes").mkdir()
    recipe = tmp_path / "recipes" / "r.yaml"
    recipe.write_text(
        MINIMAL.replace(
            "{kind: synthetic, n_frames: 4}", "{kind: images, path: ../frames}"
        )
    )

    assert load_recipe(recipe).recipe.frames.path == tmp_path / "frames"


def test_frame_path_keeps_dot_dot_through_a_link(tmp_path):
    # recipes/ links to deep/down/, so recipes/../frames is deep/frames,
    # not the frames/ that dropping "recipes/.." would name.
    (tmp_path / "deep" / "down").mkdir(parents=True)
    (tmp_path / "deep" / "frames").mkdir()
    (tmp_path / "frames").mkdir()
    (tmp_path / "recipes").symlink_to(tmp_path / "deep" / "down")
    recipe = tmp_path / "recipes" / "r.yaml"
    recipe.write_text(
        MINIMAL.replace(
            "{kind: synthetic, n_frames: 4}", "{kind: images, path: ../frames}"
        )
    )

    path = load_recipe(recipe).recipe.frames.path

    assert path.resolve() == (tmp_path / "deep" / "frames").resolve()


def test_missing_recipe_file():
    with pytest.raises(RecipeError, match="recipe file not found: /no/such.yaml"):
        load_recipe("/no/such.yaml")


def test_folder_as_recipe_names_the_folder(tmp_path):
    with pytest.raises(RecipeError, match="is a folder, not a recipe file"):
        load_recipe(tmp_path)


def test_binary_file_as_recipe_rejected(data_dir):
    image = data_dir / "pouch-cell-flir-screen" / "id1_cha_1c" / "1211.png"

    with pytest.raises(RecipeError) as excinfo:
        load_recipe(image)

    assert str(excinfo.value) == (
        f"{image} is not a YAML recipe because it is not UTF-8 text (byte 0 is "
        "invalid), so it may be an image or another binary file; give the path "
        "of a YAML recipe, such as those in recipes/, and name the frames in its "
        "frames.path key"
    )


def test_recipe_paths_expand_home(data_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "data").symlink_to(data_dir)
    station = "~/data/battery-station-inferno"
    overrides = (
        f"frames.path={station}/normal_masked",
        f"frames.valid_mask.CAM1={station}/camera_masks/MASK_CAM1_thermal.png",
        "output.dir=~/out/station",
        "bank.path=~/bank.h5",
    )

    loaded = load_recipe(RECIPES / "battery-station-inferno.yaml", overrides=overrides)

    recipe = loaded.recipe
    station_dir = data_dir / "battery-station-inferno"
    mask = station_dir / "camera_masks" / "MASK_CAM1_thermal.png"
    assert recipe.frames.path.samefile(station_dir / "normal_masked")
    assert recipe.frames.valid_mask["CAM1"].samefile(mask)
    assert recipe.output.dir == tmp_path / "out" / "station"
    assert recipe.bank.path == tmp_path / "bank.h5"


def test_invalid_yaml():
    with pytest.raises(RecipeError) as excinfo:
        parse("frames: [unclosed")
    assert str(excinfo.value) == (
        "r.yaml: not valid YAML: expected ',' or ']', but got '<stream end>' at "
        "line 1, column 18; check the indentation (spaces, not tabs), colons and "
        "brackets on that line and the line above it"
    )


def test_misindented_shipped_recipe(tmp_path):
    lines = (RECIPES / "battery-station-inferno.yaml").read_text().splitlines()
    row = lines.index("  gap_mm: 4.0")
    lines[row] = " gap_mm: 4.0"
    recipe = tmp_path / "station.yaml"
    recipe.write_text("\n".join(lines))

    with pytest.raises(RecipeError) as excinfo:
        load_recipe(recipe)

    message = str(excinfo.value)
    assert message.startswith(f"{recipe}: not valid YAML: ")
    assert f" at line {row + 1}, column 2; check the indentation" in message
    assert "\n" not in message


def test_recipe_must_be_mapping():
    with pytest.raises(RecipeError, match="a recipe must be a mapping"):
        parse("- just a list")


@pytest.mark.parametrize(
    ("text", "contents"),
    [
        ("", "is empty"),
        ("  \n\n", "is empty"),
        ("# frames: to do\n\n  # layout\n", "contains only comments"),
    ],
)
def test_empty_recipe_says_so(text, contents):
    with pytest.raises(RecipeError) as excinfo:
        parse(text)
    assert str(excinfo.value) == (
        f"r.yaml: the recipe file {contents}; a recipe needs at least the keys "
        "frames, layout and scenarios, as in the example recipes in the "
        "recipes/ folder"
    )


@pytest.mark.parametrize("text", ["---\n", "null\n"])
def test_null_document_not_called_empty(text):
    with pytest.raises(RecipeError) as excinfo:
        parse(text)
    assert str(excinfo.value).endswith("got an empty document (null)")


def test_override_sets_nested_value():
    loaded = parse(overrides=("scenarios.0.radius_mm={uniform: [1, 2]}", "seed=5"))
    assert loaded.recipe.seed == 5
    assert loaded.recipe.scenarios[0].radius_mm == Uniform(uniform=(1.0, 2.0))
    assert "seed: 5" in loaded.text


def test_override_changes_hash():
    assert parse().sha256 != parse(overrides=("seed=5",)).sha256


def test_override_without_equals_rejected():
    with pytest.raises(
        RecipeError, match=r"--set 'seed' is invalid; write it as key\.path=value"
    ):
        parse(overrides=("seed",))


def test_override_bad_list_index():
    with pytest.raises(
        RecipeError, match=r"'3' is not an index or a unique name of a list of 1 items"
    ):
        parse(overrides=("scenarios.3.power_W=1",))
    with pytest.raises(
        RecipeError, match=r"items in .*; use 0, or add a scenario to the recipe file$"
    ):
        parse(overrides=("scenarios.3.power_W=1",))


def test_override_list_index_names_range():
    with pytest.raises(RecipeError) as raised:
        load_demo_recipe(overrides=["scenarios.5.power_W=1"])

    assert str(raised.value) == (
        "--set scenarios.5: '5' is not an index or a unique name of a list of 2 "
        "items in <demo>; use a name (internal_short, tab_overheating) or an "
        "index (0..1), or add a scenario to the recipe file"
    )


def test_override_unknown_scenario_name_lists_names():
    with pytest.raises(RecipeError) as raised:
        load_demo_recipe(overrides=["scenarios.hot_spot.power_W=1"])

    message = str(raised.value)
    assert message.startswith("--set scenarios.hot_spot: 'hot_spot' is not an index")
    assert "use a name (internal_short, tab_overheating) or an index (0..1)" in message


def test_override_error_keeps_scenario_name():
    with pytest.raises(RecipeError) as raised:
        load_demo_recipe(overrides=["scenarios.tab_overheating.current_A=-3"])

    message = str(raised.value)
    assert "key 'scenarios.tab_overheating.current_A' = -3 is invalid" in message
    assert message.endswith("with --set scenarios.tab_overheating.current_A=...")
    assert "scenarios.1." not in message


def test_override_addresses_scenario_by_name():
    loaded = load_demo_recipe(overrides=["scenarios.tab_overheating.weight=2"])

    assert loaded.recipe.scenarios[1].name == "tab_overheating"
    assert loaded.recipe.scenarios[1].weight == 2
    assert loaded.recipe.scenarios[0].weight == 1


def test_distribution_for_number_key():
    with pytest.raises(RecipeError) as raised:
        load_demo_recipe(overrides=["physics.dt_s={uniform: [1, 2]}"])

    message = str(raised.value)
    assert message.startswith(
        "--set physics.dt_s={uniform: [1, 2]} (recipe <demo>): key 'physics.dt_s' "
        "= {'uniform': [1, 2]} is "
    )
    assert "this key takes one value, not a section or a distribution" in message
    assert message.endswith("with --set physics.dt_s=...")
    assert "section 'physics.dt_s'" not in message


def test_palette_mode_needs_palette(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        MINIMAL.replace(
            "{kind: synthetic, n_frames: 4}",
            f"{{kind: images, path: {tmp_path}, mode: palette}}",
        )
    )
    with pytest.raises(RecipeError, match="mode 'palette' needs frames.palette"):
        load_recipe(recipe)


def test_corners_method_needs_four_corners():
    with pytest.raises(RecipeError, match="method 'corners' needs corners_px"):
        parse(overrides=("registration.method=corners",))


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("-400", "above absolute zero, -273.15 C"),
        (".nan", "above absolute zero, -273.15 C"),
        ("298.15", "in degrees Celsius and at most 200; convert a value in kelvin"),
    ],
)
def test_ambient_checked_at_load(value, reason):
    with pytest.raises(
        RecipeError, match=r"key 'physics\.ambient_C' = .* is invalid"
    ) as info:
        parse(overrides=(f"physics.ambient_C={value}",))
    assert reason in str(info.value)


def test_ambient_of_an_oven_test_accepted():
    recipe = parse(overrides=("physics.ambient_C=200",)).recipe
    assert recipe.physics.ambient_C == 200.0


def test_section_check_names_section_not_its_contents():
    with pytest.raises(RecipeError) as excinfo:
        parse(
            overrides=(
                "scenarios.0={kind: joule, name: tabs, current_A: 5, "
                "resistance_mohm: 2, strip_width_mm: 10}",
            )
        )

    where, _, message = str(excinfo.value).partition(" (recipe r.yaml): ")
    assert where.startswith("--set scenarios.0={kind: joule")
    assert message.endswith(
        "section 'scenarios.0' (kind 'joule', name 'tabs') is invalid: "
        "strip_width_mm applies to region 'one_strip' only, but region is "
        "'tabs'; remove strip_width_mm or set region: one_strip; fix it in the "
        "recipe or with --set scenarios.0.KEY=VALUE"
    )
    assert "current_A" not in message


def test_duplicate_top_level_key_rejected():
    text = MINIMAL + "physics: {dt_s: 2.0}\nphysics: {h_top_W_m2K: 9.0}\n"

    with pytest.raises(RecipeError) as excinfo:
        parse(text)

    message = str(excinfo.value)
    assert "key 'physics' appears twice in one mapping" in message
    assert "line 9" in message


@pytest.mark.parametrize(
    ("fps", "window_s", "problem"),
    [
        (0.01, 50.0, "shorter than one frame interval (1 / fps = 100 s)"),
        (1000.0, 90.0, "90000 frames per sequence, more than 10000"),
    ],
)
def test_sequence_frame_count_checked(fps, window_s, problem):
    overrides = (f"sequence={{fps: {fps}, window_s: {window_s}}}",)

    with pytest.raises(RecipeError) as excinfo:
        parse(overrides=overrides)

    assert problem in str(excinfo.value)


def test_sequence_one_frame_accepted():
    sequence = parse(overrides=("sequence={fps: 0.5, window_s: 2.0}",)).recipe.sequence

    assert sequence is not None
    assert sequence.window_s * sequence.fps == 1.0


def test_output_dir_tidied_before_it_exists(tmp_path):
    (tmp_path / "recipes").mkdir()
    path = tmp_path / "recipes" / "r.yaml"
    path.write_text(MINIMAL + "output: {dir: ../out/new/run}\n")

    recipe = load_recipe(path).recipe

    assert recipe.output.dir == tmp_path / "out" / "new" / "run"
    assert ".." not in recipe.output.dir.parts


def test_unhashable_key_is_yaml_error():
    with pytest.raises(RecipeError, match="found unhashable key at line 2"):
        parse("a: 1\n? [1, 2]\n: 3\n")


def size_warnings(caplog, *overrides: str) -> list[str]:
    """Parse MINIMAL (grid spacing 2 mm) and return the load's size warnings."""
    with caplog.at_level(logging.WARNING, logger=LOADING):
        parse(overrides=overrides)
    return [r.getMessage() for r in caplog.records if r.name == LOADING]


def test_radius_below_half_cell_warns(caplog):
    messages = size_warnings(caplog, "scenarios.0.radius_mm=0.8")

    assert messages == [
        "r.yaml: scenarios.0.radius_mm = 0.8 mm is less than half the grid "
        "spacing (layout.resolution_mm = 2 mm), so the source of scenario "
        "'hotspot' can be narrower than one grid cell, and the simulation widens "
        "it to a whole cell or column; raise scenarios.0.radius_mm or lower "
        "layout.resolution_mm"
    ]


def test_radius_distribution_below_half_cell_warns(caplog):
    messages = size_warnings(
        caplog,
        "scenarios.0.radius_mm={uniform: [0.5, 4.0]}",
        "scenarios.0.name=short",
    )

    assert len(messages) == 1
    assert messages[0].startswith(
        "r.yaml: scenarios.0.radius_mm = {'uniform': (0.5, 4.0)} can be 0.5 mm, "
        "less than half the grid spacing (layout.resolution_mm = 2 mm), so the "
        "source of scenario 'short' can be narrower"
    )


def test_strip_narrower_than_cell_warns(caplog):
    scenarios = (
        "scenarios=[{kind: hotspot, power_W: 1.0, radius_mm: 0.9}, {kind: joule, "
        "region: one_strip, current_A: 5, resistance_mohm: 2, strip_width_mm: 1.5}]"
    )
    messages = size_warnings(caplog, scenarios)

    assert len(messages) == 2
    assert messages[0].startswith("r.yaml: scenarios.0.radius_mm = 0.9 mm is less")
    assert messages[1].startswith(
        "r.yaml: scenarios.1.strip_width_mm = 1.5 mm is less than the grid spacing"
    )
    assert messages[1].endswith(
        "raise scenarios.1.strip_width_mm or lower layout.resolution_mm"
    )


@pytest.mark.parametrize(
    "overrides",
    [
        (),
        ("scenarios.0.radius_mm=1.0",),  # exactly half a grid cell
        ("scenarios.0.radius_mm=0.6", "layout.resolution_mm=1.0"),
    ],
)
def test_resolved_source_no_warning(caplog, overrides):
    assert size_warnings(caplog, *overrides) == []


def test_demo_sources_do_not_warn(caplog):
    with caplog.at_level(logging.WARNING, logger=LOADING):
        load_demo_recipe()

    assert not [r for r in caplog.records if r.name == LOADING]


RECIPES = Path(__file__).resolve().parents[2] / "recipes"


@pytest.mark.parametrize("name", sorted(path.name for path in RECIPES.glob("*.yaml")))
def test_shipped_recipe_loads(name):
    loaded = load_recipe(RECIPES / name)

    assert loaded.recipe.scenarios
    assert type(loaded.recipe.physics.ambient_C) is float


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"seed": 4},
            "overrides must be a list of 'key.path=value' strings, got a dict "
            "{'seed': 4}; pass ['seed=4']",
        ),
        (
            "seed=4",
            "overrides must be a list of 'key.path=value' strings, got a str "
            "'seed=4'; pass a list such as ['seed=4']",
        ),
        (
            [("seed", 4)],
            "overrides must be a list of 'key.path=value' strings, but it contains "
            "the tuple ('seed', 4); write each override as a string such as 'seed=4'",
        ),
    ],
)
def test_overrides_wrong_type_rejected(overrides, message):
    with pytest.raises(TypeError) as raised:
        load_recipe(RECIPES / "flir-pouch-cell.yaml", overrides=overrides)

    assert str(raised.value) == message


def test_empty_ignore_rect_names_key():
    rects = "[[0, 0, 4, 4], [10, 10, 5, 5]]"
    text = MINIMAL.replace(
        "frames: {kind: synthetic, n_frames: 4}",
        f"frames: {{kind: images, path: /tmp, ignore_rects: {rects}}}",
    )
    message = (
        "r.yaml: key 'frames.ignore_rects.1' = [10, 10, 5, 5] is invalid: ignore "
        "rectangle (10, 10, 5, 5) is empty; it needs x0 < x1 and y0 < y1; fix it in "
        "the recipe or with --set frames.ignore_rects.1=..."
    )

    with pytest.raises(RecipeError) as raised:
        parse(text)

    assert str(raised.value) == message


def test_separator_short_below_ambient_warns(caplog):
    runaway = (
        "scenarios=[{kind: runaway, power_W: 50, radius_mm: 5, duration_s: 30, "
        "separator_short_C: 20, separator_short_energy_J: 1000, "
        "separator_short_s: 10}]"
    )
    with caplog.at_level(logging.WARNING, logger=LOADING):
        load_demo_recipe(overrides=[runaway, "physics.ambient_C=25"])

    messages = [r.getMessage() for r in caplog.records if r.name == LOADING]
    assert messages == [
        "<demo>: scenarios.0.separator_short_C = 20 C is at or below "
        "physics.ambient_C = 25 C, so every cell shorts at t = 0; give the "
        "separator's failure temperature, about 130 C for polyethylene"
    ]


def test_frames_faster_than_dt_warn(caplog):
    overrides = ["physics.dt_s=5", "sequence={fps: 20, window_s: 90}"]
    with caplog.at_level(logging.WARNING, logger=LOADING):
        load_demo_recipe(overrides=overrides)

    messages = [r.getMessage() for r in caplog.records if r.name == LOADING]
    assert messages == [
        "<demo>: sequence.fps = 20 s-1 puts frames 0.05 s apart, less than "
        "physics.dt_s = 5 s, so the solver's steps shrink to 0.05 s to end on "
        "each of the 1800 frames; lower sequence.fps if the sequence needs "
        "fewer frames"
    ]


def test_frames_at_dt_do_not_warn(caplog):
    overrides = ["physics.dt_s=5", "sequence={fps: 0.2, window_s: 90}"]
    with caplog.at_level(logging.WARNING, logger=LOADING):
        load_demo_recipe(overrides=overrides)

    assert not [r for r in caplog.records if r.name == LOADING]


def test_dict_recipe_matches_text(tmp_path):
    from_text = parse(MINIMAL).recipe

    loaded = load_recipe(yaml.safe_load(MINIMAL), base_dir=Path("/tmp"))

    assert loaded.source == "<dict>"
    assert loaded.recipe == from_text
    assert yaml.safe_load(loaded.text) == yaml.safe_load(MINIMAL)


def test_dict_recipe_paths_start_at_base_dir(tmp_path, monkeypatch):
    data = yaml.safe_load(MINIMAL)

    with_base = load_recipe(data, base_dir=tmp_path / "base").recipe
    monkeypatch.chdir(tmp_path)
    in_cwd = load_recipe(data).recipe

    assert with_base.output.dir == tmp_path / "base" / "thermosynth-output"
    assert in_cwd.output.dir == tmp_path / "thermosynth-output"
    assert with_base.bank.path == tmp_path / "base" / "thermosynth-bank.h5"
    assert in_cwd.bank.path == tmp_path / "thermosynth-bank.h5"
    data["frames"] = {"kind": "images", "path": "frames"}
    message = rf"file or folder not found: {tmp_path}/frames; .* start at base_dir"
    with pytest.raises(RecipeError, match=message):
        load_recipe(data)


def test_dict_recipe_typo_suggests_fix():
    data = yaml.safe_load(MINIMAL)
    data["scenarios"][0]["radius_m"] = data["scenarios"][0].pop("radius_mm")

    message = r"<dict>: unknown key 'scenarios.0.radius_m'; did you mean"
    with pytest.raises(RecipeError, match=message):
        load_recipe(data)


def test_dict_recipe_paths_and_numpy_values(tmp_path):
    data = yaml.safe_load(MINIMAL)
    data["seed"] = np.int64(5)
    data["output"] = {"dir": tmp_path / "out"}

    recipe = load_recipe(data).recipe

    assert recipe.seed == 5
    assert recipe.output.dir == tmp_path / "out"
    data["seed"] = object()
    message = r"<dict>: key 'seed': the value <object object .* YAML"
    with pytest.raises(RecipeError, match=message):
        load_recipe(data)


def test_dict_recipe_array_value_names_key(data_dir):
    path = (
        data_dir / "radiometric-samples" / "decoded_celsius" / "FLIR_T640_celsius.npy"
    )
    data = yaml.safe_load(MINIMAL)
    data["frames"] = {"kind": "arrays", "path": np.load(path), "unit": "C"}

    with pytest.raises(RecipeError) as info:
        load_recipe(data)

    message = str(info.value)
    shape = np.load(path, mmap_mode="r").shape
    assert message.startswith(
        f"<dict>: key 'frames.path': the value ndarray of shape {shape}, "
    )
    assert "cannot be written as YAML; save the array with np.save" in message
    assert "frames.kind: arrays" in message
    assert "[[" not in message
    assert len(message) < 250
    assert info.value.keys == (("frames", "path"),)


def test_dict_recipe_value_in_list_names_index():
    data = yaml.safe_load(MINIMAL)
    data["scenarios"][0]["power_W"] = 1.0 + 2.0j

    with pytest.raises(RecipeError) as info:
        load_recipe(data)

    assert str(info.value) == (
        "<dict>: key 'scenarios.0.power_W': the value (1+2j) (complex) cannot "
        "be written as YAML; give strings, numbers, bools, lists and dicts"
    )
    assert info.value.keys == (("scenarios", "0", "power_W"),)


def test_yaml_text_as_path_rejected():
    recipe = Path(__file__).resolve().parents[2] / "recipes" / "flir-pouch-cell.yaml"
    text = recipe.read_text()

    with pytest.raises(RecipeError) as info:
        load_recipe(text)
    with pytest.raises(RecipeError, match="^got YAML text, not a path"):
        load_recipe(text, base_dir="/tmp")

    message = str(info.value)
    assert message.startswith("got YAML text, not a path (it starts '")
    assert message.endswith(
        "; pass the recipe's path, or a dict from yaml.safe_load(text)"
    )
    assert len(message) < 200


def test_loaded_recipe_records_its_folder(tmp_path, monkeypatch):
    (tmp_path / "recipes").mkdir()
    (tmp_path / "recipes" / "r.yaml").write_text(MINIMAL)
    monkeypatch.chdir(tmp_path)

    from_file = load_recipe("recipes/r.yaml")
    from_dict = load_recipe(yaml.safe_load(MINIMAL), base_dir="base")
    in_cwd = load_recipe(yaml.safe_load(MINIMAL))

    assert from_file.base_dir == tmp_path / "recipes"
    assert from_dict.base_dir == tmp_path / "base"
    assert in_cwd.base_dir == tmp_path


def test_base_dir_with_file_rejected(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(MINIMAL)

    with pytest.raises(ValueError, match="base_dir = '/tmp' applies only to a dict"):
        load_recipe(path, base_dir="/tmp")


def test_missing_relative_recipe_shows_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    message = rf"not found: recipes/x.yaml \(looked for {tmp_path}/recipes/x.yaml\)"
    with pytest.raises(RecipeError, match=message):
        load_recipe("recipes/x.yaml")


EXPONENT_NUMBERS = [("2.4e6", 2.4e6), ("1e-3", 1e-3), ("1E+6", 1e6), ("-3e2", -300.0)]


@pytest.mark.parametrize(("text", "number"), EXPONENT_NUMBERS)
def test_exponent_number_in_file_is_float(tmp_path, text, number):
    path = tmp_path / "r.yaml"
    path.write_text(MINIMAL + f"materials:\n  cell: {{rho_cp_J_m3K: {text}}}\n")
    value = load_recipe(path).recipe.materials["cell"]["rho_cp_J_m3K"]
    assert isinstance(value, float)
    assert value == number


@pytest.mark.parametrize(("text", "number"), EXPONENT_NUMBERS)
def test_exponent_number_in_override_is_float(text, number):
    loaded = parse(overrides=(f"materials.cell.rho_cp_J_m3K={text}",))
    value = loaded.recipe.materials["cell"]["rho_cp_J_m3K"]
    assert isinstance(value, float)
    assert value == number
    assert f"rho_cp_J_m3K: {number!r}" in loaded.text


def test_exponent_time_step_override():
    assert parse(overrides=("physics.dt_s=1e-3",)).recipe.physics.dt_s == 1e-3


def test_exponent_heat_capacity_in_file(tmp_path):
    path = tmp_path / "r.yaml"
    materials = "materials:\n  cell: {base: pouch_cell, rho_cp_J_m3K: 2.4e6}\n"
    path.write_text(load_demo_recipe().text + materials)
    recipe = load_recipe(path).recipe

    layout = build_layout(recipe.layout, recipe.materials)
    cell = next(m for m in layout.materials if m.name == "cell")
    assert cell.rho_cp_J_m3K == 2.4e6


def test_dot_inf_and_nan_unchanged():
    with pytest.raises(RecipeError, match=r"'physics\.dt_s' = inf is invalid"):
        parse(overrides=("physics.dt_s=.inf",))
    with pytest.raises(RecipeError, match=r"'physics\.dt_s' = nan is invalid"):
        parse(overrides=("physics.dt_s=.nan",))


PRISMATIC = {
    "kind": "prismatic_cell", "width_mm": 60, "height_mm": 40, "thickness_mm": 12,
    "terminal_width_mm": 10, "terminal_height_mm": 4, "terminal_inset_mm": 6,
    "casing_mm": 2, "resolution_mm": 2, "stack_layers": 4,
}  # fmt: skip


def stacked_demo(**physics: int) -> dict:
    """Return the demo recipe as a dict on a stacked prismatic cell."""
    text = resources.files("thermosynth.recipes").joinpath("demo.yaml").read_text()
    data = yaml.safe_load(text)
    data["layout"] = dict(PRISMATIC)
    data["physics"].pop("n_layers", None)
    data["physics"].update(physics)
    return data


def test_stack_sets_physics_layers():
    assert load_recipe(stacked_demo()).recipe.physics.n_layers == 6
    assert load_recipe(stacked_demo(n_layers=6)).recipe.physics.n_layers == 6


def test_stack_without_walls_sets_layers():
    data = stacked_demo()
    data["layout"]["wall_mm"] = 0

    assert load_recipe(data).recipe.physics.n_layers == 4


def test_stack_rejects_other_physics_layers():
    message = (
        r"<dict>: key 'physics.n_layers' = 3, but layout.stack_layers = 4 stack "
        r"layers plus 2 wall layers make 6 simulation layers; leave "
        r"physics.n_layers out or set it to 6"
    )
    with pytest.raises(RecipeError, match=message):
        load_recipe(stacked_demo(n_layers=3))


def test_stack_and_physics_share_layer_cap():
    deep = stacked_demo()
    deep["layout"]["stack_layers"] = 62
    too_deep = stacked_demo()
    too_deep["layout"]["stack_layers"] = 63
    message = (
        r"<dict>: layout.stack_layers = 63 stack layers plus 2 wall layers make "
        r"65 simulation layers, more than the maximum of 64; set "
        r"layout.stack_layers to 62 or less"
    )

    assert load_recipe(deep).recipe.physics.n_layers == 64
    with pytest.raises(RecipeError, match=message):
        load_recipe(too_deep)
    assert parse(overrides=("physics.n_layers=64",)).recipe.physics.n_layers == 64
    with pytest.raises(RecipeError, match="physics.n_layers"):
        parse(overrides=("physics.n_layers=65",))


def test_stack_recorded_in_physics():
    loaded = load_recipe(stacked_demo())
    layout = build_layout(loaded.recipe.layout, loaded.recipe.materials, n_layers=6)

    physics = resolved_physics(loaded.recipe, layout)

    assert physics["n_layers"] == 6
    assert physics["layer_thickness_mm"] == pytest.approx([0.8, *[10.4 / 4] * 4, 0.8])
    assert physics["materials"]["casing_aluminium"]["k_x_W_mK"] == 154.0


def test_set_error_quotes_set_as_typed():
    overrides = ["scenarios.1.current_A=-3", "scenarios.tab_overheating.weight=2"]
    with pytest.raises(RecipeError) as raised:
        load_demo_recipe(overrides=overrides)

    message = str(raised.value)
    assert message.startswith(
        "--set scenarios.1.current_A=-3 (recipe <demo>): key "
        "'scenarios.tab_overheating.current_A' = -3 is invalid"
    )


@pytest.mark.parametrize(
    ("overrides", "blamed"),
    [
        (("physics.dt_s=fast", "physics={dt_s: slow}"), "physics={dt_s: slow}"),
        (("physics={dt_s: 1}", "physics.dt_s=fast"), "physics.dt_s=fast"),
    ],
)
def test_set_error_names_last_writer(overrides, blamed):
    with pytest.raises(RecipeError) as excinfo:
        parse(overrides=overrides)

    assert str(excinfo.value).startswith(f"--set {blamed} (recipe r.yaml): key ")


def test_set_frame_path_not_found_names_set(tmp_path):
    override = "frames={kind: images, path: nowhere}"
    with pytest.raises(RecipeError) as excinfo:
        parse_recipe(MINIMAL, source="r.yaml", base_dir=tmp_path, overrides=[override])

    assert str(excinfo.value).startswith(
        f"--set {override} (recipe r.yaml): key 'frames.path': file or folder not "
        f"found: {tmp_path / 'nowhere'}; fix the path"
    )


def test_file_path_not_found_names_file(tmp_path):
    text = MINIMAL.replace("{kind: synthetic, n_frames: 4}", "{kind: images, path: a}")
    with pytest.raises(RecipeError) as excinfo:
        parse_recipe(text, source="r.yaml", base_dir=tmp_path, overrides=["seed=3"])

    assert str(excinfo.value).startswith(
        f"r.yaml: key 'frames.path': file or folder not found: {tmp_path / 'a'}"
    )


def test_path_error_in_plain_words(tmp_path):
    with pytest.raises(RecipeError) as error:
        parse_recipe(
            MINIMAL, source="r.yaml", base_dir=tmp_path, overrides=["output.dir="]
        )

    assert "key 'output.dir' = None is invalid: it should be a file or folder path" in (
        str(error.value)
    )
    assert "pathlib" not in str(error.value)
