#!/bin/sh
# t_check.sh - `mica-admin check`: passes on a fresh CA and after issue,
# revoke, hold, unhold, a reissue and renewals of micad's own OCSP signer
# and TLS certificate; fails naming the problem when the
# store is tampered with offline (audit record edited, certificate status
# flipped without a revocation event, open-request and compromised-key index
# entries that name the wrong request or certificate) using mdb_dump/mdb_load.
. "$(dirname "$0")/lib.sh"

mica_init "$T/ca" || { not_ok "mica-admin init"; done_testing; }
conf_set "$CONF" review auto
start_micad || { not_ok "micad starts"; done_testing; }
CA=$T/ca/ca.crt
STORE=$T/ca/store
PW=$T/pw
echo 'correct-horse-battery' >"$PW"

# counts LINE: "good a hold b revoked c" from check's summary line.
counts() {
	printf '%s\n' "$OUT" | sed -n \
	    's/^certificates: [0-9]* (good \([0-9]*\), hold \([0-9]*\), revoked \([0-9]*\)).*/good \1 hold \2 revoked \3/p'
}
field() {
	printf '%s\n' "$OUT" | tr ';' '\n' | sed -n "s/^ *$1: \\([0-9]*\\).*/\\1/p"
}

# ---- fresh CA ----
expect_exit 0 "check passes on a fresh CA" admin check
expect_out "summary line" "ocsp answers checked: "
expect_out "consistent" "consistent: store, OCSP and CRLs"
BASE=$(field certificates)
expect_eq "fresh CA: everything good" "$(counts)" "good $BASE hold 0 revoked 0"
expect_eq "fresh CA: one OCSP answer per certificate" \
    "$(field 'ocsp answers checked')" "$BASE"
expect_eq "fresh CA: no CRL entries" "$(field 'crl entries checked')" 0
expect_eq "fresh CA: no links" "$(field 'links checked')" 0

# ---- issue, revoke, hold, unhold ----
admin account add alice --subject "/CN=alice/O=Org" --password-file "$PW" \
    >"$T/alice.add" 2>&1 || not_ok "account add alice"
sed -n 's/^totp secret[^:]*: //p' "$T/alice.add" >"$T/alice.secret"
make_csr "$T/alice.key" "$T/alice.csr" "/CN=alice/O=Org"
for i in 1 2 3 4; do
	admin issue --account alice --csr "$T/alice.csr" \
	    --out "$T/a$i.crt" >/dev/null 2>&1 || not_ok "issue $i"
done
S1=$(serial_of "$T/a1.crt"); S2=$(serial_of "$T/a2.crt")
S3=$(serial_of "$T/a3.crt")
check "revoke (keyCompromise)" admin revoke "$S1" --reason keyCompromise
check "hold" admin hold "$S2"
check "hold another" admin hold "$S3"
check "unhold it" admin unhold "$S3"
expect_exit 0 "check passes after issue/revoke/hold/unhold" admin check
expect_eq "counts after the changes" "$(counts)" \
    "good $((BASE + 2)) hold 1 revoked 1"
expect_eq "every certificate asked of OCSP" \
    "$(field 'ocsp answers checked')" "$((BASE + 4))"
expect_eq "audit records counted" "$(field 'audit records')" \
    "$(admin audit --verify | sed -n 's/^audit chain OK: \([0-9]*\) records$/\1/p')"
# The full CRL is rebuilt in the background: read status's number first,
# then the number check finds can only be the same or newer.
SNUM=$(admin status --json | sed 's/.*"crl_number": *\([0-9]*\).*/\1/')
expect_exit 0 "check passes again" admin check
NUM=$(field 'crl number')
expect_eq "crl number = status crl_number or newer delta" \
    "$( [ "$NUM" -ge "$SNUM" ] && echo yes)" yes

# ---- a reissue (auto review): a link ----
OTP=$(oathtool --totp -b "$(cat "$T/alice.secret")")
expect_exit 0 "mica reissue (auto review)" "$BIN/mica" --server \
    "127.0.0.1:$CA_PORT" --ca "$CA" reissue --account alice \
    --lost-cert "$T/a4.crt" --key "$T/new.key" --out "$T/new.crt" \
    --password-file "$PW" --otp "$OTP"
expect_exit 0 "check passes after the reissue" admin check
expect_eq "one link checked" "$(field 'links checked')" 1
# a1..a4 share alice.key: revoked for keyCompromise (a1) and lost (a4)
expect_out "compromised-key index checked: one key" \
    "compromised-key index: 1 keys, agrees with the revocations and reissues"
expect_eq "counts after the reissue" "$(counts)" \
    "good $((BASE + 2)) hold 1 revoked 2"

# ---- after a full CRL rebuild the full CRL carries the entries ----
check "full CRL rebuild" admin crl
expect_exit 0 "check passes after the full rebuild" admin check
# 3 in the full CRL, 4 in the delta: its base is still the first full
# CRL (relying parties may hold it until its nextUpdate), so it lists
# every change since (two revocations, a hold, a release)
expect_eq "seven CRL entries (full CRL 3, delta 4)" \
    "$(field 'crl entries checked')" 7

# ---- restart: state replayed from the store ----
stop_micad || not_ok "micad stops cleanly"
start_micad || { not_ok "micad restarts"; done_testing; }
expect_exit 0 "check passes after a restart" admin check

