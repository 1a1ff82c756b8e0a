#!/bin/sh
# t_badinput.sh - one table of bad inputs over every interface of mica, each
# row with its exact expected answer, and a proof after every row that the
# store did not change (certificates, accounts, requests, audit count).
#
# Row:   IFACE | EFFECT | INPUT | EXPECTED
#   proto   INPUT: frames for badinput.py proto (TLS 1.3, ca.crt pinned);
#           EXPECTED: the replies as NAME@ID, then open|closed
#   http    INPUT: METHOD PATH CONTENT-TYPE|- BODYFILE|- (files in $H);
#           EXPECTED: status code, plus ocsp=N (responseStatus) when the
#           body is an OCSPResponse
#   admraw  INPUT: pieces for badinput.py admin (raw admin-socket frame);
#           EXPECTED: code=N err=TEXT, or closed
#   cli     INPUT: a command line (shell words, $VARS expanded);
#           EXPECTED: EXIT :: first output line (exact), or just EXIT
#   conf    INPUT: text appended (printf escapes) to a copy of mica.conf
#           in the CA directory, checked with micad -n;
#           EXPECTED: EXIT :: first output line (exact)
# EFFECT: - (nothing changes), or a comma-separated list of: audit+N (N
#   more audit records: logins and refusals are audited), victim+N (the
#   account "victim" has N more failed logins; that field is left out of
#   the comparison and checked on its own).  Everything else must stay.
# @T@, @F@ (the bad config file), @L@ (its last line), @L1@ (the line
# before), @CA_PORT@, @CA@, @BIN@ and @OSER@ (owner's serial as printed)
# are replaced in EXPECTED.  The table is read on fd 3 so that no command
# of a row can eat it.
. "$(dirname "$0")/lib.sh"
PY="python3 $TOP/tests/e2e/badinput.py"

mica_init "$T/ca" || { not_ok "mica-admin init"; done_testing; }
conf_set "$CONF" max_failures 50
start_micad || { not_ok "micad starts"; done_testing; }
CA=$T/ca/ca.crt
SOCK=$T/ca/admin.sock
MICA="$BIN/mica --server 127.0.0.1:$CA_PORT --ca $CA"
PW=$T/pw
echo 'correct-horse-battery' >"$PW"
export PWFILE=$PW SECRETS=$T
unset MICA_SERVER MICA_CA

# enroll NAME: account NAME (subject /CN=NAME/O=Org) with a certificate
# $T/NAME.crt; the TOTP secret goes to $T/NAME.secret.
enroll() {
	admin account add "$1" --subject "/CN=$1/O=Org" \
	    --password-file "$PW" >"$T/$1.add" 2>&1 || return 1
	sed -n 's/^totp secret[^:]*: //p' "$T/$1.add" >"$T/$1.secret"
	make_csr "$T/$1.key" "$T/$1.csr" "/CN=$1/O=Org"
	admin issue --account "$1" --csr "$T/$1.csr" --out "$T/$1.crt" \
	    >/dev/null 2>&1
}
# hex16 CERT: the serial as 32 hex digits (the protocol's SERIAL field).
hex16() { printf '%032s' "$(serial_of "$1")" | tr ' ' 0; }

for a in owner victim l1 l2 l3 l4 l5 l6 l7 l8 l9 l10 l11 l12 l13 l14; do
	enroll "$a" || not_ok "enroll $a"
done
# owner has a pending request (WAIT/FETCH/STATUS rows use it)
$MICA reissue --account owner --lost-cert "$T/owner.crt" \
    --key "$T/owner.new.key" --out "$T/owner.new.crt" --password-file "$PW" \
    --otp "$(oathtool --totp -b "$(cat "$T/owner.secret")")" --no-wait \
    >"$T/owner.out" 2>&1
REQID=$(sed -n 's/^request: //p' "$T/owner.new.crt.request")
[ -n "$REQID" ] || not_ok "owner's pending request"
export REQ=$(printf '%016x' "$REQID")
export OWNER_SERIAL=$(hex16 "$T/owner.crt")
export OWNER_CERT=$(openssl x509 -in "$T/owner.crt" -outform DER |
    od -An -v -tx1 | tr -d ' \n')
OSER=$(serial_of "$T/owner.crt")
for a in l3 l4 l5 l6 l7 l8 l10; do
	eval "export S_$a=$(hex16 "$T/$a.crt")"
done
make_csr "$T/new.key" "$T/new.csr" "/CN=l3/O=Org"
export CSR_L3=$(openssl req -in "$T/new.csr" -outform DER | od -An -v -tx1 |
    tr -d ' \n')

# ---- HTTP bodies ----
H=$T/http
mkdir -p "$H"
openssl ocsp -issuer "$CA" -cert "$T/owner.crt" -no_nonce \
    -reqout "$H/req.der" >/dev/null 2>&1
for n in 0 1 128 129; do
	$PY ocspnonce "$H/req.der" "$H/nonce$n.der" "$n"
