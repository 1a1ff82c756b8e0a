#!/bin/sh
# t_offroot.sh - an issuing CA under an offline root, and taking over an
# existing CA.  The root is made with openssl req -x509 and signs mica's
# CSR with openssl x509 -req; mica-admin init --ca-cert --chain finishes
# the CA (each refusal case of the certificate checked first); micad
# serves /ca.crt and /chain.pem, hands the chain to the real mica client
# (which pins the root) and relying parties verify leaves, OCSP answers
# and CRLs up to the root with openssl.  Then an openssl-made CA (its own
# key) is taken over with --import-key and does the same.
. "$(dirname "$0")/lib.sh"

R=$T/root
D=$T/ca
mkdir -p "$R"
PW=$T/pw
echo 'correct-horse-battery' >"$PW"
unset MICA_SERVER MICA_CA

# ---- the offline root and its extension files ----
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-384 -nodes \
    -keyout "$R/root.key" -out "$R/root.crt" -days 7300 \
    -subj "/O=Org/CN=Org Offline Root" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null ||
    not_ok "openssl makes the root"
cat >"$R/v3_ca.ext" <<'EOF'
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
EOF
cat >"$R/v3_leaf.ext" <<'EOF'
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
EOF
cat >"$R/v3_nocrl.ext" <<'EOF'
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign
EOF
# sign CSR OUT EXTFILE [CA-cert CA-key]: what the root's operator runs
sign() {
	openssl x509 -req -in "$1" -out "$2" -extfile "$3" -days 1825 \
	    -CA "${4:-$R/root.crt}" -CAkey "${5:-$R/root.key}" 2>/dev/null
}
# der CERT: the certificate's DER, for comparisons
der() { openssl x509 -in "$1" -outform DER; }

CA_PORT=$(free_port)
HTTP_PORT=$(free_port)
URL=http://127.0.0.1:$HTTP_PORT
init() { "$BIN/mica-admin" init "$@"; }
# cheap argon2id (tests only), automatic review
tune() {
	conf_set "$1" argon2_opslimit 1 && conf_set "$1" argon2_memlimit 8192 &&
	    conf_set "$1" review auto
}

# ---- a plain root: --subject and --days ----
expect_exit 0 "init --subject --days (self-signed root)" init "$T/plain" \
    --subject "/C=DE/O=Plain Org/OU=PKI/CN=Plain Root" --days 400
expect_eq "the root carries the full subject" \
    "$(openssl x509 -in "$T/plain/ca.crt" -noout -subject)" \
    "subject=C = DE, O = Plain Org, OU = PKI, CN = Plain Root"
check "the root is valid for 399 more days" openssl x509 -noout \
    -in "$T/plain/ca.crt" -checkend $((399 * 86400))
expect_exit 1 "but not for 401" openssl x509 -noout \
    -in "$T/plain/ca.crt" -checkend $((401 * 86400))
expect_eq "the OCSP signer is named after the CN" \
    "$(openssl x509 -in "$T/plain/ocsp.crt" -noout -subject)" \
    "subject=CN = Plain Root OCSP responder"
expect_eq "a plain root has no chain key" \
    "$(grep -c '^chain' "$T/plain/mica.conf")" 0
expect_exit 1 "a bad --subject refused" init "$T/bad" --subject "/CN"
expect_out "says what is wrong" 'mica-admin: init: subject: expected TYPE=VALUE near "CN"'
expect_exit 1 "an empty --subject refused" init "$T/bad" --subject ""
expect_out "says why" "mica-admin: init: subject: empty"
check "nothing made for a bad subject" test ! -e "$T/bad/private/ca.key"

# ---- init --csr ----
echo 'offline-root-passphrase' >"$T/pass"
chmod 600 "$T/pass"
expect_exit 2 "--csr with --days: the root sets the validity" init "$D" \
    --csr --days 100
expect_out "--days refusal says why" "the CA's validity is set by whoever signs its certificate"
expect_exit 2 "--cn and --subject together refused" init "$D" --csr \
    --cn x --subject "/CN=y"
expect_exit 0 "init --csr" init "$D" --csr \
    --subject "/C=DE/O=Org/OU=PKI/CN=Org Issuing CA" \
    --key-passphrase-file "$T/pass"
check "the CA key is encrypted" grep -q "BEGIN ENCRYPTED PRIVATE KEY" \
    "$D/private/ca.key"
