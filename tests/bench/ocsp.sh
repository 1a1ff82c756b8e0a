#!/bin/sh
# OCSP benchmark: micad versus `openssl ocsp` as a responder (-multi 2) and
# versus nginx serving the same signed response as a static file (the
# ceiling).  wrk with a POST lua script and the GET form, at 1, 16 and 64
# connections, with and without a nonce, over stores of 10^3 and 10^6
# certificates (filled offline by build/tests/fill_store; the openssl
# index.txt holds the same entries).
#   tests/bench/ocsp.sh BIN BUILD        (make bench-ocsp)
# Environment: DUR (seconds per run, default 5), CONNS ("1 16 64"),
# SIZES ("1000 1000000"), NREQ (random-serial requests, 64), WRK_THREADS
# (1), HTTP_THREADS (micad's [http] threads; default: its default),
# ROWS (the row names to run, e.g. "micad-post-nonce
# openssl-post-nonce"; default all).  One wrk thread for every responder: it sustains more requests a
# second than any responder here, and a second one would take the second
# core from the responder under test (with wrk and the responder both
# busy on 2 cores, the scheduler's time slices, not the responder, set
# the p99).  micad runs with its defaults ([http] threads 1, signers 6).
# Rows:
#   post, get        the issued leaf, nonce-less (micad answers from cache)
#   post-nonce       the leaf with a nonce (micad signs every answer)
#   mix, mix-nonce   the leaf plus NREQ random filled serials (1 in 100
#                    revoked), without / with nonces
# Prints req/s, p50 and p99 per run, then one table: row, micad req/s,
# p50, p99, peer req/s, ratio; then the targets.  It fails only when a
# tool is missing or a run errors, never on the numbers.
BIN_ARG=${1:-bin}
BUILD_ARG=${2:-build}
. "$(dirname "$0")/lib.sh"
case "$BUILD_ARG" in /*) BUILDDIR=$BUILD_ARG ;; *) BUILDDIR=$TOP/$BUILD_ARG ;; esac
DUR=${DUR:-5}
CONNS=${CONNS:-"1 16 64"}
SIZES=${SIZES:-"1000 1000000"}
NREQ=${NREQ:-64}
FILL=$BUILDDIR/tests/fill_store
OSSL_PID=""
NGINX_PID=""
RUN_ERRORS=0

bench_cleanup() {
	ossl_stop
	if [ -n "$NGINX_PID" ]; then
		kill "$NGINX_PID" 2>/dev/null
		wait "$NGINX_PID" 2>/dev/null
	fi
	cleanup
}
trap bench_cleanup EXIT

bench_need wrk nginx openssl curl python3
[ -x "$FILL" ] || { echo "bench: $FILL missing (make $BUILD_ARG/tests/fill_store)"; exit 1; }
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

# mix_lua OUT FIRST PREFIX: POST a random one of FIRST and PREFIX_K.der,
# K = 0..NREQ-1; the requests are formatted once per wrk thread.
mix_lua() {
	cat >"$1" <<EOF
local bodies, reqs = {}, {}
local function slurp(p)
	local f = assert(io.open(p, "rb"))
	local d = f:read("*a")
	f:close()
	return d
end
bodies[1] = slurp("$2")
for k = 0, $NREQ - 1 do
	bodies[#bodies + 1] = slurp("$3_" .. k .. ".der")
end
function init(args)
	local h = { ["Content-Type"] = "application/ocsp-request" }
	for i, b in ipairs(bodies) do
		reqs[i] = wrk.format("POST", nil, h, b)
	end
	math.randomseed(os.time() + math.floor(os.clock() * 1e6))
end
function request()
	return reqs[math.random(#reqs)]
end
EOF
}

# openssl ocsp -multi children hang on connections wrk leaves behind, so
# every openssl run gets a fresh responder (killed by its pid and its
# children's pids afterwards).  Waits until it answers (a large index
# takes seconds to load).
ossl_start() {
	OSSL_PORT=$(free_port)
	openssl ocsp -index "$S/index.txt" -port "$OSSL_PORT" \
	    -rsigner "$D/ocsp.crt" -rkey "$D/private/ocsp.key" -CA "$D/ca.crt" \
	    -nmin 60 -multi 2 >>"$T/openssl.log" 2>&1 &
	OSSL_PID=$!
	i=0
	while [ $i -lt 300 ]; do
		curl -sf -o /dev/null --data-binary "@$S/req.der" \
		    -H 'Content-Type: application/ocsp-request' \
		    "http://127.0.0.1:$OSSL_PORT/" && return 0
		kill -0 "$OSSL_PID" 2>/dev/null || break
		sleep 0.1
		i=$((i + 1))
	done
	echo "bench: openssl ocsp did not come up"
	tail -n 5 "$T/openssl.log"
	return 1
}
ossl_stop() {
	[ -n "$OSSL_PID" ] || return 0
	for k in $(pgrep -P "$OSSL_PID"); do kill -KILL "$k" 2>/dev/null; done
	kill -KILL "$OSSL_PID" 2>/dev/null
	wait "$OSSL_PID" 2>/dev/null
	OSSL_PID=""
}

# status_of RESPONSE.der: "good" / "revoked" / "unknown" of the first
# SingleResponse.
status_of() {
	openssl ocsp -respin "$1" -resp_text -noverify 2>/dev/null |
	    awk '/Cert Status:/ {print $3; exit}'
}

# setup_size N: a fresh CA, one issued leaf, N more certificates filled
# offline, the same entries in index.txt; micad started on it.
setup_size() {
	n=$1
	S=$T/s$n
	D=$S/ca
	mkdir -p "$S/req"
	mica_init "$D" --cn "Bench CA" || return 1
	if [ -n "${HTTP_THREADS:-}" ]; then
		conf_set_in "$CONF" http threads "$HTTP_THREADS" || return 1
	fi
	start_micad || return 1
	bench_leaf "$S" || return 1
	stop_micad || { echo "bench: micad exit status $?"; return 1; }

	ser=$(serial_of "$S/leaf.crt")
	exp=$(openssl x509 -in "$S/leaf.crt" -noout -enddate | sed 's/notAfter=//')
	exp=$(date -u -d "$exp" +%y%m%d%H%M%SZ)
	subj=$(openssl x509 -in "$S/leaf.crt" -noout -subject -nameopt compat |
	    sed 's/^subject=//')
	printf 'V\t%s\t\t%s\tunknown\t%s\n' "$exp" "$ser" "$subj" >"$S/index.txt"
	echo "# filling the store with $n certificates (micad stopped)"
	"$FILL" -d "$D/store" -c "$D/ca.crt" -n "$n" -i "$S/index.txt" \
	    -q "$NREQ" -o "$S/req" >"$S/fill.out" 2>&1 ||
	    { cat "$S/fill.out"; echo "bench: fill_store failed"; return 1; }
	sed 's/^/# fill_store: /' "$S/fill.out"
	start_micad || return 1

	openssl ocsp -issuer "$D/ca.crt" -cert "$S/leaf.crt" -no_nonce \
	    -reqout "$S/req.der" >/dev/null 2>&1
	openssl ocsp -issuer "$D/ca.crt" -cert "$S/leaf.crt" -nonce \
	    -reqout "$S/req_nonce.der" >/dev/null 2>&1
	ESC=$(base64 -w0 "$S/req.der" | sed 's/+/%2B/g; s|/|%2F|g; s/=/%3D/g')
	post_lua "$S/req.der" "$S/post.lua"
	post_lua "$S/req_nonce.der" "$S/post_nonce.lua"
	mix_lua "$S/mix.lua" "$S/req.der" "$S/req/req"
	mix_lua "$S/mix_nonce.lua" "$S/req_nonce.der" "$S/req/nonce"

	# nginx serves micad's signed response for the leaf
	mkdir -p "$S/www"
	curl -sf -o "$S/www/resp.der" "$URL/ocsp/$ESC" ||
	    { echo "bench: micad GET failed"; return 1; }
	chmod -R a+rX "$S/www"
	sed -i "s|root .*;|root $S/www;|" "$T/nginx/nginx.conf"
	kill -HUP "$NGINX_PID"
	sleep 1

	# sanity: every responder agrees before we measure anything
	openssl ocsp -issuer "$D/ca.crt" -cert "$S/leaf.crt" \
	    -CAfile "$D/ca.crt" -url "$URL/ocsp" 2>&1 |
	    grep -q "leaf.crt: good" ||
	    { echo "bench: micad not answering good"; return 1; }
	ossl_start || return 1
	for k in 0 1 2 3; do
		for who in micad ossl; do
			if [ $who = micad ]; then u=$URL/ocsp
			else u=http://127.0.0.1:$OSSL_PORT/; fi
			curl -sf -o "$S/$who.$k.der" --data-binary \
			    "@$S/req/req_$k.der" -H \
			    'Content-Type: application/ocsp-request' "$u" ||
			    { echo "bench: $who: no answer"; return 1; }
		done
		a=$(status_of "$S/micad.$k.der")
		b=$(status_of "$S/ossl.$k.der")
		if [ -z "$a" ] || [ "$a" != "$b" ]; then
			echo "bench: serial $k: micad '$a', openssl '$b'"
			return 1
		fi
	done
	ossl_stop
	curl -sf -o "$S/nginx.der" "http://127.0.0.1:$NGINX_PORT/resp.der" &&
	    cmp -s "$S/nginx.der" "$S/www/resp.der" ||
	    { echo "bench: nginx not serving"; cat "$T/nginx/error.log"; return 1; }
	return 0
}

# run SIZE NAME CONNS URL [LUA]: one wrk run; appends
# "size name conns rps p50_us p99_us" to $RESULTS.
run() {
	size=$1 name=$2 c=$3 url=$4 lua=${5:-}
	if [ -n "${ROWS:-}" ]; then
		case " $ROWS " in *" $name "*) ;; *) return ;; esac
	fi
	th=${WRK_THREADS:-1}
	[ "$c" -lt "$th" ] && th=$c
	case $name in openssl-*)
		ossl_start || { RUN_ERRORS=$((RUN_ERRORS + 1)); return; }
		url=$(printf %s "$url" | sed "s/:OSSL_PORT/:$OSSL_PORT/") ;;
	esac
	if [ -n "$lua" ]; then
		out=$(wrk -t"$th" -c"$c" -d"${DUR}s" --latency -s "$lua" "$url" 2>&1)
	else
		out=$(wrk -t"$th" -c"$c" -d"${DUR}s" --latency "$url" 2>&1)
	fi
	wrk_parse "$out"
	printf '%-8s %-18s %5s %12s %10s %10s  %s\n' "$size" "$name" "$c" \
	    "${RPS:-?}" "${P50:-?}" "${P99:-?}" "$ERRS"
	if [ -z "$RPS" ] || printf %s "$ERRS" | grep -q "Non-2xx"; then
		RUN_ERRORS=$((RUN_ERRORS + 1))
		printf '%s\n' "$out" | sed 's/^/#   /' | head -n 20
	fi
	echo "$size $name $c ${RPS:-0} $(to_us "${P50:-0}") $(to_us "${P99:-0}")" \
	    >>"$RESULTS"
	case $name in openssl-*) ossl_stop ;; esac
}

# to_us 223.00us|2.14ms|1.01s -> microseconds
to_us() {
	printf '%s\n' "$1" | awk '
	    /us$/ { sub(/us$/, ""); print $0 + 0; next }
	    /ms$/ { sub(/ms$/, ""); print $0 * 1000; next }
	    /s$/ { sub(/s$/, ""); print $0 * 1000000; next }
	    { print 0 }'
}

# nginx (one instance for the whole run; its root follows the store size)
mkdir -p "$T/nginx"
chmod 755 "$T"
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
kill -0 "$NGINX_PID" 2>/dev/null ||
    { echo "bench: nginx did not start"; cat "$T/nginx/out.log"; exit 1; }

RESULTS=$T/results
: >"$RESULTS"
echo "# DUR=${DUR}s CONNS=\"$CONNS\" SIZES=\"$SIZES\" NREQ=$NREQ" \
    "WRK_THREADS=${WRK_THREADS:-1}${ROWS:+ ROWS=\"$ROWS\"}; $(nproc) CPUs, load average" \
    "$(cut -d' ' -f1-3 /proc/loadavg)"
for n in $SIZES; do
	setup_size "$n" || exit 1
	printf '%-8s %-18s %5s %12s %10s %10s\n' store target conns req/s p50 p99
	for c in $CONNS; do
		run "$n" micad-post "$c" "$URL/ocsp" "$S/post.lua"
		run "$n" micad-get "$c" "$URL/ocsp/$ESC"
		run "$n" micad-post-nonce "$c" "$URL/ocsp" "$S/post_nonce.lua"
		run "$n" micad-mix "$c" "$URL/ocsp" "$S/mix.lua"
		run "$n" micad-mix-nonce "$c" "$URL/ocsp" "$S/mix_nonce.lua"
		run "$n" openssl-post "$c" "http://127.0.0.1:OSSL_PORT/" "$S/post.lua"
		run "$n" openssl-get "$c" "http://127.0.0.1:OSSL_PORT/$ESC"
		run "$n" openssl-post-nonce "$c" "http://127.0.0.1:OSSL_PORT/" \
		    "$S/post_nonce.lua"
		run "$n" openssl-mix "$c" "http://127.0.0.1:OSSL_PORT/" "$S/mix.lua"
		run "$n" nginx-static "$c" "http://127.0.0.1:$NGINX_PORT/resp.der"
	done
	stop_micad || { echo "bench: micad exit status $?"; exit 1; }
done

echo
echo "# load average at the end: $(cut -d" " -f1-3 /proc/loadavg)"
echo "table (ratio = micad req/s / peer req/s; p50/p99 are micad's, us):"
awk -v sizes="$SIZES" -v conns="$CONNS" '
    { k = $1 " " $2 " " $3; rps[k] = $4; p50[k] = $5; p99[k] = $6 }
    function row(s, c, m, p,    km, kp, r) {
	km = s " " m " " c
	kp = s " " p " " c
	if (!(km in rps) || !(kp in rps))
		return
	r = rps[kp] > 0 ? rps[km] / rps[kp] : 0
	printf "%-44s %11.0f %8.0f %8.0f %11.0f %7.2f\n", \
	    "N=" s " c=" c " " m " / " p, rps[km], p50[km], p99[km], \
	    rps[kp], r
    }
    END {
	ns = split(sizes, S, " ")
	nc = split(conns, C, " ")
	printf "%-44s %11s %8s %8s %11s %7s\n", "row", "micad", "p50", \
	    "p99", "peer", "ratio"
	for (i = 1; i <= ns; i++)
	    for (j = 1; j <= nc; j++) {
		row(S[i], C[j], "micad-post", "openssl-post")
		row(S[i], C[j], "micad-get", "openssl-get")
		row(S[i], C[j], "micad-mix", "openssl-mix")
		row(S[i], C[j], "micad-post-nonce", "openssl-post-nonce")
		row(S[i], C[j], "micad-mix-nonce", "openssl-post-nonce")
		row(S[i], C[j], "micad-post", "nginx-static")
		row(S[i], C[j], "micad-get", "nginx-static")
	    }
	if (ns >= 2) {
		printf "\n%-44s %11s %8s %8s %11s %7s\n", \
		    "store " S[ns] " vs " S[1], "large", "p50", "p99", \
		    "small", "ratio"
		for (j = 1; j <= nc; j++) {
		    split("micad-post micad-get micad-post-nonce micad-mix " \
			"micad-mix-nonce", M, " ")
		    for (m = 1; m <= 5; m++) {
			kl = S[ns] " " M[m] " " C[j]
			ks = S[1] " " M[m] " " C[j]
			if (!(kl in rps) || !(ks in rps))
				continue
			r = (rps[ks] > 0) ? rps[kl] / rps[ks] : 0
			printf "%-44s %11.0f %8.0f %8.0f %11.0f %7.2f\n", \
			    "c=" C[j] " " M[m], rps[kl], p50[kl], p99[kl], \
			    rps[ks], r
		    }
		}
	}
    }' "$RESULTS"

echo
echo "targets (printed, never enforced):"
awk -v sizes="$SIZES" '
    { k = $1 " " $2 " " $3; rps[k] = $4; p99[k] = $6 }
    function chk(what, ok) { printf "  %-58s %s\n", what, ok ? "met" : "NOT met" }
    END {
	ns = split(sizes, S, " ")
	for (i = 1; i <= ns; i++) {
	    s = S[i]
	    for (k in rps) {
		split(k, f, " ")
		if (f[1] != s || f[2] != "micad-post")
			continue
		c = f[3]
		o = rps[s " openssl-post " c]; g = rps[s " openssl-get " c]
		on = rps[s " openssl-post-nonce " c]
		n = rps[s " nginx-static " c]
		chk(sprintf("N=%s c=%s cached post >= 10x openssl (%.1fx)", s,
		    c, o > 0 ? rps[k] / o : 0), o > 0 && rps[k] >= 10 * o)
		chk(sprintf("N=%s c=%s cached get >= 10x openssl (%.1fx)", s,
		    c, g > 0 ? rps[s " micad-get " c] / g : 0),
		    g > 0 && rps[s " micad-get " c] >= 10 * g)
		chk(sprintf("N=%s c=%s cached get >= 80%% nginx (%.0f%%)", s,
		    c, n > 0 ? 100 * rps[s " micad-get " c] / n : 0),
		    n > 0 && rps[s " micad-get " c] >= 0.8 * n)
		chk(sprintf("N=%s c=%s cached post >= 80%% nginx (%.0f%%)", s,
		    c, n > 0 ? 100 * rps[k] / n : 0), n > 0 && rps[k] >= 0.8 * n)
		chk(sprintf("N=%s c=%s nonce >= 4x openssl (%.1fx)", s, c,
		    on > 0 ? rps[s " micad-post-nonce " c] / on : 0),
		    on > 0 && rps[s " micad-post-nonce " c] >= 4 * on)
		if (c == 16)
		    for (m = 1; m <= 3; m++) {
			split("micad-post micad-get micad-post-nonce", M, " ")
			chk(sprintf("N=%s c=16 %s p99 < 1 ms (%d us)", s, M[m],
			    p99[s " " M[m] " 16"]), p99[s " " M[m] " 16"] < 1000)
		    }
	    }
	}
	if (ns >= 2)
	    for (k in rps) {
		split(k, f, " ")
		if (f[1] != S[ns] || f[2] !~ /^micad-/)
			continue
		sm = rps[S[1] " " f[2] " " f[3]]
		chk(sprintf("c=%s %s: N=%s within 20%% of N=%s (%.2f)", f[3],
		    f[2], S[ns], S[1], sm > 0 ? rps[k] / sm : 0),
		    sm > 0 && rps[k] >= 0.8 * sm)
	    }
    }' "$RESULTS" | sort

if [ "$RUN_ERRORS" -ne 0 ]; then
	echo "bench: $RUN_ERRORS run(s) failed"
	exit 1
fi
