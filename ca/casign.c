/*
 * casign.c - certificate building and signing: issuance profile, the
 * offline CA initialisation, the signer micad holds, leaf issuance.
 */
#include <sys/stat.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "common/log.h"
#include "common/sigmd.h"
#include "ca/ca.h"
#include "ca/cainit_local.h"
#include "conf/conf.h"

#define BACKDATE	60		/* seconds before now */
#define MAX_DAYS	36500
#define ISSUE_MIN_CA_LEFT	86400	/* s the CA must still be valid */
#define INIT_PATH_MAX	1024

struct ca_signer {
	X509		*ca;
	EVP_PKEY	*ca_key;	/* NULL when remote */
	X509		*ocsp;		/* == ca when no separate signer */
	EVP_PKEY	*ocsp_key;	/* NULL when remote */
	/* remote: the signer process signs (ca_signer_new_remote) */
	ca_sign_cert_fn	 remote;
	ca_sign_der_fn	 remote_der;	/* NULL: remote only */
	void		*remote_arg;
};

/* ---- profile ---- */

static const struct {
	const char	*name;
	uint32_t	 bit;
} ku_names[] = {
	{ "digitalSignature",	KU_DIGITAL_SIGNATURE },
	{ "nonRepudiation",	KU_NON_REPUDIATION },
	{ "contentCommitment",	KU_NON_REPUDIATION },
	{ "keyEncipherment",	KU_KEY_ENCIPHERMENT },
	{ "dataEncipherment",	KU_DATA_ENCIPHERMENT },
	{ "keyAgreement",	KU_KEY_AGREEMENT },
	{ "keyCertSign",	KU_KEY_CERT_SIGN },
	{ "cRLSign",		KU_CRL_SIGN },
	{ "encipherOnly",	KU_ENCIPHER_ONLY },
	{ "decipherOnly",	KU_DECIPHER_ONLY },
};

void
ca_profile_default(struct ca_profile *p)
{
	memset(p, 0, sizeof(*p));
	p->key_usage = KU_DIGITAL_SIGNATURE;
	p->eku[0] = NID_client_auth;
	p->num_eku = 1;
}

/* Copies the next comma-separated word (spaces trimmed) into w. */
static int
next_word(const char **sp, char *w, size_t wlen)
{
	const char *s = *sp, *e;
	size_t n;

	while (*s == ' ' || *s == ',')
		s++;
	if (*s == '\0')
		return 0;
	e = s;
	while (*e != '\0' && *e != ',')
		e++;
	n = (size_t)(e - s);
	while (n > 0 && s[n - 1] == ' ')
		n--;
	if (n >= wlen)
		n = wlen - 1;
	memcpy(w, s, n);
	w[n] = '\0';
	*sp = e;
	return 1;
}

int
ca_profile_parse(struct ca_profile *out, const char *key_usage,
    const char *ext_key_usage, char *err, size_t err_len)
{
	struct ca_profile p;
	const char *s;
	char w[128];
	size_t i;
	int nid;

	ca_profile_default(&p);
	if (key_usage != NULL && *key_usage != '\0') {
		p.key_usage = 0;
		for (s = key_usage; next_word(&s, w, sizeof(w));) {
			for (i = 0; i < sizeof(ku_names) / sizeof(ku_names[0]);
			    i++)
				if (strcmp(w, ku_names[i].name) == 0)
					break;
			if (i == sizeof(ku_names) / sizeof(ku_names[0])) {
				snprintf(err, err_len, "key usage \"%s\" "
				    "unknown", w);
				return 0;
			}
			p.key_usage |= ku_names[i].bit;
		}
		/* RFC 5280 4.2.1.3: only a CA signs certificates or CRLs. */
		if (p.key_usage & (KU_KEY_CERT_SIGN | KU_CRL_SIGN)) {
			snprintf(err, err_len, "key usage keyCertSign or "
			    "cRLSign is not for subscriber certificates "
			    "(RFC 5280 4.2.1.3)");
			return 0;
		}
	}
	if (ext_key_usage != NULL && *ext_key_usage != '\0') {
		p.num_eku = 0;
		for (s = ext_key_usage; next_word(&s, w, sizeof(w));) {
			if ((nid = OBJ_txt2nid(w)) == NID_undef) {
				snprintf(err, err_len, "extended key usage "
				    "\"%s\" unknown", w);
				return 0;
			}
			/* RFC 6960 4.2.2.2: a certificate with OCSPSigning
			 * issued by the CA is a delegated responder that
			 * could vouch for any serial; anyExtendedKeyUsage
			 * (RFC 5280 4.2.1.12) would allow it too. */
			if (nid == NID_OCSP_sign ||
			    nid == NID_anyExtendedKeyUsage) {
				snprintf(err, err_len, "extended key usage "
				    "\"%s\" is not for subscriber certificates "
				    "(RFC 6960 4.2.2.2)", w);
				return 0;
			}
			if (p.num_eku == CA_PROFILE_MAX_EKU) {
				snprintf(err, err_len, "more than %d extended "
				    "key usages", CA_PROFILE_MAX_EKU);
				return 0;
			}
			p.eku[p.num_eku++] = nid;
		}
	}
	*out = p;
	return 1;
}

/* ---- extensions ---- */

static int
add_ext_i2d(X509 *x, int nid, void *value, int crit)
{
	if (X509_add1_ext_i2d(x, nid, value, crit, X509V3_ADD_REPLACE) != 1) {
		log_ssl("adding extension %s", OBJ_nid2sn(nid));
		return 0;
	}
	return 1;
}

