#!/bin/sh
# t_subscriber.sh - the subscriber's side through the real mica binary:
# finding the lost certificate after login (LIST), `mica list`, choosing
# on a terminal (pty) or by --serial.  review = auto, so a reissue ends
# with the certificate at once.
# A TOTP step is accepted once per account; micad accepts the previous,
# current and next step, so a second login of one account uses the next
# step's code (otp NAME next) instead of waiting.
. "$(dirname "$0")/lib.sh"

mica_init "$T/ca" || { not_ok "mica-admin init"; done_testing; }
conf_set "$CONF" review auto
start_micad || { not_ok "micad starts"; done_testing; }
CA=$T/ca/ca.crt
MICA="$BIN/mica --server 127.0.0.1:$CA_PORT --ca $CA"
PW=$T/pw
echo 'correct-horse-battery' >"$PW"
unset MICA_SERVER MICA_CA

# enroll NAME: account NAME (subject /CN=NAME/O=Org) with a certificate
# $T/NAME.crt; the TOTP secret goes to $T/NAME.secret.
enroll() {
	admin account add "$1" --subject "/CN=$1/O=Org" \
	    --password-file "$PW" >"$T/$1.add" 2>&1 || return 1
	sed -n 's/^totp secret[^:]*: //p' "$T/$1.add" >"$T/$1.secret"
	issue_more "$1" ""
}
# issue_more NAME TAG: one more certificate $T/NAME$TAG.crt for NAME.
issue_more() {
	make_csr "$T/$1$2.key" "$T/$1$2.csr" "/CN=$1/O=Org"
	admin issue --account "$1" --csr "$T/$1$2.csr" --out "$T/$1$2.crt" \
	    >/dev/null 2>&1
}
# otp NAME [next]: the current (or the next step's) TOTP code.
otp() {
	if [ "${2:-}" = next ]; then
		oathtool --totp -N "now + 30 seconds" -b "$(cat "$T/$1.secret")"
	else
		oathtool --totp -b "$(cat "$T/$1.secret")"
	fi
}
subj() { openssl x509 -in "$1" -noout -subject; }
status_of() { admin show "$1" | sed -n 's/^status: //p'; }

# ---- one certificate, no terminal: it is taken ----
enroll ann || not_ok "enroll ann"
expect_exit 0 "reissue with only --account (one certificate, no terminal)" \
    $MICA reissue --account ann --key "$T/ann.new.key" \
    --out "$T/ann.new.crt" --password-file "$PW" --otp "$(otp ann)" \
    </dev/null
expect_out "says which certificate it took" \
    "mica: taking the only good certificate of account ann: serial $(serial_of "$T/ann.crt")"
check "ann's new certificate verifies" openssl verify -CAfile "$CA" \
    "$T/ann.new.crt"
expect_eq "subject from the server's copy of the lost certificate" \
    "$(subj "$T/ann.new.crt")" "$(subj "$T/ann.crt")"
expect_eq "ann's lost certificate revoked" \
    "$(status_of "$(serial_of "$T/ann.crt")")" revoked

# ---- mica list ----
expect_exit 0 "mica list --account ann" $MICA list --account ann \
    --password-file "$PW" --otp "$(otp ann next)" </dev/null
expect_out "list: count" "account ann: 2 certificates"
expect_out "list: the new one, good" \
    "serial $(serial_of "$T/ann.new.crt")  good  "
expect_out "list: the lost one, revoked, replaced by the new one" \
    "serial $(serial_of "$T/ann.crt")  revoked  "
expect_out "list: replaced by" \
    "  replaced by $(serial_of "$T/ann.new.crt")"
expect_out "list: subject" "/CN=ann/O=Org"
expect_exit 2 "mica list without --account: usage" $MICA list \
    --password-file "$PW" --otp 123456
expect_out "list usage" "usage: mica [global] list --account NAME"

# ---- a large account: TOTAL counts all, the 32 newest are listed ----
enroll gus || not_ok "enroll gus"
# the first certificate is strictly older than the rest (issue times are
# whole seconds): wait for the clock's next second, bounded
t0=$(date +%s); i=0
while [ "$(date +%s)" = "$t0" ] && [ $i -lt 50 ]; do sleep 0.05; i=$((i + 1)); done
n=1
while [ $n -le 32 ]; do
	issue_more gus ".$n" || not_ok "certificate $n for gus"
	n=$((n + 1))
done
expect_exit 0 "list an account with 33 certificates" $MICA list \
    --account gus --password-file "$PW" --otp "$(otp gus)" </dev/null
