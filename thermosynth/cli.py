"""Command line: ``thermosynth generate``, ``preview``, ``calibrate``, ``validate``.

Expected errors (bad recipe, missing file, existing output) print one line and
exit with code 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import itertools
import logging
import math
import os
import re
import shlex
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NoReturn

from thermosynth import __version__
from thermosynth.errors import RecipeError, ThermosynthError, command_line_message
from thermosynth.recipe.loading import (
    LoadedRecipe,
    expand_home,
    load_demo_recipe,
    load_recipe,
)
from thermosynth.recipe.origins import OptionOverride

if TYPE_CHECKING:
    import numpy as np

    from thermosynth.calibration import WindowError
    from thermosynth.validation.transfer import TransferResult
    from thermosynth.validation.transfer_data import TransferData
    from thermosynth.validation.transfer_setup import ThermalFactory

logger = logging.getLogger(__name__)

# Smallest --resize side [px]; every transfer network is tested at 8 px.
_MIN_SIZE_PX = 8
# Pixels per frame above which validate transfer suggests --resize: a
# 160 x 120 px frame is 20 times the PV modules' 24 x 40 px.
_LARGE_FRAME_PX = 128 * 128

USAGE_ERROR = 2

# Factors of the severity sweep when --severity is not given and --recipe is.
_DEFAULT_SEVERITY = "0.25,0.5,1,2"

# Options whose value may look like a negative number, such as --resize -3x4
# or --severity -1,1, which argparse would otherwise read as an option.
_DASH_VALUE_OPTIONS = ("--resize", "--severity")

VERBOSE_DESTS = ("verbose", "verbose_group", "verbose_command")
"""Counts of -v before the command, after ``validate`` and after the command.

Each level has its own name because a subcommand's defaults overwrite the
values that the parser before it set.
"""

THIRD_PARTY_LOGGERS = ("h5py", "matplotlib", "PIL", "distributed", "fipy", "numba")
"""Loggers kept at WARNING with -v and -vv, so that the log is thermosynth's own."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    parser = _parser()
    arguments = _attach_dash_values(sys.argv[1:] if argv is None else argv)
    _check_set_pairs(parser, arguments)
    args = parser.parse_args(arguments)
    # The validation reports record the command line that wrote them.
    args.command_line = ["thermosynth", *arguments]
    _configure_logging(sum(getattr(args, d, 0) for d in VERBOSE_DESTS))
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    handlers = _signal_handlers()
    try:
        return int(args.handler(args))
    except ThermosynthError as exc:
        print(f"thermosynth: error: {command_line_message(str(exc))}", file=sys.stderr)
        return USAGE_ERROR
    except KeyboardInterrupt as interrupt:
        # A sharded run names the shards it kept for --resume and their folder.
        detail = command_line_message(str(interrupt)) or "no output was written"
        if isinstance(interrupt, Terminated):
            print(f"thermosynth: terminated; {detail}", file=sys.stderr)
            return 128 + signal.SIGTERM
        print(f"thermosynth: interrupted; {detail}", file=sys.stderr)
        return 128 + signal.SIGINT
    finally:
        # The console script exits right after main returns, so it keeps
        # interrupts ignored once the output is complete. A caller that
        # passed argv gets its handlers back.
        if argv is not None:
            _restore_signal_handlers(handlers)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that a run keeps its complete shards."""


def _signal_handlers() -> dict[int, Any]:
    """Return the handlers of SIGINT and SIGTERM, to restore them later."""
    return {signum: signal.getsignal(signum) for signum in _STOP_SIGNALS}


def _restore_signal_handlers(handlers: dict[int, Any]) -> None:
    if threading.current_thread() is not threading.main_thread():
        return
    for signum, handler in handlers.items():
        if handler is not None:
            signal.signal(signum, handler)


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def _sigterm_raises() -> Iterator[None]:
    """Raise `Terminated` on SIGTERM in the main thread while the block runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(signum: int, frame: object) -> None:
        raise Terminated

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        # `_ignore_stop_signals` may have replaced the handler; keep that.
        if signal.getsignal(signal.SIGTERM) is terminate:
            signal.signal(signal.SIGTERM, previous)


def _ignore_stop_signals() -> None:
    """Ignore Ctrl-C and SIGTERM from now on, because the output is complete."""
    if threading.current_thread() is threading.main_thread():
        for signum in _STOP_SIGNALS:
            signal.signal(signum, signal.SIG_IGN)


def _attach_dash_values(argv: Sequence[str]) -> list[str]:
    """Join ``--resize -3x4`` into ``--resize=-3x4``.

    argparse reads a value that starts with a dash as the next option and
    stops with "expected one argument". Joined to its option, the value
    reaches the size check, whose message names it.
    """
    joined: list[str] = []
    for token in argv:
        if joined and joined[-1] in _DASH_VALUE_OPTIONS and token[:1] == "-":
            if re.match(r"-\s*\d", token):
                joined[-1] = f"{joined[-1]}={token}"
                continue
        joined.append(token)
    return joined


def _check_set_pairs(parser: argparse.ArgumentParser, argv: Sequence[str]) -> None:
    """Reject ``--set KEY VALUE``, which argparse would report as a stray VALUE."""
    for option, value in itertools.pairwise(argv):
        if option == "--set" and "=" not in value and not value.startswith("-"):
            parser.error(
                f"--set takes KEY=VALUE as one argument, got '--set {value}'; "
                f"write --set {value}=VALUE"
            )


