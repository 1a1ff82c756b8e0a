#!/bin/sh
# t_replica.sh - a warm standby.  The standby's directory is made by
# mica-admin replica add (offline: its own OCSP signer, TLS and
# replication certificates, a copy of the store, mica.conf without the
# CA key; the name and certificate hash registered on the primary); a
# primary and a standby micad on loopback ports (mutual TLS 1.3).
#
# The lag: MICA_REPL_N (default 200; `make soak-replica` runs 1000) real
# reissues on the primary: the subscriber's `mica reissue` (password +
# TOTP from oathtool) with [policy] review = auto, which signs the new
# certificate and revokes the lost one in one transaction.  A TOTP step
# is accepted once per account, so each reissue is by its own account
# (r1..rN, a certificate each).  The acknowledgement is the client
# exiting 0 with the new certificate; from then the standby's OCSP
# (openssl ocsp against its HTTP port) is asked about the lost serial
# until it says revoked: the time is the replication lag (p50, p99 and
# the bound, the largest, printed), and once it said revoked it never
# says good again (asked again each round, and all N at the end).
#
# Varnish (conf/varnish/mica.vcl) in front of the standby, the standby's
# [http] ban_urls naming it and cache_max_age 3600 (only a ban can drop
# a cached answer within the test): before each reissue the lost
# certificate's answer is cached ("good" twice, the second a hit); once
# the standby has applied the reissue and counted its BAN, the first
# answer through Varnish must be revoked ("stale answers through the
# standby's Varnish: 0 of N"); exactly one BAN per reissue, no failure.
# Skipped (said so) without varnishd.
#
# The standby's CRLs equal the primary's byte for byte and verify, its
# status shows the number of the CRL it serves; the standby refuses
# admin writes and a reissue over the CA protocol; status and /metrics
# show its lag.  Records sent truncated, reordered or altered (the
# primary's test hook MICA_TEST_REPL_CORRUPT) stop the standby with the
# exact error naming the record, its store at the last good record.
# mica-admin replica add while the primary runs: micad records the
# certificates and writes the store copy (a read snapshot after that
# commit) through its admin socket; a second standby started on that
# copy catches up.
# Failover: kill -9 of the primary, promote refused without the CA key,
# then done with it; a revocation and a real reissue (mica reissue +
# approve: the standby's review is manual) on the promoted server; the
# old primary restarted with [replica] peers stays a standby (refuses
# writes, says why), follows the new primary and answers revoked for
# both; its mica-admin digest equals the promoted server's (the
# promotion's own meta is not in the digest).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/replica_lib.sh"

N=${MICA_REPL_N:-200}
LOAD=${MICA_BUILD:-$TOP/build}/tests/issue_load
[ -x "$LOAD" ] || { not_ok "issue_load helper missing"; done_testing; }

replica_primary || { not_ok "mica-admin init"; done_testing; }
# reissues are signed at once: mica reissue returns the new certificate
conf_set "$PCONF" review auto
start_micad "$PCONF" || { not_ok "primary starts"; done_testing; }
PPID_=$MICAD_PID

PW=$T/pw
echo 'correct-horse-battery' >"$PW"
# a few certificates of one account for the revocations later
admin account add bulk --subject "/CN=bulk/O=Org" --password-file "$PW" \
    >/dev/null 2>&1 || not_ok "account bulk"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$T/bulk.key" -outform DER -out "$T/bulk.der" \
    -subj "/CN=bulk/O=Org" 2>/dev/null
: >"$T/serials"
"$LOAD" -s "$P/admin.sock" -a bulk -r "$T/bulk.der" -c 1 -n 10 \
    -o "$T/serials" >"$T/load.out" 2>&1
expect_eq "issued 10 certificates to revoke" "$(wc -l <"$T/serials")" 10

# N accounts with a certificate each, for the N reissues (a TOTP code is
# accepted once per account and 30 s step)
make_csr "$T/r.key" "$T/r.csr" "/CN=rep/O=Org"
: >"$T/lost"
i=0
while [ $i -lt "$N" ]; do
	i=$((i + 1))
	admin account add "r$i" --subject "/CN=rep/O=Org" \
	    --password-file "$PW" >"$T/r$i.add" 2>&1 ||
	    { not_ok "account add r$i"; done_testing; }
	sed -n 's/^totp secret[^:]*: //p' "$T/r$i.add" >"$T/r$i.secret"
	rm -f "$T/r$i.add"
	admin issue --account "r$i" --csr "$T/r.csr" --out "$T/r$i.crt" \
	    >/dev/null 2>&1 || { not_ok "issue for r$i"; done_testing; }
	serial_of "$T/r$i.crt" >>"$T/lost"
