/*
 * casign_csr.c - CSR checks (RFC 2986) and subject names as text.
 */
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1t.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>

#include "common/log.h"
#include "ca/ca.h"
#include "common/bytes.h"

#define RSA_MIN_BITS	2048
#define RSA_MAX_BITS	8192

/* ---- subject text ---- */

/*
 * Takes one "type=value" attribute from *sp up to an unescaped separator
 * (any char in seps) or the end, unescaping the value into val.  Sets
 * *out_sep to the separator found ('\0' at the end).
 */
static int
take_ava(const char **sp, const char *seps, char *type, size_t type_len,
    char *val, size_t val_len, char *out_sep, char *err, size_t err_len)
{
	const char *s = *sp;
	size_t n = 0;
	int h1, h2;

	while (*s == ' ')
		s++;
	while (*s != '\0' && *s != '=' && strchr(seps, *s) == NULL) {
		if (n + 1 >= type_len)
			goto bad;
		type[n++] = *s++;
	}
	while (n > 0 && type[n - 1] == ' ')
		n--;
	type[n] = '\0';
	if (*s != '=' || n == 0)
		goto bad;
	s++;
	n = 0;
	while (*s != '\0' && strchr(seps, *s) == NULL) {
		char c = *s++;

		if (c == '\\') {
			if (*s == '\0')
				goto bad;
			if ((h1 = hex_digit(s[0])) >= 0 && s[1] != '\0' &&
			    (h2 = hex_digit(s[1])) >= 0) {
				c = (char)(h1 << 4 | h2);
				s += 2;
			} else
				c = *s++;
		}
		if (n + 1 >= val_len)
			goto bad;
		val[n++] = c;
	}
	val[n] = '\0';
	*out_sep = *s;
	*sp = *s ? s + 1 : s;
	return 1;
 bad:
	snprintf(err, err_len, "subject: expected TYPE=VALUE near \"%.40s\"",
	    *sp);
	return 0;
}

X509_NAME *
ca_subject_parse(const char *text, char *err, size_t err_len)
{
	X509_NAME *name = NULL, *ret = NULL;
	const char *s, *seps;
	char type[64], val[CA_SUBJECT_MAX], sep = '\0';
	int slash, set = 0, count = 0;

	if (text == NULL || *text == '\0') {
		snprintf(err, err_len, "subject: empty");
		goto out;
	}
	if (strlen(text) >= CA_SUBJECT_MAX) {
		snprintf(err, err_len, "subject: longer than %d characters",
		    CA_SUBJECT_MAX - 1);
		goto out;
	}
	if ((name = X509_NAME_new()) == NULL)
		fatalx("X509_NAME_new");
	slash = text[0] == '/';
	s = slash ? text + 1 : text;
	seps = slash ? "/+" : ",+";
	while (*s != '\0') {
		if (!take_ava(&s, seps, type, sizeof(type), val, sizeof(val),
		    &sep, err, err_len))
			goto out;
		if (OBJ_txt2nid(type) == NID_undef) {
			snprintf(err, err_len, "subject: unknown attribute "
			    "type \"%s\"", type);
			goto out;
		}
		if (val[0] == '\0') {
			snprintf(err, err_len, "subject: empty value for %s",
			    type);
			goto out;
		}
		/*
		 * Slash form: append in order (set -1 joins the RDN before).
		 * RFC 2253: last RDN first, so each new RDN goes in front
		 * (loc 0; set 1 joins the RDN now at 0).
		 */
		if (!X509_NAME_add_entry_by_txt(name, type, MBSTRING_UTF8,
		    (const unsigned char *)val, -1, slash ? -1 : 0,
		    set ? (slash ? -1 : 1) : 0)) {
			ERR_clear_error();
			snprintf(err, err_len, "subject: bad value for %s",
			    type);
			goto out;
		}
		count++;
		set = sep == '+';
		if (set && *s == '\0') {
			snprintf(err, err_len, "subject: '+' at the end");
			goto out;
		}
	}
	if (count == 0) {
		snprintf(err, err_len, "subject: no attributes");
		goto out;
	}
	ret = name;
	name = NULL;
 out:
	X509_NAME_free(name);
	return ret;
}