class _DefaultsFormatter(argparse.HelpFormatter):
    """Append an option's default to its help, unless the help names one."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        hidden = (
            default is None or default is False or default in ([], argparse.SUPPRESS)
        )
        if "default" in text or hidden or isinstance(action, argparse._CountAction):
            return action.help
        if not action.option_strings:
            return action.help
        return f"{text} (default: %(default)s)"


def _show_defaults(parser: argparse.ArgumentParser) -> None:
    """Use `_DefaultsFormatter` in ``parser`` and every subcommand below it."""
    parser.formatter_class = _DefaultsFormatter
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                _show_defaults(child)


class _Parser(argparse.ArgumentParser):
    """Argument parser that reports a usage error on one line, without the usage."""

    def error(self, message: str) -> NoReturn:
        self.exit(
            USAGE_ERROR,
            f"{self.prog}: error: {message}; see '{self.prog} --help'\n",
        )


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="thermosynth",
        description="Blend physically simulated thermal anomalies into real frames.",
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {__version__}"
    )
    _add_verbose(parser, "verbose")
    commands = parser.add_subparsers(dest="command", required=True)

    generate = commands.add_parser(
        "generate",
        help="generate a dataset from a recipe",
        description="Simulate the recipe's anomalies, blend them into its normal "
        "frames and write dataset.h5, the folder/ tree and the masks.",
    )
    _add_recipe_arguments(generate)
    _add_verbose(generate, "verbose_command")
    generate.add_argument(
        "-o",
        "--output",
        action=_OutputFolder,
        help="output folder; overrides output.dir",
    )
    generate.add_argument(
        "--no-progress", action="store_true", help="hide the progress bar"
    )
    cluster = generate.add_mutually_exclusive_group()
    cluster.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="run on a local Dask cluster of N worker processes (default: this "
        "process only)",
    )
    cluster.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run on the Dask cluster whose scheduler is at ADDRESS, e.g. "
        "tcp://10.0.0.5:8786; its workers must see the output folder",
    )
    generate.add_argument(
        "--resume",
        action="store_true",
        help="reuse the complete shards of an interrupted run of the same recipe; "
        "an output of this recipe that is already complete is kept as it is",
    )
    generate.set_defaults(handler=_generate)

    preview = commands.add_parser(
        "preview",
        help="draw normal, anomalous, rise and mask side by side",
        description="Draw a few of the recipe's samples, one row each: the normal "
        "frame, the anomalous frame, the surface rise [K] and the mask.",
    )
    _add_recipe_arguments(preview)
    _add_verbose(preview, "verbose_command")
    preview.add_argument(
        "-n",
        type=int,
        default=8,
        help="number of anomalous samples to draw (default 8)",
    )
    preview.add_argument(
        "-o",
        "--output",
        type=_home_path,
        default=None,
        help="PNG file to write (default preview.png); for a sequence recipe "
        "a .gif or .mp4 file (default preview.gif)",
    )
    preview.set_defaults(handler=_preview)

    calibrate = commands.add_parser(
        "calibrate",
        help="fit conductivities and the convective coefficient to a heater test",
        description="Fit k_x, k_y, k_z, h_top and the heater centre of a pouch "
        "cell to the IR frames of a heater test. Writes calibration.json (the "
        "values with their one-sigma errors), calibration.png (measured against "
        "simulated) and materials.yaml (recipe keys) into the report folder.",
    )
    calibrate.add_argument(
        "measurement",
        type=_home_path,
        help="folder with Exp_E_T11x11_celsius.npy, Exp.mat, Th.txt, Ta.txt",
    )
    calibrate.add_argument(
        "-o",
        "--output",
        action=_OutputFolder,
        default=Path("calibration"),
        help="report folder",
    )
    calibrate.add_argument(
        "--cell-mm",
        type=float,
        default=2.5,
        help="shortest in-plane half wavelength kept [mm]",
    )
    calibrate.add_argument(
        "--n-layers",
        type=int,
        default=12,
        help="through-thickness finite-volume layers, 3 or more",
    )
    calibrate.add_argument(
        "--start-s", type=float, default=30.0, help="start of the fitted window [s]"
    )
    calibrate.add_argument(
        "--stop-s",
        type=float,
        default=None,
        help="end of the fitted window [s] (default: the last frame)",
    )
    calibrate.add_argument(
        "--overwrite", action="store_true", help="replace an existing report"
    )
    _add_verbose(calibrate, "verbose_command")
    calibrate.set_defaults(handler=_calibrate)

    validate = commands.add_parser(
        "validate",
        help="judge pseudo-anomalies against normal and real frames",
        description="Judge pseudo-anomalies: 'closeness' measures how close they "
        "sit to normal frames, and 'transfer' trains detectors on them and "
        "scores those on real anomalies. Each writes a report folder.",
    )
    _add_verbose(validate, "verbose_group")
    checks = validate.add_subparsers(dest="check", required=True)
    closeness = checks.add_parser(
        "closeness",
        help="measure how close pseudo-anomalies sit to normal data",
        description="Read normal frames, pseudo-anomalies and, if given, real "
        "anomalies, and measure per sample and per set how far the anomalies sit "
        "from the normal frames. Writes report.md, CSV tables and figures into "
        "the report folder, and per-sample closeness beside a thermosynth "
        "output (see --no-write-back).",
    )
    _add_closeness_arguments(closeness)
    _add_verbose(closeness, "verbose_command")
    closeness.set_defaults(handler=_validate_closeness)
    transfer = checks.add_parser(
        "transfer",
        help="train detectors on pseudo-anomalies and score them on real anomalies",
        description="Train each detector on normal frames plus each generator's "
        "pseudo-anomalies and score it on labelled real anomalies. Writes "
        "report.md, CSV tables of AUROC and pixel metrics, and plots into the "
        "report folder.",
    )
    _add_transfer_arguments(transfer)
    _add_verbose(transfer, "verbose_command")
    transfer.set_defaults(handler=_validate_transfer)
    _show_defaults(parser)
    return parser


def _add_verbose(parser: argparse.ArgumentParser, dest: str) -> None:
    parser.add_argument(
        "-v",
        "--verbose",
        dest=dest,
        action="count",
        default=0,
        help="more log output, -vv for debug; allowed before or after the "
        "command name, and the counts add up",
    )


def _add_recipe_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "recipe",
        nargs="?",
        type=_home_path,
        help="YAML recipe file (omit with --demo)",
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        help="use the embedded demo recipe, which needs no data",
    )
    parser.add_argument(
        "-s",
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
    if level < logging.WARNING:
        for name in THIRD_PARTY_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)


@contextlib.contextmanager
def _named_recipe(loaded: LoadedRecipe) -> Iterator[None]:
    """Start errors raised after loading (e.g. by a layout) with their origin.

    An error that lists its recipe keys (`ThermosynthError.keys`) starts with
    the --set items or options such as -o that wrote them, or else with the
    file. Any other RecipeError starts with the file, and other errors pass
    unchanged. The error keeps its type, because only its message changes.
    """
    try:
        yield
    except ThermosynthError as exc:
        if not exc.keys and not isinstance(exc, RecipeError):
            raise
        message = str(exc).removeprefix(f"{loaded.source}: ")
        exc.args = (f"{loaded.label(*exc.keys)}: {message}",)
        raise


def _home_path(text: str) -> Path:
    """Return a path argument's value with a leading ``~`` expanded.

    A shell leaves ``--normal=~/frames`` and a quoted ``'~/r.yaml'`` as typed,
    so every path argument expands them as `expand_home` does for recipe paths.
    """
    return expand_home(Path(text))


class _OutputFolder(argparse.Action):
    """Store -o as a Path and as typed in ``output_option``, rejecting an empty -o.

    Errors about generate's output.dir name the option as typed, such as
    ``-o out/pv``, because the recipe stores the resolved path, which the
    user never typed.
    """

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        text = str(values)
        # An empty path would mean the working folder.
        if not text:
            fix = "such as out/pv"
            if self.default is not None:
                fix = f"or leave out {option_string or '-o'} to write to {self.default}"
            raise argparse.ArgumentError(
                self, f"the output folder is empty; give a folder path, {fix}"
            )
        setattr(namespace, self.dest, expand_home(Path(text)))
        namespace.output_option = f"{option_string or '-o'} {shlex.quote(text)}"


def _add_pattern_options(parser: argparse.ArgumentParser, roles: Sequence[str]) -> None:
    """Add ``--ROLE-pattern``, a file-name filter for each plain-folder input."""
    for role in roles:
        parser.add_argument(
            f"--{role}-pattern",
            metavar="GLOB",
            help=f"read only the {role} folder's files whose path relative to "
            "the folder matches GLOB, as frames.pattern in a recipe, e.g. "
            "'*CAM2*' (plain folders only; default: every image file)",
        )


def _load(args: argparse.Namespace) -> LoadedRecipe:
    from thermosynth.output.atomic import check_not_dangling

    overrides: list[str | OptionOverride] = list(args.overrides)
    if args.command == "generate" and args.output is not None:
        # resolve() follows a dangling link to a path the user did not name.
        check_not_dangling(args.output)
        resolved = str(args.output.resolve())
        overrides.append(OptionOverride("output.dir", resolved, args.output_option))
    if args.demo and args.recipe is not None:
        raise ThermosynthError("give a recipe file or --demo, not both")
    if not args.demo and args.recipe is None:
        raise ThermosynthError("give a recipe file or --demo")
    if args.demo:
        return load_demo_recipe(overrides=overrides)
    return load_recipe(args.recipe, overrides=overrides)


def _generate(args: argparse.Namespace) -> int:
    from tqdm.contrib.logging import logging_redirect_tqdm

    loaded = _load(args)
    # Imported after the recipe loads, so that a usage error returns at once.
    from thermosynth.pipeline import Summary, generate

    # Log records go through tqdm.write, which clears the progress bar first,
    # so that each record starts a line of its own.
    with _named_recipe(loaded), logging_redirect_tqdm(), _sigterm_raises():
        if loaded.recipe.sequence is not None:
            return _generate_sequences(loaded, args)
        summary = generate(
            loaded,
            overwrite=args.overwrite,
            progress=not args.no_progress,
            workers=args.workers,
            scheduler=args.scheduler,
            resume=args.resume,
        )
        _ignore_stop_signals()
    # Sequence recipes returned above, so this is a single-frame summary.
    assert isinstance(summary, Summary)
    counts = (
        f"{summary.n_samples} samples ({summary.n_anomalous} anomalous, mean "
        f"area {summary.mean_area_px:.1f} px, mean peak rise "
        f"{summary.mean_peak_rise_K:.2f} K)"
    )
    line = _summary_line(counts, summary.output_dir, summary.already_complete)
    print(line + _skipped(summary.n_skipped, "sample"))
    return 0


def _summary_line(counts: str, output_dir: Path, already_complete: bool) -> str:
    """Report what generate wrote, or that --resume found the output complete."""
    if already_complete:
        return (
            f"{output_dir} is already complete with {counts}; --resume wrote "
            "nothing (pass --overwrite to generate it again)"
        )
    return f"wrote {counts} to {output_dir}"


def _skipped(n_skipped: int, noun: str) -> str:
    """Return "; skipped N samples ..." for the summary line, or ""."""
    if n_skipped == 0:
        return ""
    plural = noun if n_skipped == 1 else f"{noun}s"
    return f"; skipped {n_skipped} {plural} whose frames failed (frames.on_error: skip)"


def _preview(args: argparse.Namespace) -> int:
    from thermosynth.output.overlap import check_apart_from_inputs

    if args.n < 1:
        raise ThermosynthError(f"-n {args.n} is invalid; draw at least one sample")
    loaded = _load(args)
    sequence = loaded.recipe.sequence is not None
    path = args.output or Path("preview.gif" if sequence else "preview.png")
    check_apart_from_inputs(path, _recipe_inputs(loaded), kind="file")
    from thermosynth.preview import write_preview

    with _named_recipe(loaded):
        if sequence:
            return _preview_sequences(loaded, args, path)
        path, n_drawn = write_preview(
            loaded, n=args.n, path=path, overwrite=args.overwrite
        )
    noun = "sample" if n_drawn == 1 else "samples"
    print(f"wrote preview of {n_drawn} {noun} to {path}{_fewer(n_drawn, args.n)}")
    return 0


def _fewer(n_drawn: int, n_requested: int) -> str:
    """Explain a preview with fewer rows than -n asked for."""
    if n_drawn >= n_requested:
        return ""
    return (
        f" (-n {n_requested} requested more, but the recipe's split has {n_drawn} "
        "anomalous; raise split.test_anomalous with --set for more)"
    )


def _generate_sequences(loaded: LoadedRecipe, args: argparse.Namespace) -> int:
    from thermosynth.sequences import generate_sequences

    summary = generate_sequences(
        loaded,
        overwrite=args.overwrite,
        progress=not args.no_progress,
        workers=args.workers,
        scheduler=args.scheduler,
        resume=args.resume,
    )
    _ignore_stop_signals()
    counts = (
        f"{summary.n_sequences} sequences of {summary.n_times} frames "
        f"({summary.n_anomalous} anomalous, mean final area "
        f"{summary.mean_final_area_px:.1f} px, mean final peak rise "
        f"{summary.mean_final_peak_rise_K:.2f} K)"
    )
    line = _summary_line(counts, summary.output_dir, summary.already_complete)
    print(line + _skipped(summary.n_skipped, "sequence"))
    return 0


def _preview_sequences(
    loaded: LoadedRecipe, args: argparse.Namespace, path: Path
) -> int:
    from thermosynth.preview_animation import write_animated_preview

    path, n_drawn = write_animated_preview(
        loaded, n=args.n, path=path, overwrite=args.overwrite
    )
    noun = "sequence" if n_drawn == 1 else "sequences"
    print(
        f"wrote animated preview of {n_drawn} {noun} to {path}{_fewer(n_drawn, args.n)}"
    )
    return 0


def _calibrate(args: argparse.Namespace) -> int:
    import json

    import yaml

    from thermosynth.calibration import (
        WindowError,
        calibrate,
        load_heater_experiment,
        plot_calibration,
    )
    from thermosynth.output.atomic import check_writable, staged_dir
    from thermosynth.output.overlap import check_apart_from_inputs

    inputs = [("measurement folder", args.measurement)]
    check_apart_from_inputs(args.output, inputs)
    check_writable(args.output, overwrite=args.overwrite)
    measurement = load_heater_experiment(args.measurement)
    try:
        result = calibrate(
            measurement,
            cell_mm=args.cell_mm,
            n_layers=args.n_layers,
            window_s=(args.start_s, args.stop_s),
        )
    except WindowError as exc:
        raise _window_option_error(exc, args.start_s, args.stop_s) from None
    with staged_dir(args.output, overwrite=args.overwrite) as stage:
        (stage / "calibration.json").write_text(json.dumps(result.summary(), indent=2))
        materials = {
            "materials": result.to_recipe_materials(),
            "physics": {"h_top_W_m2K": result.h_top_W_m2K},
        }
        (stage / "materials.yaml").write_text(
            yaml.safe_dump(materials, sort_keys=False)
        )
        plot_calibration(result, stage / "calibration.png")

    for name, value in result.values.items():
        print(f"{name:14s} {value:9.4f} +- {result.sigma[name]:.4f}")
    print(f"RMSE {result.rmse_K:.4f} K, max abs error {result.max_abs_error_K:.4f} K")
    print(f"wrote {args.output}/calibration.json, calibration.png and materials.yaml")
    return 0


def _window_option_error(
    exc: WindowError, start_s: float, stop_s: float | None
) -> ThermosynthError:
    """Reword a calibration WindowError with the options the user typed.

    The user typed --start-s and --stop-s, never the API's window_s.
    """
    from thermosynth.calibration import MIN_WINDOW_FRAMES

    enough = f"at least {MIN_WINDOW_FRAMES} frames"
    window = f"--start-s {start_s:g}"
    if stop_s is None:
        fix = f"move --start-s earlier so that the window takes {enough}"
    elif start_s > stop_s:
        fix = "give --start-s below --stop-s, within that span"
    else:
        fix = f"give --start-s and --stop-s that take {enough} within that span"
    if stop_s is not None:
        window += f" --stop-s {stop_s:g}"
    return ThermosynthError(exc.describe(window, fix))


def _add_closeness_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--normal",
        type=_home_path,
        required=True,
        help="normal frames (any source below)",
    )
    parser.add_argument(
        "--normal-scale",
        type=float,
        metavar="K_PER_LEVEL",
        help="decode normal frames stored as integer levels (a plain folder of "
        "16-bit images or an integer .npy stack) to K: value [K] = level * "
        "K_PER_LEVEL + --normal-offset (default: keep the levels)",
    )
    parser.add_argument(
        "--normal-offset",
        type=float,
        metavar="K",
        help="value of level 0 for --normal-scale [K] (default: 0)",
    )
    parser.add_argument(
        "--normal-unit",
        choices=("C", "K"),
        help="unit of normal frames that record none (a float .npy stack or "
        "float images), so that they compare with frames in C or K (default: "
        "unit 'value', compared with any unit after a warning)",
    )
    parser.add_argument(
        "--pseudo",
        type=_home_path,
        required=True,
        help="pseudo-anomalies: a thermosynth output, dataset.h5, MVTec tree or folder",
    )
    parser.add_argument(
        "--real", type=_home_path, help="real anomalous frames, if any (default: none)"
    )
    parser.add_argument(
        "-o",
        "--output",
        action=_OutputFolder,
        default=Path("closeness"),
        help="report folder",
    )
    parser.add_argument(
        "--metadata",
        type=_home_path,
        help="JSON records describing a plain image folder (for the --*-where filters)",
    )
    for role in ("normal", "pseudo", "real"):
        parser.add_argument(
            f"--{role}-where",
            metavar="KEY=V1,V2",
            help=f"keep {role} files whose metadata KEY is one of the values "
            "(default: all files)",
        )
    _add_pattern_options(parser, ("normal", "pseudo", "real"))
    parser.add_argument(
        "--camera-pattern",
        metavar="REGEX",
        help="regular expression whose first group, searched in each frame's "
        "file name (for a thermosynth sample, its source frame's), names the "
        "frame's camera, so that each camera gets its own normal model, e.g. "
        "'_(CAM[0-9])_' (default: cameras only where a thermosynth output's "
        "recipe maps them to masks)",
    )
    parser.add_argument(
        "--max-frames", type=int, default=1000, help="frames drawn per set at most"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of every draw")
    parser.add_argument(
        "--permutations", type=int, default=500, help="MMD permutations"
    )
    parser.add_argument(
        "--epochs", type=int, default=30, help="autoencoder training epochs"
    )
    hdf5 = parser.add_mutually_exclusive_group()
    hdf5.add_argument(
        "--write-back",
        action="store_true",
        help="add the closeness dataset to the pseudo HDF5 file itself",
    )
    hdf5.add_argument(
        "--no-write-back",
        action="store_true",
        help="write neither closeness.csv nor an HDF5 copy beside the input; by "
        "default a thermosynth output gets closeness.csv and dataset_closeness.h5",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace existing report and outputs"
    )


def _validate_closeness(args: argparse.Namespace) -> int:
    import numpy as np

    from thermosynth.output.atomic import check_writable
    from thermosynth.output.overlap import check_apart_from_inputs
    from thermosynth.validation.cameras import compile_camera_pattern
    from thermosynth.validation.io import load_for_role

    inputs = _option_inputs(args, "--normal", "--pseudo", "--real", "--metadata")
    check_apart_from_inputs(args.output, inputs)
    check_writable(args.output, overwrite=args.overwrite)
    _check_max_frames(args.max_frames)
    if args.camera_pattern is not None:
        compile_camera_pattern(args.camera_pattern)
    _check_counts(args, ("permutations", "epochs"))
    _check_normal_scale(args)
    # Each role draws its subset from its own stream, and the report from
    # another, so that adding or subsampling one set changes no other draw.
    sets: dict[str, Any] = {}
    roles: tuple[Literal["normal", "pseudo", "real"], ...] = (
        "normal",
        "pseudo",
        "real",
    )
    for stream, role in enumerate(roles):
        path = getattr(args, role)
        where = _parse_where(getattr(args, f"{role}_where"))
        if path is None:
            sets[role] = None
            continue
        sets[role] = load_for_role(
            path,
            role,
            metadata=args.metadata if where else None,
            where=where,
            pattern=getattr(args, f"{role}_pattern"),
            pattern_option=f"--{role}-pattern",
            max_frames=args.max_frames,
            rng=np.random.default_rng([args.seed, stream]),
        )
    if args.normal_scale is not None:
        sets["normal"] = sets["normal"].decoded(
            scale_per_level=args.normal_scale,
            offset=args.normal_offset or 0.0,
            unit="K",
        )
    if args.normal_unit is not None:
        sets["normal"] = sets["normal"].labelled(args.normal_unit)
    # Imported once the sets have loaded, because features imports torch.
    from thermosynth.validation import AutoencoderFeatures, closeness_report

    hdf5: Literal["copy", "write-back", "none"] = "copy"
    if args.write_back:
        hdf5 = "write-back"
    elif args.no_write_back:
        hdf5 = "none"
    report = closeness_report(
        sets["normal"],
        sets["pseudo"],
        sets["real"],
        out_dir=args.output,
        rng=np.random.default_rng([args.seed, 3]),
        n_permutations=args.permutations,
        autoencoder=AutoencoderFeatures(epochs=args.epochs),
        hdf5=hdf5,
        overwrite=args.overwrite,
        command_line=args.command_line,
        camera_pattern=args.camera_pattern,
    )
    print(f"wrote closeness report to {report.out_dir}/report.md")
    for path in report.written_back:
        print(f"wrote per-sample closeness to {path}")
    return 0


def _check_normal_scale(args: argparse.Namespace) -> None:
    if args.normal_offset is not None and args.normal_scale is None:
        raise ThermosynthError(
            f"--normal-offset {args.normal_offset:g} was given without "
            "--normal-scale; give the scale in K per level as well"
        )
    scale = args.normal_scale
    if scale is not None and not (math.isfinite(scale) and scale > 0):
        raise ThermosynthError(
            f"--normal-scale {scale:g} is invalid; give the positive step of one "
            "stored level in K, e.g. 0.01"
        )
    offset = args.normal_offset
    if offset is not None and not math.isfinite(offset):
        raise ThermosynthError(
            f"--normal-offset {offset:g} is invalid; give a finite value in K"
        )


def _parse_where(text: str | None) -> dict[str, list[str]] | None:
    if text is None:
        return None
    key, sep, values = text.partition("=")
    if not sep or not key or not values:
        raise ThermosynthError(
            f"filter {text!r} is invalid; write KEY=VALUE or KEY=V1,V2"
        )
    return {key: values.split(",")}


def _add_transfer_arguments(parser: argparse.ArgumentParser) -> None:
    from thermosynth.validation.transfer_checks import GENERATOR_NAMES

    generators = ",".join(GENERATOR_NAMES)
    parser.add_argument(
        "--normal",
        type=_home_path,
        required=True,
        help="normal frames: an MVTec tree (train/good, test/good), a folder "
        "(with --metadata and --normal-where) or a thermosynth dataset.h5",
    )
    parser.add_argument(
        "--real",
        type=_home_path,
        required=True,
        help="real anomalous frames: an MVTec tree (one class per test/<kind>), "
        "a thermosynth output (one class, 'anomalous') or a folder",
    )
    parser.add_argument(
        "--metadata",
        type=_home_path,
        help="JSON records describing a plain image folder (for the --*-where filters)",
    )
    parser.add_argument(
        "--normal-where",
        metavar="KEY=V1,V2",
        help="keep normal files whose metadata KEY is one of the values "
        "(default: all files)",
    )
    parser.add_argument(
        "--real-where",
        metavar="KEY=V1,V2",
        help="keep real files whose metadata KEY is one of the values; each "
        "value is reported as one anomaly class (default: all files)",
    )
    _add_pattern_options(parser, ("normal", "real"))
    parser.add_argument(
        "--recipe",
        type=_home_path,
        action="append",
        help="recipe whose layout, physics, scenarios and camera make the "
        "thermosynth pseudo-anomalies; needed for the thermosynth generator "
        "and the severity sweep. Repeat it to mix recipes, such as two kinds "
        "of module: each pseudo-anomaly then comes from one of them, chosen "
        "uniformly",
    )
    parser.add_argument(
        "--generators",
        default=generators,
        help=f"comma-separated pseudo-anomaly generators (default all: {generators})",
    )
    parser.add_argument(
        "--detectors",
        default="classifier,draem,knn",
        help="comma-separated detectors, from classifier,draem,autoencoder,"
        "deep_svdd,knn (default classifier,draem,knn)",
    )
    parser.add_argument(
        "--contamination",
        type=float,
        default=0.1,
        help="fraction of training normals replaced by reserve real anomalies "
        "in a second run, in [0, 1); 0 skips it (default 0.1)",
    )
    parser.add_argument(
        "--trim-fraction",
        type=float,
        default=0.1,
        help="fraction of training normals that the classifier, DRAEM and the "
        "supervised ceiling drop (those ranked most anomalous out of fold) "
        "before their final training, in [0, 1); 0 trains on all (default 0.1)",
    )
    parser.add_argument(
        "--members",
        type=int,
        default=1,
        metavar="N",
        help="train the classifier and DRAEM N times with their own seeds and "
        "average their scores and maps, an ensemble that takes N times as long; "
        "the supervised ceiling stays one network (default 1)",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=1,
        metavar="N",
        help="processes that train detectors side by side; the tables do not "
        "depend on N (default 1)",
    )
    parser.add_argument(
        "--severity",
        help="factors on the simulated rise for the severity sweep, or none "
        f"(default {_DEFAULT_SEVERITY} with --recipe, none without)",
    )
    parser.add_argument(
        "--max-train", type=int, default=2500, help="training normals at most"
    )
    parser.add_argument(
        "--max-test", type=int, default=1500, help="test normals at most"
    )
    parser.add_argument(
        "--resize",
        metavar="HxW",
        help="train and score on frames resized to H x W px (height x width), "
        "such as 64x80; large frames train far faster shrunk (default: the "
        "frames' own size)",
    )
    parser.add_argument(
        "--steps", type=int, default=600, help="training steps per network"
    )
    parser.add_argument(
        "--bank-scenarios",
        type=int,
        default=64,
        help="recipe scenarios simulated for the thermosynth generator",
    )
    parser.add_argument(
        "--contrast-spread",
        type=float,
        default=2.0,
        help="each thermosynth pseudo-anomaly's rise is multiplied by a factor "
        "drawn log-uniformly in [1/F, F]; 1 turns it off (default 2)",
    )
    parser.add_argument(
        "--bootstrap", type=int, default=200, help="bootstrap resamples per interval"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of every draw")
    parser.add_argument(
        "-o",
        "--output",
        action=_OutputFolder,
        default=Path("transfer"),
        help="report folder",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace an existing report"
    )
    parser.add_argument(
        "--no-progress", action="store_true", help="hide the progress bar"
    )


def _validate_transfer(args: argparse.Namespace) -> int:
    import numpy as np

    from thermosynth.validation import transfer_checks as checks

    options = _transfer_options(args)
    from thermosynth.validation.transfer_data import load_transfer_data, resize_to

    data = load_transfer_data(
        args.normal,
        args.real,
        np.random.default_rng(args.seed),
        metadata=args.metadata,
        normal_where=options.normal_where,
        real_where=options.real_where,
        normal_pattern=args.normal_pattern,
        real_pattern=args.real_pattern,
        max_train=args.max_train,
        max_test=args.max_test,
    )
    # Resized after loading, so that the recipe's masks are read at the
    # frames' own size and then resized with them.
    source_shape = data.train_normal.shape[1:]
    data = resize_to(data, options.size_px)
    _warn_if_large(data.train_normal.shape[1:], resized=args.resize is not None)
    _check_training_normals(args, len(data.train_normal))
    n_reserve = 0 if data.reserve_anomalies is None else len(data.reserve_anomalies)
    checks.check_contamination(options.contamination, len(data.train_normal), n_reserve)
    return _run_transfer(args, options, data, source_shape)


def _run_transfer(
    args: argparse.Namespace,
    options: _TransferOptions,
    data: TransferData,
    source_shape: tuple[int, ...],
) -> int:
    """Simulate the pseudo-anomalies, train the detectors and write the report."""
    # Imported once every usage check has passed, because these load torch.
    from tqdm.contrib.logging import logging_redirect_tqdm

    from thermosynth.output.atomic import staged_dir
    from thermosynth.validation import transfer_setup as setup
    from thermosynth.validation.detectors import Classifier, max_minus_median
    from thermosynth.validation.transfer import transfer_report

    detectors = setup.build_detectors(
        options.detector_names,
        steps=args.steps,
        trim_fraction=args.trim_fraction,
        members=args.members,
    )
    thermal, region, fit_warnings = None, None, []
    if options.recipes and options.simulates:
        fit_warnings = _recipe_fit_warnings(options.recipes, source_shape)
        thermal, region = _thermal_factory(
            args, options.recipes, data, source_shape, options.size_px
        )
    generators = setup.build_generators(options.generator_names, thermal, region=region)

    with staged_dir(args.output, overwrite=args.overwrite) as stage:
        # Log records go through tqdm.write, which clears the progress bar
        # first, so that each record starts a line of its own.
        with logging_redirect_tqdm():
            result = transfer_report(
                data,
                generators,
                detectors,
                out_dir=stage,
                seed=args.seed,
                scorers={"max_minus_median": max_minus_median},
                supervised=setup.trimmed(Classifier, args.steps, args.trim_fraction),
                contamination=options.contamination,
                contamination_generators=[g for g in generators if g == "thermosynth"],
                severity_levels=options.levels,
                severity_generator=thermal,
                severity_detector=options.sweep_detector,
                region=region,
                n_boot=args.bootstrap,
                notes=_transfer_notes(args, options.skip_note, fit_warnings),
                jobs=args.jobs,
                progress=not args.no_progress,
            )
    _print_transfer_summary(args.output, result, generators)
    return 0


@dataclasses.dataclass(frozen=True)
class _TransferOptions:
    """The parsed and checked options of validate transfer, before any frame is read."""

    detector_names: list[str]
    generator_names: list[str]
    levels: list[float]
    sweep_detector: str | None
    contamination: float
    skip_note: str
    size_px: tuple[int, int] | None
    normal_where: dict[str, list[str]] | None
    real_where: dict[str, list[str]] | None
    recipes: list[tuple[Path, LoadedRecipe]]

    @property
    def simulates(self) -> bool:
        """Whether the run simulates rises, for the thermosynth generator or a sweep."""
        return "thermosynth" in self.generator_names or bool(self.levels)


def _transfer_options(args: argparse.Namespace) -> _TransferOptions:
    """Parse and check every option of validate transfer that needs no frames.

    Usage errors thus stop the command before it reads a frame or imports torch.
    """
    from thermosynth.output.atomic import check_writable
    from thermosynth.output.overlap import check_apart_from_inputs
    from thermosynth.validation import transfer_checks as checks

    inputs = _option_inputs(args, "--normal", "--real", "--metadata")
    inputs += [("--recipe file", path) for path in args.recipe or []]
    check_apart_from_inputs(args.output, inputs)
    check_writable(args.output, overwrite=args.overwrite)
    if args.jobs < 1:
        raise ThermosynthError(
            f"--jobs {args.jobs} is invalid; give 1 or more processes"
        )
    _check_counts(args, ("max_train", "max_test", "bootstrap", "bank_scenarios"))
    if not 1.0 <= args.contrast_spread < float("inf"):
        raise ThermosynthError(
            f"--contrast-spread {args.contrast_spread} is invalid; give a finite "
            "factor >= 1 (1 = none)"
        )
    detector_names = checks.check_detector_options(
        _names(args.detectors),
        steps=args.steps,
        trim_fraction=args.trim_fraction,
        members=args.members,
    )
    # --max-train caps the training normals, so a cap below the networks'
    # minimum fails whatever the frames hold.
    _check_training_normals(args, args.max_train)
    generator_names = checks.check_names(
        _names(args.generators), checks.GENERATOR_NAMES, "--generators"
    )
    levels = _severity_levels(args.severity, has_recipe=args.recipe is not None)
    _check_recipe_given(args.recipe, generator_names, levels)
    sweep_detector = checks.severity_detector_name(detector_names) if levels else None
    checks.check_contamination_fraction(args.contamination)
    contamination, skip_note = _contamination_fraction(
        args.contamination, detector_names, generator_names
    )
    options = _TransferOptions(
        detector_names=detector_names,
        generator_names=generator_names,
        levels=levels,
        sweep_detector=sweep_detector,
        contamination=contamination,
        skip_note=skip_note,
        size_px=_size_px(args.resize),
        normal_where=_parse_where(args.normal_where),
        real_where=_parse_where(args.real_where),
        recipes=[(path, load_recipe(path)) for path in args.recipe or []],
    )
    for path, loaded in options.recipes:
        # Transfer simulates its own rises, so the recipe's bank file is unused.
        check_apart_from_inputs(
            args.output, _recipe_inputs(loaded, bank=False, of=f" of --recipe {path}")
        )
    if options.simulates:
        for _, loaded in options.recipes:
            with _named_recipe(loaded):
                checks.check_transfer_recipe(loaded)
    return options


def _print_transfer_summary(
    output: Path, result: TransferResult, generators: dict[str, Any]
) -> None:
    """Print where the report is and each generator's image AUROC over all classes."""
    from thermosynth.validation.transfer import MIN_CI_ANOMALIES

    print(f"wrote transfer report to {output}/report.md")
    for row in result.image:
        if row["group"] == "all":
            interval = f"[{row['low']:.3f}, {row['high']:.3f}]"
            if math.isnan(row["low"]):
                interval = f"[n/a, n < {MIN_CI_ANOMALIES}]"
            print(
                f"{row['generator']:>14s} + {row['detector']:<10s} image AUROC "
                f"{row['auroc']:.3f} {interval}"
            )


