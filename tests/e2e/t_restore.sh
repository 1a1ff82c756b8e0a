#!/bin/sh
# t_restore.sh - restores that never go back: a backup, then 100 status
# changes (issue, revoke, hold, release, reissue), then the backup restored
# exactly as the README says.  micad refuses the older store (exact
# message, -n too); with --accept-restore CRL numbers continue above every
# number ever published (RFC 5280 5.2.3), the revocations the backup lacks
# are applied again from the last published CRLs (openssl ocsp says
# revoked), and mica-admin status names what was lost.  Also: a first
# start creates the high-water mark, a corrupt or foreign mark is refused.
. "$(dirname "$0")/lib.sh"

D=$T/ca
mica_init "$D" || { not_ok "mica-admin init"; done_testing; }
conf_set "$CONF" review auto
HWM=$D/private/hwm
CA=$D/ca.crt
check "no high-water mark before the first start" test ! -e "$HWM"
start_micad || { not_ok "micad starts"; done_testing; }
check "first start creates the high-water mark" test -s "$HWM"
expect_eq "high-water mark is 0600" "$(stat -c %a "$HWM")" 600
expect_eq "high-water mark format" "$(head -n 1 "$HWM"),$(tail -n 1 "$HWM")" \
    "mica-hwm 1,end"

PW=$T/pw
echo 'correct-horse-battery' >"$PW"
MICA="$BIN/mica --server 127.0.0.1:$CA_PORT --ca $CA"
otp() { oathtool --totp -b "$(cat "$T/$1.secret")"; }

# enroll NAME: an account with one certificate $T/NAME.crt.
enroll() {
	admin account add "$1" --subject "/CN=$1/O=Org" \
	    --password-file "$PW" >"$T/$1.add" 2>&1 || return 1
	sed -n 's/^totp secret[^:]*: //p' "$T/$1.add" >"$T/$1.secret"
	make_csr "$T/$1.key" "$T/$1.csr" "/CN=$1/O=Org"
	admin issue --account "$1" --csr "$T/$1.csr" --out "$T/$1.crt" \
	    >/dev/null 2>&1
}

# issue N: certificate $T/c$N.crt for account "bulk"; prints nothing.
issue() {
	make_csr "$T/c$1.key" "$T/c$1.csr" "/CN=bulk/O=Org" &&
	admin issue --account bulk --csr "$T/c$1.csr" --out "$T/c$1.crt" \
	    >/dev/null 2>&1
}
S() { serial_of "$T/c$1.crt"; }

# ocsp_status CERT: good, revoked or unknown, as openssl ocsp says.
ocsp_status() {
	openssl ocsp -issuer "$CA" -cert "$1" -url "$URL/ocsp" -CAfile "$CA" \
	    -no_nonce 2>/dev/null | sed -n "s|^$1: ||p"
}

crl_number() {
	curl -sf -o "$T/fetched.crl" "$URL/crl${1:-}" &&
	openssl crl -inform DER -in "$T/fetched.crl" -noout -crlnumber |
	    sed 's/^crlNumber=//; s/^0x//'
}
hexdec() { [ -n "$1" ] && printf '%d' "0x$1"; }
hwm_get() { sed -n "s/^$1 //p" "$HWM"; }

# ---- before the backup: 60 certificates, 5 changes ----
admin account add bulk --subject "/CN=bulk/O=Org" --password-file "$PW" \
    >/dev/null 2>&1 || not_ok "account bulk"
enroll alice || not_ok "enroll alice"
enroll bob || not_ok "enroll bob"
n=1; bad=0
while [ $n -le 60 ]; do issue $n || bad=$((bad + 1)); n=$((n + 1)); done
expect_eq "60 certificates issued before the backup" "$bad" 0
for n in 56 57 58; do
	admin revoke "$(S $n)" --reason superseded >/dev/null 2>&1 ||
	    not_ok "revoke c$n"
done
admin hold "$(S 59)" >/dev/null 2>&1 || not_ok "hold c59"
admin hold "$(S 60)" >/dev/null 2>&1 || not_ok "hold c60"
SEQ_BACKUP=5
expect_exit 0 "backup" admin backup "$T/backup.mdb"
cp "$HWM" "$T/hwm.at-backup"

# ---- after the backup: 101 changes ----
bad=0
n=1
while [ $n -le 30 ]; do		# 30 revocations
	admin revoke "$(S $n)" --reason keyCompromise >/dev/null 2>&1 ||
	    bad=$((bad + 1))
	n=$((n + 1))
done
while [ $n -le 45 ]; do		# 15 holds
	admin hold "$(S $n)" >/dev/null 2>&1 || bad=$((bad + 1))
	n=$((n + 1))
