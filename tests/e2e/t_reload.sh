#!/bin/sh
# t_reload.sh - SIGHUP while micad works.  (1) 50 issuances, two at a
# time, while 20 SIGHUPs flip between two complete settings
# (A: digitalSignature + clientAuth, 10 days; B: digitalSignature,
# keyEncipherment + serverAuth, 20 days): every certificate must be all A
# or all B, never a mix of the two.  (2) A SIGHUP that changes the
# argon2id limits recomputes the dummy hash that unknown-account logins
# are verified against (logged with the parameters the hash carries), an
# unchanged SIGHUP does not, and unknown accounts keep getting the same
# answer as wrong passwords of real ones.
. "$(dirname "$0")/lib.sh"

# wait_grep PATTERN FILE: up to ~10 s for PATTERN to show up in FILE.
wait_grep() {
	i=0
	while [ $i -lt 100 ]; do
		grep -q -- "$1" "$2" 2>/dev/null && return 0
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}

# wait_count PATTERN FILE N: up to ~10 s for N lines matching PATTERN.
wait_count() {
	i=0
	while [ $i -lt 100 ]; do
		[ "$(grep -c -- "$1" "$2" 2>/dev/null)" -ge "$3" ] && return 0
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}

# install_conf FILE: replaces the config in one rename (micad may read it
# at any moment).
install_conf() {
	cp "$1" "$CONF.tmp" && mv "$CONF.tmp" "$CONF"
}

# profile_of CERT: "KU|EKU|days" as openssl prints them.
profile_of() {
	x=$(openssl x509 -in "$1" -noout -text 2>/dev/null)
	ku=$(printf '%s\n' "$x" | sed -n '/X509v3 Key Usage/{n;s/^ *//;p;}')
	eku=$(printf '%s\n' "$x" |
	    sed -n '/X509v3 Extended Key Usage/{n;s/^ *//;p;}')
	nb=$(date -d "$(openssl x509 -in "$1" -noout -startdate |
	    sed 's/notBefore=//')" +%s)
	na=$(date -d "$(openssl x509 -in "$1" -noout -enddate |
	    sed 's/notAfter=//')" +%s)
	echo "$ku|$eku|$(( (na - nb + 3600) / 86400 ))"
}

mica_init "$T/ca" || { not_ok "mica-admin init"; done_testing; }
conf_set "$CONF" log_level debug
# the two settings SIGHUP flips between
cp "$CONF" "$T/conf.A"
conf_set "$T/conf.A" key_usage digitalSignature
conf_set "$T/conf.A" ext_key_usage clientAuth
conf_set "$T/conf.A" default_days 10
cp "$CONF" "$T/conf.B"
conf_set "$T/conf.B" key_usage "digitalSignature,keyEncipherment"
conf_set "$T/conf.B" ext_key_usage serverAuth
conf_set "$T/conf.B" default_days 20
install_conf "$T/conf.A"
start_micad || { not_ok "micad starts"; done_testing; }
PA="Digital Signature|TLS Web Client Authentication|10"
PB="Digital Signature, Key Encipherment|TLS Web Server Authentication|20"

printf 'pw-bob-123456\n' >"$T/pw"
check "account bob" admin account add bob --subject "/CN=bob/O=Org" \
    --password-file "$T/pw"
make_csr "$T/bob.key" "$T/bob.csr" "/CN=bob/O=Org"
check "issue with settings A" admin issue --account bob --csr "$T/bob.csr" \
    --out "$T/a.crt"
expect_eq "settings A at start" "$(profile_of "$T/a.crt")" "$PA"
install_conf "$T/conf.B"
kill -HUP "$MICAD_PID"
wait_count "SIGHUP: reloaded" "$T/micad.log" 1
check "issue with settings B" admin issue --account bob --csr "$T/bob.csr" \
    --out "$T/b.crt"
expect_eq "settings B after one SIGHUP" "$(profile_of "$T/b.crt")" "$PB"

# ---- 50 issuances under 20 SIGHUPs ----
# 25 rounds: two issuances start in the background, then (in 20 of the
# rounds) the config is flipped and SIGHUP sent while they are in flight;
# the round ends when both answered and the SIGHUP was handled.
mkdir "$T/issued"
h=0
r=0
while [ $r -lt 25 ]; do
	admin issue --account bob --csr "$T/bob.csr" \
	    --out "$T/issued/x-$r.crt" >"$T/issued/x-$r.out" 2>&1 &
	PX=$!
	admin issue --account bob --csr "$T/bob.csr" \
	    --out "$T/issued/y-$r.crt" >"$T/issued/y-$r.out" 2>&1 &
	PY=$!
	if [ $((r % 5)) -ne 4 ]; then
		if [ $((h % 2)) -eq 0 ]; then
			install_conf "$T/conf.A"
		else
			install_conf "$T/conf.B"
		fi
		kill -HUP "$MICAD_PID"
		h=$((h + 1))
	fi
	wait $PX
	wait $PY
	# one SIGHUP at a time (signals sent faster than handled merge)
	wait_count "SIGHUP: reloaded" "$T/micad.log" $((h + 1))
	r=$((r + 1))
