"""Tests for thermosynth.geometry.registration."""

from __future__ import annotations

from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from thermosynth.build import register
from thermosynth.errors import LayoutError
from thermosynth.geometry.layouts import module, prismatic_cell
from thermosynth.geometry.registration import (
    body_box,
    cells_box,
    check_fits,
    corners_homography,
    footprint,
    quad_from_mask,
    quad_from_warm_region,
    warp_to_frame,
)
from thermosynth.recipe.models import RegistrationSpec

PERSPECTIVE_QUAD = np.array([[14.3, 25.1], [70.2, 2.4], [77.8, 51.6], [7.1, 58.9]])


@pytest.fixture(scope="module")
def layout():
    """A 40 x 30 grid: two 20 mm cells touching, 30 mm high, 1 mm grid."""
    return module(
        n_cells=2,
        cell_width_mm=20,
        cell_height_mm=30,
        thickness_mm=5,
        gap_mm=0,
        resolution_mm=1,
    )


@pytest.fixture(scope="module")
def can():
    """A 60 x 90 mm prismatic cell on a 3 mm grid, with a one-cell rim."""
    return prismatic_cell(
        width_mm=60,
        height_mm=90,
        thickness_mm=20,
        terminal_width_mm=12,
        terminal_height_mm=6,
        terminal_inset_mm=8,
        casing_mm=3,
        resolution_mm=3,
    )


def apply(homography, points):
    points = np.asarray(points, dtype=float)
    mapped = np.c_[points, np.ones(len(points))] @ homography.T
    return mapped[:, :2] / mapped[:, 2:]


def test_homography_maps_outer_corners(layout):
    homography = corners_homography(layout, PERSPECTIVE_QUAD)
    ny, nx = layout.shape
    outer = [[-0.5, -0.5], [nx - 0.5, -0.5], [nx - 0.5, ny - 0.5], [-0.5, ny - 0.5]]
    assert np.max(np.abs(apply(homography, outer) - PERSPECTIVE_QUAD)) < 1e-9
    assert homography[2, 2] == 1.0


def test_homography_affine_centre(layout):
    corners = np.array([[10.0, 5.0], [50.0, 9.0], [56.0, 39.0], [16.0, 35.0]])
    homography = corners_homography(layout, corners)
    ny, nx = layout.shape
    centre = apply(homography, [[(nx - 1) / 2, (ny - 1) / 2]])[0]
    assert np.allclose(centre, corners.mean(axis=0), atol=1e-9)
    assert np.allclose(homography[2], [0, 0, 1], atol=1e-12)


def test_homography_identity_for_matching_frame(layout):
    ny, nx = layout.shape
    corners = [[-0.5, -0.5], [nx - 0.5, -0.5], [nx - 0.5, ny - 0.5], [-0.5, ny - 0.5]]
    assert np.allclose(corners_homography(layout, corners), np.eye(3), atol=1e-12)


@pytest.mark.parametrize(
    ("corners", "match"),
    [
        (np.zeros((3, 2)), r"shape \(3, 2\)"),
        ([[0, 0], [10, 0], [10, np.nan], [0, 10]], r"non-finite"),
        ([[0, 0], [10, 0], [0, 10], [10, 10]], r"not a convex quadrilateral"),
        ([[0, 0], [0, 10], [10, 10], [10, 0]], r"clockwise on the image"),
        ([[0, 0], [10, 0], [20, 0], [30, 0]], r"positive area"),
        ([[0, 0], [10, 0], [6, 3], [0, 10]], r"not a convex quadrilateral"),
    ],
)
def test_homography_rejects_bad_corners(layout, corners, match):
    with pytest.raises(LayoutError, match=match):
        corners_homography(layout, corners)


def test_warp_constant_field(layout):
    homography = corners_homography(layout, PERSPECTIVE_QUAD)
    shape = (60, 80)
    warped = warp_to_frame(np.ones(layout.shape), homography, shape)
    covered = footprint(layout, homography, shape)
    assert warped.shape == shape
    assert np.all(warped[covered] == 1.0)
    assert np.all(warped[~covered] == 0.0)

    polygon = np.zeros(shape, np.uint8)
    cv2.fillPoly(polygon, [np.round(PERSPECTIVE_QUAD).astype(np.int32)], 1)
    far = cv2.dilate(polygon, np.ones((5, 5), np.uint8)) == 0
    assert far.sum() > 1000
    kernel = np.ones((5, 5), np.uint8)
    interior = cv2.erode(polygon, kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0)
    interior = interior > 0
    assert interior.sum() > 1000
    assert np.all(warped[interior] == 1.0)
    assert np.all(warped[far] == 0.0)


