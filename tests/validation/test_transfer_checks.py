"""The torch-free name checks agree with the generators and detectors they name."""

import pytest

from thermosynth.errors import ThermosynthError
from thermosynth.validation.transfer_checks import (
    DETECTOR_NAMES,
    GENERATOR_NAMES,
    PSEUDO_DETECTOR_NAMES,
    check_names,
    severity_detector_name,
)
from thermosynth.validation.transfer_setup import BASELINE_GENERATORS, build_detectors


def test_generator_names_match_factories():
    assert GENERATOR_NAMES == ("thermosynth", *BASELINE_GENERATORS)


def test_pseudo_names_match_detectors():
    detectors = build_detectors(DETECTOR_NAMES, steps=1, trim_fraction=0.0)
    uses_pseudo = tuple(n for n, d in detectors.items() if d.uses_pseudo)
    assert uses_pseudo == PSEUDO_DETECTOR_NAMES


def test_severity_detector_name_first_pseudo():
    assert severity_detector_name(["knn", "draem", "classifier"]) == "draem"
    with pytest.raises(ThermosynthError, match="--detectors is knn,autoencoder"):
        severity_detector_name(["knn", "autoencoder"])


def test_names_match_ignoring_case():
    assert check_names(["knn", "DRAEM"], DETECTOR_NAMES, "--detectors") == [
        "knn",
        "draem",
    ]
    assert check_names(["CutPaste"], GENERATOR_NAMES, "--generators") == ["cutpaste"]


@pytest.mark.parametrize(
    ("names", "known", "option", "message"),
    [
        (
            ["DRAM"],
            DETECTOR_NAMES,
            "--detectors",
            "--detectors 'DRAM' is unknown; did you mean 'draem'? Choose from "
            "classifier, draem, autoencoder, deep_svdd, knn",
        ),
        (
            ["thermosynt"],
            GENERATOR_NAMES,
            "--generators",
            "--generators 'thermosynt' is unknown; did you mean 'thermosynth'? "
            "Choose from thermosynth, gaussian_noise, cutpaste, normal_blend, "
            "self_blend, perlin_draem",
        ),
        (
            ["Perlin-Draem"],
            GENERATOR_NAMES,
            "--generators",
            "--generators 'Perlin-Draem' is unknown; did you mean 'perlin_draem'? "
            "Choose from thermosynth, gaussian_noise, cutpaste, normal_blend, "
            "self_blend, perlin_draem",
        ),
        (["knn", "KNN"], DETECTOR_NAMES, "--detectors", "--detectors knn,KNN repeats"),
    ],
)
def test_unknown_name_suggests_nearest(names, known, option, message):
    with pytest.raises(ThermosynthError) as info:
        check_names(names, known, option)

    assert str(info.value).startswith(message)


def test_cli_options_take_names_in_any_case(tmp_path):
    from thermosynth.cli import _parser, _transfer_options

    args = _parser().parse_args(
        [
            *("validate", "transfer", "--normal", "n", "--real", "r"),
            *("--detectors", "KNN,Draem", "--generators", "CutPaste,Self_Blend"),
            *("--severity", "none", "-o", str(tmp_path / "report")),
        ]
    )
    options = _transfer_options(args)

    assert options.detector_names == ["knn", "draem"]
    assert options.generator_names == ["cutpaste", "self_blend"]