static int
add_basic_constraints(X509 *x, int is_ca)
{
	BASIC_CONSTRAINTS *bc;
	int rc;

	if ((bc = BASIC_CONSTRAINTS_new()) == NULL)
		fatalx("BASIC_CONSTRAINTS_new");
	bc->ca = is_ca ? 0xff : 0;
	rc = add_ext_i2d(x, NID_basic_constraints, bc, 1);
	BASIC_CONSTRAINTS_free(bc);
	return rc;
}

static int
add_key_usage(X509 *x, uint32_t bits)
{
	ASN1_BIT_STRING *bs;
	int i, rc = 0;

	if ((bs = ASN1_BIT_STRING_new()) == NULL)
		fatalx("ASN1_BIT_STRING_new");
	/* X509v3_KU_* value 0x80 is bit 0 (digitalSignature) ... 0x8000
	 * is bit 8 (decipherOnly). */
	for (i = 0; i < 9; i++) {
		uint32_t mask = i < 8 ? 0x80u >> i : 0x8000u;

		if ((bits & mask) && !ASN1_BIT_STRING_set_bit(bs, i, 1))
			fatalx("ASN1_BIT_STRING_set_bit");
	}
	if (bits != 0)
		rc = add_ext_i2d(x, NID_key_usage, bs, 1);
	else
		rc = 1;
	ASN1_BIT_STRING_free(bs);
	return rc;
}

static int
add_eku(X509 *x, const int *nids, size_t num)
{
	EXTENDED_KEY_USAGE *eku;
	size_t i;
	int rc;

	if (num == 0)
		return 1;
	if ((eku = sk_ASN1_OBJECT_new_null()) == NULL)
		fatalx("sk_ASN1_OBJECT_new_null");
	for (i = 0; i < num; i++)
		if (!sk_ASN1_OBJECT_push(eku, OBJ_nid2obj(nids[i])))
			fatalx("sk_ASN1_OBJECT_push");
	rc = add_ext_i2d(x, NID_ext_key_usage, eku, 0);
	sk_ASN1_OBJECT_free(eku);	/* OBJ_nid2obj objects are static */
	return rc;
}

/* SKI (hash of the subject key) and AKI (keyid of issuer's SKI). */
static int
add_key_ids(X509 *x, X509 *issuer)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext = NULL;
	int rc = 0;

	X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
	ext = X509V3_EXT_nconf_nid(NULL, &ctx, NID_subject_key_identifier,
	    "hash");
	if (ext == NULL || !X509_add_ext(x, ext, -1)) {
		log_ssl("subjectKeyIdentifier");
		goto out;
	}
	X509_EXTENSION_free(ext);
	ext = X509V3_EXT_nconf_nid(NULL, &ctx, NID_authority_key_identifier,
	    "keyid:always");
	if (ext == NULL || !X509_add_ext(x, ext, -1)) {
		log_ssl("authorityKeyIdentifier");
		goto out;
	}
	rc = 1;
 out:
	X509_EXTENSION_free(ext);
	return rc;
}

static GENERAL_NAME *
uri_name(const char *base, const char *suffix)
{
	GENERAL_NAME *gn;
	ASN1_IA5STRING *ia5;
	char url[CA_URL_MAX + 64];

	snprintf(url, sizeof(url), "%s%s", base, suffix);
	if ((gn = GENERAL_NAME_new()) == NULL ||
	    (ia5 = ASN1_IA5STRING_new()) == NULL ||
	    !ASN1_STRING_set(ia5, url, -1))
		fatalx("GENERAL_NAME uri");
	GENERAL_NAME_set0_value(gn, GEN_URI, ia5);
	return gn;
}

static int
add_aia(X509 *x, const char *url)
{
	AUTHORITY_INFO_ACCESS *aia;
	ACCESS_DESCRIPTION *ad;
	int rc, i;
	static const struct {
		int		 nid;
		const char	*path;
	} m[] = { { NID_ad_OCSP, "/ocsp" }, { NID_ad_ca_issuers, "/ca.crt" } };

	if ((aia = AUTHORITY_INFO_ACCESS_new()) == NULL)
		fatalx("AUTHORITY_INFO_ACCESS_new");
	for (i = 0; i < 2; i++) {
		if ((ad = ACCESS_DESCRIPTION_new()) == NULL)
			fatalx("ACCESS_DESCRIPTION_new");
		ASN1_OBJECT_free(ad->method);
		ad->method = OBJ_nid2obj(m[i].nid);
		GENERAL_NAME_free(ad->location);
		ad->location = uri_name(url, m[i].path);
		if (!sk_ACCESS_DESCRIPTION_push(aia, ad))
			fatalx("sk_ACCESS_DESCRIPTION_push");
	}
	rc = add_ext_i2d(x, NID_info_access, aia, 0);
	AUTHORITY_INFO_ACCESS_free(aia);
	return rc;
}

/* CRL distribution points (nid crl_distribution_points or freshest_crl)
 * with one fullName URI. */
static int
add_dp(X509 *x, int nid, const char *url, const char *path)
{
	CRL_DIST_POINTS *dps;
	DIST_POINT *dp;

	int rc;

	if ((dps = sk_DIST_POINT_new_null()) == NULL ||
	    (dp = DIST_POINT_new()) == NULL ||
	    (dp->distpoint = DIST_POINT_NAME_new()) == NULL ||
	    (dp->distpoint->name.fullname = GENERAL_NAMES_new()) == NULL)
		fatalx("DIST_POINT_new");
	dp->distpoint->type = 0;	/* fullName */
	if (!sk_GENERAL_NAME_push(dp->distpoint->name.fullname,
	    uri_name(url, path)) || !sk_DIST_POINT_push(dps, dp))
		fatalx("sk_push");
	rc = add_ext_i2d(x, nid, dps, 0);
	CRL_DIST_POINTS_free(dps);
	return rc;
}

