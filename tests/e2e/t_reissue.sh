#!/bin/sh
# t_reissue.sh - the lost-certificate story over the CA protocol, end to
# end: real micad, real mica and mica-admin, openssl and oathtool.
# Every successful login uses up a TOTP step of its account (replay
# guard), so each case enrolls its own account.
. "$(dirname "$0")/lib.sh"

mica_init "$T/ca" || { not_ok "mica-admin init"; done_testing; }
conf_set "$CONF" max_failures 3
start_micad || { not_ok "micad starts"; done_testing; }
CA=$T/ca/ca.crt
MICA="$BIN/mica --server 127.0.0.1:$CA_PORT --ca $CA"
PW=$T/pw
echo 'correct-horse-battery' >"$PW"
echo 'wrong-horse-battery' >"$T/badpw"

# enroll NAME: account NAME (subject /CN=NAME/O=Org) with a certificate
# $T/NAME.crt (key $T/NAME.key); the TOTP secret goes to $T/NAME.secret.
enroll() {
	admin account add "$1" --subject "/CN=$1/O=Org" \
	    --password-file "$PW" >"$T/$1.add" 2>&1 || return 1
	sed -n 's/^totp secret[^:]*: //p' "$T/$1.add" >"$T/$1.secret"
	make_csr "$T/$1.key" "$T/$1.csr" "/CN=$1/O=Org"
	admin issue --account "$1" --csr "$T/$1.csr" --out "$T/$1.crt" \
	    >/dev/null 2>&1
}
otp() { oathtool --totp -b "$(cat "$T/$1.secret")"; }

# reissue NAME [options]: mica reissue for NAME's certificate.
reissue() {
	name=$1; shift
	$MICA reissue --account "$name" --lost-cert "$T/$name.crt" \
	    --key "$T/$name.new.key" --out "$T/$name.new.crt" \
	    --password-file "$PW" "$@"
}

# ---- manual review: the client waits, the admin approves ----
enroll alice || not_ok "enroll alice"
LOST=$(serial_of "$T/alice.crt")
reissue alice --otp "$(otp alice)" --reason compromised \
    --note "laptop stolen" >"$T/alice.out" 2>"$T/alice.err" &
CPID=$!
i=0
while ! grep -q '^request: ' "$T/alice.out" 2>/dev/null && [ $i -lt 100 ]; do
	sleep 0.1; i=$((i + 1))
done
ID=$(sed -n 's/^request: //p' "$T/alice.out")
sleep 0.3
OUT=$(cat "$T/alice.err")
expect_out "waiting status on stderr" "waiting for review..."
expect_eq "request file mode 0600" \
    "$(stat -c %a "$T/alice.new.crt.request")" 600
expect_eq "new key mode 0600" "$(stat -c %a "$T/alice.new.key")" 600
check "admin approves request $ID" admin approve "$ID"
wait $CPID
expect_eq "client exits 0 after approval" "$?" 0
check "openssl verify new certificate" \
    openssl verify -CAfile "$CA" "$T/alice.new.crt"
expect_eq "certificate mode 0644" "$(stat -c %a "$T/alice.new.crt")" 644
check "chain file written" test -s "$T/alice.new.crt.chain"
NEW=$(serial_of "$T/alice.new.crt")
expect_exit 0 "show lost serial" admin show "$LOST"
expect_out "lost serial revoked" "status: revoked"
expect_out "revocation reason keyCompromise" "reason: keyCompromise"
expect_out "replaced by the new serial" "replaced by: $NEW"
expect_eq "new certificate keeps the subject" \
    "$(openssl x509 -in "$T/alice.new.crt" -noout -subject)" \
    "$(openssl x509 -in "$T/alice.crt" -noout -subject)"

# ---- status and fetch with the request file ----
expect_exit 0 "status of an issued request" \
    $MICA status --request-file "$T/alice.new.crt.request"
expect_out "status says issued" "state: issued"
check "status does not print the token again (--no-wait shows it once)" \
    sh -c "! printf '%s' \"\$1\" | grep -q 'token'" sh "$OUT"
expect_exit 0 "fetch again" $MICA fetch \
    --request-file "$T/alice.new.crt.request" --out "$T/alice.fetched.crt"
check "fetched = written" cmp "$T/alice.fetched.crt" "$T/alice.new.crt"
expect_exit 1 "fetch with a wrong token" $MICA fetch --request "$ID" \
    --token 0000000000000000000000000000000000000000000000000000000000000000 \
    --out "$T/x.crt"
