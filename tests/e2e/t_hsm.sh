#!/bin/sh
# t_hsm.sh - the CA key and the OCSP signer key in a PKCS#11 token
# (SoftHSM2 with its own token directory), never in a file: mica-admin
# init --key-uri/--ocsp-key-uri makes them in the token, micad loads them
# through the OpenSSL pkcs11 engine (libp11); issue, reissue with the real
# mica client, OCSP answers verified by openssl ocsp, CRLs by openssl
# verify -crl_check -extended_crl -use_deltas, the OCSP signer renewed
# (the same token key certified again); no private key in the CA
# directory or the store; a wrong PIN is a clear error without the PIN;
# as root: started as root, the token keys sign after the privilege drop.
. "$(dirname "$0")/lib.sh"

MOD=""
for m in /usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so \
    /usr/lib/softhsm/libsofthsm2.so /usr/local/lib/softhsm/libsofthsm2.so; do
	[ -f "$m" ] && { MOD=$m; break; }
done
if [ -z "$MOD" ] || ! command -v softhsm2-util >/dev/null 2>&1; then
	ok "SKIP softhsm2 is not installed (Debian: softhsm2)"
	done_testing
fi

# A token of our own: SOFTHSM2_CONF points into the test directory.
mkdir -p "$T/tokens"
printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' \
    "$T/tokens" >"$T/softhsm2.conf"
SOFTHSM2_CONF=$T/softhsm2.conf
export SOFTHSM2_CONF
PIN=246813
check "softhsm2-util makes the token" softhsm2-util --init-token --free \
    --label mica --pin "$PIN" --so-pin 975310
printf '%s\n' "$PIN" >"$T/pin"
chmod 600 "$T/pin"
KURI="pkcs11:token=mica;object=mica-ca?pin-source=file:$T/pin"
OURI="pkcs11:token=mica;object=mica-ocsp?pin-source=file:$T/pin"
p11() { pkcs11-tool --module "$MOD" --token-label mica "$@"; }

# wait_log PATTERN: up to ~10 s for PATTERN in micad's log.
wait_log() {
	i=0
	while [ $i -lt 100 ]; do
		grep -q -- "$1" "$T/micad.log" && return 0
		sleep 0.1; i=$((i + 1))
	done
	return 1
}

# ---- init: keys made in the token, certificates in the directory ----
mica_init "$T/ca" --pkcs11-module "$MOD" --key-uri "$KURI" \
    --ocsp-key-uri "$OURI" || { not_ok "mica-admin init with token keys"; done_testing; }
ok "mica-admin init with token keys"
D=$T/ca
CA=$D/ca.crt
OUT=$(cat "$T/init.out")
expect_out "init says where the CA key lives" "ca key: token mica object mica-ca"
expect_out "init says where the OCSP key lives" \
    "ocsp signer key: token mica object mica-ocsp"
check "no private/ca.key" test ! -e "$D/private/ca.key"
check "no private/ocsp.key" test ! -e "$D/private/ocsp.key"
check "mica.conf names the CA key URI" grep -qxF "key = $KURI" "$CONF"
check "mica.conf names the OCSP key URI" grep -qxF "ocsp_key = $OURI" "$CONF"
check "mica.conf names the module" grep -qxF "pkcs11_module = $MOD" "$CONF"
check "ocsp.crt and tls.crt verify under ca.crt (signed in the token)" \
    openssl verify -CAfile "$CA" "$D/ocsp.crt" "$D/tls.crt"
check "ca.crt's self-signature verifies" openssl verify -check_ss_sig \
    -CAfile "$CA" "$CA"
# the token's public key is the one in ca.crt
p11 --read-object --type pubkey --label mica-ca -o "$T/ca.pub.der" \
    >/dev/null 2>&1
check "ca.crt certifies the token key" sh -c "openssl x509 -in '$CA' \
    -noout -pubkey | openssl pkey -pubin -outform DER | cmp - '$T/ca.pub.der'"
