"""Which --set item a recipe key came from."""

from __future__ import annotations

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
