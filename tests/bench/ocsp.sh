#!/bin/sh
# OCSP benchmark: micad versus `openssl ocsp` as a responder (-multi 2) and
# versus nginx serving the same signed response as a static file.  wrk
# with a POST lua script and the GET form, at 1, 16 and 64 connections.
#   tests/bench/ocsp.sh BIN BUILD        (make bench-ocsp)
# Environment: DUR (seconds per run, default 5), CONNS ("1 16 64").
# Prints req/s, p50 and p99 latency per run, then ratios.
BIN_ARG=${1:-bin}
TOP=$(cd "$(dirname "$0")/../.." && pwd)
case "$BIN_ARG" in /*) MICA_BIN=$BIN_ARG ;; *) MICA_BIN=$TOP/$BIN_ARG ;; esac
export MICA_BIN
. "$TOP/tests/e2e/lib.sh"
DUR=${DUR:-5}
CONNS=${CONNS:-"1 16 64"}
OSSL_PID=""
NGINX_PID=""

bench_cleanup() {
	ossl_stop
	[ -n "$NGINX_PID" ] && kill "$NGINX_PID" 2>/dev/null
	cleanup
}
trap bench_cleanup EXIT

for tool in wrk nginx openssl curl; do
	command -v "$tool" >/dev/null 2>&1 ||
	    [ -x "/usr/sbin/$tool" ] || { echo "bench: $tool missing"; exit 1; }
done
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

D=$T/ca
mica_init "$D" --cn "Bench CA" || exit 1
start_micad || exit 1
printf 'bench password 1\n' >"$T/pw"
admin account add bench --subject "/CN=bench/O=Example" \
    --password-file "$T/pw" >/dev/null 2>&1
make_csr "$T/leaf.key" "$T/leaf.csr" "/CN=bench/O=Example"
admin issue --account bench --csr "$T/leaf.csr" --days 30 \
    --out "$T/leaf.crt" >/dev/null 2>&1 || { echo "bench: issue failed"; exit 1; }

# requests: nonce-less (cacheable) and with a nonce (signed every time)
openssl ocsp -issuer "$D/ca.crt" -cert "$T/leaf.crt" -no_nonce \
    -reqout "$T/req.der" >/dev/null 2>&1
openssl ocsp -issuer "$D/ca.crt" -cert "$T/leaf.crt" -nonce \
    -reqout "$T/req_nonce.der" >/dev/null 2>&1
ESC=$(base64 -w0 "$T/req.der" | sed 's/+/%2B/g; s|/|%2F|g; s/=/%3D/g')

post_lua() {
	cat >"$2" <<EOF
local f = io.open("$1", "rb")
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/ocsp-request"
EOF
}
post_lua "$T/req.der" "$T/post.lua"
post_lua "$T/req_nonce.der" "$T/post_nonce.lua"

# openssl ocsp responder over an index with the same certificate
SER=$(serial_of "$T/leaf.crt")
EXP=$(openssl x509 -in "$T/leaf.crt" -noout -enddate | sed 's/notAfter=//')
EXP=$(date -u -d "$EXP" +%y%m%d%H%M%SZ)
SUBJ=$(openssl x509 -in "$T/leaf.crt" -noout -subject -nameopt compat |
    sed 's/^subject=//')
printf 'V\t%s\t\t%s\tunknown\t%s\n' "$EXP" "$SER" "$SUBJ" >"$T/index.txt"
# openssl ocsp -multi children hang on connections wrk leaves behind, so
# every openssl run gets a fresh responder (killed by its pid and its
# children's pids afterwards).
ossl_start() {
	OSSL_PORT=$(free_port)
	openssl ocsp -index "$T/index.txt" -port "$OSSL_PORT" \
	    -rsigner "$D/ocsp.crt" -rkey "$D/private/ocsp.key" -CA "$D/ca.crt" \
	    -nmin 60 -multi 2 >>"$T/openssl.log" 2>&1 &
	OSSL_PID=$!
	sleep 1
}
ossl_stop() {
	[ -n "$OSSL_PID" ] || return 0
	for k in $(pgrep -P "$OSSL_PID"); do kill -KILL "$k" 2>/dev/null; done
	kill -KILL "$OSSL_PID" 2>/dev/null
	wait "$OSSL_PID" 2>/dev/null
	OSSL_PID=""
}
ossl_start

# nginx serving micad's signed response as a static file
mkdir -p "$T/www" "$T/nginx"
curl -sf -o "$T/www/resp.der" "$URL/ocsp/$ESC" ||
    { echo "bench: micad GET failed"; exit 1; }
# nginx workers run as an unprivileged user: let them reach www/
chmod 755 "$T"
chmod -R a+rX "$T/www"
NGINX_PORT=$(free_port)
cat >"$T/nginx/nginx.conf" <<EOF
worker_processes 2;
pid $T/nginx/nginx.pid;
error_log $T/nginx/error.log;
events { worker_connections 1024; }
http {
	access_log off;
	client_body_temp_path $T/nginx;
	proxy_temp_path $T/nginx;
	fastcgi_temp_path $T/nginx;
	uwsgi_temp_path $T/nginx;
	scgi_temp_path $T/nginx;
	keepalive_requests 1000000;
	server {
		listen 127.0.0.1:$NGINX_PORT;
		root $T/www;
		location / { default_type application/ocsp-response; }
	}
}
EOF
"$NGINX" -p "$T/nginx" -c "$T/nginx/nginx.conf" -g 'daemon off;' \
    >"$T/nginx/out.log" 2>&1 &
NGINX_PID=$!
sleep 1

# sanity: every responder answers good before we measure anything
openssl ocsp -issuer "$D/ca.crt" -cert "$T/leaf.crt" -CAfile "$D/ca.crt" \
    -url "http://127.0.0.1:$OSSL_PORT/" 2>&1 | grep -q "leaf.crt: good" ||
    { echo "bench: openssl ocsp responder not answering"; cat "$T/openssl.log"; exit 1; }
openssl ocsp -issuer "$D/ca.crt" -cert "$T/leaf.crt" -CAfile "$D/ca.crt" \
    -url "$URL/ocsp" 2>&1 | grep -q "leaf.crt: good" ||
    { echo "bench: micad not answering good"; exit 1; }
curl -sf -o "$T/nginx.der" "http://127.0.0.1:$NGINX_PORT/resp.der" &&
    cmp -s "$T/nginx.der" "$T/www/resp.der" ||
    { echo "bench: nginx not serving"; cat "$T/nginx/error.log"; exit 1; }

ossl_stop
RESULTS=$T/results
: >"$RESULTS"

# run NAME CONNS URL [LUA]: one wrk run; appends "name conns rps p50 p99".
run() {
	name=$1 c=$2 url=$3 lua=${4:-}
	th=2
	[ "$c" -lt 2 ] && th=1
	case $name in openssl-*)
		ossl_start
		url=$(printf %s "$url" | sed "s/:OSSL_PORT/:$OSSL_PORT/") ;;
	esac
	if [ -n "$lua" ]; then
		out=$(wrk -t"$th" -c"$c" -d"${DUR}s" --latency -s "$lua" "$url" 2>&1)
	else
		out=$(wrk -t"$th" -c"$c" -d"${DUR}s" --latency "$url" 2>&1)
	fi
	rps=$(printf '%s\n' "$out" | awk '/^Requests\/sec:/ {print $2}')
	p50=$(printf '%s\n' "$out" | awk '$1 == "50%" {print $2}')
	p99=$(printf '%s\n' "$out" | awk '$1 == "99%" {print $2}')
	errs=$(printf '%s\n' "$out" | grep -E "Non-2xx|Socket errors" | tr '\n' ' ')
	printf '%-22s %5s %12s %10s %10s  %s\n' "$name" "$c" "${rps:-?}" \
	    "${p50:-?}" "${p99:-?}" "$errs"
	echo "$name $c ${rps:-0}" >>"$RESULTS"
	case $name in openssl-*) ossl_stop ;; esac
}

printf '%-22s %5s %12s %10s %10s\n' target conns req/s p50 p99
for c in $CONNS; do
	run micad-post "$c" "$URL/ocsp" "$T/post.lua"
	run micad-get "$c" "$URL/ocsp/$ESC"
	run micad-post-nonce "$c" "$URL/ocsp" "$T/post_nonce.lua"
	run openssl-post "$c" "http://127.0.0.1:OSSL_PORT/" "$T/post.lua"
	run openssl-get "$c" "http://127.0.0.1:OSSL_PORT/$ESC"
	run nginx-static "$c" "http://127.0.0.1:$NGINX_PORT/resp.der"
done

echo
echo "ratios (req/s):"
for c in $CONNS; do
	awk -v c="$c" '
	    $2 == c { r[$1] = $3 }
	    END {
		d = r["openssl-post"] > 0 ? r["openssl-post"] : 1
		g = r["openssl-get"] > 0 ? r["openssl-get"] : 1
		n = r["nginx-static"] > 0 ? r["nginx-static"] : 1
		printf "  c=%-3s micad-post/openssl-post %.1fx  " \
		    "micad-get/openssl-get %.1fx  micad-get/nginx %.2fx  " \
		    "micad-nonce/openssl-post %.1fx\n", c,
		    r["micad-post"] / d, r["micad-get"] / g,
		    r["micad-get"] / n, r["micad-post-nonce"] / d
	    }' "$RESULTS"
done
stop_micad
