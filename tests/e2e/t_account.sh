#!/bin/sh
# t_account.sh - the subscriber looks after the account (issue 13): mica
# passwd, the password policy, mica-admin account reset + mica enroll
# (single use, expiry), disable/enable/remove, a replayed code (its own
# message, not counted), a locked account (until when, who can unlock).
# Real micad, mica and mica-admin; codes from oathtool.  Every successful
# login uses up a TOTP step, so each case has its own account.
. "$(dirname "$0")/lib.sh"

conf_put() {
	if grep -q "^$3[ 	]*=" "$1"; then
		conf_set "$1" "$3" "$4"
	else
		sed -i "/^\\[$2\\]/a $3 = $4" "$1"
	fi
}

mica_init "$T/ca" || { not_ok "mica-admin init"; done_testing; }
conf_set "$CONF" max_failures 3
conf_set "$CONF" lockout_seconds 600
EV=$T/events
printf '#!/bin/sh\ncat >>"%s"\necho >>"%s"\n' "$EV" "$EV" >"$T/notify.sh"
chmod 755 "$T/notify.sh"
conf_put "$CONF" daemon notify_command "$T/notify.sh"
start_micad || { not_ok "micad starts"; done_testing; }
MICA="$BIN/mica --server 127.0.0.1:$CA_PORT --ca $T/ca/ca.crt"
PW=$T/pw
echo 'correct-horse-battery' >"$PW"
echo 'wrong-horse-battery' >"$T/badpw"
echo 'short-pw1' >"$T/shortpw"
echo 'New-Horse-Battery-42' >"$T/newpw"

# enroll NAME: account NAME; its TOTP secret in $T/NAME.secret
enroll() {
	admin account add "$1" --subject "/CN=$1/O=Org" \
	    --password-file "$PW" >"$T/$1.add" 2>&1 || return 1
	sed -n 's/^totp secret[^:]*: //p' "$T/$1.add" >"$T/$1.secret"
}
# code NAME [STEPS]: the code of NAME's secret STEPS steps from now
code() {
	oathtool --totp -b "$(cat "$T/$1.secret")" --now "$(date -u -d \
	    "@$(( $(date +%s) + ${2:-0} * 30 ))" '+%Y-%m-%d %H:%M:%S UTC')"
}
# run CMD...: OUT = stdout+stderr, RC = exit status
run() { OUT=$("$@" 2>&1); RC=$?; }

# ---- passwd ----
enroll alice || not_ok "account add alice"
run $MICA passwd --account alice --password-file "$PW" --otp "$(code alice)" \
    --new-password-file "$T/shortpw"
expect_eq "passwd: a short password is refused" "$RC" 1
expect_eq "... with the rule" "$OUT" "mica: password refused: shorter than 12 characters ([policy] min_password_length)"

enroll accountname12 || not_ok "account add accountname12"
echo 'AccountName12' >"$T/namepw"
run $MICA passwd --account accountname12 --password-file "$PW" \
    --otp "$(code accountname12)" --new-password-file "$T/namepw"
expect_eq "passwd: the account name is refused" "$RC" 1
expect_eq "... with the rule" "$OUT" "mica: password refused: it is the account name"

enroll bob || not_ok "account add bob"
run $MICA passwd --account bob --password-file "$T/badpw" --otp "$(code bob)" \
    --new-password-file "$T/newpw"
expect_eq "passwd: a wrong current password is refused" "$RC" 1
expect_eq "... as a failed login" "$OUT" "mica: authentication failed"
run $MICA passwd --account bob --password-file "$PW" --otp "$(code bob)" \
    --new-password-file "$T/newpw"
expect_eq "passwd: changed" "$RC" 0
expect_eq "... says so" "$OUT" "password changed for account bob"
run $MICA list --account bob --password-file "$PW" --otp "$(code bob 1)"
expect_eq "the old password no longer works" "$RC" 1
run $MICA list --account bob --password-file "$T/newpw" --otp "$(code bob 1)"
expect_eq "the new password works" "$RC" 0
run $MICA passwd --account bob --otp 123456 --new-password-file "$T/newpw" \
    --password-file /nonexistent
