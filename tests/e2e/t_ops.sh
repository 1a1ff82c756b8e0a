#!/bin/sh
# t_ops.sh - running mica for real: notify hook (request.created/approved/
# rejected, cert.revoked, cert.expiring once per threshold across
# restarts, retry after a failure), /metrics, SIGHUP reload, OCSP signer
# and TLS certificate renewal at start, privilege drop (root only).
. "$(dirname "$0")/lib.sh"

# conf_put FILE SECTION KEY VALUE: sets KEY, adding it to [SECTION] if
# the file does not have it yet.
conf_put() {
	if grep -q "^$3[ 	]*=" "$1"; then
		conf_set "$1" "$3" "$4"
	else
		sed -i "/^\\[$2\\]/a $3 = $4" "$1"
	fi
}

# wait_grep PATTERN FILE: up to ~10 s for PATTERN to show up in FILE.
wait_grep() {
	i=0
	while [ $i -lt 100 ]; do
		grep -q -- "$1" "$2" 2>/dev/null && return 0
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}

# ocsp_status CERT: "good", "revoked" or what openssl says.
ocsp_status() {
	openssl ocsp -issuer "$CA" -cert "$1" -url "$URL/ocsp" \
	    -CAfile "$CA" 2>"$T/ocsp.err" | sed -n "s|^$1: ||p"
}

mica_init "$T/ca" || { not_ok "mica-admin init"; done_testing; }
CA=$T/ca/ca.crt
EV=$T/events
cat >"$T/notify.sh" <<EOS
#!/bin/sh
# fails once (first event ever), then appends the JSON to the events file
if [ ! -e "$T/notify.failed-once" ]; then
	touch "$T/notify.failed-once"
	exit 7
fi
cat >>"$EV"
EOS
chmod 755 "$T/notify.sh"
conf_put "$CONF" daemon notify_command "$T/notify.sh"
conf_put "$CONF" daemon notify_retry_delay 1
start_micad || { not_ok "micad starts"; done_testing; }

# ---- notify: cert.revoked from mica-admin revoke (first run fails) ----
printf 'pw-bob-123456\n' >"$T/pw0"
check "account bob" admin account add bob --subject "/CN=bob/O=Org" \
    --password-file "$T/pw0"
make_csr "$T/bob.key" "$T/bob.csr" "/CN=bob/O=Org"
check "issue bob" admin issue --account bob --csr "$T/bob.csr" \
    --out "$T/bob.crt"
BOB=$(serial_of "$T/bob.crt")
expect_eq "OCSP says good before revoke" "$(ocsp_status "$T/bob.crt")" good
check "revoke bob" admin revoke "$BOB" --reason keyCompromise
if wait_grep "\"serial\":\"$BOB\"" "$EV"; then
	ok "cert.revoked delivered after one failed attempt"
else
	not_ok "cert.revoked delivered"
fi
OUT=$(cat "$EV" 2>/dev/null)
expect_out "event name" '"event":"cert.revoked"'
expect_out "reason in event" '"reason":"keyCompromise"'
expect_out "account in event" '"account":"bob"'
OUT=$(cat "$T/micad.log")
expect_out "failed attempt logged" "attempt 1 failed; retry in 1 s"

