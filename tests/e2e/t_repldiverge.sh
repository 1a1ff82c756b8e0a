#!/bin/sh
# t_repldiverge.sh - a standby refuses a primary whose history is not the
# one it followed.  A primary and a standby (mica-admin replica add) on
# loopback ports; the primary's whole directory is copied aside while it
# is stopped at seq B (a file-level backup: store, journal, high-water
# mark); ten revocations (and the CRL records after them), which the
# standby applies up to seq X.  Then the primary is replaced by the
# backup, as an operator restoring a dead host from an old copy would:
#  1. the restored primary is at seq H < X: the standby stops with
#     "diverged at seq H+1: the standby is at seq X, past this
#     primary's H";
#  2. the restored primary takes fifteen other revocations (another
#     history past X); the standby, started again, stops with "diverged
#     at seq X: the standby's record X is not the primary's".
# (H, B and X are read from status: micad itself commits CRL records at
# start and after revocations.)  Each time: the exact error in status
# and in the log, nothing applied (applied seq X, the digest unchanged),
# and the standby keeps serving what it had (revoked for its history's
# revocations, good for the restored primary's), refusing writes.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/replica_lib.sh"

replica_primary || { not_ok "mica-admin init"; done_testing; }

# ---- the standby's directory (offline), on its own ports ----
S=$T/s
expect_exit 0 "replica add sb1 (offline)" "$BIN/mica-admin" -c "$PCONF" \
    replica add sb1 --out "$S" --primary "127.0.0.1:$RPORT"
replica_standby_conf "$S"
trap 'stop_standby; cleanup' EXIT

start_micad "$PCONF" || { not_ok "primary starts"; done_testing; }
PW=$T/pw
echo 'correct-horse-battery' >"$PW"
admin account add bulk --subject "/CN=bulk/O=Org" --password-file "$PW" \
    >/dev/null 2>&1 || not_ok "account bulk"
make_csr "$T/c.key" "$T/c.csr" "/CN=bulk/O=Org"
k=0
while [ $k -lt 30 ]; do
	k=$((k + 1))
	admin issue --account bulk --csr "$T/c.csr" --out "$T/c$k.crt" \
	    >/dev/null 2>&1 || not_ok "issue c$k"
	serial_of "$T/c$k.crt" >>"$T/serials"
done
C() { sed -n "$1p" "$T/serials"; }

# stopped_status: waits until the standby says it stopped; its status in OUT
stopped_status() {
	i=0
	while [ $i -lt 200 ]; do
		sadmin status 2>/dev/null | grep -q '^role: standby.*: stopped' &&
		    break
		sleep 0.1; i=$((i + 1))
	done
	expect_exit 0 "$1: standby status" sadmin status
}

# ---- the backup: the primary's directory at seq B ----
stop_micad
B=$(seq_off "$P")
check "the stopped primary is at a seq ($B)" test -n "$B"
cp -a "$P" "$T/p.backup"
start_micad "$PCONF" || { not_ok "primary restarts"; done_testing; }
start_standby || { not_ok "standby starts"; done_testing; }
check "the standby catches up" catch_up
k=0
while [ $k -lt 10 ]; do
	k=$((k + 1))
	admin revoke "$(C $k)" --reason keyCompromise >/dev/null 2>&1 ||
	    not_ok "revoke c$k"
done
check "the standby follows" catch_up
expect_eq "the standby's OCSP: c1 revoked" "$(ocsp_status "$SURL" "$(C 1)")" revoked
expect_eq "the standby's OCSP: c10 revoked" "$(ocsp_status "$SURL" "$(C 10)")" revoked

# ---- the primary dies; its backup comes back in its place ----
stop_micad
X=$(sseq)
check "the standby is at seq X ($X), past B ($B)" test "$X" -gt $((B + 10))
expect_exit 0 "the standby's digest" sadmin digest
DIG=$OUT
expect_out "at seq X" " seq $X"
mv "$P" "$T/p.dead"
cp -a "$T/p.backup" "$P"
start_micad "$PCONF" || { not_ok "the restored primary starts"; done_testing; }

# 1. behind the standby
stopped_status "behind"
H=$(printf '%s\n' "$OUT" | sed -n "s/.*past this primary's \([0-9]*\)\$/\1/p")
check "behind: the restored primary was at H ($H): B <= H < X" \
    test -n "$H" -a "$H" -ge "$B" -a "$H" -lt "$X"
expect_out "behind: the exact error naming the seq" \
    "replica last error: stopped: the primary 127.0.0.1:$RPORT refused: diverged at seq $((H + 1)): the standby is at seq $X, past this primary's $H"
expect_out "behind: nothing applied" "applied seq $X,"
grep -q "standby: stopped: the primary 127.0.0.1:$RPORT refused: diverged at seq $((H + 1)): " \
    "$T/standby.log" && ok "behind: the standby's log says so" ||
    not_ok "behind: the standby's log says so"
grep -q "diverged at seq $((H + 1))" "$T/micad.log" &&
    ok "behind: the primary's log says so" ||
    not_ok "behind: the primary's log says so"
expect_exit 0 "behind: the standby's digest" sadmin digest
expect_eq "behind: the standby's store is unchanged" "$OUT" "$DIG"
expect_eq "behind: the standby still answers revoked for c1" \
    "$(ocsp_status "$SURL" "$(C 1)")" revoked
expect_eq "behind: the restored primary says good for c1 (lost)" \
    "$(ocsp_status "$URL" "$(C 1)")" good
expect_exit 1 "behind: the standby still refuses writes" sadmin revoke "$(C 30)"
expect_out "behind: refusal" "this server is a standby"

# 2. another history: the restored primary takes other changes
stop_standby
k=10
while [ $k -lt 25 ]; do
	k=$((k + 1))
	admin revoke "$(C $k)" >/dev/null 2>&1 ||
	    not_ok "revoke c$k on the restored primary"
done
check "the restored primary is past X ($(pseq))" test "$(pseq)" -ge "$X"
start_standby || { not_ok "the standby starts again"; done_testing; }
stopped_status "another history"
expect_out "another history: the exact error naming the seq" \
    "replica last error: stopped: the primary 127.0.0.1:$RPORT refused: diverged at seq $X: the standby's record $X is not the primary's (another history: provision the standby again)"
expect_out "another history: nothing applied" "applied seq $X,"
grep -q "standby: stopped: the primary 127.0.0.1:$RPORT refused: diverged at seq $X: " \
    "$T/standby.log" && ok "another history: the standby's log says so" ||
    not_ok "another history: the standby's log says so"
expect_exit 0 "another history: the standby's digest" sadmin digest
expect_eq "another history: the standby's store is unchanged" "$OUT" "$DIG"
expect_eq "another history: the standby still answers revoked for c2" \
    "$(ocsp_status "$SURL" "$(C 2)")" revoked
expect_eq "another history: good for c11 (the other history's revocation)" \
    "$(ocsp_status "$SURL" "$(C 11)")" good
expect_eq "another history: the restored primary says revoked for c11" \
    "$(ocsp_status "$URL" "$(C 11)")" revoked
stop_standby
expect_eq "the stopped standby's store is at seq X" "$(seq_off "$S")" "$X"
stop_micad
done_testing
