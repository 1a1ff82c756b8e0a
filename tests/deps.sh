#!/bin/sh
# Installs the Debian packages mica needs to build and test, when missing.
# As root it runs apt-get; otherwise it names what is missing and fails.
set -u
PKGS="build-essential pkg-config libssl-dev openssl libevent-dev liblmdb-dev
lmdb-utils libsodium-dev libcmocka-dev oathtool gnutls-bin clang
libclang-rt-14-dev valgrind util-linux procps curl python3"
missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
	echo "mica: missing Debian packages:$missing" >&2
	echo "mica: install them with: sudo apt-get install$missing" >&2
	exit 1
fi
echo "mica: installing Debian packages:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null || { echo "mica: apt-get update failed" >&2; exit 1; }
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null ||
    { echo "mica: apt-get install$missing failed" >&2; exit 1; }
