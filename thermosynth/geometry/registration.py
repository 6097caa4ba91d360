"""Registration of a layout to a frame: homographies, quads and warping.

Conventions: a layout grid cell ``(row, col)`` has its centre at index
coordinates ``(x, y) = (col, row)``, so the layout rectangle's outer corners
are at ``(-0.5, -0.5)`` and ``(nx - 0.5, ny - 0.5)``. Frame pixel centres are
at integer ``(x, y)`` as in OpenCV, so a pixel covers ``x - 0.5 .. x + 0.5``.
Quads are (4, 2) arrays of ``(x, y)`` in the order top-left, top-right,
bottom-right, bottom-left, which runs clockwise on the image.
"""

from __future__ import annotations

import logging

import cv2
import numpy as np

from thermosynth.errors import LayoutError
from thermosynth.geometry.layout import Layout
from thermosynth.geometry.sampling import samples_per_pixel, warp_plane, warp_samples

__all__ = [
    "check_fits",
    "corners_homography",
    "footprint",
    "quad_from_mask",
    "quad_from_warm_region",
    "warp_to_frame",
]

logger = logging.getLogger(__name__)

# Smallest quad area [px^2] accepted as non-degenerate.
_MIN_AREA_PX2 = 1.0


def corners_homography(
    layout: Layout,
    corners_px: np.ndarray,
    *,
    box: tuple[int, int, int, int] | None = None,
) -> np.ndarray:
    """Compute the homography from layout grid indices to frame pixels.

    Parameters
    ----------
    layout : Layout
        Layout whose outer rectangle is mapped.
    corners_px : array_like
        (4, 2) frame positions ``(x, y)`` [px] of the layout rectangle's outer
        corners, in the order top-left, top-right, bottom-right, bottom-left.
    box : tuple of int, optional
        ``(row_start, row_stop, col_start, col_stop)``, a half-open block of
        grid cells whose outer corners ``corners_px`` give instead, such as
        the cells' bounding box from `cells_box`. None means the whole grid.

    Returns
    -------
    ndarray
        (3, 3) float64 matrix ``H`` with ``H @ (col, row, 1)`` proportional to
        ``(x, y, 1)``, normalised so that ``H[2, 2] == 1``. It is the matrix
        that `cv2.warpPerspective` takes to warp a layout field to the frame.

    Raises
    ------
    LayoutError
        If ``corners_px`` is not (4, 2), not finite, not convex, ordered
        anticlockwise on the image, or of (near) zero area.
    """
    corners = _check_quad(corners_px, "corners_px")
    r0, r1, c0, c1 = (
        box if box is not None else (0, *layout.shape[:1], 0, layout.shape[1])
    )
    source = np.array(
        [
            [c0 - 0.5, r0 - 0.5],
            [c1 - 0.5, r0 - 0.5],
            [c1 - 0.5, r1 - 0.5],
            [c0 - 0.5, r1 - 0.5],
        ]
    )
    return _homography_from_points(source, corners)


def cells_box(layout: Layout) -> tuple[int, int, int, int]:
    """Return the half-open grid block ``(r0, r1, c0, c1)`` that holds all cells.

    Automatic registration finds the battery's warm or masked body in a
    frame, which excludes tabs, terminals and the air beside them.
    """
    return _box(layout, layout.cell_id >= 0)


def body_box(layout: Layout) -> tuple[int, int, int, int]:
    """Return the half-open grid block ``(r0, r1, c0, c1)`` of the cells and casing.

    For a ``prismatic_cell`` this is the can's outer edge, rim included; for
    layouts without a ``casing`` region it equals `cells_box`.
    """
    body = layout.cell_id >= 0
    casing = layout.regions.get("casing")
    return _box(layout, body if casing is None else body | casing)


def _box(layout: Layout, inside: np.ndarray) -> tuple[int, int, int, int]:
    rows, cols = np.nonzero(inside)
    if rows.size == 0:
        raise LayoutError(f"layout {layout.name!r} has no cells to register")
    return int(rows.min()), int(rows.max()) + 1, int(cols.min()), int(cols.max()) + 1


