#!/bin/sh
# t_crash.sh - crash consistency.  Each round runs a mixed load against
# micad (issues, revocations, holds and releases through mica-admin,
# account enrolment and reissues with auto review through the real mica
# client, OCSP queries with openssl ocsp, published CRL files parsed all
# the time), SIGKILLs micad at a random moment and restarts it.  Then:
#   - every certificate a client was told about (command exited 0) is in
#     the store with the status the last successful command gave it (a
#     command cut off by the kill allows the state before or after it);
#   - every replacement's predecessor is revoked and linked both ways;
#   - no serial appears twice; the audit chain verifies;
#   - the CRL numbers (status --json, served full and delta) never go back;
#   - openssl ocsp agrees with the store for the serials touched;
#   - published CRL files were never torn; mica-admin check passes.
# One round takes a backup during the load; it is restored beside the
# running CA (second micad on other ports) and must pass the same checks.
#   CRASH_ROUNDS (default 8), CRASH_SECONDS (stop starting rounds after).
. "$(dirname "$0")/lib.sh"

ROUNDS=${CRASH_ROUNDS:-8}
MAXSECS=${CRASH_SECONDS:-50}
BACKUP_ROUND=$(( ROUNDS > 1 ? 2 : 1 ))

mica_init "$T/ca" || { not_ok "mica-admin init"; done_testing; }
conf_set "$CONF" review auto
conf_set "$CONF" log_level warn
PUB=$T/pub
mkdir -p "$PUB"
sed -i "s|^\\[crl\\]\$|[crl]\\npublish_dir = $PUB|" "$CONF"
start_micad || { not_ok "micad starts"; done_testing; }
CA=$T/ca/ca.crt
PW=$T/pw
echo 'correct-horse-battery' >"$PW"
MICA="$BIN/mica --server 127.0.0.1:$CA_PORT --ca $CA"
: >"$T/expA"; : >"$T/expB"; : >"$T/ops"; : >"$T/errors"; : >"$T/touched"
admin account add load --subject "/CN=load/O=Org" --password-file "$PW" \
    >/dev/null 2>&1 || not_ok "account add load"
make_csr "$T/load.key" "$T/load.csr" "/CN=load/O=Org"

rnd() { od -An -N2 -tu2 /dev/urandom | tr -d ' '; }
err() { echo "$*" >>"$T/errors"; }
op() { echo "$1" >>"$T/ops"; }
stopping() { [ -e "$T/stop" ]; }

# A failed command is fine only when micad was being killed.
failed() {
	stopping || err "$* failed while micad was running"
}

# Loop A: issue, revoke, hold, unhold on the "load" account's serials.
# expA holds "SERIAL ALLOWED" (ALLOWED: status, or "a,b" when the command
# that would move a to b was cut off).
loop_admin() {
	n=0
	while ! stopping; do
		r=$(( $(rnd) % 10 ))
		n=$((n + 1))
		if [ "$r" -lt 4 ] || ! [ -s "$T/expA" ]; then
			out=$T/la.$n.crt
			if admin issue --account load --csr "$T/load.csr" \
			    --out "$out" >/dev/null 2>&1; then
				s=$(serial_of "$out")
				echo "$s good" >>"$T/expA"
				echo "$s" >>"$T/touched"
			else
				failed issue; break
			fi
			rm -f "$out"
			op issue
			continue
		fi
		case $r in
		4|5) from="good hold"; cmd=revoke; to=revoked ;;
		6|7) from="good"; cmd=hold; to=hold ;;
		*) from="hold"; cmd=unhold; to=good ;;
		esac
		line=$(awk -v f=" $from " 'index(f, " " $2 " ")' "$T/expA" |
		    shuf -n 1)
		[ -n "$line" ] || continue
		s=${line%% *}; st=${line#* }
		echo "$s" >>"$T/touched"
		sed -i "s/^$s .*/$s $st,$to/" "$T/expA"
		if [ "$cmd" = revoke ]; then
			# not keyCompromise: every "load" certificate shares one
			# key, and a compromised key is never certified again
			set -- --reason superseded
		else
			set --
		fi
		if admin "$cmd" "$s" "$@" >/dev/null 2>&1; then
			sed -i "s/^$s .*/$s $to/" "$T/expA"
			op "$cmd"
		else
			failed "$cmd $s"; break
		fi
	done
}

