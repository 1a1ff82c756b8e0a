#!/bin/sh
# t_journal.sh - the change journal and point-in-time restore: a backup,
# then a load of issuances (4 admin clients, build/tests/issue_load) and
# reissues (real mica reissue + mica-admin approve), micad killed with
# SIGKILL in the middle; the backup plus the journal restored into a new
# directory holds every certificate and revocation a client was told of,
# its audit chain verifies, mica-admin check passes on it, and its digest
# equals the killed store's at the same journal seq.  Then the journal
# altered three ways (a record cut short, two records swapped, one byte
# changed): the restore stops with the exact error naming the segment
# file and the record, and leaves nothing behind.
. "$(dirname "$0")/lib.sh"

LOAD=${MICA_BUILD:-$TOP/build}/tests/issue_load
[ -x "$LOAD" ] || { not_ok "issue_load helper missing"; done_testing; }

mica_init "$T/ca" || { not_ok "mica-admin init"; done_testing; }
D=$T/ca
J=$D/journal
# small segments: the load rotates through several
conf_set "$CONF" journal_segment_size 64K
start_micad || { not_ok "micad starts"; done_testing; }
expect_exit 0 "status shows the journal" admin status
expect_out "status: journal line" "journal: $J at seq"

CA=$D/ca.crt
MICA="$BIN/mica --server 127.0.0.1:$CA_PORT --ca $CA"
PW=$T/pw
echo 'correct-horse-battery' >"$PW"
admin account add bulk --subject "/CN=bulk/O=Org" --password-file "$PW" \
    >/dev/null 2>&1 || not_ok "account bulk"
make_csr "$T/bulk.key" "$T/bulk.csr" "/CN=bulk/O=Org"
enroll() {
	admin account add "$1" --subject "/CN=$1/O=Org" \
	    --password-file "$PW" >"$T/$1.add" 2>&1 || return 1
	sed -n 's/^totp secret[^:]*: //p' "$T/$1.add" >"$T/$1.secret"
	make_csr "$T/$1.key" "$T/$1.csr" "/CN=$1/O=Org"
	admin issue --account "$1" --csr "$T/$1.csr" --out "$T/$1.crt" \
	    >/dev/null 2>&1
}
USERS="u1 u2 u3 u4 u5 u6 u7 u8"
for u in $USERS; do enroll "$u" || not_ok "enroll $u"; done

admin account add gone --subject "/CN=gone/O=Org" --password-file "$PW" \
    >/dev/null 2>&1 || not_ok "account gone"

# ---- yesterday's backup ----
expect_exit 0 "backup" admin backup "$T/backup.mdb"
# an account removed after the backup stays removed after the restore
# (the digests below cover the accounts)
expect_exit 0 "account remove after the backup" admin account remove gone

# ---- the load: issuances and reissues, killed in the middle ----
: >"$T/acked"
: >"$T/revoked"
"$LOAD" -s "$D/admin.sock" -a bulk -r "$T/bulk.csr" -c 4 -n 100000 \
    -o "$T/acked" >"$T/load.out" 2>&1 &
LPID=$!
(
	for u in $USERS; do
		code=$(oathtool --totp -b "$(cat "$T/$u.secret")")
		$MICA reissue --account "$u" --lost-cert "$T/$u.crt" \
		    --key "$T/$u.new.key" --out "$T/$u.new.crt" \
		    --password-file "$PW" --otp "$code" --no-wait \
		    >"$T/$u.re" 2>&1
		id=$(sed -n 's/^request: //p' "$T/$u.re")
		[ -n "$id" ] || continue
		# acknowledged: approve exited 0, the lost one is revoked
		if "$BIN/mica-admin" -c "$CONF" approve "$id" \
		    >/dev/null 2>&1; then
			serial_of "$T/$u.crt" >>"$T/revoked"
		fi
	done
) &
RPID=$!
# kill once every reissue was tried and the clients were told of 300
# issuances (bounded: 60 s)
i=0
while [ $i -lt 600 ]; do
	kill -0 "$RPID" 2>/dev/null || [ ! -s "$T/acked" ] ||
	    [ "$(wc -l <"$T/acked")" -lt 300 ] || break
	sleep 0.1; i=$((i + 1))
done
kill -KILL "$MICAD_PID"
wait "$MICAD_PID" 2>/dev/null
MICAD_PID=""
wait "$LPID" 2>/dev/null
wait "$RPID" 2>/dev/null
NACK=$(wc -l <"$T/acked")
NREV=$(wc -l <"$T/revoked")
check "clients were told of issuances before the kill ($NACK)" \
    test "$NACK" -ge 300