def _check_training_normals(args: argparse.Namespace, n_train: int) -> None:
    """Raise ThermosynthError if the networks cannot train on ``n_train`` normals.

    Each network keeps at least one training normal for its validation
    split. Trimming (--trim-fraction above 0) ranks the normals in two folds,
    and `Trimmed` needs two frames per fold.
    """
    needed = 4 if args.trim_fraction > 0.0 else 2
    if n_train >= needed:
        return
    source = f"--max-train {args.max_train} keeps {n_train} training normals"
    fix = f"raise --max-train to {needed} or more"
    if n_train < args.max_train:
        source = f"the normal frames give {n_train} training normals"
        fix = "add normal frames"
    if args.trim_fraction > 0.0:
        reason = (
            f"--trim-fraction {args.trim_fraction:g} ranks them in two folds "
            f"and needs at least {needed}"
        )
        fix += ", or pass --trim-fraction 0"
    else:
        reason = "each network keeps one for validation, so at least 2 are needed"
    raise ThermosynthError(f"{source}, but {reason}; {fix}")


def _contamination_fraction(
    fraction: float, detector_names: Sequence[str], generator_names: Sequence[str]
) -> tuple[float, str]:
    """Return the --contamination to run and a report sentence where it is skipped.

    The run retrains the thermosynth generator's detectors that train on
    pseudo-anomalies and the one-class detectors, so without either there is
    nothing to rerun.
    """
    from thermosynth.validation.transfer_checks import PSEUDO_DETECTOR_NAMES

    one_class = [n for n in detector_names if n not in PSEUDO_DETECTOR_NAMES]
    thermosynth = "thermosynth" in generator_names
    if fraction == 0.0 or one_class or thermosynth:
        return fraction, ""
    note = (
        f"The contamination run (--contamination {fraction:g}) was skipped: it "
        "reruns the thermosynth generator and the one-class detectors "
        "(autoencoder, deep_svdd, knn), and --generators and --detectors choose "
        "neither."
    )
    logger.warning("%s Add one, or pass --contamination 0.", note)
    return 0.0, note