done
while [ $n -le 50 ]; do		# 5 holds released: 10 changes
	admin hold "$(S $n)" >/dev/null 2>&1 || bad=$((bad + 1))
	admin unhold "$(S $n)" >/dev/null 2>&1 || bad=$((bad + 1))
	n=$((n + 1))
done
admin unhold "$(S 59)" >/dev/null 2>&1 || bad=$((bad + 1))	# 1 release
admin revoke "$(S 60)" --reason cessationOfOperation >/dev/null 2>&1 ||
    bad=$((bad + 1))						# 1 hold->revoked
n=101
while [ $n -le 120 ]; do	# 20 issued after the backup, 20 revoked
	issue $n || bad=$((bad + 1))
	admin revoke "$(S $n)" --reason affiliationChanged >/dev/null 2>&1 ||
	    bad=$((bad + 1))
	n=$((n + 1))
done
n=121
while [ $n -le 141 ]; do	# 21 issued and put on hold
	issue $n || bad=$((bad + 1))
	admin hold "$(S $n)" >/dev/null 2>&1 || bad=$((bad + 1))
	n=$((n + 1))
done
# 2 reissues over the CA protocol: each revokes the lost certificate
for who in alice bob; do
	$MICA reissue --account $who --lost-cert "$T/$who.crt" \
	    --key "$T/$who.new.key" --out "$T/$who.new.crt" \
	    --password-file "$PW" --otp "$(otp $who)" --reason lost \
	    >/dev/null 2>&1 || bad=$((bad + 1))
done
# 1 reason raised: c56, revoked as superseded before the backup, turns
# out compromised
admin revoke "$(S 56)" --reason keyCompromise >/dev/null 2>&1 ||
    bad=$((bad + 1))
expect_eq "101 changes after the backup" "$bad" 0
CHANGES=101
SEQ_LAST=$((SEQ_BACKUP + CHANGES))
expect_eq "OCSP: c1 revoked before the restore" "$(ocsp_status "$T/c1.crt")" \
    revoked
N_FULL=$(hexdec "$(crl_number)")
N_DELTA=$(hexdec "$(crl_number /delta.crl)")
check "CRL numbers fetched before the restore" test -n "$N_FULL" -a -n "$N_DELTA"
stop_micad
expect_eq "micad stops" "$?" 0
HWM_CRL=$(hwm_get crl_number)
expect_eq "high-water mark: revocation seq of the last change" \
    "$(hwm_get rev_seq)" "$SEQ_LAST"
check "high-water mark covers every CRL number fetched" \
    test "$HWM_CRL" -ge "$N_FULL" -a "$HWM_CRL" -ge "$N_DELTA"
check "a copy of the last full CRL is kept" test -s "$D/private/last-full.crl"
check "a copy of the last delta CRL is kept" test -s "$D/private/last-delta.crl"

# ---- restore as the README says, without the change journal (lost with
# the host; with it, micad would roll the backup forward: t_journal) ----
rm -f "$D/store/data.mdb" "$D/store/lock.mdb"
rm -rf "$D/journal"
cp "$T/backup.mdb" "$D/store/data.mdb"
chmod 700 "$D/store"
chmod 600 "$D/store/data.mdb"
chown -R "$(id -un)" "$D/store" "$D/private"

expect_exit 1 "micad -n reports the older store" "$BIN/micad" -c "$CONF" -n
STORE_CRL=$(printf '%s\n' "$OUT" | sed -n 's/.*its CRL number is \([0-9]*\) and.*/\1/p')
check "the store's CRL number is below the mark" \
    test -n "$STORE_CRL" -a "${STORE_CRL:-0}" -lt "$HWM_CRL"
MSG="refusing to start: store $D/store is older than what micad has already published: its CRL number is $STORE_CRL and its last revocation sequence $SEQ_BACKUP, but the high-water mark $HWM records CRL number $HWM_CRL and revocation sequence $SEQ_LAST (a restored backup?). Serving it would un-revoke certificates and reuse CRL numbers (RFC 5280 5.2.3). If the restore is intended, start once with micad --accept-restore: CRL numbers then continue above $HWM_CRL and the changes still listed in the last published CRLs are applied again"
expect_out "-n: exact message" "$MSG"
expect_exit 1 "micad refuses the older store (exit 1)" "$BIN/micad" -c "$CONF"
expect_out "micad: exact message" "$MSG"
expect_exit 0 "micad -n --accept-restore: configuration OK" \
    "$BIN/micad" -c "$CONF" -n --accept-restore
expect_out "-n --accept-restore says OK" "configuration OK"
check "the refusal changed nothing" cmp "$T/backup.mdb" "$D/store/data.mdb"

