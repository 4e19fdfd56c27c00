"""Training, metrics, calibration and the model package writer.

``metrics``, ``calibration`` and ``ood`` are NumPy-only (evaluation uses them without PyTorch);
``loop``, ``run`` and ``export`` need the ``train`` extra.
"""
