#!/bin/sh
# t_varnish.sh - OCSP through a real Varnish (conf/varnish/mica.vcl) with
# micad banning changed serials there before it acknowledges a change.
#
# Each round: ask Varnish (RFC 5019 GET, the request made by openssl ocsp
# -reqout, the answer checked by openssl ocsp -respin) about a
# certificate twice: "good", and the second answer must come from the
# cache (X-Varnish with two ids).  Then reissue the certificate as lost
# with the real mica client (review = auto: the lost certificate is
# revoked in the reissue's transaction) and, the moment the client has
# exited, ask Varnish again: an answer saying "good" is stale.  Prints
# "stale answers: S of N" and fails unless S is 0.
#
# ban_urls also names a port where nothing listens (refused at once): the
# acknowledgements go on, every refused ban is counted in /metrics and
# mica-admin status, and the warning is logged at most once a minute.
# At the end a cache that accepts and never answers: each revoke is
# acknowledged after ban_timeout_ms, counted too.  Unknown paths are 404
# directly and through Varnish.
#   VARNISH_ROUNDS (default 200; make soak-varnish runs 1000).
. "$(dirname "$0")/lib.sh"

VARNISHD=$(command -v varnishd || ls /usr/sbin/varnishd 2>/dev/null)
if [ -z "$VARNISHD" ]; then
	echo "ok - # SKIP varnishd not installed (Debian: varnish)"
	exit 0
fi
N=${VARNISH_ROUNDS:-200}
V_PID=""
H_PID=""
stop_varnish() {
	if [ -n "$V_PID" ] && kill -0 "$V_PID" 2>/dev/null; then
		kill -TERM "$V_PID" 2>/dev/null
		wait "$V_PID" 2>/dev/null
	fi
	V_PID=""
	if [ -n "$H_PID" ] && kill -0 "$H_PID" 2>/dev/null; then
		kill -TERM "$H_PID" 2>/dev/null
		wait "$H_PID" 2>/dev/null
	fi
	H_PID=""
}
trap 'stop_varnish; cleanup' EXIT

mica_init "$T/ca" || { not_ok "mica-admin init"; done_testing; }
VPORT=$(free_port)
DEAD=$(free_port)		# nothing listens here: connect is refused
VURL=http://127.0.0.1:$VPORT
conf_set "$CONF" review auto
conf_set "$CONF" log_level warn
conf_set "$CONF" ban_urls "$VURL http://127.0.0.1:$DEAD"
conf_set "$CONF" ban_timeout_ms 500
start_micad || { not_ok "micad starts"; done_testing; }
CA=$T/ca/ca.crt

# ---- varnishd on its own working directory, backend = this micad ----
sed "s/\\.port = \"7780\";/.port = \"$HTTP_PORT\";/" \
    "$TOP/conf/varnish/mica.vcl" >"$T/mica.vcl"
grep -q "\\.port = \"$HTTP_PORT\";" "$T/mica.vcl" ||
    { not_ok "backend port set in the VCL copy"; done_testing; }
# -j none: the test's temporary directory is not the varnish user's
"$VARNISHD" -F -j none -n "$T/varnish" -a "127.0.0.1:$VPORT" \
    -f "$T/mica.vcl" -s malloc,64m >"$T/varnish.log" 2>&1 &
V_PID=$!
i=0
while [ $i -lt 100 ]; do
	code=$(curl -s -o /dev/null -w '%{http_code}' "$VURL/healthz")
	[ "$code" = 200 ] && break
	kill -0 "$V_PID" 2>/dev/null || break
	sleep 0.1
	i=$((i + 1))
done
if [ "$code" != 200 ]; then
	not_ok "varnishd answers (got '$code')"
	sed 's/^/#   /' "$T/varnish.log" | tail -n 20
	done_testing
fi
ok "varnishd $("$VARNISHD" -V 2>&1 | sed -n 's/.*(varnish-\([^ ]*\).*/\1/p;q') in front of micad"

# ---- unknown paths: 404 directly and through the cache, never kept ----
for p in /favicon.ico /robots.txt /ocsp/not-base64 /index.html; do
	expect_eq "GET $p directly: 404" \
	    "$(curl -s -o /dev/null -w '%{http_code}' "$URL$p")" 404
	curl -s -o /dev/null "$VURL$p"
	expect_eq "GET $p through Varnish: 404, not kept" \
	    "$(curl -s -D - -o /dev/null "$VURL$p" | tr -d '\r' |
	    sed -n 's/^X-Varnish: //Ip' | wc -w)/$(curl -s -o /dev/null \
	    -w '%{http_code}' "$VURL$p")" "1/404"