expect_out "large account: TOTAL" "account gus: 33 certificates"
expect_eq "large account: 32 listed" \
    "$(printf '%s\n' "$OUT" | grep -c '^serial ')" 32
expect_out "large account: says the list is capped" \
    "(33 certificates in all; only the 32 newest are listed)"
if printf '%s\n' "$OUT" | grep -qF "serial $(serial_of "$T/gus.crt") "; then
	not_ok "large account: the oldest one is left out"
else
	ok "large account: the oldest one is left out"
fi
expect_out "large account: the newest is listed" \
    "serial $(serial_of "$T/gus.32.crt") "

# ---- several certificates, no terminal: exit 2 with the listing ----
enroll bob || not_ok "enroll bob"
issue_more bob .2 || not_ok "second certificate for bob"
issue_more bob .3 || not_ok "third certificate for bob"
admin revoke "$(serial_of "$T/bob.3.crt")" >/dev/null 2>&1 ||
    not_ok "revoke bob.3"
expect_exit 2 "several certificates, no terminal: exit 2" \
    $MICA reissue --account bob --key "$T/bob.new.key" \
    --out "$T/bob.new.crt" --password-file "$PW" --otp "$(otp bob)" \
    </dev/null
expect_out "exit 2 says to rerun with --serial" \
    "mica: account bob has 2 good certificates and there is no terminal to choose; rerun with --serial SERIAL (and a new code):"
expect_out "listing shows bob.crt" "serial $(serial_of "$T/bob.crt")  good"
expect_out "listing shows bob.2.crt" \
    "serial $(serial_of "$T/bob.2.crt")  good"
if printf '%s\n' "$OUT" | grep -qF "$(serial_of "$T/bob.3.crt")"; then
	not_ok "the revoked certificate is not offered"
else
	ok "the revoked certificate is not offered"
fi
check "no key written when nothing was chosen" test ! -e "$T/bob.new.key"
check "no request file written" test ! -e "$T/bob.new.crt.request"

# ---- ... and the rerun with --serial (no --subject, no --lost-cert) ----
expect_exit 0 "rerun with --serial only" \
    $MICA reissue --account bob --serial "$(serial_of "$T/bob.2.crt")" \
    --key "$T/bob.new.key" --out "$T/bob.new.crt" --password-file "$PW" \
    --otp "$(otp bob next)" </dev/null
expect_eq "--serial: subject from the server" \
    "$(subj "$T/bob.new.crt")" "$(subj "$T/bob.2.crt")"
expect_eq "--serial: the named certificate is revoked" \
    "$(status_of "$(serial_of "$T/bob.2.crt")")" revoked
expect_eq "--serial: the other one stays good" \
    "$(status_of "$(serial_of "$T/bob.crt")")" good

# ---- choosing on a terminal (pty) ----
enroll cleo || not_ok "enroll cleo"
issue_more cleo .2 || not_ok "second certificate for cleo"
PICK=$(serial_of "$T/cleo.crt")
expect_exit 0 "terminal: the user picks the lost certificate by number" \
    python3 "$TOP/tests/e2e/pty_choose.py" "$PICK" $MICA reissue \
    --account cleo --key "$T/cleo.new.key" --out "$T/cleo.new.crt" \
    --password-file "$PW" --otp "$(otp cleo)"
expect_out "terminal: numbered list" "  1) serial "
expect_out "terminal: prompt" "which certificate was lost? [1-2]: "
expect_eq "terminal: the chosen one is revoked" "$(status_of "$PICK")" revoked
expect_eq "terminal: the other stays good" \
    "$(status_of "$(serial_of "$T/cleo.2.crt")")" good
check "terminal: the new certificate verifies" openssl verify -CAfile "$CA" \
    "$T/cleo.new.crt"

# ---- nothing to reissue ----
enroll dan || not_ok "enroll dan"
admin revoke "$(serial_of "$T/dan.crt")" >/dev/null 2>&1
expect_exit 1 "no good certificate: exit 1" \
    $MICA reissue --account dan --key "$T/dan.new.key" \
    --out "$T/dan.new.crt" --password-file "$PW" --otp "$(otp dan)" \
    </dev/null
expect_out "no good certificate: says so" \
    "mica: account dan has no good certificate to reissue"

# ---- a serial that is not the account's ----
expect_exit 1 "--serial of another account's certificate" \
    $MICA reissue --account dan --serial "$(serial_of "$T/cleo.2.crt")" \
    --key "$T/dan.new.key" --out "$T/dan.new.crt" --password-file "$PW" \
    --otp "$(otp dan next)" </dev/null
