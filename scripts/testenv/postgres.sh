#!/usr/bin/env bash
# Private PostgreSQL server for the test suite.
#
#   scripts/testenv/postgres.sh start   # install if needed, init once, start, print env
#   scripts/testenv/postgres.sh stop    # stop it (no-op when not running)
#   scripts/testenv/postgres.sh env     # print the env line (fails when not running)
#
# State lives in ${LIVECORE_TESTENV_DIR:-/tmp/livecore-testenv}/pg: the cluster
# (kept across stop/start), its log, and pg.env with
#   export LIVECORE_TEST_PG_DSN=postgres://livecore:livecore@127.0.0.1:PORT/livecore_test?sslmode=disable
# The server listens only on 127.0.0.1, on the first free port from 55432 up,
# and runs as the OS user "postgres" when this script runs as root.
# fsync stays ON: durability benchmarks compare against it.
set -euo pipefail

ROOT=${LIVECORE_TESTENV_DIR:-/tmp/livecore-testenv}
STATE=$ROOT/pg
DATA=$STATE/data
SOCK=$STATE/sock
LOG=$STATE/postgres.log
ENVF=$STATE/pg.env
MARK=$STATE/initialized
DB=livecore_test
DBUSER=livecore
DBPASS=livecore
FIRST_PORT=${LIVECORE_TEST_PG_PORT:-55432}

die() {
	echo "postgres.sh: ERROR: $*" >&2
	if [[ -s $LOG ]]; then
		echo "---- last 40 lines of $LOG ----" >&2
		tail -n 40 "$LOG" >&2 || true
		echo "---- end of log ----" >&2
	fi
	exit 1
}

# as_pg CMD...: run CMD as the postgres OS user when we are root (postgres
# refuses to run as root), else as ourselves. fd 9 (our lock) is closed so
# the server started through pg_ctl does not inherit and hold the lock.
as_pg() {
	if [[ $EUID -eq 0 ]]; then
		(cd / && runuser -u postgres -- "$@" 9>&-)
	else
		(cd / && "$@" 9>&-)
	fi
}

port_free() {
	local p=$1
	if command -v ss >/dev/null 2>&1; then
		[[ -z $(ss -Htan "( sport = :$p )" 2>/dev/null) ]] || return 1
	fi
	! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null
}

find_bindir() {
	local d best=""
	for d in /usr/lib/postgresql/*/bin; do
		[[ -x $d/postgres && -x $d/initdb && -x $d/pg_ctl ]] || continue
		if [[ -z $best ]] || [[ $(basename "$(dirname "$d")") -gt $(basename "$(dirname "$best")") ]]; then
			best=$d
		fi
	done
	echo "$best"
}

install_server() {
	[[ $EUID -eq 0 ]] || die "no PostgreSQL server under /usr/lib/postgresql/*/bin and not root: run 'apt-get install -y postgresql' as root"
	echo "postgres.sh: installing Debian's postgresql package..." >&2
	# Don't let the package create and start its own 'main' cluster on 5432.
	mkdir -p /etc/postgresql-common/createcluster.d
	echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.d/00-livecore-testenv.conf
	export DEBIAN_FRONTEND=noninteractive
	local out
	out=$(mktemp)
	if ! { apt-get update -q && apt-get install -y -q --no-install-recommends postgresql; } >"$out" 2>&1; then
		tail -n 30 "$out" >&2
		rm -f "$out"
		die "apt-get install postgresql failed (output above)"
	fi
	rm -f "$out"
}

BIN=""
need_bin() {
	BIN=$(find_bindir)
	if [[ -z $BIN ]]; then
		install_server
		BIN=$(find_bindir)
		[[ -n $BIN ]] || die "postgresql installed but no server binaries found under /usr/lib/postgresql/*/bin"
	fi
}

env_line() {
	echo "export LIVECORE_TEST_PG_DSN=postgres://$DBUSER:$DBPASS@127.0.0.1:$1/$DB?sslmode=disable"
}

# running_port: print the port of the running server and succeed, or fail.
# Handles stale postmaster.pid files (pid gone or not a postmaster).
running_port() {
	local pidf=$DATA/postmaster.pid pid port
	[[ -f $pidf ]] || return 1
	pid=$(sed -n 1p "$pidf" 2>/dev/null || true)
	port=$(sed -n 4p "$pidf" 2>/dev/null || true)
	if [[ -z $pid || ! -d /proc/$pid || $(readlink "/proc/$pid/exe" 2>/dev/null) != */postgres ]]; then
		echo "postgres.sh: removing stale $pidf (pid ${pid:-?} not running)" >&2
		rm -f "$pidf"
		return 1
	fi
	[[ -n $port ]] || return 1
	echo "$port"
}

wait_ready() {
	local port=$1 i
	for ((i = 0; i < 600; i++)); do
		if "$BIN/pg_isready" -q -h 127.0.0.1 -p "$port" -d postgres -t 2; then
			return 0
		fi
		sleep 0.1
	done
	return 1
}

