/*
 * signer_probe.c - asks micad's signer process, through its socket, to
 * sign hand-built TBS structures, and says what it answered (tests/e2e/
 * t_signer.sh).
 *
 *   signer_probe CONF
 *
 * Starts the real signer for CONF exactly as micad does
 * (sign_client_start: fork, keys loaded by the child only, privileges
 * dropped) without starting micad; then sends raw requests with
 * sign_client_call (not the client's own checks):
 *   valid        a leaf certificate                    -> signed
 *   ca-cert      basicConstraints cA, keyCertSign      -> refused
 *   past-ca      notAfter one day after the CA's       -> refused
 *   reused       the serial of "valid" again           -> refused
 *   ocsp-eku     a leaf with id-kp-OCSPSigning         -> refused
 *   wrong-issuer an issuer that is not the CA          -> refused
 *   ca-key       the CA's key, its point compressed    -> refused
 *   non-der      a critical flag written 01, not ff    -> refused
 *   crl-high     a full TBSCertList numbered N         -> signed
 *   crl-low      the same numbered N-1                 -> refused
 *   crl-other    issuer not the CA                     -> refused
 *   ocsp-respid  ResponseData with another responderID -> refused
 * A certificate signed must decode and verify under the CA's key.
 * Prints "accepted NAME" or "refused NAME: REASON" per request; exits 0
 * when every answer was the expected one, 1 otherwise.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "ca/ca.h"
#include "ca/privdrop.h"
#include "ca/sign_client.h"
#include "ca/sign_proto.h"
#include "common/log.h"
#include "common/sigmd.h"
#include "conf/conf.h"

static struct sign_client *sc;
static X509 *ca;
static int failures;

/* 1 if der is one certificate whose signature verifies under the CA's
 * key. */
static int
cert_ok(const uint8_t *der, size_t len)
{
	const unsigned char *p = der;
	X509 *x = d2i_X509(NULL, &p, (long)len);
	int ok;

	ok = x != NULL && p == der + len &&
	    X509_verify(x, X509_get0_pubkey(ca)) == 1;
	X509_free(x);
	return ok;
}

static void
expect(const char *name, uint16_t type, const uint8_t *der, size_t len,
    int want_ok)
{
	uint8_t *out = NULL;
	size_t out_len = 0;
	char err[SIGN_SMALL_MAX + 64];
	int ok;

	ok = sign_client_call(sc, type, der, len, &out, &out_len, err,
	    sizeof(err));
	if (ok && type == SIGN_T_CERT && !cert_ok(out, out_len)) {
		printf("UNEXPECTED %s: the answer is not a certificate the CA "
		    "signed\n", name);
		failures++;
	}
	if (ok)
		printf("accepted %s\n", name);
	else
		printf("refused %s: %s\n", name, err);
	if (ok != want_ok) {
		printf("UNEXPECTED %s\n", name);
		failures++;
	}
	free(out);
}

static void
add_ext(X509 *x, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *e;

	X509V3_set_ctx(&ctx, ca, x, NULL, NULL, 0);
	if ((e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value)) == NULL ||
	    !X509_add_ext(x, e, -1))
		fatalx("extension %s", value);
	X509_EXTENSION_free(e);
}

/* A leaf for key (a fresh one when NULL), issued by the CA, serial sn,
 * until na. */
static X509 *
leaf_key(const char *cn, long sn, time_t na, EVP_PKEY *key)
{
	X509 *x = X509_new();
	EVP_PKEY *k = NULL;
	X509_NAME *n = X509_NAME_new();
	int64_t cnb, cna;

	if (key != NULL && EVP_PKEY_up_ref(key))
		k = key;
	if (x == NULL || n == NULL || (k == NULL && !ca_keygen(&k,
	    "ec-p256")) ||
	    !ca_cert_times(ca, &cnb, &cna))
		fatalx("leaf");
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
	    (const unsigned char *)cn, -1, -1, 0);
	X509_set_version(x, X509_VERSION_3);
	ASN1_INTEGER_set(X509_get_serialNumber(x), sn);
	X509_set_subject_name(x, n);
	X509_set_issuer_name(x, X509_get_subject_name(ca));
	ASN1_TIME_set(X509_getm_notBefore(x), (time_t)cnb + 60);
	ASN1_TIME_set(X509_getm_notAfter(x), na);
	X509_set_pubkey(x, k);
	add_ext(x, NID_basic_constraints, "critical,CA:FALSE");
	add_ext(x, NID_key_usage, "critical,digitalSignature");
	EVP_PKEY_free(k);
	X509_NAME_free(n);
	return x;
}