expect_eq "passwd: unreadable password file" "$RC" 1
run $MICA passwd --otp 123456
expect_eq "passwd without --account is a usage error" "$RC" 2

# ---- a replayed code: its own message, not counted ----
enroll carol || not_ok "account add carol"
C=$(code carol)
run $MICA list --account carol --password-file "$PW" --otp "$C"
expect_eq "carol logs in" "$RC" 0
run $MICA list --account carol --password-file "$PW" --otp "$C"
expect_eq "the same code again is refused" "$RC" 1
expect_eq "... with its own message" "$OUT" "mica: code already used; wait for the next one"
run $MICA list --account carol --password-file "$PW" --otp "$C"
run $MICA list --account carol --password-file "$PW" --otp "$C"
run admin account list
expect_out "replays are not counted as failures" "$(printf 'carol                active   failed=0')"

# ---- locked: until when, and who can unlock ----
enroll dave || not_ok "account add dave"
for i in 1 2 3; do
	$MICA list --account dave --password-file "$T/badpw" \
	    --otp "$(code dave)" >/dev/null 2>&1
done
run $MICA list --account dave --password-file "$PW" --otp "$(code dave)"
expect_eq "a locked account is refused" "$RC" 1
case $OUT in
"mica: account locked until "[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]" "[0-9][0-9]:[0-9][0-9]:[0-9][0-9]" UTC (too many failed logins); an administrator can unlock it earlier")
	ok "locked: says until when (UTC) and that an administrator can unlock it" ;;
*)	not_ok "locked message (got: $OUT)" ;;
esac
UNTIL=$(printf '%s\n' "$OUT" | sed -n 's/^mica: account locked until \(.* UTC\) (.*/\1/p')
D=$(( $(date -u -d "$UNTIL" +%s) - $(date +%s) ))
[ "$D" -gt 560 ] && [ "$D" -le 600 ] && ok "the lock ends lockout_seconds after the last failure" ||
    not_ok "lock end ($UNTIL, $D s from now)"
run admin account unlock dave
run $MICA list --account dave --password-file "$PW" --otp "$(code dave 1)"
expect_eq "unlocked by the administrator: logs in" "$RC" 0

# ---- disable, enable ----
enroll erin || not_ok "account add erin"
run admin account disable erin
expect_eq "account disable" "$OUT" 'account erin disabled (logins refused until `account enable`)'
run admin account disable erin
expect_eq "disable twice" "$OUT" "account erin was disabled already"
run admin account list
expect_out "account list shows it" "erin                 disabled"
run $MICA list --account erin --password-file "$PW" --otp "$(code erin)"
expect_eq "a disabled account is refused" "$RC" 1
expect_eq "... saying so" "$OUT" "mica: account disabled by an administrator; ask them to enable it"
run $MICA list --account erin --password-file "$T/badpw" --otp "$(code erin 1)"
expect_eq "... a wrong password there is a plain failure" "$OUT" "mica: authentication failed"
run admin account enable erin
expect_eq "account enable" "$OUT" "account erin enabled"
run $MICA list --account erin --password-file "$PW" --otp "$(code erin 1)"
expect_eq "enabled again: logs in" "$RC" 0
run admin account disable nobody
expect_eq "disable an unknown account" "$RC" 1
expect_eq "... says so" "$OUT" 'mica-admin: account disable: no account "nobody"'

# ---- reset and enroll ----
enroll frank || not_ok "account add frank"
run admin account reset frank
expect_eq "account reset exits 0" "$RC" 0
ECODE=$(printf '%s\n' "$OUT" | sed -n 's/^enrolment code: //p')
case $ECODE in
[A-Z2-7][A-Z2-7][A-Z2-7][A-Z2-7][A-Z2-7]-[A-Z2-7][A-Z2-7][A-Z2-7][A-Z2-7][A-Z2-7]-[A-Z2-7][A-Z2-7][A-Z2-7][A-Z2-7][A-Z2-7]-[A-Z2-7][A-Z2-7][A-Z2-7][A-Z2-7][A-Z2-7])
	ok "reset prints 'enrolment code: CODE'" ;;
