#!/bin/sh
# t_request.sh - initial enrolment without openssl req: `mica request`
# logs in, makes the key, sends a CSR (REQUEST, type 0x20), the operator
# approves as for a reissue, and the same wait / fetch / PKCS#12 follow.
. "$(dirname "$0")/lib.sh"

mica_init "$T/ca" || { not_ok "mica-admin init"; done_testing; }
start_micad || { not_ok "micad starts"; done_testing; }
CA=$T/ca/ca.crt
unset MICA_SERVER MICA_CA
MICA="$BIN/mica --server 127.0.0.1:$CA_PORT --ca $CA"
PW=$T/pw
echo 'correct-horse-battery' >"$PW"

add() {
	admin account add "$1" --subject "$2" --password-file "$PW" \
	    >"$T/$1.add" 2>&1 || return 1
	sed -n 's/^totp secret[^:]*: //p' "$T/$1.add" >"$T/$1.secret"
}
otp() { oathtool --totp -b "$(cat "$T/$1.secret")"; }
subj() { openssl x509 -in "$1" -noout -subject; }

# ---- usage ----
expect_exit 2 "request without --out is a usage error" $MICA request --account x
expect_out "the usage" "usage: mica [global] request --account NAME --out NEW.crt [--key-out NEW.key]"
expect_exit 2 "request --serial is refused" $MICA request --account x \
    --out "$T/x.crt" --serial 01
expect_out "says why" "mica: request asks for a first certificate: --serial, --lost-cert and --reason belong to reissue"
expect_exit 0 "mica --help lists request" $BIN/mica --help
expect_out "in the command list" "request   ask for a first certificate (enrolment) and wait for it"

# ---- REQUEST (0x20) before LOGIN: ERROR 5 ----
cat >"$T/enroll.py" <<'P'
import socket, ssl, struct, sys
def frame(t, i, b=b""):
    h = bytes([1, t]) + struct.pack(">I", i) + b
    return struct.pack(">I", len(h)) + h
def tlv(t, v):
    return struct.pack(">HH", t, len(v)) + v
def rdn(s, n):
    b = b""
    while len(b) < n:
        d = s.recv(n - len(b))
        if not d:
            raise EOFError
        b += d
    return b
def rd(s):
    return rdn(s, struct.unpack(">I", rdn(s, 4))[0])
ctx = ssl.create_default_context(cafile=sys.argv[1])
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(sys.argv[2]))),
                    server_hostname="localhost")
s.sendall(frame(1, 1, tlv(1, b"\x01"))); rd(s)
s.sendall(frame(0x20, 9, tlv(0x21, b"\x30\x00")))
f = rd(s)
print("type 0x%02x id %d code %d" % (f[1], struct.unpack(">I", f[2:6])[0],
      struct.unpack(">H", f[10:12])[0]))
P
expect_eq "REQUEST before LOGIN: ERROR 5 with the frame's id" \
    "$(/usr/bin/python3 "$T/enroll.py" "$CA" "$CA_PORT")" "type 0x85 id 9 code 5"

# ---- manual review, --no-wait, approve, fetch ----
add bob "/CN=bob/O=Example Org" || not_ok "account bob"
expect_exit 4 "request --no-wait: pending" $MICA request --account bob \
    --out "$T/bob.crt" --password-file "$PW" --otp "$(otp bob)" --no-wait
expect_out "prints the request id" "request: 1"
expect_out "a new key" "mica: new key written to $T/bob.key"
expect_eq "the key is mode 0600" "$(stat -c %a "$T/bob.key")" 600
expect_eq "the request file is mode 0600" "$(stat -c %a "$T/bob.crt.request")" 600
expect_exit 0 "requests --pending" admin requests --pending
expect_out "an enrolment, nothing lost" "1 pending  account=bob enrolment created="
expect_exit 0 "requests --json" admin requests --json
expect_out "kind in JSON" '"kind":"enrolment","lost_serial":""'
expect_exit 0 "approve 1" admin approve 1
expect_exit 0 "mica fetch" $MICA fetch --request-file "$T/bob.crt.request" \
    --out "$T/bob.crt"