int
ca_name_print(char *out, size_t out_len, const X509_NAME *name)
{
	BIO *mem;
	char *data;
	long len;
	int rc = 0;
	size_t n;

	if (out_len == 0)
		return 0;
	out[0] = '\0';
	if ((mem = BIO_new(BIO_s_mem())) == NULL)
		fatalx("BIO_new");
	if (X509_NAME_print_ex(mem, name, 0,
	    XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) < 0) {
		ERR_clear_error();
		goto out;
	}
	len = BIO_get_mem_data(mem, &data);
	if (len < 0)
		goto out;
	n = (size_t)len;
	rc = n < out_len;
	if (n >= out_len)
		n = out_len - 1;
	memcpy(out, data, n);
	out[n] = '\0';
 out:
	BIO_free(mem);
	return rc;
}

/* ---- CSR ---- */

/* RSA 2048..8192, EC P-256/P-384, Ed25519; everything else refused. */
static int
key_policy(EVP_PKEY *key, char *err, size_t err_len)
{
	char group[64];
	size_t glen = 0;
	int bits;

	switch (EVP_PKEY_get_base_id(key)) {
	case EVP_PKEY_RSA:
		bits = EVP_PKEY_get_bits(key);
		if (bits < RSA_MIN_BITS) {
			snprintf(err, err_len, "CSR: key: RSA %d bits is below "
			    "the %d-bit minimum", bits, RSA_MIN_BITS);
			return 0;
		}
		if (bits > RSA_MAX_BITS) {
			snprintf(err, err_len, "CSR: key: RSA %d bits is above "
			    "the %d-bit maximum", bits, RSA_MAX_BITS);
			return 0;
		}
		return 1;
	case EVP_PKEY_EC:
		if (!EVP_PKEY_get_group_name(key, group, sizeof(group),
		    &glen)) {
			ERR_clear_error();
			snprintf(err, err_len, "CSR: key: RFC 5480 section "
			    "2.1.1: EC key without a named curve");
			return 0;
		}
		if (strcmp(group, "prime256v1") == 0 ||
		    strcmp(group, "secp384r1") == 0)
			return 1;
		snprintf(err, err_len, "CSR: key: EC curve %s is not allowed "
		    "(P-256 or P-384 only)", group);
		return 0;
	case EVP_PKEY_ED25519:
		return 1;
	default:
		snprintf(err, err_len, "CSR: key: type %s is not allowed (RSA, "
		    "EC P-256/P-384 or Ed25519 only)", OBJ_nid2sn(
		    EVP_PKEY_get_base_id(key)));
		return 0;
	}
}

/*
 * The CertificationRequest (RFC 2986 section 4) decoded with our own
 * ASN.1 items rather than d2i_X509_REQ: the same structure and the same
 * OpenSSL items for its parts (INTEGER, Name, AlgorithmIdentifier, BIT
 * STRING, Attribute), so the same bytes parse or fail as before, but the
 * subjectPKInfo is kept as its two parts instead of going through
 * OpenSSL 3's key decoder (a decoder lookup per request, the largest
 * cost of an issuance in micad).  The key is then built from its parts
 * (csr_key) and the signature checked over the
 * CertificationRequestInfo bytes as received (its encoding is saved).
 */
typedef struct {
	X509_ALGOR		*algor;
	ASN1_BIT_STRING		*key;
	ASN1_ENCODING		 enc;	/* the SPKI's bytes as received */
} CSR_SPKI;

typedef struct {
	ASN1_INTEGER		*version;
	X509_NAME		*subject;
	CSR_SPKI		*spki;
	STACK_OF(X509_ATTRIBUTE) *attributes;
	ASN1_ENCODING		 enc;	/* the signed bytes as received */
} CSR_INFO;

typedef struct {
	CSR_INFO		*info;
	X509_ALGOR		*sig_alg;
	ASN1_BIT_STRING		*signature;
} CSR_REQ;

/* RFC 8017 A.1.1 RSAPublicKey, with OpenSSL's BIGNUM item as its RSA
 * item has */
typedef struct {
	BIGNUM			*n;
	BIGNUM			*e;
} CSR_RSAPUB;

ASN1_SEQUENCE_enc(CSR_SPKI, enc, 0) = {
	ASN1_SIMPLE(CSR_SPKI, algor, X509_ALGOR),
	ASN1_SIMPLE(CSR_SPKI, key, ASN1_BIT_STRING)
} static_ASN1_SEQUENCE_END_ref(CSR_SPKI, CSR_SPKI)

