#!/bin/sh
# t_httpurl.sh - changing [ca] http_url: certificates issued before keep
# their URLs, new ones carry the new URLs, and micad answers OCSP, the
# CRLs and the CA certificate at both (the old URL's path is listed in
# [ca] old_http_urls, the new one's path is served as the root).
. "$(dirname "$0")/lib.sh"

mica_init "$T/ca" || { not_ok "mica-admin init"; done_testing; }
start_micad || { not_ok "micad starts"; done_testing; }
CA=$T/ca/ca.crt
OLD=$URL
printf 'pw-url-12345678\n' >"$T/pw"
check "account u" admin account add u --subject "/CN=u" --password-file "$T/pw"
make_csr "$T/a.key" "$T/a.csr" "/CN=u"
check "certificate A under the first URL" admin issue --account u \
    --csr "$T/a.csr" --out "$T/a.crt"
stop_micad

# the new URL has a path; the old one goes to old_http_urls
NEW=$OLD/pki/v2
conf_set "$CONF" http_url "$NEW"
sed -i "s|^http_url = .*|&\nold_http_urls = $OLD|" "$CONF"
check "micad -n accepts old_http_urls" "$BIN/micad" -n -c "$CONF"
start_micad || { not_ok "micad restarts with the new http_url"; done_testing; }
make_csr "$T/b.key" "$T/b.csr" "/CN=u"
check "certificate B under the new URL" admin issue --account u \
    --csr "$T/b.csr" --out "$T/b.crt"

expect_eq "A keeps its OCSP URL" "$(openssl x509 -in "$T/a.crt" -noout -ocsp_uri)" "$OLD/ocsp"
expect_eq "B carries the new OCSP URL" "$(openssl x509 -in "$T/b.crt" -noout -ocsp_uri)" "$NEW/ocsp"
crldp() { openssl x509 -in "$1" -noout -ext crlDistributionPoints | sed -n 's/^ *URI://p'; }
expect_eq "A keeps its CRL URL" "$(crldp "$T/a.crt")" "$OLD/crl"
expect_eq "B carries the new CRL URL" "$(crldp "$T/b.crt")" "$NEW/crl"
aia_ca() { openssl x509 -in "$1" -noout -ext authorityInfoAccess | sed -n 's/^ *CA Issuers - URI://p'; }
expect_eq "B carries the new caIssuers URL" "$(aia_ca "$T/b.crt")" "$NEW/ca.crt"

ocsp() {
	openssl ocsp -issuer "$CA" -cert "$1" -url "$(openssl x509 -in "$1" \
	    -noout -ocsp_uri)" -CAfile "$CA" 2>/dev/null | sed -n "s|^$1: ||p"
}
expect_eq "OCSP at A's URL: good" "$(ocsp "$T/a.crt")" good
expect_eq "OCSP at B's URL: good" "$(ocsp "$T/b.crt")" good
check "OCSP GET (RFC 5019) under the new path" sh -c "
    req=\$(openssl ocsp -issuer '$CA' -cert '$T/b.crt' -no_nonce -reqout /dev/stdout 2>/dev/null | base64 -w0 | sed 's|+|%2B|g; s|/|%2F|g; s|=|%3D|g')
    curl -sf -o '$T/get.der' '$NEW/ocsp/'\$req &&
    openssl ocsp -respin '$T/get.der' -resp_text -noverify 2>/dev/null | grep -q 'Cert Status: good'"

admin revoke "$(serial_of "$T/a.crt")" --reason superseded >/dev/null
admin revoke "$(serial_of "$T/b.crt")" --reason keyCompromise >/dev/null
expect_eq "OCSP at A's URL: revoked" "$(ocsp "$T/a.crt")" revoked
expect_eq "OCSP at B's URL: revoked" "$(ocsp "$T/b.crt")" revoked
check "mica-admin crl" admin crl
for u in "$(crldp "$T/a.crt")" "$(crldp "$T/b.crt")"; do
	curl -sf -o "$T/full.crl" "$u" || not_ok "GET $u"
	curl -sf -o "$T/delta.crl" "$u/delta.crl" || not_ok "GET $u/delta.crl"
	check "the CRLs at $u reject A" sh -c "! openssl verify -crl_check \
	    -extended_crl -use_deltas -CAfile '$CA' -CRLfile '$T/full.crl' \
	    -CRLfile '$T/delta.crl' '$T/a.crt' >/dev/null 2>&1"
	check "and B" sh -c "! openssl verify -crl_check -extended_crl \
	    -use_deltas -CAfile '$CA' -CRLfile '$T/full.crl' \
	    -CRLfile '$T/delta.crl' '$T/b.crt' >/dev/null 2>&1"
	check "the full CRL at $u lists both" sh -c "openssl crl -inform DER \
	    -in '$T/full.crl' -noout -text | grep -c 'Serial Number' | grep -qx 2"
done
expect_eq "the CA certificate at B's caIssuers URL" \
    "$(curl -sf "$(aia_ca "$T/b.crt")" | openssl x509 -inform DER -noout -fingerprint)" \
    "$(openssl x509 -in "$CA" -noout -fingerprint)"
expect_eq "a path that only starts like the prefix is not stripped (404)" \
    "$(curl -s -o /dev/null -w '%{http_code}' "$OLD/pki/v2x/crl")" 404
expect_eq "/metrics is not under the prefix only" \
    "$(curl -s -o /dev/null -w '%{http_code}' "$NEW/metrics")" 200

# a bad old_http_urls value is an error naming the key
stop_micad
sed -i "s|^old_http_urls = .*|old_http_urls = $OLD, https://x.example|" "$CONF"
expect_exit 1 "old_http_urls with https:// refused" "$BIN/micad" -n -c "$CONF"
expect_out "the error names the key and the URL" \
    '[ca] old_http_urls: "https://x.example": https:// is refused'
done_testing