static int
add_ocsp_nocheck(X509 *x)
{
	ASN1_NULL *n;
	int rc;

	if ((n = ASN1_NULL_new()) == NULL)
		fatalx("ASN1_NULL_new");
	rc = add_ext_i2d(x, NID_id_pkix_OCSP_noCheck, n, 0);
	ASN1_NULL_free(n);
	return rc;
}

/* One SAN per name: an IP address when it parses as IPv4/IPv6, else DNS. */
static int
add_san_names(X509 *x, const char *const *names, size_t num, char *err,
    size_t err_len)
{
	GENERAL_NAMES *gens;
	GENERAL_NAME *gn;
	ASN1_OCTET_STRING *os;
	ASN1_IA5STRING *ia5;
	unsigned char ip[16];
	size_t i, j, iplen;
	int rc = 0;

	if ((gens = GENERAL_NAMES_new()) == NULL)
		fatalx("GENERAL_NAMES_new");
	for (i = 0; i < num; i++) {
		const char *n = names[i];

		if ((gn = GENERAL_NAME_new()) == NULL)
			fatalx("GENERAL_NAME_new");
		iplen = inet_pton(AF_INET, n, ip) == 1 ? 4 :
		    inet_pton(AF_INET6, n, ip) == 1 ? 16 : 0;
		if (iplen) {
			if ((os = ASN1_OCTET_STRING_new()) == NULL ||
			    !ASN1_OCTET_STRING_set(os, ip, (int)iplen))
				fatalx("ASN1_OCTET_STRING");
			GENERAL_NAME_set0_value(gn, GEN_IPADD, os);
		} else {
			for (j = 0; n[j] != '\0'; j++)
				if (strchr("abcdefghijklmnopqrstuvwxyz"
				    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-*",
				    n[j]) == NULL)
					break;
			if (j == 0 || n[j] != '\0' || j > 253) {
				GENERAL_NAME_free(gn);
				snprintf(err, err_len, "TLS name \"%s\" is "
				    "neither a DNS name nor an IP address", n);
				goto out;
			}
			if ((ia5 = ASN1_IA5STRING_new()) == NULL ||
			    !ASN1_STRING_set(ia5, n, -1))
				fatalx("ASN1_IA5STRING");
			GENERAL_NAME_set0_value(gn, GEN_DNS, ia5);
		}
		if (!sk_GENERAL_NAME_push(gens, gn))
			fatalx("sk_GENERAL_NAME_push");
	}
	if (!add_ext_i2d(x, NID_subject_alt_name, gens, 0)) {
		snprintf(err, err_len, "cannot add subjectAltName");
		goto out;
	}
	rc = 1;
 out:
	GENERAL_NAMES_free(gens);
	return rc;
}

/* Copies DNS, email and IP SANs of the CSR; other types are dropped. */
static int
copy_csr_san(X509 *x, const struct ca_csr *req)
{
	STACK_OF(X509_EXTENSION) *exts;
	GENERAL_NAMES *in = NULL, *keep = NULL;
	GENERAL_NAME *gn;
	int i, rc = 0;

	exts = ca_csr_extensions(req);
	if (exts == NULL) {
		ERR_clear_error();
		return 1;
	}
	in = X509V3_get_d2i(exts, NID_subject_alt_name, NULL, NULL);
	if (in == NULL) {
		ERR_clear_error();
		rc = 1;
		goto out;
	}
	if ((keep = GENERAL_NAMES_new()) == NULL)
		fatalx("GENERAL_NAMES_new");
	for (i = 0; i < sk_GENERAL_NAME_num(in); i++) {
		gn = sk_GENERAL_NAME_value(in, i);
		if (gn->type != GEN_DNS && gn->type != GEN_EMAIL &&
		    gn->type != GEN_IPADD) {
			log_debug("CSR SAN of type %d dropped", gn->type);
			continue;
		}
		if ((gn = GENERAL_NAME_dup(gn)) == NULL ||
		    !sk_GENERAL_NAME_push(keep, gn))
			fatalx("GENERAL_NAME_dup");
	}
	rc = sk_GENERAL_NAME_num(keep) == 0 ||
	    add_ext_i2d(x, NID_subject_alt_name, keep, 0);
 out:
	GENERAL_NAMES_free(in);
	GENERAL_NAMES_free(keep);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	return rc;
}

/* ---- building and signing ---- */

static int
set_serial(X509 *x, const uint8_t serial[CA_SERIAL_LEN])
{
	BIGNUM *bn;
	ASN1_INTEGER *ai = NULL;
	int rc = 0;

	if ((bn = BN_bin2bn(serial, CA_SERIAL_LEN, NULL)) == NULL ||
	    (ai = BN_to_ASN1_INTEGER(bn, NULL)) == NULL ||
	    !X509_set_serialNumber(x, ai))
		log_ssl("serial");
	else
		rc = 1;
	ASN1_INTEGER_free(ai);
	BN_free(bn);
	return rc;
}

/*
 * A new v3 certificate with serial, names, key (pub NULL: set by the
 * caller) and validity
 * [now - BACKDATE, not_after]; extensions are added by the caller.
 */
static X509 *
cert_start(const uint8_t serial[CA_SERIAL_LEN], const X509_NAME *subject,
    const X509_NAME *issuer, EVP_PKEY *pub, time_t now, time_t not_after)
{
	X509 *x;

	if ((x = X509_new()) == NULL)
		fatalx("X509_new");
	if (!X509_set_version(x, X509_VERSION_3) || !set_serial(x, serial) ||
	    !X509_set_subject_name(x, subject) ||
	    !X509_set_issuer_name(x, issuer) ||
	    (pub != NULL && !X509_set_pubkey(x, pub)) ||
	    ASN1_TIME_set(X509_getm_notBefore(x), now - BACKDATE) == NULL ||
	    ASN1_TIME_set(X509_getm_notAfter(x), not_after) == NULL) {
		log_ssl("building certificate");
		X509_free(x);
		return NULL;
	}
	return x;
}

