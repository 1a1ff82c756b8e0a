#!/bin/sh
# t_ocsppipe.sh - nonce'd OCSP answers signed from the HTTP thread's event
# loop through its signer channel (docs/SIGNER.md, OCSP batches):
#   - 48 connections each pipelining 8 nonce'd requests, every third
#     closed (FIN or reset) before its answers arrive: every answer that
#     arrives is in order, echoes its own nonce, is for its own
#     certificate and verifies; micad keeps serving afterwards;
#   - a stopped signer (SIGSTOP) holds nonce'd answers but not cached
#     ones on the same thread; 600 nonce'd requests while it is stopped
#     fill the channel's queue: each is answered 503 or, once the signer
#     runs again, right; the 503s are counted in /metrics exactly.
. "$(dirname "$0")/lib.sh"

PY=/usr/bin/python3
D=$T/ca
mica_init "$D" --cn "Pipeline Test CA" || { not_ok "init"; done_testing; }
conf_set "$CONF" review auto
conf_set_in "$CONF" http max_per_address 1000
conf_set_in "$CONF" http max_connections 2000
start_micad || { not_ok "micad starts"; done_testing; }
ok "micad starts"
SPID=$(sed -n 's/.*signer process: pid=\([0-9]*\).*/\1/p' "$T/micad.log" |
    tail -n 1)
HOST=127.0.0.1
PORT=${URL##*:}

printf 'pw-pipe-1\n' >"$T/pw"
admin account add pat --subject "/CN=pat/O=Example" --password-file "$T/pw" \
    >/dev/null 2>&1 || not_ok "account add pat"
for n in 1 2 3; do
	make_csr "$T/l$n.key" "$T/l$n.csr" "/CN=pat/O=Example"
	admin issue --account pat --csr "$T/l$n.csr" --days 30 \
	    --out "$T/l$n.crt" >/dev/null 2>&1 || not_ok "issue l$n"
done
expect_exit 0 "revoke l2" admin revoke "$(serial_of "$T/l2.crt")" \
    --reason keyCompromise
CERTS="$T/l1.crt $T/l2.crt $T/l3.crt"

# ---- pipelined connections, some closed early ----
OUT=$($PY "$TOP/tests/e2e/ocsp_pipeline.py" pipeline $HOST "$PORT" \
    "$D/ca.crt" "$D/ocsp.crt" 48 8 $CERTS 2>&1)
[ "$OUT" = "ok 256 closed 16" ] &&
    ok "48 connections x 8 pipelined nonce'd requests, 16 closed early:" \
    "256 answers in order, own nonce, own certificate, verified" ||
    not_ok "pipelined nonce'd requests: $OUT"
OUT=$($PY "$TOP/tests/e2e/ocsp_pipeline.py" pipeline $HOST "$PORT" \
    "$D/ca.crt" "$D/ocsp.crt" 12 4 $CERTS 2>&1)
[ "$OUT" = "ok 32 closed 4" ] && ok "micad keeps serving pipelines" ||
    not_ok "second round: $OUT"
expect_exit 0 "openssl ocsp with a nonce afterwards" \
    openssl ocsp -issuer "$D/ca.crt" -CAfile "$D/ca.crt" -url "$URL/ocsp" \
    -cert "$T/l2.crt" -nonce
expect_out "it says revoked" "l2.crt: revoked"
expect_out "and verifies" "Response verify OK"

# ---- a stopped signer ----
openssl ocsp -issuer "$D/ca.crt" -cert "$T/l1.crt" -no_nonce \
    -reqout "$T/plain.der" >/dev/null 2>&1
openssl ocsp -issuer "$D/ca.crt" -cert "$T/l3.crt" -nonce \
    -reqout "$T/nonce.der" >/dev/null 2>&1
ESC=$(base64 -w0 "$T/plain.der" | sed 's/+/%2B/g; s|/|%2F|g; s/=/%3D/g')
curl -sf -o "$T/cached0.der" "$URL/ocsp/$ESC" || not_ok "GET (fills the cache)"
misses() {
	curl -sf "$URL/metrics" |
	    awk '/^mica_ocsp_cache_misses_total / {print $2}'
}
M0=$(misses)
kill -STOP "$SPID"
curl -s -o "$T/held.der" -w '%{http_code}' --max-time 300 \
    -H 'Content-Type: application/ocsp-request' \
    --data-binary "@$T/nonce.der" "$URL/ocsp" >"$T/held.code" 2>&1 &
HELD=$!
i=0	# until micad has taken it in (it cannot be answered)
while [ $i -lt 300 ] && [ "$(misses)" -le "$M0" ]; do
	sleep 0.1
	i=$((i + 1))
done
expect_eq "the nonce'd request reached micad" "$(misses)" $((M0 + 1))
curl -sf -o "$T/cached1.der" "$URL/ocsp/$ESC" &&
    cmp -s "$T/cached0.der" "$T/cached1.der" &&
    ok "signer stopped: a cached answer is still served" ||
    not_ok "signer stopped: a cached answer is still served"
kill -0 $HELD 2>/dev/null && ok "while the nonce'd request waits" ||
    not_ok "the nonce'd request did not wait for the stopped signer"
B0=$(curl -sf "$URL/metrics" | awk '/^mica_ocsp_signer_busy_total / {print $2}')
expect_eq "no 503 for a full signer queue yet" "$B0" 0
# 600 more nonce'd requests; ocsp_pipeline.py sends the signer SIGCONT
# once micad has taken all of them in
OUT=$($PY "$TOP/tests/e2e/ocsp_pipeline.py" busy $HOST "$PORT" \
    "$D/ca.crt" "$D/ocsp.crt" 600 "$SPID" "$URL/metrics" $CERTS 2>&1)
A=$(echo "$OUT" | sed -n 's/^ok answered \([0-9]*\) busy [0-9]*$/\1/p')
B=$(echo "$OUT" | sed -n 's/^ok answered [0-9]* busy \([0-9]*\)$/\1/p')
if [ -n "$A" ] && [ -n "$B" ] && [ $((A + B)) -eq 600 ] && [ "$B" -ge 1 ] &&
    [ "$A" -ge 512 ]; then
	ok "600 nonce'd requests with the signer stopped: $A answered right" \
	    "after it ran again, $B answered 503 (queue full)"
else
	not_ok "full signer queue: $OUT"
fi
B1=$(curl -sf "$URL/metrics" | awk '/^mica_ocsp_signer_busy_total / {print $2}')
expect_eq "the 503s are counted exactly" "$B1" "$B"
grep -q "ocsp: answered 503 on [0-9]* connections* in the last" \
    "$T/micad.log" && ok "and logged" || not_ok "the 503s are not logged"
wait $HELD
expect_eq "the held nonce'd request is answered 200" "$(cat "$T/held.code")" 200
expect_exit 0 "its answer verifies and echoes its nonce" \
    openssl ocsp -reqin "$T/nonce.der" -respin "$T/held.der" \
    -CAfile "$D/ca.crt"
expect_out "verified" "Response verify OK"
printf '%s\n' "$OUT" | grep -qi nonce &&
    not_ok "nonce checked: $OUT" || ok "its nonce is the request's"
expect_exit 0 "openssl ocsp with a nonce afterwards" \
    openssl ocsp -issuer "$D/ca.crt" -CAfile "$D/ca.crt" -url "$URL/ocsp" \
    -cert "$T/l1.crt" -nonce
expect_out "it says good" "l1.crt: good"
grep -q "signer refused" "$T/micad.log" &&
    not_ok "the signer refused none" || ok "the signer refused none"
stop_micad
expect_eq "micad stops cleanly" "$?" 0
done_testing
