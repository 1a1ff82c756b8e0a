#!/bin/sh
# t_replica.sh - a warm standby.  The standby's directory is made by
# mica-admin replica add (offline: its own OCSP signer, TLS and
# replication certificates, a copy of the store, mica.conf without the
# CA key; the name and certificate hash registered on the primary); a
# primary and a standby micad on loopback ports (mutual TLS 1.3).
# MICA_REPL_N (default 200; `make soak-replica` runs 1000) revocations
# on the primary, each acknowledged by mica-admin; after each one the
# standby's OCSP (openssl ocsp against its HTTP port) is polled until it
# says revoked: the time is the replication lag (p50/p99 printed), and
# once it said revoked it never says good again.  The standby's CRLs
# equal the primary's byte for byte and verify; the standby refuses
# admin writes and a reissue over the CA protocol; status and /metrics
# show its lag.  Records sent truncated, reordered or altered (the
# primary's test hook MICA_TEST_REPL_CORRUPT) stop the standby with the
# exact error naming the record, its store at the last good record.
# Failover: kill -9 of the primary, promote refused without the CA key,
# then done with it; a revocation and a real reissue (mica reissue +
# approve) on the promoted server; the old primary restarted with
# [replica] peers stays a standby (refuses writes, says why), follows
# the new primary and answers revoked for both.
. "$(dirname "$0")/lib.sh"

N=${MICA_REPL_N:-200}
LOAD=${MICA_BUILD:-$TOP/build}/tests/issue_load
[ -x "$LOAD" ] || { not_ok "issue_load helper missing"; done_testing; }

mica_init "$T/p" || { not_ok "mica-admin init"; done_testing; }
P=$T/p
PCONF=$CONF
PHTTP=$HTTP_PORT
RPORT=$(free_port)
printf '\n[replica]\nlisten = 127.0.0.1:%s\n' "$RPORT" >>"$PCONF"
start_micad "$PCONF" || { not_ok "primary starts"; done_testing; }
PPID_=$MICAD_PID

PW=$T/pw
echo 'correct-horse-battery' >"$PW"
admin account add bulk --subject "/CN=bulk/O=Org" --password-file "$PW" \
    >/dev/null 2>&1 || not_ok "account bulk"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$T/bulk.key" -outform DER -out "$T/bulk.der" \
    -subj "/CN=bulk/O=Org" 2>/dev/null
: >"$T/serials"
"$LOAD" -s "$P/admin.sock" -a bulk -r "$T/bulk.der" -c 2 -n $((N / 2 + 5)) \
    -o "$T/serials" >"$T/load.out" 2>&1
check "issued the certificates to revoke" test "$(wc -l <"$T/serials")" -ge "$N"

# a subscriber for the real reissues later (CA protocol, TOTP)
admin account add u1 --subject "/CN=u1/O=Org" --password-file "$PW" \
    >"$T/u1.add" 2>&1 || not_ok "account u1"
sed -n 's/^totp secret[^:]*: //p' "$T/u1.add" >"$T/u1.secret"
make_csr "$T/u1.key" "$T/u1.csr" "/CN=u1/O=Org"
admin issue --account u1 --csr "$T/u1.csr" --out "$T/u1.crt" >/dev/null 2>&1 ||
    not_ok "issue u1"
reissue() {	# SERVER-PORT: mica reissue of u1's certificate there
	code=$(oathtool --totp -b "$(cat "$T/u1.secret")")
	"$BIN/mica" --server "127.0.0.1:$1" --ca "$P/ca.crt" reissue \
	    --account u1 --lost-cert "$T/u1.crt" --key "$T/u1.new.key" \
	    --out "$T/u1.new.crt" --password-file "$PW" --otp "$code" \
	    --no-wait
}

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
SCA_PORT=$(free_port); SHTTP=$(free_port); SRPORT=$(free_port)
SCONF=$S/mica.conf
sed -i "s|127.0.0.1:$CA_PORT|127.0.0.1:$SCA_PORT|g;
    s|127.0.0.1:$PHTTP|127.0.0.1:$SHTTP|g" "$SCONF"
# the standby listens too: after a promotion the old primary follows it
sed -i "s|^#listen = 0.0.0.0:7790|listen = 127.0.0.1:$SRPORT|" "$SCONF"
grep "^p1 " "$P/replicas" >"$S/replicas"

start_standby() {
	"$BIN/micad" -c "$SCONF" >>"$T/standby.log" 2>&1 &
	SPID=$!
	i=0
	while [ $i -lt 100 ]; do
		"$BIN/mica-admin" -c "$SCONF" status >/dev/null 2>&1 && return 0
		kill -0 "$SPID" 2>/dev/null || break
		sleep 0.1; i=$((i + 1))
	done
	sed 's/^/#   /' "$T/standby.log" | tail -n 20
	return 1
}
stop_standby() { kill -TERM "$SPID" 2>/dev/null; wait "$SPID" 2>/dev/null; }
sadmin() { "$BIN/mica-admin" -c "$SCONF" "$@"; }
trap 'stop_standby; cleanup' EXIT

start_standby || { not_ok "standby starts"; done_testing; }
ok "standby starts"
# caught up: the standby's applied seq reaches the primary's
pseq() { admin status 2>/dev/null | sed -n 's/^journal: .* at seq \([0-9]*\).*/\1/p'; }
sseq() { sadmin status 2>/dev/null | sed -n 's/^replica: applied seq \([0-9]*\),.*/\1/p'; }
catch_up() {
	i=0
	while [ $i -lt 200 ]; do
		[ "$(sseq)" = "$(pseq)" ] && return 0
		sleep 0.05; i=$((i + 1))
	done
	return 1
}
check "the standby catches up" catch_up

