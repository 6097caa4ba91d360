"""Fit the pouch-cell heater experiment and write the figures and a plot.

Machine: the 2-core development container (x86_64, Python 3.11),
OMP_NUM_THREADS=1.
Command: OMP_NUM_THREADS=1 python benchmarks/calibrate_pouch_heater.py
Writes calibration.json (the default fit, a grid convergence table and a
fit with the heater held at the cell centre) and calibration.png (the
default fit) to benchmarks/results, or to the folder given with ``-o``.
"""

from __future__ import annotations

import datetime
import json
import logging
import platform
import sys
from pathlib import Path

from _cli import script_parser

from thermosynth.calibration import calibrate, load_heater_experiment, plot_calibration

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "pouch-cell-heater-ir"
RESULTS = ROOT / "benchmarks" / "results"

# (cell_mm, n_layers) of the grid convergence table; calibrate's default is
# 2.5 mm and 12 layers.
GRIDS = [(10.0, 6), (5.0, 12), (2.5, 24), (1.25, 16)]


def main() -> None:
    """Run the fits and write calibration.json and calibration.png."""
    parser = script_parser(__doc__)
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        default=RESULTS,
        metavar="FOLDER",
        help="folder for calibration.json and calibration.png (default: %(default)s)",
    )
    args = parser.parse_args()

    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    measurement = load_heater_experiment(DATA)
    result = calibrate(measurement, window_s=(30.0, None))
    print_row("default", result)

    rows = []
    for cell_mm, n_layers in GRIDS:
        other = calibrate(measurement, cell_mm=cell_mm, n_layers=n_layers)
        print_row(f"{cell_mm} mm, {n_layers} layers", other)
        rows.append(other.summary())

    centred = calibrate(
        measurement, heater_centre_mm=(95.0, 75.0), fit_heater_centre=False
    )
    print_row("heater at (95, 75) mm", centred)

    summary = result.summary()
    summary["grid_convergence"] = rows
    summary["heater_at_cell_centre"] = centred.summary()
    summary["machine"] = f"{platform.machine()}, Python {platform.python_version()}"
    summary["command"] = " ".join(["OMP_NUM_THREADS=1", "python", *sys.argv])
    summary["date"] = datetime.date.today().isoformat()
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "calibration.json").write_text(json.dumps(summary, indent=2))
    plot_calibration(result, args.output / "calibration.png")


def print_row(label: str, result) -> None:
    """Print one fit's values, RMSE, max error and wall time."""
    values = " ".join(f"{v:8.4f}" for v in result.values.values())
    print(
        f"{label:24s} {values}  rmse {result.rmse_K:.4f} K  "
        f"max {result.max_abs_error_K:.3f} K  {result.runtime_s:5.1f} s "
        f"({result.n_simulations} simulations)"
    )


if __name__ == "__main__":
    main()
