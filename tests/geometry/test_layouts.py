"""Tests for thermosynth.geometry.layouts."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from thermosynth.errors import LayoutError
from thermosynth.geometry.layouts import (
    PV_MODULE_60_CELL,
    cell_grid,
    cylindrical_array,
    from_mask,
    module,
    pouch_cell,
    prismatic_cell,
)
from thermosynth.geometry.materials import DEFAULT_MATERIALS, material_from_spec


def material_names(layout):
    """Return the material name of every grid cell, (ny, nx)."""
    names = np.array([m.name for m in layout.materials])
    return names[layout.material_id]


def pouch(**overrides):
    kwargs = dict(
        width_mm=100,
        height_mm=200,
        thickness_mm=5,
        tab_width_mm=20,
        tab_length_mm=20,
        resolution_mm=5,
    )
    return pouch_cell(**{**kwargs, **overrides})


def test_pouch_extent_and_body():
    layout = pouch()
    assert layout.shape == (44, 20)
    assert layout.width_mm == pytest.approx(100)
    assert layout.height_mm == pytest.approx(220)
    assert (layout.cell_id == 0).sum() == 40 * 20
    assert np.all(layout.cell_id[4:] == 0)


def test_pouch_tabs_region_size():
    layout = pouch()
    tabs = layout.regions["tabs"]
    assert tabs.sum() == 2 * 4 * 4
    assert np.array_equal(np.nonzero(tabs[0])[0], [3, 4, 5, 6, 13, 14, 15, 16])
    names = material_names(layout)
    assert np.all(names[layout.regions["tab_positive"]] == "aluminium")
    assert np.all(names[layout.regions["tab_negative"]] == "copper")


def test_pouch_background_beside_tabs():
    layout = pouch()
    background = layout.regions["background"]
    assert background.sum() == 4 * 20 - 32
    assert not np.any(background & layout.regions["tabs"])
    assert np.all(material_names(layout)[background] == "air")
    assert np.all(layout.cell_id[background] == -1)


def test_pouch_custom_material_and_centres():
    pad = material_from_spec("nickel_tab", {"base": "copper", "k_in_plane_W_mK": 90})
    layout = pouch(tab_centres_mm=(15, 50), materials={"tab_negative": pad})
    assert np.all(
        material_names(layout)[layout.regions["tab_negative"]] == "nickel_tab"
    )
    assert np.array_equal(
        np.nonzero(layout.regions["tabs"][0])[0], [1, 2, 3, 4, 8, 9, 10, 11]
    )


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"width_mm": -1}, r"width_mm = -1 is invalid"),
        ({"resolution_mm": 0}, r"resolution_mm = 0 is invalid"),
        ({"tab_width_mm": 2}, r"tab_width_mm = 2 mm is narrower than one grid cell"),
        ({"tab_centres_mm": (5, 50)}, r"sticks out of the cell width"),
        ({"tab_centres_mm": (40, 50)}, r"so the tabs overlap"),
        (
            {"materials": {"tab": DEFAULT_MATERIALS["copper"]}},
            r"unknown role\(s\) \['tab'\]",
        ),
        (
            {"materials": {"cell": "pouch_cell"}},
            r"materials\['cell'\] = 'pouch_cell' is not a Material",
        ),
    ],
)
def test_pouch_errors(overrides, match):
    with pytest.raises(LayoutError, match=match):
        pouch(**overrides)


def prismatic(**overrides):
    kwargs = dict(
        width_mm=100,
        height_mm=60,
        thickness_mm=20,
        terminal_width_mm=16,
        terminal_height_mm=10,
        terminal_inset_mm=10,
        casing_mm=2,
        wall_mm=2,
        resolution_mm=2,
    )
    return prismatic_cell(**{**kwargs, **overrides})


def test_prismatic_terminals_and_casing():
    layout = prismatic()
    assert layout.shape == (35, 50)
    terminals = layout.regions["terminals"]
    assert terminals.sum() == 2 * 8 * 5
    assert np.array_equal(np.nonzero(terminals[0])[0], [*range(5, 13), *range(37, 45)])
    casing = layout.regions["casing"]
    assert casing.sum() == 50 * 30 - 48 * 28
    assert np.all(material_names(layout)[casing] == "casing_aluminium")
    assert (layout.cell_id == 0).sum() == 48 * 28


def body_material(layout):
    """Return the one material of the grid cells of cell 0."""
    ids = np.unique(layout.material_id[layout.cell_id == 0])
    assert ids.size == 1
    return layout.materials[ids[0]]


def test_prismatic_body_mixes_can_walls():
    # 20 mm cell, two 2 mm aluminium walls around 16 mm of stack.
    body = body_material(prismatic())
    assert body.name == "prismatic_cell+2x2mm_casing_aluminium"
    assert body.k_x_W_mK == pytest.approx((26.6 * 16 + 154 * 4) / 20, rel=1e-14)
    assert body.k_y_W_mK == body.k_x_W_mK
    assert body.k_z_W_mK == pytest.approx(20 / (16 / 0.52 + 4 / 154), rel=1e-14)
    stack_rho_cp = DEFAULT_MATERIALS["prismatic_cell"].rho_cp_J_m3K
    expected_rho_cp = (stack_rho_cp * 16 + 2730 * 893 * 4) / 20
    assert body.rho_cp_J_m3K == pytest.approx(expected_rho_cp, rel=1e-14)


def test_prismatic_cabinet_body_values():
    # The cell of recipes/radiometric-cabinet.yaml: 27 mm thick, a 3 mm rim
    # and the default 0.8 mm walls around 25.4 mm of stack.
    layout = prismatic_cell(
        width_mm=150,
        height_mm=100,
        thickness_mm=27,
        terminal_width_mm=20,
        terminal_height_mm=12,
        terminal_inset_mm=20,
        casing_mm=3,
        resolution_mm=3,
    )
    body = body_material(layout)
    assert body.name == "prismatic_cell+2x0.8mm_casing_aluminium"
    assert body.k_x_W_mK == pytest.approx((26.6 * 25.4 + 154 * 1.6) / 27, rel=1e-12)
    assert body.k_z_W_mK == pytest.approx(27 / (25.4 / 0.52 + 1.6 / 154), rel=1e-12)


def test_prismatic_walls_as_layers():
    layout = prismatic(stack_layers=4)
    assert layout.n_layers == 6
    assert body_material(layout).name == "prismatic_cell"
    np.testing.assert_allclose(layout.layer_thickness_mm(6), [2, 4, 4, 4, 4, 2])

    can = layout.regions["can"]
    assert can.sum() == 50 * 30
    k_x = layout.layer_property_map("k_x_W_mK", 6)
    assert np.all(k_x[0][can] == 154.0)
    assert np.all(k_x[-1][can] == 154.0)
    # Terminals and air above the face keep their material in the wall layers.
    np.testing.assert_array_equal(k_x[0][~can], layout.property_map("k_x_W_mK")[~can])
    assert np.all(k_x[1][layout.cell_id == 0] == 26.6)


def test_prismatic_without_walls_as_layers():
    layout = prismatic(wall_mm=0, stack_layers=3)
    assert layout.n_layers == 3
    np.testing.assert_allclose(layout.layer_thickness_mm(3), [20 / 3] * 3)


@pytest.mark.parametrize("stack_layers", [0, 2.0, True])
def test_prismatic_invalid_stack_layers(stack_layers):
    with pytest.raises(LayoutError, match="stack_layers = .* is invalid"):
        prismatic(stack_layers=stack_layers)


def test_prismatic_steel_can_walls():
    steel = DEFAULT_MATERIALS["casing_steel"]
    layout = prismatic(materials={"casing": steel})
    body = body_material(layout)
    assert body.name == "prismatic_cell+2x2mm_casing_steel"
    assert body.k_x_W_mK == pytest.approx((26.6 * 16 + 14.9 * 4) / 20, rel=1e-14)
    casing = layout.regions["casing"]
    assert np.all(material_names(layout)[casing] == "casing_steel")


def test_prismatic_stack_role_is_mixed():
    stack = material_from_spec("stack", {"base": "prismatic_cell", "k_x_W_mK": 40})
    body = body_material(prismatic(materials={"cell": stack}))
    assert body.name == "stack+2x2mm_casing_aluminium"
    assert body.k_x_W_mK == pytest.approx((40 * 16 + 154 * 4) / 20, rel=1e-14)
    assert body.k_y_W_mK == pytest.approx((26.6 * 16 + 154 * 4) / 20, rel=1e-14)


def test_prismatic_wall_thinner_than_the_rim():
    body = body_material(prismatic(casing_mm=2, wall_mm=0.8))
    bare = body_material(prismatic(casing_mm=2, wall_mm=0))

    assert body.name == "prismatic_cell+2x0.8mm_casing_aluminium"
    assert body.k_x_W_mK == pytest.approx((26.6 * 18.4 + 154 * 1.6) / 20, rel=1e-14)
    assert bare is DEFAULT_MATERIALS["prismatic_cell"]


def test_prismatic_without_casing():
    layout = prismatic(casing_mm=0, wall_mm=0)
    assert "casing" not in layout.regions or not layout.regions["casing"].any()
    assert (layout.cell_id == 0).sum() == 50 * 30
    assert body_material(layout) is DEFAULT_MATERIALS["prismatic_cell"]


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"terminal_inset_mm": 40}, r"terminal_inset_mm = 40 .* overlap or leave"),
        ({"casing_mm": 1}, r"casing_mm = 1 mm is narrower than one grid cell"),
        ({"casing_mm": 30}, r"casing_mm = 30 leaves a cell body 0 mm across"),
        (
            {"wall_mm": 10},
            r"wall_mm = 10: the can's .* use wall_mm < thickness_mm / 2 = 10",
        ),
        ({"wall_mm": -0.5}, r"wall_mm = -0.5 is invalid"),
        (
            {"thickness_mm": 4},
            r"wall_mm = 2: .* 4 mm together, fill the cell thickness_mm = 4",
        ),
        ({"terminal_inset_mm": -1}, r"terminal_inset_mm = -1 is invalid"),
    ],
)
def test_prismatic_errors(overrides, match):
    with pytest.raises(LayoutError, match=match):
        prismatic(**overrides)


def test_cylindrical_count_and_disc_area():
    layout = cylindrical_array(
        rows=3, cols=4, diameter_mm=18, pitch_mm=20, thickness_mm=65, resolution_mm=0.5
    )
    ids, counts = np.unique(layout.cell_id[layout.cell_id >= 0], return_counts=True)
    assert np.array_equal(ids, np.arange(12))
    disc_area = np.pi * 9.0**2
    areas = counts * layout.dx_mm * layout.dy_mm
    assert np.all(np.abs(areas / disc_area - 1) < 0.05)
    gaps = layout.regions["gaps"]
    assert np.array_equal(gaps, layout.cell_id == -1)
    assert np.all(material_names(layout)[gaps] == "air")


def test_cylindrical_ids_row_major():
    layout = cylindrical_array(
        rows=2, cols=3, diameter_mm=10, pitch_mm=12, thickness_mm=65, resolution_mm=1
    )
    assert layout.shape == (24, 36)
    assert layout.cell_id[6, 30] == 2
    assert layout.cell_id[18, 6] == 3


def test_cylindrical_filler():
    layout = cylindrical_array(
        rows=1,
        cols=2,
        diameter_mm=10,
        pitch_mm=12,
        thickness_mm=65,
        resolution_mm=1,
        filler="potting",
    )
    assert np.all(material_names(layout)[layout.regions["gaps"]] == "potting")


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"pitch_mm": 17}, r"pitch_mm = 17 is smaller than diameter_mm = 18, so"),
        ({"resolution_mm": 20}, r"diameter_mm = 18 mm is narrower than one grid cell"),
        ({"rows": 0}, r"rows = 0 is invalid"),
        ({"filler": "foam"}, r"material 'foam' for role 'filler'"),
    ],
)
def test_cylindrical_errors(overrides, match):
    kwargs = dict(
        rows=2, cols=2, diameter_mm=18, pitch_mm=20, thickness_mm=65, resolution_mm=1
    )
    with pytest.raises(LayoutError, match=match):
        cylindrical_array(**{**kwargs, **overrides})


def test_module_gap_columns_carry_gap_material():
    layout = module(
        n_cells=4,
        cell_width_mm=20,
        cell_height_mm=30,
        thickness_mm=5,
        gap_mm=2,
        resolution_mm=1,
    )
    assert layout.shape == (30, 86)
    names = material_names(layout)
    for i in range(3):
        gap_columns = slice(20 + 22 * i, 22 + 22 * i)
        assert np.all(names[:, gap_columns] == "thermal_pad")
        assert np.all(layout.regions["gaps"][:, gap_columns])
    assert layout.regions["gaps"].sum() == 3 * 2 * 30
    ids, counts = np.unique(layout.cell_id[layout.cell_id >= 0], return_counts=True)
    assert np.array_equal(ids, np.arange(4))
    assert np.all(counts == 20 * 30)


def test_module_busbar_strip():
    layout = module(
        n_cells=3,
        cell_width_mm=20,
        cell_height_mm=30,
        thickness_mm=5,
        gap_mm=2,
        gap_material="air",
        busbar_mm=4,
        resolution_mm=1,
    )
    busbars = layout.regions["busbars"]
    assert layout.shape == (34, 64)
    assert busbars.sum() == 4 * 64
    assert np.all(busbars[:4])
    assert np.all(material_names(layout)[busbars] == "copper")
    assert np.all(material_names(layout)[layout.regions["gaps"]] == "air")
    assert not np.any(busbars & layout.regions["gaps"])


def test_module_touching_cells():
    layout = module(
        n_cells=2,
        cell_width_mm=10,
        cell_height_mm=10,
        thickness_mm=5,
        gap_mm=0,
        resolution_mm=1,
    )
    assert not np.any(layout.cell_id == -1)
    assert "gaps" not in layout.regions


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"gap_mm": -1}, r"gap_mm = -1 is invalid because cells overlap"),
        ({"gap_mm": 0.5}, r"gap_mm = 0.5 mm is narrower than one grid cell"),
        ({"cell_width_mm": 0.5}, r"cell_width_mm = 0.5 mm is narrower"),
        ({"n_cells": 2.5}, r"n_cells = 2.5 is invalid"),
        ({"busbar_mm": -2}, r"busbar_mm = -2 is invalid"),
    ],
)
def test_module_errors(overrides, match):
    kwargs = dict(
        n_cells=3,
        cell_width_mm=20,
        cell_height_mm=30,
        thickness_mm=5,
        gap_mm=2,
        resolution_mm=1,
    )
    with pytest.raises(LayoutError, match=match):
        module(**{**kwargs, **overrides})


def test_cell_grid_pv_default():
    layout = cell_grid(**PV_MODULE_60_CELL)
    assert layout.shape == (203, 123)
    assert layout.width_mm == pytest.approx(984)
    assert layout.height_mm == pytest.approx(1624)
    ids, counts = np.unique(layout.cell_id[layout.cell_id >= 0], return_counts=True)
    assert np.array_equal(ids, np.arange(60))
    assert np.all(counts == 19 * 19)
    names = material_names(layout)
    assert np.all(names[layout.cell_id >= 0] == "pv_laminate")
    assert np.all(names[layout.cell_id < 0] == "pv_laminate_gap")


def test_cell_grid_regions_partition():
    layout = cell_grid(
        rows=2,
        cols=3,
        cell_width_mm=10,
        cell_height_mm=8,
        gap_mm=2,
        thickness_mm=4,
        border_mm=1,
        resolution_mm=1,
    )
    assert layout.shape == (20, 36)
    gaps, border = layout.regions["gaps"], layout.regions["border"]
    assert border.sum() == 20 * 36 - 18 * 34
    assert gaps.sum() == 18 * 34 - 6 * 80
    assert np.array_equal(gaps | border, layout.cell_id == -1)
    assert layout.cell_id[1, 1] == 0
    assert layout.cell_id[18, 34] == 5


def test_cell_grid_resolution_too_coarse():
    with pytest.raises(
        LayoutError, match=r"gap_mm = 3 mm is narrower than one grid cell"
    ):
        cell_grid(
            rows=10,
            cols=6,
            cell_width_mm=156,
            cell_height_mm=156,
            gap_mm=3,
            thickness_mm=4.6,
            resolution_mm=8,
        )


def test_from_mask_components(tmp_path):
    mask = np.zeros((20, 30), np.uint8)
    mask[2:8, 2:12] = 255
    mask[2:8, 16:28] = 255
    mask[12:18, 2:28] = 255
    path = tmp_path / "cells.png"
    cv2.imwrite(str(path), mask)
    layout = from_mask(path, width_mm=60, height_mm=40, resolution_mm=2, thickness_mm=3)
    assert layout.shape == (20, 30)
    ids, counts = np.unique(layout.cell_id[layout.cell_id >= 0], return_counts=True)
    assert np.array_equal(ids, [0, 1, 2])
    assert sorted(counts) == [60, 72, 156]
    assert np.array_equal(layout.regions["gaps"], mask == 0)


def test_from_mask_resizes_nearest():
    mask = np.zeros((10, 10), bool)
    mask[:, :5] = True
    layout = from_mask(mask, width_mm=20, height_mm=20, resolution_mm=1, thickness_mm=3)
    assert layout.shape == (20, 20)
    assert np.all(layout.cell_id[:, :10] == 0)
    assert np.all(layout.cell_id[:, 10:] == -1)


def test_from_mask_real_camera_mask(data_dir):
    path = data_dir / "battery-station-inferno/camera_masks/MASK_CAM1_thermal.png"
    layout = from_mask(
        path, width_mm=80, height_mm=60, resolution_mm=1, thickness_mm=10
    )
    assert (layout.cell_id >= 0).sum() == 2618


def test_from_mask_errors(tmp_path):
    with pytest.raises(LayoutError, match=r"cannot be read as an image"):
        from_mask(
            tmp_path / "missing.png",
            width_mm=1,
            height_mm=1,
            resolution_mm=0.1,
            thickness_mm=1,
        )
    with pytest.raises(LayoutError, match=r"no non-zero pixel"):
        from_mask(
            np.zeros((5, 5)), width_mm=1, height_mm=1, resolution_mm=0.1, thickness_mm=1
        )
    with pytest.raises(LayoutError, match=r"height_mm = 0 is invalid"):
        from_mask(
            np.ones((5, 5)), width_mm=1, height_mm=0, resolution_mm=0.1, thickness_mm=1
        )


def test_from_mask_missing_file_only_own_error(tmp_path, capfd):
    with pytest.raises(LayoutError, match=r"cannot be read as an image"):
        from_mask(
            tmp_path / "missing.png",
            width_mm=1,
            height_mm=1,
            resolution_mm=0.1,
            thickness_mm=1,
        )

    assert capfd.readouterr().err == ""
