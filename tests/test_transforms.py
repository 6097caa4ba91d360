"""Tests for thermosynth.transforms: the core hotspot and its two adapters."""

from __future__ import annotations

import copy
import functools
import math
import multiprocessing
import pickle
import sys
import warnings
from queue import Empty

import cv2
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from thermosynth import transforms
from thermosynth.transforms import ThermalHotspot, to_albumentations, to_torchvision

DTYPES = [torch.uint8, torch.uint16, torch.int16, torch.float32, torch.float64]


RGB_WARNING = "ignore:ThermalHotspot got an image of shape:UserWarning"


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def random_image(dtype: torch.dtype, shape: tuple[int, ...], seed: int) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    if dtype.is_floating_point:
        return torch.from_numpy(rng.uniform(20.0, 40.0, shape)).to(dtype)
    info = torch.iinfo(dtype)
    values = rng.integers(info.min, info.max, shape, endpoint=True)
    return torch.from_numpy(values).to(dtype)


@pytest.mark.filterwarnings(RGB_WARNING)
@settings(max_examples=40, deadline=None)
@given(
    dtype=st.sampled_from(DTYPES),
    channels=st.sampled_from([None, 1, 3]),
    height=st.integers(1, 24),
    width=st.integers(1, 24),
    seed=st.integers(0, 2**32 - 1),
    threshold=st.floats(0.0, 3.0),
    edge=st.sampled_from(["cut", "taper"]),
)
def test_hotspot_properties(dtype, channels, height, width, seed, threshold, edge):
    shape = (height, width) if channels is None else (channels, height, width)
    image = random_image(dtype, shape, seed)
    mask = torch.from_numpy(np.random.default_rng(seed).random((height, width)) < 0.1)
    hotspot = ThermalHotspot(peak_K=(0.0, 6.0), threshold=threshold, edge=edge)

    params = hotspot.make_params(height, width, seeded(seed))
    out = hotspot.apply_image(image, params)
    out_mask = hotspot.apply_mask(mask, params)
    spot = params["rise"] > threshold

    assert out.dtype == image.dtype
    assert out.shape == image.shape
    assert torch.equal(out[..., ~spot], image[..., ~spot])
    assert torch.equal(out_mask, mask | spot)
    offset = threshold if edge == "taper" else 0.0
    expected = image.to(torch.float64) + (params["rise"] - offset)
    if dtype.is_floating_point:
        assert torch.equal(out[..., spot], expected.to(dtype)[..., spot])
    else:
        info = torch.iinfo(dtype)
        clipped = expected.round().clamp(info.min, info.max).to(dtype)
        assert torch.equal(out[..., spot], clipped[..., spot])
    assert bool((out[..., spot].to(torch.float64) >= image[..., spot]).all())


def test_hotspot_reproducible_from_generator():
    image = random_image(torch.uint16, (1, 16, 20), seed=1)
    mask = torch.zeros(16, 20, dtype=torch.bool)
    hotspot = ThermalHotspot(levels_per_kelvin=100.0)

    first = hotspot(image, mask, seeded(5))
    second = hotspot(image, mask, seeded(5))
    other = hotspot(image, mask, seeded(6))

    assert torch.equal(first[0], second[0])
    assert torch.equal(first[1], second[1])
    assert not torch.equal(first[0], other[0])


def test_hotspot_gaussian_peak_value():
    hotspot = ThermalHotspot(
        peak_K=(2.0, 2.0), sigma_px=(3.0, 3.0), levels_per_kelvin=10
    )
    params = hotspot.make_params(30, 40, seeded(0))
    rise = params["rise"]

    cy, cx = params["centre_y_px"], params["centre_x_px"]
    assert float(rise.max()) <= 20.0
    y, x = round(cy), round(cx)
    r2 = (y - cy) ** 2 + (x - cx) ** 2
    assert float(rise[y, x]) == pytest.approx(20.0 * np.exp(-r2 / 18.0), rel=1e-12)


