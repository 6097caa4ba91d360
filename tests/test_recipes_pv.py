"""The thin-film PV recipe: its layout, its samples and its hot spots' physics."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
from scipy.special import k1

from thermosynth.build import build_layout
from thermosynth.pipeline import generate
from thermosynth.recipe import load_recipe
from thermosynth.scenario import DrawnScenario
from thermosynth.simulation import simulate_scenario

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
THIN_FILM = RECIPES / "pv-thin-film-hotspots.yaml"
# The same plate with the crystalline module's laminate (glass, EVA,
# silicon, EVA, backsheet; 4.6 mm).
CRYSTALLINE = (
    "layout.cell_material=pv_laminate",
    "layout.gap_material=pv_laminate",
    "layout.thickness_mm=4.6",
)
STEFAN_BOLTZMANN_W_M2K4 = 5.670374419e-8


def test_thin_film_layout_one_glass_plate():
    recipe = load_recipe(THIN_FILM).recipe
    layout = build_layout(recipe.layout, recipe.materials)

    assert [m.name for m in layout.materials] == ["pv_glass_glass_laminate"]
    assert np.unique(layout.cell_id[layout.cell_id >= 0]).tolist() == [0]
    assert layout.shape[1] * layout.dx_mm == pytest.approx(600.0)
    assert layout.shape[0] * layout.dy_mm == pytest.approx(1200.0)
    assert layout.regions["border"].sum() == 240 * 120 - 236 * 116


def test_thin_film_generates_spots(data_dir, tmp_path):
    overrides = (
        "split.train_normal=2",
        "split.test_normal=1",
        "split.test_anomalous=4",
        f"output.dir={tmp_path / 'out'}",
        f"bank.path={tmp_path / 'bank.h5'}",
    )
    generate(load_recipe(THIN_FILM, overrides=overrides), progress=False)

    with h5py.File(tmp_path / "out" / "dataset.h5", "r") as h5:
        labels = h5["labels"][:]
        masks = h5["masks"][:].astype(bool)
        meta = [json.loads(raw) for raw in h5["metadata"]]
    anomalous = np.flatnonzero(labels)
    assert labels.tolist() == [0, 0, 0, 1, 1, 1, 1]
    for i in anomalous:
        assert meta[i]["scenario"] in ("shunt_spot", "reverse_bias_spot")
        assert 0.09 <= meta[i]["params"]["power_W"] <= 11.0
        # A spot of 3-10 mm spreads over about 18 mm, on pixels of 25-30 mm.
        assert 1 <= masks[i].sum() <= 60
    assert not masks[labels == 0].any()


def spot_peak_rise_K(overrides: tuple[str, ...]) -> tuple[float, float]:
    """Simulate 2 W in a 5 mm disc for 900 s at the plate's centre.

    Returns the peak rise [K] and the share of the plate's summed rise that
    lies within 25 mm of the peak.
    """
    recipe = load_recipe(THIN_FILM, overrides=overrides).recipe
    layout = build_layout(recipe.layout, recipe.materials)
    params = {"profile": "constant", "radius_mm": 5.0, "layer": "top"}
    params |= {"x_mm": 302.5, "y_mm": 602.5, "power_W": 2.0}
    drawn = DrawnScenario("hotspot", "spot", duration_s=900.0, params=params)
    rise = simulate_scenario(drawn, layout, recipe)[-1]

    row, col = np.unravel_index(np.argmax(rise), rise.shape)
    y, x = np.indices(rise.shape)
    distance_mm = np.hypot((x - col) * layout.dx_mm, (y - row) * layout.dy_mm)
    share = rise[distance_mm <= 25.0].sum() / rise.sum()
    return float(rise.max()), float(share)


def steady_disc_peak_K(k_W_mK: float, thickness_mm: float) -> float:
    """Return the steady centre rise [K] of 2 W in a 5 mm disc on a cooled plate.

    A thin plate cooled on both faces by h (convection plus radiation
    linearised at ambient) with a uniform disc source of radius a rises at
    its centre by P / (pi a^2 h) * (1 - (a / L) K1(a / L)), with the
    spreading length L = sqrt(k t / h).
    """
    ambient_K = 303.15
    radiation = 4 * 0.85 * STEFAN_BOLTZMANN_W_M2K4 * ambient_K**3
    h = 15.0 + 10.0 + 2 * radiation
    a = 5e-3
    x = a / np.sqrt(k_W_mK * thickness_mm * 1e-3 / h)
    return float(2.0 / (np.pi * a**2 * h) * (1.0 - x * k1(x)))


def test_glass_glass_spot_higher_and_narrower():
    glass_peak, glass_share = spot_peak_rise_K(())
    silicon_peak, silicon_share = spot_peak_rise_K(CRYSTALLINE)

    # Without the silicon layer (148 W m-1 K-1, 0.2 mm) the plate conducts
    # 0.0117 W/K in its plane instead of 0.0357 W/K, so the same power
    # rises 2.4 times as high at steady state and stays nearer its source.
    assert glass_peak > 2.0 * silicon_peak
    assert glass_share > 0.5
    assert silicon_share < 0.4

    # At 900 s the peaks are close to steady state. The grid spreads the disc
    # over 5 grid cells of 25 mm2 (125 mm2 against 79 mm2), so both peaks lie
    # a few per cent below the steady analytic centre rise.
    glass_steady = steady_disc_peak_K(1.70474, 6.85)
    silicon_steady = steady_disc_peak_K(7.76848, 4.6)
    assert 0.85 * glass_steady < glass_peak < glass_steady
    assert 0.85 * silicon_steady < silicon_peak < silicon_steady