p11 --login --pin "$PIN" --list-objects --type privkey >"$T/objs" 2>&1
for l in mica-ca mica-ocsp; do
	check "$l is a sensitive, never extractable private key in the token" \
	    awk -v l="$l" '/^Private Key Object/ { k = 1; next }
	    k && $1 == "label:" { lab = $2 }
	    k && $1 == "Access:" && lab == l &&
	        /sensitive/ && /never extractable/ { f = 1 }
	    END { exit !f }' "$T/objs"
done
# What the engine hands a process is a handle: exported, the private
# scalar reads as zero (the token never gives it out).
printf 'openssl_conf = oc\n[oc]\nengines = es\n[es]\npkcs11 = p11\n[p11]\nengine_id = pkcs11\nMODULE_PATH = %s\ninit = 0\n' \
    "$MOD" >"$T/engine.cnf"
OPENSSL_CONF=$T/engine.cnf openssl pkey -engine pkcs11 -inform engine \
    -in "pkcs11:token=mica;object=mica-ca;type=private?pin-value=$PIN" \
    -text -noout 2>/dev/null | sed -n '/^priv:/,/^pub:/p' | sed '1d;$d' |
    tr -d ' :\n' >"$T/priv.hex"
check "the token hands out no private scalar (it reads as zero)" sh -c \
    "test -s '$T/priv.hex' && ! grep -q '[1-9a-f]' '$T/priv.hex'"
# init again with an existing key: it is used, not made again
mica_init "$T/ca2" --pkcs11-module "$MOD" --key-uri "$KURI" \
    --ocsp-key-uri "$OURI" || not_ok "second init on the same token keys"
openssl x509 -in "$CA" -noout -pubkey >"$T/ca.pub.pem"
check "second init: same CA key" sh -c "openssl x509 -in '$T/ca2/ca.crt' \
    -noout -pubkey | cmp - '$T/ca.pub.pem'"
expect_eq "second init: still one key labelled mica-ca in the token" \
    "$(p11 --login --pin "$PIN" --list-objects --type privkey 2>/dev/null |
    grep -c 'label: *mica-ca$')" 1
# a CA with key files says so, in init's output and in status
mica_init "$T/ca3" || not_ok "init with key files"
OUT=$(cat "$T/init.out")
expect_out "init: ca key: file" "ca key: file $T/ca3/private/ca.key"
expect_out "init: ocsp signer key: file" \
    "ocsp signer key: file $T/ca3/private/ocsp.key"
start_micad || not_ok "micad starts with key files"
expect_exit 0 "status with key files" admin status
expect_out "status: ca key: file" "ca key: file $T/ca3/private/ca.key"
expect_out "status: ocsp signer key: file" \
    "ocsp signer key: file $T/ca3/private/ocsp.key"
stop_micad
: >"$T/micad.log"
CONF=$D/mica.conf
export MICA_CONF=$CONF

# ---- micad with the token keys ----
conf_set "$CONF" review auto
start_micad || { not_ok "micad starts with token keys"; done_testing; }
ok "micad starts with token keys"
URL=http://$(sed -n '/^\[http\]/,/^\[/s/^listen = //p' "$CONF")
CA_ADDR=$(sed -n '/^\[protocol\]/,/^\[/s/^listen = //p' "$CONF")
check "start log: ca key: token mica object mica-ca" \
    grep -q "ca key: token mica object mica-ca" "$T/micad.log"
check "start log: ocsp signer key: token mica object mica-ocsp" \
    grep -q "ocsp signer key: token mica object mica-ocsp" "$T/micad.log"
expect_exit 0 "mica-admin status" admin status
expect_out "status: ca key in the token" "ca key: token mica object mica-ca"
expect_out "status: ocsp signer key in the token" \
    "ocsp signer key: token mica object mica-ocsp"
expect_exit 0 "mica-admin status --json" admin status --json
expect_out "status --json: ca_key" '"ca_key":"token mica object mica-ca"'

# ---- issue and reissue (the real mica client) ----
PW=$T/pw
echo 'correct-horse-battery' >"$PW"
admin account add alice --subject "/CN=alice/O=Org" --password-file "$PW" \
    >"$T/alice.add" 2>&1 || not_ok "account add alice"
