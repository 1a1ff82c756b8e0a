/*
 * sign_policy.c - the signer process's checks of what it signs (see
 * sign_policy.h).
 */
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/asn1t.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
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

static EVP_PKEY *ec_from_bits(int nid, const uint8_t *bits, size_t len);
static const EC_GROUP *ec_group(int nid);

void
sign_key_pt_set(struct sign_key_pt *out, EVP_PKEY *k)
{
	const EC_GROUP *g;
	EC_POINT *pt = NULL;
	char group[64];
	size_t n = 0;
	int nid;

	memset(out, 0, sizeof(*out));
	if (k == NULL)
		return;
	if (!EVP_PKEY_is_a(k, "EC") && !EVP_PKEY_is_a(k, "SM2")) {
		out->kind = SIGN_KEY_NOT_EC;
		return;
	}
	if (EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME,
	    group, sizeof(group), NULL) != 1 ||
	    (nid = OBJ_sn2nid(group)) == NID_undef ||
	    EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_PUB_KEY,
	    out->pt, sizeof(out->pt), &n) != 1 || n == 0)
		goto other;
	if (out->pt[0] != POINT_CONVERSION_UNCOMPRESSED) {
		if ((g = ec_group(nid)) == NULL ||
		    (pt = EC_POINT_new(g)) == NULL ||
		    EC_POINT_oct2point(g, pt, out->pt, n, NULL) != 1 ||
		    (n = EC_POINT_point2oct(g, pt,
		    POINT_CONVERSION_UNCOMPRESSED, out->pt, sizeof(out->pt),
		    NULL)) == 0)
			goto other;
	}
	out->kind = SIGN_KEY_EC;
	out->nid = nid;
	out->pt_len = n;
	EC_POINT_free(pt);
	return;
 other:
	EC_POINT_free(pt);
	memset(out, 0, sizeof(*out));
	ERR_clear_error();
}

/*
 * 1 if t's key is k, as EVP_PKEY_eq says; 0 if not; -1 when t's key
 * cannot be built.  A named-curve EC key is compared by its curve and
 * point (uncompressed), without an EVP_PKEY, when k's can be read so
 * (kp: k's, made before; NULL: read now).
 */
static int
key_is(struct sign_tbs *t, EVP_PKEY *k, const struct sign_key_pt *kp)
{
	struct sign_key_pt tmp;

	if (t->ec_nid != 0) {
		if (kp == NULL) {
			sign_key_pt_set(&tmp, k);
			kp = &tmp;
		}
		if (kp->kind == SIGN_KEY_NOT_EC)
			return 0;
		if (kp->kind == SIGN_KEY_EC)
			return kp->nid == t->ec_nid &&
			    kp->pt_len == t->ec_pt_len &&
			    memcmp(kp->pt, t->ec_pt, kp->pt_len) == 0;
	}
	/* anything else: EVP_PKEY_eq on the key built */
	if (t->pub == NULL && t->ec_nid != 0)
		t->pub = ec_from_bits(t->ec_nid, t->ec_pt, t->ec_pt_len);
	if (t->pub == NULL)
		return -1;
	return EVP_PKEY_eq(t->pub, k) == 1;
}

static int
key_ok(const struct sign_cert_rules *r, struct sign_tbs *t, int ocsp_renewal,
    char *err, size_t err_len)
{
	int ok = 0, ca, ocsp = 0, pending = 1;

	if (t->pub == NULL && t->ec_nid == 0)
		goto undecodable;
	if ((ca = key_is(t, X509_get0_pubkey(r->ca), r->ca_pt)) < 0 ||
	    (!ocsp_renewal && r->ocsp_pub != NULL &&
	    (ocsp = key_is(t, r->ocsp_pub, r->ocsp_pt)) < 0) ||
	    (ocsp_renewal && r->pending_pub != NULL &&
	    (pending = key_is(t, r->pending_pub, r->pending_pt)) < 0))
		goto undecodable;
	if (ca == 1 || ocsp == 1) {
		snprintf(err, err_len, "certificate: the public key is the "
		    "CA's or the OCSP signer's own key");
		goto out;
	}
	if (ocsp_renewal && (r->pending_pub == NULL || pending != 1)) {
		snprintf(err, err_len, "certificate: OCSP signer renewal: the "
		    "public key is not the one the signer made");
		goto out;
	}
	ok = 1;
	goto out;
 undecodable:
	snprintf(err, err_len, "certificate: RFC 5280 4.1.2.7: the "
	    "subjectPublicKeyInfo does not decode");
 out:
	ERR_clear_error();
	return ok;
}

