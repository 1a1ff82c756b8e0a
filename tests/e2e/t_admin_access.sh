#!/bin/sh
# The admin socket: mode 0600 (0660 with [admin] group), and the peer's
# uid is checked with SO_PEERCRED even when the file mode would let
# another user connect.
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
# [admin] group + allowed_uids, no chmod: the socket is 0660 with that
# group; a member listed in allowed_uids is admitted, a member not
# listed is refused by SO_PEERCRED.
stop_micad
groupadd -f mica-admins 2>/dev/null
for u in mica-adm1 mica-adm2; do
	id "$u" >/dev/null 2>&1 || useradd -r -M -s /usr/sbin/nologin \
	    -G mica-admins "$u" 2>/dev/null
done
if ! id -nG mica-adm1 2>/dev/null | grep -qw mica-admins ||
    ! id -nG mica-adm2 2>/dev/null | grep -qw mica-admins; then
	ok "# SKIP group checks: cannot create users in group mica-admins"
else
	A1=$(id -u mica-adm1)
	A2=$(id -u mica-adm2)
	conf_set "$CONF" allowed_uids "$A1"
	sed -i "/^\[admin\]/a group = mica-admins" "$CONF"
	start_micad || not_ok "micad restarts with [admin] group"
	expect_eq "admin socket is mode 0660" \
	    "$(stat -c %a "$D/admin.sock")" 660
	expect_eq "admin socket group is mica-admins" \
	    "$(stat -c %G "$D/admin.sock")" mica-admins
	expect_exit 0 "a uid in allowed_uids and in the group is admitted" \
	    runuser -u mica-adm1 -- "$BIN/mica-admin" --socket \
	    "$D/admin.sock" status
	expect_exit 1 "a group member not in allowed_uids is refused" \
	    runuser -u mica-adm2 -- "$BIN/mica-admin" --socket \
	    "$D/admin.sock" status
	expect_out "refused by SO_PEERCRED, naming the uid" \
	    "permission denied: uid $A2 is not allowed"
	expect_exit 1 "a uid outside the group cannot open the socket" \
	    runuser -u nobody -- "$BIN/mica-admin" --socket "$D/admin.sock" \
	    status
	expect_out "file mode refusal for non-members" "Permission denied"
	stop_micad
	# an unknown group is refused at start
	sed -i "s/^group = mica-admins\$/group = mica-no-such-group/" "$CONF"
	expect_exit 1 "an unknown [admin] group is refused" \
	    timeout 20 "$BIN/micad" -c "$CONF"
	expect_out "the refusal names the group" \
	    "[admin] group: no such group \"mica-no-such-group\""
	sed -i "/^group = mica-no-such-group\$/d" "$CONF"
fi
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
