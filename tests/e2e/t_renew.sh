#!/bin/sh
# t_renew.sh - a subscriber renews a certificate before it expires with
# the real `mica renew`: possession of the current key is proven by a
# signature over the server's nonce (no password, no code, no review);
# the old certificate is superseded at once (OCSP through openssl ocsp,
# the delta CRL); refused for a revoked, an expired (micad under
# libfaketime), another CA's certificate, outside the window (exit 4
# unless mica-admin allow-renew), with renew = off and, without an
# administrator's permission, with renew = manual; renew_revoke_old = no
# leaves the old certificate to expire.  Exact messages.
. "$(dirname "$0")/lib.sh"

mica_init "$T/ca" || { not_ok "mica-admin init"; done_testing; }
start_micad || { not_ok "micad starts"; done_testing; }
CA=$T/ca/ca.crt
MICA="$BIN/mica --server 127.0.0.1:$CA_PORT --ca $CA"
unset MICA_SERVER MICA_CA
echo 'correct-horse-battery' >"$T/pw"

# cert NAME DAYS: account NAME (made once) and a certificate $T/NAME.crt
# for $T/NAME.key valid for DAYS days.
cert() {
	admin account list | grep -q "^$1 " ||
	    admin account add "$1" --subject "/CN=$1/O=Org" \
	    --password-file "$T/pw" >/dev/null 2>&1 || return 1
	make_csr "$T/$1.key" "$T/$1.csr" "/CN=$1/O=Org"
	admin issue --account "$1" --csr "$T/$1.csr" --days "$2" \
	    --out "$T/$1.crt" >/dev/null 2>&1
}
# ocsp_status CERT: "good", "revoked" (with "Reason: ..." in $T/ocsp.txt).
ocsp_status() {
	openssl ocsp -issuer "$CA" -CAfile "$CA" -url "$URL/ocsp" -no_nonce \
	    -cert "$1" >"$T/ocsp.txt" 2>&1
	sed -n "s|^$1: ||p" "$T/ocsp.txt"
}

# ---- inside the window: possession proven, old superseded at once ----
cert ann 10 || not_ok "ann's certificate"
OLD=$(serial_of "$T/ann.crt")
expect_eq "OCSP before: good" "$(ocsp_status "$T/ann.crt")" good
curl -s -o "$T/delta0.der" "$URL/crl/delta.crl"
expect_exit 0 "mica renew (same key, 10 days left)" $MICA renew \
    --cert "$T/ann.crt" --key "$T/ann.key" --out "$T/ann.new.crt"
expect_out "writes the certificate" "certificate: $T/ann.new.crt"
check "the new certificate verifies" openssl verify -CAfile "$CA" \
    "$T/ann.new.crt"
expect_eq "same subject" \
    "$(openssl x509 -in "$T/ann.new.crt" -noout -subject)" \
    "$(openssl x509 -in "$T/ann.crt" -noout -subject)"
NEW=$(serial_of "$T/ann.new.crt")
check "a new serial" test "$NEW" != "$OLD"
check "the same key (no --new-key)" test \
    "$(openssl x509 -in "$T/ann.new.crt" -noout -pubkey)" = \
    "$(openssl pkey -in "$T/ann.key" -pubout)"
expect_eq "OCSP at once: the old one revoked" "$(ocsp_status "$T/ann.crt")" \
    revoked
check "OCSP reason: superseded" grep -q "Reason: superseded" "$T/ocsp.txt"
expect_eq "OCSP: the new one good" "$(ocsp_status "$T/ann.new.crt")" good
# the delta CRL: poll (it is rebuilt after the commit), bounded
i=0
while [ $i -lt 50 ]; do
	curl -s -o "$T/delta1.der" "$URL/crl/delta.crl"
	openssl crl -inform DER -in "$T/delta1.der" -noout -text \
	    >"$T/delta1.txt" 2>&1
	grep -q "Serial Number: $OLD" "$T/delta1.txt" && break
	sleep 0.1
	i=$((i + 1))
done
check "delta CRL lists the old serial" grep -q "Serial Number: $OLD" \
    "$T/delta1.txt"
check "delta CRL reason: Superseded" sh -c \
    "grep -A5 'Serial Number: $OLD' '$T/delta1.txt' | grep -q Superseded"
expect_exit 0 "admin show old" admin show "$OLD"
expect_out "old: revoked" "status: revoked"
expect_out "old: linked to the new one" "$NEW"
expect_exit 0 "audit" admin audit
expect_out "audited cert.renewed" "cert.renewed"

# ---- the answer lost: the same renewal again gets the same certificate
expect_exit 0 "renew again (same certificate and key)" $MICA renew \
    --cert "$T/ann.crt" --key "$T/ann.key" --out "$T/ann.again.crt"