def test_footprint_area_matches_quad(layout):
    homography = corners_homography(layout, PERSPECTIVE_QUAD)
    covered = footprint(layout, homography, (60, 80))
    x, y = PERSPECTIVE_QUAD[:, 0], PERSPECTIVE_QUAD[:, 1]
    area = 0.5 * abs(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))
    assert abs(covered.sum() - area) / area < 0.03


def test_warp_identity_preserves_field(layout):
    ny, nx = layout.shape
    corners = [[-0.5, -0.5], [nx - 0.5, -0.5], [nx - 0.5, ny - 0.5], [-0.5, ny - 0.5]]
    field = np.random.default_rng(0).random((ny, nx))
    warped = warp_to_frame(field, corners_homography(layout, corners), (ny + 5, nx + 5))
    assert np.allclose(warped[:ny, :nx], field, atol=1e-6)
    assert np.all(warped[ny:] == 0)
    assert np.all(warped[:, nx:] == 0)


def test_warp_stack_matches_single(layout):
    homography = corners_homography(layout, PERSPECTIVE_QUAD)
    rng = np.random.default_rng(1)
    stack = rng.random((3, *layout.shape)).astype(np.float32)
    warped = warp_to_frame(stack, homography, (60, 80))
    assert warped.shape == (3, 60, 80)
    assert warped.dtype == np.float32
    assert np.array_equal(warped[2], warp_to_frame(stack[2], homography, (60, 80)))


def test_warp_linear_ramp(layout):
    ny, nx = layout.shape
    corners = [
        [-0.5, -0.5],
        [2 * nx - 0.5, -0.5],
        [2 * nx - 0.5, ny - 0.5],
        [-0.5, ny - 0.5],
    ]
    ramp = np.tile(np.arange(nx, dtype=float), (ny, 1))
    warped = warp_to_frame(ramp, corners_homography(layout, corners), (ny, 2 * nx))
    # Frame column x maps to grid column (x - 0.5) / 2.
    x = np.arange(2, 2 * nx - 2)
    assert np.allclose(warped[5, 2 : 2 * nx - 2], (x - 0.5) / 2, atol=1e-4)


def test_warp_errors(layout):
    with pytest.raises(LayoutError, match=r"field has shape \(4,\)"):
        warp_to_frame(np.ones(4), np.eye(3), (10, 10))
    with pytest.raises(LayoutError, match=r"homography has shape \(2, 2\)"):
        warp_to_frame(np.ones((4, 4)), np.eye(2), (10, 10))
    with pytest.raises(LayoutError, match=r"frame_shape = \(10, 0\) is invalid"):
        warp_to_frame(np.ones((4, 4)), np.eye(3), (10, 0))


def test_body_box_takes_in_prismatic_rim(layout, can):
    r0, r1, c0, c1 = cells_box(can)

    assert body_box(can) == (r0 - 1, r1 + 1, c0 - 1, c1 + 1)  # one 3 mm rim cell
    assert body_box(can)[3] - body_box(can)[2] == 20  # 60 mm across
    assert body_box(layout) == cells_box(layout)


def test_check_fits():
    check_fits(PERSPECTIVE_QUAD, (60, 80))
    shifted = PERSPECTIVE_QUAD + [60, 0]
    expected = (
        r"inside the 60 x 80 px frame \(height x width\), less than the required 50%"
    )
    with pytest.raises(LayoutError, match=expected):
        check_fits(shifted, (60, 80))
    check_fits(shifted, (60, 80), min_inside=0.1)
    with pytest.raises(LayoutError, match=r"min_inside = 0 is invalid"):
        check_fits(PERSPECTIVE_QUAD, (60, 80), min_inside=0)


def test_check_fits_half_outside():
    square = np.array([[-10.5, -0.5], [9.5, -0.5], [9.5, 19.5], [-10.5, 19.5]])
    check_fits(square, (40, 40), min_inside=0.5)
    with pytest.raises(LayoutError, match=r"only 50.0%"):
        check_fits(square, (40, 40), min_inside=0.51)