/* attributes OPTIONAL as in OpenSSL's X509_REQ_INFO ("gets round
 * invalid encodings"): what d2i_X509_REQ accepts is accepted */
ASN1_SEQUENCE_enc(CSR_INFO, enc, 0) = {
	ASN1_SIMPLE(CSR_INFO, version, ASN1_INTEGER),
	ASN1_SIMPLE(CSR_INFO, subject, X509_NAME),
	ASN1_SIMPLE(CSR_INFO, spki, CSR_SPKI),
	ASN1_IMP_SET_OF_OPT(CSR_INFO, attributes, X509_ATTRIBUTE, 0)
} static_ASN1_SEQUENCE_END_ref(CSR_INFO, CSR_INFO)

ASN1_SEQUENCE(CSR_REQ) = {
	ASN1_SIMPLE(CSR_REQ, info, CSR_INFO),
	ASN1_SIMPLE(CSR_REQ, sig_alg, X509_ALGOR),
	ASN1_SIMPLE(CSR_REQ, signature, ASN1_BIT_STRING)
} static_ASN1_SEQUENCE_END(CSR_REQ)

ASN1_SEQUENCE(CSR_RSAPUB) = {
	ASN1_SIMPLE(CSR_RSAPUB, n, BIGNUM),
	ASN1_SIMPLE(CSR_RSAPUB, e, BIGNUM)
} static_ASN1_SEQUENCE_END(CSR_RSAPUB)

struct ca_csr {
	CSR_REQ		*req;
	EVP_PKEY	*key;
	int		 spki_canon;	/* the SPKI bytes are the key's
					 * canonical SPKI (keyhash.h) */
};

/* DER header of tag and length n into h (at least 4 bytes); its length */
static size_t
der_head(uint8_t *h, uint8_t tag, size_t n)
{
	size_t i = 0;

	h[i++] = tag;
	if (n < 0x80)
		h[i++] = (uint8_t)n;
	else if (n < 0x100) {
		h[i++] = 0x81;
		h[i++] = (uint8_t)n;
	} else {
		h[i++] = 0x82;
		h[i++] = (uint8_t)(n >> 8);
		h[i++] = (uint8_t)n;
	}
	return i;
}

/*
 * 1 when spki (as received) is SEQUENCE { alg (its DER, given), BIT
 * STRING { 0 unused bits, key } } in DER: the SubjectPublicKeyInfo
 * OpenSSL writes for the key built from these parts, which keyhash.c
 * hashes (an EC point uncompressed with its named curve, RSA with NULL
 * parameters, Ed25519 without).
 */
static int
spki_is(const ASN1_ENCODING *spki, const uint8_t *alg, size_t alg_len,
    const uint8_t *key, size_t key_len)
{
	uint8_t h[8];
	size_t hl, bl, off;
	const uint8_t *p = spki->enc;

	if (p == NULL || key_len > 0xfff0)
		return 0;
	bl = der_head(h, 0x03, key_len + 1);	/* BIT STRING header */
	hl = der_head(h, 0x30, alg_len + bl + key_len + 1);
	if ((size_t)spki->len != hl + alg_len + bl + key_len + 1 ||
	    memcmp(p, h, hl) != 0)
		return 0;
	off = hl;
	if (memcmp(p + off, alg, alg_len) != 0)
		return 0;
	off += alg_len;
	(void)der_head(h, 0x03, key_len + 1);
	if (memcmp(p + off, h, bl) != 0 || p[off + bl] != 0)
		return 0;
	off += bl + 1;
	return memcmp(p + off, key, key_len) == 0;
}

/*
 * RFC 5480 section 2.1.1: an EC subjectPublicKeyInfo names its curve
 * (namedCurve OID).  specifiedCurve (explicit parameters) and
 * implicitCurve are not allowed: relying parties refuse them (OpenSSL
 * verify: error 94) and explicit parameters have hidden weak curves.
 */
static int
ec_named_curve(const CSR_SPKI *spki, char *err, size_t err_len)
{
	int ptype = V_ASN1_UNDEF;

	if (OBJ_obj2nid(spki->algor->algorithm) != NID_X9_62_id_ecPublicKey)
		return 1;
	X509_ALGOR_get0(NULL, &ptype, NULL, spki->algor);
	if (ptype != V_ASN1_OBJECT) {
		snprintf(err, err_len, "CSR: key: RFC 5480 section 2.1.1: EC "
		    "parameters must be a named curve, not explicit "
		    "parameters");
		return 0;
	}
	return 1;
}