static X509 *
leaf(const char *cn, long sn, time_t na)
{
	return leaf_key(cn, sn, na, NULL);
}

/* Signs with a stand-in of the CA key's type (the algorithm fields),
 * then sends. */
static void
send_cert(const char *name, X509 *x, int want_ok)
{
	EVP_PKEY *si = sign_client_standin(sc, ca);
	unsigned char *der = NULL;
	int n;

	if (si == NULL || X509_sign(x, si, sigmd_get(si)) <= 0 ||
	    (n = i2d_X509(x, &der)) <= 0)
		fatalx("encoding %s", name);
	expect(name, SIGN_T_CERT, der, (size_t)n, want_ok);
	OPENSSL_free(der);
	X509_free(x);
}

/* As send_cert, refused: the first BOOLEAN TRUE (a critical flag)
 * written 01 instead of ff, valid BER but not DER. */
static void
send_der_bool(const char *name, X509 *x)
{
	EVP_PKEY *si = sign_client_standin(sc, ca);
	unsigned char *der = NULL;
	int n, i;

	if (si == NULL || X509_sign(x, si, sigmd_get(si)) <= 0 ||
	    (n = i2d_X509(x, &der)) <= 0)
		fatalx("encoding %s", name);
	for (i = 0; i + 2 < n; i++)
		if (der[i] == 0x01 && der[i + 1] == 0x01 && der[i + 2] == 0xff)
			break;
	if (i + 2 >= n)
		fatalx("%s: no BOOLEAN TRUE", name);
	der[i + 2] = 0x01;
	expect(name, SIGN_T_CERT, der, (size_t)n, 0);
	OPENSSL_free(der);
	X509_free(x);
}

/* A full TBSCertList numbered number, issued by issuer. */
static void
send_crl(const char *name, const X509_NAME *issuer, long number, int want_ok)
{
	X509_CRL *crl = X509_CRL_new();
	ASN1_INTEGER *num = ASN1_INTEGER_new();
	ASN1_TIME *t = ASN1_TIME_set(NULL, time(NULL));
	EVP_PKEY *si = sign_client_standin(sc, ca);
	unsigned char *der = NULL;
	int n;

	if (crl == NULL || num == NULL || t == NULL || si == NULL ||
	    !X509_CRL_set_version(crl, X509_CRL_VERSION_2) ||
	    !X509_CRL_set_issuer_name(crl, issuer) ||
	    !X509_CRL_set1_lastUpdate(crl, t) ||
	    !ASN1_INTEGER_set(num, number) ||
	    !X509_CRL_add1_ext_i2d(crl, NID_crl_number, num, 0, 0) ||
	    X509_CRL_sign(crl, si, sigmd_get(si)) <= 0 ||
	    (n = i2d_re_X509_CRL_tbs(crl, &der)) <= 0)
		fatalx("building %s", name);
	expect(name, SIGN_T_CRL, der, (size_t)n, want_ok);
	OPENSSL_free(der);
	ASN1_TIME_free(t);
	ASN1_INTEGER_free(num);
	X509_CRL_free(crl);
}

