"""Backbones, the classifier, and ONNX export (PyTorch; needs the ``train`` extra)."""