static int
cert_sign(X509 *x, EVP_PKEY *key)
{
	if (X509_sign(x, key, sigmd_get(key)) <= 0) {
		log_ssl("X509_sign");
		return 0;
	}
	return 1;
}

static X509_NAME *
cn_name(const char *cn)
{
	X509_NAME *n;

	if ((n = X509_NAME_new()) == NULL)
		fatalx("X509_NAME_new");
	if (!X509_NAME_add_entry_by_NID(n, NID_commonName, MBSTRING_UTF8,
	    (const unsigned char *)cn, -1, -1, 0)) {
		log_ssl("commonName \"%s\"", cn);
		X509_NAME_free(n);
		return NULL;
	}
	return n;
}

/* ---- init ---- */

struct init_keys {
	EVP_PKEY	*ca, *ocsp, *tls;
};

static X509 *
make_root(const X509_NAME *name, EVP_PKEY *key, int days, time_t now,
    uint8_t serial[CA_SERIAL_LEN])
{
	X509 *x = NULL;

	ca_random_serial(serial);
	x = cert_start(serial, name, name, key, now, now + (time_t)days * 86400);
	if (x == NULL || !add_basic_constraints(x, 1) ||
	    !add_key_usage(x, KU_KEY_CERT_SIGN | KU_CRL_SIGN) ||
	    !add_key_ids(x, NULL) || !cert_sign(x, key)) {
		X509_free(x);
		x = NULL;
	}
	return x;
}

X509_NAME *
ca_init_name(const struct ca_init_opts *o, char *out_cn, size_t cn_len,
    char *err, size_t err_len)
{
	X509_NAME *n;

	if (o->subject == NULL) {
		snprintf(out_cn, cn_len, "%s", o->cn ? o->cn : CA_DEFAULT_CN);
		if ((n = cn_name(out_cn)) == NULL)
			snprintf(err, err_len, "bad common name \"%s\"",
			    out_cn);
		return n;
	}
	if ((n = ca_subject_parse(o->subject, err, err_len)) == NULL)
		return NULL;
	if (X509_NAME_entry_count(n) == 0) {
		snprintf(err, err_len, "--subject: an empty name (RFC 5280 "
		    "4.1.2.6: a CA's subject is not empty)");
		X509_NAME_free(n);
		return NULL;
	}
	ca_name_last_cn(out_cn, cn_len, n);
	return n;
}

void
ca_name_last_cn(char *out, size_t out_len, const X509_NAME *n)
{
	const X509_NAME_ENTRY *e;
	unsigned char *u = NULL;
	int i, j, len;

	snprintf(out, out_len, "%s", CA_DEFAULT_CN);
	if ((i = X509_NAME_get_index_by_NID(n, NID_commonName, -1)) < 0)
		return;
	while ((j = X509_NAME_get_index_by_NID(n, NID_commonName, i)) >= 0)
		i = j;
	e = X509_NAME_get_entry(n, i);
	/* any string type (an imported CA may use BMPString) as UTF-8 */
	if ((len = ASN1_STRING_to_UTF8(&u, X509_NAME_ENTRY_get_data(e))) > 0)
		snprintf(out, out_len, "%.*s", len, (const char *)u);
	else
		ERR_clear_error();
	OPENSSL_free(u);
}

/* OCSP signer (tls_names NULL) or TLS server certificate. */
X509 *
ca_make_sub(X509 *ca, EVP_PKEY *ca_key, const char *cn, EVP_PKEY *key,
    int days, time_t now, const char *const *tls_names, size_t num_names,
    uint8_t serial[CA_SERIAL_LEN], char *err, size_t err_len)
{
	X509_NAME *name;
	X509 *x = NULL;
	int ok, eku;
	uint32_t ku = KU_DIGITAL_SIGNATURE;
	int64_t ca_nb, ca_na;
	time_t not_after;

	if ((name = cn_name(cn)) == NULL) {
		snprintf(err, err_len, "bad common name \"%s\"", cn);
		return NULL;
	}
	ca_random_serial(serial);
	not_after = now + (time_t)days * 86400;
	/* Never outlive the CA (RFC 5280 6.1.3: a chain is valid only
	 * while every certificate in it is). */
	if (!ca_cert_times(ca, &ca_nb, &ca_na)) {
		snprintf(err, err_len, "CA validity unreadable");
		X509_NAME_free(name);
		return NULL;
	}
	if ((int64_t)not_after > ca_na)
		not_after = (time_t)ca_na;
	x = cert_start(serial, name, X509_get_subject_name(ca), key, now,
	    not_after);
	ok = x != NULL && add_basic_constraints(x, 0);
	if (tls_names == NULL) {
		eku = NID_OCSP_sign;
		ok = ok && add_ocsp_nocheck(x);
	} else {
		eku = NID_server_auth;
		if (EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA)
			ku |= KU_KEY_ENCIPHERMENT;
		ok = ok && add_san_names(x, tls_names, num_names, err,
		    err_len);
	}
	ok = ok && add_key_usage(x, ku) && add_eku(x, &eku, 1) &&
	    add_key_ids(x, ca) && cert_sign(x, ca_key);
	if (!ok) {
		if (err[0] == '\0')
			snprintf(err, err_len, "cannot build the %s "
			    "certificate", tls_names ? "TLS" : "OCSP");
		X509_free(x);
		x = NULL;
	}
	X509_NAME_free(name);
	return x;
}