def test_hotspot_probability_zero_keeps_inputs():
    image = random_image(torch.float32, (1, 8, 9), seed=2)
    mask = torch.zeros(8, 9, dtype=torch.uint8)
    generator = seeded(3)
    out, out_mask = ThermalHotspot(p=0.0)(image, mask, generator)

    assert out is image
    assert out_mask is mask
    # Five draws are taken even without a spot, so later draws stay aligned.
    reference = seeded(3)
    torch.rand(5, generator=reference, dtype=torch.float64)
    assert torch.equal(
        torch.rand(3, generator=generator), torch.rand(3, generator=reference)
    )


def test_hotspot_numeric_mask_value():
    mask = torch.zeros(6, 6, dtype=torch.uint8)
    hotspot = ThermalHotspot(peak_K=(5.0, 5.0), sigma_px=(2.0, 2.0), mask_value=255)
    params = hotspot.make_params(6, 6, seeded(0))
    out = hotspot.apply_mask(mask, params)

    assert out.dtype == torch.uint8
    assert set(torch.unique(out).tolist()) <= {0, 255}
    # The default threshold is a tenth of the drawn 5 K peak.
    assert torch.equal(out == 255, params["rise"] > 0.5)
    assert 0 < int((out == 255).sum()) < 36


def test_hotspot_default_mask_is_the_spot_core():
    hotspot = ThermalHotspot(peak_K=(4.0, 4.0), sigma_px=(3.0, 3.0))
    params = hotspot.make_params(64, 64, seeded(2))
    mask = hotspot.spot_mask(params)

    # A Gaussian is above a tenth of its peak within sqrt(2 ln 10) sigma.
    radius_px = math.sqrt(2 * math.log(10)) * 3.0
    assert mask is not None
    assert abs(int(mask.sum()) - math.pi * radius_px**2) < 0.15 * math.pi * radius_px**2


def test_hotspot_bank_places_peak_at_centre():
    bank = torch.zeros(2, 5, 7)
    bank[0, 1, 2] = 4.0
    bank[0, 2, 2] = 2.0
    bank[1, 3, 3] = 1.0
    hotspot = ThermalHotspot(peak_K=(3.0, 3.0), bank_K=bank, levels_per_kelvin=2.0)
    params = hotspot.make_params(20, 30, seeded(4))
    rise = params["rise"]

    cy, cx = round(params["centre_y_px"]), round(params["centre_x_px"])
    assert float(rise.max()) == pytest.approx(6.0)
    assert float(rise[cy, cx]) == pytest.approx(6.0)
    if params["bank_index"] == 0 and cy + 1 < 20:
        assert float(rise[cy + 1, cx]) == pytest.approx(3.0)
    assert int((rise > 0).sum()) <= int((bank[params["bank_index"]] > 0).sum())


def test_hotspot_bank_cut_at_image_edge():
    bank = torch.ones(1, 9, 9)
    bank[0, 4, 4] = 2.0
    hotspot = ThermalHotspot(peak_K=(1.0, 1.0), bank_K=bank)
    params = {"apply": True, "centre_y_px": 0.0, "centre_x_px": 0.0}
    params |= {"peak_K": 1.0, "sigma_px": 1.0, "bank_index": 0}
    rise = hotspot._rise(params, 3, 3)

    assert rise.tolist() == [[1.0, 0.5, 0.5], [0.5, 0.5, 0.5], [0.5, 0.5, 0.5]]