*)	not_ok "reset prints the code (got: $OUT)" ;;
esac
expect_out "reset says how to use it" "the subscriber runs: mica enroll --account frank --code $ECODE"
run admin account list
expect_out "account list shows the pending code" "(enrolment code pending)"
run $MICA enroll --account frank --code AAAAA-AAAAA-AAAAA-AAAAA \
    --new-password-file "$T/newpw"
expect_eq "enroll: a wrong code is refused" "$RC" 1
expect_eq "... saying so" "$OUT" "mica: enrolment code not valid (wrong, already used or expired): ask an administrator for a new one"
run $MICA enroll --account nobody --code "$ECODE" --new-password-file "$T/newpw"
expect_eq "enroll: another account's code is refused" "$RC" 1
run $MICA enroll --account frank --code "$ECODE" --new-password-file "$T/shortpw"
expect_eq "enroll: the policy applies" "$OUT" "mica: password refused: shorter than 12 characters ([policy] min_password_length)"
run $MICA enroll --account frank --code "$ECODE" --new-password-file "$T/newpw" --qr
expect_eq "enroll with the code" "$RC" 0
expect_out "... prints the new TOTP secret once" "totp secret (base32, shown once): "
expect_out "... and its otpauth URI" "totp uri: otpauth://totp/mica:frank?secret="
expect_out "... and the QR code (--qr)" "█"
NEWSEC=$(printf '%s\n' "$OUT" | sed -n 's/^totp secret[^:]*: //p')
check "the new secret differs from the old" [ "$NEWSEC" != "$(cat "$T/frank.secret")" ]
run $MICA enroll --account frank --code "$ECODE" --new-password-file "$T/newpw"
expect_eq "the code works once" "$OUT" "mica: enrolment code not valid (wrong, already used or expired): ask an administrator for a new one"
run $MICA list --account frank --password-file "$T/newpw" --otp "$(code frank)"
expect_eq "the old TOTP secret no longer works" "$RC" 1
printf '%s\n' "$NEWSEC" >"$T/frank.secret"
run $MICA list --account frank --password-file "$PW" --otp "$(code frank)"
expect_eq "the old password no longer works" "$RC" 1
run $MICA list --account frank --password-file "$T/newpw" --otp "$(code frank)"
expect_eq "new password + new secret log in" "$RC" 0
run admin account reset nobody
expect_eq "reset an unknown account" "$OUT" 'mica-admin: account reset: no account "nobody"'

# ---- remove: certificates and audit trail stay ----
enroll gina || not_ok "account add gina"
make_csr "$T/gina.key" "$T/gina.csr" "/CN=gina/O=Org"
admin issue --account gina --csr "$T/gina.csr" --out "$T/gina.crt" >/dev/null 2>&1 ||
    not_ok "issue gina"
run admin account remove gina
expect_eq "account remove" "$OUT" "account gina removed (its certificates and the audit trail are kept)"
run admin list --account gina
expect_out "gina's certificate is still listed" "$(serial_of "$T/gina.crt")"
run $MICA list --account gina --password-file "$PW" --otp "$(code gina)"
expect_eq "a removed account cannot log in" "$OUT" "mica: authentication failed"
run admin account remove gina
expect_eq "remove twice" "$OUT" 'mica-admin: account remove: no account "gina"'
run admin account add gina --subject "/CN=gina2/O=Org" --password-file "$PW"
expect_eq "a removed account's name is not given out again (exit)" "$RC" 1
expect_out "... and says why" 'the name "gina" belonged to an account removed on'
run admin list --account gina
expect_out "gina's certificate still names the old account" "$(serial_of "$T/gina.crt")"
run admin account list
check "no new gina in the account list" sh -c '! printf "%s\n" "$1" | grep -q "^gina"' _ "$OUT"

# ---- audit and notify ----
run admin audit
for a in account.password_changed account.disabled account.enabled \
    account.reset account.enrolled account.removed; do
	expect_out "audited: $a" "$a"