/* A TLS client certificate CN=cn (a standby's replication certificate:
 * EKU clientAuth, no SAN), like ca_make_sub otherwise. */
X509 *
ca_make_client(X509 *ca, EVP_PKEY *ca_key, const char *cn, EVP_PKEY *key,
    int days, time_t now, uint8_t serial[CA_SERIAL_LEN], char *err,
    size_t err_len)
{
	X509_NAME *name;
	X509 *x = NULL;
	int64_t ca_nb, ca_na;
	time_t not_after;
	int eku = NID_client_auth;

	if ((name = cn_name(cn)) == NULL) {
		snprintf(err, err_len, "bad common name \"%s\"", cn);
		return NULL;
	}
	ca_random_serial(serial);
	not_after = now + (time_t)days * 86400;
	if (!ca_cert_times(ca, &ca_nb, &ca_na)) {
		snprintf(err, err_len, "CA validity unreadable");
		X509_NAME_free(name);
		return NULL;
	}
	if ((int64_t)not_after > ca_na)
		not_after = (time_t)ca_na;
	x = cert_start(serial, name, X509_get_subject_name(ca), key, now,
	    not_after);
	if (x == NULL || !add_basic_constraints(x, 0) ||
	    !add_key_usage(x, KU_DIGITAL_SIGNATURE) || !add_eku(x, &eku, 1) ||
	    !add_key_ids(x, ca) || !cert_sign(x, ca_key)) {
		snprintf(err, err_len, "cannot build the client certificate");
		X509_free(x);
		x = NULL;
	}
	X509_NAME_free(name);
	return x;
}

int
ca_path_exists(const char *path)
{
	struct stat sb;

	return lstat(path, &sb) == 0 || errno != ENOENT;
}

int
ca_init_dirs(const char *dir, const char *priv, char *err, size_t err_len)
{
	struct stat sb;

	if (mkdir(dir, 0755) == -1 && errno != EEXIST) {
		snprintf(err, err_len, "%s: %s", dir, strerror(errno));
		return 0;
	}
	if (mkdir(priv, 0700) == -1 && errno != EEXIST) {
		snprintf(err, err_len, "%s: %s", priv, strerror(errno));
		return 0;
	}
	if (lstat(priv, &sb) == -1 || !S_ISDIR(sb.st_mode)) {
		snprintf(err, err_len, "%s: not a directory", priv);
		return 0;
	}
	if ((sb.st_mode & 077) != 0 && chmod(priv, 0700) == -1) {
		snprintf(err, err_len, "%s: chmod 0700: %s", priv,
		    strerror(errno));
		return 0;
	}
	return 1;
}

/* A new key of type, or the token's that uri names (made if none). */
static int
init_key(EVP_PKEY **out, const char *uri, const char *type, const char *what,
    char *err, size_t err_len)
{
	char dn[CA_KEY_URI_MAX];
	int made;

	if (uri == NULL) {
		if (ca_keygen(out, type))
			return 1;
		snprintf(err, err_len, "cannot generate the %s key (%s)", what,
		    type ? type : CA_DEFAULT_KEY_TYPE);
		return 0;
	}
	if (!ca_key_token_obtain(out, uri, type, &made, err, err_len))
		return 0;
	ca_key_uri_display(dn, sizeof(dn), uri);
	log_info("%s key: %s the token's key %s", what, made ? "made" :
	    "using", dn);
	return 1;
}

int
ca_init_dir(struct ca_init_result *out, const struct ca_init_opts *o,
    char *err, size_t err_len)
{
	static const char *const def_names[] = { "localhost", "127.0.0.1" };
	static const char *const files[] = { "private/ca.key",
	    "private/ocsp.key", "private/tls.key", "ca.crt", "ocsp.crt",
	    "tls.crt" };
	struct init_keys k = { NULL, NULL, NULL };
	struct ca_init_result r;
	char paths[6][INIT_PATH_MAX], priv[INIT_PATH_MAX], ocn[256];
	char cn[CA_SUBJECT_MAX];
	X509_NAME *name = NULL;
	const char *const *names = o->tls_names ? o->tls_names : def_names;
	size_t num_names = o->tls_names ? o->num_tls_names : 2;
	time_t now = time(NULL);
	int i, made = 0, rc = 0;

	memset(&r, 0, sizeof(r));
	if (err_len > 0)
		err[0] = '\0';
	if (o->dir == NULL || *o->dir == '\0' || num_names == 0 ||
	    (o->cn != NULL && *o->cn == '\0') || o->ca_days < 0 ||
	    o->ocsp_days < 0 || o->tls_days < 0 || o->ca_days > MAX_DAYS ||
	    o->ocsp_days > MAX_DAYS || o->tls_days > MAX_DAYS) {
		snprintf(err, err_len, "init: bad options");
		goto out;
	}
	for (i = 0; i < 6; i++) {
		if ((size_t)snprintf(paths[i], sizeof(paths[i]), "%s/%s",
		    o->dir, files[i]) >= sizeof(paths[i])) {
			snprintf(err, err_len, "%s: path too long", o->dir);
			goto out;
		}
		if (ca_path_exists(paths[i])) {
			snprintf(err, err_len, "%s exists: the CA is already "
			    "initialised, refusing to overwrite it", paths[i]);
			goto out;
		}
	}
	if ((name = ca_init_name(o, cn, sizeof(cn), err, err_len)) == NULL)
		goto out;
	snprintf(priv, sizeof(priv), "%s/private", o->dir);
	if (!ca_init_dirs(o->dir, priv, err, err_len))
		goto out;
	if (!init_key(&k.ca, o->key_uri, o->key_type, "CA", err, err_len) ||
	    !init_key(&k.ocsp, o->ocsp_key_uri, o->key_type, "OCSP signer",
	    err, err_len) ||
	    !init_key(&k.tls, NULL, o->key_type, "TLS", err, err_len))
		goto out;
	if ((r.ca_cert = make_root(name, k.ca, o->ca_days ? o->ca_days : 3650,
	    now, r.ca_serial)) == NULL) {
		snprintf(err, err_len, "cannot build the CA certificate");
		goto out;
	}
	snprintf(ocn, sizeof(ocn), "%.200s OCSP responder", cn);
	if ((r.ocsp_cert = ca_make_sub(r.ca_cert, k.ca, ocn, k.ocsp,
	    o->ocsp_days ? o->ocsp_days : 365, now, NULL, 0, r.ocsp_serial,
	    err, err_len)) == NULL)
		goto out;
	if ((r.tls_cert = ca_make_sub(r.ca_cert, k.ca, names[0], k.tls,
	    o->tls_days ? o->tls_days : 365, now, names, num_names,
	    r.tls_serial, err, err_len)) == NULL)
		goto out;
	for (made = 0; made < 6; made++) {
		int ok;

		if ((made == 0 && o->key_uri != NULL) ||
		    (made == 1 && o->ocsp_key_uri != NULL))
			continue;	/* in the token; no file */
		if (made < 3)
			ok = ca_key_write(paths[made], made == 0 ? k.ca :
			    made == 1 ? k.ocsp : k.tls, made == 0 ?
			    o->passphrase : NULL, err, err_len);
		else
			ok = ca_cert_write(paths[made], made == 3 ? r.ca_cert :
			    made == 4 ? r.ocsp_cert : r.tls_cert, err, err_len);
		if (!ok)
			goto out;
	}
	log_info("CA initialised in %s", o->dir);
	*out = r;
	memset(&r, 0, sizeof(r));
	rc = 1;
 out:
	if (!rc)
		for (i = 0; i < made; i++)
			unlink(paths[i]);
	ca_init_result_cleanup(&r);
	X509_NAME_free(name);
	EVP_PKEY_free(k.ca);
	EVP_PKEY_free(k.ocsp);
	EVP_PKEY_free(k.tls);
	return rc;
}

