#!/usr/bin/env bash
# Private single-node Apache Kafka (KRaft, combined broker+controller) for the
# test suite.
#
#   scripts/testenv/kafka.sh start   # fetch jars if needed, format, start, wait until ready, print env
#   scripts/testenv/kafka.sh stop    # stop it and wait (no-op when not running)
#   scripts/testenv/kafka.sh env     # print the env line (fails when not running)
#
# The broker is plain jars from Maven Central (scripts/testenv/kafka/pom.xml),
# copied once into ${LIVECORE_CACHE_DIR:-$HOME/.cache/livecore}/kafka-VERSION/libs.
# State lives in ${LIVECORE_TESTENV_DIR:-/tmp/livecore-testenv}/kafka and is
# wiped on every cold start (tests get an empty broker); kafka.env holds
#   export LIVECORE_TEST_KAFKA_BROKERS=127.0.0.1:PORT
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
POM=$HERE/kafka/pom.xml
READY_SRC=$HERE/kafka/Ready.java
ROOT=${LIVECORE_TESTENV_DIR:-/tmp/livecore-testenv}
STATE=$ROOT/kafka
DATA=$STATE/data
LOG=$STATE/kafka.log
PIDF=$STATE/kafka.pid
ENVF=$STATE/kafka.env
PROPS=$STATE/server.properties
FIRST_PORT=${LIVECORE_TEST_KAFKA_PORT:-59092}
READY_TIMEOUT=${LIVECORE_TEST_KAFKA_READY_TIMEOUT:-120}

VERSION=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$POM")
[[ -n $VERSION ]] || {
	echo "kafka.sh: ERROR: no <kafka.version> in $POM" >&2
	exit 1
}
CACHE=${LIVECORE_CACHE_DIR:-${HOME:-/root}/.cache/livecore}/kafka-$VERSION
LIBS=$CACHE/libs
READY_CLASSES=$CACHE/ready-classes

die() {
	echo "kafka.sh: ERROR: $*" >&2
	if [[ -s $LOG ]]; then
		echo "---- last 60 lines of $LOG ----" >&2
		tail -n 60 "$LOG" >&2 || true
		echo "---- end of log ----" >&2
	fi
	exit 1
}

port_free() {
	local p=$1
	if command -v ss >/dev/null 2>&1; then
		[[ -z $(ss -Htan "( sport = :$p )" 2>/dev/null) ]] || return 1
	fi
	! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null
}

# next_free_port N: first free port >= N.
next_free_port() {
	local p=$1
	while ! port_free "$p"; do p=$((p + 1)); done
	echo "$p"
}

# fetch_jars: copy the broker's runtime jars into $LIBS once per pom content.
fetch_jars() {
	local want have tmp out
	want=$(sha256sum "$POM" | cut -d' ' -f1)
	have=$(cat "$CACHE/.complete" 2>/dev/null || true)
	[[ $want == "$have" && -d $LIBS ]] && return 0
	command -v mvn >/dev/null 2>&1 || die "mvn not found: Maven is needed to fetch Kafka $VERSION from Maven Central"
	echo "kafka.sh: fetching Kafka $VERSION jars into $LIBS ..." >&2
	mkdir -p "$CACHE"
	tmp=$(mktemp -d "$CACHE/libs.tmp.XXXXXX")
	out=$(mktemp)
	if ! mvn -q -B -ntp -Dstyle.color=never -f "$POM" \
		org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies \
		-DincludeScope=runtime -DoutputDirectory="$tmp" </dev/null >"$out" 2>&1; then
		tail -n 40 "$out" >&2
		rm -rf "$tmp" "$out"
		die "mvn could not fetch org.apache.kafka:kafka_2.13:$VERSION and its dependencies (output above)"
	fi
	rm -f "$out"
	ls "$tmp"/kafka_2.13-"$VERSION".jar >/dev/null 2>&1 || die "kafka_2.13-$VERSION.jar missing after mvn copy-dependencies"
	rm -rf "$LIBS"
	mv "$tmp" "$LIBS"
	echo "$want" >"$CACHE/.complete"
}

# compile_ready: compile Ready.java once into the cache (saves the source
# launcher's in-memory compile on every start); optional, needs javac.
compile_ready() {
	local want
	want=$(sha256sum "$READY_SRC" | cut -d' ' -f1)
	[[ $(cat "$READY_CLASSES/.src" 2>/dev/null || true) == "$want" ]] && return 0
	command -v javac >/dev/null 2>&1 || return 0
	rm -rf "$READY_CLASSES"
	mkdir -p "$READY_CLASSES"
	if javac -nowarn -d "$READY_CLASSES" -cp "$LIBS/*" "$READY_SRC" >/dev/null 2>&1; then
		echo "$want" >"$READY_CLASSES/.src"
	else
		rm -rf "$READY_CLASSES" # fall back to the source launcher
	fi
}

# our_pid: print the pid of our running broker and succeed, or fail (and
# drop a stale pid file).
our_pid() {
	local pid
	[[ -f $PIDF ]] || return 1
	pid=$(cat "$PIDF" 2>/dev/null || true)
	if [[ -n $pid && -r /proc/$pid/cmdline ]] &&
		tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "kafka\.Kafka $PROPS"; then
		echo "$pid"
		return 0
	fi
	rm -f "$PIDF"
	return 1
}

broker_port() {
	sed -n 's|^listeners=PLAINTEXT://127.0.0.1:\([0-9]*\),.*|\1|p' "$PROPS" 2>/dev/null
}