def test_hotspot_rejects_bad_options():
    with pytest.raises(ValueError, match=r"peak_K = \(3.0, 1.0\) is invalid"):
        ThermalHotspot(peak_K=(3.0, 1.0))
    with pytest.raises(ValueError, match=r"sigma_px = \(0.0, 1.0\) is invalid"):
        ThermalHotspot(sigma_px=(0.0, 1.0))
    with pytest.raises(ValueError, match="levels_per_kelvin = 0 is invalid"):
        ThermalHotspot(levels_per_kelvin=0)
    with pytest.raises(ValueError, match="threshold = -1 is invalid"):
        ThermalHotspot(threshold=-1)
    with pytest.raises(ValueError, match="edge = 'soft' is invalid"):
        ThermalHotspot(edge="soft")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"p = 1.5 is invalid"):
        ThermalHotspot(p=1.5)
    with pytest.raises(ValueError, match=r"bank_K has shape \(4, 4\)"):
        ThermalHotspot(bank_K=torch.ones(4, 4))
    with pytest.raises(ValueError, match=r"bank_K rises \[1\] have no positive"):
        ThermalHotspot(bank_K=torch.stack([torch.ones(3, 3), torch.zeros(3, 3)]))


def test_hotspot_range_messages():
    with pytest.raises(ValueError) as peak:
        ThermalHotspot(peak_K=(3.0, 1.0))
    with pytest.raises(ValueError) as sigma:
        ThermalHotspot(sigma_px=(0.0, 1.0))

    assert str(peak.value) == (
        "peak_K = (3.0, 1.0) is invalid; give (low, high) in K with "
        "0.0 <= low <= high, both finite"
    )
    assert str(sigma.value) == (
        "sigma_px = (0.0, 1.0) is invalid; give (low, high) in px with "
        "0.0 < low <= high, both finite"
    )


def test_hotspot_rejects_bare_number():
    with pytest.raises(TypeError) as peak:
        ThermalHotspot(peak_K=5)  # type: ignore[arg-type]
    with pytest.raises(TypeError) as sigma:
        ThermalHotspot(sigma_px=np.float64(3.0))  # type: ignore[arg-type]

    assert str(peak.value) == (
        "peak_K = 5 is invalid; give a (low, high) pair in K, such as (5, 5) "
        "for a fixed peak"
    )
    assert str(sigma.value) == (
        "sigma_px = 3.0 is invalid; give a (low, high) pair in px, such as "
        "(3.0, 3.0) for a fixed sigma"
    )


@pytest.mark.parametrize("bounds", ["15", (1.0, 2.0, 3.0), ("a", "b"), None])
def test_hotspot_rejects_non_pair(bounds):
    with pytest.raises(
        TypeError, match=r"^peak_K = .* give a \(low, high\) pair in K$"
    ):
        ThermalHotspot(peak_K=bounds)  # type: ignore[arg-type]


def test_hotspot_rejects_numpy_inputs(data_dir):
    path = (
        data_dir / "radiometric-samples" / "decoded_celsius" / "FLIR_T640_celsius.npy"
    )
    frame = np.load(path).astype(np.float32)
    mask = np.zeros(frame.shape, dtype=bool)
    hotspot = ThermalHotspot(peak_K=(5.0, 5.0))

    with pytest.raises(TypeError) as image_error:
        hotspot(frame, torch.from_numpy(mask), seeded(0))
    with pytest.raises(TypeError, match="but mask is a numpy.ndarray"):
        hotspot(torch.from_numpy(frame), mask, seeded(0))
    params = hotspot.make_params(*frame.shape, seeded(0))
    with pytest.raises(TypeError, match="but image is a numpy.ndarray"):
        hotspot.apply_image(frame, params)

    message = str(image_error.value)
    assert message.startswith("ThermalHotspot expects torch tensors, but image is")
    assert "numpy.ndarray" in message
    assert "torch.from_numpy" in message
    assert "thermosynth.transforms.to_albumentations" in message


def test_hotspot_rejects_mismatched_shapes():
    hotspot = ThermalHotspot(peak_K=(5.0, 5.0))
    params = hotspot.make_params(4, 5, seeded(0))
    with pytest.raises(ValueError, match=r"image has shape \(1, 5, 4\)"):
        hotspot.apply_image(torch.zeros(1, 5, 4), params)
    with pytest.raises(ValueError, match=r"mask has shape \(4, 6\)"):
        hotspot.apply_mask(torch.zeros(4, 6, dtype=torch.bool), params)