expect_out "says what to do next" "mica-admin init $D --ca-cert ISSUING.crt --chain ROOT.crt"
expect_eq "private/ca.key is 0600" "$(stat -c %a "$D/private/ca.key")" 600
expect_eq "only the key and the CSR so far" "$(cd "$D" && ls)" "ca.csr
private"
check "the CSR's signature verifies" openssl req -in "$D/ca.csr" -noout -verify
expect_eq "the CSR carries the full subject" \
    "$(openssl req -in "$D/ca.csr" -noout -subject)" \
    "subject=C = DE, O = Org, OU = PKI, CN = Org Issuing CA"
REQTXT=$(openssl req -in "$D/ca.csr" -noout -text)
case $REQTXT in
*"CA:TRUE"*"Certificate Sign, CRL Sign"*) ok "the CSR asks for a CA with keyCertSign, cRLSign" ;;
*) not_ok "the CSR asks for a CA with keyCertSign, cRLSign" ;;
esac
expect_exit 1 "a second --csr refused" init "$D" --csr
expect_out "names the existing key" "$D/private/ca.key exists"
expect_exit 1 "--ca-cert before --csr: no key" init "$T/none" \
    --ca-cert "$R/root.crt" --chain "$R/root.crt"
expect_out "says to run --csr first" "no CA key: run mica-admin init $T/none --csr first"

# ---- each refusal of --ca-cert ----
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$T/other.key" -out "$T/other.csr" -subj "/CN=Other CA" 2>/dev/null
sign "$T/other.csr" "$T/other.crt" "$R/v3_ca.ext" || not_ok "sign other"
expect_exit 1 "finishing without the passphrase refused" init "$D" \
    --ca-cert "$T/other.crt" --chain "$R/root.crt"
expect_out "says the key is encrypted" "encrypted? no passphrase given"
PF="--key-passphrase-file $T/pass"
expect_exit 1 "a certificate for another key refused" init "$D" $PF \
    --ca-cert "$T/other.crt" --chain "$R/root.crt"
expect_out "key mismatch: exact error" "mica-admin: init: $T/other.crt: its public key is not that of the CA key $D/private/ca.key (was it issued for another CSR than ca.csr?)"
sign "$D/ca.csr" "$T/leaf.crt" "$R/v3_leaf.ext" || not_ok "sign as leaf"
expect_exit 1 "a certificate that is not a CA refused" init "$D" $PF \
    --ca-cert "$T/leaf.crt" --chain "$R/root.crt"
expect_out "not a CA: exact error" "mica-admin: init: $T/leaf.crt: not a CA certificate: no basicConstraints with cA TRUE (RFC 5280 4.2.1.9)"
sign "$D/ca.csr" "$T/nocrl.crt" "$R/v3_nocrl.ext" || not_ok "sign without cRLSign"
expect_exit 1 "a CA certificate without cRLSign refused" init "$D" $PF \
    --ca-cert "$T/nocrl.crt" --chain "$R/root.crt"
expect_out "no cRLSign: exact error" "mica-admin: init: $T/nocrl.crt: keyUsage lacks cRLSign: the CA could not sign its CRLs (RFC 5280 4.2.1.3)"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$T/evil.key" -out "$T/evil.crt" -days 365 \
    -subj "/O=Org/CN=Org Offline Root" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
sign "$D/ca.csr" "$T/evil-issued.crt" "$R/v3_ca.ext" "$T/evil.crt" \
    "$T/evil.key" || not_ok "sign with another root"
expect_exit 1 "a CA certificate of another root refused" init "$D" $PF \
    --ca-cert "$T/evil-issued.crt" --chain "$R/root.crt"
expect_out "not chaining: exact error" "mica-admin: init: $T/evil-issued.crt does not chain to a root in $R/root.crt: unable to get local issuer certificate (at CN=Org Issuing CA,OU=PKI,O=Org,C=DE)"
sign "$D/ca.csr" "$T/issuing.crt" "$R/v3_ca.ext" || not_ok "the root signs ca.csr"
expect_exit 1 "a chain without the root refused" init "$D" $PF \
    --ca-cert "$T/issuing.crt" --chain "$T/issuing.crt"
expect_out "no root: says so" "no self-signed (root) certificate among the issuers"
expect_exit 1 "no --chain for a CA that is not a root" init "$D" $PF \
    --ca-cert "$T/issuing.crt"
expect_out "asks for --chain" "$T/issuing.crt is not self-signed: name its issuers up to the root with --chain"
expect_eq "the refusals left only the key and the CSR" "$(cd "$D" && ls)" \
    "ca.csr
private"

# ---- the CA finished ----
expect_exit 0 "init --ca-cert --chain" init "$D" $PF \
    --ca-cert "$T/issuing.crt" \
    --chain "$R/root.crt" --ca-listen "127.0.0.1:$CA_PORT" \
    --http-listen "127.0.0.1:$HTTP_PORT"