/* EVP_PKEY_fromdata of a key type; NULL (errors cleared) when the
 * provider does not take the parts. */
static EVP_PKEY *
key_fromdata(const char *type, OSSL_PARAM *params)
{
	EVP_PKEY_CTX *ctx;
	EVP_PKEY *key = NULL;

	if ((ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL)) == NULL ||
	    EVP_PKEY_fromdata_init(ctx) <= 0 ||
	    EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params) <= 0) {
		EVP_PKEY_free(key);
		key = NULL;
	}
	EVP_PKEY_CTX_free(ctx);
	return key;
}

/*
 * The curves' parameters as keys without a public key, made once: a
 * copy of one takes the point (EC_KEY_oct2key, as OpenSSL's decoder
 * does) for a quarter of the cost of EVP_PKEY_fromdata, which builds
 * the curve again each time.
 */
static pthread_once_t ec_tmpl_once = PTHREAD_ONCE_INIT;
static EVP_PKEY *ec_tmpl_256, *ec_tmpl_384;

static EVP_PKEY *
ec_params_key(const char *group)
{
	OSSL_PARAM params[2];
	EVP_PKEY_CTX *ctx;
	EVP_PKEY *key = NULL;

	params[0] = OSSL_PARAM_construct_utf8_string(
	    OSSL_PKEY_PARAM_GROUP_NAME, (char *)group, 0);
	params[1] = OSSL_PARAM_construct_end();
	if ((ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) == NULL ||
	    EVP_PKEY_fromdata_init(ctx) <= 0 ||
	    EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_KEY_PARAMETERS,
	    params) <= 0) {
		EVP_PKEY_free(key);
		key = NULL;
		ERR_clear_error();	/* the point goes to the decoder */
	}
	EVP_PKEY_CTX_free(ctx);
	return key;
}

static void
ec_tmpl_init(void)
{
	ec_tmpl_256 = ec_params_key("prime256v1");
	ec_tmpl_384 = ec_params_key("secp384r1");
}

/* A named-curve P-256/P-384 key with an uncompressed point. */
static EVP_PKEY *
ec_key(const CSR_SPKI *spki, const unsigned char *pk, int pk_len,
    int *canon)
{
	/* AlgorithmIdentifier { id-ecPublicKey, prime256v1 / secp384r1 } */
	static const uint8_t alg256[] = { 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86,
	    0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce,
	    0x3d, 0x03, 0x01, 0x07 };
	static const uint8_t alg384[] = { 0x30, 0x10, 0x06, 0x07, 0x2a, 0x86,
	    0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x05, 0x2b, 0x81, 0x04, 0x00,
	    0x22 };
	const uint8_t *alg;
	size_t alg_len;
	EVP_PKEY *key;
	const ASN1_OBJECT *curve;
	const void *pval = NULL;
	EVP_PKEY *tmpl;
	int ptype, flen;

	X509_ALGOR_get0(NULL, &ptype, &pval, spki->algor);
	if (ptype != V_ASN1_OBJECT || (curve = pval) == NULL)
		return NULL;
	(void)pthread_once(&ec_tmpl_once, ec_tmpl_init);
	switch (OBJ_obj2nid(curve)) {
	case NID_X9_62_prime256v1:
		tmpl = ec_tmpl_256;
		flen = 32;
		alg = alg256;
		alg_len = sizeof(alg256);
		break;
	case NID_secp384r1:
		tmpl = ec_tmpl_384;
		flen = 48;
		alg = alg384;
		alg_len = sizeof(alg384);
		break;
	default:
		return NULL;
	}
	/* other point forms keep their form in the key decoded: theirs */
	if (pk_len != 1 + 2 * flen || pk[0] != POINT_CONVERSION_UNCOMPRESSED)
		return NULL;
	if (tmpl == NULL || (key = EVP_PKEY_dup(tmpl)) == NULL)
		return NULL;
	if (!EVP_PKEY_set1_encoded_public_key(key, pk, (size_t)pk_len)) {
		EVP_PKEY_free(key);
		return NULL;	/* e.g. not on the curve: the decoder says */
	}
	*canon = spki_is(&spki->enc, alg, alg_len, pk, (size_t)pk_len);
	return key;
}

