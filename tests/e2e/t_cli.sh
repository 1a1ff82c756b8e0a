#!/bin/sh
# t_cli.sh - the command lines an operator types: --version on all three
# programs, unknown options named as unknown at once (with or without a
# value after them), a leading minus on a serial refused, mica-admin
# list's header, revocation time and reason, and --expiring soonest first.
. "$(dirname "$0")/lib.sh"

admin_init() { "$BIN/mica-admin" init "$@"; }

for p in micad mica mica-admin; do
	expect_exit 0 "$p --version" "$BIN/$p" --version
	expect_eq "$p --version prints the version" "$OUT" \
	    "$p $(sed -n 's/^#define MICA_VERSION[^"]*"\(.*\)"$/\1/p' "$TOP/common/version.h")"
done
expect_exit 0 "micad -V" "$BIN/micad" -V
expect_exit 0 "mica-admin -V" "$BIN/mica-admin" -V

# ---- unknown options (init is offline) ----
# --days is an init option now (the CA's lifetime); an unknown option is
# named as unknown whether a value follows it or not
expect_exit 2 "init DIR --lifetime: usage error" admin_init "$T/x" --lifetime
expect_out "--lifetime named as unknown (no value after it)" \
    "mica-admin: init: unknown option --lifetime"
expect_exit 2 "init DIR --lifetime 3650: usage error" admin_init "$T/x" \
    --lifetime 3650
expect_out "--lifetime named as unknown (value after it)" \
    "mica-admin: init: unknown option --lifetime"
expect_exit 2 "init DIR --days (last): usage error" admin_init "$T/x" --days
expect_out "--days without a value says so" "init: --days needs a value"
expect_exit 2 "init DIR --days 1: usage error" admin_init "$T/x" --days 1
expect_out "--days out of range says so" "init: --days must be 2 to 36500"
expect_exit 2 "init DIR --cn (last): usage error" admin_init "$T/x" --cn
expect_out "a known option without a value says so" "init: --cn needs a value"
expect_exit 2 "init DIR -x: usage error" admin_init "$T/x" -x
expect_out "-x named as unknown" "init: unknown option -x"
[ ! -e "$T/x" ] && ok "nothing created by the refused inits" ||
    not_ok "nothing created by the refused inits"
expect_exit 2 "mica-admin --bogus" "$BIN/mica-admin" --bogus status
expect_out "global option named" "unknown option --bogus"
expect_exit 2 "micad --bogus" "$BIN/micad" --bogus
expect_out "micad names it" "unrecognized option '--bogus'"
expect_exit 2 "mica reissue --days 3" "$BIN/mica" --server 127.0.0.1:1 \
    --ca /dev/null reissue --days 3
expect_out "mica names it" "unrecognized option '--days'"

# ---- log lines: RFC 3339 UTC time in front, unless stderr is the journal
"$BIN/micad" -c "$T/none.conf" 2>"$T/stamp.err"
check "foreground log line starts with the UTC time" grep -qE \
    '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z micad: error: ' \
    "$T/stamp.err"
: >"$T/journal.err"
JOURNAL_STREAM=$(stat -c '%d:%i' "$T/journal.err") \
    "$BIN/micad" -c "$T/none.conf" 2>>"$T/journal.err"
check "stderr is the journal (JOURNAL_STREAM): no time of its own" grep -q \
    '^micad: error: ' "$T/journal.err"
JOURNAL_STREAM=1:2 "$BIN/micad" -c "$T/none.conf" 2>"$T/other.err"
check "JOURNAL_STREAM of another file: stamped" grep -qE \
    '^[0-9-]+T[0-9:]+Z micad: error: ' "$T/other.err"

mica_init "$T/ca" || { not_ok "init"; done_testing; }
start_micad || { not_ok "micad starts"; done_testing; }
printf 'pw for alice 1\n' >"$T/pw"
admin account add alice --subject "/CN=alice/O=Example" \
    --password-file "$T/pw" >/dev/null 2>&1 || not_ok "account add alice"
for d in 20 5 10 400; do
	make_csr "$T/k$d.key" "$T/c$d.csr" "/CN=alice/O=Example"
	admin issue --account alice --csr "$T/c$d.csr" --days "$d" \
	    --out "$T/c$d.crt" >/dev/null || not_ok "issue --days $d"
done
S5=$(serial_of "$T/c5.crt"); S10=$(serial_of "$T/c10.crt")
S20=$(serial_of "$T/c20.crt"); S400=$(serial_of "$T/c400.crt")

expect_exit 2 "list --days 3 (not a list option)" admin list --days 3
expect_out "named as unknown" "unknown option --days"
expect_exit 2 "list --expiring (last): needs a value" admin list --expiring
expect_out "says so" "--expiring needs a value"
expect_exit 2 "show -1 refused" admin show -1
expect_out "leading minus named" "-1: a serial or id never starts with '-'"
expect_exit 2 "show -$S5 refused (not taken as $S5)" admin show "-$S5"
check "show -$S5 printed no certificate" sh -c \
    "! printf '%s' \"\$1\" | grep -q 'status:'" sh "$OUT"
expect_exit 2 "revoke -$S5 refused" admin revoke "-$S5"
expect_exit 0 "$S5 is still good" admin show "$S5"
expect_out "good" "status: good"
expect_exit 2 "show -x: unknown option" admin show -x
expect_out "-x named" "unknown option -x"

expect_exit 0 "revoke $S10 keyCompromise" admin revoke "$S10" --reason keyCompromise
expect_exit 0 "hold $S20" admin hold "$S20"
expect_exit 0 "list" admin list
expect_eq "list: header line first" "$(printf '%s\n' "$OUT" | head -n 1 | tr -s ' ')" \
    "SERIAL STATUS NOT_AFTER REVOKED REASON ACCOUNT"
expect_eq "list: alice's 4 certificates" "$(printf '%s\n' "$OUT" | grep -c ' alice$')" 4
RT=$(admin show "$S10" | sed -n 's/^revoked: //p')
expect_eq "revoked line: time and reason beside notAfter" \
    "$(printf '%s\n' "$OUT" | awk -v s="$S10" '$1 == s { print $2, $4, $5, $6 }')" \
    "revoked $RT keyCompromise alice"
expect_eq "held line: time and reason" \
    "$(printf '%s\n' "$OUT" | awk -v s="$S20" '$1 == s { print $2, $5 }')" \
    "hold certificateHold"
expect_eq "good line: - -" \
    "$(printf '%s\n' "$OUT" | awk -v s="$S5" '$1 == s { print $2, $4, $5 }')" \
    "good - -"
expect_exit 0 "list --expiring 30" admin list --expiring 30
expect_eq "--expiring: soonest first, revoked left out, 400 days left out" \
    "$(printf '%s\n' "$OUT" | awk 'NR > 1 { printf "%s ", $1 }')" "$S5 $S20 "
expect_exit 0 "list --expiring 500 --json" admin list --expiring 500 --json
expect_eq "--json: soonest first too" \
    "$(printf '%s\n' "$OUT" | grep -o '"serial":"[0-9A-F]*"' | cut -d'"' -f4 |
    grep -E "^($S5|$S20|$S400)\$" | tr '\n' ' ')" \
    "$S5 $S20 $S400 "
stop_micad || not_ok "micad stops cleanly"
done_testing