done
printf 'garbage' >"$H/garbage"
head -c 16385 /dev/zero >"$H/big"
: >"$H/empty"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$H/foreign.key" -out "$H/foreign.crt" -subj /CN=foreign \
    -days 1 2>/dev/null
openssl ocsp -issuer "$H/foreign.crt" -serial 0x1234 -no_nonce \
    -reqout "$H/foreign.der" >/dev/null 2>&1
s16="" s17=""
for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16; do s16="$s16 -serial 0x$i"; done
s17="$s16 -serial 0x17"
openssl ocsp -issuer "$CA" $s16 -no_nonce -reqout "$H/many16.der" >/dev/null 2>&1
openssl ocsp -issuer "$CA" $s17 -no_nonce -reqout "$H/many17.der" >/dev/null 2>&1
head -c $(( $(wc -c <"$H/req.der") - 1 )) "$H/req.der" >"$H/trunc.der"
cp "$H/req.der" "$H/trail.der" && printf '\000' >>"$H/trail.der"
REQ_B64=$(base64 -w0 "$H/req.der")
REQ_URL=$(printf '%s' "$REQ_B64" | sed 's|+|%2B|g; s|/|%2F|g; s|=|%3D|g')

# ---- the state that must not change ----
snapshot() {
	admin list --json
	admin account list --json |
	    sed 's/\("name":"victim"[^}]*"failed_logins":\)[0-9]*/\1X/'
	admin requests --json
}
audit_count() {
	admin status --json | sed -n 's/.*"audit_records":\([0-9]*\).*/\1/p'
}
victim_fails() {
	admin account list --json |
	    sed -n 's/.*"name":"victim"[^}]*"failed_logins":\([0-9]*\).*/\1/p'
}

trim() { printf '%s' "$1" | sed 's/^[ 	]*//; s/[ 	]*$//'; }

run_proto() { $PY proto "$CA" "$CA_PORT" "$1" 2>&1; }
run_admraw() { $PY admin "$SOCK" "$1" 2>&1; }
run_http() {
	set -- $1
	ct=$3 body=$4
	set -- curl -s -o "$T/http.out" -w '%{http_code}' -X "$1"
	[ "$ct" = - ] || set -- "$@" -H "Content-Type: $ct"
	[ "$body" = - ] || set -- "$@" --data-binary "@$H/$body"
	code=$("$@" "$URL$PATH_")
	st=$($PY ocspstatus "$T/http.out")
	case $st in
	not-*) printf '%s' "$code" ;;
	*) printf '%s ocsp=%s' "$code" "$st" ;;
	esac
}
run_cli() {
	out=$(eval "$1" 2>&1 </dev/null)
	rc=$?
	# micad stamps its log lines with the time (t_cli checks that):
	# compare what follows the stamp
	first=$(printf '%s\n' "$out" | head -n 1 |
	    sed -E 's/^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z //')
	printf '%s :: %s' "$rc" "$first"
}
run_conf() {
	F=$T/ca/bad.conf
	cp "$CONF" "$F" && chmod 600 "$F"
	printf "$1" >>"$F"
	run_cli "\"$BIN/micad\" -n -c \"$F\""
}

