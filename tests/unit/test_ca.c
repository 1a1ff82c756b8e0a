/*
 * test_ca.c - CA keys, init, signer loading, leaf issuance, CSR checks.
 */
#include <sys/stat.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sodium.h>

#include "common/log.h"
#include "ca/ca.h"
#include "common/keyhash.h"

#define PASS	"correct horse battery"
#define URL	"http://127.0.0.1:7780/"

static char dir[64];

static void
path(char *out, size_t len, const char *name)
{
	snprintf(out, len, "%s/%s", dir, name);
}

static mode_t
mode_of(const char *name)
{
	struct stat sb;
	char p[256];

	path(p, sizeof(p), name);
	if (stat(p, &sb) != 0)
		return (mode_t)-1;
	return sb.st_mode & 07777;
}

/* A DER CSR for key with subject CN=cn. */
static uint8_t *
make_csr(EVP_PKEY *key, const char *cn, size_t *out_len)
{
	X509_REQ *req;
	X509_NAME *name;
	uint8_t *der = NULL, *p;
	const EVP_MD *md = EVP_sha256();
	int len;

	if (EVP_PKEY_get_base_id(key) == EVP_PKEY_ED25519 ||
	    EVP_PKEY_get_base_id(key) == EVP_PKEY_ED448)
		md = NULL;
	req = X509_REQ_new();
	name = X509_NAME_new();
	assert_non_null(req);
	assert_true(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
	    (const unsigned char *)cn, -1, -1, 0));
	assert_true(X509_REQ_set_subject_name(req, name));
	assert_true(X509_REQ_set_pubkey(req, key));
	assert_true(X509_REQ_sign(req, key, md) > 0);
	len = i2d_X509_REQ(req, NULL);
	assert_true(len > 0);
	der = malloc((size_t)len);
	p = der;
	assert_int_equal(i2d_X509_REQ(req, &p), len);
	*out_len = (size_t)len;
	X509_NAME_free(name);
	X509_REQ_free(req);
	return der;
}

