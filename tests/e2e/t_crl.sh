#!/bin/sh
# CRLs end to end against a real micad: full and delta CRLs over HTTP,
# checked by openssl verify -crl_check (-use_deltas), openssl crl and
# gnutls certtool; revocation, hold (certificateHold) and release
# (removeFromCRL); numbers; caching headers; the publish directory.
. "$(dirname "$0")/lib.sh"

D=$T/ca
mica_init "$D" --cn "CRL Test CA" || { not_ok "init"; done_testing; }
mkdir -p "$T/pub"
sed -i "s|^#publish_dir[ 	]*=.*|publish_dir = $T/pub|" "$CONF"
if grep -q "^publish_dir = $T/pub\$" "$CONF"; then
	PUB=1
else
	PUB=0
	not_ok "publish_dir set in the test's mica.conf"
fi
start_micad || { not_ok "micad starts"; done_testing; }
ok "micad starts"

printf 'carol password 1\n' >"$T/pw"
admin account add carol --subject "/CN=carol/O=Example" \
    --password-file "$T/pw" >/dev/null 2>&1 || not_ok "account add carol"
for n in 1 2 3; do
	make_csr "$T/c$n.key" "$T/c$n.csr" "/CN=carol/O=Example"
	admin issue --account carol --csr "$T/c$n.csr" --days 30 \
	    --out "$T/c$n.crt" >/dev/null 2>&1 || not_ok "issue c$n"
done
S2=$(serial_of "$T/c2.crt")
S3=$(serial_of "$T/c3.crt")

# get NAME PATH: downloads $URL$PATH to $T/NAME
get() {
	curl -sf -o "$T/$1" -D "$T/$1.hdr" "$URL$2"
}
# verify CERT CRL...: openssl verify with CRL checking and deltas; only
# with -extended_crl does openssl apply a delta to its base (without it,
# it takes the newest CRL given as THE CRL: x509_vfy.c get_crl_score)
verify() {
	cert=$1; shift
	args=""
	for c in "$@"; do args="$args -CRLfile $T/$c"; done
	# shellcheck disable=SC2086
	openssl verify -crl_check -extended_crl -use_deltas \
	    -CAfile "$D/ca.crt" $args "$T/$cert"
}
# crl_num FILE: the cRLNumber of a PEM CRL, as openssl prints it (hex)
crl_num() {
	openssl crl -in "$T/$1" -noout -crlnumber |
	    sed 's/^crlNumber=//; s/^0x//'
}
# wait_full_above HEX NAME: after a start, micad serves the full CRL it
# published last (if still current and the last the signer signed) until
# its first build, which runs in the background (slow under valgrind);
# polls GET /crl/full.pem into $T/NAME until its number is above HEX
# (bounded: 60 s)
wait_full_above() {
	i=0
	while [ $i -lt 600 ]; do
		if get "$2" /crl/full.pem &&
		    [ $((0x$(crl_num "$2"))) -gt $((0x$1)) ]; then
			return 0
		fi
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}

check "GET /crl/full.crl.pem" get full0.pem /crl/full.crl.pem
check "GET /crl/delta.crl.pem" get delta0.pem /crl/delta.crl.pem
check "GET /crl (DER)" get full0.der /crl
# every name: DER, the same + ".pem", and the older .pem names
for n in /crl /crl/full.crl /crl/delta.crl; do
	kind=full
	case $n in *delta*) kind=delta ;; esac
	check "GET $n = GET $n.pem" sh -c "curl -sf '$URL$n' >'$T/n.der' &&
	    curl -sf '$URL$n.pem' | openssl crl -outform DER | cmp - '$T/n.der'"
	check "GET $n.pem = GET /crl/$kind.pem" sh -c "curl -sf '$URL$n.pem' \
	    >'$T/n.pem' && curl -sf '$URL/crl/$kind.pem' | cmp - '$T/n.pem'"
done
for n in /crl/full /crl/delta /crl/full.der /crl.crl; do
	CODE=$(curl -s -o /dev/null -w '%{http_code}' "$URL$n")
	expect_eq "$n gives 404" "$CODE" 404
done
expect_exit 0 "full CRL verifies with the CA" openssl crl -in "$T/full0.der" \
    -inform DER -CAfile "$D/ca.crt" -noout -verify
