# replica_lib.sh - a primary and a warm standby on loopback ports, for the
# replica tests (t_replica.sh, t_repldiverge.sh, t_standbywrite.sh).
# Source it after lib.sh.  The standby's micad logs to $T/standby.log;
# its pid is SPID.

# replica_primary: mica-admin init of the primary in $T/p with [replica]
# listen on a free port.  Sets P, PCONF, PHTTP, RPORT (and lib.sh's CONF,
# CA_PORT, URL ...).
replica_primary() {
	mica_init "$T/p" || return 1
	P=$T/p
	PCONF=$CONF
	PHTTP=$HTTP_PORT
	RPORT=$(free_port)
	printf '\n[replica]\nlisten = 127.0.0.1:%s\n' "$RPORT" >>"$PCONF"
}

# replica_ports CONF CA-PORT HTTP-PORT: a standby's mica.conf (a copy of
# the primary's made by replica add) on ports of its own, this being one
# host.
replica_ports() {
	sed -i "s|127.0.0.1:$CA_PORT|127.0.0.1:$2|g;
	    s|127.0.0.1:$PHTTP|127.0.0.1:$3|g" "$1"
}

# replica_standby_conf DIR: SCONF=DIR/mica.conf on fresh ports SCA_PORT
# and SHTTP; SURL its HTTP base.
replica_standby_conf() {
	SCA_PORT=$(free_port); SHTTP=$(free_port)
	SCONF=$1/mica.conf
	SURL=http://127.0.0.1:$SHTTP
	replica_ports "$SCONF" "$SCA_PORT" "$SHTTP"
}

SPID=""
start_standby() {
	"$BIN/micad" -c "$SCONF" >>"$T/standby.log" 2>&1 &
	SPID=$!
	i=0
	while [ $i -lt 100 ]; do
		"$BIN/mica-admin" -c "$SCONF" status >/dev/null 2>&1 && return 0
		kill -0 "$SPID" 2>/dev/null || break
		sleep 0.1; i=$((i + 1))
	done
	sed 's/^/#   /' "$T/standby.log" | tail -n 20
	return 1
}
stop_standby() {
	[ -n "$SPID" ] || return 0
	kill -TERM "$SPID" 2>/dev/null; wait "$SPID" 2>/dev/null; SPID=""
}
sadmin() { "$BIN/mica-admin" -c "$SCONF" "$@"; }

# the primary's journal seq and the standby's applied seq (running)
pseq() { admin status 2>/dev/null | sed -n 's/^journal: .* at seq \([0-9]*\).*/\1/p'; }
sseq() { sadmin status 2>/dev/null | sed -n 's/^replica: applied seq \([0-9]*\),.*/\1/p'; }
# seq_off DIR: the seq of a stopped server's store in DIR
seq_off() { "$BIN/mica-admin" digest --store "$1/store" 2>/dev/null | sed -n 's/^digest [0-9A-F]* seq //p'; }
# catch_up: waits (10 s at most) until the standby has applied the
# primary's last record
catch_up() {
	i=0
	while [ $i -lt 200 ]; do
		[ "$(sseq)" = "$(pseq)" ] && return 0
		sleep 0.05; i=$((i + 1))
	done
	return 1
}

# ocsp_status URL SERIAL -> good / revoked / other (openssl ocsp)
ocsp_status() {
	openssl ocsp -issuer "$P/ca.crt" -serial "0x$2" -url "$1" -no_nonce \
	    -CAfile "$P/ca.crt" 2>/dev/null | sed -n "s/^0x$2: //p" | head -n 1
}

# promote_standby EPOCH: mica-admin promote on the standby; waits until
# its status says it is the primary at EPOCH.
promote_standby() {
	expect_exit 0 "mica-admin promote on the standby" sadmin promote
	expect_out "promote says the epoch" "promoted: epoch $1 at seq"
	i=0
	while [ $i -lt 100 ]; do
		sadmin status 2>/dev/null |
		    grep -q "^role: primary (epoch $1)" && break
		sleep 0.1; i=$((i + 1))
	done
	expect_exit 0 "the promoted server's status" sadmin status
	expect_out "it is the primary at epoch $1" "role: primary (epoch $1)"
}

# subscriber_u1: on the running primary, the account u1 (password file
# $PW) and its certificate $T/u1.crt; its TOTP secret in $T/u1.secret.
subscriber_u1() {
	admin account add u1 --subject "/CN=u1/O=Org" --password-file "$PW" \
	    >"$T/u1.add" 2>&1 || not_ok "account u1"
	sed -n 's/^totp secret[^:]*: //p' "$T/u1.add" >"$T/u1.secret"
	make_csr "$T/u1.key" "$T/u1.csr" "/CN=u1/O=Org"
	admin issue --account u1 --csr "$T/u1.csr" --out "$T/u1.crt" \
	    >/dev/null 2>&1 || not_ok "issue u1"
}

# reissue_u1 PORT [OPTION...]: the real mica reissue of u1's certificate
# at 127.0.0.1:PORT (new key $T/u1.new.key, $T/u1.new.crt), with the
# TOTP code $CODE when set, else the current one.
reissue_u1() {
	code=${CODE:-$(oathtool --totp -b "$(cat "$T/u1.secret")")}
	port=$1; shift
	"$BIN/mica" --server "127.0.0.1:$port" --ca "$P/ca.crt" reissue \
	    --account u1 --lost-cert "$T/u1.crt" --key "$T/u1.new.key" \
	    --out "$T/u1.new.crt" --password-file "$PW" --otp "$code" "$@"
}