done
expect_eq "20 SIGHUPs sent" "$h" 20
expect_eq "21 reloads logged" "$(grep -c 'SIGHUP: reloaded' "$T/micad.log")" 21
expect_eq "50 certificates issued" "$(ls "$T/issued" | grep -c '\.crt$')" 50
NA=0
NB=0
BAD=0
for c in "$T"/issued/*.crt; do
	p=$(profile_of "$c")
	case "$p" in
	"$PA") NA=$((NA + 1)) ;;
	"$PB") NB=$((NB + 1)) ;;
	*)	BAD=$((BAD + 1)); echo "# $c: $p" ;;
	esac
done
echo "# settings A: $NA certificates, settings B: $NB"
expect_eq "every certificate is all A or all B" "$BAD" 0
expect_eq "A + B = 50" "$((NA + NB))" 50
check "micad still serves after the SIGHUPs" admin status

# ---- the dummy hash follows the argon2id limits ----
CA=$T/ca/ca.crt
LOGIN="python3 $(dirname "$0")/mica_login.py $CA $CA_PORT"
install_conf "$T/conf.A"
expect_exit 0 "unknown account login before" $LOGIN 1 nobody wrong 123456
expect_out "unknown account: ERROR 6" "error 6"
expect_exit 0 "wrong password of bob before" $LOGIN 1 bob wrong 123456
expect_out "known account: ERROR 6" "error 6"
expect_eq "no dummy recomputed yet" \
    "$(grep -c 'argon2id dummy hash recomputed' "$T/micad.log")" 0
conf_set "$CONF" argon2_opslimit 2
conf_set "$CONF" argon2_memlimit 16M
kill -HUP "$MICAD_PID"
check "SIGHUP logs that the dummy hash was recomputed" wait_grep \
    "argon2id dummy hash recomputed" "$T/micad.log"
check "for the new limits, and the hash carries them" grep -q \
    "dummy hash recomputed opslimit=2 memlimit=16777216 params=m=16384,t=2," \
    "$T/micad.log"
check "the SIGHUP line names the new limits" grep -q \
    "argon2_opslimit=2 argon2_memlimit=16777216" "$T/micad.log"
D0=$(grep -c 'argon2id verified against=dummy' "$T/micad.log")
expect_exit 0 "unknown account login after" $LOGIN 1 nobody2 wrong 123456
expect_out "unknown account after SIGHUP: still ERROR 6" "error 6"
wait_count 'argon2id verified against=dummy' "$T/micad.log" $((D0 + 1))
expect_eq "the unknown login verified the dummy hash" \
    "$(grep -c 'argon2id verified against=dummy' "$T/micad.log")" \
    $((D0 + 1))
expect_exit 0 "wrong password of bob after" $LOGIN 1 bob wrong 123456
expect_out "known account after SIGHUP: ERROR 6" "error 6"
# the same limits again: nothing to recompute (the SIGHUP handler logs
# "recomputing" before "SIGHUP: reloaded", so no wait is needed)
N=$(grep -c 'SIGHUP: reloaded' "$T/micad.log")
kill -HUP "$MICAD_PID"
wait_count "SIGHUP: reloaded" "$T/micad.log" $((N + 1))
expect_eq "unchanged limits: no second recomputation" \
    "$(grep -c 'argon2id limits changed: recomputing' "$T/micad.log")" 1
# an account enrolled after the SIGHUP is hashed with the new limits
printf 'carol password 1\n' >"$T/pw.carol"
expect_exit 0 "account add carol after the SIGHUP" admin account add carol \
    --subject "/CN=carol/O=Example" --password-file "$T/pw.carol"
stop_micad
expect_eq "micad exits 0 after the reloads" "$?" 0
mdb_dump -p -s accounts "$T/ca/store" >"$T/accounts.dump" 2>&1 ||
    not_ok "mdb_dump accounts"
expect_eq "carol's hash has the reloaded limits (m=16384 KiB, t=2)" \
    "$(grep -c 'argon2id\$v=19\$m=16384,t=2,' "$T/accounts.dump")" 1
done_testing
