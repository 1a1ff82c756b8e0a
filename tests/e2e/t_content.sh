#!/bin/sh
# t_content.sh - what goes into a certificate and which keys and serials
# mica refuses, end to end with real micad, mica, mica-admin, openssl,
# Python cryptography and libfaketime:
#   - http_url: https:// refused by init and by micad -n (RFC 5280
#     4.2.1.13);
#   - init --days 30: the OCSP and TLS certificates, and a leaf asking
#     for 365 days, end with the CA;
#   - a CSR with explicit EC parameters is refused (RFC 5480 2.1.1);
#   - the subject is the account's, as DER made by mica, not the CSR's;
#   - revoke/hold of the CA, OCSP and TLS serials refused;
#   - a CSR with the CA's, OCSP signer's or TLS server's key refused;
#   - revoke --reason keyCompromise raises a reason (OCSP shows it, first
#     revocation time kept); other changes refused; the key is then
#     refused by issue and by a reissue; a reissue's lost key too;
#   - approval after the lost certificate expired is refused (faketime);
#   - a P-384 CA: certificate, CRL and OCSP answer in ecdsa-with-SHA384.
. "$(dirname "$0")/lib.sh"

PY=/usr/bin/python3
PW=$T/pw
echo 'correct-horse-battery' >"$PW"

# ---- http_url: http:// only ----
HTTPS_WHY="https:// is refused: RFC 5280 4.2.1.13: CRL and OCSP URLs must be http:// (checking revocation over HTTPS needs a revocation check of the HTTPS server first)"
expect_exit 2 "init refuses an https:// base URL" "$BIN/mica-admin" init \
    "$T/https" --http-url https://ca.example:7780
expect_out "init names the rule" \
    "mica-admin: init: --http-url https://ca.example:7780: $HTTPS_WHY"
check "nothing was created" test ! -e "$T/https/ca.crt"
expect_exit 2 "init refuses an ftp:// base URL" "$BIN/mica-admin" init \
    "$T/ftp" --http-url ftp://ca.example
expect_out "init: http:// only" "mica-admin: init: --http-url ftp://ca.example: must be an http:// URL with a host (RFC 5280 4.2.1.13)"

# ---- a CA of 30 days: what init makes ends with it ----
mica_init "$T/ca" --days 30 || { not_ok "mica-admin init --days 30"; done_testing; }
CA=$T/ca/ca.crt
enddate() { openssl x509 -in "$1" -noout -enddate; }
expect_eq "OCSP signer ends with the CA" "$(enddate "$T/ca/ocsp.crt")" \
    "$(enddate "$CA")"
expect_eq "TLS certificate ends with the CA" "$(enddate "$T/ca/tls.crt")" \
    "$(enddate "$CA")"
CA_END=$(date -u -d "$(enddate "$CA" | cut -d= -f2)" +%s)
NOW=$(date -u +%s)
expect_eq "the CA lives 30 days" "$(( (CA_END - NOW + 3600) / 86400 ))" 30

cp "$CONF" "$T/https.conf"
sed -i "s|^http_url *=.*|http_url = https://127.0.0.1:$HTTP_PORT|" \
    "$T/https.conf"
expect_exit 1 "micad -n refuses https:// in the config" "$BIN/micad" -n \
    -c "$T/https.conf"
expect_out "micad -n names key and rule" "[ca] http_url: $HTTPS_WHY"

start_micad || { not_ok "micad starts"; done_testing; }
MICA="$BIN/mica --server 127.0.0.1:$CA_PORT --ca $CA"

# enroll NAME SUBJECT: account NAME allowed SUBJECT, TOTP secret saved.
enroll() {
	admin account add "$1" --subject "$2" --password-file "$PW" \
	    >"$T/$1.add" 2>&1 || return 1
	sed -n 's/^totp secret[^:]*: //p' "$T/$1.add" >"$T/$1.secret"
}
otp() { oathtool --totp -b "$(cat "$T/$1.secret")"; }

# ---- subject: the account's, DER made by mica ----
enroll alice "/CN=alice/O=Example Corp" || not_ok "enroll alice"
make_csr "$T/alice.key" "$T/alice.csr" "/CN=ALICE/O=example    CORP"
check "issue for a case/space-different CSR subject" admin issue \
    --account alice --csr "$T/alice.csr" --days 365 --out "$T/alice.crt"
expect_eq "leaf asking for 365 days ends with the CA" \
    "$(enddate "$T/alice.crt")" "$(enddate "$CA")"
expect_eq "subject is the account's" \
    "$(openssl x509 -in "$T/alice.crt" -noout -subject -nameopt RFC2253)" \
    "subject=O=Example Corp,CN=alice"
