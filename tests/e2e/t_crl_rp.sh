#!/bin/sh
# A relying party over time (issue 11): it fetches the full CRL once and
# keeps it; revocations, holds, releases and a reason raise then come
# over several delta CRLs, across scheduled full builds and a restart.
# After each round every affected and some never-revoked certificates
# are checked with the OLD full CRL plus the CURRENT delta by
#   (a) openssl verify -crl_check -extended_crl -use_deltas
#   (b) openssl verify -crl_check -use_deltas (no -extended_crl: openssl
#       then takes the newest CRL alone, here the delta)
#   (c) Python cryptography (tests/e2e/crl_rp.py)
#   (d) Go crypto/x509 ParseRevocationList (tests/e2e/crl_rp.go)
# at the delta's thisUpdate (-attime), so the answer never depends on
# how fast the machine is.  Also the HTTP caching headers.
. "$(dirname "$0")/lib.sh"

PY=/usr/bin/python3
RP_PY=$TOP/tests/e2e/crl_rp.py
INTERVAL=3		# [crl] full_interval
VALID=60		# [crl] next_update
DELTA_AGE=60		# [crl] delta_max_age (the default)

D=$T/ca
mica_init "$D" --cn "RP Test CA" || { not_ok "init"; done_testing; }
check "full_interval = $INTERVAL" conf_set "$CONF" full_interval $INTERVAL
sed -i "s|^#next_update[ 	]*=.*|next_update = $VALID|" "$CONF"
check "next_update = $VALID" grep -q "^next_update = $VALID\$" "$CONF"
check "delta_max_age = $DELTA_AGE" conf_set "$CONF" delta_max_age $DELTA_AGE

# (d) build the Go checker: its own module, no network, the build cache
# kept between runs when $HOME allows (the standard library compiles once)
GOCACHE_DIR=${XDG_CACHE_HOME:-${HOME:-$T}/.cache}/mica-e2e-go
mkdir -p "$GOCACHE_DIR" 2>/dev/null || GOCACHE_DIR=$T/gocache
mkdir -p "$T/gorp" && cp "$TOP/tests/e2e/crl_rp.go" "$T/gorp/main.go" &&
    printf 'module crlrp\n\ngo 1.19\n' >"$T/gorp/go.mod"
if (cd "$T/gorp" && GOCACHE=$GOCACHE_DIR/cache GOPATH=$GOCACHE_DIR/path \
    GOPROXY=off GOFLAGS=-mod=mod GO111MODULE=on CGO_ENABLED=0 \
    go build -o "$T/crl_rp_go" .) >"$T/gobuild.log" 2>&1; then
	ok "go build the crypto/x509 checker"
else
	not_ok "go build the crypto/x509 checker (golang-go installed?)"
	sed 's/^/#   /' "$T/gobuild.log" | head -n 20
fi
check "python3 cryptography loads" $PY -c 'import cryptography.x509'

STARTED=$(date -u +%s)
start_micad || { not_ok "micad starts"; done_testing; }
ok "micad starts"
# the first full CRL micad published (the oldest a relying party may hold;
# built in the background after the start)
wait_log "crl: full number=" || not_ok "the first full CRL is built"
OLDEST=$(sed -n 's/.*crl: full number=\([0-9]*\) .*/\1/p' "$T/micad.log" |
    head -n 1)

printf 'carol password 1\n' >"$T/pw"
admin account add carol --subject "/CN=carol/O=Example" \
    --password-file "$T/pw" >/dev/null 2>&1 || not_ok "account add carol"
CERTS="c1 c2 c3 c4 c5 c6 c7 c8 c9 c10"
for c in $CERTS; do
	make_csr "$T/$c.key" "$T/$c.csr" "/CN=carol/O=Example"
	admin issue --account carol --csr "$T/$c.csr" --days 30 \
	    --out "$T/$c.crt" >/dev/null 2>&1 || not_ok "issue $c"
	eval "S_$c=\$(serial_of \"\$T/\$c.crt\")"
	eval "ST_$c=good"	# expected: good, or "revoked REASON"
