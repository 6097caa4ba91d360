"""Every benchmark script prints its --help and exits without running."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import thermosynth

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
MODULES = sorted(path.name for path in BENCHMARKS.glob("*.py"))
# Modules whose names start with "_" hold shared helpers, not benchmarks.
SCRIPTS = [name for name in MODULES if not name.startswith("_")]
ENV = {
    **os.environ,
    "PYTHONPATH": str(Path(thermosynth.__file__).parents[1]),
    "OMP_NUM_THREADS": "1",
}

# Runs each script as __main__ with --help, all in one interpreter so that
# torch and thermosynth load once, and prints {script: [exit code, stdout]}.
# A script that returns instead of exiting gets the code "ran", and one that
# raises gets the exception's repr.
DRIVER = """
import contextlib, io, json, runpy, sys
from pathlib import Path
folder = Path(sys.argv[1])
sys.path.insert(0, str(folder))
runs = {}
for name in sys.argv[2:]:
    sys.argv = [str(folder / name), "--help"]
    output = io.StringIO()
    try:
        with contextlib.redirect_stdout(output):
            runpy.run_path(sys.argv[0], run_name="__main__")
        runs[name] = ["ran", output.getvalue()]
    except SystemExit as exit:
        runs[name] = [exit.code, output.getvalue()]
    except Exception as error:
        runs[name] = [repr(error), output.getvalue()]
print(json.dumps(runs))
"""


@pytest.fixture(scope="module")
def help_runs(tmp_path_factory) -> tuple[dict, Path]:
    """Run every script's --help on a copy of benchmarks/, return runs and copy.

    The copy sits in a fresh root, so a script that ignored --help would
    write its results there and not over the tracked ones.
    """
    copy = tmp_path_factory.mktemp("root") / "benchmarks"
    copy.mkdir()
    for name in MODULES:
        shutil.copy(BENCHMARKS / name, copy / name)
    done = subprocess.run(
        [sys.executable, "-c", DRIVER, str(copy), *SCRIPTS],
        cwd=copy.parent,
        env=ENV,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    return json.loads(done.stdout.splitlines()[-1]), copy


@pytest.mark.parametrize("name", SCRIPTS)
def test_help_exits_zero(help_runs, name):
    code, output = help_runs[0][name]
    assert code == 0, f"{name} --help ended with {code!r}"
    assert output.startswith("usage: ")


@pytest.mark.parametrize("name", SCRIPTS)
def test_help_shows_docstring(help_runs, name):
    source = (BENCHMARKS / name).read_text()
    summary = source.split('"""')[1].splitlines()[0]
    output = help_runs[0][name][1]
    assert " ".join(summary.split()) in " ".join(output.split())


def test_help_writes_no_results(help_runs):
    copy = help_runs[1]
    written = [
        path.relative_to(copy.parent)
        for path in copy.parent.rglob("*")
        if path.is_file() and path.suffix not in (".py", ".pyc")
    ]
    assert written == []
    assert not (copy / "results").exists()


def test_add_seeds_rejects_zero(capsys):
    sys.path.insert(0, str(BENCHMARKS))
    try:
        from _cli import add_seeds, script_parser
    finally:
        sys.path.remove(str(BENCHMARKS))
    parser = script_parser("seeds")
    add_seeds(parser, "training seeds")

    assert parser.parse_args(["--seeds", "2"]).seeds == 2
    assert parser.parse_args([]).seeds == 3
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args(["--seeds", "0"])
    assert exit_info.value.code == 2
    assert "argument --seeds: 0 is invalid; give 1 or more" in capsys.readouterr().err
