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
# 12 LOGINs sent at once on 12 connections from one address (a barrier:
# all are in micad before the first is answered): with the queue, every
# one is checked (a wrong password: ERROR 6), none is refused busy
set --
i=0
while [ $i -lt 12 ]; do set -- "$@" "nobody-$i" wrong-password 123456; i=$((i + 1)); done
expect_exit 0 "12 concurrent LOGINs from one address" timeout 120 \
    python3 "$(dirname "$0")/mica_login.py" "$CA" "$CA_PORT" 12 "$@"
expect_eq "all 12 checked (ERROR 6), none busy" \
    "$(printf '%s\n' "$OUT" | grep -c '^error 6$')" 12

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

# ---- the connection lost after the REISSUE was sent ----
python3 "$(dirname "$0")/lostlogin.py" "$T/ca/tls.crt" \
    "$T/ca/private/tls.key" "$T/lost2.port" reissue >"$T/lost2.out" 2>&1 &
LPID=$!
i=0
while [ ! -s "$T/lost2.port" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
expect_exit 1 "request lost: mica fails" "$BIN/mica" --server \
    "127.0.0.1:$(cat "$T/lost2.port")" --ca "$CA" reissue --account z1 \
    --serial "$(serial_of "$T/z1.crt")" --subject /CN=z1/O=Org \
    --key "$T/z1.new.key" \
    --out "$T/z1.new.crt" --password-file "$PW" --otp 123456 </dev/null
expect_out "request lost: the exact advice" \
    "mica: the server restarted before your request was recorded; run the command again with a new code"
expect_out "request lost: the key is kept for the rerun" \
    "mica: no answer to the request; keeping the new key $T/z1.new.key"
wait "$LPID"
check "the fake server saw the REISSUE" grep -q "got REISSUE" "$T/lost2.out"
check "request lost: the key is kept" test -s "$T/z1.new.key"

# ---- the rerun finds a request whose ACCEPTED was lost ----
# (micad recorded it, the client never saw its token: here the request
# file is deleted).  Manual review: the same key gets the pending request
# back with a new token; another key is told it is still open.
stop_micad
conf_set "$CONF" review manual
start_micad || { not_ok "micad restarts (manual)"; done_testing; }
# next NAME: the next time step's code (the current one is used)
next() { oathtool --totp -N "now + 30 seconds" -b "$(cat "$T/$1.secret")"; }
enroll y1 || not_ok "enroll y1"
expect_exit 4 "y1: request recorded (--no-wait)" $MICA reissue --account y1 \
    --key "$T/y1.new.key" --out "$T/y1.new.crt" --password-file "$PW" \
    --otp "$(otp y1)" --no-wait </dev/null
Y1REQ=$(sed -n 's/^request: //p' "$T/y1.new.crt.request")
rm -f "$T/y1.new.crt.request"
enroll y3 || not_ok "enroll y3"
expect_exit 4 "y3: request recorded (--no-wait)" $MICA reissue --account y3 \
    --key "$T/y3.new.key" --out "$T/y3.new.crt" --password-file "$PW" \
    --otp "$(otp y3)" --no-wait </dev/null
Y3REQ=$(sed -n 's/^request: //p' "$T/y3.new.crt.request")
make_csr "$T/y3.other.key" "$T/y3.other.csr" "/CN=y3/O=Org"
expect_exit 1 "y3: another key: the request is still open" $MICA reissue \
    --account y3 --key "$T/y3.other.key" --out "$T/y3.x.crt" \
    --password-file "$PW" --otp "$(next y3)" </dev/null
expect_out "another key: message" \
    "mica: request $Y3REQ for serial $(serial_of "$T/y3.crt") is still open"
admin reject "$Y3REQ" >/dev/null || not_ok "reject $Y3REQ"
( $MICA reissue --account y1 --key "$T/y1.new.key" --out "$T/y1.new.crt" \
    --password-file "$PW" --otp "$(next y1)" --timeout 60 </dev/null \
    >"$T/y1.out" 2>&1; echo $? >"$T/y1.rc" ) &
wait_log "req=$Y1REQ resumed account=y1" 1 ||
    not_ok "y1: micad resumed request $Y1REQ"
admin approve "$Y1REQ" >/dev/null || not_ok "approve $Y1REQ"
wait_all y1 || not_ok "y1: rerun ended"
all_issued "y1: rerun with the same key" y1
issued_once "y1: rerun" y1
check "y1: the same request id" grep -q "^request: $Y1REQ\$" "$T/y1.out"

# Automatic review: the request was issued before the ACCEPTED was lost;
# the rerun with the same key gets that certificate.
stop_micad
conf_set "$CONF" review auto
start_micad || { not_ok "micad restarts (auto)"; done_testing; }
enroll y2 || not_ok "enroll y2"
expect_exit 4 "y2: request issued at once (--no-wait)" $MICA reissue \
    --account y2 --key "$T/y2.new.key" --out "$T/y2.new.crt" \
    --password-file "$PW" --otp "$(otp y2)" --no-wait </dev/null
rm -f "$T/y2.new.crt.request"
expect_exit 0 "y2: rerun with the same key and the next code" $MICA \
    reissue --account y2 --key "$T/y2.new.key" --out "$T/y2.new.crt" \
    --password-file "$PW" \
    --otp "$(next y2)" </dev/null
echo 0 >"$T/y2.rc"
printf '%s\n' "$OUT" >"$T/y2.out"
all_issued "y2: rerun after the issue" y2
issued_once "y2: rerun" y2

# ---- the store is consistent ----
expect_exit 0 "mica-admin check passes" admin check
stop_micad
expect_eq "micad stops cleanly" "$?" 0
done_testing
