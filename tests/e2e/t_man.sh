#!/bin/sh
# t_man.sh - the manual pages: mandoc -T lint finds no warning or error
# in any of them, man(1) renders each without a warning, and
# mica.conf(5) documents every key of conf/conf.c's table in its section,
# with a default and whether SIGHUP reloads it, as mica.conf.sample does.
. "$(dirname "$0")/lib.sh"

M=$TOP/man
for p in mica.1 mica.conf.5 micad.8 mica-admin.8; do
	if [ ! -f "$M/$p" ]; then
		not_ok "man/$p exists"
		continue
	fi
	# -W warning: warnings and errors, not mandoc's style hints
	if out=$(mandoc -T lint -W warning "$M/$p" 2>&1) && [ -z "$out" ]; then
		ok "mandoc -T lint: $p clean"
	else
		not_ok "mandoc -T lint: $p"
		printf '%s\n' "$out" | sed 's/^/#   /' | head -n 20
	fi
	out=$(MANWIDTH=80 man --warnings -l "$M/$p" 2>&1 >/dev/null)
	if [ -z "$out" ]; then
		ok "man --warnings -l: $p renders without a warning"
	else
		not_ok "man --warnings -l: $p"
		printf '%s\n' "$out" | sed 's/^/#   /' | head -n 20
	fi
done

# "[sec] key" pairs: conf.c's table, the sample (set or commented out),
# and mica.conf(5) (".Sh [sec]" then ".It Cm key No = ...").
sed -n 's/^	{ "\([a-z]*\)", "\([a-z_0-9]*\)",.*/\1 \2/p' "$TOP/conf/conf.c" |
    sort >"$T/code.txt"
awk '/^\[/ { gsub(/[][ ]/, ""); sec = $0; next }
    /^#?[a-z_0-9]+ *=/ { k = $0; sub(/^#/, "", k); sub(/ *=.*/, "", k);
	print sec " " k }' "$TOP/conf/mica.conf.sample" | grep -v '^profile\.' |
    sort -u >"$T/sample.txt"
awk '/^\.Sh \[/ { sec = $2; gsub(/[][]/, "", sec); next }
    /^\.Sh / { sec = "" }
    sec != "" && /^\.It Cm [a-z_0-9]+ No = / { print sec " " $3 }' \
    "$M/mica.conf.5" | sort >"$T/man_all.txt"
# [profile.NAME] sections: their keys (conf.c's profile_keys) separately
grep -v '^profile\.' "$T/man_all.txt" >"$T/man.txt"
sed -n 's/^	{ "profile\.NAME", "\([a-z_0-9]*\)",.*/profile.NAME \1/p' \
    "$TOP/conf/conf.c" | sort >"$T/pcode.txt"
grep '^profile\.NAME ' "$T/man_all.txt" >"$T/pman.txt"
expect_eq "conf.c has 4 profile keys" "$(wc -l <"$T/pcode.txt")" 4
if diff "$T/pcode.txt" "$T/pman.txt" >"$T/dp"; then
	ok "mica.conf(5) documents exactly the [profile.NAME] keys"
else
	not_ok "mica.conf(5) and conf.c's profile keys differ"
	sed 's/^/#   /' "$T/dp"
fi
for p in client server email; do
	awk -v s="[profile.$p]" '$0 == s { f = 1; next } /^\[/ { f = 0 }
	    f && /^[a-z_]+ *=/ { sub(/ *=.*/, ""); print "profile.NAME " $0 }' \
	    "$TOP/conf/mica.conf.sample" | sort >"$T/ps.txt"
	if [ -s "$T/ps.txt" ] && diff "$T/pcode.txt" "$T/ps.txt" >/dev/null; then
		ok "mica.conf.sample: [profile.$p] sets every profile key"
	else
		not_ok "mica.conf.sample: [profile.$p]"
	fi
done
n=$(wc -l <"$T/code.txt")
[ "$n" -ge 50 ] && ok "conf.c has $n keys" || not_ok "conf.c keys not found ($n)"
if diff "$T/code.txt" "$T/man.txt" >"$T/d1"; then
	ok "mica.conf(5) documents exactly conf.c's $n keys"
else
	not_ok "mica.conf(5) and conf.c differ (< code, > man)"
	sed 's/^/#   /' "$T/d1"
fi
if diff "$T/code.txt" "$T/sample.txt" >"$T/d2"; then
	ok "mica.conf.sample lists exactly conf.c's keys"
else
	not_ok "mica.conf.sample and conf.c differ (< code, > sample)"
	sed 's/^/#   /' "$T/d2"
fi
# each key's entry has a default and a SIGHUP line
bad=$(awk '/^\.It Cm / { if (k != "" && (!d || !h)) print k; k = $3; d = h = 0 }
    /^Default:/ { d = 1 } /^SIGHUP:/ { h = 1 }
    /^\.El/ { if (k != "" && (!d || !h)) print k; k = "" }' "$M/mica.conf.5")
expect_eq "every key in mica.conf(5) has a default and a SIGHUP line" "$bad" ""
# the keys SIGHUP reloads, as micad's reload applies them
awk '/^\.Sh \[/ { sec = $2; gsub(/[][]/, "", sec) } /^\.It Cm / { k = sec " " $3 }
    /^reloaded\.$/ { print k }' "$M/mica.conf.5" | grep -v '^profile\.' |
    sort >"$T/reload.txt"
cat >"$T/want_reload.txt" <<'W'
ca copy_san
ca default_days
ca ext_key_usage
ca key_usage
ca renew_before_days
daemon log_level
daemon notify_command
policy argon2_memlimit
policy argon2_opslimit
policy enrol_code_lifetime
policy hold_on_request
policy lockout_seconds
policy max_failures
policy min_password_length
policy password_max_days
policy renew
policy renew_revoke_old
policy renew_window
policy request_days
policy review
W
if diff "$T/want_reload.txt" "$T/reload.txt" >"$T/d3"; then
	ok "mica.conf(5) marks exactly the keys SIGHUP reloads"
else
	not_ok "SIGHUP marks differ (< wanted, > man)"
	sed 's/^/#   /' "$T/d3"
fi
# the notify events: those the code emits, and the same list in the
# sample, the README and mica.conf(5)
grep -rhoE '(ni\.event = |\? |: )"(cert|request)\.[a-z]+"' "$TOP/ca" |
    grep -oE '(cert|request)\.[a-z]+' | sort -u >"$T/events.txt"
expect_eq "the code emits 8 notify events" "$(wc -l <"$T/events.txt")" 8
for doc in conf/mica.conf.sample README.md man/mica.conf.5; do
	tr -s ' \n' ' ' <"$TOP/$doc" | grep -oE '(cert|request)\.(created|approved|rejected|revoked|hold|released|expiring|[a-z]+)' |
	    grep -vE '^(cert|request)\.(crt|pem|key|csr|chain|request)$' | sort -u >"$T/doc.txt"
	if diff "$T/events.txt" "$T/doc.txt" >"$T/d4"; then
		ok "$doc names the same notify events as the code"
	else
		not_ok "$doc: notify events differ (< code, > doc)"
		sed 's/^/#   /' "$T/d4"
	fi
done
done_testing