static int
group_setup(void **state)
{
	struct ca_init_opts o;
	struct ca_init_result r;
	char err[CA_ERR_MAX];

	(void)state;
	if (sodium_init() < 0)
		return -1;
	log_init("test_ca", LOG_LVL_ERR);
	snprintf(dir, sizeof(dir), "/tmp/test_ca.XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	memset(&o, 0, sizeof(o));
	o.dir = dir;
	o.passphrase = PASS;
	if (!ca_init_dir(&r, &o, err, sizeof(err))) {
		fprintf(stderr, "init: %s\n", err);
		return -1;
	}
	ca_init_result_cleanup(&r);
	return 0;
}

static int
group_teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static struct ca_signer *
load_signer(void)
{
	struct ca_signer_paths p;
	struct ca_signer *s = NULL;
	char a[256], b[256], c[256], d[256], err[CA_ERR_MAX];

	path(a, sizeof(a), "ca.crt");
	path(b, sizeof(b), "private/ca.key");
	path(c, sizeof(c), "ocsp.crt");
	path(d, sizeof(d), "private/ocsp.key");
	p.ca_cert = a;
	p.ca_key = b;
	p.passphrase = PASS;
	p.ocsp_cert = c;
	p.ocsp_key = d;
	if (!ca_signer_load(&s, &p, err, sizeof(err)))
		fprintf(stderr, "load: %s\n", err);
	assert_non_null(s);
	return s;
}

static void
test_keygen(void **state)
{
	EVP_PKEY *k;
	char g[64];
	size_t glen;

	(void)state;
	assert_true(ca_keygen(&k, NULL));
	assert_int_equal(EVP_PKEY_get_base_id(k), EVP_PKEY_EC);
	assert_true(EVP_PKEY_get_group_name(k, g, sizeof(g), &glen));
	assert_string_equal(g, "prime256v1");
	EVP_PKEY_free(k);
	assert_true(ca_keygen(&k, "ec-p384"));
	assert_true(EVP_PKEY_get_group_name(k, g, sizeof(g), &glen));
	assert_string_equal(g, "secp384r1");
	EVP_PKEY_free(k);
	assert_true(ca_keygen(&k, "ed25519"));
	assert_int_equal(EVP_PKEY_get_base_id(k), EVP_PKEY_ED25519);
	EVP_PKEY_free(k);
	assert_true(ca_keygen(&k, "rsa-3072"));
	assert_int_equal(EVP_PKEY_get_base_id(k), EVP_PKEY_RSA);
	assert_int_equal(EVP_PKEY_get_bits(k), 3072);
	EVP_PKEY_free(k);
	assert_false(ca_keygen(&k, "dsa-1024"));
	assert_null(k);
}

static void
test_serial(void **state)
{
	uint8_t a[CA_SERIAL_LEN], b[CA_SERIAL_LEN], zero[CA_SERIAL_LEN];
	int i;

	(void)state;
	memset(zero, 0, sizeof(zero));
	for (i = 0; i < 200; i++) {
		ca_random_serial(a);
		assert_int_equal(a[0] & 0x80, 0);
		assert_memory_not_equal(a, zero, CA_SERIAL_LEN);
	}
	ca_random_serial(b);
	assert_memory_not_equal(a, b, CA_SERIAL_LEN);
}

static void
test_init_files(void **state)
{
	struct ca_init_opts o;
	struct ca_init_result r;
	char err[CA_ERR_MAX], cmd[512];

	(void)state;
	assert_int_equal(mode_of("ca.crt"), 0644);
	assert_int_equal(mode_of("ocsp.crt"), 0644);
	assert_int_equal(mode_of("tls.crt"), 0644);
	assert_int_equal(mode_of("private"), 0700);
	assert_int_equal(mode_of("private/ca.key"), 0600);
	assert_int_equal(mode_of("private/ocsp.key"), 0600);
	assert_int_equal(mode_of("private/tls.key"), 0600);

	/* a second init is refused and leaves the files alone */
	memset(&o, 0, sizeof(o));
	o.dir = dir;
	err[0] = '\0';
	assert_false(ca_init_dir(&r, &o, err, sizeof(err)));
	assert_non_null(strstr(err, "already initialised"));
	assert_int_equal(mode_of("ca.crt"), 0644);

	snprintf(cmd, sizeof(cmd), "openssl verify -CAfile %s/ca.crt "
	    "%s/ocsp.crt %s/tls.crt >/dev/null 2>&1", dir, dir, dir);
	assert_int_equal(system(cmd), 0);
	snprintf(cmd, sizeof(cmd), "openssl verify -purpose sslserver "
	    "-CAfile %s/ca.crt %s/tls.crt >/dev/null 2>&1", dir, dir);
	assert_int_equal(system(cmd), 0);
}

static void
test_init_certs(void **state)
{
	struct ca_init_opts o;
	struct ca_init_result r;
	const char *names[] = { "ca.example", "10.1.2.3", "::1" };
	char d[80], err[CA_ERR_MAX];
	uint8_t s[CA_SERIAL_LEN];
	BASIC_CONSTRAINTS *bc;
	int crit;

	(void)state;
	snprintf(d, sizeof(d), "%s/second", dir);
	memset(&o, 0, sizeof(o));
	o.dir = d;
	o.cn = "Example Root";
	o.key_type = "ed25519";
	o.tls_names = names;
	o.num_tls_names = 3;
	assert_true(ca_init_dir(&r, &o, err, sizeof(err)));
	assert_true(ca_cert_serial(r.ca_cert, s));
	assert_memory_equal(s, r.ca_serial, CA_SERIAL_LEN);
	assert_true(ca_cert_serial(r.tls_cert, s));
	assert_memory_equal(s, r.tls_serial, CA_SERIAL_LEN);
	assert_true(ca_cert_serial(r.ocsp_cert, s));
	assert_memory_equal(s, r.ocsp_serial, CA_SERIAL_LEN);

	/* root */
	bc = X509_get_ext_d2i(r.ca_cert, NID_basic_constraints, &crit, NULL);
	assert_non_null(bc);
	assert_int_equal(crit, 1);
	assert_true(bc->ca);
	BASIC_CONSTRAINTS_free(bc);
	assert_int_equal(X509_get_key_usage(r.ca_cert),
	    KU_KEY_CERT_SIGN | KU_CRL_SIGN);
	assert_int_equal(ASN1_OCTET_STRING_cmp(
	    X509_get0_authority_key_id(r.ca_cert),
	    X509_get0_subject_key_id(r.ca_cert)), 0);
	assert_int_equal(X509_verify(r.ca_cert, X509_get0_pubkey(r.ca_cert)),
	    1);

	/* OCSP signer */
	assert_int_equal(X509_get_extended_key_usage(r.ocsp_cert),
	    XKU_OCSP_SIGN);
	assert_true(X509_get_ext_by_NID(r.ocsp_cert, NID_id_pkix_OCSP_noCheck,
	    -1) >= 0);
	assert_int_equal(X509_get_key_usage(r.ocsp_cert), KU_DIGITAL_SIGNATURE);
	assert_int_equal(X509_verify(r.ocsp_cert, X509_get0_pubkey(r.ca_cert)),
	    1);

	/* TLS: SANs, EKU */
	assert_int_equal(X509_check_host(r.tls_cert, "ca.example", 0, 0, NULL),
	    1);
	assert_int_equal(X509_check_ip_asc(r.tls_cert, "10.1.2.3", 0), 1);
	assert_int_equal(X509_check_ip_asc(r.tls_cert, "::1", 0), 1);
	assert_int_equal(X509_check_ip_asc(r.tls_cert, "127.0.0.1", 0), 0);
	assert_int_equal(X509_get_extended_key_usage(r.tls_cert),
	    XKU_SSL_SERVER);
	ca_init_result_cleanup(&r);

	/* a name that is neither DNS nor IP fails and leaves no files */
	snprintf(d, sizeof(d), "%s/third", dir);
	names[0] = "bad name";
	o.dir = d;
	o.key_type = NULL;
	assert_false(ca_init_dir(&r, &o, err, sizeof(err)));
	assert_string_equal(err, "TLS name \"bad name\" is neither a DNS name "
	    "nor an IP address");
	assert_int_equal(mode_of("third/private/ca.key"), (mode_t)-1);
}

static void
test_signer_load(void **state)
{
	struct ca_signer_paths p;
	struct ca_signer *s;
	EVP_PKEY *k;
	char a[256], b[256], err[CA_ERR_MAX], want[1024];
	uint8_t nh[EVP_MAX_MD_SIZE], kh[EVP_MAX_MD_SIZE];
	unsigned int hl;

	(void)state;
	s = load_signer();
	assert_int_equal(X509_check_private_key(ca_signer_get0_ocsp_cert(s),
	    ca_signer_get0_ocsp_key(s)), 1);
	assert_int_equal(X509_check_private_key(ca_signer_get0_cert(s),
	    ca_signer_get0_key(s)), 1);
	assert_true(ca_signer_issuer_hashes(s, EVP_sha1(), nh, kh, &hl));
	assert_int_equal(hl, 20);
	ca_signer_free(s);

	path(a, sizeof(a), "ca.crt");
	path(b, sizeof(b), "private/ca.key");
	memset(&p, 0, sizeof(p));
	p.ca_cert = a;
	p.ca_key = b;
	p.passphrase = "wrong";
	s = NULL;
	assert_false(ca_signer_load(&s, &p, err, sizeof(err)));
	assert_null(s);
	assert_non_null(strstr(err, "wrong passphrase"));
	p.passphrase = NULL;
	assert_false(ca_signer_load(&s, &p, err, sizeof(err)));
	assert_non_null(strstr(err, "no passphrase given"));
	/* no OCSP certificate: the CA answers OCSP itself */
	p.passphrase = PASS;
	assert_true(ca_signer_load(&s, &p, err, sizeof(err)));
	assert_ptr_equal(ca_signer_get0_ocsp_cert(s), ca_signer_get0_cert(s));
	ca_signer_free(s);

	/* unencrypted key without passphrase */
	path(b, sizeof(b), "private/tls.key");
	assert_true(ca_key_read(&k, b, NULL, err, sizeof(err)));
	EVP_PKEY_free(k);

	/* group/other access refused */
	assert_int_equal(chmod(b, 0644), 0);
	assert_false(ca_key_read(&k, b, NULL, err, sizeof(err)));
	assert_null(k);
	snprintf(want, sizeof(want), "%s: key file is accessible by group "
	    "or others (mode 0644); refusing it, run chmod 600 %s", b, b);
	assert_string_equal(err, want);
	assert_int_equal(chmod(b, 0600), 0);

	/* the OCSP key does not match the CA certificate */
	path(b, sizeof(b), "private/ocsp.key");
	p.ca_key = b;
	p.passphrase = NULL;
	assert_false(ca_signer_load(&s, &p, err, sizeof(err)));
	assert_string_equal(err, "the CA key does not match the CA "
	    "certificate");

	/* writing refuses an existing file */
	assert_true(ca_keygen(&k, NULL));
	assert_false(ca_key_write(b, k, NULL, err, sizeof(err)));
	assert_non_null(strstr(err, "refusing to overwrite"));
	EVP_PKEY_free(k);
}

static void
uri_is(GENERAL_NAME *gn, const char *want)
{
	assert_int_equal(gn->type, GEN_URI);
	assert_int_equal(ASN1_STRING_length(gn->d.uniformResourceIdentifier),
	    (int)strlen(want));
	assert_memory_equal(ASN1_STRING_get0_data(
	    gn->d.uniformResourceIdentifier), want, strlen(want));
}

static void
dp_is(X509 *x, int nid, const char *want)
{
	CRL_DIST_POINTS *dps;
	DIST_POINT *dp;
	int crit;

	dps = X509_get_ext_d2i(x, nid, &crit, NULL);
	assert_non_null(dps);
	assert_int_equal(crit, 0);
	assert_int_equal(sk_DIST_POINT_num(dps), 1);
	dp = sk_DIST_POINT_value(dps, 0);
	assert_int_equal(dp->distpoint->type, 0);
	assert_int_equal(sk_GENERAL_NAME_num(dp->distpoint->name.fullname), 1);
	uri_is(sk_GENERAL_NAME_value(dp->distpoint->name.fullname, 0), want);
	CRL_DIST_POINTS_free(dps);
}

static void
test_issue(void **state)
{
	struct ca_signer *s;
	struct ca_issue_params ip;
	struct ca_profile prof;
	struct ca_issued out;
	EVP_PKEY *k;
	struct ca_csr *req;
	X509 *back;
	BASIC_CONSTRAINTS *bc;
	AUTHORITY_INFO_ACCESS *aia;
	ACCESS_DESCRIPTION *ad;
	const unsigned char *p;
	uint8_t *csr, sn[CA_SERIAL_LEN];
	size_t csr_len;
	char err[CA_ERR_MAX];
	int crit;

	(void)state;
	s = load_signer();
	assert_true(ca_keygen(&k, NULL));
	csr = make_csr(k, "alice", &csr_len);
	assert_true(ca_csr_check(&req, csr, csr_len, NULL, err, sizeof(err)));
	assert_true(ca_profile_parse(&prof, "digitalSignature, keyEncipherment",
	    "clientAuth,serverAuth", err, sizeof(err)));

	memset(&ip, 0, sizeof(ip));
	ip.req = req;
	ca_random_serial(ip.serial);
	ip.serial[0] = 0x00;	/* leading zero byte is kept as 16 bytes */
	ip.serial[1] |= 0x01;
	ip.days = 30;
	ip.profile = &prof;
	ip.base_url = URL;
	ip.now = 1800000000;
	assert_true(ca_issue(s, &out, &ip, err, sizeof(err)));
	assert_int_equal(out.not_before, 1800000000 - 60);
	assert_int_equal(out.not_after, 1800000000 + 30 * 86400);
	assert_int_equal(X509_verify(out.cert,
	    X509_get0_pubkey(ca_signer_get0_cert(s))), 1);
	p = out.der;
	back = d2i_X509(NULL, &p, (long)out.der_len);
	assert_non_null(back);
	assert_int_equal(X509_cmp(back, out.cert), 0);
	X509_free(back);

	assert_true(ca_cert_serial(out.cert, sn));
	assert_memory_equal(sn, ip.serial, CA_SERIAL_LEN);
	assert_int_equal(X509_NAME_cmp(X509_get_subject_name(out.cert),
	    ca_csr_subject(req)), 0);
	assert_int_equal(X509_NAME_cmp(X509_get_issuer_name(out.cert),
	    X509_get_subject_name(ca_signer_get0_cert(s))), 0);

	bc = X509_get_ext_d2i(out.cert, NID_basic_constraints, &crit, NULL);
	assert_non_null(bc);
	assert_int_equal(crit, 1);
	assert_int_equal(bc->ca, 0);
	BASIC_CONSTRAINTS_free(bc);
	assert_int_equal(X509_get_key_usage(out.cert),
	    KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT);
	assert_int_equal(X509_get_ext_by_critical(out.cert, 1, -1) >= 0, 1);
	assert_int_equal(X509_get_extended_key_usage(out.cert),
	    XKU_SSL_CLIENT | XKU_SSL_SERVER);

	aia = X509_get_ext_d2i(out.cert, NID_info_access, &crit, NULL);
	assert_non_null(aia);
	assert_int_equal(sk_ACCESS_DESCRIPTION_num(aia), 2);
	ad = sk_ACCESS_DESCRIPTION_value(aia, 0);
	assert_int_equal(OBJ_obj2nid(ad->method), NID_ad_OCSP);
	uri_is(ad->location, "http://127.0.0.1:7780/ocsp");
	ad = sk_ACCESS_DESCRIPTION_value(aia, 1);
	assert_int_equal(OBJ_obj2nid(ad->method), NID_ad_ca_issuers);
	uri_is(ad->location, "http://127.0.0.1:7780/ca.crt");
	AUTHORITY_INFO_ACCESS_free(aia);
	dp_is(out.cert, NID_crl_distribution_points,
	    "http://127.0.0.1:7780/crl");
	dp_is(out.cert, NID_freshest_crl, "http://127.0.0.1:7780/crl/delta.crl");

	assert_int_equal(ASN1_OCTET_STRING_cmp(
	    X509_get0_authority_key_id(out.cert),
	    X509_get0_subject_key_id(ca_signer_get0_cert(s))), 0);
	assert_non_null(X509_get0_subject_key_id(out.cert));
	ca_issued_cleanup(&out);

	/* default profile, no URL: no AIA, validity clamped to the CA */
	ip.profile = NULL;
	ip.base_url = NULL;
	ip.now = 0;
	ip.days = 36500;
	assert_true(ca_issue(s, &out, &ip, err, sizeof(err)));
	assert_int_equal(X509_get_key_usage(out.cert), KU_DIGITAL_SIGNATURE);
	assert_int_equal(X509_get_extended_key_usage(out.cert), XKU_SSL_CLIENT);
	assert_int_equal(X509_get_ext_by_NID(out.cert, NID_info_access, -1),
	    -1);
	assert_int_equal(X509_cmp_time(X509_get0_notAfter(out.cert),
	    (time_t *)NULL) > 0, 1);
	assert_int_equal(ASN1_TIME_compare(X509_get0_notAfter(out.cert),
	    X509_get0_notAfter(ca_signer_get0_cert(s))), 0);
	ca_issued_cleanup(&out);

	/* a CA that has expired, or expires within a day, issues nothing */
	{
		int64_t cnb, cna;

		assert_true(ca_cert_times(ca_signer_get0_cert(s), &cnb, &cna));
		ip.days = 30;
		ip.now = (time_t)(cna + 10);
		assert_false(ca_issue(s, &out, &ip, err, sizeof(err)));
		assert_null(out.cert);
		assert_string_equal(err, "issue: the CA certificate has "
		    "expired; refusing to issue (renew the CA)");
		ip.now = (time_t)(cna - 86399);
		assert_false(ca_issue(s, &out, &ip, err, sizeof(err)));
		assert_string_equal(err, "issue: the CA certificate expires "
		    "within a day; refusing to issue (renew the CA)");
		/* one day left exactly: issued, clamped, notBefore first */
		ip.now = (time_t)(cna - 86400);
		assert_true(ca_issue(s, &out, &ip, err, sizeof(err)));
		assert_int_equal(out.not_after, cna);
		assert_int_equal(out.not_before, cna - 86400 - 60);
		ca_issued_cleanup(&out);
		ip.now = 0;
	}

	/* a serial with the top bit set is refused */
	ip.serial[0] = 0x80;
	assert_false(ca_issue(s, &out, &ip, err, sizeof(err)));
	assert_null(out.cert);

	ca_csr_free(req);
	free(csr);
	EVP_PKEY_free(k);
	ca_signer_free(s);
}

/*
 * ca_issue with the CSR key's canonical SPKI (keyhash_pkey_der): the
 * certificate's SubjectPublicKeyInfo is the same bytes as by encoding
 * the key, for a CSR with the usual uncompressed point (copied) and one
 * with a compressed point (encoded again, as before); der_only leaves
 * out.cert NULL.
 */
static void
test_issue_spki_copy(void **state)
{
	struct ca_signer *s;
	struct ca_issue_params ip;
	struct ca_issued out, ref;
	EVP_PKEY *k;
	struct ca_csr *req;
	X509 *a, *b;
	uint8_t *csr, h[KEYHASH_LEN];
	unsigned char *spki = NULL, *da = NULL, *db = NULL;
	const unsigned char *p;
	size_t csr_len, spki_len;
	char err[CA_ERR_MAX];
	int pass, la, lb;

	(void)state;
	s = load_signer();
	for (pass = 0; pass < 2; pass++) {
		k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
		assert_non_null(k);
		if (pass == 1)
			assert_true(EVP_PKEY_set_utf8_string_param(k,
			    OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
			    OSSL_PKEY_EC_POINT_CONVERSION_FORMAT_COMPRESSED));
		csr = make_csr(k, "alice", &csr_len);
		assert_true(ca_csr_check(&req, csr, csr_len, NULL, err,
		    sizeof(err)));
		assert_true(keyhash_pkey_der(h, ca_csr_pubkey(req),
		    &spki, &spki_len));
		memset(&ip, 0, sizeof(ip));
		ip.req = req;
		ca_random_serial(ip.serial);
		ip.days = 30;
		ip.base_url = URL;
		ip.now = 1800000000;
		assert_true(ca_issue(s, &ref, &ip, err, sizeof(err)));
		ip.spki = spki;
		ip.spki_len = spki_len;
		ip.der_only = 1;
		assert_true(ca_issue(s, &out, &ip, err, sizeof(err)));
		assert_null(out.cert);
		assert_int_equal(out.not_after, ref.not_after);
		p = out.der;
		a = d2i_X509(NULL, &p, (long)out.der_len);
		assert_non_null(a);
		p = ref.der;
		b = d2i_X509(NULL, &p, (long)ref.der_len);
		assert_non_null(b);
		assert_int_equal(X509_verify(a,
		    X509_get0_pubkey(ca_signer_get0_cert(s))), 1);
		la = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(a), &da);
		lb = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(b), &db);
		assert_true(la > 0 && la == lb);
		assert_memory_equal(da, db, (size_t)la);
		/* the key as sent: compressed stays compressed */
		assert_int_equal(la, pass == 0 ? (int)spki_len :
		    (int)spki_len - 32);
		assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(a), k), 1);
		/* and the extensions (SKI from the key) the same */
		assert_int_equal(X509_get_ext_count(a), X509_get_ext_count(b));
		assert_int_equal(ASN1_OCTET_STRING_cmp(
		    X509_get0_subject_key_id(a), X509_get0_subject_key_id(b)),
		    0);
		OPENSSL_free(da);
		OPENSSL_free(db);
		da = db = NULL;
		OPENSSL_free(spki);
		spki = NULL;
		X509_free(a);
		X509_free(b);
		ca_issued_cleanup(&out);
		ca_issued_cleanup(&ref);
		ca_csr_free(req);
		free(csr);
		EVP_PKEY_free(k);
	}
	ca_signer_free(s);
}

