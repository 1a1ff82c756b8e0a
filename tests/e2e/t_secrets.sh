#!/bin/sh
# t_secrets.sh - secrets never leak.  A full run at log_level = debug (CA key
# encrypted with a passphrase file, enroll with a known password, a mica
# reissue, a wrong password, a wrong code, --no-wait printing the token,
# status, approve, fetch, every admin --json output), then every log line,
# every CLI's stdout and stderr and every --json output is searched for
# every secret.  Only the places documented to show a secret once may hold
# it: `account add` (the TOTP secret), `mica --no-wait` and `mica status`
# (the retrieval token) and the .request file (the token).
. "$(dirname "$0")/lib.sh"

O=$T/out
mkdir -p "$O"
KP='kp-Passphrase-4dQ9-zz'
PWV='Alice-Password-7xQ2-zz'
BADPW='Wrong-Password-3kP8-zz'
printf '%s\n' "$KP" >"$T/kp" && chmod 600 "$T/kp"
printf '%s\n' "$PWV" >"$T/pw"
printf '%s\n' "$BADPW" >"$T/badpw"

mica_init "$T/ca" --key-passphrase-file "$T/kp" ||
    { not_ok "mica-admin init --key-passphrase-file"; done_testing; }
conf_set "$CONF" log_level debug
check "CA key is stored encrypted" grep -q 'BEGIN ENCRYPTED PRIVATE KEY' \
    "$T/ca/private/ca.key"
start_micad || { not_ok "micad starts"; done_testing; }
CA=$T/ca/ca.crt
MICA="$BIN/mica --server 127.0.0.1:$CA_PORT --ca $CA"
unset MICA_SERVER MICA_CA

# run NAME CMD...: CMD's stdout and stderr go to $O/NAME.out / .err; the
# exit status is kept in $RC.
run() {
	name=$1; shift
	"$@" >"$O/$name.out" 2>"$O/$name.err" </dev/null
	RC=$?
}
# at STEP-OFFSET: oathtool's code for the step OFFSET away from now.
code_at() {
	oathtool --totp -b "$SECRET" --now "$(date -u -d \
	    "@$(( $(date +%s) + $1 * 30 ))" '+%Y-%m-%d %H:%M:%S UTC')"
}

# ---- the run ----
run account_add admin account add alice --subject "/CN=alice/O=Org" \
    --password-file "$T/pw"
expect_eq "account add exits 0" "$RC" 0
SECRET=$(sed -n 's/^totp secret[^:]*: //p' "$O/account_add.out")
[ -n "$SECRET" ] && ok "account add printed the TOTP secret once" ||
    not_ok "account add printed the TOTP secret once"
SECRET_HEX=$(python3 -c 'import base64,sys
print(base64.b32decode(sys.argv[1]).hex())' "$SECRET")
make_csr "$T/alice.key" "$T/alice.csr" "/CN=alice/O=Org"
run issue admin issue --account alice --csr "$T/alice.csr" --out "$T/alice.crt"
expect_eq "issue exits 0" "$RC" 0
LOST=$(serial_of "$T/alice.crt")

CODE_WRONG_PW=$(code_at 0)
run badpw $MICA reissue --account alice --lost-cert "$T/alice.crt" \
    --key "$T/new.key" --out "$T/new.crt" --password-file "$T/badpw" \
    --otp "$CODE_WRONG_PW"
expect_eq "wrong password exits 1" "$RC" 1
CODE_OK=$(code_at 0)
CODE_BAD=$(printf '%06d' $(( (1$CODE_OK - 1000000 + 1) % 1000000 )))
run badcode $MICA reissue --account alice --lost-cert "$T/alice.crt" \
    --key "$T/new.key" --out "$T/new.crt" --password-file "$T/pw" \
    --otp "$CODE_BAD"
expect_eq "wrong code exits 1" "$RC" 1
run nowait $MICA reissue --account alice --lost-cert "$T/alice.crt" \
    --key "$T/new.key" --out "$T/new.crt" --password-file "$T/pw" \
    --otp "$CODE_OK" --no-wait --note "laptop gone"
expect_eq "reissue --no-wait exits 4" "$RC" 4
TOKEN=$(sed -n 's/^token: //p' "$O/nowait.out")
expect_eq "--no-wait printed a 64-hex-digit token" \
    "$(printf '%s' "$TOKEN" | grep -c '^[0-9a-f]\{64\}$')" 1
REQID=$(sed -n 's/^request: //p' "$T/new.crt.request")
run status $MICA status --request-file "$T/new.crt.request"
run approve admin approve "$REQID"
expect_eq "approve exits 0" "$RC" 0
run fetch $MICA fetch --request-file "$T/new.crt.request" --out "$T/new.crt"
expect_eq "fetch exits 0" "$RC" 0
NEW=$(serial_of "$T/new.crt")
run fetch_badtoken $MICA fetch --request "$REQID" --token \
    0000000000000000000000000000000000000000000000000000000000000000 \
    --out "$T/x.crt"
for c in status show list account_list audit requests; do
	case $c in
	show) run "json_$c" admin show "$LOST" --json
	      run "text_$c" admin show "$LOST" ;;
	account_list) run "json_$c" admin account list --json
	      run "text_$c" admin account list ;;
	*)    run "json_$c" admin "$c" --json
	      run "text_$c" admin "$c" ;;
	esac
	expect_eq "admin $c --json exits 0" "$RC" 0