done

# get NAME PATH: $URL$PATH to $T/NAME (DER), headers to $T/NAME.hdr,
# $T/NAME.pem for openssl, and its fields (see field)
get() {
	curl -sf -o "$T/$1" -D "$T/$1.hdr" "$URL$2" &&
	    openssl crl -inform DER -in "$T/$1" -out "$T/$1.pem" &&
	    info "$1"
}
info() {
	eval "$($PY "$RP_PY" info "$T/$1" "F_$1_")"
}
# field NAME KEY: number, base, this or next of the CRL got as NAME
field() {
	eval "echo \${F_$1_$2:-}"
}
# hdr NAME HEADER: a response header's value; hdate: as unix seconds
hdr() {
	sed -n "s/^$2: *//Ip" "$T/$1.hdr" | tr -d '\r' | head -n 1
}
hdate() {
	date -u -d "$(hdr "$1" "$2")" +%s
}
maxage() {
	hdr "$1" Cache-Control | sed -n 's/.*max-age=\([0-9]*\).*/\1/p'
}

# check_headers NAME KIND: Last-Modified = thisUpdate; Expires = the
# next scheduled full build (full) or the delta's nextUpdate; max-age ends
# then; nextUpdate = thisUpdate + next_update / delta_max_age
check_headers() {
	n=$1 kind=$2
	this=$(field "$n" this) next=$(field "$n" next)
	lm=$(hdate "$n" Last-Modified) ex=$(hdate "$n" Expires)
	dt=$(hdate "$n" Date) age=$(maxage "$n")
	if [ "$kind" = full ]; then
		want_next=$((this + VALID)) want_ex=$((this + INTERVAL))
	else
		want_next=$((this + DELTA_AGE)) want_ex=$((this + DELTA_AGE))
	fi
	if [ "$lm" = "$this" ] && [ "$next" = "$want_next" ] &&
	    [ "$ex" = "$want_ex" ] && [ -n "$age" ] &&
	    [ "$age" -le $((ex - lm)) ] && [ "$age" -ge $((ex - dt)) ]; then
		ok "$n headers: Last-Modified = thisUpdate, nextUpdate +$((next - this)) s, Expires +$((ex - lm)) s, max-age $age"
	else
		not_ok "$n headers: thisUpdate $this nextUpdate $next (want $want_next) Last-Modified $lm Expires $ex (want $want_ex) Date $dt max-age '$age'"
	fi
}

# expect_list: the expected output of the checkers for $CERTS
expect_list() {
	for c in $CERTS; do
		eval "st=\$ST_$c"
		echo "$c.crt $st"
	done
}