def _recipe_fit_warnings(
    recipes: Sequence[tuple[Path, LoadedRecipe]], shape: tuple[int, ...]
) -> list[str]:
    """Log and return a warning per way a recipe does not fit the --normal frames."""
    from thermosynth.validation.transfer_recipe_fit import recipe_fit_warnings

    found: list[str] = []
    for _, loaded in recipes:
        with _named_recipe(loaded):
            found += recipe_fit_warnings(loaded, shape)
    return found


def _thermal_factory(
    args: argparse.Namespace,
    recipes: Sequence[tuple[Path, LoadedRecipe]],
    data: TransferData,
    source_shape: tuple[int, ...],
    size_px: tuple[int, int] | None,
) -> tuple[ThermalFactory, np.ndarray | None]:
    """Simulate each recipe's bank; return the generator factory and the region.

    With several recipes, each pseudo-anomaly comes from one of them, chosen
    uniformly, and the region of interest is the union of theirs.
    """
    from thermosynth.validation import transfer_setup as setup

    factories, regions = [], []
    for path, loaded in recipes:
        loaded = _with_frames_levels_per_kelvin(loaded, path, data)
        with _named_recipe(loaded):
            region = setup.recipe_region(loaded, source_shape, size_px=size_px)
            factories.append(
                setup.thermal_factory(
                    loaded,
                    data.train_normal[0],
                    n_scenarios=args.bank_scenarios,
                    seed=args.seed,
                    spread=args.contrast_spread,
                    region=region,
                    normal=args.normal,
                )
            )
        regions.append(region)
    return setup.mixed_thermal_factory(factories), setup.union_region(regions)


