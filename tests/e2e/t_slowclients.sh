#!/bin/sh
# t_slowclients.sh - hundreds of slow and half-open connections on both
# listeners must not stop OCSP from answering a normal client nor a full
# reissue from working; the per-address limit closes extra connections;
# silent TLS connections are closed after the handshake timeout; HTTP
# connections whose header never ends are closed after header_timeout.
# Loopback only (sources 127.0.0.2 and up, so the limits per address do
# not hit the normal clients on 127.0.0.1).  No timing thresholds: the
# normal clients must answer at all within a generous bound; latencies are
# printed.
. "$(dirname "$0")/lib.sh"

SLOW="python3 $(dirname "$0")/slowclients.py"
D=$T/ca
mica_init "$D" --cn "Slow Clients CA" || { not_ok "init"; done_testing; }
conf_set_in "$CONF" protocol max_connections 500
conf_set "$CONF" max_per_address 32
conf_set "$CONF" handshake_timeout 3
conf_set "$CONF" login_timeout 8
conf_set "$CONF" header_timeout 4
conf_set_in "$CONF" http max_connections 310
# one address opens 320 HTTP connections below: this test is about
# max_connections, so no per-address cap and no shedding here (t_flood)
conf_set_in "$CONF" http max_per_address 400
conf_set_in "$CONF" http shed_start 0
check "header_timeout = 4 in [http]" grep -q '^header_timeout = 4$' "$CONF"
start_micad || { not_ok "micad starts"; done_testing; }
ok "micad starts"
CA=$D/ca.crt
MICA="$BIN/mica --server 127.0.0.1:$CA_PORT --ca $CA"
printf 'slow clients pw\n' >"$T/pw"
admin account add alice --subject "/CN=alice/O=Org" --password-file "$T/pw" \
    >"$T/alice.add" 2>&1 || not_ok "account add alice"
SECRET=$(sed -n 's/^totp secret[^:]*: //p' "$T/alice.add")
make_csr "$T/alice.key" "$T/alice.csr" "/CN=alice/O=Org"
admin issue --account alice --csr "$T/alice.csr" --out "$T/alice.crt" \
    >/dev/null 2>&1 || not_ok "issue alice"
LOST=$(serial_of "$T/alice.crt")

# ocsp ARGS: openssl ocsp with a generous bound (20 s), never a threshold
ocsp() {
	timeout 20 openssl ocsp -issuer "$CA" -CAfile "$CA" \
	    -url "$URL/ocsp" "$@"
}
now_ms() { date +%s%3N; }
# logged PATTERN: sum of the counts of the rate-limited log lines
# ("<what> N connection(s) in the last Ss (<why>), top address A (K)")
logged() {
	grep -E "$1" "$T/micad.log" |
	    sed -n 's/.* \([0-9][0-9]*\) connections* in the last .*/\1/p' |
	    awk '{ s += $1 } END { print s + 0 }'
}
# logged_eq PATTERN WANT: the sum, once it reaches WANT (the tail of a
# burst is logged within a second by the listener's tick; 10 s bound)
logged_eq() {
	i=0
	while [ "$(logged "$1")" -lt "$2" ] && [ $i -lt 100 ]; do
		sleep 0.1; i=$((i + 1))
	done
	logged "$1"
}

# ---- per-address limit (32): 40 silent connections from one address ----
expect_exit 0 "40 connections from 127.0.0.99" timeout 30 \
    $SLOW burst "$CA_PORT" 127.0.0.99 40 1
echo "# $OUT"
expect_eq "8 extra connections closed at once, 32 kept" "$OUT" \
    "opened=40 closed=8"
expect_eq "micad logged 8 refusals for the address" \
    "$(logged_eq 'ca protocol: refused [0-9]+ connections? .*\(max_per_address 32\), top address 127\.0\.0\.99 ' 8)" 8

# ---- HTTP max_connections (310): 320 connections, 10 refused ----
expect_exit 0 "320 HTTP connections" timeout 30 \
    $SLOW burst "$HTTP_PORT" 127.0.0.98 320 1
echo "# $OUT"
expect_eq "10 over max_connections closed at once, 310 kept" "$OUT" \
    "opened=320 closed=10"
expect_eq "micad logged 10 HTTP refusals" \
    "$(logged_eq 'http: refused [0-9]+ connections? .*\(max_connections 310\)' 10)" 10

# ---- the load: 300 HTTP trickling a header, 300 on the CA port ----
# CA port: 125 silent, 125 half a TLS record, 50 TLS done + trickled frame
# (25 per source address, under the per-address limit).
timeout 60 $SLOW load "$CA" "$HTTP_PORT" "$CA_PORT" 22 300 125 125 50 2 25 \
    >"$T/load.out" 2>&1 &
LOADPID=$!
i=0
while ! grep -q '^# all ' "$T/load.out" 2>/dev/null && [ $i -lt 300 ]; do
	sleep 0.1; i=$((i + 1))