# ---- notify: reissue request created / approved / rejected ----
PW=$T/pw
echo 'correct-horse-battery' >"$PW"
MICA="$BIN/mica --server 127.0.0.1:$CA_PORT --ca $CA"
enroll() {
	admin account add "$1" --subject "/CN=$1/O=Org" \
	    --password-file "$PW" >"$T/$1.add" 2>&1 || return 1
	sed -n 's/^totp secret[^:]*: //p' "$T/$1.add" >"$T/$1.secret"
	make_csr "$T/$1.key" "$T/$1.csr" "/CN=$1/O=Org"
	admin issue --account "$1" --csr "$T/$1.csr" --out "$T/$1.crt" \
	    >/dev/null 2>&1
}
otp() { oathtool --totp -b "$(cat "$T/$1.secret")"; }
reissue_nowait() {
	$MICA reissue --account "$1" --lost-cert "$T/$1.crt" \
	    --key "$T/$1.new.key" --out "$T/$1.new.crt" \
	    --password-file "$PW" --otp "$(otp "$1")" --no-wait \
	    >"$T/$1.out" 2>&1
	sed -n 's/^request: //p' "$T/$1.out"
}
if enroll alice && enroll carol; then
	AID=$(reissue_nowait alice)
	CID=$(reissue_nowait carol)
	check "approve alice's request" admin approve "$AID"
	check "reject carol's request" admin reject "$CID" --why "not convinced"
	wait_grep '"event":"request.rejected"' "$EV"
	OUT=$(cat "$EV")
	expect_out "request.created for alice" \
	    "{\"event\":\"request.created\""
	expect_out "request.created carries the request id" \
	    "\"request_id\":$AID,"
	expect_out "request.approved with new serial" \
	    '"event":"request.approved"'
	expect_out "request.rejected with why" '"why":"not convinced"'
	check "cert.revoked for the lost certificate" grep -q \
	    "\"event\":\"cert.revoked\".*\"serial\":\"$(serial_of "$T/alice.crt")\"" "$EV"
	if grep -qi 'token\|password\|otp' "$EV"; then
		not_ok "no secrets in events"
	else
		ok "no secrets in events"
	fi
else
	not_ok "enroll for the reissue flow"
fi

# ---- metrics ----
curl -s "$URL/metrics" >"$T/m1"
OUT=$(cat "$T/m1")
expect_out "metrics: OCSP requests by result" \
    'mica_ocsp_requests_total{result="good"} 1'
expect_out "metrics: latency histogram" \
    'mica_ocsp_request_duration_seconds_bucket'
expect_out "metrics: reissue approved" \
    'mica_reissue_requests_total{state="approved"} 1'
expect_out "metrics: reissue rejected" \
    'mica_reissue_requests_total{state="rejected"} 1'
expect_out "metrics: CRL number" 'mica_crl_number{kind="full"}'
expect_out "metrics: delta CRL builds" 'mica_crl_delta_builds_total'
check "metrics: notify delivered counted" grep -q \
    '^mica_notify_delivered_total [1-9]' "$T/m1"
expect_exit 0 "OCSP query revoked" ocsp_status "$T/bob.crt"
expect_eq "bob is revoked in OCSP" "$(ocsp_status "$T/bob.crt")" revoked
curl -s "$URL/metrics" >"$T/m2"
OUT=$(cat "$T/m2")
expect_out "metrics: revoked results counted" \
    'mica_ocsp_requests_total{result="revoked"} 2'
$BIN/mica --server 127.0.0.1:$CA_PORT --ca "$CA" reissue --account alice \
    --serial 01 --subject /CN=alice/O=Org --key "$T/x.key" --out "$T/x.crt" \
    --password-file "$T/pw0" --otp 000000 >/dev/null 2>&1
# the store gauges refresh every 5 s: poll (bounded) until they show the
# failure instead of sleeping a fixed time
i=0
while curl -s "$URL/metrics" >"$T/m3" &&
    ! grep -q '^mica_auth_failures_total 1$' "$T/m3" && [ $i -lt 150 ]; do
	sleep 0.1; i=$((i + 1))
done
OUT=$(cat "$T/m3")
expect_out "metrics: store gauges refreshed" "mica_store_certs_revoked 2"
expect_out "metrics: auth failures from the audit trail" \
    "mica_auth_failures_total 1"
expect_out "metrics: logins from the audit trail" "mica_auth_logins_total 2"

# ---- SIGHUP: log level and policy ----
conf_set "$CONF" default_days 10
conf_set "$CONF" log_level debug
conf_set "$CONF" review auto
kill -HUP "$MICAD_PID"
wait_grep "SIGHUP: reloaded" "$T/micad.log"
OUT=$(cat "$T/micad.log")
expect_out "SIGHUP names what was reloaded" \
    "reloaded [daemon] log_level=debug"