/* ca_csr_check of a CSR made with OpenSSL's X509_REQ API. */
static struct ca_csr *
csr_of(X509_REQ *xr)
{
	struct ca_csr *c = NULL;
	unsigned char *der = NULL;
	char err[CA_ERR_MAX];
	int len;

	len = i2d_X509_REQ(xr, &der);
	assert_true(len > 0);
	assert_true(ca_csr_check(&c, der, (size_t)len, NULL, err,
	    sizeof(err)));
	OPENSSL_free(der);
	return c;
}

static void
test_issue_san_copy(void **state)
{
	struct ca_signer *s;
	struct ca_issue_params ip;
	struct ca_profile prof;
	struct ca_issued out;
	STACK_OF(X509_EXTENSION) *exts;
	X509_EXTENSION *ext;
	GENERAL_NAMES *gens;
	X509V3_CTX ctx;
	X509_REQ *xr;
	struct ca_csr *req;
	EVP_PKEY *k;
	char err[CA_ERR_MAX];

	(void)state;
	s = load_signer();
	assert_true(ca_keygen(&k, NULL));
	xr = X509_REQ_new();
	assert_true(X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(xr),
	    "CN", MBSTRING_UTF8, (const unsigned char *)"host", -1, -1, 0));
	X509V3_set_ctx(&ctx, NULL, NULL, xr, NULL, 0);
	ext = X509V3_EXT_nconf_nid(NULL, &ctx, NID_subject_alt_name,
	    "DNS:host.example,URI:http://evil.example/,IP:192.0.2.7");
	assert_non_null(ext);
	exts = sk_X509_EXTENSION_new_null();
	sk_X509_EXTENSION_push(exts, ext);
	assert_true(X509_REQ_add_extensions(xr, exts));
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	assert_true(X509_REQ_set_pubkey(xr, k));
	assert_true(X509_REQ_sign(xr, k, EVP_sha256()) > 0);
	req = csr_of(xr);
	X509_REQ_free(xr);

	memset(&ip, 0, sizeof(ip));
	ip.req = req;
	ca_random_serial(ip.serial);
	ip.days = 10;
	ip.profile = &prof;
	/* default: no SAN copied */
	ca_profile_default(&prof);
	assert_true(ca_issue(s, &out, &ip, err, sizeof(err)));
	assert_int_equal(X509_get_ext_by_NID(out.cert, NID_subject_alt_name,
	    -1), -1);
	ca_issued_cleanup(&out);
	/* copy_san: DNS and IP kept, URI dropped */
	prof.copy_san = 1;
	assert_true(ca_issue(s, &out, &ip, err, sizeof(err)));
	gens = X509_get_ext_d2i(out.cert, NID_subject_alt_name, NULL, NULL);
	assert_non_null(gens);
	assert_int_equal(sk_GENERAL_NAME_num(gens), 2);
	assert_int_equal(sk_GENERAL_NAME_value(gens, 0)->type, GEN_DNS);
	assert_int_equal(sk_GENERAL_NAME_value(gens, 1)->type, GEN_IPADD);
	GENERAL_NAMES_free(gens);
	assert_int_equal(X509_check_host(out.cert, "host.example", 0, 0, NULL),
	    1);
	assert_int_equal(X509_check_ip_asc(out.cert, "192.0.2.7", 0), 1);
	ca_issued_cleanup(&out);
	ca_csr_free(req);
	EVP_PKEY_free(k);
	ca_signer_free(s);
}

static void
expect_refused(const uint8_t *der, size_t len,
    const struct ca_csr_policy *pol, const char *want)
{
	struct ca_csr *req = (struct ca_csr *)1;
	char err[CA_ERR_MAX];

	err[0] = '\0';
	assert_false(ca_csr_check(&req, der, len, pol, err, sizeof(err)));
	assert_null(req);
	assert_string_equal(err, want);
}

static void
csr_for(const char *alg, const char *param, size_t bits, const char *cn,
    uint8_t **der, size_t *len, EVP_PKEY **keyp)
{
	EVP_PKEY *k;

	if (bits)
		k = EVP_PKEY_Q_keygen(NULL, NULL, alg, bits);
	else if (param)
		k = EVP_PKEY_Q_keygen(NULL, NULL, alg, param);
	else
		k = EVP_PKEY_Q_keygen(NULL, NULL, alg);
	assert_non_null(k);
	*der = make_csr(k, cn, len);
	if (keyp)
		*keyp = k;
	else
		EVP_PKEY_free(k);
}

static void
test_csr_checks(void **state)
{
	struct ca_csr_policy pol;
	struct ca_signer *s;
	struct ca_issue_params ip;
	struct ca_issued lost;
	EVP_PKEY *k;
	struct ca_csr *req;
	uint8_t *der, *big, *d2;
	size_t len, l2;
	char err[CA_ERR_MAX];

	(void)state;
	csr_for("EC", "P-256", 0, "alice", &der, &len, &k);
	assert_true(ca_csr_check(NULL, der, len, NULL, err, sizeof(err)));

	/* bad signature: the last byte is inside the signature */
	der[len - 1] ^= 0x01;
	expect_refused(der, len, NULL,
	    "CSR: RFC 2986: signature does not verify");
	der[len - 1] ^= 0x01;

	/* subject policy */
	memset(&pol, 0, sizeof(pol));
	pol.allowed_subject = "/CN=alice";
	assert_true(ca_csr_check(NULL, der, len, &pol, err, sizeof(err)));
	pol.allowed_subject = "CN=alice";
	assert_true(ca_csr_check(NULL, der, len, &pol, err, sizeof(err)));
	pol.allowed_subject = "/CN=alice/O=Example";
	expect_refused(der, len, &pol, "CSR: subject \"CN=alice\" does not "
	    "match the account's allowed subject \"O=Example,CN=alice\"");
	csr_for("EC", "P-256", 0, "bob", &d2, &l2, NULL);
	pol.allowed_subject = "/CN=alice";
	expect_refused(d2, l2, &pol, "CSR: subject \"CN=bob\" does not match "
	    "the account's allowed subject \"CN=alice\"");
	free(d2);

	/* same key as the lost certificate */
	s = load_signer();
	assert_true(ca_csr_check(&req, der, len, NULL, err, sizeof(err)));
	memset(&ip, 0, sizeof(ip));
	ip.req = req;
	ca_random_serial(ip.serial);
	ip.days = 1;
	assert_true(ca_issue(s, &lost, &ip, err, sizeof(err)));
	memset(&pol, 0, sizeof(pol));
	pol.lost_cert_der = lost.der;
	pol.lost_cert_len = lost.der_len;
	expect_refused(der, len, &pol, "CSR: key: the public key is the lost "
	    "certificate's key; a replacement needs a new key");
	pol.lost_cert_der = NULL;
	pol.lost_key = k;
	expect_refused(der, len, &pol, "CSR: key: the public key is the lost "
	    "certificate's key; a replacement needs a new key");
	pol.expected_subject = X509_get_subject_name(lost.cert);
	csr_for("EC", "P-384", 0, "alice", &d2, &l2, NULL);
	assert_true(ca_csr_check(NULL, d2, l2, &pol, err, sizeof(err)));
	free(d2);
	csr_for("ED25519", NULL, 0, "mallory", &d2, &l2, NULL);
	expect_refused(d2, l2, &pol, "CSR: subject \"CN=mallory\" does not "
	    "match the lost certificate's subject \"CN=alice\"");
	pol.expected_subject = NULL;
	assert_true(ca_csr_check(NULL, d2, l2, &pol, err, sizeof(err)));
	free(d2);
	ca_issued_cleanup(&lost);
	ca_csr_free(req);
	ca_signer_free(s);

	/* key policy */
	csr_for("RSA", NULL, 1024, "alice", &d2, &l2, NULL);
	expect_refused(d2, l2, NULL,
	    "CSR: key: RSA 1024 bits is below the 2048-bit minimum");
	free(d2);
	csr_for("RSA", NULL, 2048, "alice", &d2, &l2, NULL);
	assert_true(ca_csr_check(NULL, d2, l2, NULL, err, sizeof(err)));
	free(d2);
	csr_for("EC", "P-521", 0, "alice", &d2, &l2, NULL);
	expect_refused(d2, l2, NULL, "CSR: key: EC curve secp521r1 is not "
	    "allowed (P-256 or P-384 only)");
	free(d2);
	csr_for("ED448", NULL, 0, "alice", &d2, &l2, NULL);
	expect_refused(d2, l2, NULL, "CSR: key: type ED448 is not allowed "
	    "(RSA, EC P-256/P-384 or Ed25519 only)");
	free(d2);

	/* bytes */
	expect_refused((const uint8_t *)"garbage!", 8, NULL,
	    "CSR: RFC 2986 section 4: not a DER CertificationRequest");
	expect_refused(der, len - 1, NULL,
	    "CSR: RFC 2986 section 4: not a DER CertificationRequest");
	expect_refused(der, 0, NULL, "CSR: RFC 2986: empty request");
	big = calloc(1, CA_CSR_MAX + 1);
	memcpy(big, der, len);
	expect_refused(big, CA_CSR_MAX + 1, NULL, "CSR: RFC 2986: request is "
	    "65537 bytes, above the 65536-byte limit");
	expect_refused(big, len + 1, NULL, "CSR: RFC 2986 section 4: 1 bytes "
	    "after the CertificationRequest");
	free(big);
	free(der);
	EVP_PKEY_free(k);
}