expect_out "wrong token: not found" "mica: "

# ---- rejection: exit 3 ----
enroll carol || not_ok "enroll carol"
reissue carol --otp "$(otp carol)" --no-wait >"$T/carol.out" 2>&1
expect_eq "--no-wait exits 4" "$?" 4
CID=$(sed -n 's/^request: //p' "$T/carol.out")
check "--no-wait prints the token once" grep -q '^token: [0-9a-f]\{64\}$' \
    "$T/carol.out"
check "admin rejects" admin reject "$CID" --why "not convinced"
expect_exit 3 "fetch of a rejected request exits 3" $MICA fetch \
    --request-file "$T/carol.new.crt.request" --out "$T/carol.new.crt"
expect_out "rejection reason shown" "not convinced"
expect_exit 0 "rejected lost cert stays good" admin show \
    "$(serial_of "$T/carol.crt")"
expect_out "still good" "status: good"

# ---- disconnect, then fetch ----
enroll dave || not_ok "enroll dave"
expect_exit 4 "dave --no-wait" reissue dave --otp "$(otp dave)" --no-wait
DID=$(sed -n 's/^request: //p' "$T/dave.new.crt.request")
expect_exit 4 "fetch while pending exits 4" $MICA fetch \
    --request-file "$T/dave.new.crt.request" --out "$T/dave.new.crt"
expect_out "pending state shown" "state: pending"
check "approve dave" admin approve "$DID"
expect_exit 0 "fetch after approval" $MICA fetch \
    --request-file "$T/dave.new.crt.request" --out "$T/dave.new.crt"
check "verify dave's certificate" openssl verify -CAfile "$CA" \
    "$T/dave.new.crt"

# ---- raw frames: WAIT's acknowledgement (PROTOCOL.md: micad always
# sends the optional ACCEPTED first), a second LOGIN is ERROR 3 ----
enroll wendy || not_ok "enroll wendy"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$T/wendy.k2" -subj "/CN=wendy/O=Org" -outform DER \
    -out "$T/wendy.csr.der" 2>/dev/null
LASTID=$(admin requests --json | grep -o '"id":[0-9]*' | cut -d: -f2 |
    sort -n | tail -n 1)
W_REQ=$(printf '%016x' $((LASTID + 1)))
W_SER=$(printf '%032s' "$(serial_of "$T/wendy.crt")" | tr ' ' 0)
W_CSR=$(od -An -v -tx1 "$T/wendy.csr.der" | tr -d ' \n')
export W_REQ W_SER W_CSR PWFILE="$PW" SECRETS="$T"
expect_exit 0 "raw: LOGIN, REISSUE, WAIT, second LOGIN" timeout 30 python3 \
    "$TOP/tests/e2e/badinput.py" proto "$CA" "$CA_PORT" hello login:wendy \
    'f:1:3:9:20=$W_SER,21=$W_CSR,22=00' 'f:1:4:10:30=$W_REQ' \
    "f:1:2:11:10='wendy,11='x,12='123456"
expect_eq "ACCEPTED for REISSUE, ACCEPTED (pending) for WAIT, ERROR 3 for a second LOGIN" \
    "$OUT" "SERVER_HELLO@1 OK@2 ACCEPTED@9 ACCEPTED@10 ERROR3@11 open"
check "reject wendy's request" admin reject "$((LASTID + 1))"

# ---- a timeout while waiting: exit 4 ----
enroll erin || not_ok "enroll erin"
expect_exit 4 "--timeout 1 while pending exits 4" reissue erin \
    --otp "$(otp erin)" --timeout 1
expect_out "timeout explains how to fetch" "fetch --request-file"

# ---- authentication ----
enroll frank || not_ok "enroll frank"
expect_exit 1 "wrong password" $MICA reissue --account frank \
    --lost-cert "$T/frank.crt" --key "$T/frank.k2" --out "$T/frank.c2" \
    --password-file "$T/badpw" --otp "$(otp frank)"
expect_out "wrong password: authentication failed" \
    "mica: authentication failed"
# the key is made only once the login succeeded and the lost certificate
# is known
check "refused login: no key made" test ! -e "$T/frank.k2"
check "... and none announced" sh -c \
    "! printf '%s' \"\$1\" | grep -q 'new key'" sh "$OUT"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
    -out "$T/frank.own.key" 2>/dev/null