# the subject DER: exactly Name(CN=alice, O=Example Corp) as UTF8Strings
expect_eq "subject DER equals the account subject's encoding" "$($PY -c '
import sys
from cryptography import x509
from cryptography.x509.oid import NameOID
c = x509.load_pem_x509_certificate(open(sys.argv[1], "rb").read())
want = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "alice"),
    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example Corp")])
print("same" if c.subject.public_bytes() == want.public_bytes() else
    c.subject.public_bytes().hex())' "$T/alice.crt")" same
check "openssl verify the leaf" openssl verify -CAfile "$CA" "$T/alice.crt"

# ---- explicit EC parameters refused (RFC 5480 2.1.1) ----
openssl ecparam -name prime256v1 -param_enc explicit -genkey \
    -out "$T/explicit.key" 2>/dev/null
openssl req -new -key "$T/explicit.key" -subj "/CN=alice/O=Example Corp" \
    -out "$T/explicit.csr" 2>/dev/null
expect_exit 1 "CSR with explicit EC parameters refused" admin issue \
    --account alice --csr "$T/explicit.csr" --out "$T/explicit.crt"
expect_out "explicit parameters: exact error" "mica-admin: issue: CSR: key: RFC 5480 section 2.1.1: EC parameters must be a named curve, not explicit parameters"

# ---- mica's own certificates: not revoked or held, keys not certified ----
OWN_WHY="is one of mica's own certificates (CA, OCSP signer or TLS server): they are not revoked or held with the subscriber commands, they have their own renewal"
for c in ca ocsp tls; do
	S=$(serial_of "$T/ca/$c.crt")
	expect_exit 1 "revoke of the $c certificate refused" admin revoke "$S" \
	    --reason keyCompromise
	expect_out "revoke $c: exact error" \
	    "mica-admin: revoke: certificate $S $OWN_WHY"
	expect_exit 1 "hold of the $c certificate refused" admin hold "$S"
	expect_out "hold $c: exact error" \
	    "mica-admin: hold: certificate $S $OWN_WHY"
done
expect_exit 0 "show: the CA certificate is still good" admin show \
    "$(serial_of "$CA")"
expect_out "CA good" "status: good"
for c in ca:"the CA's own key" ocsp:"the OCSP signer's key" \
    tls:"the TLS server certificate's key"; do
	f=${c%%:*}
	openssl req -new -key "$T/ca/private/$f.key" \
	    -subj "/CN=alice/O=Example Corp" -out "$T/own-$f.csr" 2>/dev/null
	expect_exit 1 "CSR with the $f key refused" admin issue \
	    --account alice --csr "$T/own-$f.csr" --out "$T/own-$f.crt"
	expect_out "$f key: exact error" "mica-admin: issue: CSR: key: the public key is ${c#*:}; a subscriber certificate needs a key of its own"
done

# ---- raising a revocation reason to keyCompromise ----
ocsp_of() {
	openssl ocsp -issuer "$CA" -cert "$1" -url "$URL/ocsp" -CAfile "$CA" \
	    -resp_text 2>&1
}
check "second alice certificate" admin issue --account alice \
    --csr "$T/alice.csr" --out "$T/alice2.crt"
S2=$(serial_of "$T/alice2.crt")
check "revoke superseded" admin revoke "$S2" --reason superseded
OUT=$(ocsp_of "$T/alice2.crt")
expect_out "OCSP: superseded" "Reason: superseded"
T1=$(printf '%s\n' "$OUT" | sed -n 's/^ *Revocation Time: //p' | head -n 1)
check "a revocation time" test -n "$T1"
expect_exit 1 "another reason on a revoked certificate refused" admin \
    revoke "$S2" --reason cessationOfOperation
expect_out "other reason: exact error" "mica-admin: revoke: certificate $S2 is already revoked (reason superseded); a revocation reason can only be raised to keyCompromise"
expect_exit 1 "an invalidity date in the future refused" admin revoke \
    "$S2" --reason keyCompromise --invalidity-date 29991231000000Z
expect_out "future invalidity: exact error" "mica-admin: revoke: --invalidity-date \"29991231000000Z\": RFC 5280 5.3.2: a GeneralizedTime like 20260101120000Z, not in the future"
expect_exit 0 "revoke --reason keyCompromise raises the reason" admin \
    revoke "$S2" --reason keyCompromise --invalidity-date 20260101120000Z
