# lib.sh - helpers for end-to-end tests: real micad processes on free
# loopback ports in a temp directory, driven by the real CLIs and openssl.
# Source it from tests/e2e/t_*.sh.  Output is TAP-like: "ok - ..." and
# "not ok - ..."; tests/run.sh counts those lines.
set -u
TOP=${MICA_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
BIN=${MICA_BIN:-$TOP/bin}
T=$(mktemp -d /tmp/mica-e2e.XXXXXX)
FAILS=0
MICAD_PID=""

cleanup() {
	if [ -n "$MICAD_PID" ] && kill -0 "$MICAD_PID" 2>/dev/null; then
		stop_micad
	fi
	if [ "$FAILS" -eq 0 ] && [ -z "${MICA_KEEP:-}" ]; then
		rm -rf "$T"
	else
		echo "# test directory kept: $T"
	fi
}
trap cleanup EXIT

ok() { echo "ok - $*"; }
not_ok() { echo "not ok - $*"; FAILS=$((FAILS + 1)); }

# check DESC CMD...: passes when CMD exits 0; shows its output otherwise.
check() {
	desc=$1; shift
	if out=$("$@" 2>&1); then
		ok "$desc"
	else
		not_ok "$desc"
		printf '%s\n' "$out" | sed 's/^/#   /' | head -n 20
	fi
}

# expect_exit CODE DESC CMD...: CMD must exit with CODE; its output is kept
# in $OUT for later checks.
expect_exit() {
	want=$1; desc=$2; shift 2
	OUT=$("$@" 2>&1)
	rc=$?
	if [ "$rc" -eq "$want" ]; then
		ok "$desc"
	else
		not_ok "$desc (exit $rc, wanted $want)"
		printf '%s\n' "$OUT" | sed 's/^/#   /' | head -n 20
	fi
}

# expect_out DESC FIXED-STRING: the last expect_exit's output contains it.
expect_out() {
	if printf '%s\n' "$OUT" | grep -qF -- "$2"; then
		ok "$1"
	else
		not_ok "$1 (output lacks: $2)"
		printf '%s\n' "$OUT" | sed 's/^/#   /' | head -n 20
	fi
}

# expect_eq DESC GOT WANT
expect_eq() {
	if [ "$2" = "$3" ]; then
		ok "$1"
	else
		not_ok "$1 (got '$2', wanted '$3')"
	fi
}

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# mica_init DIR [init options...]: a CA on free ports with cheap argon2id
# limits (tests only; production defaults stay strong).
mica_init() {
	dir=$1; shift
	CA_PORT=$(free_port)
	HTTP_PORT=$(free_port)
	"$BIN/mica-admin" init "$dir" --ca-listen "127.0.0.1:$CA_PORT" \
	    --http-listen "127.0.0.1:$HTTP_PORT" "$@" >"$T/init.out" 2>&1 ||
	    { cat "$T/init.out"; return 1; }
	conf_set "$dir/mica.conf" argon2_opslimit 1
	conf_set "$dir/mica.conf" argon2_memlimit 8192
	CONF=$dir/mica.conf
	export MICA_CONF=$CONF
	URL=http://127.0.0.1:$HTTP_PORT
}

# conf_set FILE KEY VALUE: replaces "KEY = ..." (the key must exist once).
conf_set() {
	sed -i "s|^\\($2[ 	]*=\\).*|\\1 $3|" "$1"
	grep -q "^$2[ 	]*= $3\$" "$1" || { echo "conf_set: no key $2 in $1" >&2; return 1; }
}

# conf_set_in FILE SECTION KEY VALUE: like conf_set, only inside [SECTION]
# (for keys such as max_connections that several sections have).
conf_set_in() {
	awk -v sec="[$2]" -v key="$3" -v val="$4" '
	    /^\[/ { cur = $0 }
	    cur == sec && $1 == key && $2 == "=" { print key " = " val; n++; next }
	    { print }
	    END { if (n != 1) exit 1 }' "$1" >"$1.new" ||
	    { rm -f "$1.new"; echo "conf_set_in: no key $3 in [$2] of $1" >&2; return 1; }
	cat "$1.new" >"$1" && rm -f "$1.new"
}

# start_micad [CONF]: starts micad in the background, waits until the
# admin socket answers.  Log in $T/micad.log.
start_micad() {
	conf=${1:-$CONF}
	if [ -n "${MICA_VALGRIND:-}" ]; then
		# memcheck: any error or definite/indirect leak at a clean
		# shutdown makes micad exit 99, which stop_micad reports.
		# The logs go to a directory anyone may write: a micad that
		# drops privileges spawns its dummy-hash child (under
		# valgrind too) as the daemon user.
		mkdir -p "$T/vg" && chmod 1777 "$T/vg"
		valgrind -q --vgdb=no --leak-check=full \
		    --show-leak-kinds=definite,indirect \
		    --errors-for-leak-kinds=definite,indirect \
		    --error-exitcode=99 --log-file="$T/vg/valgrind.%p.log" \
		    "$BIN/micad" -c "$conf" >>"$T/micad.log" 2>&1 &
		limit=900
	else
		"$BIN/micad" -c "$conf" >>"$T/micad.log" 2>&1 &
		limit=100
	fi
	MICAD_PID=$!
	i=0
	while [ $i -lt $limit ]; do
		# up, and its CRL service serves a full CRL (status does
		# not wait for a first build: the tests do, as they did)
		if _st=$("$BIN/mica-admin" -c "$conf" status 2>/dev/null) &&
		    ! printf '%s\n' "$_st" | grep -q '^crl number: none yet'
		then
			return 0
		fi
		kill -0 "$MICAD_PID" 2>/dev/null || break
		sleep 0.1
		i=$((i + 1))
	done
	echo "# micad did not come up; log:" && sed 's/^/#   /' "$T/micad.log" | tail -n 20
	return 1
}

# wait_log PATTERN: waits (bounded: 60 s) until $T/micad.log has a line
# matching the grep PATTERN; 0 once it has.  For what micad does in the
# background after it serves (the first CRL build), slow under valgrind.
wait_log() {
	i=0
	while [ $i -lt 600 ]; do
		grep -q -- "$1" "$T/micad.log" && return 0
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}

# stop_micad: SIGTERM and wait; returns micad's exit status.
stop_micad() {
	[ -n "$MICAD_PID" ] || return 0
	kill -TERM "$MICAD_PID" 2>/dev/null
	wait "$MICAD_PID"
	rc=$?
	if [ -n "${MICA_VALGRIND:-}" ]; then
		# micad's own exit status, and every process it forked (the
		# signer, dummy-hash children): valgrind follows forks, and
		# with -q a clean process leaves an empty log.  Each report
		# is shown (and counted) once.
		vgbad=0
		for v in "$T"/vg/valgrind.*.log; do
			[ -s "$v" ] || continue
			echo "# valgrind report $v:"
			sed 's/^/#   /' "$v" | head -n 60
			mv "$v" "$v.seen"
			vgbad=1
		done
		if [ $rc -eq 99 ] || [ $vgbad -eq 1 ]; then
			not_ok "valgrind: micad had memory errors or leaks"
		else
			ok "valgrind: micad clean at shutdown"
		fi
	fi
	MICAD_PID=""
	return $rc
}

admin() { "$BIN/mica-admin" -c "$CONF" "$@"; }

# make_csr KEYFILE CSRFILE SUBJ: a P-256 key and CSR (DER by default? no: PEM).
make_csr() {
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	    -keyout "$1" -out "$2" -subj "$3" 2>/dev/null
}

# account_add NAME SUBJECT PWFILE: mica-admin account add; the account's
# TOTP secret (base32) into $T/NAME.secret, for totp_of
account_add() {
	admin account add "$1" --subject "$2" --password-file "$3" \
	    >"$T/$1.add" 2>&1 || return 1
	sed -n 's/^totp secret[^:]*: //p' "$T/$1.add" >"$T/$1.secret"
	test -s "$T/$1.secret"
}
# totp_of NAME: the account's TOTP code now (oathtool)
totp_of() { oathtool --totp -b "$(cat "$T/$1.secret")"; }

# serial_of CERT: uppercase hex serial as openssl prints it.
serial_of() {
	openssl x509 -in "$1" -noout -serial | sed 's/^serial=//'
}

done_testing() {
	if [ "$FAILS" -eq 0 ]; then
		exit 0
	fi
	exit 1
}
