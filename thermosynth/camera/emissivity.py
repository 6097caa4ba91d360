"""Surface emissivity per frame pixel, from the emissivities of layout regions."""

from __future__ import annotations

import cv2
import numpy as np

from thermosynth.camera.model import Camera
from thermosynth.geometry.layout import Layout, require_regions
from thermosynth.geometry.registration import footprint


def check_emissivity_regions(camera: Camera, layout: Layout) -> None:
    """Raise RecipeError if ``camera.emissivity_regions`` names a missing region.

    Parameters
    ----------
    camera : Camera
        Camera whose ``emissivity_regions`` are checked.
    layout : Layout
        Layout whose ``regions`` the names must come from.
    """
    require_regions(layout, camera.emissivity_regions, key="camera.emissivity_regions")


def emissivity_map(
    camera: Camera,
    layout: Layout,
    homography: np.ndarray,
    frame_shape: tuple[int, int],
) -> np.ndarray | None:
    """Place the emissivities of ``camera.emissivity_regions`` on frame pixels.

    Each region's mask is warped to the frame with ``homography`` by nearest
    neighbour, and its pixels take the region's emissivity. Regions are
    painted in the mapping's order, so where regions overlap the later entry
    wins. Pixels of no listed region, and pixels outside the layout's
    `footprint`, keep ``camera.emissivity_surface``.

    Parameters
    ----------
    camera : Camera
        Camera with the region emissivities, in (0, 1].
    layout : Layout
        Layout whose ``regions`` are named.
    homography : ndarray
        (3, 3) map from layout indices to frame pixels, the one that warps the
        rise.
    frame_shape : (int, int)
        Frame size (H, W) [px].

    Returns
    -------
    ndarray or None
        Surface emissivity per pixel, float64 (H, W), for
        ``record_rise(..., emissivity_map=...)``; None where
        ``camera.emissivity_regions`` is empty, so that the recording stays
        that of one emissivity.

    Raises
    ------
    RecipeError
        If a region name is not among the layout's regions.
    """
    if not camera.emissivity_regions:
        return None
    check_emissivity_regions(camera, layout)

    height, width = frame_shape
    covered = footprint(layout, homography, frame_shape)
    emissivity = np.full(frame_shape, camera.emissivity_surface, dtype=np.float64)
    for name, value in camera.emissivity_regions.items():
        region_px = cv2.warpPerspective(
            layout.regions[name].astype(np.uint8),
            np.asarray(homography, dtype=np.float64),
            (width, height),
            flags=cv2.INTER_NEAREST,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=0,
        )
        emissivity[(region_px > 0) & covered] = value
    return emissivity
