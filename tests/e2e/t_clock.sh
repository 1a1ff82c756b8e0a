#!/bin/sh
# t_clock.sh - mica's own certificates and the clock, with libfaketime
# (Debian faketime).  One micad runs under libfaketimeMT with its offset in
# a timestamp file re-read at every call (FAKETIME_NO_CACHE), so the clock
# of the running process jumps forward and back without a restart.
# CLOCK_MONOTONIC is left real (FAKETIME_DONT_FAKE_MONOTONIC): libevent's
# timers keep real time, only the wall clock jumps.
#   A. +400 days (past the OCSP/TLS certificates' 365 days, inside the
#      CA's 3650): every OCSP answer (nonce and cached) verifies at that
#      time or is tryLater, never signed by an expired signer; micad
#      renews both without help; TLS handshakes verify at that time.
#   B. back to real time: the certificates made at +400 days are not yet
#      valid; the first TLS handshake fails and kicks the renewal, then
#      TLS and OCSP (nonce and cached) verify with real-time openssl,
#      without a restart.
#   C. +340 days (25 days left, due): renewed while running; mica-admin
#      check passes with every renewal link.
#   D. restart at real time: renewed at start, OCSP and TLS verify.
#   E. a clock a day before the CA's notBefore: logged and shown in
#      status, nothing renewed, OCSP answers tryLater (the signer is not
#      yet valid).
. "$(dirname "$0")/lib.sh"

FT_LIB=$(dpkg -L libfaketime 2>/dev/null | grep '/libfaketimeMT\.so\.1$' |
    head -n 1)
if [ -z "$FT_LIB" ] || [ ! -r "$FT_LIB" ] || ! command -v faketime \
    >/dev/null 2>&1; then
	echo "ok - # SKIP libfaketime (Debian faketime) is not installed"
	done_testing
fi

mica_init "$T/ca" || { not_ok "mica-admin init"; done_testing; }
CA=$T/ca/ca.crt
CLK=$T/clock
echo "+0" >"$CLK"
# A and B: no timer renews (the hourly check ran at start); only the
# OCSP responder's kick (A) or the TLS listener's (B) does, so the first
# answer (or handshake) after a jump fails in a known way.
conf_set "$CONF" expiry_interval 3600

# start_faked: start_micad with the wall clock read from $CLK.  ASan wants
# to be first in the library list; libfaketime is preloaded before it.
start_faked() {
	export LD_PRELOAD="$FT_LIB" FAKETIME_TIMESTAMP_FILE="$CLK" \
	    FAKETIME_NO_CACHE=1 FAKETIME_DONT_FAKE_MONOTONIC=1 \
	    ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
	start_micad
	rc=$?
	unset LD_PRELOAD FAKETIME_TIMESTAMP_FILE FAKETIME_NO_CACHE \
	    FAKETIME_DONT_FAKE_MONOTONIC
	return $rc
}

# at OFFSET CMD...: CMD with the wall clock at OFFSET ("+0": real time).
at() {
	off=$1; shift
	if [ "$off" = "+0" ]; then
		"$@"
	else
		faketime -f "$off" "$@"
	fi
}

# ocsp_ask OFFSET FILE [openssl ocsp options]: asks for alice's status
# (with a nonce unless -no_nonce) and verifies the answer at OFFSET:
# signature, signer chain and times, nonce; answer in FILE, the output of
# openssl in FILE.txt.
ocsp_ask() {
	off=$1; f=$2; shift 2
	rm -f "$f"
	at "$off" openssl ocsp -issuer "$CA" -cert "$T/alice.crt" \
	    -url "$URL/ocsp" -CAfile "$CA" -respout "$f" "$@" >"$f.txt" 2>&1
	[ -s "$f" ]
}

# verdict FILE: "trylater", "verified" (ocsp_ask's verification passed
# and alice is good) or "BAD".
verdict() {
	if openssl ocsp -respin "$1" -resp_text -noverify 2>&1 |
	    grep -q 'Responder Error: trylater'; then
		echo trylater
	elif grep -q '^Response verify OK' "$1.txt" &&
	    grep -q ': good$' "$1.txt"; then
		echo verified
	else
		echo BAD
	fi
}

