/*
 * keyhash.h - a key's fingerprint for the compromised-key index: SHA-256
 * of its SubjectPublicKeyInfo DER, in one canonical form (EC points
 * uncompressed), so that the same key sent in another encoding hashes
 * the same.
 */
#ifndef MICA_KEYHASH_H
#define MICA_KEYHASH_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#define KEYHASH_LEN	32

/* Hash of key's SPKI.  Returns 1, or 0 (OpenSSL error, logged). */
int	keyhash_pkey(uint8_t out[KEYHASH_LEN], const EVP_PKEY *key);
/* keyhash_pkey, also giving the canonical SPKI DER it hashed in
 * *out_der (OPENSSL_free) when out_der is not NULL. */
int	keyhash_pkey_der(uint8_t out[KEYHASH_LEN], const EVP_PKEY *key,
	    unsigned char **out_der, size_t *out_len);
/* Hash of the key of the certificate in der.  1, or 0 if it does not
 * parse (logged). */
int	keyhash_cert_der(uint8_t out[KEYHASH_LEN], const uint8_t *der,
	    size_t der_len);

#endif
