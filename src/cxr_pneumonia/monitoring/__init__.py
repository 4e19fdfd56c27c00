"""Production monitoring: drift of inputs, features and outputs against a reference made from the
model's validation data, and performance from clinician reviews. Used by the REST service and the DICOM
node alike (through the store's observer hook), and offline by ``cxr monitor replay``."""