done
expect_eq "$N accounts with a certificate each" "$(sort -u "$T/lost" | wc -l)" "$N"

# a subscriber for the reissues on the standby and the promoted server
subscriber_u1

# ---- the standby's directory: mica-admin replica add (offline) ----
S=$T/s
stop_micad
expect_exit 0 "replica add sb1 (offline)" "$BIN/mica-admin" -c "$PCONF" \
    replica add sb1 --out "$S" --primary "127.0.0.1:$RPORT"
expect_out "replica add says where" "replica sb1: $S is ready"
check "sb1 registered with its certificate's SHA-256" \
    grep -qi "^sb1 $(openssl x509 -in "$S/replica.crt" -outform DER | sha256sum | cut -c1-64)\$" "$P/replicas"
check "no CA key in the standby's directory" test ! -e "$S/private/ca.key"
check "the standby's OCSP signer is issued by the CA" \
    openssl verify -CAfile "$P/ca.crt" -purpose ocsphelper "$S/ocsp.crt"
check "its replication certificate: CN=replica:sb1, clientAuth" sh -c \
    "openssl x509 -in '$S/replica.crt' -noout -subject -ext extendedKeyUsage | tr -d ' ' | grep -q 'CN=replica:sb1' && openssl x509 -in '$S/replica.crt' -noout -ext extendedKeyUsage | grep -q 'Client Authentication'"
expect_exit 0 "replica list" "$BIN/mica-admin" -c "$PCONF" replica list
expect_eq "replica list shows sb1" "$OUT" "sb1"
# the primary's own replication certificate, for when it is the standby
expect_exit 0 "replica add p1 (the primary's own)" "$BIN/mica-admin" \
    -c "$PCONF" replica add p1 --out "$T/p1kit" --primary "127.0.0.1:$RPORT"
cp "$T/p1kit/replica.crt" "$P/replica.crt"
cp "$T/p1kit/private/replica.key" "$P/private/replica.key"
start_micad "$PCONF" || { not_ok "primary restarts"; done_testing; }
# the three certificates replica add issued are in the store
expect_exit 0 "replica add's certificates are recorded" admin show \
    "$(serial_of "$S/ocsp.crt")"
expect_out "as good" "status: good"
# on this one host the standby needs other ports
replica_standby_conf "$S"
SRPORT=$(free_port)
# the standby listens too: after a promotion the old primary follows it
sed -i "s|^#listen = 0.0.0.0:7790|listen = 127.0.0.1:$SRPORT|" "$SCONF"
grep "^p1 " "$P/replicas" >"$S/replicas"
# the promoted server later: reissues wait for approval there
conf_set_in "$SCONF" policy review manual

# ---- Varnish in front of the standby; the standby bans there ----
VARNISHD=$(command -v varnishd || ls /usr/sbin/varnishd 2>/dev/null)
V_PID=""
stop_varnish() {
	if [ -n "$V_PID" ] && kill -0 "$V_PID" 2>/dev/null; then
		kill -TERM "$V_PID" 2>/dev/null
		wait "$V_PID" 2>/dev/null
	fi
	V_PID=""
}
VURL=""
if [ -n "$VARNISHD" ]; then
	VPORT=$(free_port)
	VURL=http://127.0.0.1:$VPORT
	sed "s/\\.port = \"7780\";/.port = \"$SHTTP\";/" \
	    "$TOP/conf/varnish/mica.vcl" >"$T/mica.vcl"
	grep -q "\\.port = \"$SHTTP\";" "$T/mica.vcl" ||
	    not_ok "backend port set in the VCL copy"
	"$VARNISHD" -F -j none -n "$T/varnish" -a "127.0.0.1:$VPORT" \
	    -f "$T/mica.vcl" -s malloc,64m >"$T/varnish.log" 2>&1 &
	V_PID=$!
	# up before the standby bans there (its answer: 503, no backend yet)
	i=0
	while [ $i -lt 100 ]; do
		[ "$(curl -s -o /dev/null -w '%{http_code}' "$VURL/healthz")" != 000 ] &&
		    break
		kill -0 "$V_PID" 2>/dev/null || break
		sleep 0.1; i=$((i + 1))
	done
	check "varnishd listens (in front of the standby)" sh -c \
	    "[ \"\$(curl -s -o /dev/null -w '%{http_code}' '$VURL/healthz')\" != 000 ]"
	# only a ban drops a cached answer within this test
	conf_set "$SCONF" ban_urls "$VURL"
	conf_set "$SCONF" cache_max_age 3600
