#!/bin/sh
# A subscriber's LIST scans every certificate record (there is no index by
# account): at 300,000 certificates that takes a while, and it runs on a
# worker, not on the CA-protocol loop, so other subscribers' connections
# are served meanwhile.  The answer is still exact (the account's total
# and its certificates, newest first), a LIST of a connection that goes
# away meanwhile is dropped quietly, and a stop does not wait for a scan.
. "$(dirname "$0")/lib.sh"

mica_init "$T/ca" || { not_ok "mica-admin init"; done_testing; }
D=$T/ca
conf_set "$CONF" workers 1
start_micad || { not_ok "micad starts"; done_testing; }
PW='correct-horse-battery'
printf '%s\n' "$PW" >"$T/pw"
for a in alice bob carol dave; do
	account_add $a "/CN=$a/O=Org" "$T/pw" || not_ok "account add $a"
done
# (a TOTP code logs in once: bob, carol and dave for the later LOGINs)
otp() { totp_of "${1:-alice}"; }
for n in 1 2 3; do
	make_csr "$T/l$n.key" "$T/l$n.csr" "/CN=alice/O=Org"
	expect_exit 0 "issue l$n" admin issue --account alice \
	    --csr "$T/l$n.csr" --days 30 --out "$T/l$n.crt"
done
stop_micad || not_ok "micad stops"
# (under valgrind the scan is slow enough with fewer)
N=300000
[ -n "${MICA_VALGRIND:-}" ] && N=30000
expect_exit 0 "fill the store with $N certificates of another account" \
    "${MICA_BUILD:-$TOP/build}/tests/fill_store" -d "$D/store" \
    -c "$D/ca.crt" -n "$N"
start_micad || { not_ok "micad starts with $N more"; done_testing; }

# the LIST on connection A, then 5 new connections one after another
python3 "$(dirname "$0")/list_busyloop.py" "$D/ca.crt" "$CA_PORT" alice \
    "$PW" "$(otp)" 5 >"$T/order.out" 2>&1
sed 's/^/# /' "$T/order.out"
expect_eq "LOGIN ok" "$(sed -n 1p "$T/order.out")" "login ok"
expect_eq "CERTS: alice's 3 of $((N + 3)), all sent" \
    "$(grep -c '^certs 3 3$' "$T/order.out")" 1
expect_eq "every new connection got its SERVER_HELLO" \
    "$(grep -c '^hello ' "$T/order.out")" 5
expect_eq "the first new connection was served before the CERTS" \
    "$(sed -n 2p "$T/order.out")" "hello 0"
check "the LIST was logged with its total" \
    grep -q "account=alice list total=3 sent=3" "$T/micad.log"

# a LIST whose connection closes at once: the scan ends, nobody is told,
# and the next LIST is answered as before
python3 "$(dirname "$0")/list_busyloop.py" "$D/ca.crt" "$CA_PORT" bob \
    "$PW" "$(otp bob)" close >"$T/close.out" 2>&1
expect_eq "LIST sent, connection closed" "$(cat "$T/close.out")" \
    "$(printf 'login ok\nclosed')"
i=0
while [ $i -lt 600 ] && ! grep -q 'account=bob list total=0' "$T/micad.log"
do
	sleep 0.1
	i=$((i + 1))
done
check "the closed connection's LIST was read to the end (logged)" \
    grep -q "account=bob list total=0 sent=0" "$T/micad.log"
python3 "$(dirname "$0")/list_busyloop.py" "$D/ca.crt" "$CA_PORT" carol \
    "$PW" "$(otp carol)" 1 >"$T/again.out" 2>&1
expect_eq "the next LIST is answered (carol: none of her own)" \
    "$(grep -c '^certs 0 0$' "$T/again.out")" 1
# a stop while a LIST reads: it gives up (or has finished); a clean exit
python3 "$(dirname "$0")/list_busyloop.py" "$D/ca.crt" "$CA_PORT" dave \
    "$PW" "$(otp dave)" close >"$T/stop.out" 2>&1
expect_eq "dave's LIST sent" "$(cat "$T/stop.out")" \
    "$(printf 'login ok\nclosed')"
stop_micad
expect_eq "micad stops cleanly during a LIST" "$?" 0
if grep -q "account=dave list: given up at stop" "$T/micad.log"; then
	echo "# the stop came during dave's LIST"
elif grep -q "account=dave list total=0" "$T/micad.log"; then
	echo "# dave's LIST had finished before the stop"
else
	echo "# the stop came before dave's LIST was read"
fi
check "no LIST failed" sh -c "! grep -q 'list: store read failed\|list: a certificate record' '$T/micad.log'"
done_testing
