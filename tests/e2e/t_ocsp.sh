#!/bin/sh
# OCSP end to end against a real micad: openssl ocsp and gnutls ocsptool
# as clients; good, revoked with reason, hold/unhold, unknown, GET form
# (plain and percent-escaped), nonce echo, several certificates in one
# request, RFC 5019 caching headers, error answers, /healthz.
. "$(dirname "$0")/lib.sh"

D=$T/ca
mica_init "$D" --cn "OCSP Test CA" || { not_ok "init"; done_testing; }
start_micad || { not_ok "micad starts"; done_testing; }
ok "micad starts"

printf 'bob password 1\n' >"$T/pw"
admin account add bob --subject "/CN=bob/O=Example" --password-file "$T/pw" \
    >/dev/null 2>&1 || not_ok "account add bob"
for n in 1 2 3; do
	make_csr "$T/l$n.key" "$T/l$n.csr" "/CN=bob/O=Example"
	admin issue --account bob --csr "$T/l$n.csr" --days 30 \
	    --out "$T/l$n.crt" >/dev/null 2>&1 || not_ok "issue l$n"
done
S1=$(serial_of "$T/l1.crt")
S2=$(serial_of "$T/l2.crt")
S3=$(serial_of "$T/l3.crt")
# a certificate micad never issued (self-made, same issuer name and key)
openssl x509 -req -in "$T/l1.csr" -CA "$D/ca.crt" -CAkey "$D/private/ca.key" \
    -set_serial 0x1234567890abcdef -days 1 -out "$T/never.crt" 2>/dev/null ||
    not_ok "make a never-issued certificate"

# ocsp ARGS...: openssl ocsp against micad, verified against ca.crt.
ocsp() {
	openssl ocsp -issuer "$D/ca.crt" -CAfile "$D/ca.crt" \
	    -url "$URL/ocsp" "$@"
}

expect_exit 0 "openssl ocsp: good certificate" ocsp -cert "$T/l1.crt"
expect_out "response verifies" "Response verify OK"
expect_out "l1 is good" "l1.crt: good"

expect_exit 0 "revoke l2 keyCompromise" admin revoke "$S2" \
    --reason keyCompromise
expect_exit 0 "openssl ocsp: revoked certificate" ocsp -cert "$T/l2.crt"
expect_out "l2 is revoked at once" "l2.crt: revoked"
expect_out "with its reason" "Reason: keyCompromise"
expect_out "and a revocation time" "Revocation Time:"

# the cached good answer must not survive a status change
expect_exit 0 "l3 good (and cached)" ocsp -no_nonce -cert "$T/l3.crt"
expect_out "l3 is good" "l3.crt: good"
expect_exit 0 "hold l3" admin hold "$S3"
expect_exit 0 "openssl ocsp: held certificate" ocsp -no_nonce -cert "$T/l3.crt"
expect_out "held is revoked" "l3.crt: revoked"
expect_out "with reason certificateHold" "Reason: certificateHold"
expect_exit 0 "unhold l3" admin unhold "$S3"
expect_exit 0 "openssl ocsp: released certificate" ocsp -no_nonce \
    -cert "$T/l3.crt"
expect_out "released is good again" "l3.crt: good"

expect_exit 0 "openssl ocsp: never-issued serial" ocsp -cert "$T/never.crt"
expect_out "never issued is unknown" "never.crt: unknown"

expect_exit 0 "three certificates in one request" ocsp -cert "$T/l1.crt" \
    -cert "$T/l2.crt" -cert "$T/never.crt"
expect_out "first good" "l1.crt: good"
expect_out "second revoked" "l2.crt: revoked"
expect_out "third unknown" "never.crt: unknown"
if printf '%s\n' "$OUT" | grep -q "WARNING: no nonce"; then
	not_ok "nonce echoed"
else
	ok "nonce echoed"
fi

expect_exit 0 "SHA-256 CertID" ocsp -sha256 -cert "$T/l1.crt"
expect_out "SHA-256 CertID answered good" "l1.crt: good"

