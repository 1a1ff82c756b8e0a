/*
 * sign_policy.c - the signer process's checks of what it signs (see
 * sign_policy.h).
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "ca/ca.h"
#include "ca/sign_policy.h"
#include "common/bytes.h"

int
sign_der_next(struct rd *r, uint8_t *out_tag, struct rd *out_content,
    const uint8_t **out_tlv, size_t *out_tlv_len)
{
	const uint8_t *start = r->p, *v;
	uint8_t tag, b;
	size_t len = 0, n, i;

	if (!rd_u8(r, &tag) || (tag & 0x1f) == 0x1f || !rd_u8(r, &b))
		return 0;
	if (b < 0x80)
		len = b;
	else {
		n = b & 0x7f;
		if (n == 0 || n > 4)	/* indefinite, or over 4 GiB */
			return 0;
		for (i = 0; i < n; i++) {
			if (!rd_u8(r, &b))
				return 0;
			if (i == 0 && b == 0)
				return 0;	/* not minimal */
			len = (len << 8) | b;
		}
		if (len < 0x80)
			return 0;	/* not minimal */
	}
	if (!rd_bytes(r, &v, len))
		return 0;
	*out_tag = tag;
	rd_init(out_content, v, len);
	*out_tlv = start;
	*out_tlv_len = (size_t)(v + len - start);
	return 1;
}

int
sign_cert_spans(struct sign_cert_spans *out, const uint8_t *der,
    size_t der_len)
{
	struct rd r, c, v;
	const uint8_t *tlv;
	size_t tlv_len;
	uint8_t tag, unused;

	memset(out, 0, sizeof(*out));
	rd_init(&r, der, der_len);
	if (!sign_der_next(&r, &tag, &c, &tlv, &tlv_len) ||
	    tag != (V_ASN1_SEQUENCE | V_ASN1_CONSTRUCTED) || r.len != 0)
		return 0;
	if (!sign_der_next(&c, &tag, &v, &out->tbs, &out->tbs_len) ||
	    tag != (V_ASN1_SEQUENCE | V_ASN1_CONSTRUCTED) ||
	    !sign_der_next(&c, &tag, &v, &out->alg, &out->alg_len) ||
	    tag != (V_ASN1_SEQUENCE | V_ASN1_CONSTRUCTED) ||
	    !sign_der_next(&c, &tag, &v, &tlv, &tlv_len) ||
	    tag != V_ASN1_BIT_STRING || c.len != 0 ||
	    !rd_u8(&v, &unused) || unused != 0 || v.len == 0)
		return 0;
	out->sig = v.p;
	out->sig_len = v.len;
	return 1;
}

/* Reads a non-negative INTEGER of at most 64 bits. */
static int
asn1_u64(const ASN1_INTEGER *ai, uint64_t *out)
{
	BIGNUM *bn;
	unsigned char buf[8];
	int n, ok = 0;

	if (ai == NULL || (bn = ASN1_INTEGER_to_BN(ai, NULL)) == NULL)
		return 0;
	if (!BN_is_negative(bn) && (n = BN_num_bytes(bn)) <= 8 &&
	    BN_bn2binpad(bn, buf, 8) == 8) {
		*out = be64_get(buf);
		ok = 1;
	}
	BN_free(bn);
	return ok;
}

/* crlExtensions: [0] EXPLICIT Extensions. */
static int
crl_exts(struct sign_crl_info *out, struct rd *c, char *err, size_t err_len)
{
	STACK_OF(X509_EXTENSION) *exts = NULL;
	ASN1_INTEGER *num = NULL;
	const unsigned char *p = c->p;
	int crit = -1, rc = 0;

	if ((exts = d2i_X509_EXTENSIONS(NULL, &p, (long)c->len)) == NULL ||
	    p != c->p + c->len) {
		snprintf(err, err_len, "TBSCertList: RFC 5280 5.1.2.7: the "
		    "extensions do not decode");
		goto out;
	}
	num = X509V3_get_d2i(exts, NID_crl_number, &crit, NULL);
	if (num == NULL || !asn1_u64(num, &out->number)) {
		snprintf(err, err_len, "TBSCertList: RFC 5280 5.2.3: no "
		    "usable cRLNumber");
		goto out;
	}
	out->is_delta = X509v3_get_ext_by_NID(exts, NID_delta_crl, -1) >= 0;
	rc = 1;
 out:
	ASN1_INTEGER_free(num);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	ERR_clear_error();
	return rc;
}