/* rsaEncryption with NULL or absent parameters, an RSAPublicKey
 * exactly filling the BIT STRING, a modulus of 2048..8192 bits. */
static EVP_PKEY *
rsa_key(const CSR_SPKI *spki, const unsigned char *pk, int pk_len,
    int *canon)
{
	/* AlgorithmIdentifier { rsaEncryption, NULL } */
	static const uint8_t alg[] = { 0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86,
	    0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00 };
	unsigned char *re = NULL;
	int re_len;
	const unsigned char *p = pk;
	CSR_RSAPUB *rp = NULL;
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *params = NULL;
	EVP_PKEY *key = NULL;
	int ptype, bits;

	X509_ALGOR_get0(NULL, &ptype, NULL, spki->algor);
	if ((ptype != V_ASN1_NULL && ptype != V_ASN1_UNDEF) ||
	    (rp = (CSR_RSAPUB *)ASN1_item_d2i(NULL, &p, pk_len,
	    ASN1_ITEM_rptr(CSR_RSAPUB))) == NULL || p != pk + pk_len ||
	    (bits = BN_num_bits(rp->n)) < RSA_MIN_BITS ||
	    bits > RSA_MAX_BITS || BN_is_zero(rp->e))
		goto out;
	if ((bld = OSSL_PARAM_BLD_new()) == NULL ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, rp->n) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, rp->e) ||
	    (params = OSSL_PARAM_BLD_to_param(bld)) == NULL)
		goto out;
	/* canonical when the RSAPublicKey is DER (minimal INTEGERs) */
	if ((key = key_fromdata("RSA", params)) != NULL &&
	    (re_len = ASN1_item_i2d((ASN1_VALUE *)rp, &re,
	    ASN1_ITEM_rptr(CSR_RSAPUB))) == pk_len &&
	    memcmp(re, pk, (size_t)pk_len) == 0)
		*canon = spki_is(&spki->enc, alg, sizeof(alg), pk,
		    (size_t)pk_len);
 out:
	OPENSSL_free(re);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	ASN1_item_free((ASN1_VALUE *)rp, ASN1_ITEM_rptr(CSR_RSAPUB));
	return key;
}

/*
 * The subjectPKInfo's key, or NULL when it cannot be decoded.  The keys
 * the policy allows, in their usual form, are built from their parts
 * (EVP_PKEY_fromdata, EVP_PKEY_new_raw_public_key); anything else, or
 * parts the provider refuses, goes to d2i_PUBKEY over the bytes as
 * received: OpenSSL's decoder, exactly as d2i_X509_REQ did, so what it
 * refused stays refused (and the policy names what it decoded).
 */
static EVP_PKEY *
csr_key(const CSR_SPKI *spki, int *canon)
{
	/* AlgorithmIdentifier { id-Ed25519 } */
	static const uint8_t alg_ed[] = { 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65,
	    0x70 };
	const unsigned char *pk, *p;
	EVP_PKEY *key = NULL;
	int pk_len, ptype;

	pk = ASN1_STRING_get0_data(spki->key);
	pk_len = ASN1_STRING_length(spki->key);
	/* unused bits in the key's BIT STRING: OpenSSL's decoder takes
	 * the bytes; left to it */
	if (pk_len > 0 && (spki->key->flags & ASN1_STRING_FLAG_BITS_LEFT) &&
	    (spki->key->flags & 0x07) != 0)
		goto decoder;
	switch (OBJ_obj2nid(spki->algor->algorithm)) {
	case NID_X9_62_id_ecPublicKey:
		key = ec_key(spki, pk, pk_len, canon);
		break;
	case NID_rsaEncryption:
		key = rsa_key(spki, pk, pk_len, canon);
		break;
	case NID_ED25519:
		X509_ALGOR_get0(NULL, &ptype, NULL, spki->algor);
		if (ptype == V_ASN1_UNDEF && pk_len == 32 &&
		    (key = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519,
		    NULL, pk, (size_t)pk_len)) != NULL)
			*canon = spki_is(&spki->enc, alg_ed, sizeof(alg_ed),
			    pk, (size_t)pk_len);
		break;
	default:
		break;
	}
	if (key != NULL)
		return key;
 decoder:
	*canon = 0;
	ERR_clear_error();
	p = spki->enc.enc;
	if (p == NULL || spki->enc.len <= 0 ||
	    (key = d2i_PUBKEY(NULL, &p, spki->enc.len)) == NULL)
		ERR_clear_error();
	return key;
}