# ---- renewal of mica's own certificates: the old ones stay good ----
stop_micad
OCSP0=$(serial_of "$T/ca/ocsp.crt")
TLS0=$(serial_of "$T/ca/tls.crt")
conf_set "$CONF" renew_before_days 400
start_micad || { not_ok "micad starts and renews"; done_testing; }
check "OCSP signer and TLS certificate renewed" test \
    "$(serial_of "$T/ca/ocsp.crt")" != "$OCSP0" -a \
    "$(serial_of "$T/ca/tls.crt")" != "$TLS0"
expect_exit 0 "check passes after the renewals" admin check
expect_eq "three links checked (a reissue, two renewals)" \
    "$(field 'links checked')" 3
expect_eq "the renewed ones stay good until they expire" "$(counts)" \
    "good $((BASE + 4)) hold 1 revoked 2"
stop_micad
conf_set "$CONF" renew_before_days 0
start_micad || { not_ok "micad restarts"; done_testing; }

# ---- tamper 1: an audit record edited offline ----
stop_micad
mdb_dump -s audit "$STORE" >"$T/audit.dump" ||
    not_ok "mdb_dump audit"
# record 2's value: change the last byte of its time field (byte 8).
awk 'prev == " 0000000000000002" {
	$0 = substr($0, 1, 17) (substr($0, 18, 1) == "0" ? "1" : "0") \
	    substr($0, 19)
     }
     { prev = $0; print }' "$T/audit.dump" >"$T/audit.bad"
if cmp -s "$T/audit.dump" "$T/audit.bad"; then
	not_ok "audit dump edited"
fi
check "mdb_load the edited audit record" mdb_load -s audit \
    -f "$T/audit.bad" "$STORE"
start_micad || { not_ok "micad starts on the tampered store"; done_testing; }
expect_exit 1 "check fails on a tampered audit record" admin check
expect_out "names the audit problem and record" \
    "mica-admin: check: audit chain broken at record 2"
expect_exit 1 "audit --verify agrees" admin audit --verify

# put it back: the check passes again
stop_micad
check "mdb_load the original audit record" mdb_load -s audit \
    -f "$T/audit.dump" "$STORE"
start_micad || { not_ok "micad restarts"; done_testing; }
expect_exit 0 "check passes with the audit restored" admin check

# ---- tamper 2: a good certificate flipped to revoked without an event ----
S5=$(serial_of "$T/new.crt")
KEY=$(printf '%032s' "$S5" | tr ' ' 0 | tr 'A-F' 'a-f')
stop_micad
mdb_dump -s certs "$STORE" >"$T/certs.dump" || not_ok "mdb_dump certs"
awk -v key=" $KEY" 'prev == key { $0 = substr($0, 1, 3) "02" substr($0, 6) }
     { prev = $0; print }' "$T/certs.dump" >"$T/certs.bad"
if cmp -s "$T/certs.dump" "$T/certs.bad"; then
	not_ok "certs dump edited (key $KEY)"
fi
check "mdb_load the edited certificate" mdb_load -s certs \
    -f "$T/certs.bad" "$STORE"
start_micad || { not_ok "micad starts on the tampered store"; done_testing; }
expect_exit 1 "check fails on a status changed behind the CRLs' back" \
    admin check
expect_out "names the serial and the CRL disagreement" \
    "serial $S5: revoked in the store but not listed by the CRLs"
stop_micad

# ---- tamper 4: a compromised-key entry naming a certificate of another key ----
check "mdb_load the original certificate" mdb_load -s certs \
    -f "$T/certs.dump" "$STORE"
mdb_dump -s bad_keys "$STORE" >"$T/badkeys.dump" || not_ok "mdb_dump bad_keys"
# key: 32 bytes 0xab; value: version 1, serial S5, why 1, when 0
awk -v key=" $(printf 'ab%.0s' $(seq 32))" -v val=" 01${KEY}010000000000000000" \
    '/^DATA=END/ { print key; print val } { print }' \
    "$T/badkeys.dump" >"$T/badkeys.bad"
check "mdb_load a wrong compromised-key entry" mdb_load -s bad_keys \
    -f "$T/badkeys.bad" "$STORE"
start_micad || { not_ok "micad starts on the tampered key index"; done_testing; }
expect_exit 1 "check fails on a wrong compromised-key index" admin check
expect_out "names the key index problem" \
    "mica-admin: check: compromised-key index: entry ABABABABABABABAB... names certificate $S5, whose key is another"
stop_micad

# ---- tamper 3 (the key index still tampered: checked after it): the open-request index names a request that is not there ----
mdb_dump -s open_requests "$STORE" >"$T/openreq.dump" ||
    not_ok "mdb_dump open_requests"
awk -v key=" $KEY" '/^DATA=END/ { print key; print " 00000000000003e7" }
     { print }' "$T/openreq.dump" >"$T/openreq.bad"
check "mdb_load an index entry for request 999" mdb_load -s open_requests \
    -f "$T/openreq.bad" "$STORE"
start_micad || { not_ok "micad starts on the tampered index"; done_testing; }
expect_exit 1 "check fails on a wrong open-request index" admin check
expect_out "names the index problem" "open request index: "
stop_micad

done_testing
