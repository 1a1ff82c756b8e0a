#!/bin/sh
# The admin socket: mode 0600, and the peer's uid is checked with
# SO_PEERCRED even when the file mode would let another user connect.
. "$(dirname "$0")/lib.sh"

D=$T/ca
mica_init "$D" || { not_ok "init"; done_testing; }
start_micad || { not_ok "micad starts"; done_testing; }
expect_eq "admin socket is mode 0600" "$(stat -c %a "$D/admin.sock")" 600
if [ "$(id -u)" -ne 0 ] || ! id nobody >/dev/null 2>&1; then
	ok "# SKIP other-uid checks need root and user nobody"
	done_testing
fi
chmod 711 "$T" "$D"
expect_exit 1 "nobody cannot open the 0600 socket" \
    runuser -u nobody -- "$BIN/mica-admin" --socket "$D/admin.sock" status
expect_out "file mode refusal is reported" "Permission denied"
# Open the file mode up: micad itself must still refuse the uid.
chmod 666 "$D/admin.sock"
expect_exit 1 "micad refuses uid nobody (SO_PEERCRED)" \
    runuser -u nobody -- "$BIN/mica-admin" --socket "$D/admin.sock" status
expect_out "refusal names the uid" "permission denied: uid $(id -u nobody) is not allowed"
grep -q "admin: refused uid=$(id -u nobody)" "$T/micad.log" &&
    ok "refusal is logged" || not_ok "refusal is logged"
# An allowed uid list admits it.
stop_micad
conf_set "$CONF" allowed_uids "$(id -u nobody)"
start_micad || not_ok "micad restarts"
chmod 666 "$D/admin.sock"
expect_exit 0 "a uid listed in allowed_uids is admitted" \
    runuser -u nobody -- "$BIN/mica-admin" --socket "$D/admin.sock" status
stop_micad
# A socket directory writable by others is refused at start-up.
chmod 777 "$D"
"$BIN/micad" -c "$CONF" >"$T/ww.log" 2>&1 &
pid=$!
sleep 1
if kill -0 $pid 2>/dev/null; then
	kill $pid; wait $pid
	not_ok "micad refuses a world-writable socket directory"
else
	wait $pid
	ok "micad refuses a world-writable socket directory"
fi
grep -q "writable by group or others" "$T/ww.log" &&
    ok "the refusal says why" || not_ok "the refusal says why"
chmod 700 "$D"
done_testing