done
i=0
while [ $i -lt 100 ] && ! grep -q '"account.removed"' "$EV" 2>/dev/null; do
	sleep 0.1
	i=$((i + 1))
done
OUT=$(cat "$EV" 2>/dev/null)
for a in account.password_changed account.disabled account.enabled \
    account.reset account.enrolled account.removed; do
	expect_out "notified: $a" "\"event\":\"$a\""
done
check "the enrolled event names the account" \
    grep -q '"event":"account.enrolled".*"account":"frank","actor":"frank"' "$EV"
check "no event carries the enrolment code" sh -c "! grep -q '$ECODE' '$EV'"
check "no event carries the TOTP secret" sh -c "! grep -q '$NEWSEC' '$EV'"
check "micad's log has no enrolment code" sh -c "! grep -q '$ECODE' '$T/micad.log'"

# ---- an enrolment code expires ([policy] enrol_code_lifetime) ----
stop_micad
conf_put "$CONF" policy enrol_code_lifetime 1
start_micad || { not_ok "micad restarts"; done_testing; }
enroll hank || not_ok "account add hank"
run admin account reset hank
HCODE=$(printf '%s\n' "$OUT" | sed -n 's/^enrolment code: //p')
EXP=$(printf '%s\n' "$OUT" | sed -n 's/^expires: \([^ ]*\) .*/\1/p')
i=0
while [ $i -lt 50 ] && [ "$(date +%s)" -le "$(date -u -d "$EXP" +%s)" ]; do
	sleep 0.1
	i=$((i + 1))
done
run $MICA enroll --account hank --code "$HCODE" --new-password-file "$T/newpw"
expect_eq "an expired code is refused" "$OUT" "mica: enrolment code not valid (wrong, already used or expired): ask an administrator for a new one"
stop_micad

# ---- password_max_days: micad's clock moved 2 days on (libfaketime) ----
FT_LIB=$(dpkg -L libfaketime 2>/dev/null | grep '/libfaketimeMT\.so\.1$' |
    head -n 1)
if [ -z "$FT_LIB" ] || [ ! -r "$FT_LIB" ]; then
	echo "ok - # SKIP password_max_days: libfaketime is not installed"
	done_testing
fi
CLK=$T/clock
echo "+0" >"$CLK"
conf_put "$CONF" policy password_max_days 1
export LD_PRELOAD="$FT_LIB" FAKETIME_TIMESTAMP_FILE="$CLK" \
    FAKETIME_NO_CACHE=1 FAKETIME_DONT_FAKE_MONOTONIC=1 \
    ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
start_micad
RC=$?
unset LD_PRELOAD FAKETIME_TIMESTAMP_FILE FAKETIME_NO_CACHE \
    FAKETIME_DONT_FAKE_MONOTONIC
[ $RC -eq 0 ] || { not_ok "micad starts under libfaketime"; done_testing; }
enroll ivan || not_ok "account add ivan"
run $MICA list --account ivan --password-file "$PW" --otp "$(code ivan)"
expect_eq "a fresh password logs in" "$RC" 0
echo "+2d" >"$CLK"
# code at +2 days: 5760 steps on
run $MICA list --account ivan --password-file "$PW" --otp "$(code ivan 5760)"
expect_eq "two days later the password has expired" "$RC" 1
expect_eq "... saying how to go on" "$OUT" "mica: password expired (older than 1 days, [policy] password_max_days): set a new one with \`mica passwd\`"
run $MICA passwd --account ivan --password-file "$PW" \
    --otp "$(code ivan 5761)" --new-password-file "$T/newpw"
expect_eq "mica passwd goes through the expired login" "$RC" 0
expect_out "... says the login said so" "mica: password expired"
expect_out "... and changes it" "password changed for account ivan"
# two steps on: the expired login and passwd used steps +0 and +1
echo "+172860" >"$CLK"
run $MICA list --account ivan --password-file "$T/newpw" --otp "$(code ivan 5762)"
expect_eq "the new password logs in" "$RC" 0
stop_micad
done_testing
