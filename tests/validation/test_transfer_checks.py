"""The torch-free name checks agree with the generators and detectors they name."""

import pytest

from thermosynth.errors import ThermosynthError
from thermosynth.validation.transfer_checks import (
    DETECTOR_NAMES,
    GENERATOR_NAMES,
    PSEUDO_DETECTOR_NAMES,
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