# until_verified OFFSET LABEL [options]: asks until an answer verifies at
# OFFSET (bounded: 30 s); every answer before must be tryLater.  Sets
# SEEN to the verdicts seen, in order, without repeats.
until_verified() {
	off=$1; label=$2; shift 2
	SEEN=""
	i=0
	while [ $i -lt 300 ]; do
		v=BAD
		ocsp_ask "$off" "$T/$label.der" "$@" &&
		    v=$(verdict "$T/$label.der")
		case " $SEEN " in
		*" $v ") ;;
		*) SEEN="${SEEN:+$SEEN }$v" ;;
		esac
		[ "$v" = verified ] && break
		[ "$v" = BAD ] && break
		sleep 0.1
		i=$((i + 1))
	done
}

# tls_ok OFFSET: a handshake to the CA port verifies at OFFSET.
tls_ok() {
	at "$1" openssl s_client -connect "127.0.0.1:$CA_PORT" \
	    -verify_return_error -CAfile "$CA" </dev/null >/dev/null 2>&1
}

# until_tls OFFSET: polls (bounded: 30 s) for a verifying handshake.
until_tls() {
	i=0
	while [ $i -lt 300 ]; do
		tls_ok "$1" && return 0
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}

# start_of CERT: notBefore, unix seconds.
start_of() {
	date -d "$(openssl x509 -in "$1" -noout -startdate | cut -d= -f2)" +%s
}

# links: the "links checked" number of the last expect_exit's output.
links() {
	printf '%s\n' "$OUT" | tr ';' '\n' |
	    sed -n 's/^ *links checked: \([0-9]*\).*/\1/p'
}

start_faked || { not_ok "micad starts under libfaketime"; done_testing; }
PW=$T/pw
echo 'correct-horse-battery' >"$PW"
admin account add alice --subject "/CN=alice/O=Org" --password-file "$PW" \
    >/dev/null 2>&1 || not_ok "account add alice"
make_csr "$T/alice.key" "$T/alice.csr" "/CN=alice/O=Org"
admin issue --account alice --csr "$T/alice.csr" --days 3000 \
    --out "$T/alice.crt" >/dev/null 2>&1 || not_ok "issue alice"
O0=$(serial_of "$T/ca/ocsp.crt")
T0=$(serial_of "$T/ca/tls.crt")
until_verified +0 r0 -no_nonce
expect_eq "real time: a cacheable answer verifies" "$SEEN" verified
check "real time: TLS verifies" tls_ok +0

# ---- A: +400 days, past the OCSP/TLS certificates' lifetime ----
echo "+400d" >"$CLK"
until_verified +400d a-nonce
expect_eq "+400d: nonce answers are tryLater until renewed, then verify" \
    "$SEEN" "trylater verified"
O1=$(serial_of "$T/ca/ocsp.crt")
check "+400d: the OCSP signer was renewed" test "$O1" != "$O0"
check "+400d: tryLater logged with the expired signer" grep -q \
    "ocsp: the signer certificate is expired.*answering tryLater" \
    "$T/micad.log"
until_verified +400d a-cache1 -no_nonce
expect_eq "+400d: a cacheable answer verifies" "$SEEN" verified
until_verified +400d a-cache2 -no_nonce
expect_eq "+400d: the cached answer verifies" "$SEEN" verified
check "+400d: and it is the same answer (from the cache)" \
    cmp "$T/a-cache1.der" "$T/a-cache2.der"
check "+400d: TLS verifies at +400d once renewed" until_tls +400d
T1=$(serial_of "$T/ca/tls.crt")
check "+400d: the TLS certificate was renewed" test "$T1" != "$T0"
check "+400d: the renewal's notBefore is +400d - 60 s, not earlier" \
    test "$(start_of "$T/ca/ocsp.crt")" -gt "$(date -d '+399 days' +%s)"

# ---- B: back to real time, no restart ----
echo "+0" >"$CLK"
check "real time again: the +400d signer is not yet valid" \
    test "$(start_of "$T/ca/ocsp.crt")" -gt "$(date +%s)"