def _homography_from_points(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Solve the 8 x 8 system of four point pairs in float64.

    cv2.getPerspectiveTransform rounds its points to float32, which moves
    mapped corners by up to about 1e-4 px on large frames.
    """
    a = np.zeros((8, 8))
    b = np.zeros(8)
    for i, ((u, v), (x, y)) in enumerate(zip(source, target, strict=True)):
        a[2 * i] = [u, v, 1, 0, 0, 0, -u * x, -v * x]
        a[2 * i + 1] = [0, 0, 0, u, v, 1, -u * y, -v * y]
        b[2 * i], b[2 * i + 1] = x, y

    h = np.linalg.solve(a, b)
    return np.append(h, 1.0).reshape(3, 3)


def _check_quad(corners_px: np.ndarray, name: str) -> np.ndarray:
    corners = np.asarray(corners_px, dtype=float)
    if corners.shape != (4, 2):
        raise LayoutError(
            f"{name} has shape {corners.shape}; give (4, 2) positions (x, y) "
            "ordered top-left, top-right, bottom-right, bottom-left"
        )
    if not np.all(np.isfinite(corners)):
        raise LayoutError(f"{name} = {corners.tolist()} contains non-finite values")

    edges = np.roll(corners, -1, axis=0) - corners
    turns = (
        edges[:, 0] * np.roll(edges, -1, axis=0)[:, 1]
        - edges[:, 1] * np.roll(edges, -1, axis=0)[:, 0]
    )
    if _polygon_area(corners) < _MIN_AREA_PX2 or np.any(turns <= 0):
        raise LayoutError(
            f"{name} = {corners.tolist()} is not a convex quadrilateral of "
            "positive area ordered top-left, top-right, bottom-right, "
            "bottom-left (clockwise on the image); fix the corner order or "
            "positions"
        )
    return corners


def _polygon_area(points: np.ndarray) -> float:
    """Return the signed shoelace area, positive when clockwise on an image."""
    x, y = points[:, 0], points[:, 1]
    return 0.5 * float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))


def quad_from_mask(mask: np.ndarray) -> np.ndarray:
    """Fit a quadrilateral to the largest connected region of a mask.

    The convex hull of the region's pixel squares is simplified with
    `cv2.approxPolyDP`, raising the tolerance until four corners remain. If
    no tolerance gives four, the minimum-area rotated rectangle is used. Each side is
    then moved onto a line fitted to the region's boundary along it.

    Parameters
    ----------
    mask : ndarray
        Boolean (H, W); non-zero values count as True.

    Returns
    -------
    ndarray
        (4, 2) float64 corners ``(x, y)`` [px], ordered top-left, top-right,
        bottom-right, bottom-left. The sides lie on the outer edges of the
        region's boundary pixels, so the quad's area is close to the pixel
        count of a region that is a quadrilateral.

    Raises
    ------
    LayoutError
        If ``mask`` is not 2D or has no True pixel.
    """
    region = _largest_component(mask)
    boundary = _boundary_points(region)
    hull = _pixel_hull(boundary)
    quad = _order_corners(_approximate_quad(hull))
    return _refine_quad(quad, boundary)


def _largest_component(mask: np.ndarray) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise LayoutError(f"mask has shape {mask.shape}; give a 2D (H, W) mask")
    if not mask.any():
        raise LayoutError("mask has no True pixel, so no quadrilateral can be fitted")

    n, labels, stats, _ = cv2.connectedComponentsWithStats(
        (mask != 0).astype(np.uint8), connectivity=8
    )
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    logger.debug("mask: %d components, largest has %d px", n - 1, stats[largest, 4])
    return labels == largest


def _boundary_points(region: np.ndarray) -> np.ndarray:
    """Return the centres (x, y) of the region's outer boundary pixels."""
    contours, _ = cv2.findContours(
        region.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE
    )
    return np.concatenate(contours).reshape(-1, 2).astype(float)


def _pixel_hull(centres: np.ndarray) -> np.ndarray:
    """Return the convex hull of the pixel squares, float32 (N, 1, 2)."""
    offsets = np.array([[-0.5, -0.5], [0.5, -0.5], [0.5, 0.5], [-0.5, 0.5]])
    corners = (centres[:, None, :] + offsets[None]).reshape(-1, 2)
    return cv2.convexHull(corners.astype(np.float32))


def _approximate_quad(hull: np.ndarray) -> np.ndarray:
    perimeter = cv2.arcLength(hull, closed=True)
    epsilon = 0.005 * perimeter
    while epsilon < 0.5 * perimeter:
        approx = cv2.approxPolyDP(hull, epsilon, closed=True).reshape(-1, 2)
        if len(approx) == 4:
            return approx.astype(float)
        if len(approx) < 4:
            break
        epsilon *= 1.2

    logger.debug("no 4-corner approximation; using the minimum-area rectangle")
    return cv2.boxPoints(cv2.minAreaRect(hull)).astype(float)


def _refine_quad(quad: np.ndarray, boundary: np.ndarray) -> np.ndarray:
    """Move the sides of a quad onto lines fitted to the region's boundary.

    approxPolyDP keeps hull vertices, so its quad cuts off every bulge and
    misses the edge of a slanted staircase. A line fitted to the boundary
    pixel centres along the middle of each side, moved outwards by half a
    pixel onto the pixels' outer edges, follows the side as a whole. The
    fitted quad is kept only if it is convex and no corner moved by more than
    a quarter of the shortest side.
    """
    centre = quad.mean(axis=0)
    lines = []
    for i in range(4):
        line = _fit_side(boundary, quad[i], quad[(i + 1) % 4])
        if line is None:
            return quad
        lines.append(_shift_outwards(line, centre, 0.5))

    refined = np.array([_intersect(lines[i - 1], lines[i]) for i in range(4)])
    shortest = np.min(np.linalg.norm(np.roll(quad, -1, axis=0) - quad, axis=1))
    try:
        _check_quad(refined, "refined quad")
    except LayoutError:
        return quad
    moved = np.linalg.norm(refined - quad, axis=1).max()
    return refined if moved <= 0.25 * shortest else quad


def _fit_side(
    points: np.ndarray, a: np.ndarray, b: np.ndarray
) -> tuple[np.ndarray, np.ndarray] | None:
    """Fit a line to the points near the middle 70 % of side a-b."""
    length = np.linalg.norm(b - a)
    direction = (b - a) / length
    normal = np.array([-direction[1], direction[0]])
    along = (points - a) @ direction / length
    across = np.abs((points - a) @ normal)

    near = (along > 0.15) & (along < 0.85) & (across < max(0.1 * length, 2.0))
    if near.sum() < 2:
        return None
    vx, vy, x0, y0 = cv2.fitLine(
        points[near].astype(np.float32), cv2.DIST_HUBER, 0, 0.01, 0.01
    ).ravel()
    return np.array([x0, y0], dtype=float), np.array([vx, vy], dtype=float)


def _shift_outwards(
    line: tuple[np.ndarray, np.ndarray], centre: np.ndarray, distance: float
) -> tuple[np.ndarray, np.ndarray]:
    point, direction = line
    normal = np.array([direction[1], -direction[0]])
    if (point - centre) @ normal < 0:
        normal = -normal
    return point + distance * normal, direction


def _intersect(
    first: tuple[np.ndarray, np.ndarray], second: tuple[np.ndarray, np.ndarray]
) -> np.ndarray:
    (p, u), (q, v) = first, second
    denominator = _cross(u, v)
    if abs(denominator) < 1e-9:
        return np.full(2, np.nan)
    t = _cross(q - p, v) / denominator
    return p + t * u


def _order_corners(quad: np.ndarray) -> np.ndarray:
    """Order four corners clockwise on the image, starting top-left."""
    centre = quad.mean(axis=0)
    angles = np.arctan2(quad[:, 1] - centre[1], quad[:, 0] - centre[0])
    quad = quad[np.argsort(angles)]

    start = int(np.argmin(quad.sum(axis=1)))
    return np.roll(quad, -start, axis=0)


def quad_from_warm_region(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Fit a quadrilateral to the warm object in a frame.

    Valid pixels above Otsu's threshold on the valid values form the warm
    mask. A 3 x 3 morphological opening removes lines one or two pixels wide
    (cables, crosshairs), then `quad_from_mask` fits its largest component.

    Parameters
    ----------
    values : ndarray
        Float (H, W) frame values, temperature or levels.
    valid : ndarray
        Boolean (H, W), True where ``values`` can be trusted (no overlay).

    Returns
    -------
    ndarray
        (4, 2) corners ``(x, y)`` [px], ordered as in `quad_from_mask`.

    Raises
    ------
    LayoutError
        If the shapes differ, fewer than two distinct valid values exist, or
        no warm pixel survives the opening.
    """
    values = np.asarray(values, dtype=float)
    valid = np.asarray(valid, dtype=bool)
    if values.shape != valid.shape or values.ndim != 2:
        raise LayoutError(
            f"values shape {values.shape} and valid shape {valid.shape} must be "
            "the same 2D (H, W)"
        )
    valid = valid & np.isfinite(values)

    threshold = _otsu_threshold(values[valid])
    above = (valid & (values > threshold)).astype(np.uint8)
    warm = cv2.morphologyEx(above, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    if not warm.any():
        raise LayoutError(
            f"no warm region above the Otsu threshold {threshold:.4g} survives "
            "a 3 x 3 opening; the object may be too small or not warmer than "
            "its surroundings"
        )
    return quad_from_mask(warm > 0)


def _otsu_threshold(samples: np.ndarray, bins: int = 256) -> float:
    """Return the threshold that maximises the between-class variance."""
    if samples.size == 0 or samples.min() == samples.max():
        raise LayoutError(
            "the valid pixels hold fewer than two distinct values, so no warm "
            "region can be separated; check the valid mask"
        )
    counts, edges = np.histogram(samples, bins=bins)
    centres = 0.5 * (edges[:-1] + edges[1:])

    weight_low = np.cumsum(counts)
    weight_high = weight_low[-1] - weight_low
    sum_low = np.cumsum(counts * centres)
    mean_low = sum_low / np.maximum(weight_low, 1)
    mean_high = (sum_low[-1] - sum_low) / np.maximum(weight_high, 1)

    between = weight_low * weight_high * (mean_low - mean_high) ** 2
    return float(edges[int(np.argmax(between)) + 1])


def warp_to_frame(
    field: np.ndarray,
    homography: np.ndarray,
    frame_shape: tuple[int, int],
    *,
    keep_samples: bool = False,
) -> np.ndarray:
    """Warp a field on the layout grid onto frame pixels.

    Parameters
    ----------
    field : ndarray
        (ny, nx) or (n, ny, nx) values on the layout grid, such as a
        temperature rise [K].
    homography : ndarray
        (3, 3) map from layout indices to frame pixels, from
        `corners_homography`.
    frame_shape : (int, int)
        Frame size (H, W) [px].
    keep_samples : bool
        Return each pixel's samples (`warp_samples`) instead of their mean,
        on a new last axis.

    Returns
    -------
    ndarray
        (H, W) or (n, H, W) float, or (H, W, s) or (n, H, W, s) with
        ``keep_samples``. Values are interpolated linearly, with edge values
        repeated up to the layout's outer boundary, and are 0 outside the
        layout's `footprint`. Where a pixel covers more than one layout cell,
        its value is the mean over its area (`warp_plane`), so the field's
        integral is kept whatever a small hot spot's position.

    Raises
    ------
    LayoutError
        On a field that is not 2D or 3D, a homography that is not (3, 3)
        finite, or an invalid frame shape.
    """
    field = np.asarray(field)
    if field.ndim not in (2, 3):
        raise LayoutError(
            f"field has shape {field.shape}; give (ny, nx) or (n, ny, nx)"
        )
    h, w = _check_frame_shape(frame_shape)
    matrix = _check_homography(homography)
    dtype = np.float32 if field.dtype == np.float32 else np.float64

    stack = field.reshape((-1, *field.shape[-2:])).astype(dtype, copy=False)
    covered = _grid_footprint(field.shape[-2:], matrix, (h, w))
    samples = samples_per_pixel(matrix, field.shape[-2:], (h, w))
    warp = warp_samples if keep_samples else warp_plane
    tail = (samples * samples,) if keep_samples else ()
    out = np.empty((stack.shape[0], h, w, *tail), dtype=dtype)
    for i, plane in enumerate(stack):
        out[i] = warp(plane, matrix, (h, w), samples)
    out[:, ~covered] = 0
    return out[0] if field.ndim == 2 else out


def footprint(
    layout: Layout, homography: np.ndarray, frame_shape: tuple[int, int]
) -> np.ndarray:
    """Return the frame pixels whose centres fall on the layout rectangle.

    Parameters
    ----------
    layout : Layout
        Registered layout.
    homography : ndarray
        (3, 3) map from layout indices to frame pixels.
    frame_shape : (int, int)
        Frame size (H, W) [px].

    Returns
    -------
    ndarray
        Boolean (H, W).
    """
    h, w = _check_frame_shape(frame_shape)
    return _grid_footprint(layout.shape, _check_homography(homography), (h, w))


def _grid_footprint(
    grid_shape: tuple[int, int], homography: np.ndarray, frame_shape: tuple[int, int]
) -> np.ndarray:
    ny, nx = grid_shape
    h, w = frame_shape
    y, x = np.mgrid[0:h, 0:w].astype(float)
    pixels = np.stack([x.ravel(), y.ravel(), np.ones(h * w)])

    mapped = np.linalg.inv(homography) @ pixels
    scale = mapped[2]
    # Pixels that map through the plane at infinity (scale <= 0) lie behind
    # the layout's plane and are never covered.
    with np.errstate(divide="ignore", invalid="ignore"):
        col, row = mapped[0] / scale, mapped[1] / scale
    inside = (scale > 0) & (col >= -0.5) & (col <= nx - 0.5)
    inside &= (row >= -0.5) & (row <= ny - 0.5)
    return inside.reshape(h, w)


def check_fits(
    corners_px: np.ndarray,
    frame_shape: tuple[int, int],
    *,
    min_inside: float = 0.5,
    name: str = "corners_px",
) -> None:
    """Raise unless enough of a quad lies inside the frame.

    Parameters
    ----------
    corners_px : array_like
        (4, 2) quad corners ``(x, y)`` [px], ordered as in `corners_homography`.
    frame_shape : (int, int)
        Frame size (H, W) [px]; the frame covers ``-0.5 .. W - 0.5`` in x.
    min_inside : float
        Minimum fraction of the quad's area inside the frame, in (0, 1].
    name : str
        How messages name ``corners_px``, such as a recipe key.

    Raises
    ------
    LayoutError
        If the quad is invalid, or less than ``min_inside`` of its area lies
        inside the frame.
    """
    corners = _check_quad(corners_px, name)
    h, w = _check_frame_shape(frame_shape)
    if not 0 < min_inside <= 1:
        raise LayoutError(
            f"min_inside = {min_inside} is invalid; use a value in (0, 1]"
        )

    frame = np.array(
        [[-0.5, -0.5], [w - 0.5, -0.5], [w - 0.5, h - 0.5], [-0.5, h - 0.5]]
    )
    inside = _polygon_area(_clip_polygon(corners, frame))
    fraction = inside / _polygon_area(corners)
    if fraction < min_inside:
        raise LayoutError(
            f"{name}: only {fraction:.1%} of the layout quad "
            f"{corners.round(2).tolist()} lies inside the {h} x {w} px frame "
            f"(height x width), less than the required {min_inside:.0%}; move "
            "the corners into the frame"
        )


def _clip_polygon(subject: np.ndarray, clip: np.ndarray) -> np.ndarray:
    """Clip a polygon by a convex clockwise polygon (Sutherland-Hodgman)."""
    output = list(subject)
    for a, b in zip(clip, np.roll(clip, -1, axis=0), strict=True):
        edge = b - a
        points, output = output, []
        for p, q in zip(points, points[1:] + points[:1], strict=True):
            p_in = _cross(edge, p - a) >= 0
            q_in = _cross(edge, q - a) >= 0
            if p_in:
                output.append(p)
            if p_in != q_in:
                t = _cross(edge, p - a) / (_cross(edge, p - a) - _cross(edge, q - a))
                output.append(p + t * (q - p))
        if not output:
            return np.zeros((0, 2))
    return np.array(output)


def _cross(u: np.ndarray, v: np.ndarray) -> float:
    return float(u[0] * v[1] - u[1] * v[0])


def _check_frame_shape(frame_shape: tuple[int, int]) -> tuple[int, int]:
    shape = tuple(frame_shape)
    if len(shape) != 2 or any(int(s) != s or s < 1 for s in shape):
        raise LayoutError(
            f"frame_shape = {frame_shape!r} is invalid; give (H, W) as two "
            "positive integers"
        )
    return int(shape[0]), int(shape[1])


def _check_homography(homography: np.ndarray) -> np.ndarray:
    matrix = np.asarray(homography, dtype=float)
    if matrix.shape != (3, 3) or not np.all(np.isfinite(matrix)):
        raise LayoutError(
            f"homography has shape {matrix.shape} or non-finite values; give "
            "the (3, 3) matrix from corners_homography"
        )
    return matrix