# Loop B: enrol an account, issue its certificate, lose it, reissue with
# the real mica client (auto review).  expB: "SERIAL ALLOWED [LOST]".
loop_reissue() {
	k=0
	while ! stopping; do
		k=$((k + 1))
		a=b$1x$k
		admin account add "$a" --subject "/CN=$a/O=Org" \
		    --password-file "$PW" >"$T/$a.add" 2>&1 ||
		    { failed "account add $a"; break; }
		op account
		sed -n 's/^totp secret[^:]*: //p' "$T/$a.add" >"$T/$a.secret"
		make_csr "$T/$a.key" "$T/$a.csr" "/CN=$a/O=Org"
		admin issue --account "$a" --csr "$T/$a.csr" \
		    --out "$T/$a.crt" >/dev/null 2>&1 ||
		    { failed "issue $a"; break; }
		op issue
		lost=$(serial_of "$T/$a.crt")
		echo "$lost good,revoked" >>"$T/expB"
		echo "$lost" >>"$T/touched"
		otp=$(oathtool --totp -b "$(cat "$T/$a.secret")")
		if $MICA reissue --account "$a" --lost-cert "$T/$a.crt" \
		    --key "$T/$a.new.key" --out "$T/$a.new.crt" \
		    --password-file "$PW" --otp "$otp" --timeout 20 \
		    >"$T/$a.out" 2>&1; then
			new=$(serial_of "$T/$a.new.crt")
			sed -i "s/^$lost .*/$lost revoked/" "$T/expB"
			echo "$new good $lost" >>"$T/expB"
			echo "$new" >>"$T/touched"
			op reissue
		else
			failed "mica reissue $a: $(tail -n 1 "$T/$a.out")"
			break
		fi
	done
}

# Loop C: OCSP queries and published CRL files parsed while they change.
loop_ocsp() {
	while ! stopping; do
		s=$(cut -d' ' -f1 "$T/expA" "$T/expB" | shuf -n 1)
		if [ -n "$s" ]; then
			openssl ocsp -issuer "$CA" -serial "0x$s" \
			    -url "$URL/ocsp" -CAfile "$CA" -no_nonce \
			    >/dev/null 2>&1 && op ocsp
		fi
		for f in "$PUB"/full.crl "$PUB"/delta.crl; do
			[ -e "$f" ] || continue
			openssl crl -inform DER -in "$f" -noout 2>/dev/null ||
			    err "published $(basename "$f") does not parse"
			op crlfile
		done
	done
}

# verify TAG ADMIN-ARGS...: the expectation files against `list --json`.
cat >"$T/verify.py" <<'EOF'
import json, sys
lst, touched, out = sys.argv[1], sys.argv[2], sys.argv[3]
exps = sys.argv[4:]
certs = json.load(open(lst))
by = {}
bad = []
checks = 0
for c in certs:
    if c["serial"] in by:
        bad.append("serial %s appears twice" % c["serial"])
    by[c["serial"]] = c
checks += 1
for e in exps:
    lines = []
    for ln in open(e):
        f = ln.split()
        if not f:
            continue
        s, allowed = f[0], f[1].split(",")
        c = by.get(s)
        checks += 1
        if c is None:
            bad.append("serial %s (%s) is not in the store" % (s, f[1]))
            continue
        if c["status"] not in allowed:
            bad.append("serial %s is %s, expected %s" %
                       (s, c["status"], f[1]))
        f[1] = c["status"]
        if len(f) > 2:
            checks += 1
            lost = by.get(f[2])
            if c.get("replaces") != f[2]:
                bad.append("serial %s does not name %s in replaces" %
                           (s, f[2]))
            elif lost is None or lost["status"] != "revoked" or \
                    lost.get("replaced_by") != s:
                bad.append("predecessor %s of %s is not revoked and "
                           "linked back" % (f[2], s))
        lines.append(" ".join(f) + "\n")
    if "--no-rewrite" not in e:
        open(e, "w").writelines(lines)
with open(out, "w") as o:
    for s in sorted(set(x.strip() for x in open(touched) if x.strip())):
        c = by.get(s)
        if c is not None:
            o.write("%s %s\n" % (s, "good" if c["status"] == "good"
                                 else "revoked"))
for b in bad:
    print(b)
print("checks %d" % checks)
sys.exit(1 if bad else 0)
EOF

