"""Training jobs an administrator starts from the service: recalibrate (from reviewed cases, no
images, no PyTorch), train and tune (on an allowed dataset path, only where the ``train`` extra is
installed). Each runs in its own process (``python -m cxr_pneumonia.jobs.runner JOB_ID``), one at a
time across every replica (a unique claim in the ``jobs`` table). docs/jobs.md.

Beneath the doors: the service starts and reads jobs through here; the work itself is the ``cxr``
commands (recalibrate, train, tune, models register) run as subprocesses.
"""