done
grep '^# all' "$T/load.out"
check "slow clients connected" grep -q '^# all 600 connections' "$T/load.out"

# a normal OCSP client, while 300 HTTP connections hold a header open
T0=$(now_ms)
expect_exit 0 "openssl ocsp answers under the slow load" \
    ocsp -cert "$T/alice.crt"
echo "# OCSP latency under slow load: $(( $(now_ms) - T0 )) ms"
expect_out "OCSP says good" "alice.crt: good"
expect_out "OCSP response verifies" "Response verify OK"

# a full reissue with the mica client + approve, while 300 connections
# sit on the CA port
T0=$(now_ms)
$MICA reissue --account alice --lost-cert "$T/alice.crt" \
    --key "$T/new.key" --out "$T/new.crt" --password-file "$T/pw" \
    --otp "$(oathtool --totp -b "$SECRET")" --reason lost --timeout 30 \
    >"$T/re.out" 2>"$T/re.err" &
CPID=$!
i=0
while ! grep -q '^request: ' "$T/re.out" 2>/dev/null && [ $i -lt 200 ]; do
	sleep 0.1; i=$((i + 1))
done
ID=$(sed -n 's/^request: //p' "$T/re.out")
echo "# reissue request accepted after $(( $(now_ms) - T0 )) ms"
check "reissue request $ID accepted under load" test -n "$ID"
check "admin approves under load" admin approve "$ID"
wait $CPID
RC=$?
echo "# reissue done after $(( $(now_ms) - T0 )) ms"
expect_eq "mica reissue exits 0 under load" "$RC" 0
[ "$RC" -eq 0 ] || sed 's/^/#   /' "$T/re.err"
check "new certificate verifies" openssl verify -CAfile "$CA" "$T/new.crt"
T0=$(now_ms)
expect_exit 0 "OCSP for the lost certificate under load" \
    ocsp -cert "$T/alice.crt"
echo "# OCSP latency under slow load: $(( $(now_ms) - T0 )) ms"
expect_out "lost certificate revoked at once" "alice.crt: revoked"

wait $LOADPID
expect_eq "slow load ran to its end" "$?" 0
sed 's/^/# /' "$T/load.out"
field() { sed -n "s/^$1 .*$2=\\([^ ]*\\).*/\\1/p" "$T/load.out"; }
# handshake_timeout 3: every connection that never finished TLS was closed
expect_eq "silent CA connections all closed (handshake timeout)" \
    "$(field ca-silent closed)" 125
expect_eq "half-handshake CA connections all closed" \
    "$(field ca-partial closed)" 125
check "micad logged handshake timeouts" grep -qE \
    'ca protocol: closed [0-9]+ connections? .*\(TLS handshake not completed: error or handshake_timeout 3 s\)' \
    "$T/micad.log"
# header_timeout 4: a header trickled 1 byte/s never completes
expect_eq "trickling HTTP connections all closed (header timeout)" \
    "$(field http closed)" 300
# login_timeout 8: finishing TLS and then trickling a frame does not keep
# a slot either
expect_eq "TLS-done connections trickling a frame all closed (login timeout)" \
    "$(field ca-trickle closed)" 50
check "micad logged the login timeouts" grep -qE \
    'ca protocol: closed [0-9]+ connections? .*\(not logged in within login_timeout 8 s\)' \
    "$T/micad.log"
check "micad still running" kill -0 "$MICAD_PID"
expect_exit 0 "OCSP after the load" ocsp -cert "$T/new.crt"
expect_out "new certificate good" "new.crt: good"

# ---- an HTTP client that pipelines 100,000 requests and does not read ----
# Unthrottled, the answers (~1 KB each) would be ~100 MB queued in micad;
# the listener stops reading a connection with more than 256 KiB of
# answers waiting, so RSS stays put (a resource bound, not a timing one)
# and every request is answered, in order, once the client reads.
openssl ocsp -issuer "$CA" -cert "$T/new.crt" -no_nonce \
    -reqout "$T/flood.der" >/dev/null 2>&1
expect_exit 0 "HTTP pipelining flood without reading" timeout 300 python3 \
    "$(dirname "$0")/httpflood.py" 127.0.0.1 "$HTTP_PORT" "$MICAD_PID" \
    "$T/flood.der" 100000
echo "$OUT" | sed 's/^/# /'
hf() { echo "$OUT" | sed -n "s/^$1 //p"; }
expect_eq "micad RSS grew by less than 64 MB" \
    "$([ $(($(hf rss_max_kb) - $(hf rss_before_kb))) -lt 65536 ] && echo yes)" yes
check "the flood stalled before all was sent (micad stopped reading)" \
    test "$(hf sent_before_read)" -lt 100000
expect_eq "another client served during the flood" "$(hf other_client)" ok
expect_eq "every request answered once the client reads" \
    "$(hf answers_200)" 100000
expect_eq "no other answer" "$(hf answers_other)" 0

stop_micad
expect_eq "micad stops cleanly" "$?" 0
done_testing