check "reissues were approved before the kill ($NREV)" test "$NREV" -ge 1

# the killed store, as it is on disk: its digest and journal seq
expect_exit 0 "digest of the killed store" \
    "$BIN/mica-admin" digest --store "$D/store"
PSEQ=$(printf '%s\n' "$OUT" | sed -n 's/^digest [0-9A-F]* seq //p')
PDIG=$(printf '%s\n' "$OUT" | sed -n 's/^digest \([0-9A-F]*\) seq .*/\1/p')
check "the killed store is at a journal seq" test -n "$PSEQ"
expect_exit 0 "the journal verifies" "$BIN/mica-admin" journal verify \
    --journal "$J"
NSEG=$(ls "$J" | grep -c '\.mjnl$')
check "the journal rotated ($NSEG segments)" test "$NSEG" -ge 2

# ---- restore the backup plus the journal into a new directory ----
expect_exit 0 "restore backup + journal" "$BIN/mica-admin" restore \
    "$T/backup.mdb" --journal "$J" --to "$T/restored"
RSEQ=$(printf '%s\n' "$OUT" | sed -n 's/^digest [0-9A-F]* seq //p')
check "the restore reaches the journal's end (>= the store's seq)" \
    test "$RSEQ" -ge "$PSEQ"
expect_exit 0 "restore --until the killed store's seq" \
    "$BIN/mica-admin" restore "$T/backup.mdb" --journal "$J" \
    --to "$T/restored-until" --until "$PSEQ"
expect_out "digest at seq $PSEQ equals the killed store's" \
    "digest $PDIG seq $PSEQ"
expect_exit 1 "restore into an existing directory is refused" \
    "$BIN/mica-admin" restore "$T/backup.mdb" --journal "$J" \
    --to "$T/restored"
expect_out "refusal names the directory" "$T/restored: exists"

# ---- a day-0 backup takes only its own CA's journal ----
# A store at seq 0 (copied right after init, before micad ever wrote)
# chains to a hash of its own random id: another CA's journal is of
# another history from its first record; its own is restored.
OCONF=$CONF
mica_init "$T/x" || not_ok "mica-admin init of a second CA"
XCONF=$CONF
cp "$T/x/store/data.mdb" "$T/x0.mdb"
expect_exit 1 "day-0 backup of CA x + CA d's journal: refused" \
    "$BIN/mica-admin" restore "$T/x0.mdb" --journal "$J" --to "$T/xbad"
expect_out "the refusal names the first record: another history" \
    "record seq 1 at offset 0: previous-hash does not match the store's last record (the journal is of another history)"
check "nothing left behind" test ! -e "$T/xbad"
start_micad "$XCONF" || not_ok "CA x starts"
admin account add xa --subject "/CN=xa/O=Org" --password-file "$PW" \
    >/dev/null 2>&1 || not_ok "account xa on CA x"
stop_micad
XDIG=$("$BIN/mica-admin" digest --store "$T/x/store" | sed -n 's/^digest //p')
expect_exit 0 "day-0 backup of CA x + its own journal: restored" \
    "$BIN/mica-admin" restore "$T/x0.mdb" --journal "$T/x/journal" \
    --to "$T/xok"
expect_out "equal to CA x's store (digest $XDIG)" "digest $XDIG"
CONF=$OCONF
export MICA_CONF=$CONF

# a CA directory on the restored store: keys, conf and mark copied, the
# store replaced, a journal of its own, new ports
R=$T/r
cp -r "$D" "$R"
rm -rf "$R/store" "$R/journal" "$R/admin.sock"
mv "$T/restored" "$R/store"
RCA_PORT=$(free_port); RHTTP_PORT=$(free_port)
sed -i "s|$D|$R|g; s|127.0.0.1:$CA_PORT|127.0.0.1:$RCA_PORT|g;
    s|127.0.0.1:$HTTP_PORT|127.0.0.1:$RHTTP_PORT|g" "$R/mica.conf"
CONF=$R/mica.conf
start_micad "$CONF" || { not_ok "micad starts on the restored store"; done_testing; }
ok "micad starts on the restored store (the mark is not ahead of it)"
admin list >"$T/list" 2>&1
missing=0
while read -r s; do
	grep -q "^$s " "$T/list" || { missing=$((missing + 1)); echo "# lost: $s"; }
