#!/usr/bin/env bash
# The main job, from a fresh clone: build cif and load the real Binance captures into DuckDB,
# printing what was stored. Usage: bash scripts/demo.sh [CAPTURE_FILE ...]
set -euo pipefail
. "$(dirname "$0")/setup.sh"
ensure_venv dev
data_dir="${CIF_DATA_DIR:-$cif_root/../shared/data/binance}"
if [ "$#" -gt 0 ]; then files=("$@"); else files=("$data_dir"/*.gz); fi
db="${CIF_DB:-$cif_root/data/cif.duckdb}"
log "importing ${#files[@]} capture file(s) into $db"
cif import "${files[@]}" --db "$db"
