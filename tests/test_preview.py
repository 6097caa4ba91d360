"""Tests of the preview's choice of samples."""

from types import SimpleNamespace

from thermosynth.preview import pick_varied


def rows(kinds):
    return [(SimpleNamespace(index=i, kind=k), None) for i, k in enumerate(kinds)]


def sample_kind(row):
    return row[0].kind


def picked(kinds, n, n_kinds):
    return [
        s.index
        for s, _ in pick_varied(
            iter(rows(kinds)), n=n, n_kinds=n_kinds, kind=sample_kind
        )
    ]


def test_each_kind_before_a_repeat():
    kinds = ["spot"] * 5 + ["cell", "spot", "region", "cell"]
    assert picked(kinds, n=3, n_kinds=3) == [0, 5, 7]
    assert picked(kinds, n=4, n_kinds=3) == [0, 1, 5, 7]


def test_one_kind_fills_rows_in_order():
    assert picked(["spot"] * 6, n=4, n_kinds=3) == [0, 1, 2, 3]
    assert picked(["spot", "cell"], n=5, n_kinds=2) == [0, 1]


def test_reading_stops_once_picks_settle():
    consumed = []

    def samples():
        for row in rows(["spot", "cell", "spot", "spot", "cell"]):
            consumed.append(row[0].index)
            yield row

    pick_varied(samples(), n=2, n_kinds=2, kind=sample_kind)
    assert consumed == [0, 1]


def test_kinds_take_turns_for_repeats():
    kinds = ["spot"] * 5 + ["cell", "region", "cell", "region"]
    assert picked(kinds, n=5, n_kinds=3) == [0, 1, 5, 6, 7]
