"""Fit the pouch-cell heater experiment and write the figures and a plot.

Machine: the 2-core development container (x86_64, Python 3.11, FiPy with
scipy's SuperLU), OMP_NUM_THREADS=1.
Command: OMP_NUM_THREADS=1 python benchmarks/calibrate_pouch_heater.py
Writes benchmarks/results/calibration.json and calibration.png.
"""

from __future__ import annotations

import json
import logging
import platform
import sys
from pathlib import Path

from thermosynth.calibration import calibrate, load_heater_experiment, plot_calibration

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "pouch-cell-heater-ir"
RESULTS = ROOT / "benchmarks" / "results"


def main() -> None:
    """Run the full fit and write calibration.json and calibration.png."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    measurement = load_heater_experiment(DATA)
    result = calibrate(measurement, window_s=(30.0, None))

    RESULTS.mkdir(parents=True, exist_ok=True)
    summary = result.summary()
    summary["machine"] = f"{platform.machine()}, {platform.python_version()}"
    summary["command"] = " ".join(["python", *sys.argv])
    (RESULTS / "calibration.json").write_text(json.dumps(summary, indent=2))
    plot_calibration(result, RESULTS / "calibration.png")

    for name, value in result.values.items():
        print(f"{name:14s} {value:9.4f} +- {result.sigma[name]:.4f}")
    print(f"rmse_K          {result.rmse_K:.4f}")
    print(f"max_abs_error_K {result.max_abs_error_K:.4f}")
    print(
        f"runtime_s       {result.runtime_s:.1f} ({result.n_simulations} simulations)"
    )


if __name__ == "__main__":
    main()