# GET form (RFC 6960 A.1): plain base64 and percent-escaped
openssl ocsp -issuer "$D/ca.crt" -cert "$T/l2.crt" -no_nonce \
    -reqout "$T/req.der" >/dev/null 2>&1
B64=$(base64 -w0 "$T/req.der")
ESC=$(printf %s "$B64" | sed 's/+/%2B/g; s|/|%2F|g; s/=/%3D/g')
expect_exit 0 "GET /ocsp/<base64>" curl -sf -D "$T/get.hdr" \
    -o "$T/get.der" "$URL/ocsp/$B64"
expect_exit 0 "GET answer verifies" openssl ocsp -respin "$T/get.der" \
    -issuer "$D/ca.crt" -cert "$T/l2.crt" -CAfile "$D/ca.crt"
expect_out "GET answer says revoked" "l2.crt: revoked"
OUT=$(cat "$T/get.hdr")
expect_out "content type" "Content-Type: application/ocsp-response"
expect_out "RFC 5019 Cache-Control" "public, no-transform, must-revalidate"
expect_out "Last-Modified" "Last-Modified: "
expect_out "Expires" "Expires: "
expect_out "ETag" "ETag: \""
expect_out "X-Mica-Serials names the serial" \
    "X-Mica-Serials: $(serial_of "$T/l2.crt")"
age=$(printf '%s\n' "$OUT" | tr -d '\r' | sed -n 's/^Cache-Control: max-age=\([0-9]*\).*/\1/p')
if [ -n "$age" ] && [ "$age" -gt 0 ] && [ "$age" -le 60 ]; then
	ok "max-age $age within [http] cache_max_age (60)"
else
	not_ok "max-age '$age' not within 1..60"
fi
expect_exit 0 "GET /<escaped base64>" curl -sf -o "$T/get2.der" "$URL/$ESC"
expect_exit 0 "escaped GET answers the same bytes (cache)" \
    cmp "$T/get.der" "$T/get2.der"

# POST with the wrong media type; bad GET; health
expect_eq "POST text/plain is 415" "$(curl -s -o /dev/null -w '%{http_code}' \
    -H 'Content-Type: text/plain' --data-binary @"$T/req.der" "$URL/ocsp")" 415
expect_eq "bad base64 is no OCSP request: 404" \
    "$(curl -s -o /dev/null -w '%{http_code}' "$URL/ocsp/YQ=a")" 404
expect_eq "an unknown path is 404" \
    "$(curl -s -o /dev/null -w '%{http_code}' "$URL/favicon.ico")" 404
curl -s -D "$T/bad.hdr" -o "$T/bad.der" "$URL/ocsp/MAMCAQE%3D"
expect_eq "a DER SEQUENCE that is no OCSPRequest: malformedRequest" \
    "$(od -An -tx1 "$T/bad.der" | tr -d ' \n')" 30030a0101
expect_eq "malformedRequest is no-store" "$(tr -d '\r' <"$T/bad.hdr" |
    sed -n 's/^Cache-Control: //p')" "no-cache, no-store"
expect_eq "/healthz" "$(curl -s "$URL/healthz")" ok

# gnutls as a second client
if command -v ocsptool >/dev/null 2>&1; then
	expect_exit 0 "ocsptool: revoked certificate" ocsptool \
	    --ask="$URL/ocsp" --load-issuer="$D/ca.crt" \
	    --load-cert="$T/l2.crt" --load-trust="$D/ca.crt"
	expect_out "ocsptool verifies the response" "Verifying OCSP Response: Success"
	expect_out "ocsptool sees the revocation" "Revocation time"
	expect_exit 0 "ocsptool: good certificate with nonce" ocsptool \
	    --ask="$URL/ocsp" --nonce --load-issuer="$D/ca.crt" \
	    --load-cert="$T/l1.crt" --load-trust="$D/ca.crt"
	expect_out "ocsptool verifies the nonce answer" "Verifying OCSP Response: Success"
else
	echo "# ocsptool not installed; skipped"
fi

OUT=$(curl -s "$URL/metrics")
expect_out "metrics count revoked answers" 'mica_ocsp_requests_total{result="revoked"}'

stop_micad || not_ok "micad stops cleanly"
done_testing
