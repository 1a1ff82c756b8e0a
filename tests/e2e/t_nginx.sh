#!/bin/sh
# t_nginx.sh - a relying party for real: nginx serves TLS with a
# mica-issued server certificate (serverAuth profile, SAN DNS:localhost
# copied from the CSR) and staples mica's OCSP responses
# (ssl_stapling_verify on).  After mica-admin revoke and an nginx restart
# (fresh fetch) the revocation is visible.
. "$(dirname "$0")/lib.sh"

NGINX=$(command -v nginx || ls /usr/sbin/nginx 2>/dev/null)
if [ -z "$NGINX" ]; then
	echo "ok - # SKIP nginx not installed"
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	# nginx wants to switch its workers to nobody and write its logs
	echo "ok - # SKIP nginx test runs as root"
	exit 0
fi
NGINX_PID=""
stop_nginx() {
	if [ -n "$NGINX_PID" ] && kill -0 "$NGINX_PID" 2>/dev/null; then
		kill -QUIT "$NGINX_PID" 2>/dev/null
		wait "$NGINX_PID" 2>/dev/null
	fi
	NGINX_PID=""
}
trap 'stop_nginx; cleanup' EXIT

mica_init "$T/ca" || { not_ok "mica-admin init"; done_testing; }
CA=$T/ca/ca.crt
conf_set "$CONF" ext_key_usage "serverAuth,clientAuth"
conf_set "$CONF" key_usage "digitalSignature,keyEncipherment"
conf_set "$CONF" copy_san yes
start_micad || { not_ok "micad starts"; done_testing; }

printf 'pw-web-123456\n' >"$T/pw"
check "account web" admin account add web --subject "/CN=localhost" \
    --password-file "$T/pw"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$T/server.key" -out "$T/server.csr" -subj "/CN=localhost" \
    -addext "subjectAltName=DNS:localhost" 2>/dev/null
check "issue the server certificate" admin issue --account web \
    --csr "$T/server.csr" --out "$T/server.crt"
check "SAN copied from the CSR" sh -c "openssl x509 -in '$T/server.crt' \
    -noout -ext subjectAltName | grep -q 'DNS:localhost'"
check "serverAuth in the certificate" sh -c "openssl x509 -in \
    '$T/server.crt' -noout -ext extendedKeyUsage | grep -q 'TLS Web Server'"
check "AIA OCSP URL points at mica" sh -c "openssl x509 -in \
    '$T/server.crt' -noout -ocsp_uri | grep -q '^$URL/ocsp$'"

PORT=$(free_port)
N=$T/nginx
mkdir -p "$N/logs" "$N/tmp"
cat >"$N/nginx.conf" <<EOC
worker_processes 1;
error_log $N/logs/error.log info;
pid $N/nginx.pid;
events { worker_connections 64; }
http {
	access_log off;
	client_body_temp_path $N/tmp/body;
	proxy_temp_path $N/tmp/proxy;
	fastcgi_temp_path $N/tmp/fastcgi;
	uwsgi_temp_path $N/tmp/uwsgi;
	scgi_temp_path $N/tmp/scgi;
	server {
		listen 127.0.0.1:$PORT ssl;
		server_name localhost;
		ssl_certificate $T/server.crt;
		ssl_certificate_key $T/server.key;
		ssl_stapling on;
		ssl_stapling_verify on;
		ssl_trusted_certificate $CA;
		location / { return 200 "hello\n"; }
	}
}
EOC
start_nginx() {
	"$NGINX" -p "$N" -c "$N/nginx.conf" -g 'daemon off;' \
	    >>"$N/logs/stdout" 2>&1 &
	NGINX_PID=$!
	i=0
	while [ $i -lt 50 ]; do
		python3 -c "import socket; socket.create_connection(('127.0.0.1', $PORT), 1)" \
		    2>/dev/null && return 0
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}
# staple WANT: connects until the stapled response shows WANT (nginx
# fetches lazily: the first handshake usually has no staple yet).
staple() {
	i=0
	while [ $i -lt 20 ]; do
		openssl s_client -connect "127.0.0.1:$PORT" -status \
		    -servername localhost -CAfile "$CA" </dev/null \
		    >"$T/s_client.out" 2>&1
		grep -q "$1" "$T/s_client.out" && return 0
		sleep 0.5
		i=$((i + 1))
	done
	return 1
}

start_nginx || { not_ok "nginx starts"; sed 's/^/#   /' "$N/logs/"* | tail; done_testing; }
ok "nginx starts"
if staple "Cert Status: good"; then
	ok "stapled OCSP response: good"
else
	not_ok "stapled OCSP response: good"
	sed 's/^/#   /' "$N/logs/error.log" | tail -n 5
fi
OUT=$(cat "$T/s_client.out")
expect_out "OCSP Response Status: successful" \
    "OCSP Response Status: successful"
expect_out "TLS chain verifies" "Verify return code: 0 (ok)"
SERIAL=$(serial_of "$T/server.crt")
expect_out "the staple is for the server certificate" \
    "Serial Number: $SERIAL"
check "revoke the server certificate" admin revoke "$SERIAL" \
    --reason keyCompromise
stop_nginx
start_nginx || not_ok "nginx restarts"
# nginx (ssl_stapling_verify) refuses to staple a non-good status and
# logs it; a client asking for status then gets no staple.
i=0
while [ $i -lt 20 ] && ! grep -q 'certificate status "revoked"' \
    "$N/logs/error.log"; do
	openssl s_client -connect "127.0.0.1:$PORT" -status \
	    -servername localhost -CAfile "$CA" </dev/null \
	    >"$T/s_client2.out" 2>&1
	sleep 0.5
	i=$((i + 1))
done
check "nginx got the revoked status from mica" grep -q \
    'certificate status "revoked" in the OCSP response' "$N/logs/error.log"
OUT=$(cat "$T/s_client2.out")
expect_out "no good staple any more" "OCSP response: no response sent"
expect_eq "mica's own OCSP says revoked" "$(openssl ocsp -issuer "$CA" \
    -cert "$T/server.crt" -url "$URL/ocsp" -CAfile "$CA" 2>/dev/null | \
    sed -n "s|^$T/server.crt: ||p")" revoked
stop_nginx
done_testing