env_line() {
	echo "export LIVECORE_TEST_KAFKA_BROKERS=127.0.0.1:$1"
}

java_opts() {
	echo -Xms256m -Xmx512m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
		-XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true
}

# ready PORT PID: wait until the broker answers metadata requests.
ready() {
	local out
	out=$(mktemp)
	local main=("$READY_SRC") cp="$LIBS/*"
	if [[ -f $READY_CLASSES/.src ]]; then
		main=(Ready)
		cp="$cp:$READY_CLASSES"
	fi
	if java -Xmx128m -XX:TieredStopAtLevel=1 -cp "$cp" "${main[@]}" "127.0.0.1:$1" "$READY_TIMEOUT" "$2" </dev/null >"$out" 2>&1 9>&-; then
		rm -f "$out"
		return 0
	fi
	cat "$out" >&2
	rm -f "$out"
	return 1
}

kill_broker() {
	local pid=$1 i
	kill -TERM "$pid" 2>/dev/null || return 0
	for ((i = 0; i < 300; i++)); do
		[[ -d /proc/$pid ]] && [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) != Z ]] || return 0
		sleep 0.1
	done
	echo "kafka.sh: broker $pid ignored SIGTERM for 30s; killing it" >&2
	kill -KILL "$pid" 2>/dev/null || true
	for ((i = 0; i < 100; i++)); do
		[[ -d /proc/$pid ]] && [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) != Z ]] || return 0
		sleep 0.1
	done
	die "broker $pid still alive after SIGKILL"
}

write_config() {
	local port=$1 cport=$2
	cat >"$PROPS" <<EOF
# Generated by scripts/testenv/kafka.sh: single-node KRaft test broker.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$DATA
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
auto.create.topics.enable=true
delete.topic.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=8
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
log.retention.hours=24
EOF
	cat >"$STATE/log4j2.properties" <<EOF
status = warn
appender.out.type = Console
appender.out.name = OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = OUT
logger.statechange.name = state.change.logger
logger.statechange.level = WARN
logger.request.name = kafka.request.logger
logger.request.level = WARN
EOF
}

format_storage() {
	local id
	: >"$LOG"
	# A Kafka Uuid: 16 random bytes, base64url without padding, not starting with '-'.
	while :; do
		id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')
		[[ $id != -* ]] && break
	done
	if ! java -Xmx256m -Dlog4j2.configurationFile="$STATE/log4j2.properties" -cp "$LIBS/*" \
		kafka.tools.StorageTool format --cluster-id="$id" --config "$PROPS" </dev/null >"$STATE/format.log" 2>&1 9>&-; then
		tail -n 40 "$STATE/format.log" >&2
		die "kafka.tools.StorageTool format failed (output above, full: $STATE/format.log)"
	fi
}

cmd_start() {
	mkdir -p "$ROOT" "$STATE"
	exec 9>"$ROOT/.kafka-start.lock"
	flock -w 300 9 || die "timed out waiting for $ROOT/.kafka-start.lock (another start running?)"
	command -v java >/dev/null 2>&1 || die "java not found (Kafka $VERSION needs Java 17+)"

	local pid port cport
	if pid=$(our_pid); then
		port=$(broker_port)
		if [[ -n $port ]] && ready "$port" "$pid"; then
			env_line "$port" >"$ENVF"
			cat "$ENVF"
			return 0
		fi
		echo "kafka.sh: broker $pid not answering; restarting it" >&2
		kill_broker "$pid"
	fi
	rm -f "$ENVF" "$PIDF"

	# The cache may be shared by starts with other state dirs: fetch under a lock.
	mkdir -p "$CACHE"
	exec 8>"$CACHE/.lock"
	flock -w 600 8 || die "timed out waiting for $CACHE/.lock (another fetch running?)"
	fetch_jars
	compile_ready
	exec 8>&-

	# Cold start: fresh storage each time. A port grabbed by someone else
	# between our check and the broker's bind gets two more tries.
	local tries=0 next=$FIRST_PORT
	while :; do
		rm -rf "$DATA"
		mkdir -p "$DATA"
		port=$(next_free_port "$next")
		cport=$(next_free_port $((port + 1)))
		write_config "$port" "$cport"
		format_storage

		# setsid + all fds redirected: the broker outlives this script
		# without holding its terminal, pipes or lock.
		# shellcheck disable=SC2046
		setsid java $(java_opts) \
			-Dlog4j2.configurationFile="$STATE/log4j2.properties" \
			-Dkafka.logs.dir="$STATE" \
			-cp "$LIBS/*" kafka.Kafka "$PROPS" </dev/null >>"$LOG" 2>&1 9>&- &
		pid=$!
		echo "$pid" >"$PIDF"

		ready "$port" "$pid" && break
		kill_broker "$pid" || true
		rm -f "$PIDF"
		tries=$((tries + 1))
		if ((tries < 3)) && grep -q "Address already in use" "$LOG"; then
			echo "kafka.sh: port $port or $cport taken meanwhile; retrying" >&2
			next=$((cport + 1))
			continue
		fi
		die "broker on 127.0.0.1:$port did not become ready within ${READY_TIMEOUT}s"
	done
	env_line "$port" >"$ENVF"
	cat "$ENVF"
}

cmd_stop() {
	local pid
	rm -f "$ENVF"
	pid=$(our_pid) || return 0
	kill_broker "$pid"
	rm -f "$PIDF"
}

cmd_env() {
	[[ -f $ENVF ]] && our_pid >/dev/null || {
		echo "kafka.sh: not running (run: scripts/testenv/kafka.sh start)" >&2
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
