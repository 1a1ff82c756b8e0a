#!/bin/sh
# t_issue_san.sh - issuance the way operators do it: `issue --san` (SANs
# set by the operator, syntax checked), `issue --profile NAME` (the
# [profile.NAME] sections init writes), and an account's list of SANs its
# CSRs may carry when copy_san is on.
. "$(dirname "$0")/lib.sh"

mica_init "$T/ca" || { not_ok "mica-admin init"; done_testing; }
start_micad || { not_ok "micad starts"; done_testing; }
CA=$T/ca/ca.crt
printf 'pw-web-123456\n' >"$T/pw"
check "account web" admin account add web --subject "/CN=web" \
    --password-file "$T/pw"
make_csr "$T/w1.key" "$T/w1.csr" "/CN=web"
sans() { openssl x509 -in "$1" -noout -ext subjectAltName | sed -n '2p' | sed 's/^ *//'; }
eku() { openssl x509 -in "$1" -noout -ext extendedKeyUsage | sed -n '2p' | sed 's/^ *//'; }
ku() { openssl x509 -in "$1" -noout -ext keyUsage | sed -n '2p' | sed 's/^ *//'; }

# ---- --san: the operator's names ----
expect_exit 0 "issue --san DNS --san IP (v4, v6) --san email" \
    admin issue --account web --csr "$T/w1.csr" --out "$T/w1.crt" \
    --san DNS:www.example.com --san IP:192.0.2.7 --san IP:2001:db8::1 \
    --san email:ops@example.com
expect_eq "the certificate carries exactly those SANs" "$(sans "$T/w1.crt")" \
    "DNS:www.example.com, IP Address:192.0.2.7, IP Address:2001:DB8:0:0:0:0:0:1, email:ops@example.com"
check "it verifies" openssl verify -CAfile "$CA" "$T/w1.crt"

bad_san() {
	expect_exit 1 "--san $1 refused" admin issue --account web \
	    --csr "$T/w1.csr" --out "$T/bad.crt" --san DNS:ok.example --san "$1"
	expect_out "--san $1: the message" "mica-admin: issue: $2"
}
bad_san "DNS:-www.example.com" 'SAN "DNS:-www.example.com": DNS name "-www.example.com": a label neither starts nor ends with a hyphen (RFC 1035 section 2.3.1)'
bad_san "DNS:www..example.com" 'SAN "DNS:www..example.com": DNS name "www..example.com": each label has 1 to 63 letters, digits or hyphens (RFC 1035 section 2.3.1)'
bad_san "DNS:www.exa mple.com" 'SAN "DNS:www.exa mple.com": DNS name "www.exa mple.com": only letters, digits, hyphens and dots between labels (RFC 1035 section 2.3.1)'
L64=$(printf 'a%.0s' $(seq 64))
bad_san "DNS:$L64.example" "SAN \"DNS:$L64.example\": DNS name \"$L64.example\": each label has 1 to 63 letters, digits or hyphens (RFC 1035 section 2.3.1)"
bad_san "IP:192.0.2" 'SAN "IP:192.0.2": not an IPv4 or IPv6 address'
bad_san "IP:2001:db8::g" 'SAN "IP:2001:db8::g": not an IPv4 or IPv6 address'
bad_san "email:ops.example.com" 'SAN "email:ops.example.com": email "ops.example.com": expected local-part@domain (RFC 5280 section 4.2.1.6)'
bad_san "email:ops@" 'SAN "email:ops@": email "ops@": expected local-part@domain (RFC 5280 section 4.2.1.6)'
bad_san "email:a@b@example.com" 'SAN "email:a@b@example.com": email "a@b@example.com": expected local-part@domain (RFC 5280 section 4.2.1.6)'
bad_san "URI:http://x" 'SAN "URI:http://x": expected DNS:NAME, IP:ADDRESS or email:ADDRESS'
check "nothing written for a refused --san" test ! -e "$T/bad.crt"

# the account's subject is still checked with --san and --profile
make_csr "$T/wx.key" "$T/wx.csr" "/CN=somebody-else"
expect_exit 1 "issue --san --profile: a CSR for another subject is refused" \
    admin issue --account web --csr "$T/wx.csr" --out "$T/wx.crt" \
    --profile server --san DNS:www.example.com
expect_out "the subject rule" "does not match the account's allowed subject"

# ---- --profile ----
make_csr "$T/w2.key" "$T/w2.csr" "/CN=web"
expect_exit 0 "issue --profile server" admin issue --account web \
    --csr "$T/w2.csr" --out "$T/w2.crt" --profile server --san DNS:www.example.com
expect_eq "server profile: EKU" "$(eku "$T/w2.crt")" "TLS Web Server Authentication"
check "the audit names the profile and the SAN count" sh -c \
    "$BIN/mica-admin -c '$CONF' audit | grep -q 'cert.issue.*$(serial_of "$T/w2.crt").*account=web days=365 profile=server sans=1'"
expect_eq "server profile: key usage" "$(ku "$T/w2.crt")" "Digital Signature, Key Encipherment"
make_csr "$T/w3.key" "$T/w3.csr" "/CN=web"
expect_exit 0 "issue --profile email" admin issue --account web \
    --csr "$T/w3.csr" --out "$T/w3.crt" --profile email --san email:web@example.com