sed -n 's/^totp secret[^:]*: //p' "$T/alice.add" >"$T/alice.secret"
make_csr "$T/alice.key" "$T/alice.csr" "/CN=alice/O=Org"
check "issue with the token CA key" admin issue --account alice \
    --csr "$T/alice.csr" --out "$T/alice.crt"
check "the certificate verifies under ca.crt" \
    openssl verify -CAfile "$CA" "$T/alice.crt"
expect_exit 0 "mica reissue (review auto)" "$BIN/mica" --server "$CA_ADDR" \
    --ca "$CA" reissue --account alice --lost-cert "$T/alice.crt" \
    --key "$T/alice.new.key" --out "$T/alice.new.crt" \
    --password-file "$PW" \
    --otp "$(oathtool --totp -b "$(cat "$T/alice.secret")")"
check "the replacement verifies under ca.crt" \
    openssl verify -CAfile "$CA" "$T/alice.new.crt"

# ---- OCSP, signed by the token's OCSP key ----
ocsp() {
	openssl ocsp -issuer "$CA" -CAfile "$CA" -url "$URL/ocsp" "$@"
}
expect_exit 0 "OCSP: the lost certificate" ocsp -cert "$T/alice.crt"
expect_out "OCSP answer verifies" "Response verify OK"
expect_out "lost certificate revoked" "$T/alice.crt: revoked"
expect_exit 0 "OCSP: the replacement" ocsp -cert "$T/alice.new.crt"
expect_out "replacement good" "$T/alice.new.crt: good"
expect_exit 0 "OCSP answer verifies with ocsp.crt as the signer" \
    ocsp -cert "$T/alice.new.crt" -no_intern -verify_other "$D/ocsp.crt"
expect_out "verify OK with ocsp.crt" "Response verify OK"

# the signer threads ([http] signers = 2) share the token key: 16 nonce
# requests at once, every answer verifies
j=0
PIDS=""
while [ $j -lt 16 ]; do
	ocsp -cert "$T/alice.new.crt" >"$T/par.$j" 2>&1 &
	PIDS="$PIDS $!"
	j=$((j + 1))
done
for p in $PIDS; do wait "$p"; done
expect_eq "16 concurrent nonce answers signed in the token all verify" \
    "$(cat "$T"/par.* | grep -c 'Response verify OK')" 16

# ---- CRLs, signed by the token's CA key ----
crlverify() {
	openssl verify -crl_check -extended_crl -use_deltas -CAfile "$CA" \
	    -CRLfile "$T/full.pem" -CRLfile "$T/delta.pem" "$1"
}
i=0
while [ $i -lt 100 ]; do
	curl -sf -o "$T/full.pem" "$URL/crl/full.crl.pem" &&
	    curl -sf -o "$T/delta.pem" "$URL/crl/delta.crl.pem" &&
	    crlverify "$T/alice.crt" 2>&1 | grep -q "certificate revoked" &&
	    break
	sleep 0.1; i=$((i + 1))
done
check "the full CRL verifies under ca.crt" openssl crl -in "$T/full.pem" \
    -CAfile "$CA" -noout -verify
check "the delta CRL verifies under ca.crt" openssl crl -in "$T/delta.pem" \
    -CAfile "$CA" -noout -verify
expect_exit 2 "CRLs: the lost certificate is revoked" crlverify "$T/alice.crt"
expect_out "openssl says revoked" "certificate revoked"
expect_exit 0 "CRLs: the replacement verifies" crlverify "$T/alice.new.crt"
stop_micad

# ---- renewal of the OCSP signer: the same token key, certified again ----
OLD_OCSP=$(serial_of "$D/ocsp.crt")
cp "$D/ocsp.crt" "$T/old-ocsp.crt"
conf_set "$CONF" renew_before_days 400
start_micad || not_ok "micad starts and renews the OCSP signer"
NEW_OCSP=$(serial_of "$D/ocsp.crt")
check "ocsp.crt renewed" test "$OLD_OCSP" != "$NEW_OCSP"
check "renewed ocsp.crt certifies the same token key" sh -c \
    "openssl x509 -in '$D/ocsp.crt' -noout -pubkey >'$T/p1' &&
    openssl x509 -in '$T/old-ocsp.crt' -noout -pubkey | cmp - '$T/p1'"