expect_exit 1 "wrong password with a key of one's own" $MICA reissue \
    --account frank --lost-cert "$T/frank.crt" --key "$T/frank.own.key" \
    --out "$T/frank.c2" --password-file "$T/badpw" --otp "$(otp frank)"
check "a key that existed before is kept" test -s "$T/frank.own.key"
check "... and not named as removed" sh -c \
    "! printf '%s' \"\$1\" | grep -q 'removed'" sh "$OUT"
CODE=$(otp frank)
BAD=$(printf '%06d' $(( (1${CODE} - 1000000 + 500000) % 1000000 )))
expect_exit 1 "wrong code" reissue frank --otp "$BAD"
expect_out "wrong code: authentication failed" "mica: authentication failed"
expect_exit 1 "wrong password again (third failure)" reissue frank \
    --password-file "$T/badpw" --otp "$(otp frank)"
expect_exit 1 "unknown account" $MICA reissue --account nobody \
    --lost-cert "$T/frank.crt" --key "$T/frank.k3" --out "$T/frank.c3" \
    --password-file "$PW" --otp 123456
expect_out "unknown account: same error" "mica: authentication failed"

enroll gina || not_ok "enroll gina"
G=$(otp gina)
expect_exit 4 "gina logs in" reissue gina --otp "$G" --no-wait
expect_exit 1 "replayed code refused" $MICA reissue --account gina \
    --serial "$(serial_of "$T/gina.crt")" --subject /CN=gina/O=Org \
    --key "$T/gina.k2" --out "$T/gina.c2" --password-file "$PW" --otp "$G"
expect_out "replay: its own message, not counted" \
    "mica: code already used; wait for the next one"

# frank: 3 failures so far (max_failures 3): locked even with the right
# password and a fresh code
expect_exit 1 "locked account" reissue frank --otp "$(otp frank)"
expect_out "locked account message: until when, who can unlock" \
    "mica: account locked until "
expect_out "... UTC, an administrator can unlock it" \
    "UTC (too many failed logins); an administrator can unlock it earlier"

# ---- validation ----
enroll hank || not_ok "enroll hank"
expect_exit 1 "another account's serial" $MICA reissue --account hank \
    --serial "$(serial_of "$T/dave.new.crt")" --subject /CN=dave/O=Org \
    --key "$T/hank.k1" --out "$T/hank.c1" --password-file "$PW" \
    --otp "$(otp hank)"
expect_out "not the account's certificate" "is not a certificate of this account"
check "refused request: the key mica made is removed" test ! -e "$T/hank.k1"
expect_out "... and mica says so" \
    "mica: removed the new key $T/hank.k1: the CA did not accept the request"
enroll ivan || not_ok "enroll ivan"
expect_exit 1 "CSR reusing the lost key" $MICA reissue --account ivan \
    --lost-cert "$T/ivan.crt" --key "$T/ivan.key" --out "$T/ivan.c1" \
    --password-file "$PW" --otp "$(otp ivan)"
expect_out "same key refused" "the public key is the lost"
enroll judy || not_ok "enroll judy"
expect_exit 1 "wrong subject" $MICA reissue --account judy \
    --serial "$(serial_of "$T/judy.crt")" --subject /CN=mallory/O=Org \
    --key "$T/judy.k1" --out "$T/judy.c1" --password-file "$PW" \
    --otp "$(otp judy)"
expect_out "subject mismatch refused" "does not match the"
enroll kate || not_ok "enroll kate"
expect_exit 4 "kate's first request" reissue kate --otp "$(otp kate)" \
    --no-wait
# a second open request for the same serial: kate logs in again with the
# next TOTP step (accepted window t+1)
K2=$(oathtool --totp -b "$(cat "$T/kate.secret")" --now "$(date -u -d @$(( $(date +%s) + 30 )) '+%Y-%m-%d %H:%M:%S UTC')")
expect_exit 1 "second open request" $MICA reissue --account kate \
    --lost-cert "$T/kate.crt" --key "$T/kate.k2" --out "$T/kate.c2" \
    --password-file "$PW" --otp "$K2"
expect_out "duplicate open request refused" "is still open"
# No --subject / --lost-cert is no longer a usage error (the subject comes
# from the server after login, t_subscriber.sh); without a terminal or
# --password-file the login cannot ask for the password (setsid: no
# controlling terminal even when the tests run from one).
expect_exit 1 "no subject source: goes on to log in" setsid -w $MICA reissue \
    --account kate --serial 01 --key "$T/k" --out "$T/o" </dev/null
