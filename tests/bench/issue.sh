#!/bin/sh
# issue.sh - durable issuances per second through the admin socket with
# 1, 8 and 32 concurrent clients (build/tests/issue_load: each client
# sends `issue` with a CSR and waits for the certificate, which micad
# sends only after the commit), with the change journal on (default: one
# journal fsync and one store fsync per group commit) and off.
#   sh tests/bench/issue.sh BIN BUILD [CLIENTS...]   (make bench-issue)
# Target: >= 2,000/s at 8 or more clients.  Each row issues about
# ISSUES_TOTAL certificates (default 2000, split over the clients, at
# least 20 each); JOURNAL_MODES="on off" by default.  The load column is
# the 1-minute load average after the row (the machine may be shared).
set -eu

BIN=${1:-bin}
BUILD=${2:-build}
shift 2 2>/dev/null || true
CLIENTS=${*:-1 8 32}
LOAD=$BUILD/tests/issue_load
[ -x "$LOAD" ] || { echo "issue bench: $LOAD missing (make $LOAD)"; exit 1; }
TMP=$(mktemp -d /tmp/mica-bench-issue.XXXXXX)
PID=
cleanup() {
	[ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# run JOURNAL(on|off): one CA, every client count
run() {
	d=$TMP/ca-$1
	"$BIN/mica-admin" init "$d" --ca-listen "127.0.0.1:$(port)" \
	    --http-listen "127.0.0.1:$(port)" >/dev/null
	sed -i 's|^argon2_opslimit.*|argon2_opslimit = 1|;
	    s|^argon2_memlimit.*|argon2_memlimit = 8192|' "$d/mica.conf"
	[ "$1" = off ] && sed -i 's|^journal_dir.*|journal_dir =|' "$d/mica.conf"
	"$BIN/micad" -c "$d/mica.conf" >"$TMP/micad-$1.log" 2>&1 &
	PID=$!
	i=0
	until "$BIN/mica-admin" -c "$d/mica.conf" status >/dev/null 2>&1; do
		i=$((i + 1)); [ $i -lt 200 ] || { echo "micad did not start"; exit 1; }
		sleep 0.05
	done
	printf 'bench-password\n' >"$TMP/pw"
	"$BIN/mica-admin" -c "$d/mica.conf" account add bench \
	    --subject "/CN=bench/O=Bench" --password-file "$TMP/pw" >/dev/null
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	    -keyout "$TMP/k.pem" -out "$TMP/r.csr" -subj "/CN=bench/O=Bench" \
	    2>/dev/null
	for c in $CLIENTS; do
		n=$((${ISSUES_TOTAL:-2000} / c))
		[ "$n" -ge 20 ] || n=20
		out=$("$LOAD" -s "$d/admin.sock" -a bench -r "$TMP/r.csr" \
		    -c "$c" -n "$n")
		rate=$(printf '%s\n' "$out" | sed -n 's/.*: \([0-9]*\)\/s.*/\1/p')
		printf '%-8s %8s %8s %12s %6s\n' "$1" "$c" "$((c * n))" "$rate" \
		    "$(cut -d' ' -f1 /proc/loadavg)"
	done
	kill "$PID"; wait "$PID" 2>/dev/null || true; PID=
}

printf '%-8s %8s %8s %12s %6s\n' journal clients issued durable/s load
for m in ${JOURNAL_MODES:-on off}; do run "$m"; done