/* sign_cert_check's rules; alg is the TBS's signature field, t->x the
 * certificate's fields or x, t's key the subject key. */
static int
cert_rules(const struct sign_cert_rules *r, X509 *x, const X509_ALGOR *alg,
    struct sign_tbs *t, int ocsp_renewal, char *err, size_t err_len)
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
	if (alg == NULL || !same_alg(alg, r->alg, r->alg_len)) {
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
	    key_ok(r, t, ocsp_renewal, err, err_len);
}

int
sign_cert_check(const struct sign_cert_rules *r, X509 *x, int ocsp_renewal,
    char *err, size_t err_len)
{
	struct sign_tbs t;

	/* the key decoded by OpenSSL, borrowed: no sign_tbs_cleanup */
	memset(&t, 0, sizeof(t));
	t.pub = X509_get0_pubkey(x);
	return cert_rules(r, x, X509_get0_tbs_sigalg(x), &t, ocsp_renewal,
	    err, err_len);
}

int
sign_tbs_check(const struct sign_cert_rules *r, struct sign_tbs *t,
    int ocsp_renewal, char *err, size_t err_len)
{
	return cert_rules(r, t->x, t->alg, t, ocsp_renewal, err, err_len);
}

/* ---- a TBSCertificate without decoding its key ---- */

/* SubjectPublicKeyInfo (RFC 5280 4.1), the key left as bits. */
typedef struct {
	X509_ALGOR	*alg;
	ASN1_BIT_STRING	*bits;
} SIGN_SPKI;

ASN1_SEQUENCE(SIGN_SPKI) = {
	ASN1_SIMPLE(SIGN_SPKI, alg, X509_ALGOR),
	ASN1_SIMPLE(SIGN_SPKI, bits, ASN1_BIT_STRING),
} static_ASN1_SEQUENCE_END(SIGN_SPKI)

/* TBSCertificate (RFC 5280 4.1). */
typedef struct {
	ASN1_INTEGER	*version;
	ASN1_INTEGER	*serial;
	X509_ALGOR	*sig;
	X509_NAME	*issuer;
	X509_VAL	*validity;
	X509_NAME	*subject;
	SIGN_SPKI	*spki;
	ASN1_BIT_STRING	*issuer_uid;
	ASN1_BIT_STRING	*subject_uid;
	STACK_OF(X509_EXTENSION) *exts;
} SIGN_TBS;

ASN1_SEQUENCE(SIGN_TBS) = {
	ASN1_EXP_OPT(SIGN_TBS, version, ASN1_INTEGER, 0),
	ASN1_SIMPLE(SIGN_TBS, serial, ASN1_INTEGER),
	ASN1_SIMPLE(SIGN_TBS, sig, X509_ALGOR),
	ASN1_SIMPLE(SIGN_TBS, issuer, X509_NAME),
	ASN1_SIMPLE(SIGN_TBS, validity, X509_VAL),
	ASN1_SIMPLE(SIGN_TBS, subject, X509_NAME),
	ASN1_SIMPLE(SIGN_TBS, spki, SIGN_SPKI),
	ASN1_IMP_OPT(SIGN_TBS, issuer_uid, ASN1_BIT_STRING, 1),
	ASN1_IMP_OPT(SIGN_TBS, subject_uid, ASN1_BIT_STRING, 2),
	ASN1_EXP_SEQUENCE_OF_OPT(SIGN_TBS, exts, X509_EXTENSION, 3),
} static_ASN1_SEQUENCE_END(SIGN_TBS)

#define DER_DEPTH_MAX	32

/*
 * 1 if p..p+len is a sequence of DER TLVs, each with a definite minimal
 * length (sign_der_next), a constructed one made of such TLVs in turn,
 * no universal string in the constructed form (X.690 10.2) and every
 * BOOLEAN 00 or ff (X.690 11.1: OpenSSL re-encodes the byte received).  The
 * parts OpenSSL keeps as received (a Name, an AlgorithmIdentifier's
 * parameters) are held to DER here; the rest by the re-encoding.
 */
