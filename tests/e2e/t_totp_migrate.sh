#!/bin/sh
# t_totp_migrate.sh - TOTP secrets sealed at rest (issue 12).  The
# previous release (make prev: git archive of PREV_REV, built into
# $BUILD/prev/bin) makes a CA and two accounts: its store holds the TOTP
# secrets in clear.  The new micad opens it: makes private/totp.key
# (0600), seals every secret in one transaction, and logins still work.
# mdb_dump of the accounts database and of a backup shows neither the
# secret's bytes nor its base32; a missing key is refused, not replaced.
. "$(dirname "$0")/lib.sh"

BUILDDIR=${MICA_BUILD:-$TOP/build}
PREV=$BUILDDIR/prev/bin
PREV_REV=$(sed -n 's/^PREV_REV ?= //p' "$TOP/Makefile")
if [ ! -x "$PREV/micad" ] || [ ! -x "$PREV/mica-admin" ]; then
	# A shallow clone (CI) may lack the previous release: fetch that one
	# commit; without git history at all the test cannot run.
	if ! git -C "$TOP" cat-file -e "$PREV_REV^{commit}" 2>/dev/null &&
	    ! git -C "$TOP" fetch -q --depth=1 origin "$PREV_REV" \
	    >"$T/fetch.log" 2>&1; then
		ok "SKIP the previous release $PREV_REV is not in this clone and cannot be fetched (no git history)"
		done_testing
	fi
	make -C "$TOP" -s prev BUILD="$BUILDDIR" >"$T/prev.log" 2>&1 || {
		not_ok "build the previous release (make prev)"
		sed 's/^/#   /' "$T/prev.log" | tail -n 20
		done_testing
	}
fi
NEW=$BIN
PW=$T/pw
echo 'correct-horse-battery' >"$PW"

# ---- the old release: a CA, two accounts ----
BIN=$PREV
mica_init "$T/ca" || { not_ok "old mica-admin init"; done_testing; }
check "the old release makes no TOTP key" test ! -e "$T/ca/private/totp.key"
start_micad || { not_ok "old micad starts"; done_testing; }
for a in alice bob; do
	admin account add "$a" --subject "/CN=$a/O=Org" \
	    --password-file "$PW" >"$T/$a.add" 2>&1 ||
	    not_ok "old account add $a"
	sed -n 's/^totp secret[^:]*: //p' "$T/$a.add" >"$T/$a.secret"