expect_out "reports the chain" "chain: $D/chain.pem (2 certificates"
CONF=$D/mica.conf
export MICA_CONF=$CONF
tune "$CONF" || not_ok "tune mica.conf"
der "$T/issuing.crt" >"$T/issuing.der"
der "$R/root.crt" >"$T/root.der"
check "ca.crt is the issuing CA" sh -c "openssl x509 -in '$D/ca.crt' \
    -outform DER | cmp - '$T/issuing.der'"
openssl crl2pkcs7 -nocrl -certfile "$D/chain.pem" |
    openssl pkcs7 -print_certs -noout >"$T/chain.txt" 2>&1
expect_eq "chain.pem: the issuing CA, then the root" \
    "$(grep '^subject=' "$T/chain.txt")" \
    "subject=C = DE, O = Org, OU = PKI, CN = Org Issuing CA
subject=O = Org, CN = Org Offline Root"
check "the OCSP signer verifies up to the root" openssl verify \
    -CAfile "$R/root.crt" -untrusted "$D/chain.pem" "$D/ocsp.crt"
start_micad || { not_ok "micad starts"; done_testing; }
ok "micad starts with the chain"

check "/ca.crt is the issuing CA (DER)" sh -c "curl -sf '$URL/ca.crt' |
    cmp - '$T/issuing.der'"
check "/chain.pem is chain.pem" sh -c "curl -sf '$URL/chain.pem' |
    cmp - '$D/chain.pem'"
expect_exit 0 "CA protocol TLS: the chain verifies to the root" \
    openssl s_client -connect "127.0.0.1:$CA_PORT" -CAfile "$R/root.crt" \
    -verify_return_error -verify_hostname localhost -showcerts </dev/null
expect_out "TLS: the issuing CA is sent after the server certificate" \
    "1 s:C = DE, O = Org, OU = PKI, CN = Org Issuing CA"
expect_out "TLS: verify return code 0" "Verify return code: 0 (ok)"

# ---- issue, then reissue with the real client pinning the root ----
admin account add alice --subject "/CN=alice/O=Org" --password-file "$PW" \
    >"$T/alice.add" 2>&1 || not_ok "account add alice"
sed -n 's/^totp secret[^:]*: //p' "$T/alice.add" >"$T/alice.secret"
make_csr "$T/alice.key" "$T/alice.csr" "/CN=alice/O=Org"
check "issue alice" admin issue --account alice --csr "$T/alice.csr" \
    --out "$T/alice.crt"
check "leaf verifies: -CAfile root -untrusted chain" openssl verify \
    -CAfile "$R/root.crt" -untrusted "$D/chain.pem" "$T/alice.crt"
expect_exit 2 "leaf does not verify with the root alone" openssl verify \
    -CAfile "$R/root.crt" "$T/alice.crt"
AIA=$(openssl x509 -in "$T/alice.crt" -noout -ext authorityInfoAccess)
case $AIA in
*"CA Issuers - URI:$URL/ca.crt"*) ok "AIA caIssuers still points at /ca.crt" ;;
*) not_ok "AIA caIssuers still points at /ca.crt: $AIA" ;;
esac
MICA="$BIN/mica --server 127.0.0.1:$CA_PORT --ca $R/root.crt"
expect_exit 0 "mica reissue with --ca root.crt" $MICA reissue \
    --account alice --lost-cert "$T/alice.crt" --key "$T/alice.new.key" \
    --out "$T/alice.new.crt" --password-file "$PW" \
    --otp "$(oathtool --totp -b "$(cat "$T/alice.secret")")"
check "NEW.crt verifies with NEW.crt.chain" openssl verify \
    -CAfile "$R/root.crt" -untrusted "$T/alice.new.crt.chain" \
    "$T/alice.new.crt"
check "NEW.crt.chain is the issuing CA and the root" sh -c "
    openssl crl2pkcs7 -nocrl -certfile '$T/alice.new.crt.chain' |
    openssl pkcs7 -print_certs -noout | grep '^subject=' >'$T/nc.txt' &&
    grep '^subject=' '$T/chain.txt' | cmp - '$T/nc.txt'"
expect_exit 0 "mica fetch gets the certificate again" $MICA fetch \
    --request-file "$T/alice.new.crt.request" --out "$T/alice.again.crt"
check "the fetched chain is the same" cmp "$T/alice.new.crt.chain" \
    "$T/alice.again.crt.chain"
expect_exit 1 "mica pinning the issuing CA alone does not verify" \
    "$BIN/mica" --server "127.0.0.1:$CA_PORT" --ca "$T/issuing.crt" \
    list --account alice --password-file "$PW" --otp 000000
