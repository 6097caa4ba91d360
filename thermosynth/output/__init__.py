"""Writers: a streamed HDF5 file and an anomalib / MVTec folder tree."""

from typing import TYPE_CHECKING

from thermosynth.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from thermosynth.output.folder import FolderWriter
    from thermosynth.output.hdf5 import HDF5Writer
    from thermosynth.output.sample import Sample
else:
    __getattr__, __dir__ = lazy_exports(
        __name__,
        {
            "folder": ("FolderWriter",),
            "hdf5": ("HDF5Writer",),
            "sample": ("Sample",),
        },
    )

__all__ = ["FolderWriter", "HDF5Writer", "Sample"]
