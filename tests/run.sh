#!/bin/sh
# Runs every test: unit tests (cmocka), fuzz corpus replays, end-to-end
# scripts.  Ends with "N passed, N failed"; exits 1 if anything failed.
#   tests/run.sh BUILD BIN [e2e-name-filter]
set -u
BUILD=${1:-build}
BIN=${2:-bin}
FILTER=${3:-}
TOP=$(cd "$(dirname "$0")/.." && pwd)
export MICA_BIN="$TOP/$BIN" MICA_BUILD="$TOP/$BUILD" MICA_TOP="$TOP"
case "$BIN" in /*) MICA_BIN=$BIN ;; esac
case "$BUILD" in /*) MICA_BUILD=$BUILD ;; esac
export CMOCKA_MESSAGE_OUTPUT=stdout
LOGDIR=$(mktemp -d /tmp/mica-check.XXXXXX)
passed=0
failed=0
failures=""

note_fail() {
	failed=$((failed + $1))
	failures="$failures
  $2"
}

for t in "$MICA_BUILD"/tests/test_*; do
	[ -x "$t" ] || continue
	name=$(basename "$t")
	[ -n "$FILTER" ] && continue
	log="$LOGDIR/$name.log"
	(cd "$TOP" && "$t") >"$log" 2>&1
	rc=$?
	p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -n 1)
	f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -n 1)
	p=${p:-0}
	f=${f:-0}
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1
	fi
	passed=$((passed + p))
	if [ "$f" -gt 0 ]; then
		note_fail "$f" "$name (log: $log)"
		grep -E '^\[  (FAILED|ERROR) *\]|^\[  ERROR|Failure|ERROR' "$log" | head -n 20
	fi
	echo "unit   $name: $p passed, $f failed"
done

for r in "$MICA_BUILD"/fuzz/replay_*; do
	[ -x "$r" ] || continue
	[ -n "$FILTER" ] && continue
	name=${r##*/replay_}
	corpus="$TOP/tests/fuzz/corpus/$name"
	[ -d "$corpus" ] || continue
	log="$LOGDIR/replay_$name.log"
	if "$r" "$corpus" >"$log" 2>&1; then
		passed=$((passed + 1))
		echo "fuzz   $name: corpus replayed ($(tail -n 1 "$log"))"
	else
		note_fail 1 "corpus replay $name (log: $log)"
		tail -n 20 "$log"
	fi
done

for s in "$TOP"/tests/e2e/t_*.sh; do
	[ -f "$s" ] || continue
	name=$(basename "$s" .sh)
	if [ -n "$FILTER" ]; then
		case "$name" in *"$FILTER"*) ;; *) continue ;; esac
	fi
	log="$LOGDIR/$name.log"
	(cd "$TOP" && sh "$s") >"$log" 2>&1
	rc=$?
	p=$(grep -c '^ok ' "$log")
	f=$(grep -c '^not ok ' "$log")
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1
		echo "$name exited $rc without reporting a failure" >>"$log"
	fi
	passed=$((passed + p))
	if [ "$f" -gt 0 ]; then
		note_fail "$f" "$name (log: $log)"
		grep -E '^not ok |^#' "$log" | head -n 40
		tail -n 15 "$log"
	fi
	echo "e2e    $name: $p passed, $f failed"
done

if [ "$failed" -gt 0 ]; then
	echo "failed:$failures"
fi
echo "logs: $LOGDIR"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
