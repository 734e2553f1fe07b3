#!/usr/bin/env bash
# The main job, from a fresh clone: build cif, load the real Binance captures into DuckDB and
# replay them offline into features and forecasts. Usage: bash scripts/demo.sh [CAPTURE_FILE ...]
set -euo pipefail
. "$(dirname "$0")/setup.sh"
ensure_venv dev
data_dir="${CIF_DATA_DIR:-$cif_root/../shared/data/binance}"
if [ "$#" -gt 0 ]; then files=("$@"); else files=("$data_dir"/*.gz); fi
db="${CIF_DB:-$cif_root/data/cif.duckdb}"
log "importing ${#files[@]} capture file(s) into $db"
cif import "${files[@]}" --db "$db"
symbols="$(python -c "import duckdb,sys; c=duckdb.connect(sys.argv[1], read_only=True); print(','.join(r[0].lower() for r in c.execute('SELECT DISTINCT symbol FROM trades ORDER BY 1').fetchall()))" "$db")"
out="$(dirname "$db")/replay.parquet"
log "features and forecasts of $symbols over the stored history (offline replay) into $out"
cif replay --offline --db "$db" --symbols "$symbols" --out "$out"