expect_out "SIGHUP names the new default_days" "default_days=10"
expect_out "SIGHUP names the new review policy" "[policy] review=auto"
expect_out "SIGHUP names what was not reloaded" \
    "not reloaded (restart needed): listeners"
make_csr "$T/dan.key" "$T/dan.csr" "/CN=bob/O=Org"
check "issue after SIGHUP" admin issue --account bob --csr "$T/dan.csr" \
    --out "$T/dan.crt"
NA=$(date -d "$(openssl x509 -in "$T/dan.crt" -noout -enddate | \
    sed 's/notAfter=//')" +%s)
expect_eq "new default_days applies (10 days)" \
    "$(( (NA - $(date +%s) + 3600) / 86400 ))" 10
conf_set "$CONF" log_level info
if enroll zed; then
	ZID=$(reissue_nowait zed)
	wait_grep "\"event\":\"request.approved\".*\"request_id\":$ZID," "$EV"
	check "review=auto applies after SIGHUP" grep -q \
	    "\"event\":\"request.approved\".*\"request_id\":$ZID,.*\"actor\":\"auto\"" \
	    "$EV"
else
	not_ok "enroll zed"
fi

# ---- expiry watch: a 5-day certificate ----
make_csr "$T/eve.key" "$T/eve.csr" "/CN=bob/O=Org"
check "issue a 5-day certificate" admin issue --account bob \
    --csr "$T/eve.csr" --days 5 --out "$T/eve.crt"
EVE=$(serial_of "$T/eve.crt")
stop_micad
start_micad || not_ok "micad restarts"
if wait_grep "\"event\":\"cert.expiring\".*\"serial\":\"$EVE\"" "$EV"; then
	ok "cert.expiring for the 5-day certificate"
else
	not_ok "cert.expiring for the 5-day certificate"
fi
expect_eq "one event only, for the nearest threshold (7)" \
    "$(grep -c "\"event\":\"cert.expiring\".*\"serial\":\"$EVE\"" "$EV")" 1
check "threshold 7 in the event" grep -q \
    "\"serial\":\"$EVE\".*\"threshold_days\":7" "$EV"
check "a 5-day certificate has days_left 5 (not 4)" grep -q \
    "\"serial\":\"$EVE\".*\"days_left\":5," "$EV"
# the same expiry pass: it may come after eve's (serial order)
if wait_grep "\"serial\":\"$(serial_of "$T/dan.crt")\".*\"threshold_days\":30" \
    "$EV"; then
	ok "dan's 10-day cert: threshold 30"
else
	not_ok "dan's 10-day cert: threshold 30"
fi
check "revoked certificates are not watched" sh -c \
    "! grep -q '\"event\":\"cert.expiring\".*\"serial\":\"$BOB\"' '$EV'"
stop_micad
start_micad || not_ok "micad restarts again"
sleep 1
expect_eq "not emitted again after a restart" \
    "$(grep -c "\"event\":\"cert.expiring\".*\"serial\":\"$EVE\"" "$EV")" 1
stop_micad

# ---- renewal of the OCSP signer and TLS certificate at start ----
OLD_OCSP=$(serial_of "$T/ca/ocsp.crt")
OLD_TLS=$(serial_of "$T/ca/tls.crt")
cp "$T/ca/private/ocsp.key" "$T/old-ocsp.key"
cp "$T/ca/ocsp.crt" "$T/old-ocsp.crt"
conf_put "$CONF" ca renew_before_days 400
start_micad || not_ok "micad starts and renews"
NEW_OCSP=$(serial_of "$T/ca/ocsp.crt")
check "ocsp.crt changed" test "$OLD_OCSP" != "$NEW_OCSP"
check "tls.crt changed" test "$OLD_TLS" != "$(serial_of "$T/ca/tls.crt")"
check "new OCSP key" sh -c "! cmp -s '$T/old-ocsp.key' '$T/ca/private/ocsp.key'"
expect_eq "new key mode 0600" "$(stat -c %a "$T/ca/private/ocsp.key")" 600
check "new OCSP signer verifies against the CA" openssl verify \
    -CAfile "$CA" -purpose ocsphelper "$T/ca/ocsp.crt"