check "the certificate verifies" openssl verify -CAfile "$CA" "$T/bob.crt"
expect_eq "it carries the account's subject" "$(subj "$T/bob.crt")" \
    "subject=CN = bob, O = Example Org"
check "its key is the one mica made" sh -c "[ \"\$(openssl x509 -in '$T/bob.crt' -noout -pubkey)\" = \"\$(openssl pkey -in '$T/bob.key' -pubout)\" ]"
S=$(serial_of "$T/bob.crt")
check "recorded for bob, good" sh -c "$BIN/mica-admin -c '$CONF' show $S | grep -q 'status: good'"
check "audited as an enrolment" sh -c "$BIN/mica-admin -c '$CONF' audit | grep -q 'request.approved.*enrolment new=$S'"
check "OCSP says good" sh -c "openssl ocsp -issuer '$CA' -cert '$T/bob.crt' -url '$URL/ocsp' -CAfile '$CA' 2>/dev/null | grep -q ': good'"

# ---- waiting on the connection, --key-out, --subject checked server-side ----
add carol "/CN=carol" || not_ok "account carol"
$MICA request --account carol --out "$T/carol.crt" --key-out "$T/c.key" \
    --password-file "$PW" --otp "$(otp carol)" --timeout 60 \
    >"$T/carol.out" 2>&1 &
CPID=$!
i=0
while [ $i -lt 200 ] && ! admin requests --pending | grep -q 'account=carol'; do
	sleep 0.1; i=$((i + 1))
done
ID=$(admin requests --pending | sed -n 's/^\([0-9]*\) .*account=carol.*/\1/p')
expect_exit 0 "approve carol's request $ID" admin approve "$ID"
wait $CPID
expect_eq "the waiting client exits 0" "$?" 0
check "it says it waited" grep -q "mica: waiting for review..." "$T/carol.out"
check "carol's certificate was pushed and written" openssl verify -CAfile "$CA" "$T/carol.crt"
check "the chain file" test -s "$T/carol.crt.chain"
check "--key-out used" sh -c "[ \"\$(openssl x509 -in '$T/carol.crt' -noout -pubkey)\" = \"\$(openssl pkey -in '$T/c.key' -pubout)\" ]"

# ---- reject ----
add dave "/CN=dave" || not_ok "account dave"
expect_exit 4 "dave's request" $MICA request --account dave \
    --out "$T/dave.crt" --password-file "$PW" --otp "$(otp dave)" --no-wait
ID=$(printf '%s\n' "$OUT" | sed -n 's/^request: //p')
expect_exit 0 "reject it" admin reject "$ID" --why "not on the staff list"
expect_exit 3 "fetch: rejected" $MICA fetch --request-file "$T/dave.crt.request" --out "$T/dave.crt"
expect_out "with the reason" "not on the staff list"

# ---- refused before the request: a wrong code makes no key ----
add erin "/CN=erin" || not_ok "account erin"
expect_exit 1 "a wrong code is refused" $MICA request --account erin \
    --out "$T/erin.crt" --password-file "$PW" --otp 000000 --no-wait
check "no key was made" test ! -e "$T/erin.key"

# ---- review = auto, PKCS#12 ----
stop_micad
conf_set "$CONF" review auto
start_micad || { not_ok "micad restarts"; done_testing; }
add fay "/CN=fay" || not_ok "account fay"
printf 'p12-secret-pw\n' >"$T/p12pw"
expect_exit 0 "request under review = auto with --p12" $MICA request \
    --account fay --out "$T/fay.crt" --password-file "$PW" \
    --otp "$(otp fay)" --p12 "$T/fay.p12" --p12-password-file "$T/p12pw"
expect_out "approved at once" "mica: approved at once (the CA reviews automatically); fetching the certificate..."
check "fay's certificate" openssl verify -CAfile "$CA" "$T/fay.crt"
check "the PKCS#12 file opens with the password" openssl pkcs12 -in "$T/fay.p12" \
    -passin "file:$T/p12pw" -noout
expect_exit 0 "mica-admin check" admin check
done_testing