check "the renewal wrote no key file" sh -c \
    "! ls '$D/private/ocsp.key' '$D/private/ocsp.key.new' \
    '$D/ocsp.crt.new' 2>/dev/null"
check "the renewal is logged with the token key" grep -q \
    "OCSP signer renewed: serial=$NEW_OCSP, $D/ocsp.crt replaced, same key (token mica object mica-ocsp)" \
    "$T/micad.log"
check "renewed OCSP signer verifies under ca.crt" openssl verify \
    -CAfile "$CA" -purpose ocsphelper "$D/ocsp.crt"
expect_exit 0 "OCSP answer verifies with the renewed signer" \
    ocsp -cert "$T/alice.new.crt" -no_intern -verify_other "$D/ocsp.crt"
expect_out "verify OK with the renewed signer" "Response verify OK"
expect_exit 0 "renewed signer recorded in the store" admin show "$NEW_OCSP"
expect_exit 0 "old signer linked to the new one" admin show "$OLD_OCSP"
expect_out "replaced by the new one" "replaced by: $NEW_OCSP"
stop_micad
conf_set "$CONF" renew_before_days 0
# while running (a worker renews; the responder takes the new signer):
# the renewal timer runs every expiry_interval s
conf_set "$CONF" expiry_interval 10
start_micad || not_ok "micad starts (renewal check every 10 s)"
RUN_OCSP=$(serial_of "$D/ocsp.crt")
conf_set "$CONF" renew_before_days 400
kill -HUP "$MICAD_PID"
i=0
while [ "$(serial_of "$D/ocsp.crt")" = "$RUN_OCSP" ] && [ $i -lt 300 ]; do
	sleep 0.1; i=$((i + 1))
done
conf_set "$CONF" renew_before_days 0
kill -HUP "$MICAD_PID"
check "ocsp.crt renewed while running" \
    test "$(serial_of "$D/ocsp.crt")" != "$RUN_OCSP"
check "... certifying the same token key" sh -c \
    "openssl x509 -in '$D/ocsp.crt' -noout -pubkey | cmp - '$T/p1'"
check "the responder took up the new signer" \
    wait_log "ocsp: signer replaced"
expect_exit 0 "OCSP answer verifies with the signer renewed while running" \
    ocsp -cert "$T/alice.new.crt" -no_intern -verify_other "$D/ocsp.crt"
expect_out "verify OK" "Response verify OK"
stop_micad
NEW_OCSP=$(serial_of "$D/ocsp.crt")
# a renewal interrupted after the certificate was written: installed
cp "$D/ocsp.crt" "$T/ren-ocsp.crt"
cp "$T/old-ocsp.crt" "$D/ocsp.crt"
cp "$T/ren-ocsp.crt" "$D/ocsp.crt.new"
start_micad || not_ok "micad starts with ocsp.crt.new left over"
expect_eq "leftover certificate of the token key installed" \
    "$(serial_of "$D/ocsp.crt")" "$NEW_OCSP"
check "no ocsp.crt.new left" test ! -e "$D/ocsp.crt.new"
stop_micad

# ---- no private key in the CA directory or the store ----
# Only the TLS server key is a file (it is not a CA key); grep -a reads
# the LMDB files as text too.
grep -rla "PRIVATE KEY" "$D" >"$T/pk.list" 2>/dev/null
expect_eq "no file under the CA directory holds a private key but tls.key" \
    "$(cat "$T/pk.list")" "$D/private/tls.key"
check "the store holds no PEM private key" sh -c \
    "! grep -rqa 'PRIVATE KEY' '$D/store'"
# totp.key is the symmetric key sealing the TOTP secrets, not a CA key
expect_eq "the only key files are tls.key and totp.key" \
    "$(cd "$D" && find . -name '*.key*' | sort | tr '\n' ' ')" \
    "./private/tls.key ./private/totp.key "

