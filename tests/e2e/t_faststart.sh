#!/bin/sh
# Back in service at once: micad serves OCSP before the argon2id dummy
# hash (for unknown accounts) is made; that hash is made on a worker and
# LOGINs wait in the login queue for it, so a LOGIN arriving early gets
# the same answer as later (a known account logs in, an unknown one gets
# the same error).  A clean stop loses nothing acknowledged: a revocation
# acknowledged just before SIGTERM is in force after the restart.
# Behaviour only; the timings are in `make bench-start`.
. "$(dirname "$0")/lib.sh"

mica_init "$T/ca" || { not_ok "mica-admin init"; done_testing; }
D=$T/ca
conf_set "$CONF" log_level debug
start_micad || { not_ok "micad starts"; done_testing; }
PW='correct-horse-battery'
printf '%s\n' "$PW" >"$T/pw"
admin account add alice --subject "/CN=alice/O=Org" \
    --password-file "$T/pw" >"$T/alice.add" 2>&1 || not_ok "account add alice"
sed -n 's/^totp secret[^:]*: //p' "$T/alice.add" >"$T/alice.secret"
make_csr "$T/l1.key" "$T/l1.csr" "/CN=alice/O=Org"
make_csr "$T/l2.key" "$T/l2.csr" "/CN=alice/O=Org"
expect_exit 0 "issue l1" admin issue --account alice --csr "$T/l1.csr" \
    --days 30 --out "$T/l1.crt"
expect_exit 0 "issue l2" admin issue --account alice --csr "$T/l2.csr" \
    --days 30 --out "$T/l2.crt"
LOGIN="python3 $(dirname "$0")/mica_login.py $D/ca.crt $CA_PORT"
otp() { oathtool --totp -b "$(cat "$T/alice.secret")"; }
# the unknown account's answer with a dummy made long ago
UNKNOWN_BEFORE=$($LOGIN 1 nobody "$PW" 123456 2>&1 | head -n 1)
expect_eq "unknown account refused" \
    "$(printf %s "$UNKNOWN_BEFORE" | cut -c1-5)" "error"

# ---- a revocation acknowledged just before SIGTERM ----
S2=$(serial_of "$T/l2.crt")
expect_exit 0 "revoke l2 (acknowledged)" admin revoke "$S2" \
    --reason keyCompromise
kill -TERM "$MICAD_PID"
wait "$MICAD_PID"
expect_eq "micad stops cleanly right after the acknowledged revoke" "$?" 0
MICAD_PID=""

# ---- a restart with a dummy hash that takes long to make ----
# (the account's own hash stays cheap: it was made at the old cost)
conf_set "$CONF" argon2_opslimit 12
conf_set "$CONF" argon2_memlimit 256M
: >"$T/micad.log"
"$BIN/micad" -c "$CONF" >>"$T/micad.log" 2>&1 &
MICAD_PID=$!
# poll for the first OCSP answer (bounded)
i=0
while [ $i -lt 500 ]; do
	openssl ocsp -issuer "$D/ca.crt" -CAfile "$D/ca.crt" \
	    -url "$URL/ocsp" -cert "$T/l1.crt" >"$T/first.out" 2>&1 &&
	    break
	kill -0 "$MICAD_PID" 2>/dev/null || break
	sleep 0.02
	i=$((i + 1))
done
check "OCSP answers after the restart" grep -q "l1.crt: good" "$T/first.out"
# the answer came while the dummy hash was still being made
check "OCSP answered before the dummy hash was made" \
    sh -c "! grep -q 'argon2id dummy hash made' '$T/micad.log'"
expect_exit 0 "the revocation acknowledged before SIGTERM survived" \
    openssl ocsp -issuer "$D/ca.crt" -CAfile "$D/ca.crt" \
    -url "$URL/ocsp" -cert "$T/l2.crt"
expect_out "l2 is revoked" "l2.crt: revoked"

# a LOGIN now waits for the dummy, then is answered as always
GOT=$($LOGIN 1 alice "$PW" "$(otp)" 2>&1 | head -n 1)
expect_eq "known account logs in (it waited for the dummy)" "$GOT" ok
check "the dummy hash was made before that LOGIN was answered" \
    grep -q "argon2id dummy hash made in .* ms; LOGINs are served" \
    "$T/micad.log"
GOT=$($LOGIN 1 nobody "$PW" 123456 2>&1 | head -n 1)
expect_eq "unknown account gets the same answer as before" "$GOT" \
    "$UNKNOWN_BEFORE"
check "and was verified against the dummy" \
    grep -q "argon2id verified against=dummy" "$T/micad.log"
stop_micad
expect_eq "micad stops" "$?" 0
done_testing
