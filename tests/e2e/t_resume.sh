#!/bin/sh
# t_resume.sh - riding out a busy server and restarts, through the real
# mica binary: LOGINs from one address queue instead of being refused
# (20 subscribers behind one address all get their certificate); with
# the queue at 0 the refused ones are told "retry after N s" and mica
# retries by itself; micad killed with SIGKILL while clients wait (review
# = manual, approved after the restart) and with requests the automatic
# review had not decided (decided at the next start): every client ends
# with its certificate by itself (FETCH with the saved token, no second
# login), nothing is issued twice, mica-admin check passes.  A login lost
# with the connection says to run the command again with a new code.
# A TOTP step is accepted once per account: each account logs in once.
. "$(dirname "$0")/lib.sh"

mica_init "$T/ca" || { not_ok "mica-admin init"; done_testing; }
# argon2id dearer than lib.sh's, so that 20 LOGINs really overlap
conf_set "$CONF" argon2_opslimit 2
conf_set "$CONF" argon2_memlimit 16M
conf_set "$CONF" review auto
conf_set "$CONF" log_level debug
start_micad || { not_ok "micad starts"; done_testing; }
CA=$T/ca/ca.crt
MICA="$BIN/mica --server 127.0.0.1:$CA_PORT --ca $CA"
PW=$T/pw
echo 'correct-horse-battery' >"$PW"
unset MICA_SERVER MICA_CA

# enroll NAME: account NAME with one certificate $T/NAME.crt.
enroll() {
	admin account add "$1" --subject "/CN=$1/O=Org" \
	    --password-file "$PW" >"$T/$1.add" 2>&1 || return 1
	sed -n 's/^totp secret[^:]*: //p' "$T/$1.add" >"$T/$1.secret"
	make_csr "$T/$1.key" "$T/$1.csr" "/CN=$1/O=Org"
	admin issue --account "$1" --csr "$T/$1.csr" --out "$T/$1.crt" \
	    >/dev/null 2>&1
}
otp() { oathtool --totp -b "$(cat "$T/$1.secret")"; }
# reissue_bg NAME [mica options]: mica reissue in the background; output
# in $T/NAME.out, exit status in $T/NAME.rc when it ends.
reissue_bg() {
	n=$1; shift
	( $MICA reissue --account "$n" --key "$T/$n.new.key" \
	    --out "$T/$n.new.crt" --password-file "$PW" --otp "$(otp "$n")" \
	    "$@" </dev/null >"$T/$n.out" 2>&1; echo $? >"$T/$n.rc" ) &
}
# wait_all NAME...: until every NAME.rc exists (bounded: 120 s).
wait_all() {
	i=0
	while [ $i -lt 1200 ]; do
		missing=0
		for n in "$@"; do
			[ -f "$T/$n.rc" ] || missing=1
		done
		[ $missing -eq 0 ] && return 0
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}
# all_issued TAG NAME...: each ended 0 with a certificate that verifies
# and carries the lost one's subject.
all_issued() {
	tag=$1; shift
	bad=""
	for n in "$@"; do
		if [ "$(cat "$T/$n.rc")" != 0 ] ||
		    ! openssl verify -CAfile "$CA" "$T/$n.new.crt" \
		    >/dev/null 2>&1 ||
		    [ "$(openssl x509 -in "$T/$n.new.crt" -noout -subject)" != \
		    "$(openssl x509 -in "$T/$n.crt" -noout -subject)" ]; then
			bad="$bad $n"
			sed "s/^/# $n: /" "$T/$n.out" | head -n 8
		fi
	done
	expect_eq "$tag: every client has its certificate" "$bad" ""
}
# issued_once TAG NAME...: the account has exactly 2 certificates (the
# lost one, revoked, and one replacement, good).
issued_once() {
	tag=$1; shift
	bad=""
	for n in "$@"; do
		l=$(admin list --account "$n")
		if [ "$(printf '%s\n' "$l" | grep -c " $n\$")" != 2 ] ||
		    [ "$(printf '%s\n' "$l" | grep -c " good ")" != 1 ]; then
			bad="$bad $n"
			printf '%s\n' "$l" | sed "s/^/# $n: /"
		fi
	done
	expect_eq "$tag: nothing issued twice (2 certificates, 1 good)" \
	    "$bad" ""
}
# wait_log PATTERN COUNT: until micad.log has COUNT lines matching.
wait_log() {
	i=0
	while [ $i -lt 600 ]; do
		[ "$(grep -c -- "$1" "$T/micad.log")" -ge "$2" ] && return 0
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}

# ---- 20 subscribers behind one address at the same moment ----
A=""
i=1
while [ $i -le 20 ]; do A="$A q$i"; i=$((i + 1)); done
for n in $A; do enroll "$n" || not_ok "enroll $n"; done
Q0=$(grep -c 'login queued' "$T/micad.log")
for n in $A; do reissue_bg "$n"; done
wait_all $A || not_ok "20 clients: all ended"
# shellcheck disable=SC2086
all_issued "20 clients from 127.0.0.1" $A
# shellcheck disable=SC2086
issued_once "20 clients" $A
NQ=$(($(grep -c 'login queued' "$T/micad.log") - Q0))
echo "# LOGINs that waited in the queue: $NQ"
expect_eq "20 clients: nobody was refused busy" \
    "$(cat "$T"/q*.out | grep -c 'busy')" 0