expect_eq "email profile: EKU" "$(eku "$T/w3.crt")" "E-mail Protection"
make_csr "$T/w4.key" "$T/w4.csr" "/CN=web"
expect_exit 0 "issue without --profile: [ca]'s" admin issue --account web \
    --csr "$T/w4.csr" --out "$T/w4.crt"
expect_eq "[ca] profile: EKU" "$(eku "$T/w4.crt")" "TLS Web Client Authentication"
expect_exit 1 "an unknown --profile is refused" admin issue --account web \
    --csr "$T/w4.csr" --out "$T/x.crt" --profile vpn
expect_out "it names the configured profiles" \
    "mica-admin: issue: --profile vpn: no such profile in the configuration (configured: client, server, email)"
# default_days of a profile, reloaded with SIGHUP
cat >>"$CONF" <<'C'

[profile.short]
default_days = 7
ext_key_usage = serverAuth,clientAuth
C
kill -HUP "$MICAD_PID"
make_csr "$T/w5.key" "$T/w5.csr" "/CN=web"
i=0
while [ $i -lt 100 ]; do
	admin issue --account web --csr "$T/w5.csr" --out "$T/w5.crt" \
	    --profile short >/dev/null 2>&1 && break
	sleep 0.1; i=$((i + 1))
done
check "a profile added with SIGHUP is used" test -s "$T/w5.crt"
nb=$(date -d "$(openssl x509 -in "$T/w5.crt" -noout -startdate | cut -d= -f2)" +%s)
na=$(date -d "$(openssl x509 -in "$T/w5.crt" -noout -enddate | cut -d= -f2)" +%s)
expect_eq "its default_days (7 days + the 60 s backdating)" "$((na - nb))" "$((7 * 86400 + 60))"
expect_eq "its EKU" "$(eku "$T/w5.crt")" "TLS Web Server Authentication, TLS Web Client Authentication"

# ---- the account's SAN list (copy_san = yes) ----
stop_micad
conf_set "$CONF" copy_san yes
start_micad || { not_ok "micad restarts"; done_testing; }
expect_exit 0 "account add --san" admin account add srv --subject "/CN=srv" \
    --password-file "$T/pw" --san DNS:srv.example.com --san IP:192.0.2.9
expect_out "the list is printed" "sans: DNS:srv.example.com,IP:192.0.2.9"
expect_exit 0 "account list" admin account list
expect_out "account list shows it" "sans=DNS:srv.example.com,IP:192.0.2.9"
expect_exit 0 "account list --json" admin account list --json
expect_out "account list --json shows it" '"sans":"DNS:srv.example.com,IP:192.0.2.9"'
expect_exit 1 "account add --san with a bad SAN" admin account add srv2 \
    --subject "/CN=srv2" --password-file "$T/pw" --san DNS:bad_name
expect_out "names the bad SAN" 'mica-admin: account add: SAN "DNS:bad_name": DNS name "bad_name": only letters'
admin account list | grep -q '^srv2 ' && not_ok "srv2 not created" || ok "srv2 not created"

openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$T/s1.key" -out "$T/s1.csr" -subj "/CN=srv" \
    -addext "subjectAltName=DNS:SRV.example.com,IP:192.0.2.9" 2>/dev/null
expect_exit 0 "a CSR with SANs on the list" admin issue --account srv \
    --csr "$T/s1.csr" --out "$T/s1.crt"
expect_eq "they are copied" "$(sans "$T/s1.crt")" "DNS:SRV.example.com, IP Address:192.0.2.9"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$T/s2.key" -out "$T/s2.csr" -subj "/CN=srv" \
    -addext "subjectAltName=DNS:srv.example.com,DNS:evil.example.com" 2>/dev/null
expect_exit 1 "a CSR with a SAN not on the list is refused" admin issue \
    --account srv --csr "$T/s2.csr" --out "$T/s2.crt"
expect_out "the message names the SAN and the list" \
    "mica-admin: issue: CSR: subjectAltName DNS:evil.example.com is not among the names the account may have (DNS:srv.example.com,IP:192.0.2.9)"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$T/s3.key" -out "$T/s3.csr" -subj "/CN=srv" \
    -addext "subjectAltName=IP:192.0.2.10" 2>/dev/null
expect_exit 1 "an IP not on the list is refused" admin issue \
    --account srv --csr "$T/s3.csr" --out "$T/s3.crt"
expect_out "the message names the IP" "CSR: subjectAltName IP:192.0.2.10 is not among"
expect_exit 0 "--san by the operator overrides the CSR's SANs" admin issue \
    --account srv --csr "$T/s3.csr" --out "$T/s3.crt" --san DNS:other.example.com
expect_eq "the operator's SANs only" "$(sans "$T/s3.crt")" "DNS:other.example.com"
# an account without a list: the operator's issue copies (as before)
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$T/s4.key" -out "$T/s4.csr" -subj "/CN=web" \
    -addext "subjectAltName=DNS:any.example.com" 2>/dev/null
expect_exit 0 "an account without a list: issue copies the CSR's SANs" \
    admin issue --account web --csr "$T/s4.csr" --out "$T/s4.crt"
expect_eq "copied" "$(sans "$T/s4.crt")" "DNS:any.example.com"

# ---- the list survives a restart (store record version 2) ----
stop_micad
start_micad || { not_ok "micad restarts"; done_testing; }
expect_exit 0 "account list after a restart" admin account list
expect_out "still listed" "sans=DNS:srv.example.com,IP:192.0.2.9"
expect_exit 0 "mica-admin check" admin check
done_testing
