#!/bin/sh
# Foundation end to end: init -> micad -> account add -> issue (CSR from
# openssl req) -> openssl verify + extensions -> revoke -> show -> backup
# -> restore elsewhere -> show -> audit verify, tamper -> verify fails.
# Malformed inputs each get their exact error and change nothing.
. "$(dirname "$0")/lib.sh"

D=$T/ca
mica_init "$D" --cn "Test Root CA" || { not_ok "init"; done_testing; }
ok "init created a CA"
for f in ca.crt ocsp.crt tls.crt mica.conf; do
	[ -f "$D/$f" ] && ok "init wrote $f" || not_ok "init wrote $f"
done
expect_eq "private/ is 0700" "$(stat -c %a "$D/private")" 700
expect_eq "ca.key is 0600" "$(stat -c %a "$D/private/ca.key")" 600
expect_eq "mica.conf is 0600" "$(stat -c %a "$D/mica.conf")" 600
check "ocsp.crt and tls.crt chain to ca.crt" \
    openssl verify -CAfile "$D/ca.crt" "$D/ocsp.crt" "$D/tls.crt"
OUT=$(openssl x509 -in "$D/ocsp.crt" -noout -text)
expect_out "ocsp.crt has EKU OCSP Signing" "OCSP Signing"
expect_out "ocsp.crt has ocsp-nocheck" "OCSP No Check"
OUT=$(openssl x509 -in "$D/tls.crt" -noout -ext subjectAltName)
expect_out "tls.crt SAN has localhost" "DNS:localhost"
expect_out "tls.crt SAN has 127.0.0.1" "IP Address:127.0.0.1"

expect_exit 1 "init refuses to overwrite an existing CA" \
    "$BIN/mica-admin" init "$D"
expect_out "init names the existing CA" "exists"
expect_exit 2 "init without a directory is a usage error" \
    "$BIN/mica-admin" init
expect_exit 2 "init with a bad key type is a usage error" \
    "$BIN/mica-admin" init "$T/other" --key-type dsa-1024

expect_exit 0 "micad -n checks the configuration" "$BIN/micad" -n -c "$CONF"
expect_out "micad -n says configuration OK" "configuration OK"
expect_exit 0 "micad --help" "$BIN/micad" --help
expect_exit 0 "mica-admin --help" "$BIN/mica-admin" --help
expect_out "mica-admin --help lists revoke" "revoke SERIAL"

start_micad || { not_ok "micad starts"; done_testing; }
ok "micad starts"
expect_eq "micad writes no core dumps (secrets)" \
    "$(awk '/^Max core file size/ {print $5}' "/proc/$MICAD_PID/limits")" 0
expect_exit 1 "a second micad on the same store refuses to start" \
    "$BIN/micad" -c "$CONF"
expect_out "second micad says why" "in use by another micad"

printf 'alice password 1\n' >"$T/pw"
expect_exit 0 "account add alice" admin account add alice \
    --subject "/CN=alice/O=Example" --password-file "$T/pw"
expect_out "account add prints the TOTP secret" "totp secret (base32, shown once): "
expect_out "account add prints the otpauth URI" "otpauth://totp/mica:alice?secret="
expect_exit 1 "account add refuses a duplicate" admin account add alice \
    --subject "/CN=alice/O=Example" --password-file "$T/pw"
expect_out "duplicate account message" 'account "alice" already exists'
expect_exit 0 "account list --json" admin account list --json
expect_out "account list shows alice" '"name":"alice"'
if printf '%s\n' "$OUT" | grep -q "alice password"; then
	not_ok "account list leaks nothing secret"
else
	ok "account list leaks nothing secret"
fi

make_csr "$T/alice.key" "$T/alice.csr" "/CN=alice/O=Example"
expect_exit 0 "issue a certificate from an openssl req CSR" \
    admin issue --account alice --csr "$T/alice.csr" --days 30 \
    --out "$T/alice.crt"
S=$(printf '%s\n' "$OUT" | sed -n 's/^serial: //p')
expect_eq "issue printed the certificate's serial" "$S" "$(serial_of "$T/alice.crt")"
check "openssl verify accepts the issued certificate" \
    openssl verify -CAfile "$D/ca.crt" "$T/alice.crt"