void
ca_csr_free(struct ca_csr *c)
{
	if (c == NULL)
		return;
	ASN1_item_free((ASN1_VALUE *)c->req, ASN1_ITEM_rptr(CSR_REQ));
	EVP_PKEY_free(c->key);
	free(c);
}

const X509_NAME *
ca_csr_subject(const struct ca_csr *c)
{
	return c->req->info->subject;
}

EVP_PKEY *
ca_csr_pubkey(const struct ca_csr *c)
{
	return c->key;
}

const uint8_t *
ca_csr_spki(const struct ca_csr *c, size_t *len)
{
	const CSR_SPKI *spki = c->req->info->spki;

	*len = spki->enc.len > 0 ? (size_t)spki->enc.len : 0;
	return spki->enc.enc;
}

int
ca_csr_spki_canonical(const struct ca_csr *c)
{
	return c->spki_canon;
}

const X509_ALGOR *
ca_csr_spki_alg(const struct ca_csr *c)
{
	return c->req->info->spki->algor;
}

const ASN1_BIT_STRING *
ca_csr_spki_key(const struct ca_csr *c)
{
	return c->req->info->spki->key;
}

/* As X509_REQ_get_extensions: the first attribute of the extension
 * request types (PKCS#9 extensionRequest, Microsoft's), its first value
 * a SEQUENCE of Extensions. */
STACK_OF(X509_EXTENSION) *
ca_csr_extensions(const struct ca_csr *c)
{
	const STACK_OF(X509_ATTRIBUTE) *attrs = c->req->info->attributes;
	ASN1_TYPE *ext = NULL;
	const unsigned char *p;
	int *nid, idx;

	for (nid = X509_REQ_get_extension_nids(); nid != NULL &&
	    *nid != NID_undef; nid++) {
		if ((idx = X509at_get_attr_by_NID(attrs, *nid, -1)) < 0)
			continue;
		ext = X509_ATTRIBUTE_get0_type(X509at_get_attr(attrs, idx), 0);
		break;
	}
	if (ext == NULL)
		return sk_X509_EXTENSION_new_null();
	if (ext->type != V_ASN1_SEQUENCE)
		return NULL;
	p = ext->value.sequence->data;
	return (STACK_OF(X509_EXTENSION) *)ASN1_item_d2i(NULL, &p,
	    ext->value.sequence->length, ASN1_ITEM_rptr(X509_EXTENSIONS));
}
static int
subject_checks(const X509_NAME *subj, const struct ca_csr_policy *pol,
    char *err, size_t err_len)
{
	X509_NAME *allowed = NULL;
	char got[CA_SUBJECT_MAX], want[CA_SUBJECT_MAX], perr[128];
	int rc = 0;

	if (subj == NULL || X509_NAME_entry_count(subj) == 0) {
		snprintf(err, err_len, "CSR: RFC 5280 section 4.1.2.6: the "
		    "subject is empty");
		goto out;
	}
	/* the subject as text only for a refusal */
	if (pol != NULL && pol->allowed_subject != NULL &&
	    *pol->allowed_subject != '\0') {
		allowed = ca_subject_parse(pol->allowed_subject, perr,
		    sizeof(perr));
		if (allowed == NULL) {
			snprintf(err, err_len, "CSR: the account's allowed "
			    "subject is invalid: %s", perr);
			goto out;
		}
		if (X509_NAME_cmp(subj, allowed) != 0) {
			ca_name_print(got, sizeof(got), subj);
			ca_name_print(want, sizeof(want), allowed);
			snprintf(err, err_len, "CSR: subject \"%s\" does not "
			    "match the account's allowed subject \"%s\"", got,
			    want);
			goto out;
		}
	}
	if (pol != NULL && pol->expected_subject != NULL &&
	    X509_NAME_cmp(subj, pol->expected_subject) != 0) {
		ca_name_print(got, sizeof(got), subj);
		ca_name_print(want, sizeof(want), pol->expected_subject);
		snprintf(err, err_len, "CSR: subject \"%s\" does not match the "
		    "lost certificate's subject \"%s\"", got, want);
		goto out;
	}
	rc = 1;
 out:
	X509_NAME_free(allowed);
	return rc;
}

