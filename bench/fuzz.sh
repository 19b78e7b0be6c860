#!/bin/bash
# bench/fuzz.sh — runs liftoff's fuzz targets, each to a number of
# executions, and prints a table of what each did.
#
#   bench/fuzz.sh                       # every target to 10M executions, two at a time
#   FUZZ='payload|Parse' bench/fuzz.sh  # only the targets whose package:Target matches
#   FUZZ_EXECS=100000 bench/fuzz.sh     # a quick round
#
# Environment:
#   FUZZ_EXECS   executions per target (default 10000000)
#   FUZZ_JOBS    targets run side by side, one fuzz worker each (default 2)
#   FUZZ         extended regexp on "package:Target" (default: all)
#   OUT          directory for each target's log and row (default: a new temporary one)
#
# Not part of CI: 10M executions of every target take hours on 2 cores.
# A failure leaves its input under the package's testdata/fuzz/<Target>/,
# as go test -fuzz does, and the script exits non-zero.
set -euo pipefail
cd "$(dirname "$0")/.."

export FUZZ_EXECS=${FUZZ_EXECS:-10000000}
export OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"

if [ "${1:-}" = --one ]; then
	# One target, package:Target. GOGC=400: a worker allocates at every
	# execution and the machine has memory to spare. The minimization of
	# a new input is cut at 1000 tries: the default, a minute, stalls the
	# worker on a large input, and a time limit kills and restarts the
	# worker each time it runs out (four times fewer executions).
	pkg=${2%%:*} t=${2##*:}
	start=$(date +%s)
	res=ok
	GOGC=400 go test -timeout 0 -run '^$' -fuzz "^$t\$" -fuzztime "${FUZZ_EXECS}x" \
		-fuzzminimizetime 1000x -parallel 1 "$pkg" >"$OUT/$t.log" 2>&1 || res=FAIL
	secs=$(( $(date +%s) - start ))
	last=$(grep 'execs:' "$OUT/$t.log" | tail -n 1 || true)
	n=$(sed -n 's/.*execs: \([0-9]*\).*/\1/p' <<<"$last")
	corpus=$(sed -n 's/.*(total: \([0-9]*\)).*/\1/p' <<<"$last")
	printf '| %s | `%s` | %s | %s | %s | %s | %s |\n' "$t" "$pkg" "${n:-0}" "$secs" \
		"$(( ${n:-0} / (secs > 0 ? secs : 1) ))" "${corpus:-?}" "$res" >"$OUT/$t.row"
	echo "$(date +%T) $t: $res, ${n:-0} executions in ${secs}s ($OUT/$t.log)" >&2
	exit 0
fi

# Every Fuzz function in the module's tests, as ./package:Target.
targets=$(grep -rl --include='*_test.go' '^func Fuzz' . | sort | while read -r f; do
	sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' "$f" | sed "s|^|$(dirname "$f"):|"
done | grep -E "${FUZZ:-.}" || true)
[ -n "$targets" ] || { echo "no fuzz target matches ${FUZZ:-.}" >&2; exit 1; }
echo "$(wc -l <<<"$targets") targets, ${FUZZ_EXECS} executions each; logs in $OUT" >&2

xargs -P "${FUZZ_JOBS:-2}" -I{} "$0" --one {} <<<"$targets"

echo "| target | package | executions | seconds | per second | corpus | result |"
echo "|---|---|---|---|---|---|---|"
cat "$OUT"/*.row
! grep -q '| FAIL |' "$OUT"/*.row
