"""Tests of the store beneath the doors (src/cxr_pneumonia/store)."""
