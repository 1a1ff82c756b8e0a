#!/bin/sh
# t_issue_keys.sh - `mica-admin issue` for every CA key type init makes
# (ec-p256, ec-p384, ed25519, rsa-3072) and CSR keys of several kinds:
# the certificate micad stores and returns (the signer's answer checked
# as DER, the CSR's SubjectPublicKeyInfo copied when it is the key's
# canonical encoding, encoded again when it is not, e.g. a compressed EC
# point) verifies with `openssl verify`, carries the CSR's public key
# (the compressed point kept as sent) and its SubjectKeyIdentifier, and
# the compromised-key index catches the same key sent in the other
# point form.
. "$(dirname "$0")/lib.sh"

K=$T/keys
mkdir -p "$K"
# the subscriber keys, made once
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
    -out "$K/p256.key" 2>/dev/null
openssl ec -in "$K/p256.key" -conv_form compressed \
    -out "$K/p256c.key" 2>/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 \
    -out "$K/p384.key" 2>/dev/null
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 \
    -out "$K/rsa.key" 2>/dev/null
openssl genpkey -algorithm ED25519 -out "$K/ed.key" 2>/dev/null
# the BIT STRING of a CSR's or certificate's SubjectPublicKeyInfo, hex
spki_bits() {
	openssl "$1" -in "$2" -noout -pubkey | openssl pkey -pubin \
	    -outform DER 2>/dev/null | od -An -v -tx1 | tr -d ' \n'
}
ski() { openssl x509 -in "$1" -noout -ext subjectKeyIdentifier | sed -n 2p; }

for kt in ec-p256 ec-p384 ed25519 rsa-3072; do
	mica_init "$T/ca-$kt" --key-type "$kt" ||
	    { not_ok "$kt: mica-admin init"; continue; }
	start_micad || { not_ok "$kt: micad starts"; continue; }
	printf 'pw-keys-123456\n' >"$T/pw"
	check "$kt: account" admin account add keys --subject "/CN=keys" \
	    --password-file "$T/pw"
	for ck in p256 p256c p384 rsa ed; do
		openssl req -new -key "$K/$ck.key" -subj "/CN=keys" \
		    -out "$T/$ck.csr" 2>/dev/null
		expect_exit 0 "$kt CA, $ck CSR: issued" admin issue \
		    --account keys --csr "$T/$ck.csr" --out "$T/$kt-$ck.crt"
		check "$kt CA, $ck CSR: openssl verify" openssl verify \
		    -CAfile "$T/ca-$kt/ca.crt" "$T/$kt-$ck.crt"
		expect_eq "$kt CA, $ck CSR: the CSR's public key, as sent" \
		    "$(spki_bits x509 "$T/$kt-$ck.crt")" \
		    "$(spki_bits req "$T/$ck.csr")"
		check "$kt CA, $ck CSR: a SubjectKeyIdentifier" \
		    test -n "$(ski "$T/$kt-$ck.crt")"
	done
	# the compressed and the uncompressed P-256 CSR carry one key: the
	# compromised-key index hashes it in one canonical form
	expect_exit 0 "$kt: revoke the P-256 certificate for keyCompromise" \
	    admin revoke "$(serial_of "$T/$kt-p256.crt")" \
	    --reason keyCompromise
	expect_exit 1 "$kt: the same key as a compressed point is refused" \
	    admin issue --account keys --csr "$T/p256c.csr" \
	    --out "$T/$kt-again.crt"
	expect_out "$kt: refused as a compromised key" "keyCompromise"
	stop_micad
done
done_testing