expect_out "verify OK" "verify OK"
expect_exit 0 "DER and PEM are the same CRL" cmp "$T/full0.der" \
    "$(openssl crl -in "$T/full0.pem" -outform DER -out "$T/full0.pem.der" \
    && echo "$T/full0.pem.der")"
if grep -qi '^Content-Type: application/pkix-crl' "$T/full0.der.hdr"; then
	ok "Content-Type application/pkix-crl"
else
	not_ok "Content-Type application/pkix-crl"
fi
if grep -qi '^Content-Type: application/x-pem-file' "$T/full0.pem.hdr"; then
	ok "Content-Type application/x-pem-file"
else
	not_ok "Content-Type application/x-pem-file"
fi
ETAG=$(sed -n 's/^[Ee][Tt]ag: *//p' "$T/full0.der.hdr" | tr -d '\r')
CODE=$(curl -s -o /dev/null -w '%{http_code}' -H "If-None-Match: $ETAG" \
    "$URL/crl/full.crl")
expect_eq "If-None-Match gives 304" "$CODE" 304
CODE=$(curl -s -o /dev/null -w '%{http_code}' "$URL/crl/nothing.crl")
expect_eq "unknown CRL path gives 404" "$CODE" 404
grep -qi '^Cache-Control: max-age=' "$T/full0.der.hdr" &&
    grep -qi '^Last-Modified: ' "$T/full0.der.hdr" &&
    ok "Cache-Control and Last-Modified" ||
    not_ok "Cache-Control and Last-Modified"

expect_exit 0 "c2 good with full + delta" verify c2.crt full0.pem delta0.pem
expect_out "c2 OK" "c2.crt: OK"
expect_exit 0 "certtool reads the full CRL" certtool --crl-info --inder \
    --infile "$T/full0.der"
expect_out "certtool: version 2" "Version: 2"

# revoke c2: the delta has it at once, the old full CRL does not
expect_exit 0 "revoke c2 keyCompromise" admin revoke "$S2" \
    --reason keyCompromise
check "GET delta after the revocation" get delta1.pem /crl/delta.pem
expect_exit 0 "delta names the full CRL as its base" openssl crl \
    -in "$T/delta1.pem" -noout -text
expect_out "delta CRL indicator" "Delta CRL Indicator"
expect_out "expiredCertsOnCRL (2.5.29.60) present" "2.5.29.60"
expect_out "delta lists c2" "Serial Number: $S2"
expect_out "with keyCompromise" "Key Compromise"
expect_exit 0 "old full alone still accepts c2" verify c2.crt full0.pem
expect_exit 2 "old full + new delta reject c2" verify c2.crt full0.pem \
    delta1.pem
expect_out "c2 revoked via the delta" "certificate revoked"
expect_exit 0 "c1 still good with full + delta" verify c1.crt full0.pem \
    delta1.pem
N0=$(crl_num full0.pem)
N1=$(crl_num delta1.pem)
if [ $((0x$N1)) -gt $((0x$N0)) ]; then
	ok "delta number $N1 above full number $N0"
else
	not_ok "delta number $N1 above full number $N0"
fi

# the full CRL is not rebuilt on a change (it is on a schedule)
check "GET full after the revocation" get full0b.pem /crl/full.pem
expect_eq "full CRL unchanged by a revocation" "$(crl_num full0b.pem)" \
    "$(crl_num full0.pem)"
# mica-admin crl rebuilds at once: the new full lists c2 itself
expect_exit 0 "mica-admin crl" admin crl
check "GET the new full" get full1.pem /crl/full.pem
expect_exit 2 "new full alone rejects c2" verify c2.crt full1.pem
expect_out "c2 revoked via the full" "certificate revoked"
N2=$(crl_num full1.pem)
if [ $((0x$N2)) -gt $((0x$N1)) ]; then
	ok "full number grows ($N2)"
else
	not_ok "full number grows ($N2 after $N1)"
fi

