"""Inference: the Predictor every door (CLI, API, web page, DICOM node) calls. No PyTorch here."""

from .prediction import Finding, ModelRef, Prediction, Timings
from .predictor import Predictor

__all__ = ["Finding", "ModelRef", "Prediction", "Predictor", "Timings"]
