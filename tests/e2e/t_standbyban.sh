#!/bin/sh
# t_standbyban.sh - a standby catching up bans its HTTP caches per batch
# of records, not per record, so a cache that does not answer costs
# ban_timeout_ms per batch.
#
# A primary and a standby whose [http] ban_urls names a "cache" that
# accepts connections and never answers (a hung Varnish), ban_timeout_ms
# 300.  While the standby is stopped the primary issues and revokes
# NCERT certificates (2 * NCERT records that touch a certificate).  The
# standby, started again, receives them in one burst: every record is
# applied (its OCSP says revoked for each lost certificate, directly),
# and the BANs that failed are fewer than the records (one per batch of
# records already received; it was one per record, 2 * NCERT * 300 ms of
# catch-up).  Counts from /metrics (mica_cache_ban_failures_total).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/replica_lib.sh"

NCERT=20
replica_primary || { not_ok "mica-admin init"; done_testing; }
start_micad "$PCONF" || { not_ok "primary starts"; done_testing; }

# the hung cache: accepts, reads, never answers
HUNG=$(free_port)
cat >"$T/hung.py" <<'PY'
import socket, sys, threading
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(64)
held = []
def hold(c):
    try:
        while c.recv(4096):
            pass
    except OSError:
        pass
while True:
    c, _ = s.accept()
    held.append(c)
    threading.Thread(target=hold, args=(c,), daemon=True).start()
PY
python3 "$T/hung.py" "$HUNG" &
HUNG_PID=$!

S=$T/s
expect_exit 0 "replica add sb1" "$BIN/mica-admin" -c "$PCONF" replica add \
    sb1 --out "$S" --primary "127.0.0.1:$RPORT"
replica_standby_conf "$S"
conf_set_in "$SCONF" http ban_urls "http://127.0.0.1:$HUNG"
conf_set_in "$SCONF" http ban_timeout_ms 300
trap 'stop_standby; kill $HUNG_PID 2>/dev/null; cleanup' EXIT
start_standby || { not_ok "standby starts"; done_testing; }
check "the standby catches up" catch_up
stop_standby

# NCERT issued and revoked while the standby is down
echo 'correct-horse-battery' >"$T/pw"
i=0
: >"$T/serials"
while [ $i -lt $NCERT ]; do
	make_csr "$T/k$i.key" "$T/r$i.csr" "/CN=c$i/O=Org"
	admin account add "c$i" --subject "/CN=c$i/O=Org" \
	    --password-file "$T/pw" >/dev/null 2>&1 || not_ok "account c$i"
	admin issue --account "c$i" --csr "$T/r$i.csr" --out "$T/c$i.crt" \
	    >/dev/null 2>&1 || not_ok "issue c$i"
	s=$(serial_of "$T/c$i.crt")
	admin revoke "$s" >/dev/null 2>&1 || not_ok "revoke c$i"
	echo "$s" >>"$T/serials"
	i=$((i + 1))
done
expect_eq "$NCERT certificates issued and revoked on the primary" \
    "$(wc -l <"$T/serials")" $NCERT

start_standby || { not_ok "standby starts again"; done_testing; }
# bounded: 2 * NCERT * 300 ms would be 12 s; 120 s for a loaded machine
i=0
while [ $i -lt 1200 ] && [ "$(sseq)" != "$(pseq)" ]; do
	sleep 0.1; i=$((i + 1))
done
expect_eq "the standby applied every record" "$(sseq)" "$(pseq)"
n=0
while read -r s; do
	[ "$(ocsp_status "$SURL" "$s")" = revoked ] && n=$((n + 1))
done <"$T/serials"
expect_eq "its OCSP says revoked for all $NCERT" "$n" $NCERT
curl -s "$SURL/metrics" >"$T/m"
F=$(sed -n "s/^mica_cache_ban_failures_total{cache=\"[^\"]*\"} //p" "$T/m")
B=$(sed -n "s/^mica_cache_bans_total{cache=\"[^\"]*\"} //p" "$T/m")
expect_eq "no BAN answered by the hung cache" "$B" 0
check "the hung cache was asked (failures: $F)" test "${F:-0}" -ge 1
check "fewer failed BANs ($F) than records that touched a certificate \
($((2 * NCERT))): one per batch" test "${F:-0}" -lt $((2 * NCERT))
stop_standby
kill $HUNG_PID 2>/dev/null
done_testing
