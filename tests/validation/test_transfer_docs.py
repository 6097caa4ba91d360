"""The Python API example of docs/validation_transfer.md against its command.

The example states that it trains and scores as the command printed below
it. Both run here with the data loading, the rise simulation and the
training stubbed out, and the arguments they pass to ``transfer_report``
are compared.
"""

import inspect
import re
import shlex
from pathlib import Path
from types import SimpleNamespace

import numpy as np

import thermosynth.recipe
from thermosynth import cli
from thermosynth.validation import (
    transfer,
    transfer_data,
    transfer_recipe_fit,
    transfer_setup,
)
from thermosynth.validation.transfer import TransferResult

DOC = Path(__file__).resolve().parents[2] / "docs" / "validation_transfer.md"
COMPARED = (
    "detectors",
    "supervised",
    "scorers",
    "contamination",
    "contamination_generators",
    "severity_levels",
    "severity_detector",
    "region",
    "seed",
    "n_boot",
    "n_pixel",
    "jobs",
)
DEFAULTS = {
    name: parameter.default
    for name, parameter in inspect.signature(
        transfer.transfer_report
    ).parameters.items()
}


def _doc_parts() -> tuple[str, list[str]]:
    """Return the API example's code and the arguments of its command."""
    text = DOC.read_text()
    code = re.search(r"## Python API.*?```python\n(.*?)```", text, re.S)
    command = re.search(r"as this command does.*?```\n(.*?)```", text, re.S)
    assert code is not None and command is not None
    words = shlex.split(command[1].replace("\\\n", " "))
    assert words[:3] == ["thermosynth", "validate", "transfer"]
    return code[1], words[1:]


def _stub_inputs(monkeypatch) -> list[dict]:
    """Stub loading, simulation and training; return the list of report calls."""
    data = SimpleNamespace(
        train_normal=np.zeros((8, 4, 4), np.uint8),
        reserve_anomalies=np.zeros((4, 4, 4), np.uint8),
        kelvin_per_level=None,
    )
    camera = SimpleNamespace(levels_per_kelvin=20.0, emissivity_regions={})
    layout = SimpleNamespace(kind="module", options=dict)
    bank = SimpleNamespace(mode="off", model_fields_set=set())
    recipe = SimpleNamespace(
        camera=camera, frames=SimpleNamespace(), layout=layout, bank=bank
    )
    loaded = SimpleNamespace(recipe=recipe, source="r")
    calls: list[dict] = []

    def report(data, generators, detectors=None, **options):
        calls.append({"generators": generators, "detectors": detectors, **options})
        return TransferResult()

    monkeypatch.setattr(transfer_data, "load_transfer_data", lambda *a, **k: data)
    monkeypatch.setattr(transfer_setup, "thermal_factory", lambda *a, **k: "make")
    monkeypatch.setattr(transfer_setup, "recipe_region", lambda *a, **k: None)
    monkeypatch.setattr(transfer_recipe_fit, "recipe_fit_warnings", lambda *a: [])
    monkeypatch.setattr(thermosynth.recipe, "load_recipe", lambda *a, **k: loaded)
    monkeypatch.setattr(cli, "load_recipe", lambda *a, **k: loaded)
    monkeypatch.setattr(transfer, "transfer_report", report)
    return calls


def test_api_example_matches_command(monkeypatch, tmp_path):
    code, arguments = _doc_parts()
    calls = _stub_inputs(monkeypatch)

    exec(compile(code, str(DOC), "exec"), {})
    assert cli.main([*arguments, "-o", str(tmp_path / "report")]) == 0
    example, command = calls

    assert list(example["generators"]) == list(command["generators"])
    for name in COMPARED:
        value = example.get(name, DEFAULTS[name])
        expected = command.get(name, DEFAULTS[name])
        if name in ("detectors", "supervised"):
            # Trimmed contains an array, so compare the constructor arguments.
            assert repr(value) == repr(expected), name
        else:
            assert value == expected, name