OUT=$(openssl x509 -in "$T/alice.crt" -noout -text)
expect_out "basicConstraints CA:FALSE" "CA:FALSE"
expect_out "keyUsage digitalSignature" "Digital Signature"
expect_out "EKU clientAuth" "TLS Web Client Authentication"
expect_out "AIA OCSP URL" "OCSP - URI:$URL/ocsp"
expect_out "AIA caIssuers URL" "CA Issuers - URI:$URL/ca.crt"
expect_out "CRL distribution point" "URI:$URL/crl"
expect_out "SKI present" "Subject Key Identifier"
expect_out "AKI present" "Authority Key Identifier"
expect_out "SHA-256 signature" "ecdsa-with-SHA256"
expect_eq "serial is 128 bits with the top bit clear" \
    "$(printf '%s' "$S" | wc -c | awk '{print ($1 <= 32)}')" 1

# --- malformed inputs: exact errors, store unchanged ---
snapshot() { admin list --json; admin audit --json | wc -c; admin account list --json; }
before=$(snapshot)
printf 'not a csr\n' >"$T/bad.csr"
expect_exit 1 "issue with a garbage CSR fails" admin issue --account alice \
    --csr "$T/bad.csr" --out "$T/x.crt"
expect_out "garbage CSR message" "CSR: RFC 2986"
make_csr "$T/bob.key" "$T/bob.csr" "/CN=bob/O=Example"
expect_exit 1 "issue for the wrong subject fails" admin issue \
    --account alice --csr "$T/bob.csr" --out "$T/x.crt"
expect_out "wrong subject message" "does not match the account's allowed subject"
expect_exit 1 "issue for an unknown account fails" admin issue \
    --account nobody --csr "$T/alice.csr" --out "$T/x.crt"
expect_out "unknown account message" 'no account "nobody"'
openssl req -new -newkey rsa:1024 -nodes -keyout "$T/weak.key" \
    -out "$T/weak.csr" -subj "/CN=alice/O=Example" 2>/dev/null
expect_exit 1 "issue with an RSA-1024 key fails" admin issue \
    --account alice --csr "$T/weak.csr" --out "$T/x.crt"
expect_out "weak key message" "1024"
expect_exit 1 "show of an unknown serial fails" admin show 0123ABCD
expect_out "unknown serial message" "no certificate with serial 0123ABCD"
expect_exit 1 "revoke of an unknown serial fails" admin revoke 0123ABCD
expect_exit 1 "revoke with a bad reason fails" admin revoke "$S" --reason stolen
expect_out "bad reason message" 'unknown reason "stolen"'
expect_exit 1 "show of a non-hex serial fails" admin show xyz
expect_out "non-hex serial message" '"xyz" is not a serial number in hex'
expect_exit 2 "an unknown command is a usage error" admin frobnicate
expect_exit 2 "an unknown option is a usage error" admin list --colour
[ ! -e "$T/x.crt" ] && ok "no output file written on failure" || not_ok "no output file written on failure"
after=$(snapshot)
expect_eq "malformed inputs left the store unchanged" "$after" "$before"

# --- hold, unhold, revoke ---
expect_exit 0 "hold" admin hold "$S"
expect_exit 0 "show after hold" admin show "$S"
expect_out "show says hold" "status: hold"
expect_exit 1 "hold of a held certificate fails" admin hold "$S"
expect_exit 0 "unhold" admin unhold "$S"
expect_exit 0 "show after unhold" admin show "$S"
expect_out "show says good" "status: good"
expect_exit 1 "unhold of a good certificate fails" admin unhold "$S"
expect_out "unhold message" "is not on hold"
lower=$(printf '%s' "$S" | tr 'A-F' 'a-f' | sed 's/../&:/g; s/:$//')
expect_exit 0 "revoke with keyCompromise (serial given as lower-case with colons)" \
    admin revoke "$lower" --reason keyCompromise
expect_exit 0 "show after revoke" admin show "$S" --json
expect_out "show --json says revoked" '"status":"revoked"'
expect_out "show --json says keyCompromise" '"reason":"keyCompromise"'
expect_exit 1 "revoking twice fails" admin revoke "$S"
expect_out "revoke twice message" \
    "mica-admin: revoke: certificate $S is already revoked for keyCompromise"
expect_exit 0 "list --status revoked" admin list --status revoked
expect_out "list shows the revoked serial" "$S"
expect_exit 0 "status --json" admin status --json
expect_out "status counts the revoked certificate" '"revoked":1'

