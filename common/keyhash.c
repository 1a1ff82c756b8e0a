/*
 * keyhash.c - canonical SPKI hashes (see keyhash.h).
 */
#include <limits.h>
#include <stdint.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "common/keyhash.h"
#include "common/log.h"

int
keyhash_pkey(uint8_t out[KEYHASH_LEN], const EVP_PKEY *key)
{
	return keyhash_pkey_der(out, key, NULL, NULL);
}

int
keyhash_pkey_der(uint8_t out[KEYHASH_LEN], const EVP_PKEY *key,
    unsigned char **out_der, size_t *out_len)
{
	EVP_PKEY *dup = NULL;
	unsigned char *der = NULL;
	unsigned int n = 0;
	int len, rc = 0;

	if ((dup = EVP_PKEY_dup((EVP_PKEY *)key)) == NULL) {
		log_ssl("keyhash: key copy");
		goto out;
	}
	/* An EC key decoded from a compressed point would encode as one. */
	if (EVP_PKEY_is_a(dup, "EC") &&
	    !EVP_PKEY_set_utf8_string_param(dup,
	    OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
	    OSSL_PKEY_EC_POINT_CONVERSION_FORMAT_UNCOMPRESSED)) {
		log_ssl("keyhash: EC point format");
		goto out;
	}
	if ((len = i2d_PUBKEY(dup, &der)) <= 0 ||
	    !EVP_Digest(der, (size_t)len, out, &n, EVP_sha256(), NULL) ||
	    n != KEYHASH_LEN) {
		log_ssl("keyhash: SubjectPublicKeyInfo");
		goto out;
	}
	if (out_der != NULL) {
		*out_der = der;
		*out_len = (size_t)len;
		der = NULL;
	}
	rc = 1;
 out:
	OPENSSL_free(der);
	EVP_PKEY_free(dup);
	return rc;
}

int
keyhash_cert_der(uint8_t out[KEYHASH_LEN], const uint8_t *der,
    size_t der_len)
{
	const unsigned char *p = der;
	X509 *x = NULL;
	EVP_PKEY *key;
	int rc = 0;

	if (der_len == 0 || der_len > LONG_MAX ||
	    (x = d2i_X509(NULL, &p, (long)der_len)) == NULL ||
	    (key = X509_get0_pubkey(x)) == NULL) {
		log_ssl("keyhash: certificate does not parse");
		goto out;
	}
	rc = keyhash_pkey(out, key);
 out:
	X509_free(x);
	return rc;
}
