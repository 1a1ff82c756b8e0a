#!/bin/sh
# t_tlsname.sh - a wrong --tls-name fixed after init: the client's error
# names the server certificate's names, `mica --server-name` checks
# another name, `mica-admin tls renew --name` swaps in a certificate with
# the right names without a restart (same micad), and a connection opened
# before the swap keeps working.
. "$(dirname "$0")/lib.sh"

PY=/usr/bin/python3
mica_init "$T/ca" --tls-name wrong.example --tls-name 10.9.9.9 ||
    { not_ok "mica-admin init"; done_testing; }
start_micad || { not_ok "micad starts"; done_testing; }
CA=$T/ca/ca.crt
PID=$MICAD_PID
unset MICA_SERVER MICA_CA
MICA="$BIN/mica --server 127.0.0.1:$CA_PORT --ca $CA"


# ---- the wrong name: the error lists the certificate's names ----
expect_exit 1 "status against 127.0.0.1 fails the name check" \
    $MICA status --request 1 --token "$(printf '%064d' 0)"
expect_out "the error names the certificate's names and the fixes" \
    "mica: 127.0.0.1:$CA_PORT: server certificate: it is for DNS:wrong.example, IP:10.9.9.9, not 127.0.0.1 (connect with --server-name NAME to expect one of its names, or have the CA operator run \`mica-admin tls renew --name 127.0.0.1\`)"

# ---- --server-name: the name the certificate must carry ----
expect_exit 1 "--server-name wrong.example passes TLS (the unknown request is refused)" \
    $BIN/mica --server-name wrong.example --server "127.0.0.1:$CA_PORT" \
    --ca "$CA" status --request 1 --token "$(printf '%064d' 0)"
if printf '%s\n' "$OUT" | grep -q "server certificate"; then
	not_ok "--server-name: no certificate error (got: $OUT)"
else
	ok "--server-name: no certificate error"
fi
expect_out "--server-name: the server answered the STATUS" "mica: not found"
expect_exit 1 "--server-name with an IP the certificate carries" \
    $BIN/mica --server-name 10.9.9.9 --server "127.0.0.1:$CA_PORT" \
    --ca "$CA" status --request 1 --token "$(printf '%064d' 0)"
if printf '%s\n' "$OUT" | grep -q "server certificate"; then
	not_ok "--server-name IP: no certificate error (got: $OUT)"
else
	ok "--server-name IP: no certificate error"
fi
expect_exit 1 "--server-name with another name fails" \
    $BIN/mica --server-name other.example --server "127.0.0.1:$CA_PORT" \
    --ca "$CA" status --request 1 --token "$(printf '%064d' 0)"
expect_out "the error says which name was expected" \
    "it is for DNS:wrong.example, IP:10.9.9.9, not other.example"

# ---- a connection opened before the renewal ----
OLD_SERIAL=$(serial_of "$T/ca/tls.crt")
$PY "$(dirname "$0")/tlsconn.py" "$CA" "$CA_PORT" wrong.example "$T/go" \
    >"$T/conn.out" 2>&1 &
CONN=$!
i=0
while [ $i -lt 100 ] && ! grep -q '^serial' "$T/conn.out"; do
	sleep 0.1; i=$((i + 1))
done
expect_eq "the held connection got the old certificate" \
    "$(sed -n 's/^serial //p' "$T/conn.out")" "$OLD_SERIAL"

# ---- tls renew: syntax checks ----
expect_exit 2 "tls renew without names is a usage error" admin tls renew
expect_out "usage names the options" "usage: tls renew --name NAME... [--ip ADDR...]"
expect_exit 1 "tls renew refuses a bad DNS name" admin tls renew --name "bad_name.example"
expect_out "the bad name and the rule" \
    "mica-admin: tls renew: SAN \"DNS:bad_name.example\": DNS name \"bad_name.example\": only letters, digits, hyphens and dots between labels (RFC 1035 section 2.3.1)"
expect_exit 1 "tls renew refuses --ip that is no address" admin tls renew --name ca.example --ip 300.1.1.1
expect_out "the bad address" "mica-admin: tls renew: --ip 300.1.1.1: not an IPv4 or IPv6 address"
expect_eq "tls.crt unchanged after refusals" "$(serial_of "$T/ca/tls.crt")" "$OLD_SERIAL"

# ---- tls renew: the new names ----
expect_exit 0 "tls renew --name localhost --ip 127.0.0.1 --ip ::1" \
    admin tls renew --name localhost --ip 127.0.0.1 --ip ::1
expect_out "prints the names" "names: DNS:localhost, IP:127.0.0.1, IP:::1"
NEW_SERIAL=$(printf '%s\n' "$OUT" | sed -n 's/^serial: //p')
expect_eq "tls.crt is the new certificate" "$(serial_of "$T/ca/tls.crt")" "$NEW_SERIAL"
if [ "$NEW_SERIAL" != "$OLD_SERIAL" ]; then ok "a new serial"; else not_ok "a new serial"; fi
check "the new certificate carries the names" sh -c "openssl x509 -in '$T/ca/tls.crt' -noout -ext subjectAltName | grep -q 'DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1'"
check "the new certificate verifies" openssl verify -CAfile "$CA" "$T/ca/tls.crt"
check "the key matches the certificate" sh -c "[ \"\$(openssl x509 -in '$T/ca/tls.crt' -noout -pubkey)\" = \"\$(openssl pkey -in '$T/ca/private/tls.key' -pubout)\" ]"
check "the renewal is recorded" sh -c "$BIN/mica-admin -c '$CONF' show $NEW_SERIAL | grep -q 'status: good'"
check "and audited" sh -c "$BIN/mica-admin -c '$CONF' audit | grep -q 'cert.renew.*$NEW_SERIAL'"

# ---- no restart; the client works with the address now ----
if kill -0 "$PID" 2>/dev/null && [ "$MICAD_PID" = "$PID" ]; then
	ok "same micad process"
else
	not_ok "same micad process"
fi
expect_exit 1 "status against 127.0.0.1 passes TLS now" \
    $MICA status --request 1 --token "$(printf '%064d' 0)"
if printf '%s\n' "$OUT" | grep -q "server certificate"; then
	not_ok "no certificate error after the renewal (got: $OUT)"
else
	ok "no certificate error after the renewal"
fi
check "openssl s_client sees the new certificate" sh -c "openssl s_client -connect 127.0.0.1:$CA_PORT -CAfile '$CA' -verify_ip 127.0.0.1 -verify_return_error </dev/null 2>/dev/null | openssl x509 -noout -serial | grep -q '=$NEW_SERIAL\$'"
expect_exit 1 "the old name is refused now" \
    $BIN/mica --server-name wrong.example --server "127.0.0.1:$CA_PORT" \
    --ca "$CA" status --request 1 --token "$(printf '%064d' 0)"
expect_out "the error lists the new names" \
    "it is for DNS:localhost, IP:127.0.0.1, IP:::1, not wrong.example"

# ---- the connection opened before is unaffected ----
touch "$T/go"
wait "$CONN"
expect_eq "the old connection still answers" "$(tail -n 1 "$T/conn.out")" "alive"

check "micad logged the reload" grep -q "ca protocol: TLS certificate reloaded" "$T/micad.log"
done_testing