done <"$T/acked"
expect_eq "every acknowledged issuance is in the restored store" "$missing" 0
notrev=0
while read -r s; do
	admin show "$s" 2>&1 | grep -q '^status: revoked' ||
	    { notrev=$((notrev + 1)); echo "# not revoked: $s"; }
done <"$T/revoked"
expect_eq "every acknowledged reissue's lost certificate is revoked" \
    "$notrev" 0
expect_exit 0 "audit chain intact" admin audit --verify
expect_exit 0 "mica-admin check passes on the restored store" admin check
expect_exit 0 "digest through the admin socket" admin digest
check "it prints a BLAKE2b-256 digest and the journal seq" \
    sh -c "printf '%s\n' \"\$1\" | grep -Eq '^digest [0-9A-F]{64} seq [0-9]+\$'" \
    sh "$OUT"
stop_micad

# ---- the primary restarted on its own store: journal and store agree ---
CONF=$D/mica.conf
start_micad "$CONF" || not_ok "the killed primary restarts on its store"
expect_exit 0 "status after the restart" admin status
stop_micad
if [ "$RSEQ" -gt "$PSEQ" ]; then
	# records fsync'd to the journal, the kill before the LMDB commit
	OUT=$(cat "$T/micad.log")
	expect_out "the restart rolled the uncommitted records forward" \
	    "records (seq $((PSEQ + 1))..$RSEQ) were written but not committed before a crash; applied"
fi
expect_exit 0 "digest of the restarted store" \
    "$BIN/mica-admin" digest --store "$D/store"
SSEQ=$(printf '%s\n' "$OUT" | sed -n 's/^digest [0-9A-F]* seq //p')
check "the restarted store holds the journal's end ($SSEQ >= $RSEQ)" \
    test "$SSEQ" -ge "$RSEQ"
expect_exit 0 "its journal verifies" "$BIN/mica-admin" journal verify \
    --journal "$J"
expect_out "the journal ends where the store is" "..$SSEQ, "

# ---- tampering: truncated, reordered, altered ----
# rec_at SEG K: "OFFSET SEQ" of the K-th record (from 0) of a segment
rec_at() {
	/usr/bin/python3 - "$1" "$2" <<'EOF'
import struct, sys
b = open(sys.argv[1], 'rb').read()
off, k = 0, int(sys.argv[2])
while True:
    ln = struct.unpack('>I', b[off + 4:off + 8])[0]
    if k == 0:
        print(off, struct.unpack('>Q', b[off + 9:off + 17])[0], 8 + ln + 32)
        break
    off += 8 + ln + 32
    k -= 1
EOF
}
# the segment holding the record after the backup's position
BSEQ=$("$BIN/mica-admin" restore "$T/backup.mdb" --journal "$J" \
    --to "$T/probe" --until "$PSEQ" | sed -n 's/.*backup at journal seq \([0-9]*\),.*/\1/p')
rm -rf "$T/probe"
FIRST=$(ls "$J" | grep '\.mjnl$' | head -n 1)
SEG=$(ls "$J" | grep '\.mjnl$' | tail -n 1)
MID=$(ls "$J" | grep '\.mjnl$' | sed -n 2p)	# a full segment
tamper_setup() {
	rm -rf "$T/j2"
	cp -r "$J" "$T/j2"
}
restore_bad() {	# restore_bad NAME MESSAGE
	expect_exit 1 "$1: restore stops" "$BIN/mica-admin" restore \
	    "$T/backup.mdb" --journal "$T/j2" --to "$T/bad"
	expect_out "$1: exact error" "$2"
	check "$1: nothing left behind" test ! -e "$T/bad"
	expect_eq "$1: no scratch directory left" \
	    "$(ls -d "$T"/bad.restore-* 2>/dev/null | wc -l)" 0
}

