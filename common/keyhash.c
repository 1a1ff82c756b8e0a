/*
 * keyhash.c - canonical SPKI hashes (see keyhash.h).
 */
#include <limits.h>
#include <stdint.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/objects.h>
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

/*
 * The canonical SPKI of a named-curve EC key built from its parts
 * (curve OID, uncompressed point 04||X||Y), as OpenSSL's encoder writes
 * it: encoding the key through OpenSSL 3's encoder lookup costs more
 * than an issuance's signature.  -1 when the key is not such a key (the
 * encoder is used then), 0 on an error, else the DER length with
 * *out (OPENSSL_free).
 */
static int
ec_named_spki(const EVP_PKEY *key, unsigned char **out)
{
	char enc[32], group[64];
	BIGNUM *x = NULL, *y = NULL;
	X509_PUBKEY *xp = NULL;
	ASN1_OBJECT *curve;
	unsigned char *pt = NULL;
	int nid, flen, len = -1;

	if (!EVP_PKEY_is_a(key, "EC") ||
	    !EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_EC_ENCODING,
	    enc, sizeof(enc), NULL) ||
	    strcmp(enc, OSSL_PKEY_EC_ENCODING_GROUP) != 0 ||
	    !EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME,
	    group, sizeof(group), NULL) ||
	    (nid = OBJ_txt2nid(group)) == NID_undef ||
	    (flen = (EVP_PKEY_get_bits(key) + 7) / 8) <= 0 || flen > 66)
		goto out;	/* not a named curve: the encoder decides */
	len = 0;
	if (!EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_EC_PUB_X, &x) ||
	    !EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_EC_PUB_Y, &y) ||
	    (pt = OPENSSL_malloc(1 + 2 * (size_t)flen)) == NULL)
		goto out;
	pt[0] = POINT_CONVERSION_UNCOMPRESSED;
	if (BN_bn2binpad(x, pt + 1, flen) != flen ||
	    BN_bn2binpad(y, pt + 1 + flen, flen) != flen ||
	    (curve = OBJ_nid2obj(nid)) == NULL ||
	    (xp = X509_PUBKEY_new()) == NULL ||
	    !X509_PUBKEY_set0_param(xp, OBJ_nid2obj(NID_X9_62_id_ecPublicKey),
	    V_ASN1_OBJECT, curve, pt, 1 + 2 * flen))
		goto out;
	pt = NULL;	/* xp's now */
	if ((len = i2d_X509_PUBKEY(xp, out)) <= 0)
		len = 0;
 out:
	if (len < 0)
		ERR_clear_error();	/* the failed probes */
	OPENSSL_free(pt);
	X509_PUBKEY_free(xp);
	BN_free(x);
	BN_free(y);
	return len;
}

/* The SPKI by OpenSSL's encoder, EC points uncompressed: the length with
 * *out (OPENSSL_free), or 0. */
static int
encoded_spki(const EVP_PKEY *key, unsigned char **out)
{
	EVP_PKEY *dup;
	int len = 0;

	if ((dup = EVP_PKEY_dup((EVP_PKEY *)key)) == NULL)
		return 0;
	/* An EC key decoded from a compressed point would encode as one. */
	if (!EVP_PKEY_is_a(dup, "EC") ||
	    EVP_PKEY_set_utf8_string_param(dup,
	    OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
	    OSSL_PKEY_EC_POINT_CONVERSION_FORMAT_UNCOMPRESSED))
		len = i2d_PUBKEY(dup, out);
	EVP_PKEY_free(dup);
	return len > 0 ? len : 0;
}

int
keyhash_pkey_der(uint8_t out[KEYHASH_LEN], const EVP_PKEY *key,
    unsigned char **out_der, size_t *out_len)
{
	unsigned char *der = NULL;
	unsigned int n = 0;
	int len, rc = 0;

	if ((len = ec_named_spki(key, &der)) < 0)
		len = encoded_spki(key, &der);
	if (len <= 0 ||
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
