#!/bin/sh
# t_invalidation.sh - instant invalidation.  With review = auto, each round
# asks OCSP about a certificate (good; the answer is now in the responder's
# cache and, for GET, cacheable by HTTP), reissues it as lost with the real
# mica client and, the moment the client exits having written the new
# certificate, asks OCSP again about the old serial: it must say revoked.
# Rounds alternate POST and RFC 5019 GET.  Prints "stale answers: S of N".
#   INV_ROUNDS (default 100; make soak runs 1000).
. "$(dirname "$0")/lib.sh"

N=${INV_ROUNDS:-100}
mica_init "$T/ca" || { not_ok "mica-admin init"; done_testing; }
conf_set "$CONF" review auto
conf_set "$CONF" log_level warn
start_micad || { not_ok "micad starts"; done_testing; }
CA=$T/ca/ca.crt
PW=$T/pw
echo 'correct-horse-battery' >"$PW"
MICA="$BIN/mica --server 127.0.0.1:$CA_PORT --ca $CA"
SUBJ="/CN=inv/O=Org"
make_csr "$T/inv.key" "$T/inv.csr" "$SUBJ"

# ---- setup: one account (fresh TOTP replay guard) and certificate each ----
i=0
while [ $i -lt "$N" ]; do
	i=$((i + 1))
	admin account add "u$i" --subject "$SUBJ" --password-file "$PW" \
	    >"$T/u$i.add" 2>&1 || { not_ok "account add u$i"; done_testing; }
	sed -n 's/^totp secret[^:]*: //p' "$T/u$i.add" >"$T/u$i.secret"
	rm -f "$T/u$i.add"
	admin issue --account "u$i" --csr "$T/inv.csr" --out "$T/u$i.crt" \
	    >/dev/null 2>&1 || { not_ok "issue for u$i"; done_testing; }
done
ok "$N accounts with a certificate each"

# ocsp_status SERIAL post|get: "good", "revoked", or what went wrong.
ocsp_status() {
	if [ "$2" = post ]; then
		openssl ocsp -issuer "$CA" -serial "0x$1" -url "$URL/ocsp" \
		    -CAfile "$CA" -no_nonce 2>/dev/null | sed -n "s/^0x$1: //p"
		return
	fi
	openssl ocsp -issuer "$CA" -serial "0x$1" -no_nonce \
	    -reqout "$T/req.der" >/dev/null 2>&1
	enc=$(base64 -w0 "$T/req.der" | sed 's|+|%2B|g; s|/|%2F|g; s|=|%3D|g')
	curl -sf -o "$T/resp.der" "$URL/ocsp/$enc" || { echo "http-error"; return; }
	openssl ocsp -respin "$T/resp.der" -issuer "$CA" -serial "0x$1" \
	    -CAfile "$CA" 2>/dev/null | sed -n "s/^0x$1: //p"
}

stale=0
before_bad=0
fails=0
i=0
while [ $i -lt "$N" ]; do
	i=$((i + 1))
	m=post
	[ $((i % 2)) -eq 0 ] && m=get
	old=$(serial_of "$T/u$i.crt")
	st=$(ocsp_status "$old" $m)
	if [ "$st" != good ]; then
		before_bad=$((before_bad + 1))
		echo "# round $i: before the reissue OCSP ($m) said '$st' for $old"
	fi
	otp=$(oathtool --totp -b "$(cat "$T/u$i.secret")")
	if ! $MICA reissue --account "u$i" --lost-cert "$T/u$i.crt" \
	    --key "$T/u$i.new.key" --out "$T/u$i.new.crt" \
	    --password-file "$PW" --otp "$otp" --timeout 30 \
	    >"$T/u$i.out" 2>&1; then
		fails=$((fails + 1))
		echo "# round $i: mica reissue failed: $(tail -n 1 "$T/u$i.out")"
		continue
	fi
	# the client has exited: the new certificate is on disk
	st=$(ocsp_status "$old" $m)
	if [ "$st" != revoked ]; then
		stale=$((stale + 1))
		echo "# round $i: OCSP ($m) said '$st' for the replaced $old"
	fi
	rm -f "$T/u$i.new.key" "$T/u$i.out" "$T/u$i.new.crt.chain" \
	    "$T/u$i.new.crt.request"
done
done_rounds=$((N - fails))
echo "stale answers: $stale of $done_rounds"
expect_eq "every reissue succeeded" "$fails" 0
expect_eq "every old serial was good before its reissue" "$before_bad" 0
expect_eq "no stale OCSP answer after the client got its certificate" \
    "$stale" 0
expect_exit 0 "mica-admin check passes afterwards" admin check
expect_out "every replacement linked" "links checked: $done_rounds"
stop_micad || not_ok "micad stops cleanly"
done_testing