static void
test_subject(void **state)
{
	X509_NAME *a, *b;
	char err[CA_ERR_MAX], txt[CA_SUBJECT_MAX];

	(void)state;
	a = ca_subject_parse("/CN=alice/O=Example", err, sizeof(err));
	b = ca_subject_parse("O=Example,CN=alice", err, sizeof(err));
	assert_non_null(a);
	assert_non_null(b);
	assert_int_equal(X509_NAME_cmp(a, b), 0);
	assert_int_equal(X509_NAME_entry_count(a), 2);
	assert_int_equal(OBJ_obj2nid(X509_NAME_ENTRY_get_object(
	    X509_NAME_get_entry(a, 0))), NID_commonName);
	assert_true(ca_name_print(txt, sizeof(txt), a));
	assert_string_equal(txt, "O=Example,CN=alice");
	X509_NAME_free(a);
	X509_NAME_free(b);

	a = ca_subject_parse("CN=Smith\\, J.+UID=js,O=Ex\\41mple", err,
	    sizeof(err));
	assert_non_null(a);
	assert_int_equal(X509_NAME_entry_count(a), 3);
	assert_true(ca_name_print(txt, sizeof(txt), a));
	assert_string_equal(txt, "CN=Smith\\, J.+UID=js,O=ExAmple");
	b = ca_subject_parse("/O=ExAmple/CN=Smith, J.+UID=js", err,
	    sizeof(err));
	assert_non_null(b);
	assert_int_equal(X509_NAME_cmp(a, b), 0);
	X509_NAME_free(a);
	X509_NAME_free(b);

	assert_null(ca_subject_parse("CN", err, sizeof(err)));
	assert_string_equal(err, "subject: expected TYPE=VALUE near \"CN\"");
	assert_null(ca_subject_parse("XYZ=1", err, sizeof(err)));
	assert_string_equal(err, "subject: unknown attribute type \"XYZ\"");
	assert_null(ca_subject_parse("/CN=", err, sizeof(err)));
	assert_string_equal(err, "subject: empty value for CN");
	assert_null(ca_subject_parse("", err, sizeof(err)));
	a = ca_subject_parse("/CN=x", err, sizeof(err));
	assert_non_null(a);
	assert_true(ca_name_print(txt, 5, a));
	assert_string_equal(txt, "CN=x");
	assert_false(ca_name_print(txt, 3, a));
	assert_string_equal(txt, "CN");
	X509_NAME_free(a);
}

static void
test_profile(void **state)
{
	struct ca_profile p;
	char err[CA_ERR_MAX];

	(void)state;
	assert_true(ca_profile_parse(&p, NULL, "", err, sizeof(err)));
	assert_int_equal(p.key_usage, KU_DIGITAL_SIGNATURE);
	assert_int_equal(p.num_eku, 1);
	assert_int_equal(p.eku[0], NID_client_auth);
	assert_true(ca_profile_parse(&p, "keyAgreement,decipherOnly",
	    "emailProtection, 1.3.6.1.5.5.7.3.2", err, sizeof(err)));
	assert_int_equal(p.key_usage, KU_KEY_AGREEMENT | KU_DECIPHER_ONLY);
	assert_int_equal(p.num_eku, 2);
	assert_int_equal(p.eku[1], NID_client_auth);
	assert_false(ca_profile_parse(&p, "digitalSignatur", NULL, err,
	    sizeof(err)));
	assert_string_equal(err, "key usage \"digitalSignatur\" unknown");
	assert_false(ca_profile_parse(&p, NULL, "clientAuthh", err,
	    sizeof(err)));
	assert_string_equal(err, "extended key usage \"clientAuthh\" unknown");
}

/* The signature algorithm of x as a short name (e.g. ecdsa-with-SHA384). */
static const char *
sig_alg(const X509 *x)
{
	return OBJ_nid2ln(X509_get_signature_nid(x));
}

/* A CA of 30 days: init's OCSP and TLS certificates (365 days asked)
 * end with it; a P-384 CA signs with SHA-384 (init, issue). */
static void
test_init_capped_p384(void **state)
{
	struct ca_init_opts o;
	struct ca_init_result r;
	struct ca_signer *s;
	struct ca_issue_params ip;
	struct ca_issued out;
	EVP_PKEY *k;
	struct ca_csr *req;
	uint8_t *csr;
	size_t csr_len;
	int64_t ca_nb, ca_na, nb, na;
	char d[80], err[CA_ERR_MAX];

	(void)state;
	snprintf(d, sizeof(d), "%s/p384", dir);
	memset(&o, 0, sizeof(o));
	o.dir = d;
	o.key_type = "ec-p384";
	o.ca_days = 30;
	assert_true(ca_init_dir(&r, &o, err, sizeof(err)));
	assert_true(ca_cert_times(r.ca_cert, &ca_nb, &ca_na));
	assert_true(ca_cert_times(r.ocsp_cert, &nb, &na));
	assert_int_equal(na, ca_na);
	assert_true(ca_cert_times(r.tls_cert, &nb, &na));
	assert_int_equal(na, ca_na);
	assert_string_equal(sig_alg(r.ca_cert), "ecdsa-with-SHA384");
	assert_string_equal(sig_alg(r.ocsp_cert), "ecdsa-with-SHA384");
	assert_string_equal(sig_alg(r.tls_cert), "ecdsa-with-SHA384");

	/* a leaf asking for 365 days also ends with the CA */
	s = NULL;
	{
		char a[128], b[128];
		struct ca_signer_paths p;

		snprintf(a, sizeof(a), "%s/ca.crt", d);
		snprintf(b, sizeof(b), "%s/private/ca.key", d);
		memset(&p, 0, sizeof(p));
		p.ca_cert = a;
		p.ca_key = b;
		assert_true(ca_signer_load(&s, &p, err, sizeof(err)));
	}
	assert_true(ca_keygen(&k, "ec-p256"));
	csr = make_csr(k, "alice", &csr_len);
	assert_true(ca_csr_check(&req, csr, csr_len, NULL, err, sizeof(err)));
	memset(&ip, 0, sizeof(ip));
	ip.req = req;
	ca_random_serial(ip.serial);
	ip.days = 365;
	assert_true(ca_issue(s, &out, &ip, err, sizeof(err)));
	assert_int_equal(out.not_after, ca_na);
	assert_string_equal(sig_alg(out.cert), "ecdsa-with-SHA384");
	assert_int_equal(X509_verify(out.cert, X509_get0_pubkey(r.ca_cert)),
	    1);
	ca_issued_cleanup(&out);
	ca_csr_free(req);
	free(csr);
	EVP_PKEY_free(k);
	ca_signer_free(s);
	ca_init_result_cleanup(&r);
}

/* A P-256 key with explicit curve parameters (RFC 5480 2.1.1 forbids). */
static EVP_PKEY *
explicit_ec_key(void)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");

	assert_non_null(k);
	assert_true(EVP_PKEY_set_utf8_string_param(k,
	    OSSL_PKEY_PARAM_EC_ENCODING, OSSL_PKEY_EC_ENCODING_EXPLICIT));
	return k;
}

static void
test_csr_explicit_params(void **state)
{
	EVP_PKEY *k;
	uint8_t *der;
	size_t len;

	(void)state;
	k = explicit_ec_key();
	der = make_csr(k, "alice", &len);
	expect_refused(der, len, NULL, "CSR: key: RFC 5480 section 2.1.1: EC "
	    "parameters must be a named curve, not explicit parameters");
	free(der);
	EVP_PKEY_free(k);
}

/*
 * The checks as they were on d2i_X509_REQ (OpenSSL's key decoder),
 * without a policy: the reference ca_csr_check must answer as.  1, or 0
 * with the message ca_csr_check gave.
 */