expect_out "not listed: says to give the subject" \
    "is not among the certificates listed for account dan; give --subject or --lost-cert"

# ---- PKCS#12 ----
# pubkey_of FILE: the public key of a certificate (PEM) file.
pubkey_of() { openssl x509 -in "$1" -noout -pubkey; }
enroll erin || not_ok "enroll erin"
printf 'p12-secret-pw\nsecond line\n' >"$T/p12pw"
printf '\nnot the first line\n' >"$T/p12empty"
expect_exit 1 "--p12-password-file with an empty first line: refused" \
    $MICA reissue --account erin --key "$T/erin.new.key" \
    --out "$T/erin.new.crt" --password-file "$PW" --otp 000000 \
    --p12 "$T/erin.p12" --p12-password-file "$T/p12empty" </dev/null
expect_out "empty p12 password: says so" \
    "mica: $T/p12empty: the first line is empty; a PKCS#12 file needs a password"
check "empty p12 password: nothing written" test ! -e "$T/erin.new.key"
expect_exit 2 "--p12-legacy without --p12: usage" \
    $MICA reissue --account erin --key "$T/erin.new.key" \
    --out "$T/erin.new.crt" --p12-legacy
expect_exit 0 "reissue --p12" $MICA reissue --account erin \
    --key "$T/erin.new.key" --out "$T/erin.new.crt" --password-file "$PW" \
    --otp "$(otp erin)" --p12 "$T/erin.p12" \
    --p12-password-file "$T/p12pw" </dev/null
expect_out "p12 written" "pkcs12: $T/erin.p12 (AES-256-CBC, PBKDF2, SHA-256 MAC)"
expect_out "hint: Windows" "certutil -user -importPFX $T/erin.p12"
expect_out "hint: macOS" "security import $T/erin.p12 -f pkcs12"
expect_out "hint: Firefox/NSS" "pk12util -i $T/erin.p12 -d sql:"
if printf '%s\n' "$OUT" | grep -q 'p12-secret-pw'; then
	not_ok "the p12 password is not printed"
else
	ok "the p12 password is not printed"
fi
expect_eq "p12 mode 0600" "$(stat -c %a "$T/erin.p12")" 600
expect_exit 0 "openssl pkcs12 -info reads it" openssl pkcs12 -info -noout \
    -in "$T/erin.p12" -passin "file:$T/p12pw"
expect_out "p12: SHA-256 MAC" "MAC: sha256"
expect_out "p12: AES-256-CBC with PBKDF2" "PBES2, PBKDF2, AES-256-CBC"
openssl pkcs12 -in "$T/erin.p12" -passin "file:$T/p12pw" -nocerts -nodes \
    2>/dev/null | openssl pkey -pubout >"$T/erin.p12.pub" 2>/dev/null
openssl pkcs12 -in "$T/erin.p12" -passin "file:$T/p12pw" -clcerts -nokeys \
    2>/dev/null >"$T/erin.p12.crt"
openssl pkcs12 -in "$T/erin.p12" -passin "file:$T/p12pw" -cacerts -nokeys \
    2>/dev/null >"$T/erin.p12.ca"
expect_eq "p12: the key matches the certificate" \
    "$(cat "$T/erin.p12.pub")" "$(pubkey_of "$T/erin.new.crt")"
check "p12: the certificate is the new one" cmp \
    "$(openssl x509 -in "$T/erin.p12.crt" -outform DER -out "$T/a.der"; echo "$T/a.der")" \
    "$(openssl x509 -in "$T/erin.new.crt" -outform DER -out "$T/b.der"; echo "$T/b.der")"
expect_eq "p12: the chain is the CA certificate" \
    "$(openssl x509 -in "$T/erin.p12.ca" -noout -fingerprint -sha256)" \
    "$(openssl x509 -in "$CA" -noout -fingerprint -sha256)"
expect_eq ".chain holds the chain up to the root" \
    "$(openssl x509 -in "$T/erin.new.crt.chain" -noout -fingerprint -sha256)" \
    "$(openssl x509 -in "$CA" -noout -fingerprint -sha256)"
CA_CN=$(openssl x509 -in "$CA" -noout -subject -nameopt multiline |
    sed -n 's/^ *commonName *= //p')