void
ca_init_result_cleanup(struct ca_init_result *r)
{
	X509_free(r->ca_cert);
	X509_free(r->ocsp_cert);
	X509_free(r->tls_cert);
	memset(r, 0, sizeof(*r));
}

/* ---- signer ---- */

int
ca_signer_new(struct ca_signer **out, X509 *ca_cert, EVP_PKEY *ca_key,
    X509 *ocsp_cert, EVP_PKEY *ocsp_key, char *err, size_t err_len)
{
	struct ca_signer *s;

	*out = NULL;
	if (X509_check_private_key(ca_cert, ca_key) != 1) {
		ERR_clear_error();
		snprintf(err, err_len, "the CA key does not match the CA "
		    "certificate");
		return 0;
	}
	if (X509_check_ca(ca_cert) == 0) {
		snprintf(err, err_len, "the CA certificate is not a CA "
		    "(basicConstraints/keyUsage)");
		return 0;
	}
	if (ocsp_cert != NULL) {
		if (ocsp_key == NULL ||
		    X509_check_private_key(ocsp_cert, ocsp_key) != 1) {
			ERR_clear_error();
			snprintf(err, err_len, "the OCSP key does not match "
			    "the OCSP certificate");
			return 0;
		}
		if (X509_check_issued(ca_cert, ocsp_cert) != X509_V_OK ||
		    X509_verify(ocsp_cert, X509_get0_pubkey(ca_cert)) != 1) {
			ERR_clear_error();
			snprintf(err, err_len, "the OCSP certificate was not "
			    "issued by this CA");
			return 0;
		}
	}
	if ((s = calloc(1, sizeof(*s))) == NULL)
		fatal("calloc");
	if (ocsp_cert == NULL) {
		ocsp_cert = ca_cert;
		ocsp_key = ca_key;
	}
	if (!X509_up_ref(ca_cert) || !EVP_PKEY_up_ref(ca_key) ||
	    !X509_up_ref(ocsp_cert) || !EVP_PKEY_up_ref(ocsp_key))
		fatalx("up_ref");
	s->ca = ca_cert;
	s->ca_key = ca_key;
	s->ocsp = ocsp_cert;
	s->ocsp_key = ocsp_key;
	*out = s;
	return 1;
}

int
ca_signer_load(struct ca_signer **out, const struct ca_signer_paths *p,
    char *err, size_t err_len)
{
	X509 *ca = NULL, *ocsp = NULL;
	EVP_PKEY *ca_key = NULL, *ocsp_key = NULL;
	int rc = 0;

	*out = NULL;
	if (!ca_cert_read(&ca, p->ca_cert, err, err_len) ||
	    !ca_key_read(&ca_key, p->ca_key, p->passphrase, err, err_len))
		goto out;
	if (p->ocsp_cert != NULL && *p->ocsp_cert != '\0') {
		if (p->ocsp_key == NULL || *p->ocsp_key == '\0') {
			snprintf(err, err_len, "%s: no OCSP key given",
			    p->ocsp_cert);
			goto out;
		}
		if (!ca_cert_read(&ocsp, p->ocsp_cert, err, err_len) ||
		    !ca_key_read(&ocsp_key, p->ocsp_key, NULL, err, err_len))
			goto out;
	}
	rc = ca_signer_new(out, ca, ca_key, ocsp, ocsp_key, err, err_len);
 out:
	X509_free(ca);
	X509_free(ocsp);
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(ocsp_key);
	return rc;
}