else
	echo "ok - # SKIP varnishd not installed (Debian: varnish): no cache in front of the standby"
fi

trap 'stop_standby; stop_varnish; cleanup' EXIT

start_standby || { not_ok "standby starts"; done_testing; }
ok "standby starts"
# caught up: the standby's applied seq reaches the primary's
check "the standby catches up" catch_up

# ---- N reissues: the lag until the standby's OCSP says revoked ----
# vget SERIAL: through Varnish, the RFC 5019 GET of openssl's request;
# prints good / revoked / what went wrong; headers in $T/vhdr
vget() {
	openssl ocsp -issuer "$P/ca.crt" -serial "0x$1" -no_nonce \
	    -reqout "$T/vreq.der" >/dev/null 2>&1
	enc=$(base64 -w0 "$T/vreq.der" | sed 's|+|%2B|g; s|/|%2F|g; s|=|%3D|g')
	rm -f "$T/vresp.der"
	curl -sf -D "$T/vhdr" -o "$T/vresp.der" "$VURL/ocsp/$enc" ||
	    { echo "http-error"; return; }
	openssl ocsp -respin "$T/vresp.der" -issuer "$P/ca.crt" -serial "0x$1" \
	    -CAfile "$P/ca.crt" 2>/dev/null | sed -n "s/^0x$1: //p"
}
# the standby's count of BANs Varnish answered 200 (and of failures)
sbans() {
	curl -sf "http://127.0.0.1:$SHTTP/metrics" |
	    sed -n "s|^mica_cache_$1{cache=\"$VURL\"} ||p"
}
if [ -n "$VURL" ]; then
	# (a 503 Varnish made while the standby was not up yet may linger)
	i=0
	while [ $i -lt 100 ] && [ "$(curl -s -o /dev/null -w '%{http_code}' \
	    "$VURL/healthz")" != 200 ]; do
		sleep 0.1; i=$((i + 1))
	done
	expect_eq "the standby answers through Varnish" \
	    "$(curl -s -o /dev/null -w '%{http_code}' "$VURL/healthz")" 200
	BANS0=$(sbans bans_total)
	check "the standby's /metrics counts its bans ($BANS0 so far)" \
	    test -n "$BANS0"
