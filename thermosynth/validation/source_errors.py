"""Messages for frame sources that `thermosynth.validation.io` cannot read as given.

Each function returns the text of one FrameError: what is wrong with the
folder, tree or filter, the values involved and what to do instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path


def without_masks_hint(root: Path) -> str:
    """Return the hint that removing ``root/ground_truth`` skips the masks."""
    return f"or remove {root / 'ground_truth'} to run without pixel metrics"


def missing_masks_message(
    root: Path,
    entries: Sequence[tuple[Path, str | None]],
    missing: Mapping[str, Sequence[Path]],
    by_kind: Mapping[str, Mapping[str, Sequence[Path]]],
    suffixes: Sequence[str],
) -> str:
    """Describe every anomalous image of an MVTec tree without a mask.

    ``entries`` are (image, anomaly class) pairs, ``missing`` the images
    without a mask by class, and ``by_kind`` each class's mask files by
    stem. One clause per class counts its images without a mask and names up
    to three files of its mask folder that match no image, which shows a
    naming mistake such as ``<stem>-mask.png``.
    """
    clauses = []
    for kind, images in missing.items():
        folder = root / "ground_truth" / kind
        stems = {file.stem for file, entry_kind in entries if entry_kind == kind}
        verb = "has" if len(images) == 1 else "have"
        clause = (
            f"{len(images)} of {len(stems)} images in {images[0].parent} {verb} "
            f"no mask in {folder}"
        )
        clauses.append(clause + _unmatched_masks(by_kind[kind], stems))

    example = next(iter(missing.values()))[0]
    listed = ", ".join(suffix.lstrip(".") for suffix in suffixes)
    return (
        f"{'; '.join(clauses)}. Expected <stem>_mask.png or <stem>.png for each "
        f"image <stem>, with any of the suffixes {listed}, such as "
        f"{example.stem}_mask.png for {example.name}; an MVTec tree with a "
        "ground_truth folder needs a mask for every anomalous image, so add "
        f"or rename the masks, {without_masks_hint(root)}"
    )


def _unmatched_masks(by_stem: Mapping[str, Sequence[Path]], stems: set[str]) -> str:
    """Name up to three mask files, listed by stem, that match no image stem."""
    if not by_stem:
        return "; that folder contains no image or .npy file"
    unmatched = [
        file
        for stem, files in sorted(by_stem.items())
        if stem not in stems and stem.removesuffix("_mask") not in stems
        for file in files
    ]
    if not unmatched:
        return ""
    named = ", ".join(file.name for file in unmatched[:3])
    more = f" and {len(unmatched) - 3} more" if len(unmatched) > 3 else ""
    return f"; that folder contains e.g. {named}{more}, which match no image"


def first_two(files: Sequence[Path]) -> str:
    """Name the first two of ``files``, and how many more there are."""
    named = ", ".join(str(f) for f in files[:2])
    return named if len(files) <= 2 else f"{named} and {len(files) - 2} more"


def no_frame_files_message(folder: Path, suffixes: Sequence[str]) -> str:
    """Say that a plain folder contains no file with one of ``suffixes``."""
    folders = sorted(p.name for p in folder.iterdir() if p.is_dir())
    inside = f" (it contains the folders {', '.join(folders[:3])})" if folders else ""
    return (
        f"{folder} contains no PNG, JPEG, TIFF, BMP or .npy files "
        f"({', '.join(suffixes)}), the files that a plain folder of frames is "
        f"read for{inside}; give the folder that contains the frames"
    )


def filter_text(
    where: Mapping[str, Sequence[str]] | None,
    option: str | None,
    metadata: str | Path | None,
) -> str:
    """Name a metadata filter in errors: as typed after ``option``, or as a dict.

    Without ``where`` the filter is the ``metadata`` file alone.
    """
    if not where:
        return f"the metadata file {metadata}"
    if option is None:
        return f"the filter {dict(where)}"
    typed = " ".join(f"{key}={','.join(values)}" for key, values in where.items())
    return f"{option} {typed}"


def labelled_filter_message(path: Path, is_hdf5: bool, label: str, named: str) -> str:
    """Explain that a labelled source takes no metadata filter, and what to do.

    ``label`` is the set's label ("normal", "anomalous" or "any") and
    ``named`` the filter as `filter_text` names it.
    """
    if is_hdf5:
        source = "a thermosynth HDF5 file"
        normal, anomalous = "normal samples, label 0", "anomalous samples, label 1"
    else:
        source = "an MVTec tree"
        normal = "normal frames from train/good and test/good"
        anomalous = "anomalous frames from test/<kind>"
    read = {"normal": normal, "anomalous": anomalous}.get(
        label, f"{normal}; {anomalous}"
    )
    return (
        f"{named} does not apply to {path}, because it is {source}, which is "
        f"read by its labels ({read}), and metadata filters select files of a "
        f"plain image folder only. Leave out {named}, or copy the frames to "
        "keep into a plain folder and filter that folder instead"
    )