init_cluster() {
	rm -rf "$DATA" "$MARK"
	install -d -m 0700 "$DATA"
	install -d -m 0755 "$SOCK"
	if [[ $EUID -eq 0 ]]; then chown postgres:postgres "$DATA" "$SOCK" "$STATE"; fi
	# --no-sync only skips initdb's final flush of the fresh cluster; the
	# server itself runs with fsync=on.
	if ! as_pg "$BIN/initdb" -D "$DATA" -U postgres -E UTF8 --locale=C.UTF-8 --no-sync \
		--auth-local=trust --auth-host=scram-sha-256 >"$STATE/initdb.log" 2>&1; then
		cat "$STATE/initdb.log" >&2
		die "initdb failed"
	fi
	cat >>"$DATA/postgresql.conf" <<EOF

# ---- livecore testenv (scripts/testenv/postgres.sh) ----
listen_addresses = '127.0.0.1'
unix_socket_directories = '$SOCK'
max_connections = 200
fsync = on
synchronous_commit = on
full_page_writes = on
shared_buffers = 128MB
log_min_messages = warning
log_min_error_statement = error
log_line_prefix = '%m [%p] '
EOF
	# Loopback only: password (scram) over TCP, trust on our private socket.
	cat >"$DATA/pg_hba.conf" <<EOF
local   all   all                 trust
host    all   all   127.0.0.1/32  scram-sha-256
EOF
}

start_server() {
	local port=$FIRST_PORT tries=0
	# Nothing of ours is running: socket lock files left by a killed server
	# (possibly still a zombie, which postgres would take for alive) are stale.
	rm -f "$SOCK"/.s.PGSQL.*
	while :; do
		while ! port_free "$port"; do port=$((port + 1)); done
		: >"$LOG"
		if [[ $EUID -eq 0 ]]; then chown postgres:postgres "$LOG"; fi
		if as_pg "$BIN/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 -s \
			-o "-p $port -c listen_addresses=127.0.0.1 -k $SOCK" start >/dev/null 2>&1; then
			echo "$port"
			return 0
		fi
		tries=$((tries + 1))
		# A port taken between our check and the bind: try the next one.
		if ((tries < 3)) && grep -q "could not bind\|Address already in use" "$LOG"; then
			port=$((port + 1))
			continue
		fi
		die "pg_ctl start failed (port $port)"
	done
}

bootstrap() {
	local port=$1 psql=("$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$SOCK" -p "$port" -U postgres -d postgres)
	as_pg "${psql[@]}" >/dev/null <<EOF || die "creating role/database failed"
DO \$\$BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$DBUSER') THEN
    CREATE ROLE $DBUSER LOGIN SUPERUSER PASSWORD '$DBPASS';
  END IF;
END\$\$;
SELECT 'CREATE DATABASE $DB OWNER $DBUSER' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$DB')\gexec
EOF
	touch "$MARK"
}

cmd_start() {
	install -d -m 0755 "$ROOT" "$STATE"
	exec 9>"$ROOT/.pg-start.lock"
	flock -w 300 9 || die "timed out waiting for $ROOT/.pg-start.lock (another start running?)"
	need_bin
	if [[ $EUID -eq 0 ]]; then
		chown postgres:postgres "$STATE"
		as_pg test -w "$STATE" || die "$STATE is not reachable/writable by the postgres user (set LIVECORE_TESTENV_DIR to a world-traversable dir)"
	fi

	local port
	if port=$(running_port); then
		if wait_ready "$port"; then
			env_line "$port" >"$ENVF"
			cat "$ENVF"
			return 0
		fi
		echo "postgres.sh: server (port $port) not answering; restarting it" >&2
		as_pg "$BIN/pg_ctl" -D "$DATA" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
	fi

	local want have
	want=$(basename "$(dirname "$BIN")")
	have=$(cat "$DATA/PG_VERSION" 2>/dev/null || true)
	if [[ ! -f $MARK || $have != "$want" ]]; then
		init_cluster
	fi
	port=$(start_server)
	wait_ready "$port" || die "server started on port $port but never became ready"
	[[ -f $MARK ]] || bootstrap "$port"
	env_line "$port" >"$ENVF"
	cat "$ENVF"
}

cmd_stop() {
	local bin port
	bin=$(find_bindir)
	[[ -d $DATA ]] || { rm -f "$ENVF"; return 0; }
	rm -f "$ENVF"
	port=$(running_port) || return 0
	[[ -n $bin ]] || die "server running but pg_ctl not found"
	BIN=$bin
	if ! as_pg "$BIN/pg_ctl" -D "$DATA" -m fast -w -t 60 -s stop >/dev/null 2>&1; then
		echo "postgres.sh: fast shutdown failed; using immediate" >&2
		as_pg "$BIN/pg_ctl" -D "$DATA" -m immediate -w -t 30 -s stop >/dev/null 2>&1 ||
			die "could not stop the server on port $port"
	fi
}

cmd_env() {
	local port
	[[ -f $ENVF ]] && port=$(running_port) || {
		echo "postgres.sh: not running (run: scripts/testenv/postgres.sh start)" >&2
		exit 1
	}
	cat "$ENVF"
}

case ${1:-} in
start) cmd_start ;;
stop) cmd_stop ;;
env) cmd_env ;;
*)
	echo "usage: $0 start|stop|env" >&2
	exit 2
	;;
esac
