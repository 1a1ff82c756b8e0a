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
# the 1-minute load average after the row (the machine may be shared);
# cpu/issue is the CPU time (user + system) micad and its signer process
# spent per issuance in the row, from /proc.  The line before the table
# is this disk's latency of one small append + fdatasync (micad waits on
# three in a row per group commit: signer.log, the journal, the store),
# so that figures from different machines or days can be compared: the
# rate at 8 clients follows it more than the CPU.
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

# cpu_ticks PID...: user + system clock ticks of the processes
cpu_ticks() {
	t=0
	for p in "$@"; do
		v=$(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)
		t=$((t + v))
	done
	echo "$t"
}

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
		pids="$PID $(pgrep -P "$PID" | tr '\n' ' ')"
		# shellcheck disable=SC2086
		t0=$(cpu_ticks $pids)
		out=$("$LOAD" -s "$d/admin.sock" -a bench -r "$TMP/r.csr" \
		    -c "$c" -n "$n")
		# shellcheck disable=SC2086
		t1=$(cpu_ticks $pids)
		rate=$(printf '%s\n' "$out" | sed -n 's/.*: \([0-9]*\)\/s.*/\1/p')
		cpu=$(awk -v t=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" \
		    -v n=$((c * n)) 'BEGIN { printf "%.2f", t * 1000 / hz / n }')
		printf '%-8s %8s %8s %12s %10s %6s\n' "$1" "$c" "$((c * n))" \
		    "$rate" "$cpu ms" "$(cut -d' ' -f1 /proc/loadavg)"
	done
	kill "$PID"; wait "$PID" 2>/dev/null || true; PID=
}

# the disk: 500 appends of 300 bytes, each followed by fdatasync
python3 - "$TMP/fsync-probe" <<'EOF'
import os, sys, time
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
t = time.perf_counter()
for _ in range(500):
    os.write(fd, b"x" * 300)
    os.fdatasync(fd)
ms = (time.perf_counter() - t) / 500 * 1000
os.close(fd)
os.unlink(sys.argv[1])
print("# this disk: append + fdatasync %.3f ms (mean of 500, in %s)"
      % (ms, os.path.dirname(sys.argv[1])))
EOF
printf '%-8s %8s %8s %12s %10s %6s\n' journal clients issued durable/s \
    cpu/issue load
for m in ${JOURNAL_MODES:-on off}; do run "$m"; done
