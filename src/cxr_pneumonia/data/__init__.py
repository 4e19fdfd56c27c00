"""Datasets: catalog (manifests, versions), patient-level splits, training datasets."""