done
stop_micad
BIN=$NEW
SECRET=$(cat "$T/alice.secret")
# the secret's bytes as mdb_dump prints them (lowercase hex)
HEX=$(/usr/bin/python3 -c 'import base64,sys; s=sys.argv[1]; print(base64.b32decode(s + "=" * (-len(s) % 8)).hex())' "$SECRET")
[ ${#HEX} -eq 40 ] && ok "alice's secret decoded (20 bytes)" ||
    not_ok "alice's secret decoded (got '$HEX')"
mdb_dump -s accounts "$T/ca/store" >"$T/old.dump" 2>&1
check "the old store holds alice's secret in clear (so the search below can fail)" \
    grep -q "$HEX" "$T/old.dump"

# ---- the new micad opens it ----
start_micad || { not_ok "new micad starts on the old store"; done_testing; }
check "the TOTP key was made" test -f "$T/ca/private/totp.key"
expect_eq "the TOTP key is mode 0600" \
    "$(stat -c %a "$T/ca/private/totp.key")" 600
expect_eq "the TOTP key has 32 bytes" \
    "$(stat -c %s "$T/ca/private/totp.key")" 32
check "micad logged the upgrade of both accounts" \
    grep -q "upgrade: the TOTP secrets of 2 accounts sealed" "$T/micad.log"
check "micad logged the schema upgrade" \
    grep -q "upgraded from schema 3 to 4" "$T/micad.log"

# no secret in the accounts database, in hex or base32, in any dump form
mdb_dump -s accounts "$T/ca/store" >"$T/new.dump" 2>&1
mdb_dump -p -s accounts "$T/ca/store" >"$T/new.pdump" 2>&1
check "accounts database dumped" grep -q "alice" "$T/new.pdump"
for f in new.dump new.pdump; do
	check "$f: no secret bytes" sh -c "! grep -qi '$HEX' '$T/$f'"
	check "$f: no base32 secret" sh -c "! grep -qi '$SECRET' '$T/$f'"
done
check "no file of the store holds the secret bytes" sh -c \
    "! grep -rqaF \"\$(/usr/bin/python3 -c 'import sys; sys.stdout.buffer.write(bytes.fromhex(sys.argv[1]))' $HEX)\" '$T/ca/store'"

# logins still work, with codes from the secrets the old release showed
MICA="$BIN/mica --server 127.0.0.1:$CA_PORT --ca $T/ca/ca.crt"
OUT=$($MICA list --account alice --password-file "$PW" \
    --otp "$(oathtool --totp -b "$SECRET")" 2>&1)
expect_eq "alice logs in after the migration" "$?" 0
OUT=$($MICA list --account bob --password-file "$PW" \
    --otp "$(oathtool --totp -b "$(cat "$T/bob.secret")")" 2>&1)
expect_eq "bob logs in after the migration" "$?" 0
OUT=$($MICA list --account bob --password-file "$PW" --otp 000000 2>&1)
expect_eq "a wrong code is still refused" "$?" 1

# a new account is sealed too
admin account add carol --subject "/CN=carol/O=Org" --password-file "$PW" \
    >"$T/carol.add" 2>&1 || not_ok "account add carol"
CSEC=$(sed -n 's/^totp secret[^:]*: //p' "$T/carol.add")
OUT=$($MICA list --account carol --password-file "$PW" \
    --otp "$(oathtool --totp -b "$CSEC")" 2>&1)
expect_eq "carol (a new account) logs in" "$?" 0

# ---- backup ----
OUT=$(admin backup "$T/backup.mdb" 2>&1)
expect_eq "backup exits 0" "$?" 0
expect_out "backup says the TOTP key is not in it" \
    "not in the backup: the TOTP key $T/ca/private/totp.key"
expect_out "... and to back it up separately" "back it up separately"
mdb_dump -n -a "$T/backup.mdb" >"$T/backup.dump" 2>&1
check "backup dumped" grep -q "accounts" "$T/backup.dump"
for s in "$HEX" "$SECRET" "$CSEC"; do
	check "backup dump: no secret ${s%"${s#??????}"}..." \
	    sh -c "! grep -qi '$s' '$T/backup.dump'"
done
KEYHEX=$(od -An -tx1 "$T/ca/private/totp.key" | tr -d ' \n')
check "backup dump: not the TOTP key either" \
    sh -c "! grep -qi '$KEYHEX' '$T/backup.dump'"
stop_micad

# ---- a missing key is refused, not silently replaced ----
mv "$T/ca/private/totp.key" "$T/totp.key.saved"
"$BIN/micad" -c "$CONF" >"$T/nokey.log" 2>&1
expect_eq "micad without its TOTP key refuses to start" "$?" 1
check "... and says to restore it" \
    grep -q "the TOTP key $T/ca/private/totp.key is missing" "$T/nokey.log"
check "... and made no new key" test ! -e "$T/ca/private/totp.key"
mv "$T/totp.key.saved" "$T/ca/private/totp.key"
chmod 644 "$T/ca/private/totp.key"
"$BIN/micad" -c "$CONF" >"$T/loose.log" 2>&1
expect_eq "micad refuses a TOTP key readable by others" "$?" 1
check "... naming the rule" grep -q "totp.key" "$T/loose.log"
chmod 600 "$T/ca/private/totp.key"
start_micad || not_ok "micad starts again with the key back"
OUT=$($MICA list --account alice --password-file "$PW" \
    --otp "$(oathtool --totp -b "$SECRET" --now "$(date -u -d \
    "@$(( $(date +%s) + 30 ))" '+%Y-%m-%d %H:%M:%S UTC')")" 2>&1)
expect_eq "alice logs in again (next step's code)" "$?" 0
stop_micad
done_testing