static int
der_strict(const uint8_t *p, size_t len, int depth)
{
	struct rd r, c;
	const uint8_t *tlv;
	size_t tlv_len;
	uint8_t tag;

	if (depth > DER_DEPTH_MAX)
		return 0;
	rd_init(&r, p, len);
	while (rd_left(&r) > 0) {
		if (!sign_der_next(&r, &tag, &c, &tlv, &tlv_len))
			return 0;
		if (tag == V_ASN1_BOOLEAN && (rd_left(&c) != 1 ||
		    (c.p[0] != 0 && c.p[0] != 0xff)))
			return 0;	/* X.690 11.1 */
		if (!(tag & V_ASN1_CONSTRUCTED))
			continue;
		if ((tag & 0xc0) == 0 && tag != (V_ASN1_SEQUENCE |
		    V_ASN1_CONSTRUCTED) && tag != (V_ASN1_SET |
		    V_ASN1_CONSTRUCTED))
			return 0;
		if (!der_strict(c.p, rd_left(&c), depth + 1))
			return 0;
	}
	return 1;
}

/*
 * 1 if every RDN of the subject (a SET OF) has its components in
 * ascending order (X.690 11.6), read from the Name's bytes as received:
 * OpenSSL keeps those, so the re-encoding does not see the order.  The
 * components are whole TLVs: when one is a prefix of another their
 * headers, and so their lengths, are equal, so X.690's padding of the
 * shorter with 0-octets never decides and memcmp of the common length
 * does.  The subject only: the issuer must be the CA certificate's
 * subject as it is (sign_tbs_check), DER or not.
 */
static int
subject_sorted(const X509_NAME *subject)
{
	struct rd r, name, rdn, atv;
	const unsigned char *der;
	const uint8_t *tlv, *prev;
	size_t der_len, tlv_len, prev_len;
	uint8_t tag;

	if (!X509_NAME_get0_der(subject, &der, &der_len))
		return 0;
	rd_init(&r, der, der_len);
	if (!sign_der_next(&r, &tag, &name, &tlv, &tlv_len) ||
	    tag != (V_ASN1_SEQUENCE | V_ASN1_CONSTRUCTED))
		return 0;
	while (rd_left(&name) > 0) {
		if (!sign_der_next(&name, &tag, &rdn, &tlv, &tlv_len) ||
		    tag != (V_ASN1_SET | V_ASN1_CONSTRUCTED))
			return 0;
		prev = NULL;
		prev_len = 0;
		while (rd_left(&rdn) > 0) {
			if (!sign_der_next(&rdn, &tag, &atv, &tlv, &tlv_len))
				return 0;
			if (prev != NULL && memcmp(prev, tlv, prev_len <
			    tlv_len ? prev_len : tlv_len) > 0)
				return 0;
			prev = tlv;
			prev_len = tlv_len;
		}
	}
	return 1;
}

/* A non-negative DER INTEGER's magnitude (no leading zero byte). */
static int
der_uint(struct rd *r, const uint8_t **out, size_t *out_len)
{
	struct rd c;
	const uint8_t *tlv;
	size_t tlv_len;
	uint8_t tag;

	if (!sign_der_next(r, &tag, &c, &tlv, &tlv_len) ||
	    tag != V_ASN1_INTEGER || rd_left(&c) == 0 || (c.p[0] & 0x80) ||
	    (rd_left(&c) > 1 && c.p[0] == 0 && !(c.p[1] & 0x80)))
		return 0;
	if (c.p[0] == 0)
		rd_skip(&c, 1);
	*out = c.p;
	*out_len = rd_left(&c);
	return *out_len > 0;
}