int
ca_signer_new_remote(struct ca_signer **out, X509 *ca_cert, X509 *ocsp_cert,
    ca_sign_cert_fn fn, void *arg, char *err, size_t err_len)
{
	struct ca_signer *s;

	*out = NULL;
	if (X509_check_ca(ca_cert) == 0) {
		snprintf(err, err_len, "the CA certificate is not a CA "
		    "(basicConstraints/keyUsage)");
		return 0;
	}
	if (ocsp_cert != NULL && (X509_check_issued(ca_cert, ocsp_cert) !=
	    X509_V_OK || X509_verify(ocsp_cert, X509_get0_pubkey(ca_cert)) !=
	    1)) {
		ERR_clear_error();
		snprintf(err, err_len, "the OCSP certificate was not issued "
		    "by this CA");
		return 0;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL)
		fatal("calloc");
	if (ocsp_cert == NULL)
		ocsp_cert = ca_cert;
	if (!X509_up_ref(ca_cert) || !X509_up_ref(ocsp_cert))
		fatalx("up_ref");
	s->ca = ca_cert;
	s->ocsp = ocsp_cert;
	s->remote = fn;
	s->remote_arg = arg;
	*out = s;
	return 1;
}

void
ca_signer_set_remote_der(struct ca_signer *s, ca_sign_der_fn fn)
{
	s->remote_der = fn;
}

int
ca_signer_sign_cert(const struct ca_signer *s, X509 **x, int ocsp_renewal,
    char *err, size_t err_len)
{
	if (s->remote != NULL)
		return s->remote(s->remote_arg, x, ocsp_renewal, err, err_len);
	if (!cert_sign(*x, s->ca_key)) {
		snprintf(err, err_len, "signing the certificate failed");
		return 0;
	}
	return 1;
}

void
ca_signer_free(struct ca_signer *s)
{
	if (s == NULL)
		return;
	X509_free(s->ca);
	EVP_PKEY_free(s->ca_key);
	X509_free(s->ocsp);
	EVP_PKEY_free(s->ocsp_key);
	free(s);
}

X509 *
ca_signer_get0_cert(const struct ca_signer *s)
{
	return s->ca;
}

EVP_PKEY *
ca_signer_get0_key(const struct ca_signer *s)
{
	return s->ca_key;
}

X509 *
ca_signer_get0_ocsp_cert(const struct ca_signer *s)
{
	return s->ocsp;
}

EVP_PKEY *
ca_signer_get0_ocsp_key(const struct ca_signer *s)
{
	return s->ocsp_key;
}

int
ca_signer_issuer_hashes(const struct ca_signer *s, const EVP_MD *md,
    uint8_t *out_name_hash, uint8_t *out_key_hash, unsigned int *out_len)
{
	const ASN1_BIT_STRING *pk;
	unsigned char *der = NULL;
	unsigned int n1, n2;
	int len, rc = 0;

	if ((len = i2d_X509_NAME(X509_get_subject_name(s->ca), &der)) <= 0 ||
	    (pk = X509_get0_pubkey_bitstr(s->ca)) == NULL ||
	    !EVP_Digest(der, (size_t)len, out_name_hash, &n1, md, NULL) ||
	    !EVP_Digest(pk->data, (size_t)pk->length, out_key_hash, &n2, md,
	    NULL)) {
		log_ssl("issuer hashes");
		goto out;
	}
	*out_len = n1;
	rc = 1;
 out:
	OPENSSL_free(der);
	return rc;
}

/* ---- issuance ---- */

/* Checks the base URL and copies it without a trailing '/'. */
static int
base_url_ok(char *out, size_t out_len, const char *url, char *err,
    size_t err_len)
{
	size_t i, n = strlen(url);

	char why[CA_ERR_MAX];

	if (!conf_http_url_check(url, why, sizeof(why))) {
		snprintf(err, err_len, "http-url: %s", why);
		return 0;
	}
	if (n >= out_len || n > CA_URL_MAX) {
		snprintf(err, err_len, "http-url is too long");
		return 0;
	}
	for (i = 0; i < n; i++)
		if ((unsigned char)url[i] <= 0x20 ||
		    (unsigned char)url[i] >= 0x7f) {
			snprintf(err, err_len, "http-url has a blank or "
			    "non-ASCII character");
			return 0;
		}
	memcpy(out, url, n + 1);
	while (n > 0 && out[n - 1] == '/')
		out[--n] = '\0';
	return 1;
}

static int
serial_ok(const uint8_t s[CA_SERIAL_LEN])
{
	uint8_t acc = 0;
	size_t i;

	for (i = 0; i < CA_SERIAL_LEN; i++)
		acc |= s[i];
	return acc != 0 && (s[0] & 0x80) == 0;
}

static int
leaf_exts(X509 *x, X509 *ca, const struct ca_issue_params *ip,
    const struct ca_profile *prof, const char *url)
{
	if (!add_basic_constraints(x, 0) || !add_key_usage(x, prof->key_usage) ||
	    !add_eku(x, prof->eku, prof->num_eku) || !add_key_ids(x, ca))
		return 0;
	if (ip->num_sans > 0) {
		char e[CA_ERR_MAX];

		if (!ca_add_sans(x, ip->sans, ip->num_sans, e, sizeof(e))) {
			log_warnx("issue: %s", e);
			return 0;
		}
	} else if (prof->copy_san && !copy_csr_san(x, ip->req))
		return 0;
	if (url[0] != '\0' && (!add_aia(x, url) ||
	    !add_dp(x, NID_crl_distribution_points, url, "/crl") ||
	    !add_dp(x, NID_freshest_crl, url, "/crl/delta.crl")))
		return 0;
	return 1;
}