done
run show_new admin show "$NEW" --json
run audit_verify admin audit --verify
stop_micad
expect_eq "micad exits 0" "$?" 0

# ---- the search ----
TOKEN_UC=$(printf '%s' "$TOKEN" | tr a-f A-F)
SECRET_HEX_UC=$(printf '%s' "$SECRET_HEX" | tr a-f A-F)
SECRET_LC=$(printf '%s' "$SECRET" | tr A-Z a-z)
# name value: one secret per line
cat >"$T/secrets" <<EOF
password $PWV
wrong-password $BADPW
totp-secret $SECRET
totp-secret $SECRET_LC
totp-secret $SECRET_HEX
totp-secret $SECRET_HEX_UC
code $CODE_OK
code $CODE_WRONG_PW
code $CODE_BAD
token $TOKEN
token $TOKEN_UC
passphrase $KP
EOF
[ -n "$TOKEN" ] && [ -n "$SECRET_HEX" ] || not_ok "secrets collected"

# scan FILE [ALLOWED-NAME...]: FILE holds none of the secrets except the
# named kinds.  A TOTP code counts only as a separate word (not inside a
# hex string or a longer number).
scan() {
	f=$1; shift
	allowed=" $* "
	hits=""
	while read -r kind val; do
		case $allowed in *" $kind "*) continue ;; esac
		if [ "$kind" = code ]; then
			grep -qE "(^|[^0-9A-Za-z])$val([^0-9A-Za-z]|\$)" "$f" &&
			    hits="$hits $kind($val)"
		else
			grep -qF -- "$val" "$f" && hits="$hits $kind"
		fi
	done <"$T/secrets"
	if [ -z "$hits" ]; then
		ok "no secret in ${f#$T/}"
	else
		not_ok "secret in ${f#$T/}:$hits"
		for h in $hits; do
			grep -n -F -- "$(grep "^${h%%(*} " "$T/secrets" |
			    head -n 1 | cut -d' ' -f2)" "$f" | head -n 2 |
			    sed 's/^/#   /'
		done
	fi
}

check "micad logged at debug level" grep -q 'got LOGIN\|debug' "$T/micad.log"
scan "$T/micad.log"
scan "$T/init.out"
for f in "$O"/*; do
	case ${f##*/} in
	account_add.out) scan "$f" totp-secret ;;
	nowait.out|status.out) scan "$f" token ;;
	*) scan "$f" ;;
	esac
done
scan "$T/new.crt.request" token
expect_eq "the token is shown exactly once by --no-wait" \
    "$(grep -c -F "$TOKEN" "$O/nowait.out")" 1
expect_eq "the TOTP secret is shown in account add only (secret + URI)" \
    "$(grep -c -F "$SECRET" "$O/account_add.out")" 2

# account list --json: no hash, no TOTP material, whatever the field name
OUT=$(cat "$O/json_account_list.out")
expect_out "account list --json names alice" '"name":"alice"'
if printf '%s' "$OUT" | grep -qiE '"[a-z_]*(hash|totp|secret|pw|password|argon|key)[a-z_]*":'; then
	not_ok "account list --json has no pwhash/totp fields"
	printf '%s\n' "$OUT" | sed 's/^/#   /'
else
	ok "account list --json has no pwhash/totp fields"
fi

# the store holds the TOTP secret (it must, to check codes) but neither
# the password, nor the token, nor the passphrase, in any encoding
check "the store holds no password, token or passphrase" python3 - \
    "$T/ca/store/data.mdb" "$PWV" "$BADPW" "$TOKEN" "$KP" <<'EOF'
import sys
data = open(sys.argv[1], "rb").read()
bad = []
for s in sys.argv[2:]:
    forms = [s.encode()]
    if len(s) == 64:
        forms.append(bytes.fromhex(s))
    bad += [s[:6] + "..." for f in forms if f in data]
if bad:
    print("found:", bad)
    sys.exit(1)
EOF
check "the CA key file does not hold the passphrase" sh -c \
    "! grep -qF -- '$KP' '$T/ca/private/ca.key'"
done_testing