# --- backup and restore ---
expect_exit 0 "backup while micad serves" admin backup "$T/backup.mdb"
expect_eq "backup file is 0600" "$(stat -c %a "$T/backup.mdb")" 600
expect_exit 1 "backup refuses to overwrite" admin backup "$T/backup.mdb"
R=$T/restored
mkdir -p "$R/store" && cp -a "$D/ca.crt" "$D/ocsp.crt" "$D/tls.crt" "$D/private" "$R/"
cp "$T/backup.mdb" "$R/store/data.mdb" && chmod 700 "$R/store"
# a clone beside the running CA: its own high-water mark (a restore in
# place, with the mark, is t_restore)
rm -f "$R/private/hwm" "$R/private/last-full.crl" "$R/private/last-delta.crl"
sed -e "s|^listen = 127.0.0.1:$CA_PORT|listen = 127.0.0.1:$(free_port)|" \
    -e "s|^listen = 127.0.0.1:$HTTP_PORT|listen = 127.0.0.1:$(free_port)|" \
    "$CONF" >"$R/mica.conf" && chmod 600 "$R/mica.conf"
OLDPID=$MICAD_PID
start_micad "$R/mica.conf" && ok "micad starts on the restored store" ||
    not_ok "micad starts on the restored store"
RPID=$MICAD_PID
expect_exit 0 "show on the restored store" "$BIN/mica-admin" -c "$R/mica.conf" show "$S"
expect_out "restored store knows the revocation" "status: revoked"
expect_exit 0 "audit verifies on the restored store" "$BIN/mica-admin" -c "$R/mica.conf" audit --verify
kill -TERM "$RPID"; wait "$RPID"
expect_eq "restored micad exits 0 on SIGTERM" "$?" 0
MICAD_PID=$OLDPID

# --- audit chain ---
expect_exit 0 "audit --verify" admin audit --verify
expect_out "audit chain OK" "audit chain OK"
expect_exit 0 "audit --json" admin audit --json
expect_out "audit records the revocation" '"action":"cert.revoke"'
if printf '%s\n' "$OUT" | grep -q "alice password"; then
	not_ok "audit holds no password"
else
	ok "audit holds no password"
fi
stop_micad
expect_eq "micad exits 0 on SIGTERM" "$?" 0
[ ! -e "$D/admin.sock" ] && ok "admin socket removed at exit" || not_ok "admin socket removed at exit"
# Tamper with one audit record (alice -> alicf) straight in LMDB.
mdb_dump -s audit "$D/store" >"$T/audit.dump" 2>/dev/null
if grep -q '616c696365' "$T/audit.dump"; then
	sed -i '0,/616c696365/s//616c696366/' "$T/audit.dump"
	mdb_load -s audit -f "$T/audit.dump" "$D/store" 2>/dev/null
	start_micad || not_ok "micad restarts after tampering"
	expect_exit 1 "audit --verify detects the tampered record" admin audit --verify
	expect_out "verify says the chain is broken" "audit chain BROKEN"
	stop_micad
else
	not_ok "audit dump contains the account name to tamper with"
fi

# --- bad configuration ---
cp "$CONF" "$T/bad.conf"
printf '\n[http]\nthreads = lots\n' >>"$T/bad.conf"
expect_exit 1 "micad refuses a bad config value" "$BIN/micad" -n -c "$T/bad.conf"
line=$(wc -l <"$T/bad.conf")
expect_out "config error names file, line and key" "$T/bad.conf:$line: [http] threads: must be a number"
cp "$CONF" "$T/bad2.conf"
printf '\n[policy]\nreveiw = auto\n' >>"$T/bad2.conf"
expect_exit 1 "micad refuses an unknown key" "$BIN/micad" -n -c "$T/bad2.conf"
expect_out "unknown key message" "[policy] reveiw: unknown key"
cp "$CONF" "$T/bad3.conf"
sed -i 's/^ext_key_usage = .*/ext_key_usage = clientAuth,OCSPSigning/' "$T/bad3.conf"
expect_exit 1 "micad -n refuses an OCSPSigning subscriber profile" \
    "$BIN/micad" -n -c "$T/bad3.conf"
expect_out "profile message cites RFC 6960" "is not for subscriber certificates (RFC 6960 4.2.2.2)"
cp "$CONF" "$T/bad4.conf"
sed -i 's/^key_usage = .*/key_usage = digitalSignatur/' "$T/bad4.conf"
expect_exit 1 "micad -n refuses an unknown key usage" "$BIN/micad" -n -c "$T/bad4.conf"
expect_out "unknown key usage message" 'key usage "digitalSignatur" unknown'
done_testing
