#!/bin/sh
# Back in service at once: micad serves OCSP before the argon2id dummy
# hash (for unknown accounts) is made; that hash is made by a child
# process and LOGINs wait in the login queue for it, so a LOGIN arriving
# early gets the same answer as later (a known account logs in, an
# unknown one gets the same error).  The CRLs published last before a
# stop are served after the restart until the first build (never an
# older one).  A clean stop loses nothing acknowledged: a revocation
# acknowledged just before SIGTERM is in force after the restart, also
# when the stop comes while the dummy hash is still being made (the
# child is killed, not waited for).  A SIGTERM right after the first
# OCSP answer at a store of 100,000 revocations (the first CRL build
# reads them all) exits 0 at once, and the next start serves a full CRL
# listing every revocation, numbered above all published before.  With
# no CRL kept (removed) and 10^6 revocations, a CRL GET during the first
# build is answered 503 with Retry-After at once, and an OCSP request on
# the same HTTP thread is answered while the CRL is not ready yet.
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

# crlnum FILE.pem: the CRL number (decimal)
crlnum() {
	openssl crl -in "$1" -noout -crlnumber | sed 's/^crlNumber=//' |
	    tr -d '\n' | { read -r h; printf '%d' "$h"; }
}

# ---- a revocation acknowledged just before SIGTERM ----
S2=$(serial_of "$T/l2.crt")
expect_exit 0 "revoke l2 (acknowledged)" admin revoke "$S2" \
    --reason keyCompromise
# the CRLs published last before the stop
curl -sf "$URL/crl/full.crl.pem" >"$T/full1.pem" &&
    curl -sf "$URL/crl/delta.crl.pem" >"$T/delta1.pem" ||
    not_ok "GET the CRLs before the stop"
FULL1=$(crlnum "$T/full1.pem")
DELTA1=$(crlnum "$T/delta1.pem")
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

# the CRLs: the ones published last before the stop were current and the
# last the signer signed, so they were served until the first build;
# a relying party never gets an older one, and l2 is in them
check "the full CRL published before was served at start" \
    grep -q "crl: serving the full CRL number $FULL1 published before" \
    "$T/micad.log"
check "the delta CRL published before was served at start" \
    grep -q "crl: serving the delta CRL number $DELTA1 published before" \
    "$T/micad.log"
curl -sf "$URL/crl/full.crl.pem" >"$T/full2.pem" &&
    curl -sf "$URL/crl/delta.crl.pem" >"$T/delta2.pem" ||
    not_ok "GET the CRLs after the restart"
check "full CRL after the restart: not older than before the stop" \
    test "$(crlnum "$T/full2.pem")" -ge "$FULL1"
check "delta CRL after the restart: not older than before the stop" \
    test "$(crlnum "$T/delta2.pem")" -ge "$DELTA1"
check "l2 is in the delta CRL served after the restart" sh -c \
    "openssl crl -in '$T/delta2.pem' -noout -text | grep -q 'Serial Number: $S2'"
check "signed by the CA" openssl crl -in "$T/delta2.pem" -noout \
    -CAfile "$D/ca.crt"

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

# ---- a stop while the dummy hash is being made ----
# (a cost that takes seconds; the stop does not wait for it: the child
# making it is killed; nothing acknowledged is lost)
conf_set "$CONF" argon2_opslimit 100
mv "$T/micad.log" "$T/micad.log.2"
start_micad || not_ok "micad starts again"
expect_exit 0 "revoke l1 (acknowledged)" admin revoke "$(serial_of "$T/l1.crt")" \
    --reason superseded
P=$MICAD_PID
stop_micad
expect_eq "micad stops while the dummy hash is being made" "$?" 0
check "the dummy hash was not waited for" grep -q \
    "1 argon2id dummy hash(es) still being made at stop: not waited for" \
    "$T/micad.log"
check "no dummy hash child left" sh -c \
    "! pgrep -f 'argon2-dummy .* $P\$' >/dev/null"
start_micad || not_ok "micad starts after that stop"
expect_exit 0 "the revocation before that stop survived" \
    openssl ocsp -issuer "$D/ca.crt" -CAfile "$D/ca.crt" \
    -url "$URL/ocsp" -cert "$T/l1.crt"
expect_out "l1 is revoked" "l1.crt: revoked"
stop_micad
expect_eq "micad stops" "$?" 0

