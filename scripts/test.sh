#!/usr/bin/env bash
# Test entry point (`go tool -modfile=tools.go.mod task test` calls it):
# starts PostgreSQL and Kafka (scripts/testenv/*.sh), runs the Go tests
# through gotestsum, stops both services on any exit.
#
#   bash scripts/test.sh                         # go test ./...
#   bash scripts/test.sh -run TestX ./domain/... # extra args go to `go test`
#
# LIVECORE_TESTENV_KEEP=1 leaves the services running afterwards (to iterate
# with plain `go test` after `eval "$(scripts/testenv/postgres.sh env)"`...).
set -euo pipefail
cd "$(dirname "$0")/.."

PG=scripts/testenv/postgres.sh
KAFKA=scripts/testenv/kafka.sh

stop_services() {
	[[ ${LIVECORE_TESTENV_KEEP:-} == 1 ]] && return 0
	bash "$KAFKA" stop || echo "test.sh: WARNING: stopping Kafka failed" >&2
	bash "$PG" stop || echo "test.sh: WARNING: stopping PostgreSQL failed" >&2
}
trap stop_services EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Start both services in parallel, each into its own output file, then show
# the outputs one after the other.
out=$(mktemp -d)
start=$SECONDS
bash "$PG" start >"$out/pg" 2>&1 &
pg_job=$!
bash "$KAFKA" start >"$out/kafka" 2>&1 &
kafka_job=$!
pg_rc=0 kafka_rc=0
wait "$pg_job" || pg_rc=$?
wait "$kafka_job" || kafka_rc=$?
cat "$out/pg" "$out/kafka"
rm -rf "$out"
if ((pg_rc != 0 || kafka_rc != 0)); then
	echo "test.sh: FAILED to start test services (postgres rc=$pg_rc, kafka rc=$kafka_rc); see above" >&2
	exit 1
fi
echo "test.sh: PostgreSQL and Kafka ready in $((SECONDS - start))s"

root=${LIVECORE_TESTENV_DIR:-/tmp/livecore-testenv}
# shellcheck disable=SC1091
source "$root/pg/pg.env"
# shellcheck disable=SC1091
source "$root/kafka/kafka.env"
# Tests that need a service fail (not skip) when its variable is missing.
export LIVECORE_TEST_REQUIRE_SERVICES=1

# Default package pattern ./... unless a package (path or pattern) was given.
args=("$@")
have_pkg=0
for a in "${args[@]}"; do
	case $a in
	./* | ../* | github.com/* | all | std) have_pkg=1 ;;
	esac
done
((have_pkg)) || args+=(./...)

rc=0
go tool -modfile=tools.go.mod gotestsum --format testname -- -count=1 -timeout 25m "${args[@]}" || rc=$?
exit "$rc"