ROWS=0
L=0
AUD=$(audit_count)
BEFORE=$(snapshot)
VF=$(victim_fails)
while IFS='|' read -r iface effect input expect <&3; do
	iface=$(trim "$iface")
	case $iface in ''|'#'*) continue ;; esac
	effect=$(trim "$effect")
	input=$(trim "$input")
	expect=$(trim "$expect")
	ROWS=$((ROWS + 1))
	PATH_=""
	case $iface in
	proto)	got=$(run_proto "$input") ;;
	admraw)	got=$(run_admraw "$input") ;;
	http)	PATH_=$(printf '%s' "$input" | awk '{print $2}')
		PATH_=$(eval "printf '%s' \"$PATH_\"")
		got=$(run_http "$input") ;;
	cli)	got=$(run_cli "$input")
		case $expect in *::*) ;; *) got=${got%% ::*} ;; esac ;;
	conf)	got=$(run_conf "$input")
		L=$(wc -l <"$T/ca/bad.conf") ;;
	*)	got="bad iface $iface" ;;
	esac
	expect=$(printf '%s' "$expect" | sed -e "s|@T@|$T|g" \
	    -e "s|@F@|$T/ca/bad.conf|g" -e "s|@L@|$L|g" \
	    -e "s|@L1@|$((L - 1))|g" -e "s|@CA_PORT@|$CA_PORT|g" \
	    -e "s|@CA@|$CA|g" -e "s|@BIN@|$BIN|g" -e "s|@OSER@|$OSER|g")
	# echo in lib.sh may expand backslashes: show \n as "\\n"
	desc=$(printf '%s: %s -> %s [%s]' "$iface" "$input" "$expect" \
	    "$effect" | sed 's/\\/\\\\/g')
	# the store: unchanged, except what EFFECT allows
	want_aud=$AUD want_vf=$VF
	for e in $(printf '%s' "$effect" | tr ',' ' '); do
		case $e in
		audit+*) want_aud=$((AUD + ${e#audit+})) ;;
		victim+*) want_vf=$((VF + ${e#victim+})) ;;
		esac
	done
	AFTER=$(snapshot)
	NAUD=$(audit_count)
	NVF=$(victim_fails)
	if [ "$got" != "$expect" ]; then
		not_ok "$desc"
		echo "#   got: $got"
	elif [ "$AFTER" != "$BEFORE" ] || [ "$NAUD" != "$want_aud" ] ||
	    [ "$NVF" != "$want_vf" ]; then
		not_ok "$desc (store: audit $AUD->$NAUD, victim fails $VF->$NVF)"
		printf '%s\n' "$BEFORE" >"$T/before"
		printf '%s\n' "$AFTER" >"$T/after"
		diff "$T/before" "$T/after" | sed 's/^/#   /' | head -n 10
	else
		ok "$desc"
	fi
	BEFORE=$AFTER AUD=$NAUD VF=$NVF
done 3<<'EOF'
# ---- CA protocol: framing, versions, HELLO first ----
proto | - | f:2:1:1:1=01                     | ERROR2@1 closed
proto | - | hello f:2:7e:9                   | SERVER_HELLO@1 ERROR2@9 closed
proto | - | f:1:1:1:1=02                     | ERROR2@1 closed
proto | - | f:1:1:1:1=0203ff                 | ERROR2@1 closed
proto | - | raw:00000003010100               | ERROR1@0 closed
proto | - | raw:00000000                     | ERROR1@0 closed
proto | - | hello raw:0000000501010000       | SERVER_HELLO@1 ERROR1@0 closed
proto | - | raw:00010001                     | ERROR4@0 closed
proto | - | hello raw:ffffffff               | SERVER_HELLO@1 ERROR4@0 closed
proto | - | hello raw:00001001               | SERVER_HELLO@1 ERROR4@0 closed
proto | - | f:1:7e:5                         | ERROR1@5 closed
proto | - | f:1:81:5                         | ERROR1@5 closed
proto | - | f:1:2:5:10='x                    | ERROR1@5 closed
proto | - | f:1:6:5:30=0000000000000001,31=32*00 | ERROR1@5 closed
proto | - | f:1:1:1                          | ERROR1@1 ERROR1@4294967294 closed
proto | - | f:1:1:1:1=                       | ERROR1@1 ERROR1@4294967294 closed
proto | - | f:1:1:1:1=17*01                  | ERROR4@1 ERROR1@4294967294 closed
proto | - | hello f:1:1:9:1=01               | SERVER_HELLO@1 ERROR3@9 open
# ---- CA protocol: types ----
proto | - | hello f:1:7e:9                   | SERVER_HELLO@1 ERROR3@9 open
proto | - | hello f:1:00:9                   | SERVER_HELLO@1 ERROR3@9 open
proto | - | hello f:1:80:9                   | SERVER_HELLO@1 ERROR3@9 open
proto | - | hello f:1:83:9                   | SERVER_HELLO@1 ERROR3@9 open
proto | - | hello f:1:85:9:50=0001,51='x     | SERVER_HELLO@1 ERROR3@9 open
proto | - | hello f:1:ff:9                   | SERVER_HELLO@1 ERROR3@9 open
# ---- CA protocol: TLV fields ----
proto | - | hello raw:000000080106000000090010 | SERVER_HELLO@1 ERROR1@9 open
proto | - | hello raw:0000000a01060000000900300032 | SERVER_HELLO@1 ERROR1@9 open
proto | - | hello f:1:6:9:30=0000000000000001,30=0000000000000001,31=32*00 | SERVER_HELLO@1 ERROR1@9 open
proto | - | hello f:1:6:9:30=0000000000000001 | SERVER_HELLO@1 ERROR1@9 open
proto | - | hello f:1:5:9                    | SERVER_HELLO@1 ERROR1@9 open
proto | - | hello f:1:6:9:30=0000000000000001,31=31*00 | SERVER_HELLO@1 ERROR1@9 open
proto | - | hello f:1:6:9:30=0000000000000001,31=33*00 | SERVER_HELLO@1 ERROR1@9 open
proto | - | hello f:1:6:9:30=00000001,31=32*00 | SERVER_HELLO@1 ERROR1@9 open
proto | - | hello f:1:6:9:30=0000000000000001,31=32*00,8fff=00 | SERVER_HELLO@1 ERROR13@9 open
proto | - | hello f:1:6:9:30=0000000000000001,31=32*00,8040=00 | SERVER_HELLO@1 ERROR13@9 open
proto | - | hello f:1:6:9:30=0000000000000001,31=32*00,7fff=00 | SERVER_HELLO@1 ERROR10@9 open
proto | - | hello f:1:6:9:30=0000000000000001,31=32*00,40=00 | SERVER_HELLO@1 ERROR10@9 open
proto | - | hello f:1:2:9:10=65*61,11='pw,12='123456 | SERVER_HELLO@1 ERROR4@9 open
proto | - | hello f:1:2:9:10=610162,11='pw,12='123456 | SERVER_HELLO@1 ERROR1@9 open
proto | - | hello f:1:2:9:10=,11='pw,12='123456 | SERVER_HELLO@1 ERROR1@9 open
proto | - | hello f:1:2:9:10='victim,11='pw,12='12345 | SERVER_HELLO@1 ERROR1@9 open
proto | - | hello f:1:2:9:10='victim,11='pw,12='12345a | SERVER_HELLO@1 ERROR1@9 open
proto | - | hello f:1:2:9:10='victim,11=700070,12='123456 | SERVER_HELLO@1 ERROR1@9 open
proto | - | hello f:1:2:9:10='victim,11=1025*41,12='123456 | SERVER_HELLO@1 ERROR4@9 open
proto | - | hello f:1:2:9:10='victim,11=,12='123456 | SERVER_HELLO@1 ERROR1@9 open
# ---- CA protocol: state and authorisation ----
proto | - | hello f:1:3:9:20=$OWNER_SERIAL,21=$CSR_L3,22=00 | SERVER_HELLO@1 ERROR5@9 open
proto | - | hello f:1:4:9:30=$REQ            | SERVER_HELLO@1 ERROR5@9 open
proto | - | hello f:1:5:9:30=$REQ,31=32*00   | SERVER_HELLO@1 ERROR10@9 open
proto | - | hello f:1:6:9:30=$REQ,31=32*ff   | SERVER_HELLO@1 ERROR10@9 open
proto | - | hello f:1:5:9:30=7fffffffffffffff,31=32*00 | SERVER_HELLO@1 ERROR10@9 open
proto | victim+1,audit+1 | hello login:victim:badpw   | SERVER_HELLO@1 ERROR6@2 open
proto | victim+1,audit+1 | hello login:victim:badotp  | SERVER_HELLO@1 ERROR6@2 open
proto | audit+1 | hello f:1:2:9:10='nobody,11='correct-horse-battery,12='123456 | SERVER_HELLO@1 ERROR6@9 open
proto | audit+1 | hello login:l1 f:1:4:9:30=$REQ   | SERVER_HELLO@1 OK@2 ERROR10@9 open
proto | audit+1 | hello login:l2 f:1:4:9:30=7fffffffffffffff | SERVER_HELLO@1 OK@2 ERROR10@9 open
proto | audit+2 | hello login:l3 f:1:3:9:20=$OWNER_SERIAL,21=$CSR_L3,22=00 | SERVER_HELLO@1 OK@2 ERROR8@9 open
proto | audit+2 | hello login:l4 f:1:3:9:20=$S_l4,21=3003020100,22=00 | SERVER_HELLO@1 OK@2 ERROR8@9 open
proto | audit+1 | hello login:l5 f:1:3:9:20=$S_l5,21=$CSR_L3,22=07 | SERVER_HELLO@1 OK@2 ERROR1@9 open
proto | audit+1 | hello login:l6 f:1:3:9:20=0102030405060708090a0b0c0d0e0f,21=$CSR_L3,22=00 | SERVER_HELLO@1 OK@2 ERROR1@9 open
proto | audit+1 | hello login:l7 f:1:3:9:20=$S_l7,21=$CSR_L3,22=00,23=513*41 | SERVER_HELLO@1 OK@2 ERROR4@9 open
proto | audit+1 | hello login:l8 f:1:3:9:20=$S_l8,21=16385*30,22=00 | SERVER_HELLO@1 OK@2 ERROR4@9 open
proto | audit+1 | hello login:l9 f:1:2:9:10='l9,11='correct-horse-battery,12='123456 | SERVER_HELLO@1 OK@2 ERROR3@9 open
proto | audit+2 | hello login:l10 f:1:3:9:20=7fffffffffffffffffffffffffffffff,21=$CSR_L3,22=00 | SERVER_HELLO@1 OK@2 ERROR8@9 open
# CHALLENGE / RENEW (no login): the nonce first, single use; a bad
# signature is ERROR 8; SIGNATURE 1..1024 bytes, required; NONCE and
# RENEWED are reply types; before a CHALLENGE the frame limit is 4096,
# after it 12288
proto | - | hello f:1:18:9                   | SERVER_HELLO@1 NONCE@9 open
proto | - | hello f:1:18:9:90=32*00          | SERVER_HELLO@1 NONCE@9 open
proto | - | hello f:1:18:9:8090=32*00        | SERVER_HELLO@1 ERROR13@9 open
proto | - | hello f:1:19:9:40=$OWNER_CERT,21=$CSR_L3,91=64*01 | SERVER_HELLO@1 ERROR8@9 open
proto | - | hello f:1:18:8 f:1:19:9:40=$OWNER_CERT,21=$CSR_L3,91=64*01 | SERVER_HELLO@1 NONCE@8 ERROR8@9 open
proto | - | hello f:1:18:8 f:1:19:9:40=$OWNER_CERT,21=$CSR_L3,91=64*01 f:1:19:10:40=$OWNER_CERT,21=$CSR_L3,91=64*01 | SERVER_HELLO@1 NONCE@8 ERROR8@9 ERROR8@10 open
proto | - | hello f:1:18:8 f:1:19:9:40=$OWNER_CERT,21=$CSR_L3 | SERVER_HELLO@1 NONCE@8 ERROR1@9 open
proto | - | hello f:1:18:8 f:1:19:9:40=$OWNER_CERT,91=01 | SERVER_HELLO@1 NONCE@8 ERROR1@9 open
proto | - | hello f:1:18:8 f:1:19:9:40=$OWNER_CERT,21=$CSR_L3,91= | SERVER_HELLO@1 NONCE@8 ERROR1@9 open
proto | - | hello f:1:18:8 f:1:19:9:40=$OWNER_CERT,21=$CSR_L3,91=1025*01 | SERVER_HELLO@1 NONCE@8 ERROR4@9 open
proto | - | hello f:1:18:8 f:1:19:9:40=30,21=$CSR_L3,91=01 | SERVER_HELLO@1 NONCE@8 ERROR8@9 open
proto | - | hello f:1:18:8 f:1:19:9:40=5000*30,21=30,91=01 | SERVER_HELLO@1 NONCE@8 ERROR8@9 open
proto | - | hello f:1:19:9:40=5000*30,21=30,91=01 | SERVER_HELLO@1 ERROR4@0 closed
proto | - | hello f:1:18:8 f:1:19:9:40=13000*30,21=30,91=01 | SERVER_HELLO@1 NONCE@8 ERROR4@0 closed
proto | - | hello f:1:98:9:90=32*00          | SERVER_HELLO@1 ERROR3@9 open
proto | - | hello f:1:99:9:40=30,41=30       | SERVER_HELLO@1 ERROR3@9 open
# LIST: login first; no fields (a truncated field header is ERROR 1, an
# unknown critical tag ERROR 13); CERTS is a reply type
proto | - | hello f:1:7:9                    | SERVER_HELLO@1 ERROR5@9 open
proto | - | hello raw:0000000701070000000900 | SERVER_HELLO@1 ERROR1@9 open
proto | - | hello f:1:7:9:8061=00            | SERVER_HELLO@1 ERROR13@9 open
proto | - | hello f:1:86:9:60=00000000       | SERVER_HELLO@1 ERROR3@9 open
proto | audit+1 | hello login:l11 f:1:7:9     | SERVER_HELLO@1 OK@2 CERTS@9 open
proto | audit+1 | hello login:l12 raw:0000000701070000000900 f:1:7:10:61=00 | SERVER_HELLO@1 OK@2 ERROR1@9 CERTS@10 open
# PASSWD (0x10): login first; NEW_PASSWORD 1..1024 bytes without NUL; the
# policy (ERROR 22) after a login.  ENROLL (0x11): before a login; a code
# that is not pending is ERROR 6 and changes nothing.  ENROLLED (0x90) is
# a reply type.
proto | - | hello f:1:10:9:70='New-Horse-Battery-42 | SERVER_HELLO@1 ERROR5@9 open
proto | - | hello f:1:10:9                   | SERVER_HELLO@1 ERROR1@9 open
proto | - | hello f:1:10:9:70=               | SERVER_HELLO@1 ERROR1@9 open
proto | - | hello f:1:10:9:70=610062         | SERVER_HELLO@1 ERROR1@9 open
proto | - | hello f:1:10:9:70=1025*41        | SERVER_HELLO@1 ERROR4@9 open
proto | - | hello f:1:10:9:70='New-Horse-Battery-42,8070=00 | SERVER_HELLO@1 ERROR13@9 open
proto | - | hello f:1:11:9:10='victim,71='AAAAA-AAAAA-AAAAA-AAAAA,70='New-Horse-Battery-42 | SERVER_HELLO@1 ERROR6@9 open
proto | - | hello f:1:11:9:10='nobody,71='AAAAA-AAAAA-AAAAA-AAAAA,70='New-Horse-Battery-42 | SERVER_HELLO@1 ERROR6@9 open
proto | - | hello f:1:11:9:10='victim,71='AAAA1,70='New-Horse-Battery-42 | SERVER_HELLO@1 ERROR1@9 open
proto | - | hello f:1:11:9:10='victim,71=65*41,70='New-Horse-Battery-42 | SERVER_HELLO@1 ERROR4@9 open
proto | - | hello f:1:11:9:10='victim,70='New-Horse-Battery-42 | SERVER_HELLO@1 ERROR1@9 open
proto | - | hello f:1:11:9:10='victim,71='AAAAA | SERVER_HELLO@1 ERROR1@9 open
proto | - | hello f:1:11:9:10='vic%tim,71='AAAAA,70='New-Horse-Battery-42 | SERVER_HELLO@1 ERROR1@9 open
proto | - | hello f:1:90:9:72=20*00          | SERVER_HELLO@1 ERROR3@9 open
proto | - | hello f:1:90:9:72=9*00           | SERVER_HELLO@1 ERROR3@9 open
proto | audit+1 | hello login:l13 f:1:10:9:70='short | SERVER_HELLO@1 OK@2 ERROR22@9 open
proto | audit+1 | hello login:l14 f:1:11:9:10='l14,71='AAAAA-AAAAA-AAAAA-AAAAA,70='New-Horse-Battery-42 | SERVER_HELLO@1 OK@2 ERROR3@9 open
# ---- HTTP: OCSP and the other routes ----
http | - | POST /ocsp text/plain req.der              | 415
http | - | POST /ocsp - req.der                       | 415
http | - | POST /ocsp application/ocsp-requestx req.der | 415
http | - | POST /ocsp application/ocsp-request big    | 413
http | - | POST /ocsp application/ocsp-request garbage | 200 ocsp=1
http | - | POST /ocsp application/ocsp-request empty  | 200 ocsp=1
http | - | POST /ocsp application/ocsp-request trunc.der | 200 ocsp=1
http | - | POST /ocsp application/ocsp-request trail.der | 200 ocsp=1
http | - | POST /ocsp application/ocsp-request nonce0.der | 200 ocsp=1
http | - | POST /ocsp application/ocsp-request nonce129.der | 200 ocsp=1
http | - | POST /ocsp application/ocsp-request nonce128.der | 200 ocsp=0
http | - | POST /ocsp application/ocsp-request foreign.der | 200 ocsp=6
http | - | POST /ocsp application/ocsp-request many17.der | 200 ocsp=1
http | - | POST /ocsp application/ocsp-request many16.der | 200 ocsp=0
http | - | GET /ocsp/!!!notbase64 - -                  | 404
http | - | GET /ocsp/%zz - -                           | 404
http | - | GET /ocsp/ - -                              | 404
http | - | GET /ocsp/${REQ_B64}== - -                  | 404
http | - | GET /ocsp/MAQCAQE%3D - -                    | 404
http | - | GET /ocsp/MAMCAQE%3D - -                    | 200 ocsp=1
http | - | GET /favicon.ico - -                        | 404
http | - | GET /robots.txt - -                         | 404
http | - | GET /ocsp/$REQ_URL - -                      | 200 ocsp=0
http | - | GET /crl/nothing - -                        | 404
http | - | GET /crl/full.crlx - -                      | 404
http | - | GET /ca.crtx - -                            | 404
http | - | PUT /ocsp - -                               | 405
http | - | DELETE /ocsp - -                            | 405
http | - | GET /ocsp - -                               | 405
http | - | POST /crl application/ocsp-request req.der  | 405
http | - | POST /ca.crt - -                            | 405
http | - | POST /healthz - -                           | 405
http | - | POST /metrics - -                           | 405
# ---- admin socket: raw frames ----
admraw | - | u8:2 u16:1 s16:status u16:0             | code=1 err=mica-admin: malformed request: unsupported admin protocol version
admraw | - | len:0                                   | code=1 err=mica-admin: malformed request: unsupported admin protocol version
admraw | - | hex:deadbeef                            | code=1 err=mica-admin: malformed request: unsupported admin protocol version
admraw | - | u8:1 u16:65                             | code=1 err=mica-admin: malformed request: bad argument count
admraw | - | u8:1 u16:1 hex:0010                     | code=1 err=mica-admin: malformed request: bad argument 0
admraw | - | u8:1 u16:1 hex:0003610062 u16:0         | code=1 err=mica-admin: malformed request: bad argument 0
admraw | - | u8:1 u16:1 s16:status u16:0 hex:ff      | code=1 err=mica-admin: malformed request: trailing bytes in request
admraw | - | u8:1 u16:1 s16:status u16:5             | code=1 err=mica-admin: malformed request: bad attachment count
admraw | - | u8:1 u16:1 s16:status u16:1 u8:32 hex:6161616161616161616161616161616161616161616161616161616161616161 u32:0 | code=1 err=mica-admin: malformed request: bad attachment name
admraw | - | u8:1 u16:1 s16:status u16:1 u8:1 hex:61 u32:100 hex:00 | code=1 err=mica-admin: malformed request: bad attachment
admraw | - | len:20 u8:1                             | closed
admraw | - | big                                     | closed
admraw | - | u8:1 u16:1 s16:frobnicate u16:0         | code=2 err=mica-admin: unknown command "frobnicate" (see mica-admin --help)
admraw | - | u8:1 u16:0 u16:0                        | code=2 err=mica-admin: unknown command "" (see mica-admin --help)
admraw | - | u8:1 u16:2 s16:approve s16:99999999999999999999999 u16:0 | code=2 err=mica-admin: usage: approve ID
# ---- mica-admin ----
cli | - | admin frobnicate                         | 2 :: mica-admin: unknown command "frobnicate" (see mica-admin --help)
cli | - | admin account frob                       | 2 :: mica-admin: unknown command "account frob" (see mica-admin --help)
cli | - | admin list --colour                      | 2 :: mica-admin: unknown option --colour
cli | - | admin revoke                             | 2 :: mica-admin: usage: revoke SERIAL [--reason R] [--invalidity-date YYYYMMDDHHMMSSZ]
cli | - | admin show                               | 2 :: mica-admin: usage: show SERIAL [--json]
cli | - | admin revoke $OWNER_SERIAL --reason      | 2 :: mica-admin: --reason needs a value
cli | - | admin approve                            | 2 :: mica-admin: usage: approve ID
cli | - | admin approve abc                        | 2 :: mica-admin: usage: approve ID
cli | - | admin backup                             | 2 :: mica-admin: usage: backup FILE
cli | - | admin show xyz                           | 1 :: mica-admin: show: "xyz" is not a serial number in hex
cli | - | admin show 112233445566778899AABBCCDDEEFF0011 | 1 :: mica-admin: show: "112233445566778899AABBCCDDEEFF0011" is not a serial number in hex
cli | - | admin show 0123ABCD                      | 1 :: mica-admin: show: no certificate with serial 0123ABCD
cli | - | admin hold 0123ABCD                      | 1 :: mica-admin: hold: no certificate with serial 0123ABCD
cli | - | admin revoke $OWNER_SERIAL --reason stolen | 1 :: mica-admin: revoke: unknown reason "stolen" (use unspecified, keyCompromise, affiliationChanged, superseded, cessationOfOperation or privilegeWithdrawn)
cli | - | admin revoke $OWNER_SERIAL --invalidity-date 2026 | 1 :: mica-admin: revoke: --invalidity-date "2026": RFC 5280 5.3.2: a GeneralizedTime like 20260101120000Z, not in the future
cli | - | admin revoke $OWNER_SERIAL --invalidity-date 20261301000000Z | 1 :: mica-admin: revoke: --invalidity-date "20261301000000Z": RFC 5280 5.3.2: a GeneralizedTime like 20260101120000Z, not in the future
cli | - | admin revoke $OWNER_SERIAL --invalidity-date 20260101000000 | 1 :: mica-admin: revoke: --invalidity-date "20260101000000": RFC 5280 5.3.2: a GeneralizedTime like 20260101120000Z, not in the future
cli | - | admin revoke $OWNER_SERIAL --invalidity-date 2026010100000aZ | 1 :: mica-admin: revoke: --invalidity-date "2026010100000aZ": RFC 5280 5.3.2: a GeneralizedTime like 20260101120000Z, not in the future
cli | - | admin revoke $OWNER_SERIAL --invalidity-date 202601010000000Z | 1 :: mica-admin: revoke: --invalidity-date "202601010000000Z": RFC 5280 5.3.2: a GeneralizedTime like 20260101120000Z, not in the future
cli | - | admin unhold $OWNER_SERIAL               | 1 :: mica-admin: unhold: certificate @OSER@ is not on hold
cli | - | admin account unlock nobody              | 1 :: mica-admin: account unlock: no account "nobody"
cli | - | admin issue --account nobody --csr $T/new.csr --out $T/x.crt | 1 :: mica-admin: issue: no account "nobody"
cli | - | admin issue --account l1 --csr $T/new.csr --days 0 --out $T/x.crt | 1 :: mica-admin: issue: --days must be 1 to 36500
cli | - | admin issue --account l1 --csr /nonexistent --out $T/x.crt | 1 :: mica-admin: /nonexistent: No such file or directory
cli | audit+1 | admin approve 999999                     | 1 :: mica-admin: approve 999999: request 999999 not found
cli | audit+1 | admin reject 999999                      | 1 :: mica-admin: reject 999999: request 999999 not found
cli | - | admin list --status weird                | 1 :: mica-admin: list: --status must be good, hold or revoked
cli | - | admin backup $CA                         | 1 :: mica-admin: @CA@: File exists
cli | - | $BIN/mica-admin -c $T/nonexistent.conf status | 1
# ---- mica ----
cli | - | $BIN/mica frob                           | 2 :: mica: unknown command "frob"
cli | - | $BIN/mica reissue --account l1 --serial 01 --subject /CN=l1/O=Org --key $T/k --out $T/o | 2 :: mica: --server and --ca are needed (or MICA_SERVER, MICA_CA)
cli | - | $BIN/mica --server 127.0.0.1:$CA_PORT reissue --account l1 --serial 01 --subject /CN=l1/O=Org --key $T/k --out $T/o | 2 :: mica: --server and --ca are needed (or MICA_SERVER, MICA_CA)
cli | - | $MICA reissue --bogus                     | 2 :: reissue: unrecognized option '--bogus'
cli | - | $MICA reissue --account l1 --serial 01 --subject /CN=l1/O=Org --key $T/k --out $T/o --reason stolen | 2 :: mica: --reason: lost, compromised or damaged
cli | - | $MICA reissue --account l1 --serial xyz --subject /CN=l1/O=Org --key $T/k --out $T/o --password-file $PW --otp 123456 | 2 :: mica: --serial: not a hex serial of at most 16 bytes
cli | - | $MICA reissue --account l1 --serial 01 --out $T/o | 2
cli | - | $MICA fetch --bogus                       | 2 :: fetch: unrecognized option '--bogus'
cli | - | $MICA status --bogus                      | 2 :: status: unrecognized option '--bogus'
cli | - | $MICA fetch --request 1 --token zz --out $T/o | 2 :: mica: --token: expected 64 hex digits
cli | - | $MICA status --request abc --token 00     | 2 :: mica: --request: not a request id
cli | - | $MICA fetch --request $REQID --token 0000000000000000000000000000000000000000000000000000000000000000 --out $T/o | 1
cli | - | $BIN/mica --server nohostport --ca $CA status --request 1 --token 0000000000000000000000000000000000000000000000000000000000000000 | 2 :: mica: --server: expected HOST:PORT, got "nohostport"
# ---- micad ----
cli | - | $BIN/micad --bogus                        | 2 :: @BIN@/micad: unrecognized option '--bogus'
cli | - | $BIN/micad -c                             | 2 :: @BIN@/micad: option requires an argument -- 'c'
cli | - | $BIN/micad -n -c $T/nonexistent/mica.conf | 1 :: micad: error: @T@/nonexistent/mica.conf: No such file or directory
# ---- configuration (micad -n) ----
conf | - | \n[http]\nthreads = lots\n                 | 1 :: micad: error: @F@:@L@: [http] threads: must be a number from 1 to 64
conf | - | \n[http]\nsigners = 65\n                 | 1 :: micad: error: @F@:@L@: [http] signers: must be a number from 0 to 64
conf | - | \n[policy]\nreveiw = auto\n                | 1 :: micad: error: @F@:@L@: [policy] reveiw: unknown key
conf | - | \n[bogus]\nx = 1\n                         | 1 :: micad: error: @F@:@L1@: [bogus]: unknown section
conf | - | \n[policy\n                                | 1 :: micad: error: @F@:@L@: syntax error (error:07000064:configuration file routines::missing close square bracket)
conf | - | \nnovalue\n                               | 1 :: micad: error: @F@:@L@: syntax error (error:07000065:configuration file routines::missing equal sign)
conf | - | \n[protocol]\nmax_frame = 100\n           | 1 :: micad: error: @F@:@L@: [protocol] max_frame: must be a number from 1024 to 1048576
conf | - | \n[policy]\nreview = sometimes\n          | 1 :: micad: error: @F@:@L@: [policy] review: must be manual or auto
conf | - | \n[daemon]\nlog_level = loud\n            | 1 :: micad: error: @F@:@L@: [daemon] log_level: must be error, warn, info or debug
conf | - | \n[protocol]\nlisten = nowhere\n           | 1 :: micad: error: @F@:@L@: [protocol] listen: must be HOST:PORT, e.g. 127.0.0.1:7780
conf | - | \n[policy]\nhold_on_request = maybe\n     | 1 :: micad: error: @F@:@L@: [policy] hold_on_request: must be yes or no
conf | - | \n[store]\nmap_size = 12Q\n               | 1 :: micad: error: @F@:@L@: [store] map_size: must be a number from 1048576 to 1099511627776
conf | - | \n[policy]\nmax_failures = 0\n            | 1 :: micad: error: @F@:@L@: [policy] max_failures: must be a number from 1 to 1000
conf | - | \n[ca]\ndefault_days = 999999\n           | 1 :: micad: error: @F@:@L@: [ca] default_days: must be a number from 1 to 36500
EOF
# a world- and a group-writable configuration
cp "$CONF" "$T/ca/ww.conf"
for mode in 666 620; do
	chmod $mode "$T/ca/ww.conf"
	ROWS=$((ROWS + 1))
	got=$(run_cli "\"$BIN/micad\" -n -c \"$T/ca/ww.conf\"")
	expect_eq "conf: mode $mode -> exact message" "$got" \
	    "1 :: micad: error: $T/ca/ww.conf: writable by group or others (mode $mode); chmod 600 it"
done
check "audit chain still verifies" admin audit --verify
echo "rows: $ROWS"
done_testing