# This time a TLS client comes first: its failed handshake kicks the
# renewal (of both), no OCSP request is needed.
check "back: a TLS handshake fails at first (not yet valid)" sh -c \
    "! openssl s_client -connect 127.0.0.1:$CA_PORT -verify_return_error \
    -CAfile '$CA' </dev/null >'$T/b-tls.txt' 2>&1"
check "back: ... certificate is not yet valid" grep -q \
    "certificate is not yet valid" "$T/b-tls.txt"
check "back: TLS verifies with real-time openssl (no restart)" \
    until_tls +0
check "back: the accept kicked the renewal" grep -q \
    "ca protocol: the TLS certificate .* is not yet valid: clients refuse it; renewing" \
    "$T/micad.log"
check "back: the TLS certificate was renewed again" \
    test "$(serial_of "$T/ca/tls.crt")" != "$T1"
until_verified +0 b-cache1 -no_nonce
expect_eq "back: cacheable answers verify with real-time openssl" \
    "$SEEN" verified
until_verified +0 b-nonce
expect_eq "back: nonce answers verify" "$SEEN" verified
until_verified +0 b-cache2 -no_nonce
expect_eq "back: cached answers verify" "$SEEN" verified
check "back: and it is the same answer (from the cache)" \
    cmp "$T/b-cache1.der" "$T/b-cache2.der"
O2=$(serial_of "$T/ca/ocsp.crt")
check "back: the OCSP signer was renewed again" test "$O2" != "$O1"
expect_exit 0 "back: mica-admin check passes after the renewals" \
    admin check
expect_eq "back: four renewal links checked" "$(links)" 4
expect_exit 0 "status names the CA certificate valid" admin status
expect_out "CA validity line" "ca certificate: valid until "

# ---- C: +340 days, 25 days left: renewed while running ----
stop_micad
conf_set "$CONF" expiry_interval 10
start_faked || not_ok "micad starts with a renewal check every 10 s"
echo "+340d" >"$CLK"
i=0
while [ "$(serial_of "$T/ca/ocsp.crt")" = "$O2" ] && [ $i -lt 300 ]; do
	sleep 0.1
	i=$((i + 1))
done
check "+340d: the OCSP signer renewed by the expiry check" \
    test "$(serial_of "$T/ca/ocsp.crt")" != "$O2"
check "+340d: TLS verifies at +340d" until_tls +340d
expect_exit 0 "+340d: mica-admin check passes after the renewal" \
    admin check
expect_eq "+340d: six renewal links checked" "$(links)" 6
until_verified +340d c-nonce
expect_eq "+340d: OCSP answers verify" "$SEEN" verified
echo "+0" >"$CLK"
stop_micad

# ---- D: restart at real time: renewed before the listeners ----
O3=$(serial_of "$T/ca/ocsp.crt")
start_faked || not_ok "micad restarts at real time"
check "restart: the not-yet-valid OCSP signer was renewed at start" \
    test "$(serial_of "$T/ca/ocsp.crt")" != "$O3"
check "restart: TLS verifies with real-time openssl" tls_ok +0
until_verified +0 d-nonce
expect_eq "restart: the first OCSP answer verifies" "$SEEN" verified
expect_exit 0 "restart: mica-admin check passes" admin check
expect_eq "restart: eight renewal links checked" "$(links)" 8
stop_micad || not_ok "micad stops cleanly"

# ---- E: a clock before the CA's notBefore: said loudly, no renewal ----
echo "-1d" >"$CLK"
O4=$(serial_of "$T/ca/ocsp.crt")
start_faked || not_ok "micad starts with the clock a day early"
check "E: the log says the CA certificate is not valid yet" grep -q \
    "the CA certificate .* is NOT VALID YET" "$T/micad.log"
expect_exit 0 "E: status" admin status
expect_out "E: status says the CA certificate is not valid now" \
    "ca certificate: NOT VALID NOW (not yet valid;"
expect_eq "E: nothing renewed while the CA is not valid" \
    "$(serial_of "$T/ca/ocsp.crt")" "$O4"
ocsp_ask -1d "$T/e.der" -no_nonce
expect_eq "E: OCSP answers tryLater (the signer is not valid yet)" \
    "$(verdict "$T/e.der")" trylater
echo "+0" >"$CLK"
stop_micad || not_ok "micad stops cleanly"

done_testing
