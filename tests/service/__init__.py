"""Tests of the REST service (src/cxr_pneumonia/service)."""
