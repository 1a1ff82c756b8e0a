#!/bin/sh
# t_writer.sh - store commits run on micad's writer thread, not on the
# event loop: WRITER_N (default 60) `mica-admin revoke`s run in parallel
# with as many `mica-admin status` calls; every one must succeed, every
# certificate must then be revoked (OCSP says so), and the audit chain
# must verify.  Structural: no timing is asserted.
. "$(dirname "$0")/lib.sh"

N=${WRITER_N:-60}
mica_init "$T/ca" || { not_ok "mica-admin init"; done_testing; }
conf_set "$CONF" log_level warn
start_micad || { not_ok "micad starts"; done_testing; }
CA=$T/ca/ca.crt
PW=$T/pw
echo 'correct-horse-battery' >"$PW"
SUBJ="/CN=w/O=Org"
make_csr "$T/w.key" "$T/w.csr" "$SUBJ"
admin account add w --subject "$SUBJ" --password-file "$PW" >/dev/null 2>&1 ||
    { not_ok "account add"; done_testing; }
i=0
while [ $i -lt "$N" ]; do
	i=$((i + 1))
	admin issue --account w --csr "$T/w.csr" --out "$T/c$i.crt" \
	    >/dev/null 2>&1 || { not_ok "issue $i"; done_testing; }
done
ok "$N certificates issued"

pids=
i=0
while [ $i -lt "$N" ]; do
	i=$((i + 1))
	s=$(serial_of "$T/c$i.crt")
	( admin revoke "$s" --reason superseded >"$T/r$i.out" 2>&1
	  echo $? >"$T/r$i.rc" ) &
	pids="$pids $!"
	( admin status >"$T/s$i.out" 2>&1; echo $? >"$T/s$i.rc" ) &
	pids="$pids $!"
done
# shellcheck disable=SC2086
wait $pids	# not micad
bad_r=0
bad_s=0
i=0
while [ $i -lt "$N" ]; do
	i=$((i + 1))
	[ "$(cat "$T/r$i.rc")" = 0 ] || bad_r=$((bad_r + 1))
	[ "$(cat "$T/s$i.rc")" = 0 ] && grep -qE '^([0-9TZ:-]+ )?micad: running' "$T/s$i.out" ||
	    bad_s=$((bad_s + 1))
done
expect_eq "revokes that failed" "$bad_r" 0
expect_eq "status calls that failed" "$bad_s" 0
expect_eq "revoked certificates in status" \
    "$(admin status --json | sed -n 's/.*"revoked":\([0-9]*\).*/\1/p')" "$N"
last=$(serial_of "$T/c$N.crt")
expect_eq "OCSP for the last one" "$(openssl ocsp -issuer "$CA" \
    -serial "0x$last" -url "$URL/ocsp" -CAfile "$CA" -no_nonce 2>/dev/null |
    sed -n "s/^0x$last: //p")" revoked
check "audit chain verifies" admin audit --verify
stop_micad
done_testing
