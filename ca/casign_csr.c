/*
 * casign_csr.c - CSR checks (RFC 2986) and subject names as text.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
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
 * RFC 5480 section 2.1.1: an EC subjectPublicKeyInfo names its curve
 * (namedCurve OID).  specifiedCurve (explicit parameters) and
 * implicitCurve are not allowed: relying parties refuse them (OpenSSL
 * verify: error 94) and explicit parameters have hidden weak curves.
 */
static int
ec_named_curve(X509_REQ *req, char *err, size_t err_len)
{
	X509_PUBKEY *xpk = X509_REQ_get_X509_PUBKEY(req);
	ASN1_OBJECT *kobj = NULL;
	X509_ALGOR *alg = NULL;
	const void *pval = NULL;
	int ptype = V_ASN1_UNDEF;

	if (xpk == NULL || !X509_PUBKEY_get0_param(&kobj, NULL, NULL, &alg,
	    xpk) || kobj == NULL) {
		ERR_clear_error();
		snprintf(err, err_len, "CSR: RFC 2986 section 4.1: the "
		    "subjectPKInfo cannot be decoded");
		return 0;
	}
	if (OBJ_obj2nid(kobj) != NID_X9_62_id_ecPublicKey)
		return 1;
	if (alg != NULL)
		X509_ALGOR_get0(NULL, &ptype, &pval, alg);
	if (ptype != V_ASN1_OBJECT) {
		snprintf(err, err_len, "CSR: key: RFC 5480 section 2.1.1: EC "
		    "parameters must be a named curve, not explicit "
		    "parameters");
		return 0;
	}
	return 1;
}

static int
subject_checks(X509_REQ *req, const struct ca_csr_policy *pol, char *err,
    size_t err_len)
{
	const X509_NAME *subj = X509_REQ_get_subject_name(req);
	X509_NAME *allowed = NULL;
	char got[CA_SUBJECT_MAX], want[CA_SUBJECT_MAX], perr[128];
	int rc = 0;

	if (subj == NULL || X509_NAME_entry_count(subj) == 0) {
		snprintf(err, err_len, "CSR: RFC 5280 section 4.1.2.6: the "
		    "subject is empty");
		goto out;
	}
	ca_name_print(got, sizeof(got), subj);
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
			ca_name_print(want, sizeof(want), allowed);
			snprintf(err, err_len, "CSR: subject \"%s\" does not "
			    "match the account's allowed subject \"%s\"", got,
			    want);
			goto out;
		}
	}
	if (pol != NULL && pol->expected_subject != NULL &&
	    X509_NAME_cmp(subj, pol->expected_subject) != 0) {
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
ca_csr_check(X509_REQ **out_req, const uint8_t *der, size_t der_len,
    const struct ca_csr_policy *policy, char *err, size_t err_len)
{
	X509_REQ *req = NULL;
	const unsigned char *p = der;
	EVP_PKEY *key;
	int rc = 0;

	if (out_req != NULL)
		*out_req = NULL;
	if (der == NULL || der_len == 0) {
		snprintf(err, err_len, "CSR: RFC 2986: empty request");
		goto out;
	}
	if (der_len > CA_CSR_MAX) {
		snprintf(err, err_len, "CSR: RFC 2986: request is %zu bytes, "
		    "above the %d-byte limit", der_len, CA_CSR_MAX);
		goto out;
	}
	if ((req = d2i_X509_REQ(NULL, &p, (long)der_len)) == NULL) {
		ERR_clear_error();
		snprintf(err, err_len, "CSR: RFC 2986 section 4: not a DER "
		    "CertificationRequest");
		goto out;
	}
	if (p != der + der_len) {
		snprintf(err, err_len, "CSR: RFC 2986 section 4: %zu bytes "
		    "after the CertificationRequest",
		    der_len - (size_t)(p - der));
		goto out;
	}
	if (X509_REQ_get_version(req) != X509_REQ_VERSION_1) {
		snprintf(err, err_len, "CSR: RFC 2986 section 4.1: version "
		    "must be 0 (v1)");
		goto out;
	}
	if (!ec_named_curve(req, err, err_len))
		goto out;
	if ((key = X509_REQ_get0_pubkey(req)) == NULL) {
		ERR_clear_error();
		snprintf(err, err_len, "CSR: RFC 2986 section 4.1: the "
		    "subjectPKInfo cannot be decoded");
		goto out;
	}
	/* Policy before the signature: no work for oversized keys. */
	if (!key_policy(key, err, err_len))
		goto out;
	if (X509_REQ_verify(req, key) != 1) {
		ERR_clear_error();
		snprintf(err, err_len, "CSR: RFC 2986: signature does not "
		    "verify");
		goto out;
	}
	if (!subject_checks(req, policy, err, err_len))
		goto out;
	if (!lost_key_check(key, policy, err, err_len))
		goto out;
	if (out_req != NULL) {
		*out_req = req;
		req = NULL;
	}
	rc = 1;
 out:
	X509_REQ_free(req);
	return rc;
}