# nss_import P12 DIR: a fresh NSS database with the bundle imported.
nss_import() {
	mkdir -p "$2" && certutil -N --empty-password -d "sql:$2" &&
	    pk12util -i "$1" -d "sql:$2" -w "$T/p12pw"
}
check "NSS: pk12util imports it" nss_import "$T/erin.p12" "$T/nss"
expect_exit 0 "NSS: certutil -L" certutil -L -d "sql:$T/nss"
expect_out "NSS lists the certificate" "erin"
expect_out "NSS lists the CA" "$CA_CN"
expect_exit 0 "NSS: the key came along" certutil -K -d "sql:$T/nss"
expect_out "NSS: key listed" "erin"

# ---- PKCS#12 password asked twice on a terminal (pty) ----
enroll fay || not_ok "enroll fay"
PTY="python3 $TOP/tests/e2e/pty_answer.py"
expect_exit 1 "terminal: two different p12 passwords" $PTY \
    "PKCS#12 password: ::first-pw-1" "PKCS#12 password again: ::other-pw-2" \
    -- $MICA reissue --account fay --key "$T/fay.new.key" \
    --out "$T/fay.new.crt" --password-file "$PW" --otp 000000 \
    --p12 "$T/fay.p12"
expect_out "terminal: says they differ" \
    "mica: the two PKCS#12 passwords differ"
check "terminal: nothing written when they differ" test ! -e "$T/fay.p12"
expect_exit 0 "terminal: the p12 password typed twice" $PTY \
    "PKCS#12 password: ::tty-pw-123" "PKCS#12 password again: ::tty-pw-123" \
    "which certificate was lost? [1-1]: ::1" -- $MICA reissue --account fay --key "$T/fay.new.key" \
    --out "$T/fay.new.crt" --password-file "$PW" --otp "$(otp fay)" \
    --p12 "$T/fay.p12"
if printf '%s\n' "$OUT" | grep -q 'tty-pw-123'; then
	not_ok "terminal: the typed password is not echoed"
else
	ok "terminal: the typed password is not echoed"
fi
check "terminal: the p12 opens with the typed password" \
    openssl pkcs12 -info -noout -in "$T/fay.p12" -passin pass:tty-pw-123

# ---- PKCS#12, legacy form, written by fetch ----
expect_exit 2 "fetch --p12 without --key: usage" $MICA fetch \
    --request-file "$T/erin.new.crt.request" --out "$T/erin.f.crt" \
    --p12 "$T/erin.legacy.p12" --p12-password-file "$T/p12pw"
expect_out "fetch --p12 needs --key" "mica: --p12 needs fetch and --key"
expect_exit 0 "fetch --p12 --p12-legacy" $MICA fetch \
    --request-file "$T/erin.new.crt.request" --out "$T/erin.f.crt" \
    --key "$T/erin.new.key" --p12 "$T/erin.legacy.p12" --p12-legacy \
    --p12-password-file "$T/p12pw" </dev/null
expect_out "legacy p12 written" \
    "pkcs12: $T/erin.legacy.p12 (legacy: 3DES, SHA-1 MAC)"
expect_eq "legacy p12 mode 0600" "$(stat -c %a "$T/erin.legacy.p12")" 600
expect_exit 0 "openssl pkcs12 -info reads the legacy form" \
    openssl pkcs12 -info -noout -in "$T/erin.legacy.p12" \
    -passin "file:$T/p12pw"
expect_out "legacy: SHA-1 MAC" "MAC: sha1"
expect_out "legacy: 3DES for the key and certificates" \
    "pbeWithSHA1And3-KeyTripleDES-CBC"
if printf '%s\n' "$OUT" | grep -qi 'rc2'; then
	not_ok "legacy: no RC2 (it needs the legacy provider)"
else
	ok "legacy: no RC2 (it needs the legacy provider)"
fi
openssl pkcs12 -in "$T/erin.legacy.p12" -passin "file:$T/p12pw" -nocerts \
    -nodes 2>/dev/null | openssl pkey -pubout >"$T/erin.l.pub" 2>/dev/null
expect_eq "legacy: the key matches the certificate" \
    "$(cat "$T/erin.l.pub")" "$(pubkey_of "$T/erin.new.crt")"
check "NSS imports the legacy form" nss_import "$T/erin.legacy.p12" \
    "$T/nss2"
expect_exit 0 "NSS (legacy): certutil -L" certutil -L -d "sql:$T/nss2"
expect_out "NSS (legacy) lists the certificate" "erin"
expect_out "NSS (legacy) lists the CA" "$CA_CN"

check "mica-admin check passes" admin check
stop_micad || not_ok "micad stops cleanly"
done_testing
