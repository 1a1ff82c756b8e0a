#!/bin/sh
# t_fullstore.sh - a full store: LMDB map at its limit with growth
# disallowed ([store] map_size = 1M, no_grow = yes).  mica-admin issue in a
# bounded loop until an issuance fails; that failure must be a clear
# "store full" error, and afterwards OCSP still answers from what is
# stored, show/status/audit work, a revoke fails cleanly or succeeds (and
# OCSP agrees with whichever happened), micad restarts fine and the audit
# chain verifies.
. "$(dirname "$0")/lib.sh"

D=$T/ca
mica_init "$D" --cn "Full Store CA" || { not_ok "init"; done_testing; }
conf_set "$CONF" map_size 1M || not_ok "map_size 1M"
# init writes no no_grow line: add one to [store]
conf_set "$CONF" no_grow yes
check "no_grow = yes in [store]" grep -q '^no_grow = yes$' "$CONF"
start_micad || { not_ok "micad starts"; done_testing; }
ok "micad starts with a 1 MiB map and no growth"

printf 'full store pw 1\n' >"$T/pw"
admin account add bob --subject "/CN=bob/O=Full" --password-file "$T/pw" \
    >/dev/null 2>&1 || not_ok "account add bob"
make_csr "$T/b.key" "$T/b.csr" "/CN=bob/O=Full"
# The certificate revoked for keyCompromise has a key of its own: a key
# revoked for keyCompromise is never certified again.
make_csr "$T/r.key" "$T/r.csr" "/CN=bob/O=Full"
expect_exit 0 "issue the keeper certificate" admin issue --account bob \
    --csr "$T/b.csr" --out "$T/keep.crt"
expect_exit 0 "issue the certificate to revoke" admin issue --account bob \
    --csr "$T/r.csr" --out "$T/rev.crt"
expect_exit 0 "issue the certificate to revoke when full" admin issue \
    --account bob --csr "$T/b.csr" --out "$T/late.crt"
expect_exit 0 "status before filling" admin status
BASE=$(printf '%s\n' "$OUT" | sed -n 's/^certificates: \([0-9]*\) .*/\1/p')
KEEP=$(serial_of "$T/keep.crt")
REV=$(serial_of "$T/rev.crt")
LATE=$(serial_of "$T/late.crt")
expect_exit 0 "revoke before the store is full" admin revoke "$REV" \
    --reason keyCompromise

# Fill: one small CSR issued again and again.  1 MiB holds a few hundred
# certificates; the bound only stops a store that never fills.
i=0
FULL_RC=0
while [ $i -lt 3000 ]; do
	admin issue --account bob --csr "$T/b.csr" --out "$T/fill.crt" \
	    >"$T/fill.out" 2>&1
	FULL_RC=$?
	[ "$FULL_RC" -ne 0 ] && break
	i=$((i + 1))
done
echo "# issued $i certificates before the store was full"
expect_eq "an issuance fails before 3000 (store filled)" \
    "$([ $i -lt 3000 ] && echo yes)" yes
expect_eq "failed issue exits 1" "$FULL_RC" 1
OUT=$(cat "$T/fill.out")
echo "# issue said: $OUT"
expect_out "clear message: store full" \
    "store full (map at its limit or disk full)"
check "micad logs that growth is disabled" \
    grep -q 'store: map full and growth is disabled' "$T/micad.log"
check "micad still running" kill -0 "$MICAD_PID"
NISSUED=$((BASE + i))

# OCSP answers from what is stored
ocsp() {
	openssl ocsp -issuer "$D/ca.crt" -CAfile "$D/ca.crt" \
	    -url "$URL/ocsp" "$@"
}
expect_exit 0 "OCSP for the keeper when full" ocsp -cert "$T/keep.crt"
expect_out "OCSP: keeper good" "keep.crt: good"
expect_out "OCSP response verifies" "Response verify OK"
expect_exit 0 "OCSP for the revoked one when full" ocsp -cert "$T/rev.crt"
expect_out "OCSP: revoked stays revoked" "rev.crt: revoked"
expect_exit 0 "OCSP with no nonce (cacheable path)" ocsp -no_nonce \
    -cert "$T/keep.crt"
