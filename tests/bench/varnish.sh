#!/bin/sh
# OCSP through Varnish (conf/varnish/mica.vcl): requests a second for one
# cached RFC 5019 GET answer served by Varnish, beside the same GET
# answered by micad directly (from micad's own response cache).  wrk, one
# thread, at CONNS connections, DUR seconds a run.
#   tests/bench/varnish.sh BIN BUILD        (make bench-varnish)
# Environment: DUR (default 5), CONNS ("1 16 64").
# Prints one line per run, then: conns, micad req/s, varnish req/s,
# ratio (varnish / micad).  Fails only when a tool is missing or a run
# errors, never on the numbers.
BIN_ARG=${1:-bin}
. "$(dirname "$0")/lib.sh"
DUR=${DUR:-5}
CONNS=${CONNS:-"1 16 64"}
V_PID=""
RUN_ERRORS=0

bench_cleanup() {
	if [ -n "$V_PID" ]; then
		kill -TERM "$V_PID" 2>/dev/null
		wait "$V_PID" 2>/dev/null
	fi
	cleanup
}
trap bench_cleanup EXIT

VARNISHD=$(command -v varnishd || ls /usr/sbin/varnishd 2>/dev/null)
bench_need wrk openssl curl "${VARNISHD:-varnishd}"

mica_init "$T/ca" --cn "Bench CA" || exit 1
VPORT=$(free_port)
conf_set "$CONF" ban_urls "http://127.0.0.1:$VPORT"
conf_set "$CONF" log_level warn
start_micad || exit 1
bench_leaf "$T" || exit 1
openssl ocsp -issuer "$T/ca/ca.crt" -cert "$T/leaf.crt" -no_nonce \
    -reqout "$T/req.der" >/dev/null 2>&1
ESC=$(base64 -w0 "$T/req.der" | sed 's/+/%2B/g; s|/|%2F|g; s/=/%3D/g')

sed "s/\\.port = \"7780\";/.port = \"$HTTP_PORT\";/" \
    "$TOP/conf/varnish/mica.vcl" >"$T/mica.vcl"
"$VARNISHD" -F -j none -n "$T/varnish" -a "127.0.0.1:$VPORT" \
    -f "$T/mica.vcl" -s malloc,64m >"$T/varnish.log" 2>&1 &
V_PID=$!
VURL=http://127.0.0.1:$VPORT
i=0
while [ $i -lt 100 ]; do
	curl -sf -o /dev/null "$VURL/healthz" && break
	sleep 0.1
	i=$((i + 1))
done
curl -sf -o /dev/null "$VURL/ocsp/$ESC" &&
    curl -sf -D "$T/hdr" -o /dev/null "$VURL/ocsp/$ESC" &&
    [ "$(tr -d '\r' <"$T/hdr" | sed -n 's/^X-Varnish: //Ip' | wc -w)" -eq 2 ] ||
    { echo "bench: Varnish does not serve the answer from its cache"; exit 1; }

RESULTS=$T/results
: >"$RESULTS"
echo "# DUR=${DUR}s CONNS=\"$CONNS\"; $(nproc) CPUs, load average" \
    "$(cut -d' ' -f1-3 /proc/loadavg); $("$VARNISHD" -V 2>&1 | head -n 1)"
printf '%-14s %5s %12s %10s %10s\n' target conns req/s p50 p99
for c in $CONNS; do
	for who in micad varnish; do
		if [ $who = micad ]; then u=$URL/ocsp/$ESC; else u=$VURL/ocsp/$ESC; fi
		out=$(wrk -t1 -c"$c" -d"${DUR}s" --latency "$u" 2>&1)
		wrk_parse "$out"
		printf '%-14s %5s %12s %10s %10s  %s\n' "$who-get" "$c" \
		    "${RPS:-?}" "${P50:-?}" "${P99:-?}" "$ERRS"
		if [ -z "$RPS" ] || printf %s "$ERRS" | grep -q "Non-2xx"; then
			RUN_ERRORS=$((RUN_ERRORS + 1))
			printf '%s\n' "$out" | sed 's/^/#   /' | head -n 20
		fi
		echo "$who $c ${RPS:-0}" >>"$RESULTS"
	done
done
echo
echo "table (ratio = varnish req/s / micad req/s, cached GET answers):"
awk '{ r[$1 " " $2] = $3; if (!($2 in seen)) { seen[$2] = 1; o[++n] = $2 } }
    END {
	printf "%-6s %12s %12s %7s\n", "conns", "micad", "varnish", "ratio"
	for (i = 1; i <= n; i++) {
		m = r["micad " o[i]]; v = r["varnish " o[i]]
		printf "%-6s %12.0f %12.0f %7.2f\n", o[i], m, v, (m > 0 ? v / m : 0)
	}
    }' "$RESULTS"
stop_micad || { echo "bench: micad exit status $?"; exit 1; }
[ "$RUN_ERRORS" -eq 0 ] || { echo "bench: $RUN_ERRORS runs failed"; exit 1; }