fi
: >"$T/lags"
bad_after=0
fails=0
never=0
warm_bad=0
uncached=0
vstale=0
vban_wait=0
i=0
while [ $i -lt "$N" ]; do
	i=$((i + 1))
	s=$(sed -n "${i}p" "$T/lost")
	if [ -n "$VURL" ]; then
		# the lost certificate's "good" is in the cache
		st=$(vget "$s")
		[ "$st" = good ] || { warm_bad=$((warm_bad + 1));
		    echo "# round $i: before the reissue Varnish said '$st'"; }
		st=$(vget "$s")
		if [ "$st" != good ] ||
		    [ "$(tr -d '\r' <"$T/vhdr" | sed -n 's/^X-Varnish: //Ip' | wc -w)" -ne 2 ]; then
			uncached=$((uncached + 1))
			echo "# round $i: second ask through Varnish: '$st', not a hit"
		fi
	fi
	code=$(oathtool --totp -b "$(cat "$T/r$i.secret")")
	if ! "$BIN/mica" --server "127.0.0.1:$CA_PORT" --ca "$P/ca.crt" \
	    reissue --account "r$i" --lost-cert "$T/r$i.crt" \
	    --key "$T/r$i.new.key" --out "$T/r$i.new.crt" \
	    --password-file "$PW" --otp "$code" --timeout 30 \
	    >"$T/r$i.out" 2>&1 || [ ! -s "$T/r$i.new.crt" ]; then
		fails=$((fails + 1))
		echo "# round $i: mica reissue failed: $(tail -n 1 "$T/r$i.out")"
		continue
	fi
	# acknowledged: the client has exited with the new certificate
	t0=$(date +%s%N)
	j=0
	st=""
	while [ $j -lt 400 ]; do
		st=$(ocsp_status "http://127.0.0.1:$SHTTP" "$s")
		[ "$st" = "revoked" ] && break
		j=$((j + 1))
	done
	t1=$(date +%s%N)
	if [ "$st" != revoked ]; then
		never=$((never + 1))
		echo "# round $i: the standby never said revoked for $s"
		continue
	fi
	echo $(( (t1 - t0) / 1000000 )) >>"$T/lags"
	# after it said revoked: never good again
	st=$(ocsp_status "http://127.0.0.1:$SHTTP" "$s")
	[ "$st" = "revoked" ] || { bad_after=$((bad_after + 1));
	    echo "# round $i: the standby said '$st' after revoked for $s"; }
	if [ -n "$VURL" ]; then
		# the standby bans before it applies the next record: once
		# its count says this round's BAN was answered, the cache
		# has nothing stale
		j=0
		while [ $j -lt 200 ] &&
		    [ "$(sbans bans_total)" -lt $((BANS0 + i - fails)) ]; do
			j=$((j + 1)); sleep 0.01
		done
		vban_wait=$((vban_wait + j))
		st=$(vget "$s")
		[ "$st" = revoked ] || { vstale=$((vstale + 1));
		    echo "# round $i: through the standby's Varnish '$st' for $s (X-Varnish '$(tr -d '\r' <"$T/vhdr" | sed -n 's/^X-Varnish: //Ip')')"; }
	fi
	rm -f "$T/r$i.new.key" "$T/r$i.out" "$T/r$i.new.crt.chain" \
	    "$T/r$i.new.crt.request"
done
expect_eq "every reissue acknowledged (the new certificate returned)" \
    "$fails" 0
expect_eq "the standby said revoked after every reissue" "$never" 0
NL=$(wc -l <"$T/lags")
expect_eq "lag measured for every reissue" "$NL" "$N"
sort -n "$T/lags" >"$T/lags.sorted"
P50=$(sed -n "$(( (NL + 1) / 2 ))p" "$T/lags.sorted")
P99=$(sed -n "$(( (NL * 99 + 99) / 100 ))p" "$T/lags.sorted")
MAXL=$(tail -n 1 "$T/lags.sorted")
echo "# replication lag over $NL reissues (mica reissue acknowledged on the primary to revoked from the standby's OCSP, incl. one openssl ocsp run): p50 ${P50} ms, p99 ${P99} ms, bound (max) ${MAXL} ms; load average $(cut -d' ' -f1-3 /proc/loadavg)"
# past the bound: every lost certificate, asked again, is revoked
good_late=0
while read -r s; do
	st=$(ocsp_status "http://127.0.0.1:$SHTTP" "$s")
	[ "$st" = revoked ] || { good_late=$((good_late + 1));
	    echo "# after the bound the standby said '$st' for $s"; }
done <"$T/lost"
echo "# good answers after the lag bound: $((bad_after + good_late)) of $((NL + N))"
expect_eq "good answers right after revoked: 0" "$bad_after" 0
expect_eq "good answers after the lag bound (all $N asked again): 0" \
    "$good_late" 0
if [ -n "$VURL" ]; then
	echo "stale answers through the standby's Varnish: $vstale of $((N - fails))"
	echo "# waited $vban_wait x 10 ms in all for the standby's bans to be counted"
	expect_eq "every lost certificate was good through Varnish before" \
	    "$warm_bad" 0
	expect_eq "every second ask was a cache hit" "$uncached" 0
	expect_eq "no stale answer through the standby's Varnish" "$vstale" 0
	expect_eq "the standby sent one BAN per reissue" \
	    "$(( $(sbans bans_total) - BANS0 ))" "$((N - fails))"
	expect_eq "no ban failed" "$(sbans ban_failures_total)" 0
	expect_exit 0 "standby status" sadmin status
	expect_out "the standby's status names its cache" \
	    "http cache $VURL: last ban ok $(date -u +%Y-%m-%d)"