static int
old_csr_check(const uint8_t *der, size_t len, char *err, size_t err_len)
{
	const unsigned char *p = der;
	X509_REQ *req = NULL;
	X509_ALGOR *alg = NULL;
	ASN1_OBJECT *kobj = NULL;
	EVP_PKEY *key;
	char group[64];
	int ptype = V_ASN1_UNDEF, bits, rc = 0;

	if (len == 0) {
		snprintf(err, err_len, "CSR: RFC 2986: empty request");
		goto out;
	}
	if ((req = d2i_X509_REQ(NULL, &p, (long)len)) == NULL) {
		snprintf(err, err_len, "CSR: RFC 2986 section 4: not a DER "
		    "CertificationRequest");
		goto out;
	}
	if (p != der + len) {
		snprintf(err, err_len, "CSR: RFC 2986 section 4: %zu bytes "
		    "after the CertificationRequest", len - (size_t)(p - der));
		goto out;
	}
	if (X509_REQ_get_version(req) != X509_REQ_VERSION_1) {
		snprintf(err, err_len, "CSR: RFC 2986 section 4.1: version "
		    "must be 0 (v1)");
		goto out;
	}
	assert_true(X509_PUBKEY_get0_param(&kobj, NULL, NULL, &alg,
	    X509_REQ_get_X509_PUBKEY(req)));
	X509_ALGOR_get0(NULL, &ptype, NULL, alg);
	if (OBJ_obj2nid(kobj) == NID_X9_62_id_ecPublicKey &&
	    ptype != V_ASN1_OBJECT) {
		snprintf(err, err_len, "CSR: key: RFC 5480 section 2.1.1: EC "
		    "parameters must be a named curve, not explicit "
		    "parameters");
		goto out;
	}
	if ((key = X509_REQ_get0_pubkey(req)) == NULL) {
		snprintf(err, err_len, "CSR: RFC 2986 section 4.1: the "
		    "subjectPKInfo cannot be decoded");
		goto out;
	}
	switch (EVP_PKEY_get_base_id(key)) {
	case EVP_PKEY_RSA:
		bits = EVP_PKEY_get_bits(key);
		if (bits < 2048) {
			snprintf(err, err_len, "CSR: key: RSA %d bits is below "
			    "the 2048-bit minimum", bits);
			goto out;
		}
		if (bits > 8192) {
			snprintf(err, err_len, "CSR: key: RSA %d bits is above "
			    "the 8192-bit maximum", bits);
			goto out;
		}
		break;
	case EVP_PKEY_EC:
		if (!EVP_PKEY_get_group_name(key, group, sizeof(group),
		    NULL)) {
			snprintf(err, err_len, "CSR: key: RFC 5480 section "
			    "2.1.1: EC key without a named curve");
			goto out;
		}
		if (strcmp(group, "prime256v1") != 0 &&
		    strcmp(group, "secp384r1") != 0) {
			snprintf(err, err_len, "CSR: key: EC curve %s is not "
			    "allowed (P-256 or P-384 only)", group);
			goto out;
		}
		break;
	case EVP_PKEY_ED25519:
		break;
	default:
		snprintf(err, err_len, "CSR: key: type %s is not allowed (RSA, "
		    "EC P-256/P-384 or Ed25519 only)", OBJ_nid2sn(
		    EVP_PKEY_get_base_id(key)));
		goto out;
	}
	if (X509_REQ_verify(req, key) != 1) {
		snprintf(err, err_len, "CSR: RFC 2986: signature does not "
		    "verify");
		goto out;
	}
	if (X509_NAME_entry_count(X509_REQ_get_subject_name(req)) == 0) {
		snprintf(err, err_len, "CSR: RFC 5280 section 4.1.2.6: the "
		    "subject is empty");
		goto out;
	}
	rc = 1;
 out:
	ERR_clear_error();
	X509_REQ_free(req);
	return rc;
}

/* ca_csr_check and old_csr_check agree on der; an accepted CSR's key is
 * the key the decoder gives, with the same canonical SPKI hash, and its
 * SPKI bytes, when said to be canonical, what keyhash_pkey_der writes
 * (want_canon: 1 or 0 when that is known, else -1).  Returns whether it
 * was accepted. */
static int
same_as_old_canon(const uint8_t *der, size_t len, int want_canon)
{
	struct ca_csr *c = NULL;
	unsigned char *kd = NULL;
	const uint8_t *sp;
	size_t kd_len = 0, sp_len = 0;
	X509_REQ *req;
	const unsigned char *p = der;
	uint8_t h1[KEYHASH_LEN], h2[KEYHASH_LEN];
	char e1[CA_ERR_MAX] = "", e2[CA_ERR_MAX] = "";
	int a1, a2;

	a1 = ca_csr_check(&c, der, len, NULL, e1, sizeof(e1));
	a2 = old_csr_check(der, len, e2, sizeof(e2));
	if (a1 != a2 || strcmp(e1, e2) != 0)
		fail_msg("new: %d \"%s\", old: %d \"%s\"", a1, e1, a2, e2);
	if (a1) {
		req = d2i_X509_REQ(NULL, &p, (long)len);
		assert_non_null(req);
		assert_int_equal(EVP_PKEY_eq(ca_csr_pubkey(c),
		    X509_REQ_get0_pubkey(req)), 1);
		assert_true(keyhash_pkey_der(h1, ca_csr_pubkey(c), &kd,
		    &kd_len));
		assert_true(keyhash_pkey(h2, X509_REQ_get0_pubkey(req)));
		assert_memory_equal(h1, h2, KEYHASH_LEN);
		/* the bytes said to be canonical are what keyhash writes */
		sp = ca_csr_spki(c, &sp_len);
		if (ca_csr_spki_canonical(c)) {
			assert_int_equal(sp_len, kd_len);
			assert_memory_equal(sp, kd, kd_len);
		}
		if (want_canon >= 0)
			assert_int_equal(ca_csr_spki_canonical(c), want_canon);
		OPENSSL_free(kd);
		assert_int_equal(X509_NAME_cmp(ca_csr_subject(c),
		    X509_REQ_get_subject_name(req)), 0);
		X509_REQ_free(req);
	}
	ca_csr_free(c);
	ERR_clear_error();
	return a1;
}

static int
same_as_old(const uint8_t *der, size_t len)
{
	return same_as_old_canon(der, len, -1);
}

/* a small DER writer for hand-made requests */
struct dbuf {
	uint8_t	b[4096];
	size_t	n;
};

static void
d_raw(struct dbuf *d, const void *p, size_t n)
{
	assert_true(d->n + n <= sizeof(d->b));
	if (n == 0)
		return;
	memcpy(d->b + d->n, p, n);
	d->n += n;
}

static void
d_tlv(struct dbuf *d, uint8_t tag, const void *p, size_t n)
{
	uint8_t h[4];
	size_t hl = 0;

	h[hl++] = tag;
	if (n < 0x80)
		h[hl++] = (uint8_t)n;
	else if (n < 0x100) {
		h[hl++] = 0x81;
		h[hl++] = (uint8_t)n;
	} else {
		h[hl++] = 0x82;
		h[hl++] = (uint8_t)(n >> 8);
		h[hl++] = (uint8_t)n;
	}
	d_raw(d, h, hl);
	d_raw(d, p, n);
}

/* SEQUENCE { AlgorithmIdentifier(alg, params), BIT STRING (unused bits
 * ub, key) } */
static void
d_spki(struct dbuf *out, const void *alg, size_t alg_len,
    const void *params, size_t params_len, uint8_t ub, const void *key,
    size_t key_len)
{
	struct dbuf a = { .n = 0 }, s = { .n = 0 }, bs = { .n = 0 };

	d_raw(&a, alg, alg_len);
	if (params != NULL)
		d_raw(&a, params, params_len);
	d_tlv(&s, 0x30, a.b, a.n);
	d_raw(&bs, &ub, 1);
	d_raw(&bs, key, key_len);
	d_tlv(&s, 0x03, bs.b, bs.n);
	out->n = 0;
	d_tlv(out, 0x30, s.b, s.n);
}

/* A CSR CN=alice with the SubjectPublicKeyInfo spki, signed by k. */
static void
d_csr(struct dbuf *out, const struct dbuf *spki, EVP_PKEY *k, int attrs)
{
	static const uint8_t ver[] = { 0x02, 0x01, 0x00 };
	static const uint8_t ecdsa256[] = { 0x06, 0x08, 0x2a, 0x86, 0x48,
	    0xce, 0x3d, 0x04, 0x03, 0x02 };
	static const uint8_t rsa256[] = { 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86,
	    0xf7, 0x0d, 0x01, 0x01, 0x0b, 0x05, 0x00 };
	static const uint8_t ed25519[] = { 0x06, 0x03, 0x2b, 0x65, 0x70 };
	struct dbuf info = { .n = 0 }, body = { .n = 0 }, sig = { .n = 0 };
	struct dbuf tmp = { .n = 0 };
	X509_NAME *name;
	unsigned char *nd = NULL;
	uint8_t sb[1024];
	size_t sl = sizeof(sb);
	EVP_MD_CTX *mc;
	const EVP_MD *md = EVP_sha256();
	int nl;

	name = X509_NAME_new();
	assert_true(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
	    (const unsigned char *)"alice", -1, -1, 0));
	nl = i2d_X509_NAME(name, &nd);
	assert_true(nl > 0);
	d_raw(&tmp, ver, sizeof(ver));
	d_raw(&tmp, nd, (size_t)nl);
	d_raw(&tmp, spki->b, spki->n);
	if (attrs)
		d_tlv(&tmp, 0xa0, NULL, 0);
	d_tlv(&info, 0x30, tmp.b, tmp.n);
	if (EVP_PKEY_get_base_id(k) == EVP_PKEY_ED25519)
		md = NULL;
	mc = EVP_MD_CTX_new();
	assert_int_equal(EVP_DigestSignInit(mc, NULL, md, NULL, k), 1);
	assert_int_equal(EVP_DigestSign(mc, sb + 1, &sl, info.b, info.n), 1);
	EVP_MD_CTX_free(mc);
	sb[0] = 0;
	d_raw(&body, info.b, info.n);
	switch (EVP_PKEY_get_base_id(k)) {
	case EVP_PKEY_EC:
		d_tlv(&body, 0x30, ecdsa256, sizeof(ecdsa256));
		break;
	case EVP_PKEY_RSA:
		d_tlv(&body, 0x30, rsa256, sizeof(rsa256));
		break;
	default:
		d_tlv(&body, 0x30, ed25519, sizeof(ed25519));
		break;
	}
	d_tlv(&sig, 0x03, sb, sl + 1);
	d_raw(&body, sig.b, sig.n);
	out->n = 0;
	d_tlv(out, 0x30, body.b, body.n);
	OPENSSL_free(nd);
	X509_NAME_free(name);
}

/* Every byte of a valid CSR changed, and every length cut: the same
 * answer as before, byte for byte. */
static void
mutate_all(const uint8_t *der, size_t len)
{
	uint8_t *m;
	size_t i;

	m = malloc(len + 1);
	assert_non_null(m);
	for (i = 0; i < len; i++) {
		memcpy(m, der, len);
		m[i] ^= 0x01;
		(void)same_as_old(m, len);
		m[i] = der[i] ^ 0x80;
		(void)same_as_old(m, len);
		(void)same_as_old(der, i);
	}
	memcpy(m, der, len);
	m[len] = 0;
	(void)same_as_old(m, len + 1);
	free(m);
}

