#!/usr/bin/env bash
# Benchmark entry point (`go tool -modfile=tools.go.mod task bench` calls it):
# runs every Go benchmark once (no unit tests), with PostgreSQL and Kafka up
# so the side-by-side comparisons include the real servers.
#
#   bash scripts/bench.sh                                  # all packages
#   bash scripts/bench.sh ./adapters/eventstore/pebble/    # one package
#   BENCHTIME=3s COUNT=3 bash scripts/bench.sh             # longer, repeated
#
# Figures on these shared 2-core machines are noisy: compare numbers from one
# run and take medians (COUNT>1 and benchstat). Results: docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."

stop_services() {
	bash scripts/testenv/kafka.sh stop || true
	bash scripts/testenv/postgres.sh stop || true
}
trap stop_services EXIT
bash scripts/testenv/postgres.sh start
bash scripts/testenv/kafka.sh start
root=${LIVECORE_TESTENV_DIR:-/tmp/livecore-testenv}
# shellcheck disable=SC1091
source "$root/pg/pg.env"
# shellcheck disable=SC1091
source "$root/kafka/kafka.env"

pkgs=("$@")
[[ ${#pkgs[@]} -eq 0 ]] && pkgs=(./...)
go test -run '^$' -bench . -benchtime "${BENCHTIME:-1x}" -count "${COUNT:-1}" -timeout 60m "${pkgs[@]}"