fi

# ---- CRLs: the very bytes the primary signed ----
crl_same() {
	curl -sf "$URL/crl/delta.crl" -o "$T/p.delta" &&
	    curl -sf "http://127.0.0.1:$SHTTP/crl/delta.crl" -o "$T/s.delta" &&
	    cmp -s "$T/p.delta" "$T/s.delta"
}
i=0
while [ $i -lt 100 ] && ! crl_same; do sleep 0.1; i=$((i + 1)); done
check "the standby's delta CRL equals the primary's byte for byte" crl_same
curl -sf "$URL/crl/full.crl" -o "$T/p.full"
curl -sf "http://127.0.0.1:$SHTTP/crl/full.crl" -o "$T/s.full"
check "the standby's full CRL equals the primary's" cmp "$T/p.full" "$T/s.full"
check "the standby's CRL verifies" openssl crl -inform DER -in "$T/s.delta" \
    -CAfile "$P/ca.crt" -noout

# ---- the standby refuses writes, shows its lag ----
last=$(tail -n 1 "$T/serials")
expect_exit 1 "the standby refuses mica-admin revoke" sadmin revoke "$last"
expect_out "refusal names the primary" \
    "this server is a standby; the primary is 127.0.0.1:$RPORT"
expect_exit 1 "the standby refuses mica-admin account add" \
    sadmin account add x1 --subject "/CN=x1" --password-file "$PW"
expect_out "account add refusal" "this server is a standby"
# (ERROR 14: mica exits 5 at once; t_standbywrite.sh counts the tries)
expect_exit 5 "the standby refuses a reissue (CA protocol)" \
    reissue_u1 "$SCA_PORT" --no-wait
expect_out "reissue refusal names the primary" \
    "this server is a standby; the primary is 127.0.0.1:$RPORT"
# the number of the CRL it serves (the primary's), not 0
crlline() { sed -n 's/^crl number: //p'; }
PCRL=$(admin status | crlline)
check "the primary's CRL has a number ($PCRL)" sh -c \
    "printf '%s' '$PCRL' | grep -q '^[1-9][0-9]*, next update [0-9]'"
expect_eq "standby status: the number and next update of the CRL it serves" \
    "$(sadmin status | crlline)" "$PCRL"
expect_eq "standby status --json: crl_number" \
    "$(sadmin status --json | sed -n 's/.*"crl_number":\([0-9]*\).*/\1/p')" \
    "${PCRL%%,*}"
expect_exit 0 "standby status" sadmin status
expect_out "status: role" "role: standby of 127.0.0.1:$RPORT"
expect_out "status: lag" "lag 0 records, 0 ms"
expect_exit 0 "primary status" admin status
expect_out "primary status: role" "role: primary (epoch 1), replication on 127.0.0.1:$RPORT, 1 standby(s)"
check "standby /metrics: lag" sh -c "curl -sf http://127.0.0.1:$SHTTP/metrics | grep -q '^mica_replica_lag_records 0$'"
check "standby show works (reads)" sadmin show "$last"

# ---- replica add while the primary runs (through its admin socket) ----
S2=$T/s2
expect_exit 0 "replica add sb2 while micad runs" "$BIN/mica-admin" \
    -c "$PCONF" replica add sb2 --out "$S2" --primary "127.0.0.1:$RPORT"
expect_out "micad recorded the certificates and copied the store" \
    "replica sb2: 3 certificates recorded; store copy written"
expect_out "replica add says where" "replica sb2: $S2 is ready"
expect_exit 0 "sb2's OCSP signer is recorded on the primary" admin show \
    "$(serial_of "$S2/ocsp.crt")"
expect_out "as good" "status: good"
check "the primary's audit trail has the replica.add records" sh -c \
    "'$BIN/mica-admin' -c '$PCONF' audit | grep -c 'replica.add.*replica sb2' | grep -qx 3"
check "sb2 registered" grep -q "^sb2 " "$P/replicas"
# the copy is a store at a seq the primary's journal has, with the
# certificates: a standby on it catches up
Q=$("$BIN/mica-admin" digest --store "$S2/store" 2>/dev/null |
    sed -n 's/^digest [0-9A-F]* seq //p')
