"""Writers: a streamed HDF5 file and an anomalib / MVTec folder tree."""

from thermosynth.output.folder import FolderWriter
from thermosynth.output.hdf5 import HDF5Writer
from thermosynth.output.sample import Sample

__all__ = ["FolderWriter", "HDF5Writer", "Sample"]
