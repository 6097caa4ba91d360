import numpy as np
import pytest

from thermosynth.geometry.layout import Layout, Material
from thermosynth.physics import buffers
from thermosynth.physics.adi import simulate_adi_batch
from thermosynth.physics.sources import hotspot

STEEL = Material("steel", 15.0, 15.0, 15.0, 3.6e6)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_take_starts_on_cache_line(dtype):
    arrays = [buffers.take((2, 33, 17, n), dtype, zero=True) for n in (1, 5, 64)]

    for array in arrays:
        assert array.ctypes.data % 64 == 0
        assert array.dtype == dtype
        assert array.flags.c_contiguous
        assert np.all(array == 0)


def test_given_array_reused_and_zeroed():
    first = buffers.take((3, 7, 11), np.float32, zero=False)
    first[:] = 5.0
    address = first.ctypes.data
    buffers.give(first)

    again = buffers.take((3, 7, 11), np.float32, zero=True)

    assert again.ctypes.data == address
    assert np.all(again == 0)


def test_pool_drops_oldest_beyond_size(monkeypatch):
    monkeypatch.setattr(buffers, "_POOL", [])
    monkeypatch.setattr(buffers, "POOL_BYTES", 3000)
    arrays = [buffers.take((125,), np.float64, zero=True) for _ in range(4)]

    buffers.give(*arrays)

    # 1064 bytes each with the alignment slack: two fit, the two oldest go.
    assert [raw.nbytes for raw in buffers._POOL] == [1064, 1064]


def test_repeated_batches_give_identical_results():
    grid = np.zeros((12, 16), dtype=int)
    layout = Layout(0.5, 0.5, 1.0, grid, (STEEL,), grid - 1)
    batch = [
        [hotspot(layout, x_mm=x, y_mm=4.0, radius_mm=1.5, power_W=0.2)]
        for x in (3.0, 5.0, 7.0)
    ]

    def run():
        return simulate_adi_batch(
            layout, batch, duration_s=4.0, dt_s=0.5, precision="float32"
        )

    first, second = run(), run()

    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a.rise_all_K, b.rise_all_K)
        assert a.energy_lost_J == b.energy_lost_J