expect_out "raise: message" "$S2 revoked (keyCompromise): reason raised from superseded, revocation time kept"
OUT=$(ocsp_of "$T/alice2.crt")
expect_out "OCSP at once: keyCompromise" "Reason: keyCompromise"
expect_out "OCSP answer verifies" "Response verify OK"
expect_eq "OCSP: the first revocation time is kept" \
    "$(printf '%s\n' "$OUT" | sed -n 's/^ *Revocation Time: //p' | head -n 1)" "$T1"
expect_exit 0 "show after the raise" admin show "$S2" --json
expect_out "show: keyCompromise" '"reason":"keyCompromise"'
expect_exit 0 "audit lists the raise" admin audit
expect_out "audited as cert.reason_raised" "cert.reason_raised"
expect_exit 1 "raising twice refused" admin revoke "$S2" \
    --reason keyCompromise
expect_out "twice: exact error" \
    "mica-admin: revoke: certificate $S2 is already revoked for keyCompromise"

# the compromised key is never certified again
expect_exit 1 "issue with the compromised key refused" admin issue \
    --account alice --csr "$T/alice.csr" --out "$T/alice3.crt"
expect_out "compromised key: exact error" "mica-admin: issue: CSR: key: the public key was revoked for keyCompromise (certificate $S2) and is never certified again; make a new key"
enroll bob "/CN=bob/O=Example Corp" || not_ok "enroll bob"
make_csr "$T/bob.key" "$T/bob.csr" "/CN=bob/O=Example Corp"
check "issue bob" admin issue --account bob --csr "$T/bob.csr" \
    --out "$T/bob.crt"
expect_exit 1 "reissue with the compromised key refused" $MICA reissue \
    --account bob --lost-cert "$T/bob.crt" --key "$T/alice.key" \
    --out "$T/bob.new.crt" --password-file "$PW" --otp "$(otp bob)"
expect_out "reissue: exact error" "CSR: key: the public key was revoked for keyCompromise (certificate $S2) and is never certified again; make a new key"

# a reissue's lost key is refused afterwards
enroll carol "/CN=carol/O=Example Corp" || not_ok "enroll carol"
make_csr "$T/carol.key" "$T/carol.csr" "/CN=carol/O=Example Corp"
check "issue carol" admin issue --account carol --csr "$T/carol.csr" \
    --out "$T/carol.crt"
CL=$(serial_of "$T/carol.crt")
expect_exit 4 "carol asks for a reissue" $MICA reissue --account carol \
    --lost-cert "$T/carol.crt" --key "$T/carol.new.key" \
    --out "$T/carol.new.crt" --password-file "$PW" --otp "$(otp carol)" \
    --reason damaged --no-wait
CID=$(sed -n 's/^request: //p' "$T/carol.new.crt.request")
check "approve carol's request" admin approve "$CID"
expect_exit 1 "issue with the lost (damaged) key refused" admin issue \
    --account carol --csr "$T/carol.csr" --out "$T/carol2.crt"
expect_out "lost key: exact error" "mica-admin: issue: CSR: key: the public key is the key of lost certificate $CL and is never certified again; make a new key"
expect_exit 0 "check: index agrees" admin check
expect_out "check counts two refused keys" "compromised-key index: 2 keys"


# a replacement carries the lost certificate's subject DER, not its CSR's
enroll frank "/CN=frank/O=Example Corp" || not_ok "enroll frank"
make_csr "$T/frank.key" "$T/frank.csr" "/CN=frank/O=Example Corp"
check "issue frank" admin issue --account frank --csr "$T/frank.csr" \
    --out "$T/frank.crt"
expect_exit 4 "frank asks with a case-changed subject" $MICA reissue \
    --account frank --serial "$(serial_of "$T/frank.crt")" \
    --subject "/CN=FRANK/O=example   corp" --key "$T/frank.new.key" \
    --out "$T/frank.new.crt" --password-file "$PW" --otp "$(otp frank)" \
    --no-wait
FID=$(sed -n 's/^request: //p' "$T/frank.new.crt.request")
check "approve frank's request" admin approve "$FID"
check "fetch frank's replacement" $MICA fetch \
    --request-file "$T/frank.new.crt.request" --out "$T/frank.new.crt"
expect_eq "replacement subject DER = the lost certificate's" "$($PY -c '
import sys
from cryptography import x509
a, b = (x509.load_pem_x509_certificate(open(f, "rb").read())
    for f in sys.argv[1:3])
print("same" if a.subject.public_bytes() == b.subject.public_bytes() else
    b.subject.rfc4514_string())' "$T/frank.crt" "$T/frank.new.crt")" same

# ---- approval after the lost certificate expired ----
enroll dave "/CN=dave/O=Example Corp" || not_ok "enroll dave"
make_csr "$T/dave.key" "$T/dave.csr" "/CN=dave/O=Example Corp"
check "issue dave for one day" admin issue --account dave --days 1 \
    --csr "$T/dave.csr" --out "$T/dave.crt"