CHECKS=0
PREV_FULL=0
PREV_DELTA=0
# round_checks CONF HOST:PORT EXPECTATION-FILES...: everything after a
# restart (HOST:PORT: the HTTP listener of that micad).
round_checks() {
	c=$1; u=$2; shift 2
	rc=0
	"$BIN/mica-admin" -c "$c" list --json >"$T/list.json" 2>&1 ||
	    { echo "# list --json failed"; return 1; }
	if out=$(python3 "$T/verify.py" "$T/list.json" "$T/touched" \
	    "$T/ocsp.want" "$@"); then
		CHECKS=$((CHECKS + $(echo "$out" | sed -n 's/^checks //p')))
	else
		printf '%s\n' "$out" | sed 's/^/#   /' | head -n 10
		rc=1
	fi
	if "$BIN/mica-admin" -c "$c" audit --verify >/dev/null 2>&1; then
		CHECKS=$((CHECKS + 1))
	else
		echo "# audit chain does not verify"; rc=1
	fi
	full=$(curl -sf "http://$u/crl" | openssl crl -inform DER -noout \
	    -crlnumber 2>/dev/null | sed 's/^crlNumber=0x//')
	delta=$(curl -sf "http://$u/crl/delta.crl" | openssl crl -inform DER \
	    -noout -crlnumber 2>/dev/null | sed 's/^crlNumber=0x//')
	if [ -z "$full" ] || [ -z "$delta" ]; then
		echo "# served CRLs missing or unparsable"; rc=1
	else
		full=$(printf '%d' "0x$full"); delta=$(printf '%d' "0x$delta")
		st=$("$BIN/mica-admin" -c "$c" status --json |
		    sed 's/.*"crl_number":\([0-9]*\).*/\1/')
		if [ "$full" -lt "$PREV_FULL" ] || [ "$delta" -lt "$PREV_DELTA" ] ||
		    [ "$st" -lt "$PREV_FULL" ]; then
			echo "# CRL number went back: full $PREV_FULL -> $full," \
			    "delta $PREV_DELTA -> $delta, status $st"; rc=1
		else
			CHECKS=$((CHECKS + 1))
		fi
		PREV_FULL=$full; PREV_DELTA=$delta
	fi
	for f in "$PUB"/full.crl "$PUB"/delta.crl; do
		if openssl crl -inform DER -in "$f" -noout 2>/dev/null; then
			CHECKS=$((CHECKS + 1))
		else
			echo "# published $f does not parse"; rc=1
		fi
	done
	# OCSP over HTTP for (at most 12 of) the serials touched this round
	shuf -n 12 "$T/ocsp.want" 2>/dev/null | while read -r s want; do
		raw=$(openssl ocsp -issuer "$CA" -serial "0x$s" \
		    -url "http://$u/ocsp" -CAfile "$CA" -no_nonce 2>&1)
		got=$(printf '%s\n' "$raw" | sed -n "s/^0x$s: //p")
		if [ -z "$got" ]; then
			# no answer at all (a transport error on a loaded
			# machine) is not a disagreement: say so, ask again
			printf '%s\n' "$raw" | sed 's/^/# no OCSP answer: /' >&2
			raw=$(openssl ocsp -issuer "$CA" -serial "0x$s" \
			    -url "http://$u/ocsp" -CAfile "$CA" -no_nonce 2>&1)
			got=$(printf '%s\n' "$raw" | sed -n "s/^0x$s: //p")
		fi
		[ "$got" = "$want" ] || { echo "# OCSP says '$got' for $s, store $want"; printf '%s\n' "$raw" | sed 's/^/#   /'; }
	done >"$T/ocsp.bad"
	if [ -s "$T/ocsp.bad" ]; then
		cat "$T/ocsp.bad"; rc=1
	else
		CHECKS=$((CHECKS + $(shuf -n 12 "$T/ocsp.want" | wc -l)))
	fi
	if out=$("$BIN/mica-admin" -c "$c" check 2>&1); then
		CHECKS=$((CHECKS + 1))
	else
		printf '%s\n' "$out" | sed 's/^/#   /'; rc=1
	fi
	return $rc
}

