"""Tests for thermosynth.geometry.materials."""

from __future__ import annotations

import pytest

from thermosynth.errors import RecipeError
from thermosynth.geometry.materials import (
    DEFAULT_MATERIALS,
    laminate,
    material_from_spec,
)


def test_defaults_named_by_key():
    for key, material in DEFAULT_MATERIALS.items():
        assert material.name == key


def test_pouch_cell_literature_values():
    pouch = DEFAULT_MATERIALS["pouch_cell"]
    assert pouch.k_x_W_mK == pouch.k_y_W_mK == 26.6
    assert pouch.k_z_W_mK == 0.52
    assert 2.1e6 <= pouch.rho_cp_J_m3K <= 2.4e6 + 0.1e6


def test_cylindrical_cell_radial_in_plane():
    cell = DEFAULT_MATERIALS["cylindrical_cell"]
    assert cell.k_x_W_mK == 0.20
    assert cell.k_z_W_mK == 30.4


def test_metals_and_air():
    assert DEFAULT_MATERIALS["aluminium"].k_x_W_mK == 237.0
    assert DEFAULT_MATERIALS["aluminium"].rho_cp_J_m3K == pytest.approx(
        2.42e6, rel=0.02
    )
    assert DEFAULT_MATERIALS["copper"].rho_cp_J_m3K == pytest.approx(3.45e6, rel=0.02)
    assert DEFAULT_MATERIALS["air"].k_x_W_mK == pytest.approx(0.026, rel=0.02)
    assert DEFAULT_MATERIALS["air"].rho_cp_J_m3K == pytest.approx(1.2e3, rel=0.05)


def test_laminate_parallel_and_series():
    material = laminate("stack", [(1.0, 1.0, 1e6), (1.0, 3.0, 3e6)])
    assert material.k_x_W_mK == pytest.approx(2.0)
    assert material.k_z_W_mK == pytest.approx(1.5)
    assert material.rho_cp_J_m3K == pytest.approx(2e6)


def test_pv_laminate_anisotropic():
    pv = DEFAULT_MATERIALS["pv_laminate"]
    gap = DEFAULT_MATERIALS["pv_laminate_gap"]
    assert pv.k_x_W_mK > 5 * pv.k_z_W_mK
    assert gap.k_x_W_mK < pv.k_x_W_mK


def test_spec_in_plane_and_through():
    spec = {"k_in_plane_W_mK": 26, "k_through_W_mK": 0.5, "rho_cp_J_m3K": 2.36e6}
    material = material_from_spec("my_cell", spec)
    assert material.name == "my_cell"
    assert (material.k_x_W_mK, material.k_y_W_mK) == (26.0, 26.0)
    assert material.k_z_W_mK == 0.5
    assert material.rho_cp_J_m3K == 2.36e6


def test_spec_xyz():
    spec = {"k_x_W_mK": 1, "k_y_W_mK": 2, "k_z_W_mK": 3, "rho_cp_J_m3K": 4e6}
    material = material_from_spec("block", spec)
    assert (material.k_x_W_mK, material.k_y_W_mK, material.k_z_W_mK) == (1, 2, 3)


def test_spec_base_override():
    material = material_from_spec("soft_pouch", {"base": "pouch_cell", "k_z_W_mK": 0.8})
    pouch = DEFAULT_MATERIALS["pouch_cell"]
    assert material.k_z_W_mK == 0.8
    assert material.k_x_W_mK == pouch.k_x_W_mK
    assert material.rho_cp_J_m3K == pouch.rho_cp_J_m3K


def test_spec_none_returns_default():
    assert material_from_spec("copper", None) == DEFAULT_MATERIALS["copper"]


def test_spec_override_default_by_name():
    material = material_from_spec("air", {"k_in_plane_W_mK": 0.03})
    assert material.k_x_W_mK == 0.03
    assert material.k_z_W_mK == DEFAULT_MATERIALS["air"].k_z_W_mK


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ({"k_plane": 3}, r"unknown key\(s\) \['k_plane'\]"),
        ({"base": "pouch_cell", "k_z_W_mK": -1}, r"k_z_W_mK = -1 is invalid"),
        ({"base": "pouch_cell", "k_z_W_mK": "high"}, r"k_z_W_mK = 'high' is invalid"),
        ({"base": "pouch_cell", "rho_cp_J_m3K": float("nan")}, r"rho_cp_J_m3K = nan"),
        ({"base": "unobtainium"}, r"base = 'unobtainium' is not a known material"),
        ({"k_in_plane_W_mK": 3}, r"missing k_z_W_mK, rho_cp_J_m3K"),
        ({"base": "air", "k_in_plane_W_mK": 1, "k_x_W_mK": 2}, r"conflicts with"),
        ({"base": "air", "k_through_W_mK": 1, "k_z_W_mK": 2}, r"conflicts with"),
    ],
)
def test_spec_errors(spec, match):
    with pytest.raises(RecipeError, match=match):
        material_from_spec("thing", spec)