/*
 * The certificate's key: the CSR's SubjectPublicKeyInfo copied as it is
 * when its bytes are the encoding OpenSSL would make of the key (spki),
 * else the key encoded again.  Encoding a key goes through OpenSSL 3's
 * encoder lookup, which cost more than the rest of the certificate; the
 * copy gives the same bytes.
 */
static int
leaf_pubkey(X509 *x, const struct ca_csr *req, EVP_PKEY *pub,
    const uint8_t *spki, size_t spki_len)
{
	const ASN1_BIT_STRING *key = ca_csr_spki_key(req);
	X509_ALGOR *dalg = NULL;
	const uint8_t *raw;
	unsigned char *bits = NULL;
	size_t raw_len;
	int pk_len, rc = 0;

	/* the CSR's SPKI as received is the DER OpenSSL would write: its
	 * algorithm and key BIT STRING (no unused bits) give those bytes */
	raw = ca_csr_spki(req, &raw_len);
	if (spki == NULL || raw == NULL || raw_len != spki_len ||
	    memcmp(raw, spki, spki_len) != 0) {
		rc = X509_set_pubkey(x, pub);
		goto out;
	}
	pk_len = ASN1_STRING_length(key);
	if (!X509_PUBKEY_get0_param(NULL, NULL, NULL, &dalg,
	    X509_get_X509_PUBKEY(x)) || pk_len <= 0 ||
	    (bits = OPENSSL_memdup(ASN1_STRING_get0_data(key),
	    (size_t)pk_len)) == NULL)
		goto out;
	/* the key bits (unused bits 0, as the re-encoding showed), then
	 * the algorithm with its parameters */
	if (!X509_PUBKEY_set0_param(X509_get_X509_PUBKEY(x), NULL,
	    V_ASN1_UNDEF, NULL, bits, pk_len))
		goto out;
	bits = NULL;
	rc = X509_ALGOR_copy(dalg, ca_csr_spki_alg(req));
 out:
	OPENSSL_free(bits);
	return rc;
}

int
ca_issue(const struct ca_signer *s, struct ca_issued *out,
    const struct ca_issue_params *ip, char *err, size_t err_len)
{
	struct ca_profile def;
	const struct ca_profile *prof = ip->profile;
	X509 *x = NULL;
	EVP_PKEY *pub;
	char url[CA_URL_MAX + 1] = "";
	time_t now = ip->now ? ip->now : time(NULL), not_after;
	int64_t ca_nb, ca_na;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	if (prof == NULL) {
		ca_profile_default(&def);
		prof = &def;
	}
	if (ip->req == NULL || (pub = ca_csr_pubkey(ip->req)) == NULL) {
		snprintf(err, err_len, "issue: no CSR public key");
		goto out;
	}
	if (!serial_ok(ip->serial) || ip->days < 1 || ip->days > MAX_DAYS) {
		snprintf(err, err_len, "issue: bad serial or validity days");
		goto out;
	}
	if (ip->base_url != NULL && ip->base_url[0] != '\0' &&
	    !base_url_ok(url, sizeof(url), ip->base_url, err, err_len))
		goto out;
	not_after = now + (time_t)ip->days * 86400;
	if (!ca_cert_times(s->ca, &ca_nb, &ca_na)) {
		snprintf(err, err_len, "issue: CA validity unreadable");
		goto out;
	}
	/* An expired (or nearly) CA would make notAfter < notBefore. */
	if (ca_na < (int64_t)now + ISSUE_MIN_CA_LEFT) {
		snprintf(err, err_len, "issue: the CA certificate %s; refusing "
		    "to issue (renew the CA)", ca_na <= (int64_t)now ?
		    "has expired" : "expires within a day");
		goto out;
	}
	if ((int64_t)not_after > ca_na) {
		log_warnx("issue: validity cut from %d to %lld days: the CA "
		    "certificate expires first", ip->days,
		    (long long)((ca_na - (int64_t)now) / 86400));
		not_after = (time_t)ca_na;	/* never outlive the CA */
	}
	if ((x = cert_start(ip->serial, ip->subject != NULL ? ip->subject :
	    ca_csr_subject(ip->req),
	    X509_get_subject_name(s->ca), NULL, now, not_after)) == NULL ||
	    !leaf_pubkey(x, ip->req, pub, ip->spki, ip->spki_len) ||
	    /* the signer refuses a notBefore before the CA's */
	    ((int64_t)now - BACKDATE < ca_nb && ASN1_TIME_set(
	    X509_getm_notBefore(x), (time_t)ca_nb) == NULL) ||
	    !leaf_exts(x, s->ca, ip, prof, url)) {
		snprintf(err, err_len, "issue: building the certificate "
		    "failed");
		goto out;
	}
	if (ip->der_only && s->remote_der != NULL) {
		/* the TBSCertificate signed is x's: the times are its */
		if (!s->remote_der(s->remote_arg, x, &out->der,
		    &out->der_len, err, err_len))
			goto out;
		if (!ca_cert_times(x, &out->not_before, &out->not_after)) {
			snprintf(err, err_len, "issue: encoding failed");
			goto out;
		}
		rc = 1;
		goto out;
	}
	if (!ca_signer_sign_cert(s, &x, 0, err, err_len))
		goto out;
	if (!ca_cert_der(x, &out->der, &out->der_len) ||
	    !ca_cert_times(x, &out->not_before, &out->not_after)) {
		snprintf(err, err_len, "issue: encoding failed");
		goto out;
	}
	if (!ip->der_only) {
		out->cert = x;
		x = NULL;
	}
	rc = 1;
 out:
	X509_free(x);
	if (!rc)
		ca_issued_cleanup(out);
	return rc;
}

void
ca_issued_cleanup(struct ca_issued *c)
{
	X509_free(c->cert);
	free(c->der);
	memset(c, 0, sizeof(*c));
}