check "the copy is a consistent store at seq $Q" test -n "$Q"
S2CONF=$S2/mica.conf
S2CA=$(free_port); S2HTTP=$(free_port)
replica_ports "$S2CONF" "$S2CA" "$S2HTTP"
"$BIN/micad" -c "$S2CONF" >>"$T/standby2.log" 2>&1 &
S2PID=$!
s2seq() { "$BIN/mica-admin" -c "$S2CONF" status 2>/dev/null |
    sed -n 's/^replica: applied seq \([0-9]*\),.*/\1/p'; }
i=0
while [ $i -lt 200 ]; do
	[ -n "$(s2seq)" ] && [ "$(s2seq)" = "$(pseq)" ] && break
	sleep 0.05; i=$((i + 1))
done
expect_eq "sb2 follows from the copy's seq to the primary's" "$(s2seq)" "$(pseq)"
expect_eq "sb2 answers for its own OCSP signer: good" \
    "$(ocsp_status "http://127.0.0.1:$S2HTTP" "$(serial_of "$S2/ocsp.crt")")" good
expect_eq "sb2 answers for a lost certificate: revoked" \
    "$(ocsp_status "http://127.0.0.1:$S2HTTP" "$(sed -n 1p "$T/lost")")" revoked
expect_exit 1 "replica add on a standby (running) is refused" \
    "$BIN/mica-admin" -c "$SCONF" replica add sb3 --out "$T/s3" \
    --primary "127.0.0.1:$RPORT"
kill -TERM "$S2PID"; wait "$S2PID"
expect_exit 0 "replica remove sb2" "$BIN/mica-admin" -c "$PCONF" replica remove sb2

# ---- corrupted records: the standby stops, naming the record ----
stop_standby
# the standby's seq while it is stopped: from its store
A=$(seq_off "$S")
check "standby stopped at a seq ($A)" test -n "$A"
# more changes on the primary while the standby is away
for s in $(sed -n "1,4p" "$T/serials"); do
	admin revoke "$s" >/dev/null 2>&1 || not_ok "revoke $s"
done
for m in cut flip swap; do
	stop_micad
	MICA_TEST_REPL_CORRUPT="$m:$((A + 1))" start_micad "$PCONF" ||
	    { not_ok "primary restarts ($m)"; continue; }
	start_standby || { not_ok "standby restarts ($m)"; continue; }
	i=0
	while [ $i -lt 100 ]; do
		sadmin status 2>/dev/null | grep -q '^role: standby.*: stopped' && break
		sleep 0.1; i=$((i + 1))
	done
	expect_exit 0 "standby status after a $m record" sadmin status
	case $m in
	cut) expect_out "truncated record: exact error" \
	    "stopped: record seq $((A + 1)) (after seq $A): truncated" ;;
	flip) expect_out "altered record: exact error" \
	    "stopped: record seq $((A + 1)) (after seq $A): " ;;
	swap) expect_out "reordered records: exact error" \
	    "stopped: record seq $((A + 2)): expected seq $((A + 1)) (records missing or reordered)" ;;
	esac
	expect_out "$m: nothing past the last good record" "applied seq $A,"
	stop_standby
	expect_eq "$m: the standby's store is at seq $A" "$(seq_off "$S")" "$A"
done
grep -q "record seq $((A + 1)) (after seq $A): .*hash" "$T/standby.log" &&
    ok "altered record: the log says the hash does not match" ||
    not_ok "altered record: hash error in the log"

# ---- the real stream again: it catches up ----
stop_micad
start_micad "$PCONF" || not_ok "primary restarts"
start_standby || not_ok "standby restarts"
check "the standby catches up after the bad records" catch_up

check "the standby's OCSP answers are signed by its own signer" sh -c \
    "openssl ocsp -issuer '$P/ca.crt' -serial 0x$last -url http://127.0.0.1:$SHTTP -no_nonce -CAfile '$P/ca.crt' -resp_text 2>/dev/null | grep -q 'CN *= *mica OCSP sb1'"
grep -q "ca_key=" "$T/standby.log" && ! grep -q "private/ca.key" "$T/standby.log" &&
    ok "the standby runs without the CA key" || not_ok "the standby runs without the CA key"