done

# ---- setup: one account (fresh TOTP replay guard) and certificate each ----
PW=$T/pw
echo 'correct-horse-battery' >"$PW"
MICA="$BIN/mica --server 127.0.0.1:$CA_PORT --ca $CA"
SUBJ="/CN=vrn/O=Org"
make_csr "$T/v.key" "$T/v.csr" "$SUBJ"
i=0
while [ $i -lt "$N" ]; do
	i=$((i + 1))
	admin account add "u$i" --subject "$SUBJ" --password-file "$PW" \
	    >"$T/u$i.add" 2>&1 || { not_ok "account add u$i"; done_testing; }
	sed -n 's/^totp secret[^:]*: //p' "$T/u$i.add" >"$T/u$i.secret"
	rm -f "$T/u$i.add"
	admin issue --account "u$i" --csr "$T/v.csr" --out "$T/u$i.crt" \
	    >/dev/null 2>&1 || { not_ok "issue for u$i"; done_testing; }
done
ok "$N accounts with a certificate each"

# get SERIAL BASEURL: the RFC 5019 GET of openssl's request for SERIAL
# (URL-encoded as openssl's own GET would be); headers in $T/hdr.  Prints
# "good", "revoked" or what went wrong.
get() {
	if [ "$1" != "${GET_SERIAL:-}" ]; then	# one request per serial
		openssl ocsp -issuer "$CA" -serial "0x$1" -no_nonce \
		    -reqout "$T/req.der" >/dev/null 2>&1
		GET_ENC=$(base64 -w0 "$T/req.der" |
		    sed 's|+|%2B|g; s|/|%2F|g; s|=|%3D|g')
		GET_SERIAL=$1
	fi
	enc=$GET_ENC
	rm -f "$T/resp.der"
	curl -sf -D "$T/hdr" -o "$T/resp.der" "$2/ocsp/$enc" ||
	    { echo "http-error"; return; }
	openssl ocsp -respin "$T/resp.der" -issuer "$CA" -serial "0x$1" \
	    -CAfile "$CA" 2>/dev/null | sed -n "s/^0x$1: //p"
}
# hdr NAME: a field of the last answer
hdr() { tr -d '\r' <"$T/hdr" | sed -n "s/^$1: //Ip" | head -n 1; }

stale=0
warm_bad=0
uncached=0
fails=0
t0=$(date +%s)
i=0
while [ $i -lt "$N" ]; do
	i=$((i + 1))
	old=$(serial_of "$T/u$i.crt")
	get "$old" "$VURL" >"$T/st"	# not in a subshell: keeps GET_ENC
	st=$(cat "$T/st")
	[ "$st" = good ] || { warm_bad=$((warm_bad + 1));
	    echo "# round $i: before the reissue Varnish said '$st' for $old"; }
	if [ $i -eq 1 ]; then
		expect_eq "X-Mica-Serials names the serial" "$(hdr X-Mica-Serials)" \
		    "$old"
		cc=$(hdr Cache-Control)
		age=$(printf '%s' "$cc" | sed -n 's/.*max-age=\([0-9]*\).*/\1/p')
		if [ -n "$age" ] && [ "$age" -le 60 ] && [ "$age" -gt 0 ]; then
			ok "max-age $age <= cache_max_age 60 ($cc)"
		else
			not_ok "Cache-Control '$cc'"
		fi
		[ -n "$(hdr ETag)" ] && [ -n "$(hdr Last-Modified)" ] &&
		    [ -n "$(hdr Expires)" ] && ok "ETag, Last-Modified, Expires" ||
		    not_ok "ETag, Last-Modified, Expires"
	fi
	st=$(get "$old" "$VURL")
	ids=$(hdr X-Varnish | wc -w)
	if [ "$st" != good ] || [ "$ids" -ne 2 ]; then
		uncached=$((uncached + 1))
		echo "# round $i: second ask said '$st', X-Varnish '$(hdr X-Varnish)'"
	fi
	otp=$(oathtool --totp -b "$(cat "$T/u$i.secret")")
	if ! $MICA reissue --account "u$i" --lost-cert "$T/u$i.crt" \
	    --key "$T/u$i.new.key" --out "$T/u$i.new.crt" \
	    --password-file "$PW" --otp "$otp" --timeout 30 \
	    >"$T/u$i.out" 2>&1; then
		fails=$((fails + 1))
		echo "# round $i: mica reissue failed: $(tail -n 1 "$T/u$i.out")"
		continue
	fi
	# acknowledged: the client has exited with the new certificate
	st=$(get "$old" "$VURL")
	if [ "$st" != revoked ]; then
		stale=$((stale + 1))
		echo "# round $i: Varnish said '$st' for the replaced $old" \
		    "(X-Varnish '$(hdr X-Varnish)', Age '$(hdr Age)')"
	fi
	rm -f "$T/u$i.new.key" "$T/u$i.out" "$T/u$i.new.crt.chain" \
	    "$T/u$i.new.crt.request"
