"""Batch inference over many files: on this machine, or on a Ray cluster (the ``cluster`` extra).

Both engines run the one ``Predictor`` and write the same rows (rows.py) to an appendable output
(sinks.py: JSON lines or Parquet), so a job killed half-way resumes where it stopped: inputs whose
sha256 is already in the output are skipped (sources.py).
"""