# ---- failover: the primary dies, the standby is promoted ----
kill -KILL "$MICAD_PID"; wait "$MICAD_PID" 2>/dev/null; MICAD_PID=""
expect_exit 1 "promote is refused without the CA key" sadmin promote
expect_out "refusal says why" "refused: no CA key here"
# the operator brings the CA key (a file here; or the same HSM)
stop_standby
cp "$P/private/ca.key" "$S/private/ca.key"
conf_set_in "$SCONF" ca key private/ca.key
start_standby || not_ok "the standby restarts with the CA key"
promote_standby 2
s=$(sed -n "6p" "$T/serials")
expect_exit 0 "the promoted server takes a revocation" sadmin revoke "$s"
expect_eq "its OCSP says revoked" "$(ocsp_status "http://127.0.0.1:$SHTTP" "$s")" revoked
# a real reissue on the promoted server: mica reissue, then approve
# (the standby refused before LOGIN: the TOTP code was not spent; exit 4:
# the request waits for approval)
expect_exit 4 "mica reissue on the promoted server" \
    reissue_u1 "$SCA_PORT" --no-wait
RID=$(printf '%s\n' "$OUT" | sed -n 's/^request: //p')
expect_exit 0 "approve on the promoted server" sadmin approve "$RID"
expect_eq "the lost certificate is revoked there" \
    "$(ocsp_status "http://127.0.0.1:$SHTTP" "$(serial_of "$T/u1.crt")")" revoked
PROM_SEQ=$(sadmin status | sed -n 's/^journal: .* at seq \([0-9]*\).*/\1/p')

# ---- the old primary comes back with [replica] peers: stays a standby ----
echo "peers = 127.0.0.1:$SRPORT" >>"$PCONF"
start_micad "$PCONF" || not_ok "the old primary starts"
expect_exit 0 "the old primary's status" admin status
expect_out "it is a standby of the promoted one" "role: standby of 127.0.0.1:$SRPORT"
expect_out "status says why (epoch older)" \
    "a standby because the peer 127.0.0.1:$SRPORT is a primary at epoch 2 (this store's: 1)"
expect_exit 1 "the old primary refuses mica-admin revoke" admin revoke "$(sed -n "7p" "$T/serials")"
expect_out "its refusal names the new primary" \
    "this server is a standby; the primary is 127.0.0.1:$SRPORT"
i=0
while [ $i -lt 100 ]; do
	[ "$(admin status | sed -n 's/^replica: applied seq \([0-9]*\),.*/\1/p')" = "$PROM_SEQ" ] && break
	sleep 0.1; i=$((i + 1))
done
expect_exit 0 "the old primary's status" admin status
expect_out "it followed the new primary to its seq" "applied seq $PROM_SEQ,"
# the same records: the same digest (the promoted store's own
# replica_promoted meta is not journalled and not in the digest)
expect_exit 0 "digest on the promoted server" sadmin digest
SDIG=$OUT
expect_exit 0 "digest on the old primary (its standby)" admin digest
expect_eq "the old primary's digest equals the promoted server's" "$OUT" "$SDIG"
expect_out "at the promoted server's seq" " seq $PROM_SEQ"
expect_eq "its OCSP says revoked for the promoted server's revocation" \
    "$(ocsp_status "$URL" "$s")" revoked
expect_eq "and for the lost certificate of the reissue there" \
    "$(ocsp_status "$URL" "$(serial_of "$T/u1.crt")")" revoked
# restarted again, now at the same epoch as the new primary: still a
# standby (the peer is a primary, at an epoch not older)
stop_micad
start_micad "$PCONF" || not_ok "the old primary starts again"
expect_exit 0 "the old primary's status after a second restart" admin status
expect_out "still a standby" "role: standby of 127.0.0.1:$SRPORT (epoch 2)"
expect_exit 1 "it still refuses writes" admin revoke "$(sed -n "7p" "$T/serials")"
expect_exit 0 "replica remove p1" "$BIN/mica-admin" -c "$PCONF" replica remove p1
expect_exit 0 "replica list after remove" "$BIN/mica-admin" -c "$PCONF" replica list
expect_eq "only sb1 is left" "$OUT" "sb1"
expect_exit 1 "replica remove of an unknown name" "$BIN/mica-admin" -c "$PCONF" replica remove nobody
expect_out "says so" "not registered"
stop_standby
stop_micad
done_testing
