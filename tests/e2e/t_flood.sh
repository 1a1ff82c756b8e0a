#!/bin/sh
# t_flood.sh - connection floods must not lock honest clients out.
# HTTP: 1,100 idle sockets from 127.0.0.2 (past [http] max_per_address
# 64: fast 503 with Retry-After) and 60 more from each of 127.0.0.3..9,
# so that the table (max_connections lowered to 400) goes past shed_start
# (75% = 300) and idle connections are shed.  CA protocol (defaults: 256
# connections, 32 per address): from each of 127.0.0.2..9, 20 plain TCP
# connections that never send a ClientHello and 20 that finish TLS 1.3
# and stay silent: 320 > 256 and 40 > 32.  The attackers reopen every
# connection the server closes, for 20 s.  Meanwhile an honest
# `openssl ocsp` and an honest `mica reissue` from 127.0.0.1 succeed.
# Refusals are logged at most once a second per reason, with counts that
# add up to the /metrics counters.  No timing thresholds: every wait is a
# bounded poll for a condition.
. "$(dirname "$0")/lib.sh"

FLOOD="python3 $(dirname "$0")/flood.py"
SECS=20
D=$T/ca
mica_init "$D" --cn "Flood CA" || { not_ok "init"; done_testing; }
conf_set_in "$CONF" http max_connections 400
# micad holds every attacker socket for a moment: room for all of them
ulimit -n 8192 2>/dev/null || ulimit -n "$(ulimit -Hn)"
T_START=$(date +%s)
start_micad || { not_ok "micad starts"; done_testing; }
ok "micad starts (fd limit $(ulimit -n))"
CA=$D/ca.crt
MICA="$BIN/mica --server 127.0.0.1:$CA_PORT --ca $CA"
printf 'flood pw\n' >"$T/pw"
admin account add alice --subject "/CN=alice/O=Org" --password-file "$T/pw" \
    >"$T/alice.add" 2>&1 || not_ok "account add alice"
SECRET=$(sed -n 's/^totp secret[^:]*: //p' "$T/alice.add")
make_csr "$T/alice.key" "$T/alice.csr" "/CN=alice/O=Org"
admin issue --account alice --csr "$T/alice.csr" --out "$T/alice.crt" \
    >/dev/null 2>&1 || not_ok "issue alice"

ocsp() {
	timeout 30 openssl ocsp -issuer "$CA" -CAfile "$CA" \
	    -url "$URL/ocsp" "$@"
}
# metric LISTENER REASON: mica_connections_dropped_total from /metrics
metric() {
	curl -s --max-time 20 "$URL/metrics" | sed -n \
	    "s/^mica_connections_dropped_total{listener=\"$1\",reason=\"$2\"} //p"
}
# logged PATTERN: sum of the counts of the log lines matching PATTERN
# ("<what> N connection(s) in the last ...")
logged() {
	grep -E "$1" "$T/micad.log" |
	    sed -n 's/.* \([0-9][0-9]*\) connections* in the last .*/\1/p' |
	    awk '{ s += $1 } END { print s + 0 }'
}

# ---- the floods ----
HSPEC="http:$HTTP_PORT:127.0.0.2:1100"
CSPEC=""
for a in 2 3 4 5 6 7 8 9; do
	[ $a -gt 2 ] && HSPEC="$HSPEC http:$HTTP_PORT:127.0.0.$a:60"
	CSPEC="$CSPEC tcp:$CA_PORT:127.0.0.$a:20 tls:$CA_PORT:127.0.0.$a:20"
done
timeout 120 $FLOOD $SECS $HSPEC >"$T/hflood.out" 2>&1 &
HPID=$!
timeout 120 $FLOOD $SECS $CSPEC >"$T/cflood.out" 2>&1 &
CPID=$!
i=0
while { ! grep -q '^# all ' "$T/hflood.out" 2>/dev/null ||
    ! grep -q '^# all ' "$T/cflood.out" 2>/dev/null; } && [ $i -lt 300 ]; do
	sleep 0.1; i=$((i + 1))
done
check "HTTP flood: 1,520 connections tried" \
    grep -q '^# all 1520 connections tried' "$T/hflood.out"
check "CA flood: 320 connections tried" \
    grep -q '^# all 320 connections tried' "$T/cflood.out"
# past the limits: the table is above shed_start and refusals happened
i=0
while [ "$(metric http shed)" = 0 ] || [ "$(metric protocol shed)" = 0 ] ||
    [ "$(metric protocol max_per_address)" = 0 ]; do
	[ $i -lt 200 ] || break
	sleep 0.1; i=$((i + 1))
done
check "HTTP connections shed during the flood" test "$(metric http shed)" -gt 0
check "CA connections shed during the flood" \
    test "$(metric protocol shed)" -gt 0
check "CA connections refused over max_per_address" \
    test "$(metric protocol max_per_address)" -gt 0

# ---- honest clients from 127.0.0.1, while the floods go on ----
expect_exit 0 "openssl ocsp answers during the flood" ocsp -cert "$T/alice.crt"
expect_out "OCSP says good" "alice.crt: good"
expect_out "OCSP response verifies" "Response verify OK"