def test_torchvision_adapter_composes():
    pytest.importorskip(
        "torchvision",
        minversion="0.21",
        reason="torchvision >= 0.21 is not installed; the CPU torch here has no "
        "matching torchvision wheel",
    )
    from torchvision import tv_tensors
    from torchvision.transforms import v2

    hotspot = ThermalHotspot(peak_K=(4.0, 4.0), sigma_px=(3.0, 3.0))
    image = tv_tensors.Image(random_image(torch.float32, (1, 16, 20), seed=0))
    mask = tv_tensors.Mask(torch.zeros(16, 20, dtype=torch.bool))
    pipeline = v2.Compose(
        [v2.RandomHorizontalFlip(p=1.0), to_torchvision(hotspot, generator=seeded(1))]
    )
    out, out_mask = pipeline(image, mask)

    params = hotspot.make_params(16, 20, seeded(1))
    expected = hotspot.apply_image(image.flip(-1).as_subclass(torch.Tensor), params)
    assert isinstance(out, tv_tensors.Image)
    assert isinstance(out_mask, tv_tensors.Mask)
    assert torch.equal(out.as_subclass(torch.Tensor), expected)
    assert torch.equal(out_mask.as_subclass(torch.Tensor), params["rise"] > 0.0)
    assert type(pickle.loads(pickle.dumps(pipeline.transforms[1]))).__name__ == (
        "ThermalHotspotV2"
    )


@pytest.mark.parametrize(
    ("adapter", "package", "minimum"),
    [
        (to_torchvision, "torchvision", "0.21"),
        (to_albumentations, "albumentations", "2.0"),
    ],
)
def test_adapter_without_package(monkeypatch, adapter, package, minimum):
    # None in sys.modules makes the import fail as if the package were absent.
    monkeypatch.setitem(sys.modules, package, None)
    monkeypatch.setattr(transforms, "_ADAPTER_CLASSES", {})
    with pytest.raises(ModuleNotFoundError) as missing:
        adapter(ThermalHotspot())

    message = str(missing.value)
    assert missing.value.name == package
    assert message.startswith(f"thermosynth.transforms.{adapter.__name__} needs ")
    assert f"{package} {minimum} or later, which is not installed" in message
    assert f"install it with pip install '{package}>={minimum}'" in message


def test_torchvision_hint_keeps_torch(monkeypatch):
    monkeypatch.setattr(torch, "__version__", "2.13.0+cpu")
    hint = transforms._torchvision_install_hint()
    assert hint == (
        "pip install 'torchvision>=0.21' 'torch==2.13.0' "
        "--index-url https://download.pytorch.org/whl/cpu"
    )
    monkeypatch.setattr(torch, "__version__", "2.13.0")
    hint = transforms._torchvision_install_hint()
    assert hint == "pip install 'torchvision>=0.21' 'torch==2.13.0'"


@pytest.mark.filterwarnings(RGB_WARNING)
def test_albumentations_adapter():
    pytest.importorskip(
        "albumentations",
        minversion="2.0",
        reason="albumentations >= 2.0 is not installed; it is optional",
    )
    import albumentations as A

    hotspot = ThermalHotspot(peak_K=(4.0, 4.0), sigma_px=(3.0, 3.0), threshold=0.5)
    image = random_image(torch.uint8, (16, 20, 3), seed=0).numpy()
    mask = np.zeros((16, 20), dtype=np.uint8)
    pipeline = A.Compose([to_albumentations(hotspot, p=1.0)], seed=3)
    out = pipeline(image=image, mask=mask)

    spot = out["mask"] > 0
    assert out["image"].dtype == np.uint8
    assert out["image"].shape == image.shape
    assert spot.any()
    np.testing.assert_array_equal(out["image"][~spot], image[~spot])
    assert (out["image"][spot].astype(int) >= image[spot]).all()