int
main(int argc, char **argv)
{
	static struct mica_conf conf;
	struct privdrop pd;
	X509_NAME *other;
	int64_t cnb, cna;
	long base;
	char err[2048], info[4096];
	/* ResponseData: version absent, responderID byKey of 20 zero
	 * bytes, producedAt, empty responses */
	static const uint8_t rdata[] = {
		0x30, 0x2b, 0xa2, 0x16, 0x04, 0x14,
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
		0x18, 0x0f, '2', '0', '2', '6', '0', '1', '0', '1', '0', '0',
		'0', '0', '0', '0', 'Z', 0x30, 0x00,
	};

	log_init("signer_probe", LOG_LVL_INFO);
	if (argc != 2) {
		fprintf(stderr, "usage: signer_probe CONF\n");
		return 2;
	}
	if (!conf_load(&conf, argv[1], err, sizeof(err)))
		fatalx("%s", err);
	if (!privdrop_resolve(&pd, conf.daemon.user, conf.daemon.group, err,
	    sizeof(err)))
		fatalx("%s", err);
	if ((sc = sign_client_start(&conf, &pd, info, sizeof(info), err,
	    sizeof(err))) == NULL)
		fatalx("%s", err);
	printf("signer %s\n", info);
	if (!ca_cert_read(&ca, conf.ca.cert, err, sizeof(err)) ||
	    !ca_cert_times(ca, &cnb, &cna))
		fatalx("%s", err);
	base = (long)(time(NULL) & 0xffffff) * 16;

	send_cert("valid", leaf("probe-valid", base + 1, (time_t)cna - 86400),
	    1);
	{
		X509 *x = leaf("probe-ca", base + 2, (time_t)cna - 86400);

		X509_EXTENSION_free(X509_delete_ext(x, X509_get_ext_by_NID(x,
		    NID_basic_constraints, -1)));
		X509_EXTENSION_free(X509_delete_ext(x, X509_get_ext_by_NID(x,
		    NID_key_usage, -1)));
		add_ext(x, NID_basic_constraints, "critical,CA:TRUE");
		add_ext(x, NID_key_usage, "critical,keyCertSign,cRLSign");
		send_cert("ca-cert", x, 0);
	}
	send_cert("past-ca", leaf("probe-long", base + 3, (time_t)cna +
	    86400), 0);
	send_cert("reused", leaf("probe-again", base + 1, (time_t)cna -
	    86400), 0);
	{
		X509 *x = leaf("probe-ocsp", base + 4, (time_t)cna - 86400);

		add_ext(x, NID_ext_key_usage, "OCSPSigning");
		send_cert("ocsp-eku", x, 0);
	}
	{
		X509 *x = leaf("probe-issuer", base + 5, (time_t)cna - 86400);

		other = X509_NAME_new();
		X509_NAME_add_entry_by_txt(other, "CN", MBSTRING_ASC,
		    (const unsigned char *)"Not The CA", -1, -1, 0);
		X509_set_issuer_name(x, other);
		send_cert("wrong-issuer", x, 0);
	}
	{
		/* the CA's own key, its point compressed */
		EVP_PKEY *k = EVP_PKEY_dup(X509_get0_pubkey(ca));

		if (k == NULL)
			fatalx("EVP_PKEY_dup");
		if (EVP_PKEY_is_a(k, "EC"))
			(void)EVP_PKEY_set_utf8_string_param(k,
			    OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
			    (char *)"compressed");
		send_cert("ca-key", leaf_key("probe-cakey", base + 6,
		    (time_t)cna - 86400, k), 0);
		EVP_PKEY_free(k);
	}
	send_der_bool("non-der", leaf("probe-nonder", base + 7,
	    (time_t)cna - 86400));
	send_crl("crl-high", X509_get_subject_name(ca), 1000000000L, 1);
	send_crl("crl-low", X509_get_subject_name(ca), 999999999L, 0);
	send_crl("crl-other", other, 1000000001L, 0);
	expect("ocsp-respid", SIGN_T_OCSP, rdata, sizeof(rdata), 0);
	X509_NAME_free(other);
	X509_free(ca);
	sign_client_free(sc);
	return failures == 0 ? 0 : 1;
}
