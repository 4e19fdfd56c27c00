"""How results reach the hospital's other systems: FHIR R4B bundles for the EHR and their push outbox.
Beneath the doors (the HTTP route and the push both build the same bundle), above the store."""