START=$(date +%s)
round=0
BACKUP_OK=0
while [ "$round" -lt "$ROUNDS" ]; do
	if [ $(( $(date +%s) - START )) -ge "$MAXSECS" ]; then
		echo "# time budget of ${MAXSECS}s used: stopping after $round rounds"
		break
	fi
	round=$((round + 1))
	rm -f "$T/stop"
	: >"$T/touched"
	loop_admin & P1=$!
	loop_reissue "$round" & P2=$!
	loop_ocsp & P3=$!
	# mica-admin check while the load runs: must pass unless cut off
	( sleep 0.2; if admin check >"$T/check.out" 2>&1; then op check
	  else failed "check during load: $(tail -n 1 "$T/check.out")"; fi ) &
	P5=$!
	P4=""
	if [ "$round" -eq "$BACKUP_ROUND" ]; then
		(
			sleep 0.3
			cut -d' ' -f1 "$T/expA" "$T/expB" >"$T/before-backup"
			rm -f "$T/backup.mdb"
			admin backup "$T/backup.mdb" >/dev/null 2>&1 &&
			    touch "$T/backup.ok"
		) & P4=$!
		[ -n "$P4" ] && wait "$P4"
	fi
	ms=$(( 300 + $(rnd) % 1700 ))
	sleep "$((ms / 1000)).$(printf '%03d' $((ms % 1000)))"
	touch "$T/stop"
	kill -KILL "$MICAD_PID"
	wait "$MICAD_PID" 2>/dev/null
	MICAD_PID=""
	wait $P1 $P2 $P3 $P5
	if ! start_micad; then
		not_ok "round $round: micad restarts after SIGKILL"
		break
	fi
	if [ -s "$T/errors" ]; then
		not_ok "round $round: load without unexpected failures"
		sed 's/^/#   /' "$T/errors" | head -n 10
		: >"$T/errors"
	fi
	if round_checks "$CONF" "127.0.0.1:$HTTP_PORT" "$T/expA" "$T/expB"; then
		ok "round $round: consistent after SIGKILL and restart"
	else
		not_ok "round $round: consistent after SIGKILL and restart"
	fi
done
OPS=$(wc -l <"$T/ops")

# ---- the backup taken during the load, restored beside the running CA ----
if [ -e "$T/backup.ok" ]; then
	ok "backup taken during the load"
	cp -r "$T/ca" "$T/ca2"
	rm -f "$T/ca2/store/"* "$T/ca2/admin.sock"
	# a clone beside the running CA, not a restore in its place: it
	# starts its own high-water mark and its own signer records (the
	# signer refuses CRL numbers below those it signed; t_restore
	# covers restores)
	rm -f "$T/ca2/private/hwm" "$T/ca2/private/signer.state" \
	    "$T/ca2/private/signer.log"
	# and its own journal (the copied one would roll it forward)
	rm -rf "$T/ca2/journal"
	cp "$T/backup.mdb" "$T/ca2/store/data.mdb"
	CA2_PORT=$(free_port); HTTP2_PORT=$(free_port)
	mkdir -p "$T/pub2"
	sed -i "s|127.0.0.1:$CA_PORT|127.0.0.1:$CA2_PORT|g;
	    s|127.0.0.1:$HTTP_PORT|127.0.0.1:$HTTP2_PORT|g;
	    s|^publish_dir = .*|publish_dir = $T/pub2|" "$T/ca2/mica.conf"
	MAIN_PID=$MICAD_PID
	if start_micad "$T/ca2/mica.conf"; then
		PID2=$MICAD_PID
		# serials issued before the backup began must all be there
		awk '{ print $1 " good,hold,revoked" }' "$T/before-backup" \
		    >"$T/exp-backup--no-rewrite"
		: >"$T/touched"
		SAVE_PUB=$PUB; PUB=$T/pub2
		PREV_FULL=0; PREV_DELTA=0
		if round_checks "$T/ca2/mica.conf" "127.0.0.1:$HTTP2_PORT" "$T/exp-backup--no-rewrite"; then
			ok "restored backup passes the same checks"
		else
			not_ok "restored backup passes the same checks"
		fi
		PUB=$SAVE_PUB
		kill -TERM "$PID2"; wait "$PID2"
	else
		not_ok "second micad starts on the restored backup"
	fi
	MICAD_PID=$MAIN_PID
else
	not_ok "backup taken during the load"
fi

if stop_micad; then
	ok "micad stops cleanly at the end"
else
	not_ok "micad stops cleanly at the end"
fi
echo "rounds: $round, operations: $OPS, checks: $CHECKS passed"
done_testing
