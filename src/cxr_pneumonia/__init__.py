"""CXR Pneumonia Detector: decision support for pneumonia on chest radiographs."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("cxr-pneumonia")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0+unknown"

DISCLAIMER = "Decision support only, not a diagnosis: a qualified clinician must review every result."
