#!/bin/sh
# t_metrics.sh - /metrics is answered only to the addresses in [http]
# metrics_from (loopback by default); everyone else gets 403 and the
# OCSP, CRL and CA certificate paths stay public.
. "$(dirname "$0")/lib.sh"

D=$T/ca
mica_init "$D" --cn "Metrics CA" || { not_ok "init"; done_testing; }
check "init writes metrics_from = loopback" \
    grep -q '^metrics_from = 127.0.0.0/8, ::1$' "$CONF"
start_micad || { not_ok "micad starts"; done_testing; }
ok "micad starts"

# code FROM PATH: the HTTP status micad answers a client bound to FROM
code() {
	curl -s -o "$T/body" -w '%{http_code}' --interface "$1" \
	    "http://127.0.0.1:$HTTP_PORT$2"
}
expect_eq "loopback (default) gets /metrics" "$(code 127.0.0.1 /metrics)" 200
check "the body is the exposition" grep -q '^mica_uptime_seconds ' "$T/body"

# ---- full-CRL figures, certificate expiry gauges, kept counters ----
# metrics_poll PATTERN: fetch /metrics into $T/m until a line matches
# (the file-based gauges refresh with the store gauges, at most every 5 s)
metrics_poll() {
	i=0
	while [ $i -lt 150 ]; do
		curl -s "$URL/metrics" >"$T/m"
		grep -q "$1" "$T/m" && return 0
		sleep 0.1; i=$((i + 1))
	done
	return 1
}
mval() { sed -n "s/^$1 //p" "$T/m"; }
epoch() { date -d "$(openssl x509 -in "$1" -noout -enddate | cut -d= -f2)" +%s; }

CA=$D/ca.crt
printf 'pw-metrics-1234\n' >"$T/pw"
admin account add mo --subject "/CN=mo" --password-file "$T/pw" >"$T/mo.add" 2>&1
make_csr "$T/mo.key" "$T/mo.csr" "/CN=mo"
admin issue --account mo --csr "$T/mo.csr" --out "$T/mo.crt" >/dev/null 2>&1
make_csr "$T/mo2.key" "$T/mo2.csr" "/CN=mo"
admin issue --account mo --csr "$T/mo2.csr" --out "$T/mo2.crt" >/dev/null 2>&1
admin revoke "$(serial_of "$T/mo.crt")" --reason superseded >/dev/null 2>&1
admin revoke "$(serial_of "$T/mo2.crt")" --reason superseded >/dev/null 2>&1
check "mica-admin crl" admin crl
metrics_poll '^mica_crl_full_last_entries 2$' ||
    not_ok "the full CRL's entries reach 2"
expect_eq "mica_crl_full_last_entries: the full CRL's entries" \
    "$(mval mica_crl_full_last_entries)" 2
curl -s -o "$T/full.crl" "$URL/crl"
this=$(date -d "$(openssl crl -inform DER -in "$T/full.crl" -noout -lastupdate | cut -d= -f2)" +%s)
expect_eq "mica_crl_full_last_build_timestamp_seconds: its thisUpdate" \
    "$(mval mica_crl_full_last_build_timestamp_seconds)" "$this"
check "mica_crl_full_last_build_seconds: a duration" sh -c \
    "grep -Eq '^mica_crl_full_last_build_seconds [0-9]+\\.[0-9]{6}\$' '$T/m'"
check "mica_crl_full_builds_total counts builds" sh -c \
    "grep -Eq '^mica_crl_full_builds_total [2-9]' '$T/m'"
metrics_poll 'cert="tls"} [1-9]' || not_ok "certificate gauges appear"
for c in ca ocsp tls; do
	expect_eq "notAfter gauge of $c.crt" \
	    "$(mval "mica_certificate_not_after_timestamp_seconds{cert=\"$c\"}")" \
	    "$(epoch "$D/$c.crt")"
	left=$(mval "mica_certificate_expiry_seconds{cert=\"$c\"}")
	now=$(date +%s)
	d=$(( $(epoch "$D/$c.crt") - now - left ))
	[ "${d#-}" -le 60 ] && ok "seconds left for $c.crt" ||
	    not_ok "seconds left for $c.crt ($left; off by $d)"
