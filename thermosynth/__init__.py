"""Physically simulated thermal pseudo-anomalies for battery monitoring."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("thermosynth")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0+unknown"
