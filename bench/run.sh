#!/usr/bin/env bash
# Our server beside its peers on the shared harness (../shared/bench/run.sh): workloads a–g
# in one run, one table, ratios against the best peer. The table is also recorded, with the
# date, the machine and the command, in bench/results.md (the latest run per config).
#
#   bench/run.sh                                   # bench/server.toml against nginx, lighttpd, h2o
#   CONFIG=shipped bench/run.sh                    # config/server.toml as shipped (bench/shipped.py)
#   CONFIG=bench/server-filters.toml bench/run.sh  # the same chain behind headers + compress
#   PEERS="nginx custom" WORKLOADS="a e" ROUNDS=1 DURATION=2 bench/run.sh   # a quick look
#
# CI does not run it; tests never assert timings. Quote ratios, not absolute figures.
set -euo pipefail
cd "$(dirname "$0")/.."
harness=../shared/bench/run.sh
config=${CONFIG:-bench/server.toml}
name=$config
out=${OUT:-$(mktemp -d /tmp/cases-bench.XXXXXX)}
[ -x "$harness" ] || [ -f "$harness" ] || { echo "no shared harness at $harness" >&2; exit 1; }
cargo build --release --workspace --quiet
if [ "$config" = shipped ]; then
  # The shipped chain, access log on: config/server.toml with the harness's limits.
  python3 bench/shipped.py target/bench-shipped.toml
  config=target/bench-shipped.toml
fi
export CUSTOM_CMD="$PWD/target/release/server --config $PWD/$config --listen 127.0.0.1:{port} --root {root} --log-level error"
export CUSTOM_NAME=${CUSTOM_NAME:-ours}
export PEERS=${PEERS:-"nginx lighttpd h2o custom"}
export ROUNDS=${ROUNDS:-2} DURATION=${DURATION:-4} CEILING=${CEILING:-0} OUT="$out"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
bash "$harness"
record() {
  echo "## $name, $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  echo "Machine: $(nproc) cores, $(uname -sr), load before the run $load_before."
  echo "Command: \`CONFIG=$name PEERS=\"$PEERS\" ROUNDS=$ROUNDS DURATION=$DURATION bench/run.sh\`"
  echo
  cat "$out/table.md"
  echo
}
results=bench/results.md
touch "$results"
python3 bench/record.py "$results" "$name" "$(record)"
echo "table: $out/table.md; recorded in $results"