class _ZeroFrames(torch.utils.data.Dataset):
    """Four blank 12 x 12 frames, passed through ``transform(image, mask)``."""

    def __init__(self, transform):
        self.transform = transform

    def __len__(self) -> int:
        return 4

    def __getitem__(self, index: int) -> torch.Tensor:
        image = torch.zeros((1, 12, 12), dtype=torch.float32)
        mask = torch.zeros((12, 12), dtype=torch.bool)
        return self.transform(image, mask)[0]


def _epochs_in_workers(seed: int) -> list[torch.Tensor]:
    hotspot = ThermalHotspot(peak_K=(2.0, 4.0), sigma_px=(1.0, 3.0))
    loader = torch.utils.data.DataLoader(_ZeroFrames(hotspot), num_workers=2)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return [torch.cat(list(loader)) for _ in range(2)]


def test_hotspot_default_generator_in_workers():
    first, second = _epochs_in_workers(0)
    repeated = _epochs_in_workers(0)

    # Items 0 and 1 come from different workers.
    assert not torch.equal(first[0], first[1])
    assert not torch.equal(first, second)
    assert torch.equal(first, repeated[0])
    assert torch.equal(second, repeated[1])


def test_hotspot_warns_for_three_channels():
    hotspot = ThermalHotspot(peak_K=(3.0, 3.0))
    mask = torch.zeros(8, 8, dtype=torch.bool)

    with pytest.warns(UserWarning, match=r"image of shape \(3, 8, 8\) and adds"):
        hotspot(torch.zeros(3, 8, 8), mask, seeded(0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        hotspot(torch.zeros(1, 8, 8), mask, seeded(0))
        hotspot(torch.zeros(1, 3, 8, 8), mask, seeded(0))


def rgb_warnings(
    record: list[warnings.WarningMessage],
) -> list[warnings.WarningMessage]:
    return [w for w in record if "ThermalHotspot got" in str(w.message)]


def test_hotspot_warns_once_per_object():
    first, second = ThermalHotspot(), ThermalHotspot()
    mask = torch.zeros(8, 8, dtype=torch.bool)

    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        for _ in range(3):
            first(torch.zeros(3, 8, 8), mask, seeded(0))
        second(torch.zeros(3, 8, 8), mask, seeded(0))

    hotspot_warnings = rgb_warnings(record)
    assert len(hotspot_warnings) == 2
    assert "drop this transform" in str(hotspot_warnings[0].message)
    assert hotspot_warnings[0].filename == __file__


def test_hotspot_warning_points_at_loop():
    loader = torch.utils.data.DataLoader(_Frames(ThermalHotspot(), rgb={0}))
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        for _ in loader:
            pass

    hotspot_warnings = rgb_warnings(record)
    assert len(hotspot_warnings) == 1
    assert hotspot_warnings[0].filename == __file__


class _Frames(torch.utils.data.Dataset):
    """Four blank frames, passed through ``transform``, RGB at indices in ``rgb``."""

    def __init__(self, transform, rgb=frozenset()):
        self.transform = transform
        self.rgb = rgb

    def __len__(self) -> int:
        return 4

    def __getitem__(self, index: int) -> torch.Tensor:
        channels = 3 if index in self.rgb else 1
        image = torch.zeros((channels, 8, 8), dtype=torch.float32)
        mask = torch.zeros((8, 8), dtype=torch.bool)
        return self.transform(image, mask)[1]


class _EpochOrders(torch.utils.data.Sampler[int]):
    """Sampler that gives ``orders[e]`` in its e-th iteration."""

    def __init__(self, orders: list[list[int]]) -> None:
        self.orders = orders
        self.epoch = 0

    def __iter__(self):
        order = self.orders[self.epoch]
        self.epoch += 1
        return iter(order)

    def __len__(self) -> int:
        return len(self.orders[0])


def _warnings_to_queue(queue, worker_id: int) -> None:
    """DataLoader worker_init_fn: send every warning's message to ``queue``."""
    warnings.simplefilter("always")
    warnings.showwarning = lambda message, *args, **kwargs: queue.put(str(message))


def test_hotspot_warns_once_across_workers():
    # Items 0 and 1, the RGB ones, form the batch that worker 0 takes in
    # epochs 0 and 2 and worker 1 in epoch 1, so no two workers meet an RGB
    # image at the same moment. Each epoch starts new worker processes.
    hotspot = ThermalHotspot()
    queue = multiprocessing.get_context("fork").Queue()
    orders = [[0, 1, 2, 3], [2, 3, 0, 1], [0, 1, 2, 3]]
    loader = torch.utils.data.DataLoader(
        _Frames(hotspot, rgb={0, 1}),
        batch_size=2,
        sampler=_EpochOrders(orders),
        num_workers=2,
        worker_init_fn=functools.partial(_warnings_to_queue, queue),
        multiprocessing_context="fork",
    )
    marked = [int(batch.sum()) for _ in orders for batch in loader]
    messages = []
    while True:
        try:
            messages.append(queue.get(timeout=1.0))
        except Empty:
            break

    assert all(count > 0 for count in marked)
    assert len([m for m in messages if "ThermalHotspot got" in m]) == 1
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        hotspot(torch.zeros(3, 8, 8), torch.zeros(8, 8, dtype=torch.bool))
    assert not rgb_warnings(record)


class _FlirFrames(torch.utils.data.Dataset):
    """Real FLIR screen exports (3, H, W), one channel where not in ``rgb``."""

    def __init__(self, paths, transform, rgb):
        self.paths = paths
        self.transform = transform
        self.rgb = rgb

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> torch.Tensor:
        image = torch.from_numpy(read_rgb(self.paths[index])).permute(2, 0, 1)
        if index not in self.rgb:
            image = image[1:2]
        mask = torch.zeros(image.shape[-2:], dtype=torch.bool)
        return self.transform(image, mask)[1]


def read_rgb(path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def test_hotspot_deepcopy_warns_once_with_original(data_dir):
    # The copy is made before any call, and its RGB batch goes to worker 0
    # in epoch 0 and to worker 1, a new process, in epoch 1. A copy with
    # flags of its own would warn in both workers and the original again.
    folder = data_dir / "pouch-cell-flir-screen" / "id1_cha_1c"
    paths = sorted(folder.glob("*.png"))[:4]
    hotspot = ThermalHotspot(peak_K=(3.0, 3.0))
    copied = copy.deepcopy(_FlirFrames(paths, hotspot, rgb={0, 1}))
    queue = multiprocessing.get_context("fork").Queue()
    orders = [[0, 1, 2, 3], [2, 3, 0, 1]]
    loader = torch.utils.data.DataLoader(
        copied,
        batch_size=2,
        sampler=_EpochOrders(orders),
        num_workers=2,
        worker_init_fn=functools.partial(_warnings_to_queue, queue),
        multiprocessing_context="fork",
    )
    marked = [int(batch.sum()) for _ in orders for batch in loader]
    frame = torch.from_numpy(read_rgb(paths[0])).permute(2, 0, 1)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        image, mask = hotspot(frame, torch.zeros(frame.shape[-2:], dtype=torch.bool))
    messages = []
    while True:
        try:
            messages.append(queue.get(timeout=1.0))
        except Empty:
            break

    assert copied.transform is not hotspot
    assert all(count > 0 for count in marked)
    assert len([m for m in messages if "ThermalHotspot got" in m]) == 1
    assert not rgb_warnings(record)
    assert mask.any()
    assert torch.equal(image[:, ~mask], frame[:, ~mask])