# round LABEL: checks every certificate with the relying party's full
# CRL (rp_full) and the current delta (delta) at the delta's thisUpdate
round() {
	label=$1
	get delta /crl/delta.crl || { not_ok "$label: GET /crl/delta.crl"; return; }
	check_headers delta delta
	AT=$(field delta this)
	base=$(field delta base) dnum=$(field delta number)
	fnum=$(field rp_full number) fnext=$(field rp_full next)
	if [ "$AT" -gt "$fnext" ]; then
		# the relying party's full CRL has expired: it says so, and
		# fetches the current one
		expect_exit 2 "$label: old full CRL $fnum expired at the delta's time: openssl refuses it" \
		    openssl verify -attime "$AT" -crl_check \
		    -CAfile "$D/ca.crt" -CRLfile "$T/rp_full.pem" "$T/c9.crt"
		expect_out "$label: ... CRL has expired" "CRL has expired"
		expect_exit 3 "$label: ... python too" $PY "$RP_PY" check \
		    "$D/ca.crt" "$T/rp_full" "$T/delta" "$AT" "$T/c9.crt"
		get rp_full /crl || not_ok "$label: GET /crl"
		round "$label, full CRL fetched again"
		return
	else
		ok "$label: old full CRL $fnum still valid at the delta's time (nextUpdate $fnext >= $AT)"
	fi
	if [ "$base" -le "$fnum" ] && [ "$fnum" -lt "$dnum" ]; then
		ok "$label: delta $dnum (base $base) applies to the relying party's full CRL $fnum (RFC 5280 5.2.4)"
	else
		not_ok "$label: delta $dnum has base $base: does not apply to full CRL $fnum"
	fi
	expect_list >"$T/want"
	for c in $CERTS; do
		eval "st=\$ST_$c"
		case $st in good) want=0 ;; *) want=2 ;; esac
		# (a) with delta support
		expect_exit $want "$label: (a) $c $st (openssl -extended_crl -use_deltas)" \
		    openssl verify -attime "$AT" -crl_check -extended_crl \
		    -use_deltas -CAfile "$D/ca.crt" -CRLfile "$T/rp_full.pem" \
		    -CRLfile "$T/delta.pem" "$T/$c.crt"
		[ $want -eq 2 ] && expect_out "$label: (a) $c: certificate revoked" \
		    "certificate revoked"
		# (b) without it, openssl uses the newest CRL alone (of equal
		# thisUpdate, the first given): the delta, which lists every
		# certificate changed since the base
		expect_exit $want "$label: (b) $c $st (openssl -use_deltas, no -extended_crl)" \
		    openssl verify -attime "$AT" -crl_check -use_deltas \
		    -CAfile "$D/ca.crt" -CRLfile "$T/delta.pem" \
		    -CRLfile "$T/rp_full.pem" "$T/$c.crt"
	done
	# (c), (d): status and reason of each
	(cd "$T" && $PY "$RP_PY" check "$D/ca.crt" rp_full delta "$AT" \
	    $(for c in $CERTS; do printf '%s.crt ' "$c"; done)) >"$T/py.out" 2>&1
	check "$label: (c) python cryptography" sh -c \
	    "cut -d' ' -f1-3 '$T/py.out' | diff -u '$T/want' -"
	if [ -x "$T/crl_rp_go" ]; then
		(cd "$T" && ./crl_rp_go "$D/ca.crt" rp_full delta "$AT" \
		    $(for c in $CERTS; do printf '%s.crt ' "$c"; done)) \
		    >"$T/go.out" 2>&1
		check "$label: (d) go crypto/x509" diff -u "$T/py.out" \
		    "$T/go.out"
	fi
}

# revoke C REASON / hold C / release C, and what the checkers must say
revoke() {
	eval "s=\$S_$1"
	check "revoke $1 $2" admin revoke "$s" --reason "$2"
	eval "ST_$1=\"revoked $3\""
}
hold() {
	eval "s=\$S_$1"
	check "hold $1" admin hold "$s"
	eval "ST_$1=\"revoked 6\""
}
release() {
	eval "s=\$S_$1"
	check "release $1" admin unhold "$s"
	eval "ST_$1=good"
}

# the relying party fetches the full CRL once
if get rp_full /crl; then ok "GET /crl"; else not_ok "GET /crl"; fi
check_headers rp_full full
FIRST=$(field rp_full number)

round "round 0 (nothing revoked)"
revoke c1 keyCompromise 1
revoke c2 superseded 4
hold c3
round "round 1"
hold c4
release c3
revoke c5 cessationOfOperation 5
round "round 2"

# a scheduled full build (full_interval): poll, bounded, until /crl moves
# on; the relying party keeps its old full CRL
n=$(field rp_full number) i=0
while [ $i -lt 300 ]; do
	get cur_full /crl && [ "$(field cur_full number)" -gt "$n" ] && break
	sleep 0.1
	i=$((i + 1))
