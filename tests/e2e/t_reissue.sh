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
expect_out "replay: authentication failed" "mica: authentication failed"

# frank: 3 failures so far (max_failures 3): locked even with the right
# password and a fresh code
expect_exit 1 "locked account" reissue frank --otp "$(otp frank)"
expect_out "locked account message" "locked"

# ---- validation ----
enroll hank || not_ok "enroll hank"
expect_exit 1 "another account's serial" $MICA reissue --account hank \
    --serial "$(serial_of "$T/dave.new.crt")" --subject /CN=dave/O=Org \
    --key "$T/hank.k1" --out "$T/hank.c1" --password-file "$PW" \
    --otp "$(otp hank)"
expect_out "not the account's certificate" "is not a certificate of this account"
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
s = socket.create_connection(("127.0.0.1", port), timeout=10)
if mode == "plain":
    s.sendall(hello)
else:
    ctx = ssl.create_default_context(cafile=ca)
    ctx.check_hostname = False
    s = ctx.wrap_socket(s)
    data = {
        "badversion": frame(2, 1, 1, tlv(1, b"\x01")),
        "oversized": struct.pack(">I", 1 << 24) + b"\x01\x01",
        "short": struct.pack(">I", 3) + b"\x01\x01\x00",
        "unknowntype": hello + frame(1, 0x7e, 9),
        "truncated": hello + frame(1, 2, 9, tlv(0x10, b"al"))[:-1] +
            b"",
        "badtlv": hello + frame(1, 2, 9, struct.pack(">HH", 0x10, 50)),
    }[mode]
    s.sendall(data)
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
    out.append("frame type=0x%02x%s" % (f[1], code))
out.append("closed")
print("\n".join(out))
EOF
raw() { timeout 20 python3 "$T/raw.py" "$CA" "$CA_PORT" "$1"; }
expect_exit 0 "plaintext client" raw plain
expect_eq "plaintext refused: no frame back" "$OUT" "closed"
expect_exit 0 "bad version frame" raw badversion
expect_out "bad version: ERROR 2" "frame type=0x85 code=2"
expect_exit 0 "oversized frame" raw oversized
expect_out "oversized: ERROR 4" "frame type=0x85 code=4"
expect_exit 0 "length below header" raw short
expect_out "short frame: ERROR 1" "frame type=0x85 code=1"
expect_exit 0 "unknown type" raw unknowntype
expect_out "unknown type: ERROR 3" "frame type=0x85 code=3"
expect_exit 0 "TLV past the end" raw badtlv
expect_out "bad TLV: ERROR 1" "frame type=0x85 code=1"
expect_exit 0 "truncated frame then EOF" raw truncated
expect_out "truncated: server closes" "closed"

# ---- auto review ----
stop_micad
conf_set "$CONF" review auto
start_micad || not_ok "micad restarts with review = auto"
enroll lena || not_ok "enroll lena"
expect_exit 0 "auto review: certificate written at once" reissue lena \
    --otp "$(otp lena)" --timeout 30
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
    openssl verify -crl_check -use_deltas -CAfile "$CA" \
    -CRLfile "$T/full.pem" -CRLfile "$T/delta.pem" "$T/lena.crt"
expect_out "openssl says revoked" "certificate revoked"
expect_exit 0 "... and accept the replacement" openssl verify -crl_check \
    -use_deltas -CAfile "$CA" -CRLfile "$T/full.pem" -CRLfile "$T/delta.pem" \
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

done_testing
