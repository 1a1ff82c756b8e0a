#!/bin/sh
# Runs every libFuzzer target for SECONDS each over a scratch copy of its
# seed corpus (new inputs stay out of the repo); a crash keeps its input
# under tests/fuzz/ and fails the run.
#   tests/fuzz/run.sh BUILD-DIR SECONDS
set -u
DIR=${1:-build-fuzz}
SECS=${2:-60}
TOP=$(cd "$(dirname "$0")/../.." && pwd)
fails=0
runs=0
for f in "$DIR"/fuzz_*; do
	[ -x "$f" ] || continue
	name=${f##*/fuzz_}
	seed="$TOP/tests/fuzz/corpus/$name"
	work=$(mktemp -d /tmp/mica-fuzz-$name.XXXXXX)
	[ -d "$seed" ] && cp -r "$seed"/. "$work"/ 2>/dev/null
	echo "fuzz $name: ${SECS}s"
	if "$f" -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 \
	    -artifact_prefix="$TOP/tests/fuzz/crash-$name-" \
	    -print_final_stats=0 "$work" >"$work.log" 2>&1; then
		echo "fuzz $name: ok ($(grep -o 'stat::number_of_executed_units: [0-9]*' "$work.log" | head -n1 || true)$(tail -n 1 "$work.log"))"
		runs=$((runs + 1))
	else
		echo "fuzz $name: FAILED"
		tail -n 40 "$work.log"
		fails=$((fails + 1))
	fi
	rm -rf "$work" "$work.log"
done
echo "$runs passed, $fails failed"
[ "$fails" -eq 0 ]