# ---- N revocations: the lag until the standby's OCSP says revoked ----
ocsp_status() {	# URL SERIAL -> good / revoked / other
	openssl ocsp -issuer "$P/ca.crt" -serial "0x$2" -url "$1" -no_nonce \
	    -CAfile "$P/ca.crt" 2>/dev/null | sed -n "s/^0x$2: //p" | head -n 1
}
: >"$T/lags"
bad_after=0
i=0
head -n "$N" "$T/serials" >"$T/to_revoke"
while read -r s; do
	if ! out=$(admin revoke "$s" --reason keyCompromise 2>&1); then
		not_ok "revoke $s on the primary"
		printf '%s\n' "$out" | sed 's/^/#   /' | head -n 3
		continue
	fi
	t0=$(date +%s%N)
	j=0
	while [ $j -lt 400 ]; do
		st=$(ocsp_status "http://127.0.0.1:$SHTTP" "$s")
		[ "$st" = "revoked" ] && break
		j=$((j + 1))
	done
	t1=$(date +%s%N)
	echo $(( (t1 - t0) / 1000000 )) >>"$T/lags"
	# after the lag bound: never good again
	st=$(ocsp_status "http://127.0.0.1:$SHTTP" "$s")
	[ "$st" = "revoked" ] || bad_after=$((bad_after + 1))
	i=$((i + 1))
done <"$T/to_revoke"
NL=$(wc -l <"$T/lags")
expect_eq "lag measured for every revocation" "$NL" "$N"
sort -n "$T/lags" >"$T/lags.sorted"
P50=$(sed -n "$(( (NL + 1) / 2 ))p" "$T/lags.sorted")
P99=$(sed -n "$(( (NL * 99 + 99) / 100 ))p" "$T/lags.sorted")
echo "# replication lag over $NL revocations (ack on the primary to revoked from the standby's OCSP, incl. one openssl ocsp run): p50 ${P50} ms, p99 ${P99} ms"
echo "# good answers after the lag bound: $bad_after"
expect_eq "good answers after the lag bound: 0" "$bad_after" 0

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
expect_exit 1 "the standby refuses a reissue (CA protocol)" reissue "$SCA_PORT"
expect_out "reissue refusal names the primary" \
    "this server is a standby; the primary is 127.0.0.1:$RPORT"
expect_exit 0 "standby status" sadmin status
expect_out "status: role" "role: standby of 127.0.0.1:$RPORT"
expect_out "status: lag" "lag 0 records, 0 ms"
expect_exit 0 "primary status" admin status
expect_out "primary status: role" "role: primary (epoch 1), replication on 127.0.0.1:$RPORT, 1 standby(s)"
check "standby /metrics: lag" sh -c "curl -sf http://127.0.0.1:$SHTTP/metrics | grep -q '^mica_replica_lag_records 0$'"
check "standby show works (reads)" sadmin show "$last"

# ---- corrupted records: the standby stops, naming the record ----
stop_standby
# the standby's seq while it is stopped: from its store
sseq_off() { "$BIN/mica-admin" digest --store "$S/store" 2>/dev/null | sed -n 's/^digest [0-9A-F]* seq //p'; }
A=$(sseq_off)
check "standby stopped at a seq ($A)" test -n "$A"
# more changes on the primary while the standby is away
for s in $(sed -n "$((N + 1)),$((N + 4))p" "$T/serials"); do
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
	expect_eq "$m: the standby's store is at seq $A" "$(sseq_off)" "$A"
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
expect_exit 0 "mica-admin promote on the standby" sadmin promote
expect_out "promote says the epoch" "promoted: epoch 2 at seq"
i=0
while [ $i -lt 100 ]; do
	sadmin status 2>/dev/null | grep -q '^role: primary (epoch 2)' && break
	sleep 0.1; i=$((i + 1))
done
expect_exit 0 "the promoted server's status" sadmin status
expect_out "it is the primary at epoch 2" "role: primary (epoch 2)"
s=$(sed -n "$((N + 6))p" "$T/serials")
expect_exit 0 "the promoted server takes a revocation" sadmin revoke "$s"
expect_eq "its OCSP says revoked" "$(ocsp_status "http://127.0.0.1:$SHTTP" "$s")" revoked
# a real reissue on the promoted server: mica reissue, then approve
# (the standby refused before LOGIN: the TOTP code was not spent; exit 4:
# the request waits for approval)
expect_exit 4 "mica reissue on the promoted server" reissue "$SCA_PORT"
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
expect_exit 1 "the old primary refuses mica-admin revoke" admin revoke "$(sed -n "$((N + 7))p" "$T/serials")"
expect_out "its refusal names the new primary" \
    "this server is a standby; the primary is 127.0.0.1:$SRPORT"
i=0
while [ $i -lt 100 ]; do
	[ "$(admin status | sed -n 's/^replica: applied seq \([0-9]*\),.*/\1/p')" = "$PROM_SEQ" ] && break
	sleep 0.1; i=$((i + 1))
done
expect_exit 0 "the old primary's status" admin status
expect_out "it followed the new primary to its seq" "applied seq $PROM_SEQ,"
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
expect_exit 1 "it still refuses writes" admin revoke "$(sed -n "$((N + 7))p" "$T/serials")"
expect_exit 0 "replica remove p1" "$BIN/mica-admin" -c "$PCONF" replica remove p1
expect_exit 0 "replica list after remove" "$BIN/mica-admin" -c "$PCONF" replica list
expect_eq "only sb1 is left" "$OUT" "sb1"
expect_exit 1 "replica remove of an unknown name" "$BIN/mica-admin" -c "$PCONF" replica remove nobody
expect_out "says so" "not registered"
stop_standby
stop_micad
done_testing
