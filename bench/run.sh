#!/usr/bin/env bash
# Runs liftoff's benchmarks and prints a summary table (see bench/README.md).
#
#   bench/run.sh                 # everything, 5 deploys per benchmark, ~3-4 min
#   BENCHTIME=10x bench/run.sh   # more deploys per benchmark
#   BENCH=WebhookToServing bench/run.sh   # only the bench/ benchmarks matching this
#
# Needs the Docker engine (DOCKER_HOST or the local socket) and the docker
# CLI. Every container, network and image a benchmark makes is removed when
# it ends, failed or not (internal/testenv); the raw go test output is kept
# in $OUT (a temporary directory unless set).
set -uo pipefail
cd "$(dirname "$0")/.."

BENCHTIME=${BENCHTIME:-5x}
BENCH=${BENCH:-.}
# A benchmark that skips for want of an engine would make a table of
# nothing: fail instead.
export LIFTOFF_REQUIRE_DOCKER=${LIFTOFF_REQUIRE_DOCKER:-1}
if [[ -z ${OUT:-} ]]; then
	OUT=$(mktemp -d)
	trap 'rm -rf "$OUT"' EXIT
fi
mkdir -p "$OUT"

status=0
run() { # name, go test arguments...
	local name=$1
	shift
	echo "== go test $*"
	go test -run '^$' "$@" 2>&1 | tee "$OUT/$name.txt"
	local s=${PIPESTATUS[0]}
	if ((s != 0)); then
		echo "!! $name failed (exit $s)"
		status=1
	fi
}

started=$(date +%s)
header="$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg) at start, $(go env GOVERSION)"
header+=", Docker $(docker version -f '{{.Server.Version}} (API {{.Server.APIVersion}})' 2>/dev/null || echo '?')"

run deploy -bench "$BENCH" -benchtime "$BENCHTIME" -timeout 15m ./bench/
run server -bench BenchmarkDockerHubHook -benchmem ./server/
run history -bench BenchmarkStep -benchmem ./history/

table() { # columns, files...
	local cols=$1
	shift
	awk -v cols="$cols" '
		BEGIN {
			n = split(cols, c, " ")
			printf "%-48s", "benchmark"
			for (i = 1; i <= n; i++) printf " %12s", c[i]
			print ""
		}
		/^Benchmark/ {
			name = $1
			sub(/-[0-9]+$/, "", name) # GOMAXPROCS suffix
			sub(/^Benchmark/, "", name)
			delete m
			for (i = 3; i < NF; i += 2) m[$(i + 1)] = $i
			printf "%-48s", name
			for (i = 1; i <= n; i++) printf " %12s", ((c[i] in m) ? m[c[i]] : "-")
			print ""
		}' "$@"
}

echo
echo "== Summary: $header; took $(($(date +%s) - started))s"
echo
echo "Deploys, mean of $BENCHTIME per row (ms; requests per deploy):"
table "serving-ms done-ms failed-req downtime-ms outage-ms stalled-req slowest-ok-ms" "$OUT/deploy.txt"
echo
echo "Where the time goes (mean ms per deploy; liftoff's own step timings, or each docker command):"
table "resolve-ms pull-ms stop-ms rm-ms create-ms start-ms run-ms run-to-serving-ms gate-ms cleanup-ms" "$OUT/deploy.txt"
echo
echo "Micro-benchmarks:"
table "ns/op B/op allocs/op" "$OUT/server.txt" "$OUT/history.txt"
exit $status
