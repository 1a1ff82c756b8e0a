#!/bin/sh
# Installs the Debian packages mica needs to build and test, when missing.
# As root it runs apt-get; otherwise it names what is missing and fails.
set -u
PKGS="build-essential pkg-config libssl-dev openssl libevent-dev liblmdb-dev
lmdb-utils libsodium-dev libcmocka-dev oathtool gnutls-bin clang
libclang-rt-14-dev valgrind util-linux procps curl python3 faketime golang-go
python3-cryptography mandoc man-db libnss3-tools
libengine-pkcs11-openssl softhsm2 opensc libqrencode-dev git varnish"
# Used by some tests and benchmarks, which skip cleanly without them.
OPTIONAL="nginx-light wrk"
missing=""
optional=""
for p in $OPTIONAL; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
		optional="$optional $p"
	fi
done
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && [ -z "$optional" ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
	[ -z "$missing" ] && exit 0
	echo "mica: missing Debian packages:$missing" >&2
	echo "mica: install them with: sudo apt-get install$missing" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null || { echo "mica: apt-get update failed" >&2; exit 1; }
if [ -n "$missing" ]; then
	echo "mica: installing Debian packages:$missing"
	# shellcheck disable=SC2086
	apt-get install -y -qq --no-install-recommends $missing >/dev/null ||
	    { echo "mica: apt-get install$missing failed" >&2; exit 1; }
fi
if [ -n "$optional" ]; then
	echo "mica: installing optional Debian packages:$optional"
	# shellcheck disable=SC2086
	apt-get install -y -qq --no-install-recommends $optional >/dev/null ||
	    echo "mica: optional packages not installed; their tests will skip"
fi
exit 0