expect_out "OCSP no-nonce: good" "keep.crt: good"
expect_exit 0 "CRL still served" curl -sf -o "$T/full.crl" "$URL/crl"
expect_exit 0 "delta CRL still served" curl -sf -o "$T/delta.crl" \
    "$URL/crl/delta.crl"
# the full CRL comes on a schedule: the revocation is in the delta
check "served CRLs parse and list the revoked serial" sh -c \
    "openssl crl -inform DER -in '$T/full.crl' -noout -text >'$T/crls.txt' &&
    openssl crl -inform DER -in '$T/delta.crl' -noout -text >>'$T/crls.txt' &&
    grep -q 'Serial Number: $REV' '$T/crls.txt'"

expect_exit 0 "show works when full" admin show "$KEEP"
expect_out "show: keeper good" "status: good"
expect_exit 0 "status works when full" admin status
expect_out "status counts every issued certificate" \
    "certificates: $NISSUED "
expect_exit 0 "audit --verify when full" admin audit --verify

# A revoke now either fails with the same clear error or succeeds; OCSP
# must agree with what happened.
admin revoke "$LATE" --reason superseded >"$T/rv.out" 2>&1
RV=$?
OUT=$(cat "$T/rv.out")
echo "# revoke when full: exit $RV: $OUT"
if [ "$RV" -eq 0 ]; then
	ok "revoke when full succeeded"
	WANT=revoked
else
	expect_eq "revoke when full fails with exit 1" "$RV" 1
	expect_out "revoke failure says store full" \
	    "store full (map at its limit or disk full)"
	WANT=good
fi
expect_exit 0 "OCSP after the revoke attempt" ocsp -cert "$T/late.crt"
expect_out "OCSP agrees with the revoke result ($WANT)" "late.crt: $WANT"
expect_exit 0 "show after the revoke attempt" admin show "$LATE"
expect_out "show agrees with the revoke result ($WANT)" "status: $WANT"
expect_exit 0 "account add fails or succeeds cleanly" sh -c \
    "'$BIN/mica-admin' -c '$CONF' account add carol --subject /CN=carol \
    --password-file '$T/pw' >'$T/add.out' 2>&1; r=\$?; \
    [ \$r -eq 0 ] || { [ \$r -eq 1 ] && grep -q 'store full' '$T/add.out'; }"

# restart on the full store
stop_micad
expect_eq "micad stops cleanly on a full store (exit 0)" "$?" 0
start_micad || not_ok "micad restarts on a full store"
ok "micad restarted"
expect_exit 0 "audit --verify after restart" admin audit --verify
expect_exit 0 "OCSP keeper after restart" ocsp -cert "$T/keep.crt"
expect_out "after restart: keeper good" "keep.crt: good"
expect_exit 0 "OCSP revoked after restart" ocsp -cert "$T/rev.crt"
expect_out "after restart: revoked" "rev.crt: revoked"
expect_exit 0 "OCSP late after restart" ocsp -cert "$T/late.crt"
expect_out "after restart: late is $WANT" "late.crt: $WANT"
# pages freed by earlier transactions may be reusable now: an issue
# fails with the clear message or succeeds, nothing else
admin issue --account bob --csr "$T/b.csr" --out "$T/fill2.crt" \
    >"$T/fill2.out" 2>&1
RV=$?
OUT=$(cat "$T/fill2.out")
echo "# issue after restart: exit $RV: $OUT"
if [ "$RV" -eq 0 ]; then
	check "issued after restart: certificate verifies" \
	    openssl verify -CAfile "$D/ca.crt" "$T/fill2.crt"
else
	expect_eq "issue after restart fails with exit 1" "$RV" 1
	expect_out "after restart: clear message" \
	    "store full (map at its limit or disk full)"
fi

# growth allowed again: the same store takes writes
stop_micad
expect_eq "micad stops (exit 0)" "$?" 0
sed -i 's/^no_grow = yes$/no_grow = no/' "$CONF"
start_micad || not_ok "micad starts with growth allowed"
expect_exit 0 "issue works once growth is allowed" admin issue \
    --account bob --csr "$T/b.csr" --out "$T/grown.crt"
expect_exit 0 "audit --verify after growth" admin audit --verify
expect_exit 0 "OCSP for the new certificate" ocsp -cert "$T/grown.crt"
expect_out "new certificate good" "grown.crt: good"

done_testing
