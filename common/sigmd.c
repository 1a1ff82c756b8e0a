/*
 * sigmd.c - the signing digest for a key (see sigmd.h).
 */
#include <string.h>

#include <openssl/evp.h>

#include "common/sigmd.h"

const char *
sigmd_name(const EVP_PKEY *key)
{
	if (EVP_PKEY_is_a(key, "ED25519") || EVP_PKEY_is_a(key, "ED448"))
		return NULL;
	/* P-384 (384 bits) and anything wider: SHA-384. */
	if (EVP_PKEY_is_a(key, "EC") && EVP_PKEY_get_bits(key) >= 384)
		return "SHA384";
	return "SHA256";
}

const EVP_MD *
sigmd_get(const EVP_PKEY *key)
{
	const char *name = sigmd_name(key);

	if (name == NULL)
		return NULL;
	return strcmp(name, "SHA384") == 0 ? EVP_sha384() : EVP_sha256();
}