def _with_frames_levels_per_kelvin(
    loaded: LoadedRecipe, path: Path, data: TransferData
) -> LoadedRecipe:
    """Fill camera.levels_per_kelvin from the frames' own scale, if unset.

    A thermosynth folder tree records its 8-bit step in K, so a recipe
    without the key can use it. A recipe that sets the key keeps its value.
    """
    if loaded.recipe.camera.levels_per_kelvin is not None:
        return loaded
    if data.kelvin_per_level is None:
        return loaded

    value = 1.0 / data.kelvin_per_level
    logger.info(
        "camera.levels_per_kelvin = %.6g from the training frames' scale "
        "(%.6g K per level)",
        value,
        data.kelvin_per_level,
    )
    filled = load_recipe(path, overrides=[f"camera.levels_per_kelvin={value:.9g}"])
    # The user typed no --set, so errors keep naming the file alone.
    return dataclasses.replace(filled, origins=loaded.origins)


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def _check_counts(args: argparse.Namespace, dests: Sequence[str]) -> None:
    """Raise ThermosynthError for a count option below 1, such as --max-train 0."""
    for dest in dests:
        value = getattr(args, dest)
        if value < 1:
            option = "--" + dest.replace("_", "-")
            raise ThermosynthError(f"{option} {value} is invalid; give 1 or more")