check "OCSPSigning EKU kept" sh -c "openssl x509 -in '$T/ca/ocsp.crt' \
    -noout -ext extendedKeyUsage | grep -q 'OCSP Signing'"
openssl ocsp -issuer "$CA" -cert "$T/dan.crt" -url "$URL/ocsp" \
    -respout "$T/resp.der" -noverify >/dev/null 2>&1
expect_exit 0 "OCSP response verifies with the new signer only" \
    openssl ocsp -respin "$T/resp.der" -CAfile "$CA" -no_intern \
    -verify_other "$T/ca/ocsp.crt"
expect_out "Response verify OK" "Response verify OK"
expect_exit 1 "and not with the old signer" \
    openssl ocsp -respin "$T/resp.der" -CAfile "$CA" -no_intern \
    -verify_other "$T/old-ocsp.crt"
expect_exit 0 "new OCSP signer recorded in the store" admin show "$NEW_OCSP"
expect_out "account (ca)" "(ca)"
expect_exit 0 "old OCSP signer linked" admin show "$OLD_OCSP"
expect_out "replaced by the new one" "replaced by: $NEW_OCSP"
check "TLS listener serves the new certificate" sh -c \
    "openssl s_client -connect 127.0.0.1:$CA_PORT -CAfile '$CA' \
    </dev/null 2>/dev/null | openssl x509 -noout -serial | \
    grep -q '$(serial_of "$T/ca/tls.crt")'"
stop_micad
conf_set "$CONF" renew_before_days 0
start_micad || not_ok "micad starts (no renewal due)"
expect_eq "no renewal when not due" "$(serial_of "$T/ca/ocsp.crt")" \
    "$NEW_OCSP"
stop_micad

# ---- a renewal interrupted between its file operations ----
# The renewed pair and the pre-renewal pair both match and are CA-signed.
cp "$T/ca/private/ocsp.key" "$T/ren-ocsp.key"
cp "$T/ca/ocsp.crt" "$T/ren-ocsp.crt"
# crash before the renames: key.new and cert.new, matching: installed
cp "$T/old-ocsp.key" "$T/ca/private/ocsp.key.new"
cp "$T/old-ocsp.crt" "$T/ca/ocsp.crt.new"
chmod 600 "$T/ca/private/ocsp.key.new"
start_micad || not_ok "micad starts with a leftover matching pair"
expect_eq "leftover pair installed" "$(serial_of "$T/ca/ocsp.crt")" \
    "$OLD_OCSP"
check "leftover key installed" cmp "$T/old-ocsp.key" "$T/ca/private/ocsp.key"
check "no .new files left" sh -c "! ls '$T/ca/ocsp.crt.new' \
    '$T/ca/private/ocsp.key.new' 2>/dev/null"
check "finishing is logged" grep -q "OCSP signer: finished an interrupted \
renewal: $T/ca/private/ocsp.key.new and $T/ca/ocsp.crt.new installed" \
    "$T/micad.log"
stop_micad
# crash between the renames: new key in place, cert.new left: installed
cp "$T/ren-ocsp.key" "$T/ca/private/ocsp.key"
cp "$T/ren-ocsp.crt" "$T/ca/ocsp.crt.new"
start_micad || not_ok "micad starts with the key renamed, cert.new left"
expect_eq "cert.new installed" "$(serial_of "$T/ca/ocsp.crt")" "$NEW_OCSP"
check "cert.new gone" test ! -e "$T/ca/ocsp.crt.new"
stop_micad
# a pair that does not match: discarded, current files kept
cp "$T/old-ocsp.key" "$T/ca/private/ocsp.key.new"
chmod 600 "$T/ca/private/ocsp.key.new"
cp "$T/ren-ocsp.crt" "$T/ca/ocsp.crt.new"
start_micad || not_ok "micad starts with a mismatched leftover pair"
expect_eq "current OCSP signer kept" "$(serial_of "$T/ca/ocsp.crt")" \
    "$NEW_OCSP"
