#!/bin/sh
# t_signer.sh - the privilege-separated signer process.
#   - memory: after issuing, revoking, CRLs and nonce'd OCSP answers, the
#     private scalars of ca.key and ocsp.key (big- and little-endian),
#     their PKCS#8 DER and PEM text are in no micad process but the
#     signer (memscan.py reads /proc/PID/mem); the signer holds them (so
#     the scan can fail); no key file is mapped by the network process;
#   - policy: signer_probe (tests/helpers) starts the real signer for the
#     CA and sends it hand-built TBS: a CA certificate, one valid past the
#     CA, a reused serial, an OCSPSigning leaf, a foreign issuer, a CRL
#     with a lower number, a foreign CRL issuer, a foreign responderID:
#     each refused and logged in private/signer.log; a valid leaf and a
#     CRL numbered above the last are signed;
#   - lifecycle: kill -9 of the signer stops micad with exit status 1 and
#     a clear log line, what was committed stays; kill -9 of micad's
#     network process makes the signer exit.
. "$(dirname "$0")/lib.sh"

PROBE=${MICA_BUILD:-$TOP/build}/tests/signer_probe
PY=/usr/bin/python3
D=$T/ca
mica_init "$D" --cn "Signer Test CA" || { not_ok "init"; done_testing; }
conf_set "$CONF" review auto

# signer_pid: from micad's log line "signer process: pid=N ..."
signer_pid() {
	sed -n 's/.*signer process: pid=\([0-9]*\).*/\1/p' "$T/micad.log" |
	    tail -n 1
}

# gone PID: polls (bounded) until PID has exited
gone() {
	i=0
	while [ $i -lt 100 ]; do
		kill -0 "$1" 2>/dev/null || return 0
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}

# ---- memory ----
start_micad || { not_ok "micad starts"; done_testing; }
ok "micad starts"
SPID=$(signer_pid)
[ -n "$SPID" ] && kill -0 "$SPID" 2>/dev/null && ok "signer process runs" ||
    not_ok "signer process runs (pid '$SPID')"
check "the signer is a child of micad" \
    sh -c "[ \"\$(awk '/^PPid:/ { print \$2 }' /proc/$SPID/status)\" = $MICAD_PID ]"

printf 'pw-signer-1\n' >"$T/pw"
admin account add sue --subject "/CN=sue/O=Example" --password-file "$T/pw" \
    >/dev/null 2>&1 || not_ok "account add sue"
make_csr "$T/l1.key" "$T/l1.csr" "/CN=sue/O=Example"
expect_exit 0 "issue through the signer" admin issue --account sue \
    --csr "$T/l1.csr" --days 30 --out "$T/l1.crt"
check "the issued certificate verifies under the CA" \
    openssl verify -CAfile "$D/ca.crt" "$T/l1.crt"
S1=$(serial_of "$T/l1.crt")
grep -q " cert serial=$S1 " "$D/private/signer.log" &&
    ok "signer.log records the issued serial" ||
    not_ok "signer.log records the issued serial $S1"
make_csr "$T/l2.key" "$T/l2.csr" "/CN=sue/O=Example"
admin issue --account sue --csr "$T/l2.csr" --days 30 --out "$T/l2.crt" \
    >/dev/null 2>&1 || not_ok "issue l2"
S2=$(serial_of "$T/l2.crt")
expect_exit 0 "revoke l2 (a delta CRL is signed)" admin revoke "$S2" \
    --reason keyCompromise
expect_exit 0 "nonce'd OCSP answer signed by the signer" \
    openssl ocsp -issuer "$D/ca.crt" -CAfile "$D/ca.crt" -url "$URL/ocsp" \
    -cert "$T/l2.crt" -nonce
expect_out "it says revoked" "l2.crt: revoked"
expect_out "and verifies" "Response verify OK"
# OCSP batches: 16 threads x 25 nonce'd requests at once (the signatures
# reach the signer several to a write); each answer must echo its own
# nonce, be for its own certificate and verify under the OCSP signer
OUT=$(python3 "$TOP/tests/e2e/ocsp_nonce_burst.py" "$URL/ocsp" \
    "$D/ca.crt" "$D/ocsp.crt" 16 25 "$T/l1.crt" "$T/l2.crt" 2>&1)
[ "$OUT" = "ok 400" ] &&
    ok "400 concurrent nonce'd answers: own nonce, own certificate, verified" ||
    not_ok "400 concurrent nonce'd answers: $OUT"
grep -q "refused kind=ocsp" "$D/private/signer.log" &&
    not_ok "the signer refused none of them" ||
    ok "the signer refused none of them"
curl -sf "$URL/crl" -o "$T/full.crl" &&
    openssl crl -inform DER -in "$T/full.crl" -CAfile "$D/ca.crt" -noout \
    >/dev/null 2>&1 && ok "the full CRL verifies under the CA" ||
    not_ok "the full CRL verifies under the CA"
grep -q " crl crl=delta number=" "$D/private/signer.log" &&
    ok "signer.log records the delta CRL" ||
    not_ok "signer.log records the delta CRL"

for k in ca ocsp; do
	if grep -q "private/$k.key" "/proc/$MICAD_PID/maps"; then
		not_ok "$k.key is mapped by the network process"
	else
		ok "$k.key is not mapped by the network process"
	fi