/* RSAPublicKey (RFC 8017 A.1.1) from its DER, by its parts. */
static EVP_PKEY *
rsa_from_bits(const uint8_t *bits, size_t len)
{
	OSSL_PARAM_BLD *b = NULL;
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *pk = NULL;
	BIGNUM *n = NULL, *e = NULL;
	struct rd r, seq;
	const uint8_t *tlv, *np, *ep;
	size_t tlv_len, nl, el;
	uint8_t tag;

	rd_init(&r, bits, len);
	if (!sign_der_next(&r, &tag, &seq, &tlv, &tlv_len) ||
	    tag != (V_ASN1_SEQUENCE | V_ASN1_CONSTRUCTED) ||
	    rd_left(&r) != 0 || !der_uint(&seq, &np, &nl) ||
	    !der_uint(&seq, &ep, &el) || rd_left(&seq) != 0 ||
	    nl > 2048 || el > 2048)
		return NULL;
	if ((n = BN_bin2bn(np, (int)nl, NULL)) == NULL ||
	    (e = BN_bin2bn(ep, (int)el, NULL)) == NULL ||
	    (b = OSSL_PARAM_BLD_new()) == NULL ||
	    !OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_RSA_N, n) ||
	    !OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_RSA_E, e) ||
	    (params = OSSL_PARAM_BLD_to_param(b)) == NULL ||
	    (ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL)) == NULL ||
	    EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, params) != 1)
		pk = NULL;
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(b);
	BN_free(n);
	BN_free(e);
	return pk;
}

/* A named-curve EC point (RFC 5480 2.1.1, 2.2) as an EVP_PKEY. */
static EVP_PKEY *
ec_from_bits(int nid, const uint8_t *bits, size_t len)
{
	OSSL_PARAM params[3];
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *pk = NULL;
	const char *name;

	if (nid == NID_undef || (name = OBJ_nid2sn(nid)) == NULL)
		return NULL;
	params[0] = OSSL_PARAM_construct_utf8_string(
	    OSSL_PKEY_PARAM_GROUP_NAME, (char *)name, 0);
	params[1] = OSSL_PARAM_construct_octet_string(
	    OSSL_PKEY_PARAM_PUB_KEY, (void *)bits, len);
	params[2] = OSSL_PARAM_construct_end();
	if ((ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) == NULL ||
	    EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, params) != 1)
		pk = NULL;
	EVP_PKEY_CTX_free(ctx);
	ERR_clear_error();
	return pk;
}

/*
 * The EC_GROUP of a named curve, made once per curve (making one costs
 * more than the point's check); read-only after, for every thread.
 * NULL for a curve OpenSSL does not know or past the table.
 */
#define EC_GROUPS_MAX	8
static const EC_GROUP *
ec_group(int nid)
{
	static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	static struct {
		int		 nid;
		EC_GROUP	*g;
	} tab[EC_GROUPS_MAX];
	static int num;
	const EC_GROUP *g = NULL;
	int i;

	pthread_mutex_lock(&mu);
	for (i = 0; i < num; i++)
		if (tab[i].nid == nid) {
			g = tab[i].g;
			goto out;
		}
	if (num < EC_GROUPS_MAX &&
	    (tab[num].g = EC_GROUP_new_by_curve_name(nid)) != NULL) {
		tab[num].nid = nid;
		g = tab[num++].g;
	}
 out:
	pthread_mutex_unlock(&mu);
	ERR_clear_error();
	return g;
}

/* A named-curve EC key's point: on its curve, kept uncompressed in t.
 * 1, or 0 when the curve or the point will not do so. */
static int
ec_point(struct sign_tbs *t, const ASN1_OBJECT *curve, const uint8_t *bits,
    size_t len)
{
	const EC_GROUP *g;
	EC_POINT *pt = NULL;
	int nid = OBJ_obj2nid(curve), ok = 0;
	size_t n;

	if (nid != NID_undef && (g = ec_group(nid)) != NULL &&
	    (pt = EC_POINT_new(g)) != NULL &&
	    EC_POINT_oct2point(g, pt, bits, len, NULL) == 1 &&
	    (n = EC_POINT_point2oct(g, pt, POINT_CONVERSION_UNCOMPRESSED,
	    t->ec_pt, sizeof(t->ec_pt), NULL)) > 0) {
		t->ec_nid = nid;
		t->ec_pt_len = n;
		ok = 1;
	}
	EC_POINT_free(pt);
	ERR_clear_error();
	return ok;
}