def _check_max_frames(max_frames: int) -> None:
    """Raise ThermosynthError if --max-frames keeps too few frames for closeness."""
    # The minimums are closeness.MIN_NORMAL_FRAMES (2 * C2ST_FOLDS) and
    # MIN_OTHER_FRAMES (C2ST_FOLDS), computed here because closeness imports torch.
    from thermosynth.validation.distances import C2ST_FOLDS

    if max_frames >= 2 * C2ST_FOLDS:
        return
    raise ThermosynthError(
        f"--max-frames {max_frames} is invalid; closeness needs at least "
        f"{2 * C2ST_FOLDS} normal frames ({C2ST_FOLDS} in each half of the normal "
        f"split) and {C2ST_FOLDS} pseudo or real frames, one per fold of the "
        f"classifier two-sample test, so give {2 * C2ST_FOLDS} or more"
    )


def _option_inputs(
    args: argparse.Namespace, *options: str
) -> list[tuple[str, Path | None]]:
    """Return (label, path) of input options such as --pseudo, for the -o check."""
    return [(f"{o} input", getattr(args, o[2:].replace("-", "_"))) for o in options]


def _recipe_inputs(
    loaded: LoadedRecipe, *, bank: bool = True, of: str = ""
) -> list[tuple[str, Path | None]]:
    """Return (label, path) of the files and folders that a recipe reads."""
    from thermosynth.recipe.runnable import input_paths

    return [(f"{key} input{of}", path) for key, path in input_paths(loaded, bank=bank)]


