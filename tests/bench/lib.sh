# lib.sh - what the benchmarks (ocsp.sh, ocsp_cpu.sh, varnish.sh, start.sh)
# share.  Set BIN_ARG (the programs' directory: absolute, or relative to
# the top of the tree) and source it: it sources tests/e2e/lib.sh (T,
# mica_init, start_micad, admin ...) with MICA_BIN set, and adds the
# helpers below.
TOP=$(cd "$(dirname "$0")/../.." && pwd)
case "$BIN_ARG" in /*) MICA_BIN=$BIN_ARG ;; *) MICA_BIN=$TOP/$BIN_ARG ;; esac
export MICA_BIN
. "$TOP/tests/e2e/lib.sh"

# bench_need TOOL...: exits 1 naming the first tool that is neither in
# PATH nor in /usr/sbin.
bench_need() {
	for tool in "$@"; do
		command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] ||
		    { echo "bench: $tool missing"; exit 1; }
	done
}

# bench_leaf DIR: on the running micad ($CONF), the account "bench" and
# its certificate DIR/leaf.crt (30 days; key DIR/leaf.key).  1 when the
# issue fails (said so).
bench_leaf() {
	printf 'bench password 1\n' >"$1/pw"
	admin account add bench --subject "/CN=bench/O=Example" \
	    --password-file "$1/pw" >/dev/null 2>&1
	make_csr "$1/leaf.key" "$1/leaf.csr" "/CN=bench/O=Example"
	admin issue --account bench --csr "$1/leaf.csr" --days 30 \
	    --out "$1/leaf.crt" >/dev/null 2>&1 ||
	    { echo "bench: issue failed"; return 1; }
}

# post_lua REQ.der OUT.lua: a wrk script that POSTs REQ.der to /ocsp.
post_lua() {
	cat >"$2" <<LUA
local f = io.open("$1", "rb")
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/ocsp-request"
LUA
}

# wrk_parse OUTPUT: from a `wrk --latency` run's output, RPS, P50, P99
# (empty when missing) and ERRS (its Non-2xx and socket error lines).
wrk_parse() {
	RPS=$(printf '%s\n' "$1" | awk '/^Requests\/sec:/ {print $2}')
	P50=$(printf '%s\n' "$1" | awk '$1 == "50%" {print $2}')
	P99=$(printf '%s\n' "$1" | awk '$1 == "99%" {print $2}')
	ERRS=$(printf '%s\n' "$1" | grep -E "Non-2xx|Socket errors" |
	    tr '\n' ' ')
}
