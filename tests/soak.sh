#!/bin/sh
# soak.sh - the long runs (make soak): crash consistency with 200 SIGKILL
# rounds (bounded by SOAK_CRASH_SECONDS, default 900) and instant
# invalidation with 1,000 reissues, directly and through Varnish.  Exits 1 if either fails.
# With a second argument only that test runs (make soak-varnish:
# t_varnish, 1,000 reissues through Varnish).
#   tests/soak.sh BIN [t_NAME]
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
BIN=${1:-bin}
case "$BIN" in /*) ;; *) BIN=$TOP/$BIN ;; esac
export MICA_BIN="$BIN" MICA_TOP="$TOP"
LOGDIR=$(mktemp -d /tmp/mica-soak.XXXXXX)
rc=0

ONLY=${2:-}

run() {
	name=$1; shift
	[ -z "$ONLY" ] || [ "$ONLY" = "$name" ] || return 0
	echo "soak   $name: running ($*)"
	(cd "$TOP" && env "$@" sh "tests/e2e/$name.sh") >"$LOGDIR/$name.log" 2>&1
	r=$?
	p=$(grep -c '^ok ' "$LOGDIR/$name.log")
	f=$(grep -c '^not ok ' "$LOGDIR/$name.log")
	[ "$r" -ne 0 ] && [ "$f" -eq 0 ] && f=1
	grep -E '^(rounds|stale answers):' "$LOGDIR/$name.log"
	if [ "$f" -gt 0 ]; then
		grep -E '^not ok |^#' "$LOGDIR/$name.log" | head -n 40
		rc=1
	fi
	echo "soak   $name: $p passed, $f failed"
}

run t_crash CRASH_ROUNDS=${SOAK_CRASH_ROUNDS:-200} \
    CRASH_SECONDS=${SOAK_CRASH_SECONDS:-900}
run t_invalidation INV_ROUNDS=${SOAK_INV_ROUNDS:-1000}
run t_varnish VARNISH_ROUNDS=${SOAK_VARNISH_ROUNDS:-1000}
echo "logs: $LOGDIR"
exit $rc