expect_out "no subject source: asks for the password" \
    "mica: no terminal to ask for the password"
expect_exit 2 "usage: no --key" $MICA reissue --account kate \
    --serial 01 --out "$T/o"
expect_exit 0 "--help on reissue" $MICA reissue --help

# ---- transport ----
expect_exit 1 "openssl s_client -tls1_2 refused" sh -c \
    "openssl s_client -connect 127.0.0.1:$CA_PORT -tls1_2 \
    -CAfile '$CA' </dev/null >/dev/null 2>&1"

cat >"$T/raw.py" <<'EOF'
# raw.py CA PORT MODE: sends raw bytes over TLS (or plaintext) and prints
# what comes back: "frame type=0x.. code=N" or "closed".
import socket, ssl, struct, sys
ca, port, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def frame(ver, typ, fid, body=b""):
    b = bytes([ver, typ]) + struct.pack(">I", fid) + body
    return struct.pack(">I", len(b)) + b
def tlv(t, v): return struct.pack(">HH", t, len(v)) + v
hello = frame(1, 1, 1, tlv(1, b"\x01"))
s = socket.create_connection(("127.0.0.1", port), timeout=30 if mode == "statusonly" else 10)
if mode == "plain":
    s.sendall(hello)
else:
    ctx = ssl.create_default_context(cafile=ca)
    ctx.check_hostname = False
    s = ctx.wrap_socket(s)
    data = {
        "badversion": frame(2, 1, 1, tlv(1, b"\x01")),
        "oversized": struct.pack(">I", 1 << 24) + b"\x01\x01",
        # an oversized frame whose bytes keep coming: the ERROR must
        # not be lost to a reset when the server closes
        "oversized_stream": hello + struct.pack(">I", 1 << 24) +
            b"\x01\x03" + b"\x00" * (768 * 1024),
        # a frame too large before LOGIN (4096 is the cap until then)
        "preauth_big": hello + frame(1, 6, 9, tlv(0x40, b"\x00" * 4100)),
        # a HELLO in a version-2 frame with id 7: ERROR 2 echoes id 7
        "hello_v2": frame(2, 1, 7, tlv(1, b"\x01\x02")),
        # STATUS needs no login, but the login timeout still applies
        "statusonly": hello + frame(1, 6, 2, tlv(0x30, b"\x00" * 7 +
            b"\x01") + tlv(0x31, b"\x00" * 32)),
        "short": struct.pack(">I", 3) + b"\x01\x01\x00",
        "unknowntype": hello + frame(1, 0x7e, 9),
        "truncated": hello + frame(1, 2, 9, tlv(0x10, b"al"))[:-1] +
            b"",
        "badtlv": hello + frame(1, 2, 9, struct.pack(">HH", 0x10, 50)),
    }[mode]
    try:
        s.sendall(data)
    except (OSError, ssl.SSLError) as e:
        print("send failed: %s" % e)
    if mode == "truncated":
        s.shutdown(socket.SHUT_WR)
buf = b""
try:
    while True:
        d = s.recv(65536)
        if not d:
            break
        buf += d
except (OSError, ssl.SSLError):
    pass
out = []
while len(buf) >= 10:
    n = struct.unpack(">I", buf[:4])[0]
    f = buf[4:4 + n]
    buf = buf[4 + n:]
    code = ""
    if f[1] == 0x85 and len(f) >= 12:
        code = " code=%d" % struct.unpack(">H", f[10:12])[0]
    out.append("frame type=0x%02x id=%d%s" % (f[1],
        struct.unpack(">I", f[2:6])[0], code))
out.append("closed")
print("\n".join(out))
EOF
raw() { timeout 20 python3 "$T/raw.py" "$CA" "$CA_PORT" "$1"; }
expect_exit 0 "plaintext client" raw plain
expect_eq "plaintext refused: no frame back" "$OUT" "closed"
expect_exit 0 "bad version frame" raw badversion
expect_out "bad version: ERROR 2" "frame type=0x85 id=1 code=2"
expect_exit 0 "oversized frame" raw oversized
expect_out "oversized: ERROR 4" "frame type=0x85 id=0 code=4"
expect_exit 0 "length below header" raw short
expect_out "short frame: ERROR 1" "frame type=0x85 id=0 code=1"
expect_exit 0 "unknown type" raw unknowntype
expect_out "unknown type: ERROR 3" "frame type=0x85 id=9 code=3"
expect_exit 0 "TLV past the end" raw badtlv
expect_out "bad TLV: ERROR 1" "frame type=0x85 id=9 code=1"
expect_exit 0 "truncated frame then EOF" raw truncated
expect_out "truncated: server closes" "closed"
# PROTOCOL.md versus the server
expect_exit 0 "oversized frame while the client keeps sending" \
    raw oversized_stream