check "the same certificate, nothing signed again" cmp "$T/ann.new.crt" \
    "$T/ann.again.crt"
expect_eq "ann: still 2 certificates" \
    "$(admin list --account ann | grep -c ' ann$')" 2
# ... but another key does not get it: the old one is revoked
expect_exit 1 "renew a revoked certificate for another key" $MICA renew \
    --cert "$T/ann.crt" --key "$T/ann.key" --out "$T/ann.x.crt" \
    --new-key "$T/ann.x.key"
expect_out "revoked: message" \
    "mica: certificate $OLD is revoked: a revoked certificate cannot be renewed"
check "nothing written" test ! -e "$T/ann.x.crt"
check "the key mica made is removed" test ! -e "$T/ann.x.key"
# a certificate an administrator revoked
cert hal 5 || not_ok "hal's certificate"
admin revoke "$(serial_of "$T/hal.crt")" >/dev/null || not_ok "revoke hal"
expect_exit 1 "renew a certificate an administrator revoked" $MICA renew \
    --cert "$T/hal.crt" --key "$T/hal.key" --out "$T/hal.new.crt"
expect_out "revoked by an administrator: message" \
    "mica: certificate $(serial_of "$T/hal.crt") is revoked: a revoked certificate cannot be renewed"

# ---- --new-key and --p12 ----
cert bea 5 || not_ok "bea's certificate"
printf 'p12-secret\n' >"$T/p12pw"
expect_exit 0 "mica renew --new-key --p12" $MICA renew --cert "$T/bea.crt" \
    --key "$T/bea.key" --out "$T/bea.new.crt" --new-key "$T/bea.new.key" \
    --p12 "$T/bea.p12" --p12-password-file "$T/p12pw"
check "the new key was made" test -s "$T/bea.new.key"
check "certificate is for the new key" test \
    "$(openssl x509 -in "$T/bea.new.crt" -noout -pubkey)" = \
    "$(openssl pkey -in "$T/bea.new.key" -pubout)"
check "the PKCS#12 opens" openssl pkcs12 -in "$T/bea.p12" -noout \
    -passin "file:$T/p12pw"

# ---- a key that is not the certificate's ----
cert cy 5 || not_ok "cy's certificate"
make_csr "$T/other.key" "$T/other.csr" "/CN=other"
expect_exit 1 "renew with a key that is not the certificate's" $MICA renew \
    --cert "$T/cy.crt" --key "$T/other.key" --out "$T/cy.x.crt"
expect_out "wrong key: message" \
    "mica: $T/other.key is not the key of $T/cy.crt"

# ---- outside the window: exit 4; an administrator allows it ----
cert dan 365 || not_ok "dan's certificate"
DS=$(serial_of "$T/dan.crt")
expect_exit 4 "renew 365 days before expiry" $MICA renew \
    --cert "$T/dan.crt" --key "$T/dan.key" --out "$T/dan.new.crt"
printf '%s\n' "$OUT" | grep -q "^mica: certificate $DS expires on [0-9-]* [0-9:]* UTC: renewal opens 30 days before, on [0-9-]* [0-9:]* UTC (an administrator can allow it earlier: mica-admin allow-renew $DS)\$" &&
    ok "outside the window: exact message" ||
    { not_ok "outside the window: exact message"; echo "$OUT" | sed 's/^/# /'; }
expect_out "not due: says nothing changed" "mica: not due yet: nothing changed"
expect_eq "dan's certificate still good" "$(ocsp_status "$T/dan.crt")" good
expect_exit 0 "mica-admin allow-renew" admin allow-renew "$DS"
expect_out "allow-renew: message" "certificate $DS may renew (mica renew) until "
expect_exit 0 "renew after allow-renew" $MICA renew --cert "$T/dan.crt" \
    --key "$T/dan.key" --out "$T/dan.new.crt" --new-key "$T/dan.new.key"
expect_eq "dan's old certificate revoked" "$(ocsp_status "$T/dan.crt")" \
    revoked
expect_exit 1 "allow-renew of a revoked certificate" admin allow-renew "$DS"
expect_out "allow-renew revoked: message" \
    "certificate $DS is revoked: only a good certificate can renew"

# ---- another CA's certificate ----
"$BIN/mica-admin" init "$T/other" --ca-listen 127.0.0.1:1 \
    --http-listen 127.0.0.1:2 >/dev/null 2>&1 || not_ok "other CA"
openssl req -new -key "$T/cy.key" -subj "/CN=cy/O=Org" -out "$T/cy2.csr"
openssl x509 -req -in "$T/cy2.csr" -CA "$T/other/ca.crt" \
    -CAkey "$T/other/private/ca.key" -set_serial 0x1234 -days 5 \
    -out "$T/foreign.crt" 2>/dev/null || not_ok "foreign certificate"