/*
 * The subject key from its parts into t (t->pub, or t->ec_* for a
 * named-curve EC key); what it cannot take so (explicit curve
 * parameters, RSA-PSS, another algorithm, an encoding it does not take)
 * goes through d2i_PUBKEY, which decides as OpenSSL always did: t->pub
 * stays NULL when that fails too.
 */
static void
spki_key(struct sign_tbs *t, const SIGN_SPKI *k)
{
	const ASN1_OBJECT *obj;
	const void *pval;
	const uint8_t *bits = k->bits->data;
	size_t len = (size_t)k->bits->length;
	unsigned char *der = NULL;
	const unsigned char *p;
	EVP_PKEY *pk = NULL;
	int ptype, n;

	X509_ALGOR_get0(&obj, &ptype, &pval, k->alg);
	if ((k->bits->flags & 0x07) != 0 || bits == NULL || len == 0)
		;	/* unused bits: not a key of these types */
	else if (OBJ_obj2nid(obj) == NID_X9_62_id_ecPublicKey &&
	    ptype == V_ASN1_OBJECT) {
		if (ec_point(t, pval, bits, len))
			return;
	} else if (OBJ_obj2nid(obj) == NID_rsaEncryption &&
	    (ptype == V_ASN1_NULL || ptype == V_ASN1_UNDEF))
		pk = rsa_from_bits(bits, len);
	else if (OBJ_obj2nid(obj) == NID_ED25519 && ptype == V_ASN1_UNDEF)
		pk = EVP_PKEY_new_raw_public_key_ex(NULL, "ED25519", NULL,
		    bits, len);
	else if (OBJ_obj2nid(obj) == NID_ED448 && ptype == V_ASN1_UNDEF)
		pk = EVP_PKEY_new_raw_public_key_ex(NULL, "ED448", NULL,
		    bits, len);
	if (pk == NULL && (n = ASN1_item_i2d((const ASN1_VALUE *)k, &der,
	    ASN1_ITEM_rptr(SIGN_SPKI))) > 0) {
		p = der;
		pk = d2i_PUBKEY(NULL, &p, n);
		if (pk != NULL && p != der + n) {
			EVP_PKEY_free(pk);
			pk = NULL;
		}
	}
	OPENSSL_free(der);
	ERR_clear_error();
	t->pub = pk;
}

/* An unsigned X509 with t's fields; the key's bits set, not decoded. */
static X509 *
shadow(const SIGN_TBS *t)
{
	X509 *x;
	const ASN1_OBJECT *obj;
	unsigned char *bits = NULL;
	long v = t->version != NULL ? ASN1_INTEGER_get(t->version) : 0;
	int i;

	if ((x = X509_new()) == NULL)
		return NULL;
	X509_ALGOR_get0(&obj, NULL, NULL, t->spki->alg);
	/* a version out of range stays v1: refused as "not version 3" */
	if ((v >= X509_VERSION_1 && v <= X509_VERSION_3 &&
	    !X509_set_version(x, v)) ||
	    !X509_set_serialNumber(x, t->serial) ||
	    !X509_set_issuer_name(x, t->issuer) ||
	    !X509_set_subject_name(x, t->subject) ||
	    !X509_set1_notBefore(x, t->validity->notBefore) ||
	    !X509_set1_notAfter(x, t->validity->notAfter))
		goto bad;
	for (i = 0; i < sk_X509_EXTENSION_num(t->exts); i++)
		if (!X509_add_ext(x, sk_X509_EXTENSION_value(t->exts, i), -1))
			goto bad;
	if (t->spki->bits->length > 0 && (bits = OPENSSL_memdup(
	    t->spki->bits->data, (size_t)t->spki->bits->length)) == NULL)
		goto bad;
	if (!X509_PUBKEY_set0_param(X509_get_X509_PUBKEY(x), OBJ_dup(obj),
	    V_ASN1_UNDEF, NULL, bits, t->spki->bits->length))
		goto bad;
	return x;
 bad:
	OPENSSL_free(bits);
	X509_free(x);
	return NULL;
}