"$BIN/micad" -c "$CONF" --accept-restore >>"$T/micad.log" 2>&1 &
MICAD_PID=$!
i=0
while ! admin status >/dev/null 2>&1 && [ $i -lt 100 ] &&
    kill -0 "$MICAD_PID" 2>/dev/null; do
	sleep 0.1; i=$((i + 1))
done
check "micad --accept-restore starts" admin status
OUT=$(cat "$T/micad.log")
expect_out "log: what was lost" "restore: accepting store $D/store, older than what was published: lost revocation seq $((SEQ_BACKUP + 1))..$SEQ_LAST ($CHANGES revocations/holds/releases); CRL numbers up to $HWM_CRL were published"
expect_out "log: a lost issuance by serial" "serial=$(S 101) is listed in the last published CRL but unknown to this store: issued after the backup (lost issuance)"
expect_out "log: summary" "restore: 50 changes applied again from 2 published CRL(s)"

N_FULL=$(hexdec "$(crl_number)")
N_DELTA=$(hexdec "$(crl_number /delta.crl)")
check "next full CRL number $N_FULL is above every number published ($HWM_CRL)" \
    test "$N_FULL" -gt "$HWM_CRL"
check "next delta CRL number $N_DELTA is above every number published" \
    test "$N_DELTA" -gt "$HWM_CRL"

expect_exit 0 "status after the restore" admin status
expect_out "status names what was lost" "lost revocation seq $((SEQ_BACKUP + 1))..$SEQ_LAST ($CHANGES changes); CRL numbers continue above $HWM_CRL; 50 changes applied again from the last published CRLs; 41 revoked or held serials unknown to the store (lost issuances, see mica-admin audit)"
expect_exit 0 "status --json" admin status --json
expect_out "status --json has the restore" '"restore":"store restored on '

# every revocation survived: OCSP from the restored store
bad=""
for n in 1 17 30; do
	[ "$(ocsp_status "$T/c$n.crt")" = revoked ] || bad="$bad c$n"
done
expect_eq "OCSP: revoked after the backup -> revoked" "$bad" ""
bad=""
for n in 31 45; do
	[ "$(ocsp_status "$T/c$n.crt")" = revoked ] || bad="$bad c$n"
done
expect_eq "OCSP: held after the backup -> revoked (hold)" "$bad" ""
expect_eq "OCSP: held and released after the backup -> good" \
    "$(ocsp_status "$T/c46.crt")" good
expect_eq "OCSP: released after the backup -> good" \
    "$(ocsp_status "$T/c59.crt")" good
expect_eq "OCSP: hold turned into a revocation -> revoked" \
    "$(ocsp_status "$T/c60.crt")" revoked
expect_exit 0 "show c60" admin show "$(S 60)"
expect_out "c60 keeps the reason of the CRL" "reason: cessationOfOperation"
expect_eq "OCSP: lost certificate of a reissue -> revoked" \
    "$(ocsp_status "$T/alice.crt")" revoked
expect_eq "OCSP: never-changed certificate -> good" \
    "$(ocsp_status "$T/c55.crt")" good
expect_exit 0 "show c56" admin show "$(S 56)"
expect_out "c56: the reason raised after the backup is raised again" \
    "reason: keyCompromise"
expect_exit 0 "show c1" admin show "$(S 1)"
expect_out "c1: reason from the CRL" "reason: keyCompromise"
expect_exit 0 "audit lists the lost issuances" admin audit --json
expect_out "audit: restore.lost_issuance" '"action":"restore.lost_issuance"'
expect_out "audit: store.restore" '"action":"store.restore"'
check "audit chain verifies" admin audit --verify
# the new CRL lists what the backup lacked
curl -sf "$URL/crl" -o "$T/after.crl"
OUT=$(openssl crl -inform DER -in "$T/after.crl" -noout -text)
expect_out "full CRL lists c1" "$(S 1)"
expect_out "full CRL lists c31 (hold)" "$(S 31)"

# a new change continues above the mark, and restarts need no flag
check "revoke after the restore" admin revoke "$(S 54)" --reason superseded
stop_micad
expect_eq "high-water mark: new seq above the lost ones" \
    "$(hwm_get rev_seq)" "$((SEQ_LAST + 50 + 1))"
start_micad || not_ok "micad restarts without the flag"
expect_eq "OCSP after the restart: c54 revoked" \
    "$(ocsp_status "$T/c54.crt")" revoked
stop_micad