int
sign_crl_parse(struct sign_crl_info *out, const uint8_t *tbs, size_t tbs_len,
    char *err, size_t err_len)
{
	struct rd r, seq, c;
	const uint8_t *tlv;
	size_t tlen;
	uint8_t tag;
	int have_ext = 0;

	memset(out, 0, sizeof(*out));
	rd_init(&r, tbs, tbs_len);
	if (!sign_der_next(&r, &tag, &seq, &tlv, &tlen) || tag != 0x30 ||
	    rd_left(&r) != 0) {
		snprintf(err, err_len, "TBSCertList: RFC 5280 5.1.2: not one "
		    "DER SEQUENCE");
		return 0;
	}
	if (!sign_der_next(&seq, &tag, &c, &tlv, &tlen))
		goto bad;
	if (tag == 0x02 && !sign_der_next(&seq, &tag, &c, &tlv, &tlen))
		goto bad;			/* version */
	if (tag != 0x30)
		goto bad;
	out->alg = tlv;
	out->alg_len = tlen;
	if (!sign_der_next(&seq, &tag, &c, &tlv, &tlen) || tag != 0x30)
		goto bad;
	out->issuer = tlv;
	out->issuer_len = tlen;
	if (!sign_der_next(&seq, &tag, &c, &tlv, &tlen) ||
	    (tag != 0x17 && tag != 0x18))
		goto bad;			/* thisUpdate */
	while (rd_left(&seq) > 0) {
		if (!sign_der_next(&seq, &tag, &c, &tlv, &tlen) || have_ext)
			goto bad;
		if (tag == 0xa0) {
			if (!crl_exts(out, &c, err, err_len))
				return 0;
			have_ext = 1;
		} else if (tag != 0x17 && tag != 0x18 && tag != 0x30)
			goto bad;	/* nextUpdate, revokedCertificates */
	}
	if (!have_ext) {
		snprintf(err, err_len, "TBSCertList: RFC 5280 5.2.3: no "
		    "cRLNumber (no extensions)");
		return 0;
	}
	return 1;
 bad:
	snprintf(err, err_len, "TBSCertList: RFC 5280 5.1.2: malformed or "
	    "unexpected field");
	return 0;
}

int
sign_ocsp_parse(const uint8_t **out_respid, size_t *out_respid_len,
    const uint8_t *tbs, size_t tbs_len, char *err, size_t err_len)
{
	struct rd r, seq, c;
	const uint8_t *tlv;
	size_t tlen;
	uint8_t tag;

	rd_init(&r, tbs, tbs_len);
	if (!sign_der_next(&r, &tag, &seq, &tlv, &tlen) || tag != 0x30 ||
	    rd_left(&r) != 0 || !sign_der_next(&seq, &tag, &c, &tlv, &tlen))
		goto bad;
	if (tag == 0xa0 && !sign_der_next(&seq, &tag, &c, &tlv, &tlen))
		goto bad;			/* version */
	if (tag != 0xa1 && tag != 0xa2)
		goto bad;
	*out_respid = tlv;
	*out_respid_len = tlen;
	if (!sign_der_next(&seq, &tag, &c, &tlv, &tlen) || tag != 0x18 ||
	    !sign_der_next(&seq, &tag, &c, &tlv, &tlen) || tag != 0x30)
		goto bad;			/* producedAt, responses */
	if (rd_left(&seq) > 0 && (!sign_der_next(&seq, &tag, &c, &tlv,
	    &tlen) || tag != 0xa1 || rd_left(&seq) != 0))
		goto bad;			/* responseExtensions */
	return 1;
 bad:
	snprintf(err, err_len, "ResponseData: RFC 6960 4.2.1: malformed or "
	    "unexpected field");
	return 0;
}

int
sign_respid_bykey(uint8_t out[SIGN_RESPID_LEN], EVP_PKEY *pub)
{
	X509_PUBKEY *xpk = NULL;
	const unsigned char *pk;
	unsigned int n = 0;
	int pklen, rc = 0;

	if (X509_PUBKEY_set(&xpk, pub) != 1 ||
	    X509_PUBKEY_get0_param(NULL, &pk, &pklen, NULL, xpk) != 1 ||
	    EVP_Digest(pk, (size_t)pklen, out + 4, &n, EVP_sha1(), NULL) !=
	    1 || n != 20)
		goto out;
	out[0] = 0xa2;
	out[1] = 22;
	out[2] = 0x04;
	out[3] = 20;
	rc = 1;
 out:
	X509_PUBKEY_free(xpk);
	return rc;
}

static int
same_alg(const X509_ALGOR *a, const uint8_t *want, size_t want_len)
{
	unsigned char *der = NULL;
	int n, same;

	if ((n = i2d_X509_ALGOR(a, &der)) <= 0)
		return 0;
	same = (size_t)n == want_len && memcmp(der, want, want_len) == 0;
	OPENSSL_free(der);
	return same;
}

static int
validity_ok(const struct sign_cert_rules *r, X509 *x, char *err,
    size_t err_len)
{
	int64_t nb, na, cnb, cna;

	if (!ca_cert_times(x, &nb, &na) || !ca_cert_times(r->ca, &cnb,
	    &cna) || nb > na) {
		snprintf(err, err_len, "certificate: RFC 5280 4.1.2.5: "
		    "validity unreadable or notBefore after notAfter");
		return 0;
	}
	if (nb < cnb || na > cna) {
		snprintf(err, err_len, "certificate: RFC 5280 6.1.3: validity "
		    "outside the CA's (a certificate must not outlive its "
		    "issuer)");
		return 0;
	}
	return 1;
}