# hold c3: certificateHold; then release: removeFromCRL in the delta
expect_exit 0 "hold c3" admin hold "$S3"
check "GET delta after the hold" get delta2.pem /crl/delta.pem
expect_exit 0 "delta text" openssl crl -in "$T/delta2.pem" -noout -text
expect_out "hold appears as certificateHold" "Certificate Hold"
expect_exit 0 "mica-admin crl (hold in the full)" admin crl
check "GET full with the hold" get full2.pem /crl/full.pem
expect_exit 2 "held c3 rejected by the full" verify c3.crt full2.pem
expect_exit 0 "unhold c3" admin unhold "$S3"
check "GET delta after the release" get delta3.pem /crl/delta.pem
expect_exit 0 "delta text" openssl crl -in "$T/delta3.pem" -noout -text
expect_out "release appears as removeFromCRL" "Remove From CRL"
expect_exit 0 "full (held) + delta (released) accept c3" verify c3.crt \
    full2.pem delta3.pem
expect_out "c3 OK" "c3.crt: OK"
expect_exit 2 "c2 still rejected with full2 + delta3" verify c2.crt \
    full2.pem delta3.pem

if [ "$PUB" -eq 1 ]; then
	expect_exit 0 "published full.crl verifies" openssl crl \
	    -in "$T/pub/full.crl" -inform DER -CAfile "$D/ca.crt" -noout \
	    -verify
	expect_exit 0 "published delta.crl verifies" openssl crl \
	    -in "$T/pub/delta.crl" -inform DER -CAfile "$D/ca.crt" -noout \
	    -verify
	if ls "$T/pub" | grep -q tmp; then
		not_ok "no temp files left in the publish dir"
	else
		ok "no temp files left in the publish dir"
	fi
fi

# a restart keeps the numbers growing
stop_micad || not_ok "micad stops cleanly"
start_micad || { not_ok "micad restarts"; done_testing; }
check "GET full after restart" get full3a.pem /crl/full.pem
# until the first build: the full published last before the stop, or a
# newer one; never an older one
NL=$(crl_num full2.pem)
N3=$(crl_num full3a.pem)
check "full served at restart ($N3) not older than the last before ($NL)" \
    test $((0x$N3)) -ge $((0x$NL))
NL=$(crl_num delta3.pem)
check "the first build after restart is numbered above $NL" \
    wait_full_above "$NL" full3.pem
N3=$(crl_num full3.pem)
if [ $((0x$N3)) -gt $((0x$N2)) ]; then
	ok "number after restart ($N3) above $N2"
else
	not_ok "number after restart ($N3) above $N2"
fi
expect_exit 2 "c2 rejected after restart" verify c2.crt full3.pem
expect_exit 0 "c3 accepted after restart" verify c3.crt full3.pem

if [ "$PUB" -eq 1 ]; then
	# a symlink planted at the temp names is removed, never followed
	stop_micad || not_ok "micad stops cleanly"
	echo victim >"$T/victim"
	ln -s "$T/victim" "$T/pub/.full.crl.tmp"
	ln -s "$T/victim" "$T/pub/.delta.crl.tmp"
	start_micad || { not_ok "micad starts with symlinks at the temp names"; done_testing; }
	# the first build publishes (until then the files of before serve)
	check "first build after the start with the symlinks" \
	    wait_full_above "$(crl_num full3.pem)" full4.pem
	expect_eq "the symlink's target is untouched" "$(cat "$T/victim")" victim
	check "full.crl is a regular file" test -f "$T/pub/full.crl" -a \
	    ! -L "$T/pub/full.crl"
	# the delta is published after the full: poll (bounded: 60 s)
	i=0
	while [ $i -lt 600 ] && ls -a "$T/pub" | grep -q tmp; do
		sleep 0.1
		i=$((i + 1))
	done
	check "no temp name left" sh -c "! ls -a '$T/pub' | grep -q tmp"
	expect_exit 0 "full.crl published past the symlink verifies" \
	    openssl crl -in "$T/pub/full.crl" -inform DER -CAfile "$D/ca.crt" \
	    -noout -verify
	stop_micad || not_ok "micad stops cleanly"
	# a publish_dir that group or others may write is refused at start
	for m in 777 775; do
		chmod $m "$T/pub"
		expect_exit 1 "micad refuses publish_dir mode $m" \
		    timeout 20 "$BIN/micad" -c "$CONF"
		expect_out "the refusal says why (mode $m)" "crl: publish_dir \
$T/pub is writable by group or others (mode $m); refusing to publish"
	done
	chmod 755 "$T/pub"
	start_micad || not_ok "micad starts again with publish_dir 755"
fi
done_testing