# ---- SIGTERM during the first CRL build at a large store ----
# 100,000 revocations filled offline: the first build at the next start
# reads every one.  A SIGTERM as soon as the first OCSP answer came
# (while that build runs, or before it began) ends micad cleanly (exit
# 0) without a CRL number taken for a CRL never published; the next
# start serves a full CRL listing every revocation, numbered above every
# one published before.  (Outcomes only: whether the stop came during
# the build is printed, not asserted.)
FILL=${MICA_BUILD:-$TOP/build}/tests/fill_store
NFILL=100000
# under valgrind (make check-valgrind) the first build is far slower
[ -n "${MICA_VALGRIND:-}" ] && NFILL=20000
crlnum_der() {
	openssl crl -inform DER -in "$1" -noout -crlnumber |
	    sed 's/^crlNumber=//' | tr -d '\n' | { read -r h; printf '%d' "$h"; }
}
LASTFULL=$(crlnum_der "$D/private/last-full.crl")
check "a full CRL was kept at the last stop" test "$LASTFULL" -ge 1
conf_set "$CONF" argon2_opslimit 3
if [ ! -x "$FILL" ]; then
	not_ok "fill_store helper missing: make tests"
	done_testing
fi
expect_exit 0 "fill the store with $NFILL revoked certificates" \
    "$FILL" -d "$D/store" -c "$D/ca.crt" -n $NFILL -r 1 -s 64
mv "$T/micad.log" "$T/micad.log.3"
"$BIN/micad" -c "$CONF" >>"$T/micad.log" 2>&1 &
MICAD_PID=$!
i=0
while [ $i -lt 500 ]; do
	openssl ocsp -issuer "$D/ca.crt" -CAfile "$D/ca.crt" \
	    -url "$URL/ocsp" -cert "$T/l2.crt" >"$T/first3.out" 2>&1 && break
	kill -0 "$MICAD_PID" 2>/dev/null || break
	sleep 0.02
	i=$((i + 1))
done
kill -TERM "$MICAD_PID"
wait "$MICAD_PID"
expect_eq "SIGTERM right after the first answer at a large store: exit 0" \
    "$?" 0
MICAD_PID=""
check "that start answered OCSP (l2 revoked)" grep -q "l2.crt: revoked" \
    "$T/first3.out"
check "and stopped cleanly" grep -q "micad: info: stopped" "$T/micad.log"
if grep -q "crl: the first build was given up at stop" "$T/micad.log"; then
	echo "# the stop came during the first build's read of the revocations"
elif grep -q "crl: full number=" "$T/micad.log"; then
	echo "# the first build had finished before the stop"
else
	echo "# the stop came before or after the read of the revocations"
fi
# the numbers that run published (if any)
RUNMAX=$(sed -n 's/.*crl: \(full\|delta\) number=\([0-9]*\).*/\2/p' \
    "$T/micad.log" | sort -n | tail -n 1)
RUNMAX=${RUNMAX:-0}
mv "$T/micad.log" "$T/micad.log.4"
start_micad || not_ok "micad starts after the stop during the first build"
i=0
while [ $i -lt 600 ] && ! grep -q "crl: full number=" "$T/micad.log"; do
	sleep 0.1
	i=$((i + 1))
done
check "the next start made its first full CRL" \
    grep -q "crl: full number=.* entries=$((NFILL + 2))\$" "$T/micad.log"
curl -sf "$URL/crl/full.crl" >"$T/full5.crl" || not_ok "GET the full CRL"
N5=$(crlnum_der "$T/full5.crl")
check "its number is above the one kept before ($N5 > $LASTFULL)" \
    test "$N5" -gt "$LASTFULL"
check "and above every one the stopped run published ($N5 > $RUNMAX)" \
    test "$N5" -gt "$RUNMAX"
expect_eq "it lists every revocation" \
    "$(openssl crl -inform DER -in "$T/full5.crl" -noout -text |
    grep -c 'Serial Number:')" $((NFILL + 2))
check "signed by the CA" openssl crl -inform DER -in "$T/full5.crl" \
    -noout -CAfile "$D/ca.crt"
stop_micad
expect_eq "micad stops" "$?" 0

# ---- a CRL asked for during the first build, none published before ----
# (issue 15: OCSP answers at once.)  The CRLs kept at the last stop are
# removed, so until the first build (seconds at 10^6 revocations) there
# is no CRL to serve.  On the one HTTP thread a CRL GET is answered 503
# with Retry-After and no-store at once, and an OCSP request sent beside
# it is answered; the CRL asked again right after that answer is still
# 503, so the OCSP answer came before the CRL was ready (an order of
# events, no durations).  /metrics, on the same thread, answers too and
# counts every 503.  Then the CRL is served as before, with every entry.
# (also under valgrind: its micad starts HTTP later, while the build
# has begun)
NMORE=900000
NALL=$((NFILL + 2 + NMORE))
expect_exit 0 "fill the store up to $NALL revoked certificates" \
    "$FILL" -d "$D/store" -c "$D/ca.crt" -n $NMORE -r 1 -s 64