static int
serial_ok(X509 *x)
{
	const ASN1_INTEGER *ai = X509_get0_serialNumber(x);
	BIGNUM *bn;
	int ok;

	if ((bn = ASN1_INTEGER_to_BN(ai, NULL)) == NULL)
		return 0;
	ok = !BN_is_negative(bn) && !BN_is_zero(bn) && BN_num_bytes(bn) <= 20;
	BN_free(bn);
	return ok;
}

/* Extensions: a leaf, and who may get OCSPSigning. */
static int
exts_ok(const struct sign_cert_rules *r, X509 *x, int ocsp_renewal,
    char *err, size_t err_len)
{
	uint32_t flags = X509_get_extension_flags(x);
	uint32_t xku = X509_get_extended_key_usage(x);

	if (flags & EXFLAG_INVALID) {
		snprintf(err, err_len, "certificate: RFC 5280 4.2: an "
		    "extension does not decode or is repeated");
		return 0;
	}
	if ((flags & EXFLAG_CA) || X509_check_ca(x) != 0) {
		snprintf(err, err_len, "certificate: RFC 5280 4.2.1.9: "
		    "basicConstraints cA: the signer signs leaf certificates "
		    "only");
		return 0;
	}
	if ((flags & EXFLAG_KUSAGE) &&
	    (X509_get_key_usage(x) & (KU_KEY_CERT_SIGN | KU_CRL_SIGN))) {
		snprintf(err, err_len, "certificate: RFC 5280 4.2.1.3: "
		    "keyCertSign or cRLSign: the signer signs leaf "
		    "certificates only");
		return 0;
	}
	if (!ocsp_renewal && (flags & EXFLAG_XKUSAGE) &&
	    (xku & (XKU_OCSP_SIGN | XKU_ANYEKU))) {
		snprintf(err, err_len, "certificate: RFC 6960 4.2.2.2: "
		    "id-kp-OCSPSigning or anyExtendedKeyUsage outside an "
		    "OCSP signer renewal");
		return 0;
	}
	if (ocsp_renewal && (!(flags & EXFLAG_XKUSAGE) ||
	    !(xku & XKU_OCSP_SIGN))) {
		snprintf(err, err_len, "certificate: RFC 6960 4.2.2.2: an "
		    "OCSP signer certificate needs id-kp-OCSPSigning");
		return 0;
	}
	(void)r;
	return 1;
}

static int
key_ok(const struct sign_cert_rules *r, X509 *x, int ocsp_renewal,
    char *err, size_t err_len)
{
	EVP_PKEY *pub = X509_get0_pubkey(x);
	int ok = 0;

	if (pub == NULL) {
		snprintf(err, err_len, "certificate: RFC 5280 4.1.2.7: the "
		    "subjectPublicKeyInfo does not decode");
		goto out;
	}
	if (EVP_PKEY_eq(pub, X509_get0_pubkey(r->ca)) == 1 ||
	    (!ocsp_renewal && r->ocsp_pub != NULL &&
	    EVP_PKEY_eq(pub, r->ocsp_pub) == 1)) {
		snprintf(err, err_len, "certificate: the public key is the "
		    "CA's or the OCSP signer's own key");
		goto out;
	}
	if (ocsp_renewal && (r->pending_pub == NULL ||
	    EVP_PKEY_eq(pub, r->pending_pub) != 1)) {
		snprintf(err, err_len, "certificate: OCSP signer renewal: the "
		    "public key is not the one the signer made");
		goto out;
	}
	ok = 1;
 out:
	ERR_clear_error();
	return ok;
}

int
sign_cert_check(const struct sign_cert_rules *r, X509 *x, int ocsp_renewal,
    char *err, size_t err_len)
{
	const X509_NAME *cs = X509_get_subject_name(r->ca);

	if (X509_get_version(x) != X509_VERSION_3) {
		snprintf(err, err_len, "certificate: RFC 5280 4.1.2.1: not "
		    "version 3");
		return 0;
	}
	if (X509_NAME_cmp(X509_get_issuer_name(x), cs) != 0) {
		snprintf(err, err_len, "certificate: RFC 5280 4.1.2.4: the "
		    "issuer is not this CA");
		return 0;
	}
	if (X509_NAME_cmp(X509_get_subject_name(x), cs) == 0) {
		snprintf(err, err_len, "certificate: RFC 5280 4.1.2.6: the "
		    "subject is the CA's own name");
		return 0;
	}
	if (!same_alg(X509_get0_tbs_sigalg(x), r->alg, r->alg_len)) {
		snprintf(err, err_len, "certificate: RFC 5280 4.1.2.3: the "
		    "signature algorithm is not the one of the CA key");
		return 0;
	}
	if (!serial_ok(x)) {
		snprintf(err, err_len, "certificate: RFC 5280 4.1.2.2: the "
		    "serial is not a positive integer of at most 20 bytes");
		return 0;
	}
	return validity_ok(r, x, err, err_len) &&
	    exts_ok(r, x, ocsp_renewal, err, err_len) &&
	    key_ok(r, x, ocsp_renewal, err, err_len);
}