/*
 * ca_csr_check's own decoding against the way before it (d2i_X509_REQ
 * and OpenSSL's key decoder): hand-made subjectPublicKeyInfos of every
 * kind the key is built from (and the forms left to the decoder), and
 * every byte of an EC, RSA and Ed25519 request changed.
 */
static void
test_csr_lite_same(void **state)
{
	static const uint8_t ecpk[] = { 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce,
	    0x3d, 0x02, 0x01 };
	static const uint8_t p256[] = { 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce,
	    0x3d, 0x03, 0x01, 0x07 };
	static const uint8_t p521[] = { 0x06, 0x05, 0x2b, 0x81, 0x04, 0x00,
	    0x23 };
	static const uint8_t rsaenc[] = { 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86,
	    0xf7, 0x0d, 0x01, 0x01, 0x01 };
	static const uint8_t ed[] = { 0x06, 0x03, 0x2b, 0x65, 0x70 };
	static const uint8_t null[] = { 0x05, 0x00 };
	struct dbuf spki, csr, rp, tmp;
	EVP_PKEY *ek, *rk, *dk;
	BIGNUM *n = NULL, *e = NULL;
	uint8_t pt[65], cp[33], hy[65], bad[65], raw[32], nb[600], eb[8];
	uint8_t *d;
	size_t ptl = 0, rawl = sizeof(raw), dl;
	int nl, el;

	(void)state;
	ek = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	rk = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	dk = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	assert_non_null(ek);
	assert_non_null(rk);
	assert_non_null(dk);

	/* EC P-256: the point in each form */
	assert_true(EVP_PKEY_get_octet_string_param(ek,
	    OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof(pt), &ptl));
	assert_int_equal(ptl, 65);
	assert_int_equal(pt[0], 0x04);
	cp[0] = (uint8_t)(0x02 | (pt[64] & 1));
	memcpy(cp + 1, pt + 1, 32);
	memcpy(hy, pt, 65);
	hy[0] = (uint8_t)(0x06 | (pt[64] & 1));
	memcpy(bad, pt, 65);
	bad[64] ^= 0x01;	/* off the curve */
	tmp.n = 0;
	d_raw(&tmp, p256, sizeof(p256));
	d_spki(&spki, ecpk, sizeof(ecpk), p256, sizeof(p256), 0, pt, 65);
	d_csr(&csr, &spki, ek, 1);
	assert_true(same_as_old_canon(csr.b, csr.n, 1));
	mutate_all(csr.b, csr.n);
	d_csr(&csr, &spki, ek, 0);	/* no attributes [0]: taken, as before */
	assert_true(same_as_old(csr.b, csr.n));
	d_spki(&spki, ecpk, sizeof(ecpk), p256, sizeof(p256), 0, cp, 33);
	d_csr(&csr, &spki, ek, 1);
	assert_true(same_as_old_canon(csr.b, csr.n, 0));	/* compressed */
	d_spki(&spki, ecpk, sizeof(ecpk), p256, sizeof(p256), 0, hy, 65);
	d_csr(&csr, &spki, ek, 1);
	(void)same_as_old(csr.b, csr.n);	/* hybrid */
	d_spki(&spki, ecpk, sizeof(ecpk), p256, sizeof(p256), 0, bad, 65);
	d_csr(&csr, &spki, ek, 1);
	assert_false(same_as_old(csr.b, csr.n));
	d_spki(&spki, ecpk, sizeof(ecpk), p256, sizeof(p256), 0, pt, 64);
	d_csr(&csr, &spki, ek, 1);
	assert_false(same_as_old(csr.b, csr.n));	/* short point */
	d_spki(&spki, ecpk, sizeof(ecpk), p256, sizeof(p256), 0, "\0", 1);
	d_csr(&csr, &spki, ek, 1);
	assert_false(same_as_old(csr.b, csr.n));	/* infinity */
	d_spki(&spki, ecpk, sizeof(ecpk), p256, sizeof(p256), 3, pt, 65);
	d_csr(&csr, &spki, ek, 1);
	(void)same_as_old(csr.b, csr.n);	/* unused bits */
	d_spki(&spki, ecpk, sizeof(ecpk), p521, sizeof(p521), 0, pt, 65);
	d_csr(&csr, &spki, ek, 1);
	assert_false(same_as_old(csr.b, csr.n));	/* another curve */
	d_spki(&spki, ecpk, sizeof(ecpk), null, sizeof(null), 0, pt, 65);
	d_csr(&csr, &spki, ek, 1);
	assert_false(same_as_old(csr.b, csr.n));	/* no named curve */
	d_spki(&spki, ecpk, sizeof(ecpk), NULL, 0, 0, pt, 65);
	d_csr(&csr, &spki, ek, 1);
	assert_false(same_as_old(csr.b, csr.n));

	/* RSA: parameters NULL, absent, anything (ignored, as before);
	 * bytes after the RSAPublicKey (taken, as before) */
	assert_true(EVP_PKEY_get_bn_param(rk, OSSL_PKEY_PARAM_RSA_N, &n));
	assert_true(EVP_PKEY_get_bn_param(rk, OSSL_PKEY_PARAM_RSA_E, &e));
	nb[0] = 0;
	nl = BN_bn2bin(n, nb + 1) + 1;
	el = BN_bn2bin(e, eb);
	tmp.n = 0;
	d_tlv(&tmp, 0x02, nb, (size_t)nl);
	d_tlv(&tmp, 0x02, eb, (size_t)el);
	rp.n = 0;
	d_tlv(&rp, 0x30, tmp.b, tmp.n);
	d_spki(&spki, rsaenc, sizeof(rsaenc), null, sizeof(null), 0, rp.b,
	    rp.n);
	d_csr(&csr, &spki, rk, 1);
	assert_true(same_as_old_canon(csr.b, csr.n, 1));
	mutate_all(csr.b, csr.n);
	d_spki(&spki, rsaenc, sizeof(rsaenc), NULL, 0, 0, rp.b, rp.n);
	d_csr(&csr, &spki, rk, 1);
	assert_true(same_as_old_canon(csr.b, csr.n, 0));
	d_spki(&spki, rsaenc, sizeof(rsaenc), p256, sizeof(p256), 0, rp.b,
	    rp.n);
	d_csr(&csr, &spki, rk, 1);
	(void)same_as_old(csr.b, csr.n);
	d_raw(&rp, "\x05\x00", 2);
	d_spki(&spki, rsaenc, sizeof(rsaenc), null, sizeof(null), 0, rp.b,
	    rp.n);
	d_csr(&csr, &spki, rk, 1);
	(void)same_as_old(csr.b, csr.n);
	/* a non-minimal modulus (two leading zeros) */
	nb[0] = 0;
	memmove(nb + 1, nb, (size_t)nl);
	tmp.n = 0;
	d_tlv(&tmp, 0x02, nb, (size_t)nl + 1);
	d_tlv(&tmp, 0x02, eb, (size_t)el);
	rp.n = 0;
	d_tlv(&rp, 0x30, tmp.b, tmp.n);
	d_spki(&spki, rsaenc, sizeof(rsaenc), null, sizeof(null), 0, rp.b,
	    rp.n);
	d_csr(&csr, &spki, rk, 1);
	(void)same_as_old_canon(csr.b, csr.n, 0);

	/* Ed25519: parameters must be absent, 32 bytes */
	assert_true(EVP_PKEY_get_raw_public_key(dk, raw, &rawl));
	d_spki(&spki, ed, sizeof(ed), NULL, 0, 0, raw, 32);
	d_csr(&csr, &spki, dk, 1);
	assert_true(same_as_old_canon(csr.b, csr.n, 1));
	mutate_all(csr.b, csr.n);
	d_spki(&spki, ed, sizeof(ed), null, sizeof(null), 0, raw, 32);
	d_csr(&csr, &spki, dk, 1);
	assert_false(same_as_old(csr.b, csr.n));
	d_spki(&spki, ed, sizeof(ed), NULL, 0, 0, raw, 31);
	d_csr(&csr, &spki, dk, 1);
	assert_false(same_as_old(csr.b, csr.n));
	/* a signature by another key */
	d_spki(&spki, ed, sizeof(ed), NULL, 0, 0, raw, 32);
	d_csr(&csr, &spki, ek, 1);
	assert_false(same_as_old(csr.b, csr.n));

	/* requests as OpenSSL writes them: canonical SPKIs, P-384 too */
	d = make_csr(ek, "alice", &dl);
	assert_true(same_as_old_canon(d, dl, 1));
	free(d);
	d = make_csr(rk, "alice", &dl);
	assert_true(same_as_old_canon(d, dl, 1));
	free(d);
	d = make_csr(dk, "alice", &dl);
	assert_true(same_as_old_canon(d, dl, 1));
	free(d);
	csr_for("EC", "P-384", 0, "alice", &d, &dl, NULL);
	assert_true(same_as_old_canon(d, dl, 1));
	mutate_all(d, dl);
	free(d);

	BN_free(n);
	BN_free(e);
	EVP_PKEY_free(ek);
	EVP_PKEY_free(rk);
	EVP_PKEY_free(dk);
}