expect_eq "the ERROR 4 arrives (the server drains before it closes)" \
    "$OUT" "frame type=0x81 id=1
frame type=0x85 id=0 code=4
closed"
expect_exit 0 "frame over 4096 bytes before LOGIN" raw preauth_big
expect_eq "ERROR 4 and close before LOGIN, as PROTOCOL.md says" \
    "$OUT" "frame type=0x81 id=1
frame type=0x85 id=0 code=4
closed"
expect_exit 0 "HELLO in a version-2 frame, id 7" raw hello_v2
expect_eq "ERROR 2 echoes the readable id 7, then close" "$OUT" \
    "frame type=0x85 id=7 code=2
closed"

# ---- auto review ----
stop_micad
conf_set "$CONF" review auto
start_micad || not_ok "micad restarts with review = auto"
enroll lena || not_ok "enroll lena"
expect_exit 0 "auto review: certificate written at once" reissue lena \
    --otp "$(otp lena)" --timeout 30
expect_out "auto review: says it was approved at once" \
    "mica: approved at once (the CA reviews automatically)"
check "auto review: no 'waiting for review'" sh -c \
    "! printf '%s' \"\$1\" | grep -q 'waiting for review'" sh "$OUT"
check "verify lena's certificate" openssl verify -CAfile "$CA" \
    "$T/lena.new.crt"
expect_exit 0 "show lena's lost serial" admin show \
    "$(serial_of "$T/lena.crt")"
expect_out "auto: lost serial revoked" "status: revoked"
# The CRLs served the moment the client's command returned list it.
curl -s -o "$T/full.crl" "http://127.0.0.1:$HTTP_PORT/crl/full.crl"
curl -s -o "$T/delta.crl" "http://127.0.0.1:$HTTP_PORT/crl/delta.crl"
openssl crl -inform DER -in "$T/full.crl" -out "$T/full.pem" 2>/dev/null
openssl crl -inform DER -in "$T/delta.crl" -out "$T/delta.pem" 2>/dev/null
expect_exit 2 "served CRLs (full + delta) reject the lost certificate" \
    openssl verify -crl_check -extended_crl -use_deltas -CAfile "$CA" \
    -CRLfile "$T/full.pem" -CRLfile "$T/delta.pem" "$T/lena.crt"
expect_out "openssl says revoked" "certificate revoked"
expect_exit 0 "... and accept the replacement" openssl verify -crl_check \
    -extended_crl -use_deltas -CAfile "$CA" -CRLfile "$T/full.pem" -CRLfile "$T/delta.pem" \
    "$T/lena.new.crt"

# ---- hold_on_request: the lost certificate stops working at once ----
stop_micad
conf_set "$CONF" review manual
conf_set "$CONF" hold_on_request yes
start_micad || not_ok "micad restarts with hold_on_request = yes"
URL=http://127.0.0.1:$HTTP_PORT
ocsp_of() {
	openssl ocsp -issuer "$CA" -cert "$1" -url "$URL/ocsp" -CAfile "$CA" \
	    -no_nonce 2>&1
}
enroll mona || not_ok "enroll mona"
expect_exit 4 "hold: application accepted without waiting" reissue mona \
    --otp "$(otp mona)" --no-wait
expect_exit 0 "show mona's lost serial" admin show "$(serial_of "$T/mona.crt")"
expect_out "lost certificate on hold as soon as the application is accepted" \
    "status: hold"
OUT=$(ocsp_of "$T/mona.crt")
expect_out "OCSP: held certificate is revoked" "mona.crt: revoked"
expect_out "OCSP: reason certificateHold" "Reason: certificateHold"
MID=$(sed -n 's/^request: //p' "$T/mona.new.crt.request")
check "admin rejects request $MID" admin reject "$MID" --why "not lost after all"
expect_exit 3 "fetch after rejection exits 3" $MICA fetch \
    --request-file "$T/mona.new.crt.request" --out "$T/mona.fetched.crt"
