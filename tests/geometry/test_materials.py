"""Tests for thermosynth.geometry.materials."""

from __future__ import annotations

import numpy as np
import pytest

from thermosynth.errors import LayoutError, RecipeError
from thermosynth.geometry.layout import Material
from thermosynth.geometry.materials import (
    DEFAULT_MATERIALS,
    laminate,
    layered_material,
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


def test_casing_aluminium_3003_values():
    can = DEFAULT_MATERIALS["casing_aluminium"]
    assert can.k_x_W_mK == can.k_y_W_mK == can.k_z_W_mK == 154.0
    assert can.rho_cp_J_m3K == 2730.0 * 893.0


# A stack that conducts differently along x, y and z, between two walls.
STACK = Material("stack", 20.0, 10.0, 0.5, 2e6)
WALL = Material("wall", 200.0, 200.0, 100.0, 3e6)


def test_layered_material_hand_values():
    material = layered_material("walled", [(WALL, 1.0), (STACK, 8.0), (WALL, 1.0)])
    assert material.name == "walled"
    assert material.k_x_W_mK == pytest.approx((200 * 2 + 20 * 8) / 10, rel=1e-14)
    assert material.k_y_W_mK == pytest.approx((200 * 2 + 10 * 8) / 10, rel=1e-14)
    assert material.k_z_W_mK == pytest.approx(10 / (2 / 100 + 8 / 0.5), rel=1e-14)
    assert material.rho_cp_J_m3K == pytest.approx(2.2e6, rel=1e-14)


def test_layered_material_order_free():
    split = layered_material("a", [(WALL, 1.0), (STACK, 8.0), (WALL, 1.0)])
    joined = layered_material("a", [(STACK, 8.0), (WALL, 2.0)])
    assert split.k_x_W_mK == pytest.approx(joined.k_x_W_mK, rel=1e-14)
    assert split.k_z_W_mK == pytest.approx(joined.k_z_W_mK, rel=1e-14)


def test_layered_material_one_layer_unchanged():
    material = layered_material("same", [(STACK, 3.0)])
    assert material.k_x_W_mK == pytest.approx(STACK.k_x_W_mK, rel=1e-15)
    assert material.k_y_W_mK == pytest.approx(STACK.k_y_W_mK, rel=1e-15)
    assert material.k_z_W_mK == pytest.approx(STACK.k_z_W_mK, rel=1e-15)
    assert material.rho_cp_J_m3K == pytest.approx(STACK.rho_cp_J_m3K, rel=1e-15)


def test_laminate_matches_layered_material():
    layers = [(1.0, 1.0, 1e6), (2.0, 3.0, 3e6)]
    as_materials = [(Material("l", k, k, k, c), t) for t, k, c in layers]
    assert laminate("x", layers) == layered_material("x", as_materials)


@pytest.mark.parametrize(
    ("layers", "match"),
    [
        ([], r"layered material 'bad': no layers given"),
        ([(STACK, 0.0)], r"layer 'stack' has thickness_mm = 0.0; give a positive"),
        ([(WALL, -1.0)], r"layer 'wall' has thickness_mm = -1.0"),
        ([(WALL, float("nan"))], r"layer 'wall' has thickness_mm = nan"),
    ],
)
def test_layered_material_errors(layers, match):
    with pytest.raises(LayoutError, match=match):
        layered_material("bad", layers)


def resolved_section(layers, *, d_mm, length_mm):
    """Return a FiPy (x, z) section with one row of cells per ``d_mm`` of layer.

    Also returns each cell's (k_x, k_z) and the section's thickness [mm].
    """
    import fipy

    rows = [m for m, t in layers for _ in range(round(t / d_mm))]
    nx = round(length_mm / d_mm)
    mesh = fipy.Grid2D(dx=d_mm * 1e-3, dy=d_mm * 1e-3, nx=nx, ny=len(rows))

    k_x = np.repeat([m.k_x_W_mK for m in rows], nx)
    k_z = np.repeat([m.k_z_W_mK for m in rows], nx)
    return mesh, k_x, k_z, len(rows) * d_mm


def steady_solution(mesh, k_face, hot, cold):
    """Solve div(k grad T) = 0 with T = 1 on ``hot`` faces and 0 on ``cold``."""
    import fipy

    T = fipy.CellVariable(mesh=mesh, value=0.0)
    T.constrain(1.0, hot)
    T.constrain(0.0, cold)
    fipy.DiffusionTerm(coeff=k_face).solve(var=T)
    return np.asarray(T.value)


def face_conductivity(mesh, k_x, k_z):
    """Per face: the harmonic mean of k_x on faces normal to x, of k_z else."""
    import fipy

    along_x = np.abs(np.asarray(mesh.faceNormals[0])) > 0.5
    k_x_face = fipy.CellVariable(mesh=mesh, value=k_x).harmonicFaceValue
    k_z_face = fipy.CellVariable(mesh=mesh, value=k_z).harmonicFaceValue
    value = np.where(along_x, np.asarray(k_x_face), np.asarray(k_z_face))
    return fipy.FaceVariable(mesh=mesh, value=value)


# A 27 mm prismatic cell: an aluminium can wall of 1.5 mm on each face.
CAN_LAYERS = [
    (DEFAULT_MATERIALS["casing_aluminium"], 1.5),
    (DEFAULT_MATERIALS["prismatic_cell"], 24.0),
    (DEFAULT_MATERIALS["casing_aluminium"], 1.5),
]


def test_layered_in_plane_matches_resolved_strip():
    # Steady conduction along a 60 mm strip held at 1 K and 0 K at its ends:
    # the heat per unit depth through the resolved layers must equal the 1-D
    # result k_x T dT / L with the parallel conductivity.
    mesh, k_x, k_z, T_mm = resolved_section(CAN_LAYERS, d_mm=0.5, length_mm=60.0)
    k_face = face_conductivity(mesh, k_x, k_z)
    T = steady_solution(mesh, k_face, mesh.facesLeft, mesh.facesRight)

    nx = round(60.0 / 0.5)
    column = T.reshape(-1, nx)[:, nx // 2 - 1 : nx // 2 + 1]
    q_W_m = np.sum(k_x.reshape(-1, nx)[:, 0] * (column[:, 0] - column[:, 1]))
    expected = layered_material("can", CAN_LAYERS).k_x_W_mK * (T_mm / 60.0)
    assert q_W_m == pytest.approx(expected, rel=1e-6)
    assert expected > 1.5 * DEFAULT_MATERIALS["prismatic_cell"].k_x_W_mK * T_mm / 60


def test_layered_through_matches_resolved_stack():
    # Steady conduction across the thickness held at 1 K and 0 K on its faces:
    # the flux must equal k_z dT / T with the series conductivity.
    mesh, k_x, k_z, T_mm = resolved_section(CAN_LAYERS, d_mm=0.5, length_mm=2.0)
    k_face = face_conductivity(mesh, k_x, k_z)
    T = steady_solution(mesh, k_face, mesh.facesBottom, mesh.facesTop)

    nx = round(2.0 / 0.5)
    profile = T.reshape(-1, nx)[:, 0]
    d_m = 0.5e-3
    # Half a cell from the held face to the first cell centre.
    flux = 2 * k_z.reshape(-1, nx)[0, 0] * (1.0 - profile[0]) / d_m
    expected = layered_material("can", CAN_LAYERS).k_z_W_mK / (T_mm * 1e-3)
    assert flux == pytest.approx(expected, rel=1e-6)


def test_pv_laminate_anisotropic():
    pv = DEFAULT_MATERIALS["pv_laminate"]
    gap = DEFAULT_MATERIALS["pv_laminate_gap"]
    assert pv.k_x_W_mK > 5 * pv.k_z_W_mK
    assert gap.k_x_W_mK < pv.k_x_W_mK


def test_glass_glass_laminate_by_hand():
    glass_glass = DEFAULT_MATERIALS["pv_glass_glass_laminate"]
    total_mm = 3.2 + 0.45 + 3.2

    k_in_plane = (2 * 3.2 * 1.8 + 0.45 * 0.35) / total_mm
    k_through = total_mm / (2 * 3.2 / 1.8 + 0.45 / 0.35)
    rho_cp = (2 * 3.2 * 1.5e6 + 0.45 * 960.0 * 2090.0) / total_mm

    assert glass_glass.k_x_W_mK == pytest.approx(k_in_plane, rel=1e-12)
    assert glass_glass.k_z_W_mK == pytest.approx(k_through, rel=1e-12)
    assert glass_glass.rho_cp_J_m3K == pytest.approx(rho_cp, rel=1e-12)


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


MATERIALS_LOG = "thermosynth.geometry.materials"


def warnings_for(caplog, name, spec):
    caplog.clear()
    with caplog.at_level("WARNING", logger=MATERIALS_LOG):
        material_from_spec(name, spec)
    return [r.getMessage() for r in caplog.records if r.name == MATERIALS_LOG]


def test_specific_heat_as_rho_cp_warns(caplog):
    messages = warnings_for(
        caplog, "cell", {"base": "pouch_cell", "rho_cp_J_m3K": 1100}
    )
    assert messages == [
        "materials.cell.rho_cp_J_m3K = 1100 J m-3 K-1 is outside 500000-5e+06 "
        "J m-3 K-1, the range of solids and liquids (gases, foams and aerogels "
        "are lower); give density times specific heat, not c_p in J kg-1 K-1"
    ]


def test_conductivity_in_milliwatts_warns(caplog):
    spec = {"base": "pouch_cell", "k_in_plane_W_mK": 26600}
    messages = warnings_for(caplog, "cell", spec)
    assert messages == [
        "materials.cell.k_in_plane_W_mK = 26600 W m-1 K-1 is above 2500 "
        "W m-1 K-1, more than any solid conducts (diamond: about 2000); check "
        "that it is in W m-1 K-1, not mW m-1 K-1"
    ]


@pytest.mark.parametrize(
    ("name", "spec"),
    [
        ("air", None),
        ("background", {"base": "air"}),
        ("gap", {"base": "air", "rho_cp_J_m3K": 1200}),
        (
            "background",
            {"k_in_plane_W_mK": 0.03, "k_through_W_mK": 0.03, "rho_cp_J_m3K": 1200},
        ),
        ("cell", {"base": "pouch_cell", "rho_cp_J_m3K": 2.4e6}),
        ("busbar", {"base": "copper", "k_in_plane_W_mK": 401}),
    ],
)
def test_real_materials_do_not_warn(caplog, name, spec):
    assert warnings_for(caplog, name, spec) == []