int
sign_tbs_parse(struct sign_tbs *out, const uint8_t *tbs, size_t tbs_len,
    char *err, size_t err_len)
{
	SIGN_TBS *t = NULL;
	const unsigned char *p = tbs;
	unsigned char *der = NULL;
	struct rd r, c;
	const uint8_t *tlv;
	size_t tlv_len;
	uint8_t tag;
	int n, rc = 0;

	memset(out, 0, sizeof(*out));
	rd_init(&r, tbs, tbs_len);
	if (tbs_len > LONG_MAX || !sign_der_next(&r, &tag, &c, &tlv,
	    &tlv_len) || tag != (V_ASN1_SEQUENCE | V_ASN1_CONSTRUCTED) ||
	    rd_left(&r) != 0 || !der_strict(tbs, tbs_len, 0) ||
	    (t = (SIGN_TBS *)ASN1_item_d2i(NULL, &p, (long)tbs_len,
	    ASN1_ITEM_rptr(SIGN_TBS))) == NULL || p != tbs + tbs_len ||
	    (n = ASN1_item_i2d((const ASN1_VALUE *)t, &der,
	    ASN1_ITEM_rptr(SIGN_TBS))) <= 0 || (size_t)n != tbs_len ||
	    memcmp(der, tbs, tbs_len) != 0) {
		snprintf(err, err_len, "certificate: RFC 5280 4.1: not one "
		    "DER TBSCertificate");
		goto out;
	}
	if (!subject_sorted(t->subject)) {
		snprintf(err, err_len, "certificate: RFC 5280 4.1.2.6: the "
		    "subject is not DER (X.690 11.6: a multi-valued RDN's "
		    "attributes out of order)");
		goto out;
	}
	if ((out->x = shadow(t)) == NULL ||
	    (out->alg = X509_ALGOR_dup(t->sig)) == NULL) {
		snprintf(err, err_len, "certificate: RFC 5280 4.1: the "
		    "TBSCertificate's fields cannot be taken up");
		sign_tbs_cleanup(out);
		goto out;
	}
	spki_key(out, t->spki);
	rc = 1;
 out:
	OPENSSL_free(der);
	ASN1_item_free((ASN1_VALUE *)t, ASN1_ITEM_rptr(SIGN_TBS));
	ERR_clear_error();
	return rc;
}

void
sign_tbs_cleanup(struct sign_tbs *t)
{
	X509_free(t->x);
	X509_ALGOR_free(t->alg);
	EVP_PKEY_free(t->pub);
	memset(t, 0, sizeof(*t));
}

/* A DER length's bytes: 1 to 5. */
static size_t
der_len_put(uint8_t *out, size_t len)
{
	size_t n = 0, i;

	if (len < 0x80) {
		out[0] = (uint8_t)len;
		return 1;
	}
	for (i = len; i > 0; i >>= 8)
		n++;
	out[0] = (uint8_t)(0x80 | n);
	for (i = 0; i < n; i++)
		out[1 + i] = (uint8_t)(len >> (8 * (n - 1 - i)));
	return 1 + n;
}

int
sign_cert_build(uint8_t **out, size_t *out_len, const uint8_t *tbs,
    size_t tbs_len, const uint8_t *alg, size_t alg_len, const uint8_t *sig,
    size_t sig_len)
{
	uint8_t hdr[6], bhdr[6], *d;
	size_t hl, bl, body, total;

	if (tbs_len > 0xffff0000u || alg_len > 0xffffu ||
	    sig_len > 0xffffu)
		return 0;
	bhdr[0] = V_ASN1_BIT_STRING;
	bl = 1 + der_len_put(bhdr + 1, sig_len + 1);
	body = tbs_len + alg_len + bl + 1 + sig_len;
	if (body > 0xffffffffu)
		return 0;
	hdr[0] = V_ASN1_SEQUENCE | V_ASN1_CONSTRUCTED;
	hl = 1 + der_len_put(hdr + 1, body);
	total = hl + body;
	if ((d = malloc(total)) == NULL)
		return 0;
	memcpy(d, hdr, hl);
	memcpy(d + hl, tbs, tbs_len);
	memcpy(d + hl + tbs_len, alg, alg_len);
	memcpy(d + hl + tbs_len + alg_len, bhdr, bl);
	d[hl + tbs_len + alg_len + bl] = 0;	/* unused bits */
	if (sig_len > 0)
		memcpy(d + hl + tbs_len + alg_len + bl + 1, sig, sig_len);
	*out = d;
	*out_len = total;
	return 1;
}