check "current key kept" cmp "$T/ren-ocsp.key" "$T/ca/private/ocsp.key"
check "mismatched leftovers deleted" sh -c "! ls '$T/ca/ocsp.crt.new' \
    '$T/ca/private/ocsp.key.new' 2>/dev/null"
check "discarding is logged" grep -q "OCSP signer: discarded the leftovers" \
    "$T/micad.log"
stop_micad

# ---- renewal while running: no restart needed ----
conf_put "$CONF" daemon expiry_interval 10
start_micad || not_ok "micad starts (renewal check every 10 s)"
RUN_OCSP=$(serial_of "$T/ca/ocsp.crt")
RUN_TLS=$(serial_of "$T/ca/tls.crt")
cp "$T/ca/ocsp.crt" "$T/run-old-ocsp.crt"
conf_set "$CONF" renew_before_days 400
kill -HUP "$MICAD_PID"
i=0
while [ "$(serial_of "$T/ca/ocsp.crt")" = "$RUN_OCSP" ] && [ $i -lt 300 ]; do
	sleep 0.1; i=$((i + 1))
done
conf_set "$CONF" renew_before_days 0
kill -HUP "$MICAD_PID"
sleep 0.5
check "ocsp.crt renewed while running" \
    test "$(serial_of "$T/ca/ocsp.crt")" != "$RUN_OCSP"
check "tls.crt renewed while running" \
    test "$(serial_of "$T/ca/tls.crt")" != "$RUN_TLS"
check "the responder took up the new signer" \
    grep -q "ocsp: signer replaced" "$T/micad.log"
check "the TLS listener reloaded" \
    grep -q "TLS certificate reloaded" "$T/micad.log"
openssl ocsp -issuer "$CA" -cert "$T/dan.crt" -url "$URL/ocsp" \
    -respout "$T/resp2.der" -noverify >/dev/null 2>&1
expect_exit 0 "OCSP answers verify with the renewed signer, same micad" \
    openssl ocsp -respin "$T/resp2.der" -CAfile "$CA" -no_intern \
    -verify_other "$T/ca/ocsp.crt"
expect_exit 1 "and not with the signer it started with" \
    openssl ocsp -respin "$T/resp2.der" -CAfile "$CA" -no_intern \
    -verify_other "$T/run-old-ocsp.crt"
check "new TLS connections get the renewed certificate" sh -c \
    "openssl s_client -connect 127.0.0.1:$CA_PORT -CAfile '$CA' \
    </dev/null 2>/dev/null | openssl x509 -noout -serial | \
    grep -q '$(serial_of "$T/ca/tls.crt")'"
stop_micad

# ---- privilege drop (root only) ----
if [ "$(id -u)" -ne 0 ]; then
	echo "ok - # SKIP privilege drop needs root"
	done_testing
fi
id mica-test >/dev/null 2>&1 || useradd -r -M -s /usr/sbin/nologin \
    mica-test 2>/dev/null
if ! id mica-test >/dev/null 2>&1; then
	echo "ok - # SKIP privilege drop: cannot create user mica-test"
	done_testing
fi
conf_put "$CONF" daemon user mica-test
expect_exit 1 "refuses key files owned by another user" \
    "$BIN/micad" -c "$CONF" -n
expect_out "names the key file and owner" "owned by root (uid 0), but [daemon] user is mica-test"
chown -R mica-test "$T/ca"
chmod 755 "$T"
: >"$T/micad.log"
start_micad || not_ok "micad starts as root and drops to mica-test"
MT_UID=$(id -u mica-test)
expect_eq "every thread runs as mica-test (real, effective, saved, fs uid)" \
    "$(cat /proc/$MICAD_PID/task/*/status | awk -v u="$MT_UID" '
    /^Uid:/ { n++; if ($2 == u && $3 == u && $4 == u && $5 == u) k++ }
    END { print (n >= 4 && n == k) }')" 1