DL=$(serial_of "$T/dave.crt")
expect_exit 4 "dave asks for a reissue" $MICA reissue --account dave \
    --lost-cert "$T/dave.crt" --key "$T/dave.new.key" \
    --out "$T/dave.new.crt" --password-file "$PW" --otp "$(otp dave)" \
    --no-wait
DID=$(sed -n 's/^request: //p' "$T/dave.new.crt.request")
stop_micad || not_ok "micad stops"
# two days later: libfaketime preloaded into micad itself (not the
# faketime wrapper, which would not pass SIGTERM on)
FT=$(ls /usr/lib/*/faketime/libfaketimeMT.so.1 2>/dev/null | head -n 1)
check "libfaketime is installed" test -n "$FT"
ASAN_OPTIONS=${ASAN_OPTIONS:-}${ASAN_OPTIONS:+:}verify_asan_link_order=0 \
    LD_PRELOAD=$FT FAKETIME=+2d "$BIN/micad" -c "$CONF" \
    >>"$T/micad.log" 2>&1 &
MICAD_PID=$!
i=0
while [ $i -lt 100 ] && ! admin status >/dev/null 2>&1; do
	sleep 0.1; i=$((i + 1))
done
DEND=$(date -u -d "$(enddate "$T/dave.crt" | cut -d= -f2)" '+%Y-%m-%d %H:%M:%S UTC')
expect_exit 1 "approval after the lost certificate expired refused" admin \
    approve "$DID"
expect_out "expired: exact error" "mica-admin: approve $DID: lost certificate $DL expired on $DEND, after the request was made: an expired certificate is not reissued; reject the request"
expect_exit 0 "the request is still pending" admin requests --pending
expect_out "pending request listed" "$DID"
stop_micad || not_ok "micad (faketime) stops"

# ---- a P-384 CA: SHA-384 everywhere ----
mica_init "$T/p384" --key-type ec-p384 ||
    { not_ok "init --key-type ec-p384"; done_testing; }
CA=$T/p384/ca.crt
start_micad || { not_ok "micad (P-384) starts"; done_testing; }
enroll erin "/CN=erin/O=Example Corp" || not_ok "enroll erin"
make_csr "$T/erin.key" "$T/erin.csr" "/CN=erin/O=Example Corp"
check "issue erin (P-384 CA)" admin issue --account erin \
    --csr "$T/erin.csr" --out "$T/erin.crt"
expect_exit 0 "x509 -text" openssl x509 -in "$T/erin.crt" -noout -text
expect_out "certificate: ecdsa-with-SHA384" \
    "Signature Algorithm: ecdsa-with-SHA384"
expect_exit 0 "openssl verify (P-384 CA)" openssl verify -CAfile "$CA" \
    "$T/erin.crt"
expect_out "verify OK" "$T/erin.crt: OK"
for c in ca ocsp tls; do
	expect_exit 0 "$c certificate text" openssl x509 -in "$T/p384/$c.crt" \
	    -noout -text
	expect_out "$c certificate: ecdsa-with-SHA384" \
	    "Signature Algorithm: ecdsa-with-SHA384"
done
check "revoke erin" admin revoke "$(serial_of "$T/erin.crt")" \
    --reason keyCompromise
check "full CRL" admin crl
check "fetch the CRL" curl -sf -o "$T/p384.crl" "$URL/crl"
expect_exit 0 "crl -text" openssl crl -inform DER -in "$T/p384.crl" -noout \
    -text
expect_out "CRL: ecdsa-with-SHA384" "Signature Algorithm: ecdsa-with-SHA384"
openssl crl -inform DER -in "$T/p384.crl" -out "$T/p384.crl.pem"
expect_exit 2 "verify with the CRL: revoked" openssl verify -crl_check \
    -CAfile "$CA" -CRLfile "$T/p384.crl.pem" "$T/erin.crt"
expect_out "CRL signature verified, certificate revoked" \
    "certificate revoked"
expect_exit 0 "openssl ocsp (P-384)" openssl ocsp -issuer "$CA" \
    -cert "$T/erin.crt" -url "$URL/ocsp" -CAfile "$CA" -resp_text
expect_out "OCSP answer: ecdsa-with-SHA384" \
    "Signature Algorithm: ecdsa-with-SHA384"
expect_out "OCSP answer verifies" "Response verify OK"
expect_out "OCSP: revoked" "$T/erin.crt: revoked"
stop_micad || not_ok "micad (P-384) stops"

done_testing
