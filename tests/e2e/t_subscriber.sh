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

check "mica-admin check passes" admin check
stop_micad || not_ok "micad stops cleanly"
done_testing