def _check_recipe_given(
    recipe: Path | None, generator_names: Sequence[str], levels: Sequence[float]
) -> None:
    """Raise ThermosynthError if --recipe is missing but the run simulates rises."""
    if recipe is not None:
        return
    if "thermosynth" in generator_names:
        raise ThermosynthError(
            "--recipe is missing, but the thermosynth generator in --generators "
            "simulates its pseudo-anomalies from a recipe; pass --recipe "
            "RECIPE.yaml, or leave thermosynth out of --generators"
        )
    if levels:
        raise ThermosynthError(
            "--recipe is missing, but the severity sweep scales rises simulated "
            "from a recipe; pass --recipe RECIPE.yaml, or --severity none"
        )


def _severity_levels(text: str | None, *, has_recipe: bool) -> list[float]:
    """Parse --severity. Without the option, the sweep runs only with a recipe."""
    if text is None:
        if not has_recipe:
            logger.info("no --recipe, so the severity sweep is skipped")
            return []
        text = _DEFAULT_SEVERITY
    if text.strip().lower() in ("", "none"):
        return []
    try:
        levels = [float(value) for value in _names(text)]
    except ValueError:
        levels = []
    if not levels or min(levels) <= 0:
        raise ThermosynthError(
            f"--severity {text!r} is invalid; give factors > 0 such as 0.5,1,2, or none"
        )
    return levels