done
OLD_TLS=$(epoch "$D/tls.crt")
check "the HELP text says which counters are per run" grep -q \
    '^# HELP mica_ocsp_requests_total .*this run: resets at restart' "$T/m"
check "and which are kept" grep -q \
    '^# HELP mica_reissue_requests_total .*kept across restarts' "$T/m"

# requests counted across a restart: one created and rejected
sed -n 's/^totp secret[^:]*: //p' "$T/mo.add" >"$T/mo.secret"
"$BIN/mica" --server "127.0.0.1:$CA_PORT" --ca "$CA" request --account mo \
    --out "$T/mo3.crt" --password-file "$T/pw" \
    --otp "$(oathtool --totp -b "$(cat "$T/mo.secret")")" --no-wait \
    >"$T/req.out" 2>&1
ID=$(sed -n 's/^request: //p' "$T/req.out")
check "reject request $ID" admin reject "$ID" --why "test"
curl -s "$URL/metrics" >"$T/m"
expect_eq "requests created (this run)" \
    "$(mval 'mica_reissue_requests_total{state="created"}')" 1
expect_eq "requests rejected (this run)" \
    "$(mval 'mica_reissue_requests_total{state="rejected"}')" 1
stop_micad
start_micad || { not_ok "micad restarts"; done_testing; }
metrics_poll '^mica_reissue_requests_total{state="rejected"} 1$' ||
    not_ok "the rejected request is counted after the restart"
expect_eq "requests created: kept across the restart" \
    "$(mval 'mica_reissue_requests_total{state="created"}')" 1
expect_eq "requests rejected: kept across the restart" \
    "$(mval 'mica_reissue_requests_total{state="rejected"}')" 1
expect_eq "OCSP counters are per run: 0 after the restart" \
    "$(mval 'mica_ocsp_requests_total{result="good"}')" 0

# the TLS gauge follows a renewal
check "tls renew" admin tls renew --name localhost --ip 127.0.0.1
NEW_TLS=$(epoch "$D/tls.crt")
metrics_poll "cert=\"tls\"} $NEW_TLS\$" ||
    not_ok "the TLS gauge shows the renewed certificate"
expect_eq "TLS notAfter gauge after tls renew" \
    "$(mval 'mica_certificate_not_after_timestamp_seconds{cert="tls"}')" \
    "$NEW_TLS"
stop_micad

# only 127.0.0.2 may: 127.0.0.1 is refused, 127.0.0.2 served
conf_set "$CONF" metrics_from 127.0.0.2/32
start_micad || { not_ok "micad restarts"; done_testing; }
expect_eq "127.0.0.1 refused /metrics" "$(code 127.0.0.1 /metrics)" 403
check "nothing of the metrics in the refusal" \
    sh -c "! grep -q mica_ '$T/body'"
expect_eq "127.0.0.2 gets /metrics" "$(code 127.0.0.2 /metrics)" 200
expect_eq "127.0.0.1 still gets /healthz" "$(code 127.0.0.1 /healthz)" 200
expect_eq "127.0.0.1 still gets /ca.crt" "$(code 127.0.0.1 /ca.crt)" 200
expect_eq "127.0.0.1 still gets /crl" "$(code 127.0.0.1 /crl)" 200
stop_micad

# empty: nobody
conf_set "$CONF" metrics_from ""
start_micad || { not_ok "micad restarts (metrics_from empty)"; done_testing; }
expect_eq "metrics_from empty: 127.0.0.1 refused" \
    "$(code 127.0.0.1 /metrics)" 403
stop_micad

# a bad value is a configuration error naming file, line and key
conf_set "$CONF" metrics_from "127.0.0.1/33"
expect_exit 1 "metrics_from 127.0.0.1/33 refused" "$BIN/micad" -n -c "$CONF"
expect_out "the error names the key and the value" \
    '[http] metrics_from: "127.0.0.1/33" is not an address or address/prefix-length'
conf_set "$CONF" metrics_from "localhost"
expect_exit 1 "metrics_from localhost refused (no names)" "$BIN/micad" -n \
    -c "$CONF"
done_testing
