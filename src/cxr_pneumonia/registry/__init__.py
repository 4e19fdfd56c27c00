"""The model lifecycle: an MLflow Model Registry of packages, gated promotion, and serving from it
(hot swap, shadow, A/B). Beneath the doors (service, DICOM node, CLI), above the store."""
