"""Usage errors and --help of the CLI return before torch or FiPy load."""

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

import thermosynth

HEAVY = ("torch", "fipy")
# The subprocess imports the thermosynth that this test imported.
ENV = {**os.environ, "PYTHONPATH": str(Path(thermosynth.__file__).parents[1])}
PACKAGES = ("camera", "frames", "geometry", "output", "physics", "validation")

SCRIPT = """
import contextlib, io, sys
from thermosynth.cli import main
quiet = io.StringIO()
with contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
    try:
        code = main(sys.argv[1:])
    except SystemExit as exit:
        code = exit.code
print(code, *sorted(m for m in {heavy} if m in sys.modules))
"""


def _python(script: str, cwd, *args: str) -> list[str]:
    """Run ``script`` in a fresh interpreter; return the words it printed."""
    done = subprocess.run(
        [sys.executable, "-c", script, *args],
        cwd=cwd,
        env=ENV,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return done.stdout.split()


def _run(args: list[str], cwd) -> list[str]:
    """Run ``main(args)`` in a fresh interpreter; return its code and heavy modules."""
    return _python(SCRIPT.format(heavy=HEAVY), cwd, *args)


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["generate", "--help"],
        ["preview", "--help"],
        ["calibrate", "--help"],
        ["validate", "closeness", "--help"],
        ["validate", "transfer", "--help"],
    ],
)
def test_help_skips_torch_and_fipy(args, tmp_path):
    assert _run(args, tmp_path) == ["0"]


@pytest.mark.parametrize(
    "args",
    [
        ["generate", "missing.yaml"],
        ["preview", "missing.yaml"],
        ["validate", "closeness", "--normal", "/no/x", "--pseudo", "/no/y"],
        ["validate", "transfer", "--normal", "/no/x", "--real", "/no/y"],
        [
            "validate",
            "transfer",
            "--normal",
            "/no/x",
            "--real",
            "/no/y",
            "--generators",
            "cutpaste",
        ],
        [
            "validate",
            "transfer",
            "--normal",
            "/no/x",
            "--real",
            "/no/y",
            "--detectors",
            "svm",
            "--generators",
            "cutpaste",
        ],
    ],
)
def test_usage_errors_skip_torch_and_fipy(args, tmp_path):
    assert _run(args, tmp_path) == ["2"]


def test_validation_import_skips_torch(tmp_path):
    script = "import sys, thermosynth.validation; print('torch' in sys.modules)"

    assert _python(script, tmp_path) == ["False"]


@pytest.mark.parametrize("name", PACKAGES)
def test_package_exports_every_name(name):
    package = importlib.import_module(f"thermosynth.{name}")
    star: dict[str, object] = {}
    exec(f"from thermosynth.{name} import *", star)

    for public in package.__all__:
        assert star[public] is getattr(package, public), public
        assert public in dir(package), public
    with pytest.raises(AttributeError, match="has no attribute 'no_such_name'"):
        package.no_such_name  # noqa: B018


def test_package_attribute_imports_submodule(tmp_path):
    script = (
        "import thermosynth.geometry, thermosynth.validation\n"
        "print(thermosynth.geometry.materials.__name__)\n"
        "print(thermosynth.validation.metrics.__name__)\n"
    )

    names = _python(script, tmp_path)

    assert names == ["thermosynth.geometry.materials", "thermosynth.validation.metrics"]