/* ca_issue writes params->subject (DER by mica), not the CSR's bytes. */
static void
test_issue_subject(void **state)
{
	struct ca_signer *s;
	struct ca_issue_params ip;
	struct ca_issued out;
	struct ca_csr_policy pol;
	X509_NAME *want, *csr_name;
	X509_REQ *xr;
	struct ca_csr *req;
	EVP_PKEY *k;
	uint8_t *der, *p;
	unsigned char *a = NULL, *b = NULL;
	size_t len;
	int alen, blen;
	char err[CA_ERR_MAX];

	(void)state;
	s = load_signer();
	assert_true(ca_keygen(&k, NULL));
	/* CN=ALICE, O=example    CORP: matches /CN=alice/O=Example Corp
	 * (X509_NAME_cmp canonicalises case and spaces) */
	xr = X509_REQ_new();
	csr_name = X509_NAME_new();
	assert_true(X509_NAME_add_entry_by_txt(csr_name, "CN", MBSTRING_UTF8,
	    (const unsigned char *)"ALICE", -1, -1, 0));
	assert_true(X509_NAME_add_entry_by_txt(csr_name, "O", MBSTRING_UTF8,
	    (const unsigned char *)"example    CORP", -1, -1, 0));
	assert_true(X509_REQ_set_subject_name(xr, csr_name));
	assert_true(X509_REQ_set_pubkey(xr, k));
	assert_true(X509_REQ_sign(xr, k, EVP_sha256()) > 0);
	len = (size_t)i2d_X509_REQ(xr, NULL);
	der = malloc(len);
	p = der;
	assert_int_equal(i2d_X509_REQ(xr, &p), (int)len);
	X509_REQ_free(xr);
	memset(&pol, 0, sizeof(pol));
	pol.allowed_subject = "/CN=alice/O=Example Corp";
	assert_true(ca_csr_check(&req, der, len, &pol, err, sizeof(err)));
	want = ca_subject_parse(pol.allowed_subject, err, sizeof(err));
	assert_non_null(want);

	memset(&ip, 0, sizeof(ip));
	ip.req = req;
	ip.subject = want;
	ca_random_serial(ip.serial);
	ip.days = 1;
	assert_true(ca_issue(s, &out, &ip, err, sizeof(err)));
	alen = i2d_X509_NAME(X509_get_subject_name(out.cert), &a);
	blen = i2d_X509_NAME(want, &b);
	assert_true(alen > 0);
	assert_int_equal(alen, blen);
	assert_memory_equal(a, b, (size_t)alen);
	ca_issued_cleanup(&out);
	OPENSSL_free(a);
	a = NULL;

	/* without params->subject: the CSR's name, as before */
	ip.subject = NULL;
	ca_random_serial(ip.serial);
	assert_true(ca_issue(s, &out, &ip, err, sizeof(err)));
	alen = i2d_X509_NAME(X509_get_subject_name(out.cert), &a);
	OPENSSL_free(b);
	b = NULL;
	blen = i2d_X509_NAME(csr_name, &b);
	assert_int_equal(alen, blen);
	assert_memory_equal(a, b, (size_t)alen);
	ca_issued_cleanup(&out);

	OPENSSL_free(a);
	OPENSSL_free(b);
	X509_NAME_free(want);
	X509_NAME_free(csr_name);
	ca_csr_free(req);
	free(der);
	EVP_PKEY_free(k);
	ca_signer_free(s);
}

static void
test_issue_url(void **state)
{
	struct ca_signer *s;
	struct ca_issue_params ip;
	struct ca_issued out;
	struct ca_csr *req;
	EVP_PKEY *k;
	uint8_t *der;
	size_t len;
	char err[CA_ERR_MAX];

	(void)state;
	s = load_signer();
	assert_true(ca_keygen(&k, NULL));
	der = make_csr(k, "alice", &len);
	assert_true(ca_csr_check(&req, der, len, NULL, err, sizeof(err)));
	memset(&ip, 0, sizeof(ip));
	ip.req = req;
	ca_random_serial(ip.serial);
	ip.days = 1;
	ip.base_url = "https://ca.example";
	assert_false(ca_issue(s, &out, &ip, err, sizeof(err)));
	assert_string_equal(err, "http-url: https:// is refused: RFC 5280 "
	    "4.2.1.13: CRL and OCSP URLs must be http:// (checking "
	    "revocation over HTTPS needs a revocation check of the HTTPS "
	    "server first)");
	ip.base_url = "ldap://ca.example";
	assert_false(ca_issue(s, &out, &ip, err, sizeof(err)));
	assert_string_equal(err, "http-url: must be an http:// URL with a "
	    "host (RFC 5280 4.2.1.13)");
	ca_csr_free(req);
	free(der);
	EVP_PKEY_free(k);
	ca_signer_free(s);
}

/* Writes text to dir/name and returns its path in out. */
static void
put_file(char *out, size_t len, const char *name, const char *text)
{
	FILE *f;

	path(out, len, name);
	f = fopen(out, "w");
	assert_non_null(f);
	assert_true(fputs(text, f) >= 0);
	assert_int_equal(fclose(f), 0);
}