$MICA reissue --account alice --lost-cert "$T/alice.crt" \
    --key "$T/new.key" --out "$T/new.crt" --password-file "$T/pw" \
    --otp "$(oathtool --totp -b "$SECRET")" --reason lost --timeout 60 \
    >"$T/re.out" 2>"$T/re.err" &
RPID=$!
i=0
while ! grep -q '^request: ' "$T/re.out" 2>/dev/null && [ $i -lt 300 ]; do
	kill -0 $RPID 2>/dev/null || break
	sleep 0.1; i=$((i + 1))
done
ID=$(sed -n 's/^request: //p' "$T/re.out")
check "reissue request accepted during the flood" test -n "$ID"
check "admin approves request $ID during the flood" admin approve "$ID"
wait $RPID
RC=$?
expect_eq "mica reissue exits 0 during the flood" "$RC" 0
[ "$RC" -eq 0 ] || sed 's/^/#   /' "$T/re.err"
check "the new certificate verifies" openssl verify -CAfile "$CA" "$T/new.crt"
check "both floods still running (the clients did not wait them out)" \
    kill -0 $HPID $CPID
expect_exit 0 "OCSP for the lost certificate during the flood" \
    ocsp -cert "$T/alice.crt"
expect_out "lost certificate revoked at once" "alice.crt: revoked"

# ---- what the attackers saw ----
wait $HPID
expect_eq "HTTP flood ran to its end" "$?" 0
wait $CPID
expect_eq "CA flood ran to its end" "$?" 0
sed 's/^/# /' "$T/hflood.out" "$T/cflood.out"
fld() { sed -n "s/^$2 .*$3=\\([0-9]*\\).*/\\1/p" "$1"; }
check "127.0.0.2 over max_per_address got 503s" \
    test "$(fld "$T/hflood.out" http http503_per_address)" -gt 1000
check "shed HTTP connections got a 503 saying so" \
    test "$(fld "$T/hflood.out" http http503_shed)" -gt 0
expect_eq "every 503 carried Retry-After" \
    "$(fld "$T/hflood.out" http no_retry_after)" 0
expect_eq "no other 503" "$(fld "$T/hflood.out" http http503_other)" 0
check "shed TLS connections got ERROR 11 (busy)" \
    test "$(fld "$T/cflood.out" tls busy)" -gt 0
check "plain TCP attackers were closed too" \
    test "$(fld "$T/cflood.out" tcp closed)" -gt 0

# ---- the log: few lines, and their counts add up to /metrics ----
# (the last line of a burst is written within a second of the next tick)
PA='^([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z )?micad: info: http: refused [0-9]+ connections? .*\(max_per_address 64\)'
HS='^([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z )?micad: info: http: shed [0-9]+ connections? '
CR='^([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z )?micad: info: ca protocol: refused [0-9]+ connections? .*\(max_per_address 32\)'
CS='^([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z )?micad: info: ca protocol: shed [0-9]+ connections? '
i=0
while [ $i -lt 100 ]; do
	[ "$(logged "$PA")" = "$(metric http max_per_address)" ] &&
	    [ "$(logged "$HS")" = "$(metric http shed)" ] &&
	    [ "$(logged "$CR")" = "$(metric protocol max_per_address)" ] &&
	    [ "$(logged "$CS")" = "$(metric protocol shed)" ] && break
	sleep 0.1; i=$((i + 1))
done
ELAPSED=$(( $(date +%s) - T_START + 1 ))
for p in "$PA" "$HS" "$CR" "$CS"; do
	n=$(grep -cE "$p" "$T/micad.log")
	echo "# $n lines for $(logged "$p") connections: $p"
	check "at most one line a second (${ELAPSED}s): $p" test "$n" -le "$ELAPSED"
done
expect_eq "HTTP per-address refusals: log counts = /metrics" \
    "$(logged "$PA")" "$(metric http max_per_address)"
expect_eq "HTTP sheds: log counts = /metrics" \
    "$(logged "$HS")" "$(metric http shed)"
expect_eq "CA per-address refusals: log counts = /metrics" \
    "$(logged "$CR")" "$(metric protocol max_per_address)"
expect_eq "CA sheds: log counts = /metrics" \
    "$(logged "$CS")" "$(metric protocol shed)"
check "a refusal line names the top address" grep -qE \
    "$PA, top address 127\\.0\\.0\\.2 \\([0-9]+\\)\$" "$T/micad.log"
echo "# micad.log: $(wc -l <"$T/micad.log") lines in all"
check "no per-connection refusal lines" \
    sh -c "! grep -qE 'refused addr=|refused a connection' '$T/micad.log'"

# ---- micad is healthy afterwards ----
check "micad still running" kill -0 "$MICAD_PID"
expect_exit 0 "OCSP after the flood" ocsp -cert "$T/new.crt"
expect_out "new certificate good" "new.crt: good"
expect_exit 0 "/healthz after the flood" curl -sf --max-time 20 "$URL/healthz"
check "mica-admin status after the flood" admin status
stop_micad
expect_eq "micad stops cleanly" "$?" 0
done_testing
