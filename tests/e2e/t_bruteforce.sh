#!/bin/sh
# t_bruteforce.sh - password guessing against the CA protocol under
# concurrency: the lock-out cannot be outrun by parallel attempts (the
# check and the counter live in one write transaction), a locked account
# refuses even the right password and a fresh code, a TOTP code is
# accepted at most once even by simultaneous logins, and an unknown
# account costs an argon2id verification (of the dummy hash) like a known
# one.  Timing is printed, never asserted: the dummy verification is
# checked structurally in micad's debug log.
. "$(dirname "$0")/lib.sh"

mica_init "$T/ca" || { not_ok "mica-admin init"; done_testing; }
# default-ish argon2id cost, so the timing comparison means something
conf_set "$CONF" argon2_opslimit 2
conf_set "$CONF" argon2_memlimit 32M
conf_set "$CONF" max_failures 5
conf_set "$CONF" lockout_seconds 900
conf_set "$CONF" log_level debug
start_micad || { not_ok "micad starts"; done_testing; }
CA=$T/ca/ca.crt
PW='correct-horse-battery'
BADPW='wrong-horse-battery'
printf '%s\n' "$PW" >"$T/pw"
LOGIN="python3 $(dirname "$0")/mica_login.py $CA $CA_PORT"
NKNOWN=0	# logins of existing accounts (argon2id against=account)

enroll() {
	admin account add "$1" --subject "/CN=$1/O=Org" \
	    --password-file "$T/pw" >"$T/$1.add" 2>&1 || return 1
	sed -n 's/^totp secret[^:]*: //p' "$T/$1.add" >"$T/$1.secret"
	test -s "$T/$1.secret"
}
otp() { oathtool --totp -b "$(cat "$T/$1.secret")"; }
# count WORD: lines of $OUT equal to WORD
count() { printf '%s\n' "$OUT" | grep -c "^$1\$"; }
acct_line() { admin account list | grep "^$1 "; }

# ---- 20 concurrent wrong passwords, max_failures 5 ----
check "enroll victim" enroll victim
C=$(otp victim)
set --
i=0
while [ $i -lt 20 ]; do set -- "$@" victim "$BADPW" "$C"; i=$((i + 1)); done
expect_exit 0 "20 concurrent wrong-password logins" timeout 120 $LOGIN 20 "$@"
NKNOWN=$((NKNOWN + 20))
echo "$OUT" | sed 's/^/# /' | sort | uniq -c
expect_eq "exactly 5 counted failures (ERROR 6)" "$(count 'error 6')" 5
expect_eq "the other 15 see the lock (ERROR 7)" "$(count 'error 7')" 15
expect_eq "no login succeeded" "$(count ok)" 0
L=$(acct_line victim)
echo "# $L"
expect_eq "account locked" "$(echo "$L" | awk '{print $2}')" locked
expect_eq "failed counter == 5, not more" \
    "$(echo "$L" | sed -n 's/.*failed=\([0-9]*\).*/\1/p')" 5

# the right password and a fresh code during the lock: refused, also in
# parallel
C=$(otp victim)
set --
i=0
while [ $i -lt 10 ]; do set -- "$@" victim "$PW" "$C"; i=$((i + 1)); done
expect_exit 0 "10 concurrent right-password logins while locked" \
    timeout 120 $LOGIN 10 "$@"
NKNOWN=$((NKNOWN + 10))
expect_eq "all 10 refused as locked" "$(count 'error 7')" 10
expect_exit 0 "one more right-password login" timeout 60 $LOGIN 1 \
    victim "$PW" "$(otp victim)"
NKNOWN=$((NKNOWN + 1))
expect_eq "still locked" "$OUT" "error 7
mean_ms $(echo "$OUT" | sed -n 's/^mean_ms //p')"
expect_eq "failed counter still 5" \
    "$(acct_line victim | sed -n 's/.*failed=\([0-9]*\).*/\1/p')" 5
expect_eq "no successful login in micad's log" \
    "$(grep -c 'login account=victim result=ok' "$T/micad.log")" 0
expect_exit 0 "audit trail" admin audit
expect_eq "audit: no auth.login for victim" \
    "$(printf '%s\n' "$OUT" | grep 'auth.login' | grep -c victim)" 0
expect_exit 0 "admin unlocks victim" admin account unlock victim
expect_exit 0 "login after unlock" timeout 60 $LOGIN 1 victim "$PW" \
    "$(otp victim)"
NKNOWN=$((NKNOWN + 1))
expect_eq "unlocked: right password works" "$(count ok)" 1
expect_exit 0 "audit trail after the login" admin audit
expect_eq "audit: exactly one auth.login for victim now" \
    "$(printf '%s\n' "$OUT" | grep 'auth.login' | grep -c victim)" 1

# ---- the same TOTP code in simultaneous logins ----
check "enroll twin" enroll twin
C=$(otp twin)
expect_exit 0 "2 simultaneous logins with one code" timeout 60 $LOGIN 2 \
    twin "$PW" "$C"
NKNOWN=$((NKNOWN + 2))
expect_eq "exactly one succeeds" "$(count ok)" 1
expect_eq "the other is refused (replay, ERROR 6)" "$(count 'error 6')" 1
check "enroll quad" enroll quad
C=$(otp quad)
expect_exit 0 "4 simultaneous logins with one code" timeout 60 $LOGIN 4 \
    quad "$PW" "$C"
NKNOWN=$((NKNOWN + 4))
expect_eq "4-way: exactly one succeeds" "$(count ok)" 1
expect_eq "4-way: three replays refused" "$(count 'error 6')" 3
check "micad logged the replays" grep -q \
    'login account=quad result=refused detail="replayed code"' "$T/micad.log"

# ---- unknown accounts cost the same argon2id work ----
# 4 known accounts x 5 wrong passwords (the 5th locks, still ERROR 6)
set --
for a in k1 k2 k3 k4; do
	check "enroll $a" enroll $a
	set -- "$@" $a "$BADPW" 123456
done
expect_exit 0 "20 sequential wrong-password logins, known accounts" \
    timeout 120 $LOGIN -20 "$@"
NKNOWN=$((NKNOWN + 20))
expect_eq "known: 20 x ERROR 6" "$(count 'error 6')" 20
KNOWN_MS=$(echo "$OUT" | sed -n 's/^mean_ms //p')
expect_exit 0 "20 sequential logins, unknown account" timeout 120 \
    $LOGIN -20 nobody-here "$BADPW" 123456
expect_eq "unknown: 20 x ERROR 6 (same answer)" "$(count 'error 6')" 20
UNKNOWN_MS=$(echo "$OUT" | sed -n 's/^mean_ms //p')
echo "# mean login time: known account ${KNOWN_MS} ms, unknown account" \
    "${UNKNOWN_MS} ms, ratio unknown/known" \
    "$(echo "$UNKNOWN_MS $KNOWN_MS" | awk '{ printf "%.2f", $1 / $2 }')"
# structural: every unknown-account login verified the dummy hash, every
# known-account login the account's hash
sleep 0.2
expect_eq "dummy hash verified once per unknown-account login" \
    "$(grep -c 'argon2id verified against=dummy' "$T/micad.log")" 20
expect_eq "account hash verified once per known-account login" \
    "$(grep -c 'argon2id verified against=account' "$T/micad.log")" \
    "$NKNOWN"
expect_eq "unknown account refused 20 times in the log" \
    "$(grep -c 'login account=nobody-here result=refused detail="unknown account"' "$T/micad.log")" 20

stop_micad
expect_eq "micad stops cleanly" "$?" 0
done_testing
