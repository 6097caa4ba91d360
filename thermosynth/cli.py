"""Command line: ``thermosynth generate`` and ``thermosynth preview``.

Expected errors (bad recipe, missing file, existing output) print one line and
exit with code 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from thermosynth import __version__
from thermosynth.errors import ThermosynthError
from thermosynth.recipe.loading import LoadedRecipe, load_demo_recipe, load_recipe

logger = logging.getLogger(__name__)

USAGE_ERROR = 2


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    _configure_logging(args.verbose)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    try:
        return int(args.handler(args))
    except ThermosynthError as exc:
        print(f"thermosynth: error: {exc}", file=sys.stderr)
        return USAGE_ERROR
    except KeyboardInterrupt:
        print("thermosynth: interrupted; no output was written", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="thermosynth",
        description="Blend physically simulated thermal anomalies into real frames.",
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {__version__}"
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="more log output (-vv for debug)",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    generate = commands.add_parser("generate", help="generate a dataset from a recipe")
    _add_recipe_arguments(generate)
    generate.add_argument(
        "-o", "--output", type=Path, help="output folder; overrides output.dir"
    )
    generate.add_argument(
        "--no-progress", action="store_true", help="hide the progress bar"
    )
    generate.set_defaults(handler=_generate)

    preview = commands.add_parser(
        "preview", help="draw normal, anomalous, rise and mask side by side"
    )
    _add_recipe_arguments(preview)
    preview.add_argument(
        "-n",
        type=int,
        default=8,
        help="number of anomalous samples to draw (default 8)",
    )
    preview.add_argument(
        "-o",
        "--output",
        type=Path,
        default=Path("preview.png"),
        help="PNG file to write",
    )
    preview.set_defaults(handler=_preview)

    calibrate = commands.add_parser(
        "calibrate",
        help="fit conductivities and the convective coefficient to a heater test",
    )
    calibrate.add_argument(
        "measurement",
        type=Path,
        help="folder with Exp_E_T11x11_celsius.npy, Exp.mat, Th.txt, Ta.txt",
    )
    calibrate.add_argument(
        "-o", "--output", type=Path, default=Path("calibration"), help="report folder"
    )
    calibrate.add_argument(
        "--cell-mm", type=float, default=10.0, help="in-plane grid spacing [mm]"
    )
    calibrate.add_argument(
        "--n-layers", type=int, default=6, help="through-thickness layers"
    )
    calibrate.add_argument(
        "--start-s", type=float, default=30.0, help="start of the fitted window [s]"
    )
    calibrate.add_argument(
        "--stop-s", type=float, default=None, help="end of the fitted window [s]"
    )
    calibrate.add_argument(
        "--overwrite", action="store_true", help="replace an existing report"
    )
    calibrate.set_defaults(handler=_calibrate)
    return parser


def _add_recipe_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recipe", nargs="?", type=Path, help="YAML recipe file")
    parser.add_argument(
        "--demo",
        action="store_true",
        help="use the embedded demo recipe, which needs no data",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a recipe key, e.g. --set split.test_anomalous=50 (repeatable)",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace an existing output"
    )


def _configure_logging(verbose: int) -> None:
    level = (
        logging.WARNING
        if verbose == 0
        else logging.INFO
        if verbose == 1
        else logging.DEBUG
    )
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


def _load(args: argparse.Namespace) -> LoadedRecipe:
    overrides = list(args.overrides)
    if args.command == "generate" and args.output is not None:
        overrides.append(f"output.dir={args.output.resolve()}")
    if args.demo == (args.recipe is not None):
        raise ThermosynthError(
            "give either a recipe file or --demo, not both and not neither"
        )
    if args.demo:
        return load_demo_recipe(overrides=overrides)
    return load_recipe(args.recipe, overrides=overrides)


def _generate(args: argparse.Namespace) -> int:
    from thermosynth.pipeline import generate

    loaded = _load(args)
    summary = generate(loaded, overwrite=args.overwrite, progress=not args.no_progress)
    print(
        f"wrote {summary.n_samples} samples ({summary.n_anomalous} anomalous, mean "
        f"area {summary.mean_area_px:.1f} px, mean peak rise "
        f"{summary.mean_peak_rise_K:.2f} K) to {summary.output_dir}"
    )
    return 0


def _preview(args: argparse.Namespace) -> int:
    from thermosynth.preview import write_preview

    if args.n < 1:
        raise ThermosynthError(f"-n {args.n} is invalid; draw at least one sample")
    loaded = _load(args)
    path = write_preview(loaded, n=args.n, path=args.output, overwrite=args.overwrite)
    print(f"wrote preview of {args.n} samples to {path}")
    return 0


def _calibrate(args: argparse.Namespace) -> int:
    import json

    import yaml

    from thermosynth.calibration import (
        calibrate,
        load_heater_experiment,
        plot_calibration,
    )
    from thermosynth.output.atomic import staged_dir

    measurement = load_heater_experiment(args.measurement)
    result = calibrate(
        measurement,
        cell_mm=args.cell_mm,
        n_layers=args.n_layers,
        window_s=(args.start_s, args.stop_s),
    )
    with staged_dir(args.output, overwrite=args.overwrite) as stage:
        (stage / "calibration.json").write_text(json.dumps(result.summary(), indent=2))
        materials = {"materials": result.to_recipe_materials()}
        (stage / "materials.yaml").write_text(
            yaml.safe_dump(materials, sort_keys=False)
        )
        plot_calibration(result, stage / "calibration.png")

    for name, value in result.values.items():
        print(f"{name:14s} {value:9.4f} +- {result.sigma[name]:.4f}")
    print(f"RMSE {result.rmse_K:.4f} K, max abs error {result.max_abs_error_K:.4f} K")
    print(f"wrote {args.output}/calibration.json, calibration.png and materials.yaml")
    return 0


if __name__ == "__main__":
    sys.exit(main())
