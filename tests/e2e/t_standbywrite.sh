#!/bin/sh
# t_standbywrite.sh - a warm standby refuses subscriber writes with
# ERROR 14 (PROTO_E_STANDBY), and `mica` gives up at once.
#
# A primary and a standby (mica-admin replica add while the primary runs:
# the admin command "replica record"), the standby holding the CA key so
# that it can be promoted.  The real `mica reissue` against the standby
# (default --timeout: a busy answer would be retried for 120 s) exits 5
# with the standby's text naming the primary's [replica] primary address
# and its own hint; the standby's log shows exactly one request refused
# (one LOGIN, no retry) and one ERROR 14.  No key is left behind, and
# the TOTP code was not used: the same code logs in on the promoted
# server.  On the wire (what an older client that does not know code 14
# sees): LOGIN gets ERROR 14 with that text and the connection stays
# usable (FETCH is answered).  Admin writes on the standby keep their
# "this server is a standby" refusal.  After mica-admin promote the same
# mica reissue works there (review = auto: the new certificate written,
# the lost one revoked in the promoted server's OCSP).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/replica_lib.sh"

replica_primary || { not_ok "mica-admin init"; done_testing; }
start_micad "$PCONF" || { not_ok "primary starts"; done_testing; }
PW=$T/pw
echo 'correct-horse-battery' >"$PW"
subscriber_u1
LOST=$(serial_of "$T/u1.crt")

# ---- the standby: replica add through the running primary ----
S=$T/s
expect_exit 0 "replica add sb1 while the primary runs" "$BIN/mica-admin" \
    -c "$PCONF" replica add sb1 --out "$S" --primary "127.0.0.1:$RPORT"
expect_out "micad recorded the certificates" \
    "replica sb1: 3 certificates recorded; store copy written"
replica_standby_conf "$S"
# the CA key, for the promotion later; reissues signed at once there
cp "$P/private/ca.key" "$S/private/ca.key"
conf_set_in "$SCONF" ca key private/ca.key
conf_set_in "$SCONF" policy review auto
trap 'stop_standby; cleanup' EXIT
start_standby || { not_ok "standby starts"; done_testing; }
check "the standby catches up" catch_up

# CODE: one TOTP code for both reissues (the standby must not use it)
CODE=$(oathtool --totp -b "$(cat "$T/u1.secret")")
refusals() { grep -c "refused: this server is a standby" "$T/standby.log"; }
errors14() { grep -c "error code=14 (this server is a standby)" "$T/standby.log"; }
expect_eq "no refusal logged before" "$(refusals)" 0

# ---- mica reissue against the standby: exit 5 at once ----
expect_exit 5 "mica reissue against the standby exits 5 (standby)" \
    reissue_u1 "$SCA_PORT"
expect_out "it says what the standby said, naming the primary" \
    "mica: this server is a standby; the primary is 127.0.0.1:$RPORT ([replica] primary): ask the primary's CA address"
expect_out "and what to do" \
    "mica: 127.0.0.1:$SCA_PORT is a standby: run the command again with --server naming the primary's CA address"
case $OUT in
*busy*|*retry*) not_ok "no busy/retry message"
    printf '%s\n' "$OUT" | sed 's/^/#   /' ;;
*) ok "no busy/retry message" ;;
esac
expect_eq "the standby logged exactly one refused request" "$(refusals)" 1
expect_eq "it was the LOGIN" \
    "$(grep -c "id=[0-9]* LOGIN refused: this server is a standby" "$T/standby.log")" 1
expect_eq "exactly one ERROR 14 sent" "$(errors14)" 1
check "no new key left behind" test ! -e "$T/u1.new.key"
check "no certificate written" test ! -e "$T/u1.new.crt"

# ---- on the wire: what a client that does not know 14 gets ----
cat >"$T/wire.py" <<'EOF'
import struct, sys
sys.path.insert(0, sys.argv[1])
import micaframe as mf
s = mf.connect(sys.argv[2], int(sys.argv[3]))
login = (mf.tlv(0x10, b"u1") + mf.tlv(0x11, b"x") + mf.tlv(0x12, b"000000"))
s.sendall(mf.frame(0x02, 7, login))
f = mf.read_frame(s)
fid = struct.unpack(">I", f[2:6])[0]
text = ""
i = 6
while i + 4 <= len(f):
    t, n = struct.unpack(">HH", f[i:i + 4])
    if t == 0x51:
        text = f[i + 4:i + 4 + n].decode()
    i += 4 + n
print("login:", mf.result(f), "id", fid, "text", text)
# the connection stays usable: FETCH of an unknown request
s.sendall(mf.frame(0x05, 8, mf.tlv(0x30, struct.pack(">Q", 999999)) +
                   mf.tlv(0x31, b"\0" * 32)))
f = mf.read_frame(s)
print("fetch:", mf.result(f), "id", struct.unpack(">I", f[2:6])[0])
EOF
expect_exit 0 "LOGIN and FETCH on one connection to the standby" \
    python3 "$T/wire.py" "$TOP/tests/e2e" "$P/ca.crt" "$SCA_PORT"
expect_out "LOGIN: ERROR 14 with the text" \
    "login: error 14 id 7 text this server is a standby; the primary is 127.0.0.1:$RPORT"
expect_out "the connection stays open: FETCH answered (not found)" \
    "fetch: error 10 id 8"
expect_eq "two refusals logged now (mica's and this LOGIN)" "$(refusals)" 2

# ---- admin writes keep their refusal ----
expect_exit 1 "the standby refuses mica-admin revoke" sadmin revoke "$LOST"
expect_out "naming the primary" \
    "this server is a standby; the primary is 127.0.0.1:$RPORT"
expect_exit 1 "the standby refuses mica-admin account add" \
    sadmin account add x1 --subject "/CN=x1" --password-file "$PW"
expect_out "account add: the same refusal" "this server is a standby"
expect_eq "the standby's OCSP still says good for the lost certificate" \
    "$(ocsp_status "$SURL" "$LOST")" good
# /metrics counts them: 2 on the CA protocol (mica's LOGIN, the wire
# LOGIN), 2 on the admin socket (revoke, account add)
curl -s "$SURL/metrics" >"$T/smetrics"
expect_eq "/metrics: 2 CA-protocol writes refused" \
    "$(sed -n 's/^mica_replica_writes_refused_total{via="protocol"} //p' "$T/smetrics")" 2
expect_eq "/metrics: 2 admin writes refused" \
    "$(sed -n 's/^mica_replica_writes_refused_total{via="admin"} //p' "$T/smetrics")" 2

# ---- promoted: the same command works there ----
stop_micad
promote_standby 2
expect_exit 0 "the same mica reissue (same code) on the promoted server" \
    reissue_u1 "$SCA_PORT"
check "the new certificate verifies" \
    openssl verify -CAfile "$P/ca.crt" "$T/u1.new.crt"
expect_eq "the lost certificate is revoked there" \
    "$(ocsp_status "$SURL" "$LOST")" revoked
expect_eq "no refusal logged after the promotion" "$(refusals)" 2
expect_eq "no ERROR 14 after the promotion" "$(errors14)" 2
stop_standby
done_testing