expect_out "the TLS check fails, asking for the root" \
    "server certificate: unable to get issuer certificate: $T/issuing.crt is not a root certificate; give the root with --ca"

# ---- OCSP and CRLs under the issuing CA ----
# ocsp CERT ISSUER ROOT: openssl ocsp's verdict line for CERT
ocsp() {
	openssl ocsp -issuer "$2" -CAfile "$3" -cert "$1" \
	    -url "$URL/ocsp" 2>&1
}
OUT=$(ocsp "$T/alice.new.crt" "$T/issuing.crt" "$R/root.crt")
expect_out "OCSP: response verifies up to the root" "Response verify OK"
expect_out "OCSP: the new certificate is good" "$T/alice.new.crt: good"
OUT=$(ocsp "$T/alice.crt" "$T/issuing.crt" "$R/root.crt")
expect_out "OCSP: the lost certificate is revoked" "$T/alice.crt: revoked"
expect_out "OCSP (lost): response verifies" "Response verify OK"
curl -sf "$URL/crl/full.crl.pem" >"$T/full.pem" || not_ok "GET full CRL"
curl -sf "$URL/crl/delta.crl.pem" >"$T/delta.pem" || not_ok "GET delta CRL"
# crlverify CERT: openssl verify with the CRLs, $CHAIN and $ROOT
ROOT=$R/root.crt
CHAIN=$D/chain.pem
crlverify() {
	openssl verify -crl_check -extended_crl -use_deltas \
	    -CAfile "$ROOT" -untrusted "$CHAIN" \
	    -CRLfile "$T/full.pem" -CRLfile "$T/delta.pem" "$1"
}
check "CRL: the new certificate verifies" crlverify "$T/alice.new.crt"
expect_exit 2 "CRL: the lost certificate is revoked" crlverify "$T/alice.crt"
expect_out "CRL: says revoked" "certificate revoked"
check "the full CRL verifies with the issuing CA" openssl crl \
    -in "$T/full.pem" -CAfile "$T/issuing.crt" -noout -verify
check "mica-admin check agrees" admin check
stop_micad || not_ok "micad stops cleanly"

# ---- micad refuses a chain that does not fit the CA ----
cp "$D/chain.pem" "$T/chain.keep"
cat "$R/root.crt" >"$D/chain.pem"
expect_exit 1 "micad -n: a chain not starting with the CA refused" \
    "$BIN/micad" -n -c "$CONF"
expect_out "names the rule" "its first certificate is not the CA certificate"
cat "$T/issuing.crt" "$T/evil.crt" >"$D/chain.pem"
expect_exit 1 "micad -n: a chain to another root refused" \
    "$BIN/micad" -n -c "$CONF"
expect_out "names the failure" "the CA does not chain to its root"
cat "$T/chain.keep" >"$D/chain.pem"
check "micad -n with the right chain" "$BIN/micad" -n -c "$CONF"

# ---- taking over an existing, openssl-made CA ----
O=$T/old
mkdir -p "$O"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$O/old.key" -out "$O/old.crt" -days 3650 \
    -subj "/O=Old Org/CN=Old CA" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -addext "subjectKeyIdentifier=hash" 2>/dev/null ||
    not_ok "openssl makes the old CA"
# a certificate the old CA issued before mica
make_csr "$O/before.key" "$O/before.csr" "/CN=before/O=Old Org"
sign "$O/before.csr" "$O/before.crt" "$R/v3_leaf.ext" "$O/old.crt" \
    "$O/old.key" || not_ok "the old CA issues a certificate"
chmod 644 "$O/old.key"
I=$T/imported
expect_exit 1 "--import-key of a key readable by others refused" init "$I" \
    --import-key "$O/old.key" --ca-cert "$O/old.crt"
expect_out "names the mode rule" "key file is accessible by group or others"
chmod 600 "$O/old.key"
expect_exit 2 "--import-key without --ca-cert: usage" init "$I" \
    --import-key "$O/old.key"
CA_PORT=$(free_port)
HTTP_PORT=$(free_port)
URL=http://127.0.0.1:$HTTP_PORT
expect_exit 0 "init --import-key --ca-cert" init "$I" \
    --import-key "$O/old.key" --ca-cert "$O/old.crt" \
    --ca-listen "127.0.0.1:$CA_PORT" --http-listen "127.0.0.1:$HTTP_PORT"
