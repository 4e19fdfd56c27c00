#!/usr/bin/env bash
# Install the real DICOM software the DICOM node's tests talk to: dcmtk (echoscu, storescu, findscu),
# Orthanc (a PACS) and its DICOMweb plugin (STOW-RS, QIDO-RS, WADO-RS; tests/dicom_node/test_dicomweb.py). Idempotent and quiet: does nothing when the binaries are already there, prints
# apt's output only when something fails.
set -euo pipefail

have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }  # Orthanc lives in /usr/sbin

need=()
{ have echoscu && have storescu && have findscu; } || need+=(dcmtk)
have Orthanc || need+=(orthanc)
DICOMWEB_PLUGIN=/usr/share/orthanc/plugins/libOrthancDicomWeb.so
[ -f "$DICOMWEB_PLUGIN" ] || need+=(orthanc-dicomweb)
[ ${#need[@]} -eq 0 ] && exit 0

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
export DEBIAN_FRONTEND=noninteractive
# --no-install-recommends keeps Orthanc's other plugins and docs out; the tests load only DICOMweb.
if ! { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"; } >"$log" 2>&1; then
  cat "$log" >&2
  echo "dicom.sh: installing ${need[*]} failed" >&2
  exit 1
fi

# Where a service manager runs, the package starts a system Orthanc on 4242/8042; the tests start
# their own on free ports and do not need it.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet orthanc 2>/dev/null; then
  $SUDO systemctl stop orthanc >/dev/null 2>&1 || true
fi

for bin in echoscu storescu findscu Orthanc; do
  have "$bin" || { echo "dicom.sh: $bin is still missing after installing ${need[*]}" >&2; exit 1; }
done
[ -f "$DICOMWEB_PLUGIN" ] || { echo "dicom.sh: $DICOMWEB_PLUGIN is still missing" >&2; exit 1; }