rm -f "$D/private/last-full.crl" "$D/private/last-delta.crl"
conf_set_in "$CONF" http threads 1 || not_ok "[http] threads = 1"
mv "$T/micad.log" "$T/micad.log.5"
"$BIN/micad" -c "$CONF" >>"$T/micad.log" 2>&1 &
MICAD_PID=$!
# crl_get NAME: GET the full CRL (headers NAME.h, body NAME.crl); prints
# the status (000: no answer)
crl_get() {
	curl -s -D "$T/$1.h" -o "$T/$1.crl" -w '%{http_code}' \
	    "$URL/crl/full.crl"
}
# hdr NAME FIELD: the value of a response header field
hdr() {
	sed -n "s/^$2: *//ip" "$T/$1.h" | tr -d '\r'
}
# notready FILE: mica_crl_not_ready_total in a /metrics answer
notready() {
	sed -n 's/^mica_crl_not_ready_total \([0-9]*\)$/\1/p' "$1"
}
i=0
C1=000
while [ $i -lt 1500 ]; do
	C1=$(crl_get c1)
	[ "$C1" != 000 ] && break
	kill -0 "$MICAD_PID" 2>/dev/null || break
	sleep 0.02
	i=$((i + 1))
done
expect_eq "a CRL GET during the first build (no CRL kept): 503" "$C1" 503
expect_eq "with Retry-After: 1" "$(hdr c1 Retry-After)" 1
expect_eq "and Cache-Control: no-store" "$(hdr c1 Cache-Control)" no-store
# a CRL GET, /metrics and an OCSP request at the same time on the one
# HTTP thread, then the CRL again once both were answered
crl_get c2 >"$T/c2.code" &
CURL_PID=$!
curl -s "$URL/metrics" >"$T/metrics1" &
METRICS_PID=$!
"$BIN/mica-admin" -c "$CONF" status >"$T/status6" 2>&1 &
STATUS_PID=$!
openssl ocsp -issuer "$D/ca.crt" -CAfile "$D/ca.crt" -url "$URL/ocsp" \
    -cert "$T/l2.crt" >"$T/first6.out" 2>&1
wait "$CURL_PID"
wait "$METRICS_PID" || not_ok "GET /metrics"
wait "$STATUS_PID" || not_ok "mica-admin status during the first build"
C3=$(crl_get c3)
expect_eq "the CRL GET sent beside the OCSP request: 503" \
    "$(cat "$T/c2.code")" 503
check "OCSP answered on the same HTTP thread (l2 revoked)" \
    grep -q "l2.crt: revoked" "$T/first6.out"
expect_eq "the CRL asked right after the OCSP and /metrics answers: still \
503 (both were answered before the CRL was ready)" "$C3" 503
# (c2 may come before or after /metrics: 1 or 2 so far)
check "/metrics answered meanwhile, counting the CRL requests not ready" \
    sh -c "grep -Eq '^mica_crl_not_ready_total [12]\$' '$T/metrics1'"
expect_eq "and no CRL number yet" \
    "$(grep -c '^mica_crl_number' "$T/metrics1")" 0
# (status answered before C3 was asked: it did not wait for the build)
check "mica-admin status answered meanwhile: no CRL yet, the first build \
running" grep -q '^crl number: none yet (the first build' "$T/status6"
check "the log says CRLs wait for the first build" grep -q \
    "crl: the full CRL published before is not served .*full CRLs wait for the first build" \
    "$T/micad.log"
# then the CRL is served as before (every 503 counted)
N503=0
for c in "$C1" "$(cat "$T/c2.code")" "$C3"; do
	[ "$c" = 503 ] && N503=$((N503 + 1))
done
i=0
C5=000
while [ $i -lt 1800 ]; do
	C5=$(crl_get c5)
	[ "$C5" != 503 ] && break
	N503=$((N503 + 1))
	sleep 0.1
	i=$((i + 1))
done
expect_eq "after the first build the CRL GET succeeds" "$C5" 200
expect_eq "with no Retry-After" "$(hdr c5 Retry-After)" ""
check "and a cache lifetime" sh -c \
    "sed -n 's/^Cache-Control: //ip' '$T/c5.h' | grep -q '^max-age=[0-9]*, public'"
check "signed by the CA (openssl crl -verify)" openssl crl -inform DER \
    -in "$T/c5.crl" -noout -verify -CAfile "$D/ca.crt"
expect_eq "it lists every revocation" \
    "$(openssl crl -inform DER -in "$T/c5.crl" -noout -text |
    grep -c 'Serial Number:')" $NALL
curl -s "$URL/metrics" >"$T/metrics2" || not_ok "GET /metrics"
expect_eq "/metrics counted every 503 ($N503)" "$(notready "$T/metrics2")" \
    $N503
stop_micad
expect_eq "micad stops" "$?" 0
done_testing