# ---- a wrong PIN: a clear error, and the PIN is not printed ----
printf '864200\n' >"$T/badpin"
chmod 600 "$T/badpin"
sed "s|^key = .*|key = pkcs11:token=mica;object=mica-ca?pin-source=file:$T/badpin|" \
    "$CONF" >"$D/bad.conf"
chmod 600 "$D/bad.conf"
expect_exit 1 "micad -n with a wrong PIN file fails" "$BIN/micad" -n \
    -c "$D/bad.conf"
expect_out "wrong PIN named (CKR_PIN_INCORRECT)" \
    "pkcs11:token=mica;object=mica-ca: the token refused the PIN (CKR_PIN_INCORRECT)"
check "the wrong PIN is not printed" sh -c \
    "! printf '%s' \"\$1\" | grep -q 864200" sh "$OUT"
sed "s|^key = .*|key = pkcs11:token=mica;object=mica-ca?pin-value=864200|" \
    "$CONF" >"$D/bad.conf"
expect_exit 1 "micad -n with a wrong pin-value fails" "$BIN/micad" -n \
    -c "$D/bad.conf"
expect_out "wrong pin-value named" "the token refused the PIN"
check "the pin-value is not printed" sh -c \
    "! printf '%s' \"\$1\" | grep -q 864200" sh "$OUT"
chmod 644 "$T/badpin"
sed "s|^key = .*|key = pkcs11:token=mica;object=mica-ca?pin-source=file:$T/badpin|" \
    "$CONF" >"$D/bad.conf"
expect_exit 1 "a PIN file readable by others is refused" "$BIN/micad" -n \
    -c "$D/bad.conf"
expect_out "PIN file mode named" "is accessible by group or others"
sed "s|^key = .*|key = pkcs11:token=mica;object=nokey?pin-source=file:$T/pin|" \
    "$CONF" >"$D/bad.conf"
expect_exit 1 "a key that is not in the token" "$BIN/micad" -n \
    -c "$D/bad.conf"
expect_out "missing key named" \
    "pkcs11:token=mica;object=nokey: no such private key in the token"
sed "/^pkcs11_module = /d" "$CONF" >"$D/bad.conf"
expect_exit 1 "a URI and no module" "$BIN/micad" -n -c "$D/bad.conf"
expect_out "the missing module is named" "which PKCS#11 module?"
check "the PINs are nowhere in micad's log" sh -c \
    "! grep -q -e '$PIN' -e 864200 '$T/micad.log'"
check "the good config still checks" "$BIN/micad" -n -c "$CONF"

# ---- started as root, signing in the token after the privilege drop ----
if [ "$(id -u)" -ne 0 ]; then
	echo "ok - # SKIP privilege drop needs root"
	done_testing
fi
id mica-test >/dev/null 2>&1 || useradd -r -M -s /usr/sbin/nologin \
    mica-test 2>/dev/null
if ! id mica-test >/dev/null 2>&1; then
	echo "ok - # SKIP privilege drop: cannot create user mica-test"
	done_testing
fi
conf_put() {
	if grep -q "^$3[ 	]*=" "$1"; then
		conf_set "$1" "$3" "$4"
	else
		sed -i "/^\\[$2\\]/a $3 = $4" "$1"
	fi
}
conf_put "$CONF" daemon user mica-test
# the PIN file stays root's (read before the drop); SoftHSM2's token
# files belong to the service user, as its key files would
chown -R mica-test "$D" "$T/tokens"
chmod 755 "$T"
: >"$T/micad.log"
start_micad || not_ok "micad starts as root with token keys, drops to mica-test"
check "privileges dropped" grep -q "running as user mica-test" "$T/micad.log"
make_csr "$T/bob.key" "$T/bob.csr" "/CN=alice/O=Org"
check "issue after the drop (the CA key signs in the token)" admin issue \
    --account alice --csr "$T/bob.csr" --out "$T/bob.crt"
check "... and it verifies" openssl verify -CAfile "$CA" "$T/bob.crt"
expect_exit 0 "OCSP with a nonce after the drop" ocsp -cert "$T/bob.crt"
expect_out "signed in the token, verified" "Response verify OK"
stop_micad

done_testing