# line numbers in the log: the drop comes before any serving thread
DROP_L=$(grep -n "running as user mica-test" "$T/micad.log" | head -n 1 | cut -d: -f1)
HTTP_L=$(grep -n "ocsp http: listening" "$T/micad.log" | head -n 1 | cut -d: -f1)
# the first CRLs are built in the background (slow under valgrind)
wait_log "crl: full number=" || not_ok "the first full CRL is built"
CRL_L=$(grep -n "crl: full number=" "$T/micad.log" | head -n 1 | cut -d: -f1)
check "privileges dropped before the HTTP threads start" \
    test "${DROP_L:-0}" -gt 0 -a "${DROP_L:-0}" -lt "${HTTP_L:-0}"
check "privileges dropped before the first CRL is built" \
    test "${DROP_L:-0}" -gt 0 -a "${DROP_L:-0}" -lt "${CRL_L:-0}"
check "no SIGHUP warning when mica-test can read the config" sh -c \
    "! grep -q 'SIGHUP will not be able to reload' '$T/micad.log'"
U=$(ps -o user= -p "$MICAD_PID" | tr -d ' ')
expect_eq "micad runs as mica-test" "$U" mica-test
expect_eq "real, effective, saved uid dropped" \
    "$(awk '/^Uid:/ {print ($2 == $3 && $3 == $4 && $4 == $5)}' /proc/$MICAD_PID/status)" 1
check "no supplementary root group" sh -c \
    "! awk '/^Groups:/' /proc/$MICAD_PID/status | grep -qw 0"
expect_eq "admin socket owned by mica-test" \
    "$(stat -c %U "$T/ca/admin.sock")" mica-test
check "mica-test can use the admin socket" su -s /bin/sh mica-test -c \
    "'$BIN/mica-admin' -c '$CONF' status"
check "root still can" admin status
OUT=$(cat "$T/micad.log")
expect_out "drop logged" "running as user mica-test"
stop_micad
# a root-only config: warned at start, SIGHUP says why it cannot reload
chown root "$CONF"
: >"$T/micad.log"
start_micad || not_ok "micad starts with a root-only config"
check "warns at start that SIGHUP cannot reload" grep -q \
    "SIGHUP will not be able to reload: $CONF is not readable by mica-test" \
    "$T/micad.log"
kill -HUP "$MICAD_PID"
check "SIGHUP names the I/O error, not a syntax error" wait_grep \
    "SIGHUP: configuration not reloaded: cannot read $CONF: Permission denied" \
    "$T/micad.log"
stop_micad
chown mica-test "$CONF"
chmod 640 "$T/ca/private/tls.key"
expect_exit 1 "group-readable key refused" "$BIN/micad" -c "$CONF" -n
expect_out "mode named" "mode 640"
chmod 600 "$T/ca/private/tls.key"
# micad -n as root on the service user's CA directory, without [daemon]
# user (as an operator checks the unit's set-up): the advice is to run
# as that user or set [daemon] user, never to chown the keys to root.
conf_set "$CONF" user ""
expect_exit 1 "micad -n as root on mica-test's keys refused" \
    "$BIN/micad" -c "$CONF" -n
expect_out "names the owner" "owned by mica-test (uid $MT_UID), but micad runs as root (uid 0)"
expect_out "says to run as the owner" "run micad as mica-test (runuser -u mica-test -- micad"
expect_out "or to set [daemon] user" "[daemon] user = mica-test"
expect_out "warns against chown to root" "do not chown the keys to root"
check "no advice to chown to the user micad runs as" sh -c \
    "! printf '%s' \"\$1\" | grep -q 'chown it to the user micad runs as'" \
    sh "$OUT"
expect_exit 0 "the same check as mica-test passes" \
    runuser -u mica-test -- "$BIN/micad" -c "$CONF" -n
expect_out "configuration OK" "configuration OK"
conf_set "$CONF" user mica-test
expect_exit 0 "the same check as root with [daemon] user passes" \
    "$BIN/micad" -c "$CONF" -n
chown -R root "$T/ca"
done_testing