expect_out "rejection reason shown" "not lost after all"
expect_exit 0 "show after rejection" admin show "$(serial_of "$T/mona.crt")"
expect_out "hold released after rejection" "status: good"
OUT=$(ocsp_of "$T/mona.crt")
expect_out "OCSP: good again after the release" "mona.crt: good"

enroll nina || not_ok "enroll nina"
expect_exit 4 "hold then approve: accepted" reissue nina --otp "$(otp nina)" \
    --no-wait --reason damaged
NID=$(sed -n 's/^request: //p' "$T/nina.new.crt.request")
check "admin approves request $NID" admin approve "$NID"
expect_exit 0 "fetch the approved replacement" $MICA fetch \
    --request-file "$T/nina.new.crt.request" --out "$T/nina.new.crt"
expect_exit 0 "show nina's lost serial" admin show "$(serial_of "$T/nina.crt")"
expect_out "held then approved: revoked" "status: revoked"
expect_out "damaged: reason superseded" "reason: superseded"
OUT=$(ocsp_of "$T/nina.crt")
expect_out "OCSP: superseded" "Reason: superseded"

# ---- a client that sends FETCHes and never reads the replies ----
# Each FETCH of an issued request is answered with ~1-2 KB; 100,000 of
# them unthrottled are 100+ MB of output buffered in micad.  The output
# throttle stops reading the connection above 256 KiB queued, so micad's
# RSS stays put (a resource bound, not a timing one), another client is
# served meanwhile, and every reply arrives once the client reads.
NTOK=$(sed -n 's/^token: //p' "$T/nina.new.crt.request")
# The flood's connection never logs in (FETCH needs no login): give it
# longer than login_timeout's 30 s, which a slow run (valgrind, a loaded
# machine) can take, so the server's login deadline does not end it.
stop_micad
conf_set "$CONF" login_timeout 600
start_micad || not_ok "micad restarts with login_timeout 600"
if [ -n "$NTOK" ] && [ -n "$NID" ]; then
	expect_exit 0 "FETCH flood without reading" timeout 300 python3 \
	    "$(dirname "$0")/fetchflood.py" "$CA" "$CA_PORT" "$MICAD_PID" \
	    "$NID" "$NTOK" 100000
	echo "$OUT" | sed 's/^/# /'
	RSS0=$(echo "$OUT" | sed -n 's/^rss_before_kb //p')
	RSS1=$(echo "$OUT" | sed -n 's/^rss_max_kb //p')
	SENT=$(echo "$OUT" | sed -n 's/^sent //p')
	expect_eq "micad RSS grew by less than 64 MB" \
	    "$([ $((${RSS1:-999999999} - ${RSS0:-0})) -lt 65536 ] && echo yes)" yes
	expect_eq "another client served during the flood" \
	    "$(echo "$OUT" | sed -n 's/^other_client //p')" ok
	expect_eq "every FETCH answered once the client reads" \
	    "$(echo "$OUT" | sed -n 's/^received //p')" "$SENT"
else
	not_ok "nina's request file has request and token"
fi
expect_exit 0 "micad still alive after the flood" admin status

# ---- login timeout: closed without an ERROR frame (PROTOCOL.md) ----
stop_micad
LT=5
[ -n "${MICA_VALGRIND:-}" ] && LT=20	# the handshake alone is slow there
conf_set "$CONF" login_timeout $LT
start_micad || not_ok "micad restarts with login_timeout $LT"
expect_exit 0 "a STATUS-only connection left open" timeout $((LT + 20)) \
    python3 "$T/raw.py" "$CA" "$CA_PORT" statusonly
expect_eq "answered, then closed at the login timeout without an ERROR" \
    "$OUT" "frame type=0x81 id=1
frame type=0x85 id=2 code=10
closed"
# logged rate-limited: one line a second with a count, written at the
# next tick
i=0
while ! grep -q "not logged in within login_timeout ${LT} s" \
    "$T/micad.log" && [ $i -lt 50 ]; do
	sleep 0.1; i=$((i + 1))
done
check "micad logged the login timeout" grep -qE \
    "ca protocol: closed [0-9]+ connections? in the last .*not logged in within login_timeout ${LT} s" \
    "$T/micad.log"

done_testing