static int
lost_key_check(EVP_PKEY *key, const struct ca_csr_policy *pol, char *err,
    size_t err_len)
{
	const unsigned char *p;
	X509 *lost = NULL;
	int rc = 0;

	if (pol == NULL)
		return 1;
	if (pol->lost_key != NULL && EVP_PKEY_eq(key, pol->lost_key) == 1)
		goto same;
	if (pol->lost_cert_der != NULL) {
		p = pol->lost_cert_der;
		if (pol->lost_cert_len > LONG_MAX ||
		    (lost = d2i_X509(NULL, &p, (long)pol->lost_cert_len)) ==
		    NULL) {
			log_ssl("lost certificate DER");
			snprintf(err, err_len, "CSR: the lost certificate "
			    "cannot be decoded");
			goto out;
		}
		if (EVP_PKEY_eq(key, X509_get0_pubkey(lost)) == 1)
			goto same;
	}
	ERR_clear_error();	/* EVP_PKEY_eq of different types */
	rc = 1;
	goto out;
 same:
	snprintf(err, err_len, "CSR: key: the public key is the lost "
	    "certificate's key; a replacement needs a new key");
 out:
	X509_free(lost);
	return rc;
}

int
ca_csr_check(struct ca_csr **out, const uint8_t *der, size_t der_len,
    const struct ca_csr_policy *policy, char *err, size_t err_len)
{
	struct ca_csr *c = NULL;
	CSR_REQ *req;
	const unsigned char *p = der;
	int rc = 0;

	if (out != NULL)
		*out = NULL;
	if (der == NULL || der_len == 0) {
		snprintf(err, err_len, "CSR: RFC 2986: empty request");
		goto out;
	}
	if (der_len > CA_CSR_MAX) {
		snprintf(err, err_len, "CSR: RFC 2986: request is %zu bytes, "
		    "above the %d-byte limit", der_len, CA_CSR_MAX);
		goto out;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL)
		fatal("calloc");
	if ((c->req = (CSR_REQ *)ASN1_item_d2i(NULL, &p, (long)der_len,
	    ASN1_ITEM_rptr(CSR_REQ))) == NULL) {
		ERR_clear_error();
		snprintf(err, err_len, "CSR: RFC 2986 section 4: not a DER "
		    "CertificationRequest");
		goto out;
	}
	req = c->req;
	if (p != der + der_len) {
		snprintf(err, err_len, "CSR: RFC 2986 section 4: %zu bytes "
		    "after the CertificationRequest",
		    der_len - (size_t)(p - der));
		goto out;
	}
	if (ASN1_INTEGER_get(req->info->version) != X509_REQ_VERSION_1) {
		ERR_clear_error();
		snprintf(err, err_len, "CSR: RFC 2986 section 4.1: version "
		    "must be 0 (v1)");
		goto out;
	}
	if (!ec_named_curve(req->info->spki, err, err_len))
		goto out;
	if ((c->key = csr_key(req->info->spki, &c->spki_canon)) == NULL) {
		snprintf(err, err_len, "CSR: RFC 2986 section 4.1: the "
		    "subjectPKInfo cannot be decoded");
		goto out;
	}
	/* Policy before the signature: no work for oversized keys. */
	if (!key_policy(c->key, err, err_len))
		goto out;
	/* what X509_REQ_verify does: the CertificationRequestInfo as
	 * received (its saved encoding), the algorithm rules of
	 * ASN1_item_verify */
	if (ASN1_item_verify(ASN1_ITEM_rptr(CSR_INFO), req->sig_alg,
	    req->signature, req->info, c->key) != 1) {
		ERR_clear_error();
		snprintf(err, err_len, "CSR: RFC 2986: signature does not "
		    "verify");
		goto out;
	}
	if (!subject_checks(req->info->subject, policy, err, err_len))
		goto out;
	if (!lost_key_check(c->key, policy, err, err_len))
		goto out;
	if (out != NULL) {
		*out = c;
		c = NULL;
	}
	rc = 1;
 out:
	ca_csr_free(c);
	return rc;
}