def test_quad_from_mask_synthetic_exact():
    corners = np.array([[10.0, 8.0], [70.0, 14.0], [64.0, 50.0], [6.0, 44.0]])
    mask = np.zeros((60, 80), np.uint8)
    cv2.fillPoly(mask, [corners.astype(np.int32)], 1)
    mask[2, 2] = 1  # a stray pixel that is not the largest component
    quad = quad_from_mask(mask > 0)
    assert np.max(np.linalg.norm(quad - corners, axis=1)) < 1.5


def test_quad_from_mask_rectangle_outer_edges():
    mask = np.zeros((20, 30), bool)
    mask[5:15, 4:24] = True
    quad = quad_from_mask(mask)
    expected = [[3.5, 4.5], [23.5, 4.5], [23.5, 14.5], [3.5, 14.5]]
    assert np.allclose(quad, expected, atol=1e-3)


def test_quad_from_mask_empty():
    with pytest.raises(LayoutError, match=r"mask has no True pixel"):
        quad_from_mask(np.zeros((5, 5), bool))


def polygon_iou(quad, mask):
    polygon = np.zeros(mask.shape, np.uint8)
    cv2.fillPoly(polygon, [np.round(quad * 16).astype(np.int32)], 1, shift=4)
    polygon = polygon > 0
    return (polygon & mask).sum() / (polygon | mask).sum()


@pytest.mark.parametrize("camera", [1, 2])
def test_quad_from_camera_mask(data_dir, camera):
    path = (
        data_dir / f"battery-station-inferno/camera_masks/MASK_CAM{camera}_thermal.png"
    )
    mask = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE) > 0
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8))
    largest = labels == 1 + np.argmax(stats[1:, cv2.CC_STAT_AREA])
    quad = quad_from_mask(mask)
    assert quad.shape == (4, 2)
    assert polygon_iou(quad, largest) > 0.9
    x, y = quad[:, 0], quad[:, 1]
    area = 0.5 * np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y)
    assert abs(area / largest.sum() - 1) < 0.03
    assert quad[0].sum() == quad.sum(axis=1).min()


def test_quad_from_warm_region_pouch_frame(data_dir):
    path = data_dir / "pouch-cell-flir-screen/id1_cha_1c/1230.png"
    values = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE).astype(float)
    valid = np.zeros(values.shape, bool)
    valid[30:210, :295] = True  # leaves out the clock, logo and colour bar
    quad = quad_from_warm_region(values, valid)
    h, w = values.shape
    assert np.all((quad[:, 0] >= 0) & (quad[:, 0] < w))
    assert np.all((quad[:, 1] >= 30) & (quad[:, 1] < 210))
    # The cell spans about x 43..238 and y 100..183 in this frame.
    assert np.allclose(quad.mean(axis=0), [140, 141], atol=10)
    assert 180 < quad[1, 0] - quad[0, 0] < 200


def test_quad_from_warm_region_errors():
    with pytest.raises(LayoutError, match=r"fewer than two distinct values"):
        quad_from_warm_region(np.ones((10, 10)), np.ones((10, 10), bool))
    with pytest.raises(LayoutError, match=r"must be the same 2D"):
        quad_from_warm_region(np.ones((10, 10)), np.ones((10, 9), bool))


@pytest.mark.parametrize("fit", ["cells", "body"])
def test_register_fit_places_box_on_corners(fit, can):
    corners = [[10.0, 12.0], [70.0, 12.0], [70.0, 102.0], [10.0, 102.0]]
    spec = RegistrationSpec(method="corners", fit=fit, corners_px=corners)
    frame = SimpleNamespace(shape=(120, 80))

    homography, _ = register(spec, can, frame)

    r0, r1, c0, c1 = cells_box(can) if fit == "cells" else body_box(can)
    box = [[c0 - 0.5, r0 - 0.5], [c1 - 0.5, r0 - 0.5], [c1 - 0.5, r1 - 0.5]]
    np.testing.assert_allclose(apply(homography, box), corners[:3], atol=1e-9)


def test_cells_fit_leaves_busbar_out():
    layout = module(
        n_cells=3,
        cell_width_mm=20,
        cell_height_mm=30,
        thickness_mm=5,
        gap_mm=2,
        busbar_mm=4,
        resolution_mm=1,
    )

    # The 4 mm strip is rows 0-3, and the cells' box starts below it.
    assert cells_box(layout) == (4, 34, 0, 64)
    assert body_box(layout) == cells_box(layout)
    assert not np.any(layout.regions["busbars"][4:])