# ---- a corrupt or foreign high-water mark is refused ----
cp "$HWM" "$T/hwm.good"
head -c 40 "$T/hwm.good" >"$HWM"
expect_exit 1 "micad refuses a truncated mark" "$BIN/micad" -c "$CONF"
expect_out "truncated mark: message" "refusing to start: high-water mark: $HWM: line 3: truncated (no newline; the file must end with an \"end\" line). micad will not guess"
sed 's/^store_id .*/store_id 0123456789abcdef/' "$T/hwm.good" >"$HWM"
expect_exit 1 "micad refuses another store's mark" "$BIN/micad" -c "$CONF"
expect_out "foreign mark: message" "the high-water mark $HWM belongs to another store (id 0123456789abcdef"
cp "$T/hwm.good" "$HWM"
chmod 640 "$HWM"
expect_exit 1 "micad refuses a mark readable by group" "$BIN/micad" -c "$CONF"
chmod 600 "$HWM"
# an upgrade: no mark yet, the store has numbers: created, no refusal
rm -f "$HWM"
start_micad && ok "no mark (upgrade): micad starts" ||
    not_ok "no mark (upgrade): micad starts"
check "no mark (upgrade): created" test -s "$HWM"
stop_micad

# ---- [crl] publish_dir as the source; CRLs of another CA are ignored ----
D1=$D
D=$T/ca2
mica_init "$D" || not_ok "mica-admin init ca2"
CA=$D/ca.crt
HWM=$D/private/hwm
mkdir -m 700 "$T/pub"
sed -i "s|^#publish_dir = .*|publish_dir = $T/pub|" "$CONF"
grep -q "^publish_dir = $T/pub" "$CONF" || not_ok "publish_dir set"
start_micad || not_ok "micad ca2 starts"
admin account add bulk --subject "/CN=bulk/O=Org" --password-file "$PW" \
    >/dev/null 2>&1 || not_ok "account bulk (ca2)"
bad=0
for n in 201 202 203; do issue $n || bad=$((bad + 1)); done
admin backup "$T/backup2.mdb" >/dev/null 2>&1 || bad=$((bad + 1))
admin revoke "$(S 201)" --reason keyCompromise >/dev/null 2>&1 ||
    bad=$((bad + 1))
admin hold "$(S 202)" >/dev/null 2>&1 || bad=$((bad + 1))
expect_eq "ca2: 3 issued, backup, 2 changes" "$bad" 0
stop_micad
check "ca2: no copies next to the mark with a publish_dir" \
    test ! -e "$D/private/last-full.crl"
cp "$T/pub/full.crl" "$T/pub/delta.crl" "$T/"
restore2() {
	rm -f "$D/store/data.mdb" "$D/store/lock.mdb"
	rm -rf "$D/journal"
	cp "$T/backup2.mdb" "$D/store/data.mdb"
	chmod 600 "$D/store/data.mdb"
	expect_exit 1 "ca2: the older store is refused" "$BIN/micad" -c "$CONF"
	expect_out "ca2: refusal message" "is older than what micad has already published"
	: >"$T/micad.log"
	"$BIN/micad" -c "$CONF" --accept-restore >>"$T/micad.log" 2>&1 &
	MICAD_PID=$!
	i=0
	while ! admin status >/dev/null 2>&1 && [ $i -lt 100 ] &&
	    kill -0 "$MICAD_PID" 2>/dev/null; do
		sleep 0.1; i=$((i + 1))
	done
}
# first: the publish directory holds another CA's CRLs
cp "$D1/private/last-full.crl" "$T/pub/full.crl"
cp "$D1/private/last-delta.crl" "$T/pub/delta.crl"
restore2
OUT=$(cat "$T/micad.log")
expect_out "foreign full CRL ignored" "restore: last full CRL: $T/pub/full.crl: not signed by this CA (RFC 5280 6.3.3); ignored"
expect_out "foreign delta CRL ignored" "restore: last delta CRL: $T/pub/delta.crl: not signed by this CA (RFC 5280 6.3.3); ignored"
expect_exit 0 "ca2: status" admin status
expect_out "ca2: status says no CRL was found" "0 changes applied again from the last published CRLs (none found)"
expect_eq "ca2: without CRLs c201 stays as the backup had it" \
    "$(ocsp_status "$T/c201.crt")" good
stop_micad
# then: this CA's CRLs from the publish directory
cp "$T/full.crl" "$T/delta.crl" "$T/pub/"
restore2
OUT=$(cat "$T/micad.log")
expect_out "ca2: 2 changes applied again from publish_dir" "restore: 2 changes applied again from 2 published CRL(s)"
expect_eq "ca2: c201 revoked again" "$(ocsp_status "$T/c201.crt")" revoked
expect_eq "ca2: c202 on hold again" "$(ocsp_status "$T/c202.crt")" revoked
expect_eq "ca2: c203 good" "$(ocsp_status "$T/c203.crt")" good
stop_micad

done_testing