/* The PEM text of dir/ca.crt, in a static buffer. */
static const char *
ca_pem_text(void)
{
	static char buf[8192];
	char p[256];
	FILE *f;
	size_t n;

	path(p, sizeof(p), "ca.crt");
	f = fopen(p, "r");
	assert_non_null(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

/* ca_certs_read on malformed chain files: each refused with a message. */
static void
test_certs_read(void **state)
{
	STACK_OF(X509) *sk = NULL;
	char p[256], err[CA_ERR_MAX], *many;
	const char *pem = ca_pem_text();
	size_t i, plen = strlen(pem);

	(void)state;
	put_file(p, sizeof(p), "empty.pem", "");
	assert_false(ca_certs_read(&sk, p, err, sizeof(err)));
	assert_null(sk);
	assert_non_null(strstr(err, "no PEM certificate"));
	put_file(p, sizeof(p), "junk.pem", "hello\nworld\n");
	assert_false(ca_certs_read(&sk, p, err, sizeof(err)));
	assert_non_null(strstr(err, "no PEM certificate"));
	/* a good certificate, then a block whose base64 is broken */
	many = malloc(plen * 10 + 256);
	assert_non_null(many);
	snprintf(many, plen * 10 + 256, "%s-----BEGIN CERTIFICATE-----\n"
	    "!!!!\n-----END CERTIFICATE-----\n", pem);
	put_file(p, sizeof(p), "bad2.pem", many);
	assert_false(ca_certs_read(&sk, p, err, sizeof(err)));
	assert_non_null(strstr(err, "a certificate does not parse"));
	/* a block cut short (no END line) */
	snprintf(many, plen * 10 + 256, "%s%.*s", pem, (int)(plen / 2), pem);
	put_file(p, sizeof(p), "cut.pem", many);
	assert_false(ca_certs_read(&sk, p, err, sizeof(err)));
	assert_non_null(strstr(err, "a certificate does not parse"));
	/* a DER-looking binary prefix */
	put_file(p, sizeof(p), "bin.pem", "\x30\x82\x01\x00\x01\x02");
	assert_false(ca_certs_read(&sk, p, err, sizeof(err)));
	/* CA_CHAIN_MAX + 1 certificates */
	many[0] = '\0';
	for (i = 0; i <= CA_CHAIN_MAX; i++)
		strcat(many, pem);
	put_file(p, sizeof(p), "many.pem", many);
	assert_false(ca_certs_read(&sk, p, err, sizeof(err)));
	assert_non_null(strstr(err, "more than 8 certificates"));
	/* exactly CA_CHAIN_MAX, with text around the blocks */
	snprintf(many, plen * 10 + 256, "# a comment\n");
	for (i = 0; i < CA_CHAIN_MAX; i++)
		strcat(many, pem);
	strcat(many, "trailing text\n");
	put_file(p, sizeof(p), "eight.pem", many);
	assert_true(ca_certs_read(&sk, p, err, sizeof(err)));
	assert_int_equal(sk_X509_num(sk), CA_CHAIN_MAX);
	sk_X509_pop_free(sk, X509_free);
	path(p, sizeof(p), "no-such-file.pem");
	assert_false(ca_certs_read(&sk, p, err, sizeof(err)));
	assert_int_equal(ERR_peek_error(), 0);
	free(many);
}

/*
 * PEM files are read whole into memory (not one byte per read(2)): a
 * file over the cap is refused before any parsing, an empty or cut one
 * reads as no key / no certificate, a key with text around it reads.
 */
static void
test_pem_whole_file(void **state)
{
	EVP_PKEY *k = NULL;
	X509 *x = NULL;
	char p[256], src[256], err[CA_ERR_MAX], *big, *key;
	const char *pem = ca_pem_text();
	FILE *f;
	size_t n;

	(void)state;
	/* a certificate file one byte over the cap */
	big = malloc(CA_CERT_FILE_MAX + 2);
	assert_non_null(big);
	memset(big, 'A', CA_CERT_FILE_MAX + 1);
	big[CA_CERT_FILE_MAX + 1] = '\0';
	put_file(p, sizeof(p), "big.crt", big);
	assert_false(ca_cert_read(&x, p, err, sizeof(err)));
	assert_null(x);
	assert_non_null(strstr(err, "larger than 65536 bytes"));
	/* exactly at the cap: read, then refused as not PEM */
	big[CA_CERT_FILE_MAX] = '\0';
	put_file(p, sizeof(p), "cap.crt", big);
	assert_false(ca_cert_read(&x, p, err, sizeof(err)));
	assert_non_null(strstr(err, "not a PEM certificate"));
	/* a key file over its cap (mode 0600, else refused for that) */
	memset(big, 'A', CA_KEY_FILE_MAX + 1);
	big[CA_KEY_FILE_MAX + 1] = '\0';
	put_file(p, sizeof(p), "big.key", big);
	assert_int_equal(chmod(p, 0600), 0);
	assert_false(ca_key_read(&k, p, NULL, err, sizeof(err)));
	assert_null(k);
	assert_non_null(strstr(err, "larger than 65536 bytes"));
	free(big);
	/* empty files */
	put_file(p, sizeof(p), "empty.key", "");
	assert_int_equal(chmod(p, 0600), 0);
	assert_false(ca_key_read(&k, p, NULL, err, sizeof(err)));
	assert_non_null(strstr(err, "cannot read the private key"));
	put_file(p, sizeof(p), "empty.crt", "");
	assert_false(ca_cert_read(&x, p, err, sizeof(err)));
	assert_non_null(strstr(err, "not a PEM certificate"));
	/* a certificate cut in half */
	big = strdup(pem);
	assert_non_null(big);
	big[strlen(big) / 2] = '\0';
	put_file(p, sizeof(p), "half.crt", big);
	assert_false(ca_cert_read(&x, p, err, sizeof(err)));
	free(big);
	/* the real key with text before and after it reads */
	path(src, sizeof(src), "private/tls.key");
	assert_non_null(f = fopen(src, "r"));
	key = calloc(1, 8192);
	assert_non_null(key);
	n = fread(key, 1, 8191, f);
	fclose(f);
	assert_true(n > 0);
	big = malloc(n + 64);
	assert_non_null(big);
	snprintf(big, n + 64, "# the TLS key\n%s\n# end\n", key);
	put_file(p, sizeof(p), "framed.key", big);
	assert_int_equal(chmod(p, 0600), 0);
	assert_true(ca_key_read(&k, p, NULL, err, sizeof(err)));
	assert_non_null(k);
	EVP_PKEY_free(k);
	/* cut short: refused */
	key[n / 2] = '\0';
	put_file(p, sizeof(p), "cut.key", key);
	assert_int_equal(chmod(p, 0600), 0);
	assert_false(ca_key_read(&k, p, NULL, err, sizeof(err)));
	assert_null(k);
	free(big);
	free(key);
	ERR_clear_error();
}

/* ca_chain_load: the CA alone, the CA's own file, and refusals. */
static void
test_chain_load(void **state)
{
	STACK_OF(X509) *sk = NULL;
	X509 *ca = NULL, *other;
	char p[256], err[CA_ERR_MAX], dir2[64], cmd[320];
	struct ca_init_opts o;
	struct ca_init_result r;

	(void)state;
	path(p, sizeof(p), "ca.crt");
	assert_true(ca_cert_read(&ca, p, err, sizeof(err)));
	assert_true(ca_chain_load(&sk, NULL, ca, err, sizeof(err)));
	assert_int_equal(sk_X509_num(sk), 1);
	assert_int_equal(X509_cmp(sk_X509_value(sk, 0), ca), 0);
	sk_X509_pop_free(sk, X509_free);
	assert_true(ca_chain_load(&sk, p, ca, err, sizeof(err)));
	assert_int_equal(sk_X509_num(sk), 1);
	sk_X509_pop_free(sk, X509_free);
	/* another root: not first, and not the CA's issuer */
	snprintf(dir2, sizeof(dir2), "/tmp/test_ca2.XXXXXX");
	assert_non_null(mkdtemp(dir2));
	memset(&o, 0, sizeof(o));
	o.dir = dir2;
	o.subject = "/O=Other/CN=Other Root";
	assert_true(ca_init_dir(&r, &o, err, sizeof(err)));
	other = r.ca_cert;
	assert_string_equal(ca_name_print(err, sizeof(err),
	    X509_get_subject_name(other)) ? err : "", "CN=Other Root,O=Other");
	snprintf(cmd, sizeof(cmd), "cat %s/ca.crt %s/ca.crt > %s/wrong.pem",
	    dir2, dir, dir);
	assert_int_equal(system(cmd), 0);
	path(p, sizeof(p), "wrong.pem");
	assert_false(ca_chain_load(&sk, p, ca, err, sizeof(err)));
	assert_non_null(strstr(err, "its first certificate is not the CA "
	    "certificate"));
	snprintf(cmd, sizeof(cmd), "cat %s/ca.crt %s/ca.crt > %s/wrong2.pem",
	    dir, dir2, dir);
	assert_int_equal(system(cmd), 0);
	path(p, sizeof(p), "wrong2.pem");
	assert_false(ca_chain_load(&sk, p, ca, err, sizeof(err)));
	assert_non_null(strstr(err, "the CA does not chain to its root"));
	/* the given-CA init refuses a certificate of another key */
	{
		struct ca_init_given g;
		struct ca_init_result r2;
		char crt[256];

		memset(&g, 0, sizeof(g));
		path(crt, sizeof(crt), "ca.crt");
		g.ca_cert = crt;
		snprintf(p, sizeof(p), "%s/private/ca.key", dir2);
		g.import_key = p;
		memset(&o, 0, sizeof(o));
		snprintf(cmd, sizeof(cmd), "%s/imp", dir2);
		o.dir = cmd;
		assert_false(ca_init_given(&r2, &o, &g, err, sizeof(err)));
		assert_non_null(strstr(err, "its public key is not that of "
		    "the CA key"));
		assert_int_equal(access(cmd, F_OK), -1);
	}
	ca_init_result_cleanup(&r);	/* frees other */
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir2);
	assert_int_equal(system(cmd), 0);
	X509_free(ca);
}

/* init --csr: the key (0600) and a CSR asking for a CA, full subject. */
static void
test_init_csr(void **state)
{
	struct ca_init_opts o;
	char d[64], p[256], err[CA_ERR_MAX], cmd[160];
	X509_REQ *req;
	STACK_OF(X509_EXTENSION) *exts;
	BASIC_CONSTRAINTS *bc;
	ASN1_BIT_STRING *ku;
	struct stat sb;
	FILE *f;

	(void)state;
	snprintf(d, sizeof(d), "/tmp/test_csr.XXXXXX");
	assert_non_null(mkdtemp(d));
	memset(&o, 0, sizeof(o));
	o.dir = d;
	o.subject = "/C=DE/O=Org/CN=Org Issuing CA";
	o.key_type = "ec-p384";
	assert_true(ca_init_csr(&o, err, sizeof(err)));
	snprintf(p, sizeof(p), "%s/private/ca.key", d);
	assert_int_equal(stat(p, &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 0600);
	snprintf(p, sizeof(p), "%s/ca.csr", d);
	f = fopen(p, "r");
	assert_non_null(f);
	req = PEM_read_X509_REQ(f, NULL, NULL, NULL);
	fclose(f);
	assert_non_null(req);
	assert_int_equal(X509_REQ_verify(req, X509_REQ_get0_pubkey(req)), 1);
	assert_true(ca_name_print(err, sizeof(err),
	    X509_REQ_get_subject_name(req)));
	assert_string_equal(err, "CN=Org Issuing CA,O=Org,C=DE");
	exts = X509_REQ_get_extensions(req);
	assert_non_null(exts);
	bc = X509V3_get_d2i(exts, NID_basic_constraints, NULL, NULL);
	assert_non_null(bc);
	assert_true(bc->ca);
	ku = X509V3_get_d2i(exts, NID_key_usage, NULL, NULL);
	assert_non_null(ku);
	assert_true(ASN1_BIT_STRING_get_bit(ku, 5));	/* keyCertSign */
	assert_true(ASN1_BIT_STRING_get_bit(ku, 6));	/* cRLSign */
	BASIC_CONSTRAINTS_free(bc);
	ASN1_BIT_STRING_free(ku);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	X509_REQ_free(req);
	/* a second run refuses and keeps the key */
	assert_false(ca_init_csr(&o, err, sizeof(err)));
	assert_non_null(strstr(err, "exists: refusing"));
	/* an empty or unparsable subject is refused, nothing written */
	snprintf(p, sizeof(p), "%s/x", d);
	o.dir = p;
	o.subject = "";
	assert_false(ca_init_csr(&o, err, sizeof(err)));
	o.subject = "/CN";
	assert_false(ca_init_csr(&o, err, sizeof(err)));
	assert_int_equal(access(p, F_OK), -1);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", d);
	assert_int_equal(system(cmd), 0);
}

/* SAN text: the syntax rules, and a CSR's SANs against a list. */
static void
test_san_text(void **state)
{
	static const char *good[] = { "DNS:host", "dns:a-b.example.com",
	    "DNS:*.example.com", "IP:192.0.2.1", "ip:2001:db8::1",
	    "email:a.b+c@example.com", "EMAIL:x@y.z" };
	static const char *bad[] = { "", "DNS:", "DNS:-a.example",
	    "DNS:a-.example", "DNS:a..b", "DNS:a.b.", "DNS:.a", "DNS:a_b",
	    "DNS:a b", "DNS:*", "DNS:a.*.b", "IP:", "IP:1.2.3", "IP:1.2.3.256",
	    "IP:::g", "email:", "email:@x.y", "email:a@", "email:a@b@c",
	    "email:a b@c.d", "email:a@-b.c", "URI:http://x", "host",
	    "DNS:a\x01b" };
	GENERAL_NAME *gn = NULL;
	char err[CA_ERR_MAX], out[CA_SAN_TEXT_MAX], l64[80];
	X509V3_CTX ctx;
	X509_EXTENSION *ext;
	STACK_OF(X509_EXTENSION) *exts;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		assert_true(ca_san_parse(&gn, good[i], err, sizeof(err)));
		assert_true(ca_san_print(out, sizeof(out), gn));
		GENERAL_NAME_free(gn);
		gn = NULL;
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		assert_false(ca_san_parse(&gn, bad[i], err, sizeof(err)));
		assert_null(gn);
		assert_true(err[0] != '\0');
	}
	memset(l64, 'a', 64);
	l64[64] = '\0';
	assert_false(ca_dns_name_check(l64, err, sizeof(err)));
	l64[63] = '\0';
	assert_true(ca_dns_name_check(l64, err, sizeof(err)));
	assert_true(ca_san_list_check("DNS:a.example,IP:192.0.2.1", err,
	    sizeof(err)));
	assert_false(ca_san_list_check("DNS:a.example,IP:x", err,
	    sizeof(err)));
	assert_string_equal(err, "SAN \"IP:x\": not an IPv4 or IPv6 address");

	/* a CSR: DNS (case ignored) and IP on the list, URI ignored */
	X509V3_set_ctx(&ctx, NULL, NULL, NULL, NULL, 0);
	ext = X509V3_EXT_nconf_nid(NULL, &ctx, NID_subject_alt_name,
	    "DNS:Host.Example,URI:http://evil.example/,IP:2001:db8::1");
	assert_non_null(ext);
	exts = sk_X509_EXTENSION_new_null();
	sk_X509_EXTENSION_push(exts, ext);
	assert_true(ca_exts_san_allowed(exts,
	    "DNS:host.example,IP:2001:DB8:0::1", err, sizeof(err)));
	assert_false(ca_exts_san_allowed(exts, "DNS:host.example", err,
	    sizeof(err)));
	assert_string_equal(err, "CSR: subjectAltName IP:2001:db8::1 is not "
	    "among the names the account may have (DNS:host.example)");
	assert_false(ca_exts_san_allowed(exts, "", err, sizeof(err)));
	assert_string_equal(err, "CSR: subjectAltName DNS:Host.Example is not "
	    "among the names the account may have (none)");
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	/* no SAN at all: allowed with any list */
	assert_true(ca_exts_san_allowed(NULL, "", err, sizeof(err)));
	exts = sk_X509_EXTENSION_new_null();
	assert_true(ca_exts_san_allowed(exts, "", err, sizeof(err)));
	sk_X509_EXTENSION_free(exts);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keygen),
		cmocka_unit_test(test_serial),
		cmocka_unit_test(test_init_files),
		cmocka_unit_test(test_init_certs),
		cmocka_unit_test(test_signer_load),
		cmocka_unit_test(test_issue),
		cmocka_unit_test(test_issue_spki_copy),
		cmocka_unit_test(test_issue_san_copy),
		cmocka_unit_test(test_csr_checks),
		cmocka_unit_test(test_subject),
		cmocka_unit_test(test_profile),
		cmocka_unit_test(test_init_capped_p384),
		cmocka_unit_test(test_csr_explicit_params),
		cmocka_unit_test(test_csr_lite_same),
		cmocka_unit_test(test_issue_subject),
		cmocka_unit_test(test_issue_url),
		cmocka_unit_test(test_certs_read),
		cmocka_unit_test(test_pem_whole_file),
		cmocka_unit_test(test_chain_load),
		cmocka_unit_test(test_init_csr),
		cmocka_unit_test(test_san_text),
	};

	return cmocka_run_group_tests_name("ca", tests, group_setup,
	    group_teardown);
}