def _warn_if_large(shape: tuple[int, ...], *, resized: bool) -> None:
    """Log a hint to use --resize when the frames make training slow."""
    height, width = shape
    if resized or height * width <= _LARGE_FRAME_PX:
        return
    logger.warning(
        "frames are %d x %d px (height x width); each training step's cost grows "
        "with the pixel count, so pass --resize HxW (such as %dx%d) to train "
        "on smaller frames",
        height,
        width,
        round(height / 2),
        round(width / 2),
    )


def _size_px(text: str | None) -> tuple[int, int] | None:
    """Parse ``--resize HxW`` into (height, width) [px]; None keeps the size."""
    if text is None:
        return None
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if match is None or min(int(match[1]), int(match[2])) < _MIN_SIZE_PX:
        raise ThermosynthError(
            f"--resize {text!r} is invalid; give height x width in pixels, each "
            f"at least {_MIN_SIZE_PX}, such as 64x80"
        )
    return int(match[1]), int(match[2])


def _transfer_notes(
    args: argparse.Namespace, skip_note: str = "", warnings: Sequence[str] = ()
) -> str:
    """Describe the run's command, inputs and options, with resolved paths.

    Each of ``warnings`` follows as a paragraph that starts "Warning:".
    """
    from thermosynth.validation.report_header import command_line_text

    recipe, bank = "none", ""
    if args.recipe is not None:
        recipe = ", ".join(f"`{Path(path).resolve()}`" for path in args.recipe)
        bank = (
            f"{args.bank_scenarios} simulated scenarios in the thermosynth bank, "
            f"contrast spread {args.contrast_spread:g}; "
        )
    setup = (
        f"Normal frames: `{Path(args.normal).resolve()}`; real anomalies: "
        f"`{Path(args.real).resolve()}`; recipe: {recipe}; "
        f"seed {args.seed}; {args.steps} training steps per network; {bank}"
        f"trim fraction {args.trim_fraction:g}"
        f"{_members_text(args.members, _names(args.detectors))}"
        f"{_resize_text(args.resize)}."
    )
    command = command_line_text(getattr(args, "command_line", []))
    parts = [command, setup, skip_note]
    parts += [f"Warning: {warning}." for warning in warnings]
    return "\n\n".join(part for part in parts if part)


def _resize_text(text: str | None) -> str:
    if text is None:
        return ""
    height, width = _size_px(text) or (0, 0)
    return f"; frames resized to {height} x {width} px (height x width)"


def _members_text(members: int, detector_names: Sequence[str]) -> str:
    """Say how many networks the chosen classifier and DRAEM each train, if any."""
    # --detectors matches names ignoring case, as check_names does.
    lowered = {name.lower() for name in detector_names}
    chosen = [label for name, label in _ENSEMBLE_LABELS if name in lowered]
    if not chosen:
        return ""
    subject = " and ".join(chosen)
    each = " each" if len(chosen) > 1 else ""
    if members == 1:
        return f"; {subject} one network{each}"
    return (
        f"; {subject}{each} an ensemble of {members} networks whose scores are "
        "averaged (the supervised ceiling is one network)"
    )


# Detectors that --members turns into ensembles, with their names on the page.
_ENSEMBLE_LABELS = (("classifier", "classifier"), ("draem", "DRAEM"))


if __name__ == "__main__":
    sys.exit(main())
