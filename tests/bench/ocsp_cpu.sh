#!/bin/sh
# CPU time and context switches per nonce'd OCSP answer, for micad and
# its signer process together, measured with perf stat while wrk posts
# one nonce'd request over CONNS connections for DUR seconds.  What a
# shared machine does not change much (unlike requests/s).
#   tests/bench/ocsp_cpu.sh BIN        CONNS (16), DUR (5)
BIN_ARG=${1:-bin}
. "$(dirname "$0")/lib.sh"
CONNS=${CONNS:-16}
DUR=${DUR:-5}
trap cleanup EXIT
bench_need wrk perf openssl
D=$T/ca
mica_init "$D" --cn "Bench CA" || exit 1
start_micad || exit 1
bench_leaf "$T" || exit 1
openssl ocsp -issuer "$D/ca.crt" -cert "$T/leaf.crt" -nonce \
    -reqout "$T/req.der" >/dev/null 2>&1
post_lua "$T/req.der" "$T/post.lua"
SIGNER=$(pgrep -P "$MICAD_PID" | head -1)
# warm up, then measure
wrk -t1 -c"$CONNS" -d1s -s "$T/post.lua" "$URL/ocsp" >/dev/null 2>&1
perf stat -x, -e task-clock,context-switches -p "$MICAD_PID,$SIGNER" \
    -o "$T/perf.txt" -- sleep "$DUR" &
PERF=$!
wrk -t1 -c"$CONNS" -d"${DUR}s" -s "$T/post.lua" "$URL/ocsp" >"$T/wrk.txt" 2>&1
wait "$PERF"
REQS=$(awk '/requests in/ {print $1}' "$T/wrk.txt")
RPS=$(awk '/Requests\/sec/ {print $2}' "$T/wrk.txt")
TC=$(awk -F, '/task-clock/ {print $1}' "$T/perf.txt")
CS=$(awk -F, '/context-switches/ {print $1}' "$T/perf.txt")
NON2XX=$(awk '/Non-2xx/ {print $NF}' "$T/wrk.txt")
echo "conns=$CONNS dur=${DUR}s requests=$REQS req/s=$RPS non2xx=${NON2XX:-0}" \
    "micad+signer task-clock_ms=$TC context-switches=$CS" \
    "load=$(cut -d' ' -f1-3 /proc/loadavg)"
awk -v r="$REQS" -v t="$TC" -v c="$CS" 'BEGIN {
	printf "per request: %.1f us CPU, %.2f context switches\n",
	    t * 1000 / r, c / r }'
stop_micad
