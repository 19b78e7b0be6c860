#!/usr/bin/env bash
# Runs liftoff's benchmarks and prints a summary table (see bench/README.md).
#
#   bench/run.sh                 # everything, 5 deploys per benchmark, ~10 min (BenchmarkSwap ~8)
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
run server -bench BenchmarkDockerHubHook -benchmem ./internal/server/
run history -bench BenchmarkStep -benchmem ./internal/history/

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

# swaptable is table for the BenchmarkSwap rows, with (ratio 1) x-floor:
# the row's serving-p50-ms over the floor's under the same load
# (Swap/floor/<load>), and started-x: the same for started-p50-ms (the
# engine's start of the new container, which clients' retries do not
# blur).
swaptable() { # ratio, columns, file
	local ratio=$1 cols=$2
	shift 2
	awk -v ratio="$ratio" -v cols="$cols" '
		BEGIN { n = split(cols, c, " ") }
		/^BenchmarkSwap\// {
			name = $1
			sub(/-[0-9]+$/, "", name)
			sub(/^Benchmark/, "", name)
			rows[++nr] = name
			for (i = 3; i < NF; i += 2) m[name, $(i + 1)] = $i
			split(name, part, "/")
			if (part[2] == "floor") {
				floor[part[3]] = m[name, "serving-p50-ms"]
				floorStarted[part[3]] = m[name, "started-p50-ms"]
			}
		}
		END {
			printf "%-40s", "benchmark"
			for (i = 1; i <= n; i++) printf " %12s", c[i]
			print (ratio ? sprintf(" %8s %10s", "x-floor", "started-x") : "")
			for (r = 1; r <= nr; r++) {
				name = rows[r]
				printf "%-40s", name
				for (i = 1; i <= n; i++) printf " %12s", (((name, c[i]) in m) ? m[name, c[i]] : "-")
				split(name, part, "/")
				f = floor[part[3]]
				g = floorStarted[part[3]]
				print (!ratio ? "" : sprintf(" %8s %10s", f > 0 ? sprintf("%.2fx", m[name, "serving-p50-ms"] / f) : "-",
					g > 0 ? sprintf("%.2fx", m[name, "started-p50-ms"] / g) : "-"))
			}
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
if grep -q '^BenchmarkSwap/' "$OUT/deploy.txt"; then
	echo
	echo "Swaps under load (BenchmarkSwap): ms; x-floor = serving-p50-ms / the floor's under the same load, started-x = the same for started-p50-ms:"
	swaptable 1 "started-p50-ms window-ms serving-p50-ms serving-ms done-ms failed-req outage-ms p99-idle-ms p99-swap-ms" "$OUT/deploy.txt"
	echo
	echo "Swaps, where the time goes (mean ms per swap; liftoff's steps, or each engine call / docker command):"
	swaptable 0 "resolve-ms pull-ms prepare-ms rename-ms create-ms stop-ms rm-ms start-ms run-ms gate-ms publish-ms cleanup-ms" "$OUT/deploy.txt"
fi
echo
echo "Micro-benchmarks:"
table "ns/op B/op allocs/op" "$OUT/server.txt" "$OUT/history.txt"
exit $status