expect_exit 1 "renew another CA's certificate" $MICA renew \
    --cert "$T/foreign.crt" --key "$T/cy.key" --out "$T/f.new.crt"
expect_out "another CA: message" \
    "mica: the certificate was not issued by this CA (RFC 5280 section 6.1: its issuer or signature does not match the CA certificate)"

# ---- renew_revoke_old = no: left to expire ----
stop_micad
conf_set "$CONF" renew_revoke_old no
start_micad || { not_ok "micad restarts"; done_testing; }
expect_exit 0 "renew, old left to expire" $MICA renew --cert "$T/cy.crt" \
    --key "$T/cy.key" --out "$T/cy.new.crt" --new-key "$T/cy.new.key"
CS=$(serial_of "$T/cy.crt")
expect_eq "cy's old certificate still good" "$(ocsp_status "$T/cy.crt")" good
expect_exit 0 "audit" admin audit
expect_out "audit names old and new" \
    "new=$(serial_of "$T/cy.new.crt") old=left to expire"
expect_exit 1 "a certificate left to expire does not renew twice" $MICA \
    renew --cert "$T/cy.crt" --key "$T/cy.key" --out "$T/cy.x.crt"
expect_out "renewed twice: message" \
    "mica: certificate $CS was already renewed (it is left to expire)"

# ---- renew = manual: only with an administrator's permission ----
stop_micad
conf_set "$CONF" renew manual
start_micad || { not_ok "micad restarts (manual)"; done_testing; }
cert eve 5 || not_ok "eve's certificate"
ES=$(serial_of "$T/eve.crt")
expect_exit 1 "renew = manual, not allowed" $MICA renew --cert "$T/eve.crt" \
    --key "$T/eve.key" --out "$T/eve.new.crt"
expect_out "manual: message" \
    "mica: renewal needs an administrator on this CA ([policy] renew = manual): ask the CA operator to run: mica-admin allow-renew $ES"
admin allow-renew "$ES" >/dev/null || not_ok "allow eve"
expect_exit 0 "renew = manual, allowed" $MICA renew --cert "$T/eve.crt" \
    --key "$T/eve.key" --out "$T/eve.new.crt" --new-key "$T/eve.new.key"

# ---- renew = off ----
stop_micad
conf_set "$CONF" renew off
start_micad || { not_ok "micad restarts (off)"; done_testing; }
cert fay 5 || not_ok "fay's certificate"
expect_exit 1 "renew = off" $MICA renew --cert "$T/fay.crt" \
    --key "$T/fay.key" --out "$T/fay.new.crt" --new-key "$T/fay.new.key"
expect_out "off: message" \
    "mica: renewal is turned off on this CA ([policy] renew = off): ask the CA operator for a new certificate"
check "off: the new key mica made is removed" test ! -e "$T/fay.new.key"

# ---- expired: micad's clock 2 days ahead, a 1-day certificate ----
stop_micad
conf_set "$CONF" renew auto
FT_LIB=$(dpkg -L libfaketime 2>/dev/null | grep '/libfaketimeMT\.so\.1$' |
    head -n 1)
start_micad || { not_ok "micad restarts"; done_testing; }
cert gus 1 || not_ok "gus's certificate"
GS=$(serial_of "$T/gus.crt")
if [ -n "$FT_LIB" ] && [ -r "$FT_LIB" ]; then
	stop_micad
	export LD_PRELOAD="$FT_LIB" FAKETIME="+2d" \
	    FAKETIME_DONT_FAKE_MONOTONIC=1 \
	    ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
	start_micad
	rc=$?
	unset LD_PRELOAD FAKETIME FAKETIME_DONT_FAKE_MONOTONIC
	[ $rc -eq 0 ] || { not_ok "micad starts 2 days ahead"; done_testing; }
	expect_exit 1 "renew an expired certificate" $MICA renew \
	    --cert "$T/gus.crt" --key "$T/gus.key" --out "$T/gus.new.crt"
	printf '%s\n' "$OUT" | grep -q "^mica: certificate $GS expired on [0-9-]* [0-9:]* UTC: an expired certificate cannot be renewed; ask the CA for a new one\$" &&
	    ok "expired: exact message" ||
	    { not_ok "expired: exact message"; echo "$OUT" | sed 's/^/# /'; }
	stop_micad
	start_micad || { not_ok "micad restarts at real time"; done_testing; }
else
	echo "ok - # SKIP expired: libfaketime is not installed"
fi

expect_exit 0 "mica-admin check passes" admin check
stop_micad
expect_eq "micad stops cleanly" "$?" 0
done_testing
