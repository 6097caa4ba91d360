"""Shipped recipes pointed at a folder of greyscale PNGs, for transfer tests."""

from pathlib import Path

import yaml

RECIPES = Path(__file__).resolve().parents[1] / "recipes"


def write_recipe(
    name: str, frames_dir: Path, path: Path, *, changes: dict | None = None, **frames
) -> Path:
    """Write recipes/``name`` reading 8-bit PNG levels from ``frames_dir`` to ``path``.

    Extra ``frames`` keys (such as ``valid_mask``) join the frames section;
    ``changes`` maps "section.key" to a value.
    """
    data = yaml.safe_load((RECIPES / name).read_text())
    data["frames"] = {
        "kind": "images",
        "path": str(frames_dir),
        "pattern": "*.png",
        "mode": "greyscale",
        "unit": "level",
        **frames,
    }
    data["split"] = {"train_normal": 2, "test_normal": 1, "test_anomalous": 1}
    data["output"] = {"dir": str(path.parent / "unused")}
    data.pop("bank", None)
    for key, value in (changes or {}).items():
        section, field = key.split(".")
        data[section][field] = value
    path.write_text(yaml.safe_dump(data))
    return path


def write_pv_recipe(frames_dir: Path, path: Path) -> Path:
    """Write the PV recipe reading 8-bit PNG levels from ``frames_dir`` to ``path``."""
    return write_recipe("pv-module-hotspots.yaml", frames_dir, path)
