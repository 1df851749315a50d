#!/usr/bin/env bash
# slot-interface: a Python virtual environment with an independent SAS host library from PyPI
# (sas_comm_py, on pyserial), which tests/python_peer.rs uses to drive egm-sim. Idempotent.
set -euo pipefail
venv=/opt/club-venv-sas
if "$venv/bin/python" -c 'import sas_comm_py, serial' 2>/dev/null; then
  exit 0
fi
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check 'sas_comm_py==0.1.0' 'pyserial==3.5'
"$venv/bin/python" -c 'import sas_comm_py, serial'