done
if [ "$(field cur_full number)" -gt "$n" ]; then
	ok "a scheduled full build: /crl went from $n to $(field cur_full number) with no change"
else
	not_ok "no scheduled full build within 30 s (full_interval $INTERVAL)"
fi
check_headers cur_full full
revoke c4 keyCompromise 1	# on hold: now revoked
hold c6
round "round 3 (after a scheduled full build)"
release c6
# raise c2's reason to keyCompromise (issue 11: a later-learned
# compromise); the first revocation time must stay
t_before=$(sed -n 's/^c2.crt revoked [0-9]* //p' "$T/py.out")
if admin revoke "$S_c2" --reason keyCompromise >"$T/raise.out" 2>&1; then
	ok "reason of c2 raised to keyCompromise"
	ST_c2="revoked 1"
	RAISED=1
else
	not_ok "reason of c2 raised to keyCompromise: $(head -n 1 "$T/raise.out")"
	RAISED=0
fi
round "round 4"
if [ "$RAISED" -eq 1 ]; then
	expect_eq "c2 keeps its first revocation time" \
	    "$(sed -n 's/^c2.crt revoked [0-9]* //p' "$T/py.out")" "$t_before"
fi
# the newest full CRL lists everything itself, with the same answers
get new_full /crl || not_ok "GET /crl"
cp "$T/rp_full" "$T/rp_full_old" && cp "$T/rp_full.pem" "$T/rp_full_old.pem"
cp "$T/new_full" "$T/rp_full" && cp "$T/new_full.pem" "$T/rp_full.pem"
info rp_full
round "round 4 with the newest full CRL"
cp "$T/rp_full_old" "$T/rp_full" && cp "$T/rp_full_old.pem" "$T/rp_full.pem"
info rp_full

# a restart: the relying party's full CRL (still valid) must still take
# the new deltas (the base is kept in the store)
stop_micad || not_ok "micad stops cleanly"
start_micad || { not_ok "micad restarts"; done_testing; }
revoke c7 affiliationChanged 3
round "round 5 (after a restart)"

# expiry, asserted rather than waited for: at the old full CRL's
# nextUpdate + 1 s openssl refuses it alone; with a delta it ignores the
# base's expiry while the delta is valid and applies (x509_vfy.c
# check_crl_time), which micad's CRL_SKEW covers; once the delta has
# expired too, it refuses both
fnext=$(field rp_full next)
expect_exit 2 "old full CRL alone at nextUpdate + 1 s: refused" openssl \
    verify -attime $((fnext + 1)) -crl_check -CAfile "$D/ca.crt" \
    -CRLfile "$T/rp_full.pem" "$T/c8.crt"
expect_out "... CRL has expired" "CRL has expired"
dnext=$(field delta next)
[ "$dnext" -gt "$fnext" ] || dnext=$fnext
expect_exit 2 "old full + delta, both past nextUpdate: refused" openssl \
    verify -attime $((dnext + 1)) -crl_check -extended_crl -use_deltas \
    -CAfile "$D/ca.crt" -CRLfile "$T/rp_full.pem" -CRLfile "$T/delta.pem" \
    "$T/c8.crt"
expect_out "... CRL has expired" "CRL has expired"
expect_exit 3 "python: old full CRL at nextUpdate + 1 s: expired" $PY \
    "$RP_PY" check "$D/ca.crt" "$T/rp_full" "$T/delta" $((fnext + 1)) \
    "$T/c8.crt"
# the base is the oldest full CRL published that a relying party may
# still hold: the first one, for next_update + 300 s (crl_service.c
# CRL_SKEW), across the restart too
if [ $(($(field delta this) - STARTED)) -le $((VALID + 300)) ]; then
	expect_eq "deltas keep the first full CRL published as base" \
	    "$(field delta base)" "$OLDEST"
else
	echo "ok - # SKIP the test ran longer than next_update + 300 s"
fi
done_testing
