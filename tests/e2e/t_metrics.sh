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