# ---- the same with no queue: refused LOGINs retry after the hint ----
stop_micad
conf_set_in "$CONF" protocol login_queue_per_address 0
start_micad || { not_ok "micad restarts"; done_testing; }
B=""
i=1
while [ $i -le 10 ]; do B="$B r$i"; i=$((i + 1)); done
for n in $B; do enroll "$n" || not_ok "enroll $n"; done
for n in $B; do reissue_bg "$n" --timeout 100; done
wait_all $B || not_ok "no queue: all ended"
# shellcheck disable=SC2086
all_issued "no queue, 10 clients" $B
# shellcheck disable=SC2086
issued_once "no queue" $B
NB=$(cat "$T"/r*.out | grep -c '^mica: busy: login queue full (0 waiting from your address, [0-9]* in all), retry after [0-9]* s$')
echo "# busy answers (each retried by mica): $NB"
expect_eq "no queue: some LOGINs were refused busy with a retry hint" \
    "$([ "$NB" -ge 1 ] && echo yes)" yes
expect_eq "no queue: micad logged each refusal" \
    "$(grep -c 'login refused: [0-9]* in flight, [0-9]* queued' "$T/micad.log")" \
    "$NB"

# ---- SIGKILL while clients wait (review = manual) ----
stop_micad
conf_set_in "$CONF" protocol login_queue_per_address 32
conf_set "$CONF" review manual
start_micad || { not_ok "micad restarts (manual)"; done_testing; }
C="k1 k2 k3"
for n in $C; do enroll "$n" || not_ok "enroll $n"; done
W0=$(grep -c ' waiting$' "$T/micad.log")
for n in $C; do reissue_bg "$n"; done
wait_log ' waiting$' $((W0 + 3)) || not_ok "3 clients wait"
kill -KILL "$MICAD_PID"
wait "$MICAD_PID" 2>/dev/null
MICAD_PID=""
ok "micad killed (SIGKILL) while 3 clients wait"
start_micad || { not_ok "micad restarts after SIGKILL"; done_testing; }
expect_exit 0 "3 requests still pending after the restart" \
    admin requests --pending
expect_eq "pending: 3" "$(printf '%s\n' "$OUT" | grep -c '^[0-9]* pending ')" 3
for id in $(printf '%s\n' "$OUT" | awk '/pending/ { print $1 }'); do
	admin approve "$id" >/dev/null || not_ok "approve $id"
done
wait_all $C || not_ok "killed (manual): all ended"
# shellcheck disable=SC2086
all_issued "SIGKILL, manual review" $C
# shellcheck disable=SC2086
issued_once "SIGKILL, manual review" $C
bad=""
for n in $C; do
	grep -q "^mica: lost the connection while waiting; resuming request [0-9]* with the saved token ($T/$n.new.crt.request), no new login$" \
	    "$T/$n.out" || bad="$bad $n"
done
expect_eq "each client said it resumes with the saved token" "$bad" ""

# ---- SIGKILL with requests the automatic review had not decided ----
# Requests stored under review = manual stand for the ones a stop caught
# between being stored and their automatic approval: after the restart
# with review = auto they are decided at start, and the waiting clients
# fetch their certificates by themselves.
D="d1 d2"
for n in $D; do enroll "$n" || not_ok "enroll $n"; done
W0=$(grep -c ' waiting$' "$T/micad.log")
for n in $D; do reissue_bg "$n"; done
wait_log ' waiting$' $((W0 + 2)) || not_ok "2 clients wait"
kill -KILL "$MICAD_PID"
wait "$MICAD_PID" 2>/dev/null
MICAD_PID=""
conf_set "$CONF" review auto
start_micad || { not_ok "micad restarts (auto)"; done_testing; }
wait_all $D || not_ok "killed (auto pending): all ended"
# shellcheck disable=SC2086
all_issued "SIGKILL, auto review pending" $D
# shellcheck disable=SC2086
issued_once "SIGKILL, auto review pending" $D
check "micad decided what the stop left pending" grep -q \
    'review = auto: 2 requests left pending by a stop, deciding them now' \
    "$T/micad.log"
expect_exit 0 "no request left pending" admin requests --pending
expect_eq "pending: 0" "$(printf '%s\n' "$OUT" | grep -c '^[0-9]* pending ')" 0

# ---- a login lost with the connection: run again with a new code ----
python3 "$(dirname "$0")/lostlogin.py" "$T/ca/tls.crt" \
    "$T/ca/private/tls.key" "$T/lost.port" login >"$T/lost.out" 2>&1 &
LPID=$!
i=0
while [ ! -s "$T/lost.port" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
enroll z1 || not_ok "enroll z1"
expect_exit 1 "login lost: mica fails" "$BIN/mica" --server \
    "127.0.0.1:$(cat "$T/lost.port")" --ca "$CA" reissue --account z1 \
    --key "$T/z1.new.key" --out "$T/z1.new.crt" --password-file "$PW" \
    --otp 123456 </dev/null
expect_out "login lost: the exact advice" \
    "mica: the server restarted before your request was recorded; run the command again with a new code"
wait "$LPID"
check "the fake server saw the LOGIN" grep -q "got LOGIN" "$T/lost.out"
check "login lost: no key made" test ! -e "$T/z1.new.key"

# ---- the store is consistent ----
expect_exit 0 "mica-admin check passes" admin check
stop_micad
expect_eq "micad stops cleanly" "$?" 0
done_testing