done
KEYS=$D/private/ca.key,$D/private/ocsp.key
if $PY "$(dirname "$0")/memscan.py" "$KEYS" "$MICAD_PID" "$SPID" \
    >"$T/scan.out" 2>&1; then
	grep -q "^$MICAD_PID clean\$" "$T/scan.out" &&
	    ok "no CA or OCSP key material in the network process's memory" ||
	    { not_ok "key material in the network process"; cat "$T/scan.out"; }
	grep -q "^$SPID found" "$T/scan.out" &&
	    ok "the signer's memory holds the keys (the scan can find them)" ||
	    { not_ok "the scan finds the keys in the signer"; cat "$T/scan.out"; }
else
	not_ok "memscan.py ran"; cat "$T/scan.out"
fi

# ---- lifecycle: the signer dies ----
kill -9 "$SPID"
wait "$MICAD_PID"
rc=$?
MICAD_PID=""
[ $rc -eq 1 ] && ok "kill -9 of the signer: micad exits with status 1" ||
    not_ok "kill -9 of the signer: micad exits with status 1 (got $rc)"
grep -q "the signer process (pid $SPID) is gone" "$T/micad.log" &&
    ok "micad logs that the signer is gone" ||
    not_ok "micad logs that the signer is gone"
grep -q "stopped: the signer process is gone" "$T/micad.log" &&
    ok "micad logs its stop" || not_ok "micad logs its stop"

start_micad || { not_ok "micad restarts"; done_testing; }
expect_exit 0 "after the restart the issued certificate is there" \
    admin show "$S1"
expect_exit 0 "and the revocation too" \
    openssl ocsp -issuer "$D/ca.crt" -CAfile "$D/ca.crt" -url "$URL/ocsp" \
    -cert "$T/l2.crt" -no_nonce
expect_out "revoked after the restart" "l2.crt: revoked"

# ---- lifecycle: the network process dies ----
SPID=$(signer_pid)
kill -9 "$MICAD_PID"
wait "$MICAD_PID" 2>/dev/null
MICAD_PID=""
gone "$SPID" && ok "kill -9 of micad: the signer exits" ||
    not_ok "kill -9 of micad: the signer exits (pid $SPID still there)"
grep -q "signer: the network process is gone" "$T/micad.log" &&
    ok "the signer logs why it exits" || not_ok "the signer logs why it exits"

# ---- policy, through the signer's socket ----
if [ -x "$PROBE" ]; then
	"$PROBE" "$CONF" >"$T/probe.out" 2>"$T/probe.err"
	rc=$?
	[ $rc -eq 0 ] && ok "signer_probe: every answer as expected" ||
	    { not_ok "signer_probe (exit $rc)"; cat "$T/probe.out"; }
	for n in valid crl-high; do
		grep -q "^accepted $n\$" "$T/probe.out" && ok "signed: $n" ||
		    not_ok "signed: $n"
	done
	for n in ca-cert past-ca reused ocsp-eku wrong-issuer ca-key non-der \
	    crl-low crl-other ocsp-respid; do
		grep -q "^refused $n: signer refused: " "$T/probe.out" &&
		    ok "refused: $n" || not_ok "refused: $n"
	done
	L=$D/private/signer.log
	grep -q 'refused kind=cert .*subject="CN=probe-ca".*basicConstraints cA' \
	    "$L" && ok "signer.log: CA certificate refused with the rule" ||
	    not_ok "signer.log: CA certificate refused with the rule"
	grep -q 'refused kind=cert .*subject="CN=probe-long".*outside the CA' \
	    "$L" && ok "signer.log: validity past the CA refused" ||
	    not_ok "signer.log: validity past the CA refused"
	grep -q 'refused kind=cert .*subject="CN=probe-again".*signed before' \
	    "$L" && ok "signer.log: reused serial refused" ||
	    not_ok "signer.log: reused serial refused"
	grep -q 'refused kind=cert .*subject="CN=probe-cakey".*the CA.s or the OCSP signer.s own key' \
	    "$L" && ok "signer.log: the CA's key (compressed point) refused" ||
	    not_ok "signer.log: the CA's key (compressed point) refused"
	grep -q 'refused kind=cert reason="certificate: RFC 5280 4.1: not one DER TBSCertificate"' \
	    "$L" && ok "signer.log: a TBS that is not DER refused" ||
	    not_ok "signer.log: a TBS that is not DER refused"
	grep -q 'refused kind=crl crl=full number=999999999 .*not above 1000000000' \
	    "$L" && ok "signer.log: lower CRL number refused" ||
	    not_ok "signer.log: lower CRL number refused"
	grep -q 'signer: refused cert .*CN=probe-ca' "$T/probe.err" &&
	    ok "the signer logs refusals on stderr too" ||
	    not_ok "the signer logs refusals on stderr too"
	# the numbers it keeps: a restarted micad starts above them? no: it
	# is refused below them, said clearly
	grep -q "crl_full 1000000000 " "$D/private/signer.state" &&
	    ok "signer.state keeps the last full CRL number" ||
	    not_ok "signer.state keeps the last full CRL number"
else
	not_ok "signer_probe helper missing: make tests"
fi

done_testing