expect_out "warns: earlier serials unknown" "warning: the certificates this CA issued before are unknown to mica"
expect_out "says what OCSP answers for them" "OCSP answers \"unknown\" for them"
expect_out "says the key was copied" "CA key: copied from $O/old.key to $I/private/ca.key (mode 0600)"
expect_eq "the copied key is 0600" "$(stat -c %a "$I/private/ca.key")" 600
check "the copied key is the old CA's key" sh -c "
    openssl pkey -in '$I/private/ca.key' -pubout >'$T/k1' &&
    openssl pkey -in '$O/old.key' -pubout | cmp - '$T/k1'"
CONF=$I/mica.conf
export MICA_CONF=$CONF
tune "$CONF" || not_ok "tune imported mica.conf"
start_micad || { not_ok "micad starts (imported CA)"; done_testing; }
ok "micad starts with the imported CA"
check "/chain.pem is the old CA" sh -c "curl -sf '$URL/chain.pem' |
    openssl x509 -outform DER >'$T/c1' && openssl x509 -in '$O/old.crt' \
    -outform DER | cmp - '$T/c1'"
admin account add bob --subject "/CN=bob/O=Old Org" --password-file "$PW" \
    >"$T/bob.add" 2>&1 || not_ok "account add bob"
sed -n 's/^totp secret[^:]*: //p' "$T/bob.add" >"$T/bob.secret"
make_csr "$T/bob.key" "$T/bob.csr" "/CN=bob/O=Old Org"
check "issue bob" admin issue --account bob --csr "$T/bob.csr" \
    --out "$T/bob.crt"
check "bob verifies with the old CA" openssl verify -CAfile "$O/old.crt" \
    "$T/bob.crt"
MICA="$BIN/mica --server 127.0.0.1:$CA_PORT --ca $O/old.crt"
expect_exit 0 "mica reissue (imported CA)" $MICA reissue --account bob \
    --lost-cert "$T/bob.crt" --key "$T/bob.new.key" \
    --out "$T/bob.new.crt" --password-file "$PW" \
    --otp "$(oathtool --totp -b "$(cat "$T/bob.secret")")"
check "bob's new certificate verifies with its chain" openssl verify \
    -CAfile "$O/old.crt" -untrusted "$T/bob.new.crt.chain" "$T/bob.new.crt"
OUT=$(ocsp "$T/bob.new.crt" "$O/old.crt" "$O/old.crt")
expect_out "OCSP (imported): verifies" "Response verify OK"
expect_out "OCSP (imported): new is good" "$T/bob.new.crt: good"
OUT=$(ocsp "$T/bob.crt" "$O/old.crt" "$O/old.crt")
expect_out "OCSP (imported): lost is revoked" "$T/bob.crt: revoked"
OUT=$(ocsp "$O/before.crt" "$O/old.crt" "$O/old.crt")
expect_out "OCSP (imported): a certificate from before mica is unknown" \
    "$O/before.crt: unknown"
curl -sf "$URL/crl/full.crl.pem" >"$T/full.pem" || not_ok "GET full CRL"
curl -sf "$URL/crl/delta.crl.pem" >"$T/delta.pem" || not_ok "GET delta CRL"
ROOT=$O/old.crt
CHAIN=$I/chain.pem
check "CRL (imported): the new certificate verifies" \
    crlverify "$T/bob.new.crt"
expect_exit 2 "CRL (imported): the lost certificate is revoked" \
    crlverify "$T/bob.crt"
expect_out "CRL (imported): says revoked" "certificate revoked"
check "mica-admin check agrees (imported)" admin check
stop_micad || not_ok "micad stops cleanly (imported)"

# ---- taking over an existing issuing CA: --chain needed ----
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$O/sub.key" -out "$O/sub.csr" -subj "/O=Org/CN=Old Sub CA" \
    2>/dev/null
chmod 600 "$O/sub.key"
sign "$O/sub.csr" "$O/sub.crt" "$R/v3_ca.ext" || not_ok "the root signs sub"
expect_exit 1 "an issuing CA imported without --chain refused" init \
    "$T/sub" --import-key "$O/sub.key" --ca-cert "$O/sub.crt"
expect_out "asks for --chain" "is not self-signed: name its issuers up to the root with --chain"
check "no key copied after the refusal" test ! -e "$T/sub/private/ca.key"
expect_exit 0 "an issuing CA imported with --chain" init "$T/sub" \
    --import-key "$O/sub.key" --ca-cert "$O/sub.crt" --chain "$R/root.crt" \
    --ca-listen "127.0.0.1:$CA_PORT" --http-listen "127.0.0.1:$HTTP_PORT"
expect_out "reports its chain" "chain: $T/sub/chain.pem (2 certificates"
check "micad -n accepts it" "$BIN/micad" -n -c "$T/sub/mica.conf"
done_testing
