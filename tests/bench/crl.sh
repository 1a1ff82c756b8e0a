#!/bin/sh
# crl.sh - full CRL build time and peak memory, mica vs `openssl ca -gencrl`
# over the same revoked serials, plus mica's delta build after one more
# revocation (builder only; the line below adds crl_service_changed with a
# real store).  mica's time is the service's build path: TBS referencing
# the entry chunks + one signature, no load; openssl's is the whole
# command (it has to read index.txt).  Usage: sh tests/bench/crl.sh BIN BUILD [N...]
# (make bench-crl).  Targets: 10^6 entries in <= 0.2 s, peak memory under
# 2x the CRL size, delta < 5 ms.
set -eu

BIN=${1:-bin}
BUILD=${2:-build}
shift 2 2>/dev/null || true
SIZES=${*:-10000 100000 1000000}
HELPER=$BUILD/tests/crl_bench
[ -x "$HELPER" ] || { echo "crl bench: $HELPER missing (make $HELPER)"; exit 1; }
TMP=$(mktemp -d /tmp/mica-bench-crl.XXXXXX)
trap 'rm -rf "$TMP"' EXIT INT TERM

# seconds with millisecond resolution, no bc needed
now() { date +%s.%N; }
sub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a - b }'; }
div() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1f", a / b; else print "inf" }'; }
kv() { printf '%s\n' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }

printf '%-8s %10s %10s %8s %10s %12s %12s %10s %9s\n' N mica_s openssl_s \
    ratio crl_MB mica_rss_MB ossl_rss_MB rss/crl delta_ms
for n in $SIZES; do
	d=$TMP/$n
	mkdir -p "$d"
	out=$(/usr/bin/time -f 'maxrss_total_kb=%M' "$HELPER" "$n" "$d" 2>"$d/time.err")
	mica_s=$(kv "$out" mica_full_s)
	bytes=$(kv "$out" crl_bytes)
	rss=$(kv "$out" maxrss_kb)
	delta=$(kv "$out" delta_ms)
	openssl crl -in "$d/mica_full.crl" -inform DER -CAfile "$d/ca.pem" \
	    -noout -verify 2>&1 | grep -q 'verify OK' ||
	    { echo "mica CRL does not verify (n=$n)"; exit 1; }

	t0=$(now)
	/usr/bin/time -f 'maxrss_total_kb=%M' openssl ca -batch -gencrl \
	    -config "$d/ca.cnf" -out "$d/ossl.crl" \
	    >/dev/null 2>"$d/ossl.err" ||
	    { cat "$d/ossl.err"; exit 1; }
	t1=$(now)
	ossl_s=$(sub "$t1" "$t0")
	ossl_rss=$(sed -n 's/^maxrss_total_kb=//p' "$d/ossl.err")
	osize=$(openssl crl -in "$d/ossl.crl" -outform DER | wc -c)
	# both list the same serials: compare sizes of the entry lists
	# roughly (encodings differ only in the header and extensions)
	printf '%-8s %10s %10s %8s %10s %12s %12s %10s %9s\n' "$n" "$mica_s" \
	    "$ossl_s" "$(div "$ossl_s" "$mica_s")x" \
	    "$(div "$bytes" 1048576)" "$(div "$rss" 1024)" \
	    "$(div "$ossl_rss" 1024)" "$(div "$rss" "$((bytes / 1024))")" \
	    "$delta"
	echo "         (openssl CRL $osize bytes; mica RSS before the build" \
	    "$(kv "$out" rss_before_build_kb) KB, apply of $n events" \
	    "$(kv "$out" mica_apply_s) s; crl_service_changed with a real" \
	    "store incl. the fsync'd CRL number: $(kv "$out" service_delta_ms) ms)"
	rm -rf "$d"
done
