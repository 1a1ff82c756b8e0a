#!/bin/sh
# Admin walks over a large store do not stop the event loop: a store of
# 300,000 certificates (filled offline by build/tests/fill_store), a
# `list --json` running on a worker, a `status` queued behind it, and
# meanwhile other admin commands (account list, show) and an OCSP query
# are answered.  No timing threshold: the probes are sent only once micad
# has logged that it dispatched the status, and must be answered before
# the status client has its reply (with the walks on the loop the probes
# could not even be accepted until the status walk was over).  Then: the
# list has every certificate, the status counts them, and a client that
# hangs up while its walk runs harms nothing.
. "$(dirname "$0")/lib.sh"

FILL=${MICA_BUILD:-$TOP/build}/tests/fill_store
N=300000
D=$T/ca

if [ ! -x "$FILL" ]; then
	not_ok "fill_store helper missing: make ${MICA_BUILD:-build}/tests/fill_store"
	done_testing
fi

mica_init "$D" --cn "Scale CA" || { not_ok "init"; done_testing; }
# debug: micad logs "admin ...: CMD" when it dispatches a command, which
# tells the test that a request is in micad.  Two workers (the default):
# one walk at a time, so the status waits for the list's walk.
conf_set "$D/mica.conf" log_level debug
conf_set "$D/mica.conf" workers 2
start_micad || { not_ok "micad starts"; done_testing; }
printf 'carol password 1\n' >"$T/pw"
admin account add carol --subject "/CN=carol/O=Example" \
    --password-file "$T/pw" >/dev/null 2>&1 || not_ok "account add carol"
make_csr "$T/c.key" "$T/c.csr" "/CN=carol/O=Example"
expect_exit 0 "issue a real certificate" admin issue --account carol \
    --csr "$T/c.csr" --days 30 --out "$T/c.crt"
SC=$(serial_of "$T/c.crt")
BEFORE=$(admin list | tail -n +2 | wc -l)	# without the header line
stop_micad || not_ok "micad stops cleanly before the fill"

check "fill_store adds $N certificates (micad stopped)" \
    "$FILL" -d "$D/store" -c "$D/ca.crt" -n "$N"
WANT=$((BEFORE + N))
start_micad || { not_ok "micad starts on the large store"; done_testing; }
ok "micad starts on the large store"

# dispatched CMD: how many times micad logged that it dispatched CMD.
dispatched() {
	grep -c "admin admin(uid=[0-9]*): $1\$" "$T/micad.log"
}

# wait_dispatched CMD COUNT: until micad has dispatched CMD COUNT times.
wait_dispatched() {
	i=0
	while [ "$(dispatched "$1")" -lt "$2" ]; do
		i=$((i + 1))
		[ $i -gt 600 ] && return 1
		sleep 0.05
	done
	return 0
}

# in_background NAME ARGS...: mica-admin ARGS > $T/NAME.out; its exit
# code lands in $T/NAME.rc when it has its whole reply.
in_background() {
	name=$1; shift
	( "$BIN/mica-admin" -c "$CONF" "$@" >"$T/$name.out" 2>"$T/$name.err"
	    echo $? >"$T/$name.rc" ) &
}

# finished NAME: 1 when the background command NAME has its reply.
finished() {
	[ -f "$T/$1.rc" ] && echo 1 || echo 0
}

# wait_finished NAME
wait_finished() {
	i=0
	while [ ! -s "$T/$1.rc" ]; do
		i=$((i + 1))
		[ $i -gt 3000 ] && return 1
		sleep 0.05
	done
	return 0
}

nl=$(dispatched list)
ns=$(dispatched status)
in_background list list --json
wait_dispatched list $((nl + 1)) || not_ok "micad dispatched the list"
in_background status status
wait_dispatched status $((ns + 1)) || not_ok "micad dispatched the status"

# the probes, one after the other, while list and status walk
admin account list >"$T/acct.out" 2>&1
acct_rc=$?
acct_before=$(finished status)
openssl ocsp -issuer "$D/ca.crt" -CAfile "$D/ca.crt" -url "$URL/ocsp" \
    -cert "$T/c.crt" >"$T/ocsp.out" 2>&1
ocsp_rc=$?
ocsp_before=$(finished status)
admin show "$SC" >"$T/show.out" 2>&1
show_rc=$?
show_before=$(finished status)

expect_eq "account list answered during the walks" "$acct_rc" 0
expect_eq "account list shows carol" \
    "$(grep -c '^carol ' "$T/acct.out")" 1
# before NAME FLAG: FLAG is 0 when the probe was answered before the
# status client had its reply.  Valgrind runs one thread at a time, so
# there the order says nothing: skipped.
before() {
	if [ -n "${MICA_VALGRIND:-}" ]; then
		ok "$1 answered before the status walk ended # SKIP valgrind"
	else
		expect_eq "$1 answered before the status walk ended" "$2" 0
	fi
}

before "account list" "$acct_before"
expect_eq "OCSP answered during the walks" "$ocsp_rc" 0
expect_eq "OCSP says good" "$(grep -c "c.crt: good" "$T/ocsp.out")" 1
before "OCSP" "$ocsp_before"
expect_eq "show answered during the walks" "$show_rc" 0
expect_eq "show names the serial" \
    "$(grep -ci "^serial: $SC\$" "$T/show.out")" 1
before "show" "$show_before"

wait_finished list || not_ok "list finishes"
wait_finished status || not_ok "status finishes"
expect_eq "list --json exits 0" "$(cat "$T/list.rc")" 0
expect_eq "list --json has every certificate" \
    "$(grep -o '"serial":' "$T/list.out" | wc -l)" "$WANT"
expect_eq "list --json is one JSON array" \
    "$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' \
    "$T/list.out")" "$WANT"
expect_eq "status exits 0" "$(cat "$T/status.rc")" 0
expect_eq "status counts every certificate" \
    "$(grep -c "^certificates: $WANT (" "$T/status.out")" 1
expect_exit 0 "list (text)" admin list
expect_eq "list (text) has a header and one line per certificate" \
    "$(printf '%s\n' "$OUT" | wc -l)" "$((WANT + 1))"
expect_exit 0 "list --account carol (walks all, prints one)" \
    admin list --account carol
expect_eq "list --account carol has carol's certificate" \
    "$(printf '%s\n' "$OUT" | grep -c "carol\$")" 1
expect_exit 0 "requests (none)" admin requests
expect_eq "requests says none" "$OUT" "no requests"

# A client that hangs up while its walks run (one walking, one queued).
nl=$(dispatched list)
ns=$(dispatched status)
"$BIN/mica-admin" -c "$CONF" list --json >/dev/null 2>&1 &
P1=$!
"$BIN/mica-admin" -c "$CONF" status >/dev/null 2>&1 &
P2=$!
wait_dispatched list $((nl + 1)) || not_ok "micad dispatched the list"
wait_dispatched status $((ns + 1)) || not_ok "micad dispatched the status"
kill "$P1" "$P2" 2>/dev/null
wait "$P1" 2>/dev/null
wait "$P2" 2>/dev/null
expect_exit 0 "status after clients hung up mid-walk" admin status
expect_out "status still counts every certificate" "certificates: $WANT ("
check "micad still runs" kill -0 "$MICAD_PID"
stop_micad
expect_eq "micad stops cleanly" "$?" 0

done_testing