done
t1=$(date +%s)
done_rounds=$((N - fails))
echo "stale answers: $stale of $done_rounds"
echo "# $N rounds in $((t1 - t0)) s"
expect_eq "every reissue succeeded" "$fails" 0
expect_eq "every certificate was good through Varnish before" "$warm_bad" 0
expect_eq "every second ask was a cache hit" "$uncached" 0
expect_eq "no stale answer through Varnish after the acknowledgement" \
    "$stale" 0

# ---- counters: one BAN per reissue to each cache ----
metric() {
	curl -s "$URL/metrics" | sed -n "s|^$1{cache=\"$2\"} ||p"
}
expect_eq "mica_cache_bans_total of Varnish" \
    "$(metric mica_cache_bans_total "$VURL")" "$done_rounds"
expect_eq "mica_cache_ban_failures_total of Varnish" \
    "$(metric mica_cache_ban_failures_total "$VURL")" 0
expect_eq "mica_cache_ban_failures_total of the refusing port" \
    "$(metric mica_cache_ban_failures_total "http://127.0.0.1:$DEAD")" \
    "$done_rounds"
expect_exit 0 "mica-admin status" admin status
expect_out "status: Varnish's bans" \
    "http cache $VURL: last ban ok $(date -u +%Y-%m-%d)"
expect_out "status: the refusing cache's failures" \
    "http cache http://127.0.0.1:$DEAD: last ban ok -, 0 bans, $done_rounds failures"
expect_out "status: its last error" "Connection refused"
expect_exit 0 "mica-admin status --json" admin status --json
expect_out "status --json: caches" "\"failures\":$done_rounds"
# the warning: at most once a minute per cache
warns=$(grep -c "ban: cache=http://127.0.0.1:$DEAD failed" "$T/micad.log")
mins=$(( ($(date +%s) - t0) / 60 + 1 ))
if [ "$warns" -ge 1 ] && [ "$warns" -le "$mins" ]; then
	ok "refused bans logged $warns times in $mins started minutes"
else
	not_ok "refused bans logged $warns times in $mins started minutes"
fi

# ---- a cache that accepts and never answers: bounded by ban_timeout_ms ----
stop_micad || not_ok "micad stops cleanly"
HOLD=$(free_port)
python3 -c '
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(64)
held = []
while True:
    c, _ = s.accept(); held.append(c)	# read nothing, answer nothing
' "$HOLD" &
H_PID=$!
conf_set "$CONF" ban_urls "$VURL http://127.0.0.1:$HOLD"
start_micad || { not_ok "micad starts again"; done_testing; }
ok "$(printf 'micad with a silent cache at port %s' "$HOLD")"
admin account add hold --subject "$SUBJ" --password-file "$PW" >/dev/null \
    2>&1 || not_ok "account add hold"
k=0
s0=$(date +%s%N)
while [ $k -lt 3 ]; do
	k=$((k + 1))
	make_csr "$T/h$k.key" "$T/h$k.csr" "$SUBJ"
	admin issue --account hold --csr "$T/h$k.csr" --out "$T/h$k.crt" \
	    >"$T/h$k.out" 2>&1 || { not_ok "issue h$k"; cat "$T/h$k.out"; }
	s=$(serial_of "$T/h$k.crt")
	get "$s" "$VURL" >/dev/null
	check "revoke h$k is acknowledged despite the silent cache" \
	    admin revoke "$s"
	st=$(get "$s" "$VURL")
	expect_eq "h$k: revoked through Varnish" "$st" revoked
done
s1=$(date +%s%N)
echo "# 3 issue+revoke rounds with a silent cache (ban_timeout_ms 500): $(( (s1 - s0) / 1000000 )) ms"
expect_eq "silent cache: 3 failures counted" \
    "$(metric mica_cache_ban_failures_total "http://127.0.0.1:$HOLD")" 3
expect_eq "Varnish: 3 bans this run" \
    "$(metric mica_cache_bans_total "$VURL")" 3
expect_exit 0 "mica-admin status" admin status
expect_out "status: the silent cache" "no answer within the timeout"

expect_exit 0 "mica-admin check passes afterwards" admin check
stop_micad || not_ok "micad stops cleanly"
stop_varnish
done_testing
