"""Output paths against input paths: equal, around, inside, or apart."""

from __future__ import annotations

import pytest

from thermosynth.errors import OutputError
from thermosynth.output.overlap import check_apart_from_inputs


def test_sibling_with_shared_prefix_passes(tmp_path):
    inputs = [("--normal input", tmp_path / "frames"), ("--real input", None)]

    check_apart_from_inputs(tmp_path / "frames-report", inputs)
    check_apart_from_inputs(tmp_path / "fram", inputs)


def test_dotted_path_resolves_to_input(tmp_path):
    (tmp_path / "frames").mkdir()
    output = tmp_path / "other" / ".." / "frames"
    message = rf"is the --normal input \({tmp_path / 'frames'}\); choose another"

    with pytest.raises(OutputError, match=message):
        check_apart_from_inputs(output, [("--normal input", tmp_path / "frames")])


def test_output_file_named_in_message(tmp_path):
    frame = tmp_path / "frames" / "0.png"
    message = f"output file {frame} is the frames.valid_mask input; choose another file"

    with pytest.raises(OutputError) as info:
        check_apart_from_inputs(
            frame, [("frames.valid_mask input", frame)], kind="file"
        )

    assert str(info.value) == message
