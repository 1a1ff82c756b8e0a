#!/bin/sh
# t_install.sh - `make install PREFIX=/usr DESTDIR=...` with the programs
# already built: the installed unit names only paths that exist (those
# under PREFIX in the DESTDIR tree, /bin/kill on the host, the CA
# directory the operator creates), no /usr/local is left in it, the man
# pages, README, protocol document, sample config and bash completion are
# installed, and the installed programs run.
. "$(dirname "$0")/lib.sh"

D=$T/root
PREFIX=/usr
# -o all: do not rebuild; install what this run's BIN holds.
if make -s -C "$TOP" -o all install DESTDIR="$D" PREFIX="$PREFIX" \
    BIN="$BIN" >"$T/install.log" 2>&1; then
	ok "make install DESTDIR=... PREFIX=/usr"
else
	not_ok "make install DESTDIR=... PREFIX=/usr"
	sed 's/^/#   /' "$T/install.log" | tail -n 20
	done_testing
fi

UNIT=$D$PREFIX/lib/systemd/system/micad.service
check "unit installed in PREFIX/lib/systemd/system" test -f "$UNIT"
if grep -n /usr/local "$UNIT" >"$T/local.txt"; then
	not_ok "unit still names /usr/local"
	sed 's/^/#   /' "$T/local.txt"
else
	ok "unit names no /usr/local"
fi
expect_eq "ExecStart is PREFIX/bin/micad" \
    "$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$UNIT")" "$PREFIX/bin/micad"

# Every absolute path on the Exec*, Documentation and ReadWritePaths lines.
grep -E '^(Exec[A-Za-z]*|Documentation|ReadWritePaths)=' "$UNIT" |
    sed 's/^[A-Za-z]*=//' | tr ' ' '\n' | grep -E '^(file:|man:|/)' |
    sort -u >"$T/paths.txt"
n=0
while read -r p; do
	n=$((n + 1))
	case "$p" in
	man:*)
		# man:micad(8) -> PREFIX/share/man/man8/micad.8
		name=${p#man:}; sec=${name##*\(}; sec=${sec%\)}; name=${name%\(*}
		f=$D$PREFIX/share/man/man$sec/$name.$sec
		;;
	file:*) f=$D${p#file:} ;;
	/var/lib/mica*)
		# the CA directory: made by the operator (unit header, README)
		ok "unit path $p is the CA directory the operator creates"
		continue
		;;
	"$PREFIX"/*) f=$D$p ;;
	*) f=$p ;;	# /bin/kill: the host's
	esac
	if [ -e "$f" ]; then
		ok "unit path $p exists ($f)"
	else
		not_ok "unit path $p: $f does not exist"
	fi
done <"$T/paths.txt"
[ "$n" -ge 5 ] && ok "unit names $n paths" || not_ok "unit names only $n paths"

for f in bin/micad bin/mica bin/mica-admin share/mica/mica.conf.sample \
    share/doc/mica/README.md share/doc/mica/PROTOCOL.md \
    share/man/man1/mica.1 share/man/man5/mica.conf.5 \
    share/man/man8/micad.8 share/man/man8/mica-admin.8 \
    share/bash-completion/completions/mica \
    share/bash-completion/completions/mica-admin \
    share/bash-completion/completions/micad; do
	check "installed $PREFIX/$f" test -e "$D$PREFIX/$f"
done
for p in micad mica mica-admin; do
	expect_exit 0 "installed $p --version" "$D$PREFIX/bin/$p" --version
	expect_out "$p --version names the program" "$p "
done
m=$(stat -c %a "$UNIT")
expect_eq "unit mode 644" "$m" 644

done_testing