# truncated: the last record of the last segment loses its last 5 bytes
tamper_setup
set -- $(/usr/bin/python3 -c '
import struct, sys
b = open(sys.argv[1], "rb").read()
off = 0; last = None
while off < len(b):
    ln = struct.unpack(">I", b[off + 4:off + 8])[0]
    last = (off, struct.unpack(">Q", b[off + 9:off + 17])[0], 8 + ln + 32)
    off += 8 + ln + 32
print(*last)' "$T/j2/$SEG")
TOFF=$1; TSEQ=$2; TLEN=$3
truncate -s -5 "$T/j2/$SEG"
restore_bad "truncated" "mica-admin: restore: journal $T/j2/$SEG: record seq $TSEQ at offset $TOFF: truncated: $((TLEN - 5)) of $TLEN bytes (a torn last record after a crash? --until the seq before it stops in front of it); nothing restored"
expect_exit 0 "truncated: --until the seq before it restores" \
    "$BIN/mica-admin" restore "$T/backup.mdb" --journal "$T/j2" \
    --to "$T/bad" --until $((TSEQ - 1))
rm -rf "$T/bad"

# reordered: records 1 and 2 of the second segment swapped
tamper_setup
set -- $(rec_at "$T/j2/$MID" 1); O1=$1; S1=$2; L1=$3
set -- $(rec_at "$T/j2/$MID" 2); O2=$1; S2=$2; L2=$3
/usr/bin/python3 - "$T/j2/$MID" "$O1" "$L1" "$L2" <<'EOF'
import sys
p, o1, l1, l2 = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
b = bytearray(open(p, 'rb').read())
r1, r2 = b[o1:o1 + l1], b[o1 + l1:o1 + l1 + l2]
b[o1:o1 + l1 + l2] = r2 + r1
open(p, 'wb').write(b)
EOF
restore_bad "reordered" "mica-admin: restore: journal $T/j2/$MID: record seq $S2 at offset $O1: expected seq $S1 (records reordered or missing); nothing restored"

# altered: one byte inside record 1 of the second segment
tamper_setup
set -- $(rec_at "$T/j2/$MID" 1); O1=$1; S1=$2
/usr/bin/python3 - "$T/j2/$MID" $((O1 + 60)) <<'EOF'
import sys
p, o = sys.argv[1], int(sys.argv[2])
b = bytearray(open(p, 'rb').read())
b[o] ^= 0x01
open(p, 'wb').write(b)
EOF
restore_bad "altered" "mica-admin: restore: journal $T/j2/$MID: record seq $S1 at offset $O1: hash does not match the content (altered or damaged); nothing restored"

# a missing segment: the records after the backup are not all there
tamper_setup
SECOND=$(ls "$T/j2" | grep '\.mjnl$' | sed -n 2p)
rm -f "$T/j2/$SECOND"
expect_exit 1 "missing segment: restore stops" "$BIN/mica-admin" restore \
    "$T/backup.mdb" --journal "$T/j2" --to "$T/bad"
expect_out "missing segment: the gap is named" "(records missing)"
check "missing segment: nothing left behind" test ! -e "$T/bad"
: "$BSEQ" "$FIRST"

# ---- the high-water mark's journal_seq: a store restored without its
# journal is refused even when no revocation was lost ----
CONF=$D/mica.conf
start_micad "$CONF" || not_ok "the primary starts again"
expect_exit 0 "backup before one more issuance" admin backup "$T/b2.mdb"
expect_exit 0 "one more issuance" admin issue --account bulk \
    --csr "$T/bulk.csr" --out "$T/last.crt"
stop_micad
# micad -n checks the journal as the start would
expect_exit 0 "micad -n: the journal matches the store" "$BIN/micad" \
    -c "$CONF" -n
expect_out "micad -n names the journal's position" "journal $J at seq "
conf_set "$CONF" journal_dir /nonexistent/parent/journal
expect_exit 1 "micad -n: a journal_dir that cannot be made is refused" \
    "$BIN/micad" -c "$CONF" -n
expect_out "the refusal says why" "journal_dir /nonexistent/parent/journal \
does not exist and cannot be made in /nonexistent/parent: No such file"
: >"$T/jfile"
conf_set "$CONF" journal_dir "$T/jfile"
expect_exit 1 "micad -n: a journal_dir that is a file is refused" \
    "$BIN/micad" -c "$CONF" -n
expect_out "the refusal names it" "journal_dir $T/jfile is not a directory"
conf_set "$CONF" journal_dir "$J"
rm -rf "$D/store" "$J"
mkdir -m 700 "$D/store" && cp "$T/b2.mdb" "$D/store/data.mdb"
expect_exit 1 "a store behind the mark's journal seq is refused" \
    "$BIN/micad" -c "$CONF"
expect_out "the refusal names both seqs" "but the high-water mark $D/private/hwm records seq"
expect_out "the refusal says how to restore" "mica-admin restore BACKUP --journal DIR --to NEWDIR"

done_testing
