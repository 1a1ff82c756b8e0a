#!/bin/sh
# Start/stop benchmark ("back in service at once"): the time from exec to
# the first good OCSP answer and from SIGTERM to exit, for micad at 10^3
# and 10^6 certificates (default argon2id cost: the dummy hash is made in
# the background), beside `openssl ocsp -index` start-up on an index of
# the same size.
#   tests/bench/start.sh BIN BUILD        (make bench-start)
# Environment: SIZES ("1000 1000000"), RUNS (3; the median and the
# minimum are reported: on a shared machine the minimum is the better
# estimate of the cost).
# Prints every run, then one table: size, micad start ms, micad stop ms,
# openssl start ms, openssl stop ms, start ratio openssl/micad (medians),
# and the micad minimums.  A micad run counts only when micad exited 0
# after SIGTERM (a stop that is a death by the signal is no clean stop);
# openssl ocsp has no handler and dies by it (exit -15).  It fails only
# when a tool is missing or a run errors, never on the numbers.
BIN_ARG=${1:-bin}
BUILD_ARG=${2:-build}
. "$(dirname "$0")/lib.sh"
case "$BUILD_ARG" in /*) BUILDDIR=$BUILD_ARG ;; *) BUILDDIR=$TOP/$BUILD_ARG ;; esac
SIZES=${SIZES:-"1000 1000000"}
RUNS=${RUNS:-3}
FILL=$BUILDDIR/tests/fill_store
PY=/usr/bin/python3
SS=$TOP/tests/bench/startstop.py
RUN_ERRORS=0
trap cleanup EXIT

for tool in openssl $PY; do
	command -v "$tool" >/dev/null 2>&1 || { echo "bench: $tool missing"; exit 1; }
done
[ -x "$FILL" ] || { echo "bench: $FILL missing (make $BUILD_ARG/tests/fill_store)"; exit 1; }

# the smallest of the numbers on stdin
minimum() {
	sort -n | awk 'NR == 1 { m = $1 } END { if (NR == 0) print "?";
	    else print m }'
}

# median of the numbers on stdin
median() {
	sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) print "?";
	    else print v[int((NR + 1) / 2)] }'
}

# setup_size N: a CA, one issued leaf, N more filled offline, index.txt
setup_size() {
	n=$1
	S=$T/s$n
	D=$S/ca
	mkdir -p "$S/req"
	mica_init "$D" --cn "Bench CA" || return 1
	start_micad || return 1
	bench_leaf "$S" || return 1
	stop_micad || { echo "bench: micad exit status $?"; return 1; }
	ser=$(serial_of "$S/leaf.crt")
	exp=$(openssl x509 -in "$S/leaf.crt" -noout -enddate | sed 's/notAfter=//')
	exp=$(date -u -d "$exp" +%y%m%d%H%M%SZ)
	subj=$(openssl x509 -in "$S/leaf.crt" -noout -subject -nameopt compat |
	    sed 's/^subject=//')
	printf 'V\t%s\t\t%s\tunknown\t%s\n' "$exp" "$ser" "$subj" >"$S/index.txt"
	echo "# filling the store with $n certificates (micad stopped)"
	"$FILL" -d "$D/store" -c "$D/ca.crt" -n "$n" -i "$S/index.txt" \
	    -q 1 -o "$S/req" >"$S/fill.out" 2>&1 ||
	    { cat "$S/fill.out"; echo "bench: fill_store failed"; return 1; }
	openssl ocsp -issuer "$D/ca.crt" -cert "$S/leaf.crt" -no_nonce \
	    -reqout "$S/req.der" >/dev/null 2>&1
	# the default argon2id cost: what a restarted responder really pays
	conf_set "$CONF" argon2_opslimit 3
	conf_set "$CONF" argon2_memlimit 256M
}

# one WHO: appends "start stop" to $S/WHO.runs
one() {
	who=$1
	if [ "$who" = micad ]; then
		out=$($PY "$SS" "$URL/ocsp" "$S/req.der" "$T/micad.log" -- \
		    "$BIN/micad" -c "$CONF")
	else
		port=$(free_port)
		out=$($PY "$SS" "http://127.0.0.1:$port/" "$S/req.der" \
		    "$T/openssl.log" -- openssl ocsp -index "$S/index.txt" \
		    -port "$port" -rsigner "$D/ocsp.crt" \
		    -rkey "$D/private/ocsp.key" -CA "$D/ca.crt" -nmin 60)
	fi
	printf '%-8s %-8s %s\n' "$n" "$who" "$out"
	case $out in *failed*|"") RUN_ERRORS=$((RUN_ERRORS + 1)); return ;; esac
	if [ "$who" = micad ] && [ "$(echo "$out" | awk '{ print $3 }')" != 0 ]
	then
		echo "bench: micad did not exit 0 after SIGTERM"
		RUN_ERRORS=$((RUN_ERRORS + 1))
		return
	fi
	echo "$out" | awk '{ print $1, $2 }' >>"$S/$who.runs"
}

RES=$T/results
: >"$RES"
echo "# size     who      start_ms stop_ms exit"
for n in $SIZES; do
	setup_size "$n" || { RUN_ERRORS=$((RUN_ERRORS + 1)); continue; }
	r=0
	while [ $r -lt "$RUNS" ]; do
		one micad
		one openssl
		r=$((r + 1))
	done
	ms=$(awk '{print $1}' "$S/micad.runs" 2>/dev/null | median)
	mt=$(awk '{print $2}' "$S/micad.runs" 2>/dev/null | median)
	os=$(awk '{print $1}' "$S/openssl.runs" 2>/dev/null | median)
	ot=$(awk '{print $2}' "$S/openssl.runs" 2>/dev/null | median)
	mms=$(awk '{print $1}' "$S/micad.runs" 2>/dev/null | minimum)
	mmt=$(awk '{print $2}' "$S/micad.runs" 2>/dev/null | minimum)
	echo "$n $ms $mt $os $ot $mms $mmt" >>"$RES"
done
echo
echo "start/stop (median of $RUNS, ms; start = exec to first good OCSP answer)"
printf '%-8s %10s %10s %12s %12s %8s %10s %10s\n' size micad-start \
    micad-stop openssl-start openssl-stop ratio min-start min-stop
while read -r n ms mt os ot mms mmt; do
	ratio=$(awk -v a="$os" -v b="$ms" 'BEGIN { if (b > 0) printf "%.1f", a / b; else print "?" }')
	printf '%-8s %10s %10s %12s %12s %8s %10s %10s\n' "$n" "$ms" "$mt" \
	    "$os" "$ot" "$ratio" "$mms" "$mmt"
done <"$RES"
echo "targets: micad start <= 50 ms and stop <= 100 ms at 10^6 (not enforced)"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
[ "$RUN_ERRORS" -eq 0 ] || { echo "bench: $RUN_ERRORS run(s) failed"; exit 1; }
exit 0
