/*
 * cainit.c - a CA that mica did not sign itself: the CSR of an issuing CA
 * for an offline root, finishing that CA once the root has signed it,
 * taking over an existing CA (its key and certificate), and the chain
 * file (the CA up to its root) that micad serves.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "common/log.h"
#include "common/sigmd.h"
#include "ca/ca.h"
#include "ca/cainit_local.h"

#define GIVEN_PATH_MAX	1024
#define MAX_DAYS	36500

static int
join_path(char *out, size_t out_len, const char *dir, const char *file,
    char *err, size_t err_len)
{
	if ((size_t)snprintf(out, out_len, "%s/%s", dir, file) >= out_len) {
		snprintf(err, err_len, "%s: path too long", dir);
		return 0;
	}
	return 1;
}

/* ---- the CSR of an issuing CA ---- */

static void
req_ext_push(STACK_OF(X509_EXTENSION) *exts, X509V3_CTX *ctx, int nid,
    const char *value)
{
	X509_EXTENSION *e;

	if ((e = X509V3_EXT_nconf_nid(NULL, ctx, nid, value)) == NULL ||
	    !sk_X509_EXTENSION_push(exts, e))
		fatalx("CSR extension %s", OBJ_nid2sn(nid));
}

/* What the CA asks the root for (RFC 2986 extensionRequest); the root's
 * operator decides what the certificate carries. */
static int
req_add_ca_exts(X509_REQ *req)
{
	STACK_OF(X509_EXTENSION) *exts;
	X509V3_CTX ctx;
	int rc;

	if ((exts = sk_X509_EXTENSION_new_null()) == NULL)
		fatalx("sk_X509_EXTENSION_new_null");
	X509V3_set_ctx(&ctx, NULL, NULL, req, NULL, 0);
	req_ext_push(exts, &ctx, NID_basic_constraints, "critical,CA:TRUE");
	req_ext_push(exts, &ctx, NID_key_usage,
	    "critical,keyCertSign,cRLSign");
	if ((rc = X509_REQ_add_extensions(req, exts)) != 1)
		log_ssl("X509_REQ_add_extensions");
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	return rc == 1;
}

int
ca_init_csr(const struct ca_init_opts *o, char *err, size_t err_len)
{
	char kpath[GIVEN_PATH_MAX], rpath[GIVEN_PATH_MAX];
	char cpath[GIVEN_PATH_MAX], priv[GIVEN_PATH_MAX], cn[CA_SUBJECT_MAX];
	const char *const check[] = { kpath, rpath, cpath };
	X509_NAME *name = NULL;
	EVP_PKEY *key = NULL;
	X509_REQ *req = NULL;
	size_t i;
	int key_made = 0, rc = 0;

	if (err_len > 0)
		err[0] = '\0';
	if (o->dir == NULL || *o->dir == '\0' ||
	    (o->cn != NULL && *o->cn == '\0')) {
		snprintf(err, err_len, "init: bad options");
		goto out;
	}
	if (!join_path(kpath, sizeof(kpath), o->dir, "private/ca.key", err,
	    err_len) ||
	    !join_path(rpath, sizeof(rpath), o->dir, "ca.csr", err, err_len) ||
	    !join_path(cpath, sizeof(cpath), o->dir, "ca.crt", err, err_len) ||
	    !join_path(priv, sizeof(priv), o->dir, "private", err, err_len))
		goto out;
	for (i = 0; i < sizeof(check) / sizeof(check[0]); i++)
		if (ca_path_exists(check[i])) {
			snprintf(err, err_len, "%s exists: refusing to make a "
			    "new CA key and CSR over it", check[i]);
			goto out;
		}
	if ((name = ca_init_name(o, cn, sizeof(cn), err, err_len)) == NULL ||
	    !ca_init_dirs(o->dir, priv, err, err_len))
		goto out;
	if (!ca_keygen(&key, o->key_type)) {
		snprintf(err, err_len, "cannot generate a %s key",
		    o->key_type ? o->key_type : CA_DEFAULT_KEY_TYPE);
		goto out;
	}
	if ((req = X509_REQ_new()) == NULL)
		fatalx("X509_REQ_new");
	if (!X509_REQ_set_version(req, X509_REQ_VERSION_1) ||
	    !X509_REQ_set_subject_name(req, name) ||
	    !X509_REQ_set_pubkey(req, key) || !req_add_ca_exts(req) ||
	    X509_REQ_sign(req, key, sigmd_get(key)) <= 0) {
		log_ssl("building the CSR");
		snprintf(err, err_len, "cannot build the CSR");
		goto out;
	}
	if (!ca_key_write(kpath, key, o->passphrase, err, err_len))
		goto out;
	key_made = 1;
	if (!ca_csr_write(rpath, req, err, err_len))
		goto out;
	log_info("CA key and CSR made in %s", o->dir);
	rc = 1;
 out:
	if (!rc && key_made)
		unlink(kpath);
	X509_REQ_free(req);
	EVP_PKEY_free(key);
	X509_NAME_free(name);
	return rc;
}

/* ---- checking a CA certificate signed elsewhere ---- */

int
ca_chain_verify(STACK_OF(X509) **out_path, X509 *ca, STACK_OF(X509) *issuers,
    int check_time, char *err, size_t err_len)
{
	X509_STORE *st = NULL;
	X509_STORE_CTX *ctx = NULL;
	STACK_OF(X509) *untrusted = NULL;
	X509 *x;
	char subj[CA_SUBJECT_MAX];
	int i, anchors = 0, rc = 0;

	*out_path = NULL;
	if ((st = X509_STORE_new()) == NULL ||
	    (ctx = X509_STORE_CTX_new()) == NULL ||
	    (untrusted = sk_X509_new_null()) == NULL)
		fatalx("X509_STORE: out of memory");
	if (issuers == NULL || sk_X509_num(issuers) == 0) {
		if (X509_self_signed(ca, 1) != 1) {
			snprintf(err, err_len, "the CA certificate is not "
			    "self-signed and no issuer was given");
			goto out;
		}
		if (!X509_STORE_add_cert(st, ca))
			fatalx("X509_STORE_add_cert");
		anchors = 1;
	}
	for (i = 0; issuers != NULL && i < sk_X509_num(issuers); i++) {
		x = sk_X509_value(issuers, i);
		if (X509_self_signed(x, 1) == 1) {
			if (!X509_STORE_add_cert(st, x))
				fatalx("X509_STORE_add_cert");
			anchors++;
		} else if (!X509_add_cert(untrusted, x, X509_ADD_FLAG_UP_REF))
			fatalx("X509_add_cert");
	}
	ERR_clear_error();
	if (anchors == 0) {
		snprintf(err, err_len, "no self-signed (root) certificate "
		    "among the issuers: the chain must end with the root");
		goto out;
	}
	if (!X509_STORE_CTX_init(ctx, st, ca, untrusted))
		fatalx("X509_STORE_CTX_init");
	if (!check_time)
		X509_STORE_CTX_set_flags(ctx, X509_V_FLAG_NO_CHECK_TIME);
	if (X509_verify_cert(ctx) != 1) {
		x = X509_STORE_CTX_get_current_cert(ctx);
		if (x == NULL || !ca_name_print(subj, sizeof(subj),
		    X509_get_subject_name(x)))
			snprintf(subj, sizeof(subj), "?");
		snprintf(err, err_len, "%s (at %s)",
		    X509_verify_cert_error_string(
		    X509_STORE_CTX_get_error(ctx)), subj);
		ERR_clear_error();
		goto out;
	}
	if ((*out_path = X509_STORE_CTX_get1_chain(ctx)) == NULL)
		fatalx("X509_STORE_CTX_get1_chain");
	rc = 1;
 out:
	sk_X509_pop_free(untrusted, X509_free);
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(st);
	return rc;
}

/*
 * The rules for a CA certificate mica did not sign: the key is the CA
 * key, it is a CA that may sign certificates and CRLs, and it chains to
 * a root of the chain file.
 */
static int
given_check(STACK_OF(X509) **out_path, X509 *ca, EVP_PKEY *key,
    const char *key_path, const struct ca_init_given *g,
    STACK_OF(X509) *issuers, char *err, size_t err_len)
{
	char why[CA_ERR_MAX];
	uint32_t flags, ku;

	if (X509_check_private_key(ca, key) != 1) {
		ERR_clear_error();
		snprintf(err, err_len, "%s: its public key is not that of the "
		    "CA key %s%s", g->ca_cert, key_path, g->import_key ? "" :
		    " (was it issued for another CSR than ca.csr?)");
		return 0;
	}
	flags = X509_get_extension_flags(ca);
	if (flags & EXFLAG_INVALID) {
		snprintf(err, err_len, "%s: an extension does not parse "
		    "(RFC 5280 4.2)", g->ca_cert);
		return 0;
	}
	if ((flags & EXFLAG_BCONS) == 0 || (flags & EXFLAG_CA) == 0) {
		snprintf(err, err_len, "%s: not a CA certificate: no "
		    "basicConstraints with cA TRUE (RFC 5280 4.2.1.9)",
		    g->ca_cert);
		return 0;
	}
	if ((flags & EXFLAG_KUSAGE) == 0) {
		snprintf(err, err_len, "%s: no keyUsage extension: a CA "
		    "certificate needs one with keyCertSign and cRLSign "
		    "(RFC 5280 4.2.1.3)", g->ca_cert);
		return 0;
	}
	ku = X509_get_key_usage(ca);
	if ((ku & KU_KEY_CERT_SIGN) == 0) {
		snprintf(err, err_len, "%s: keyUsage lacks keyCertSign: the "
		    "CA could not sign certificates (RFC 5280 4.2.1.3)",
		    g->ca_cert);
		return 0;
	}
	if ((ku & KU_CRL_SIGN) == 0) {
		snprintf(err, err_len, "%s: keyUsage lacks cRLSign: the CA "
		    "could not sign its CRLs (RFC 5280 4.2.1.3)", g->ca_cert);
		return 0;
	}
	if (issuers == NULL && X509_self_signed(ca, 1) != 1) {
		ERR_clear_error();
		snprintf(err, err_len, "%s is not self-signed: name its "
		    "issuers up to the root with --chain", g->ca_cert);
		return 0;
	}
	if (!ca_chain_verify(out_path, ca, issuers, 1, why, sizeof(why))) {
		snprintf(err, err_len, "%s does not chain to a root%s%s: %s",
		    g->ca_cert, g->chain ? " in " : "", g->chain ? g->chain :
		    "", why);
		return 0;
	}
	if (sk_X509_num(*out_path) > CA_CHAIN_MAX) {
		snprintf(err, err_len, "%s: its chain has more than %d "
		    "certificates", g->ca_cert, CA_CHAIN_MAX);
		sk_X509_pop_free(*out_path, X509_free);
		*out_path = NULL;
		return 0;
	}
	return 1;
}

/* The init key type of the CA key, for the OCSP and TLS keys. */
static const char *
key_type_of(EVP_PKEY *k)
{
	char grp[64];
	size_t len;

	switch (EVP_PKEY_get_base_id(k)) {
	case EVP_PKEY_ED25519:
		return "ed25519";
	case EVP_PKEY_RSA:
		return "rsa-3072";
	case EVP_PKEY_EC:
		if (EVP_PKEY_get_utf8_string_param(k,
		    OSSL_PKEY_PARAM_GROUP_NAME, grp, sizeof(grp), &len) &&
		    strcmp(grp, "secp384r1") == 0)
			return "ec-p384";
		break;
	default:
		break;
	}
	ERR_clear_error();
	return CA_DEFAULT_KEY_TYPE;
}

/* ---- finishing the CA ---- */

enum given_file {
	G_CA_KEY, G_OCSP_KEY, G_TLS_KEY, G_CA_CRT, G_CHAIN, G_OCSP_CRT,
	G_TLS_CRT, G_NUM
};
static const char *const given_files[G_NUM] = {
	"private/ca.key", "private/ocsp.key", "private/tls.key", "ca.crt",
	"chain.pem", "ocsp.crt", "tls.crt",
};

/* Which files must not exist yet (ca.key must, unless imported). */
static int
given_paths(char paths[G_NUM][GIVEN_PATH_MAX], const struct ca_init_opts *o,
    const struct ca_init_given *g, char *err, size_t err_len)
{
	int i;

	for (i = 0; i < G_NUM; i++) {
		if (!join_path(paths[i], GIVEN_PATH_MAX, o->dir,
		    given_files[i], err, err_len))
			return 0;
		if (i == G_CA_KEY && g->import_key == NULL) {
			if (!ca_path_exists(paths[i])) {
				snprintf(err, err_len, "%s: no CA key: run "
				    "mica-admin init %s --csr first (or take "
				    "over an existing key with --import-key)",
				    paths[i], o->dir);
				return 0;
			}
			continue;
		}
		if (ca_path_exists(paths[i])) {
			snprintf(err, err_len, "%s exists: the CA is already "
			    "initialised, refusing to overwrite it", paths[i]);
			return 0;
		}
	}
	return 1;
}

struct given_keys {
	EVP_PKEY	*ca, *ocsp, *tls;
};

/*
 * Writes the files in a fixed order, each created with O_EXCL and marked
 * in made[] for the caller to remove on failure.  The imported key is
 * written anew (PKCS#8, 0600) as ca_init_dir writes its keys; the
 * original file is left alone.
 */
static int
given_write(char paths[G_NUM][GIVEN_PATH_MAX], int made[G_NUM],
    const struct ca_init_result *r, const struct given_keys *k,
    STACK_OF(X509) *path, const char *passphrase, int import, char *err,
    size_t err_len)
{
	if (import) {
		if (!ca_key_write(paths[G_CA_KEY], k->ca, passphrase, err,
		    err_len))
			return 0;
		made[G_CA_KEY] = 1;
	}
	if (!ca_cert_write(paths[G_CA_CRT], r->ca_cert, err, err_len))
		return 0;
	made[G_CA_CRT] = 1;
	if (!ca_certs_write(paths[G_CHAIN], path, err, err_len))
		return 0;
	made[G_CHAIN] = 1;
	if (!ca_key_write(paths[G_OCSP_KEY], k->ocsp, NULL, err, err_len))
		return 0;
	made[G_OCSP_KEY] = 1;
	if (!ca_key_write(paths[G_TLS_KEY], k->tls, NULL, err, err_len))
		return 0;
	made[G_TLS_KEY] = 1;
	if (!ca_cert_write(paths[G_OCSP_CRT], r->ocsp_cert, err, err_len))
		return 0;
	made[G_OCSP_CRT] = 1;
	if (!ca_cert_write(paths[G_TLS_CRT], r->tls_cert, err, err_len))
		return 0;
	made[G_TLS_CRT] = 1;
	return 1;
}

int
ca_init_given(struct ca_init_result *out, const struct ca_init_opts *o,
    const struct ca_init_given *g, char *err, size_t err_len)
{
	static const char *const def_names[] = { "localhost", "127.0.0.1" };
	char paths[G_NUM][GIVEN_PATH_MAX], priv[GIVEN_PATH_MAX];
	char cn[CA_SUBJECT_MAX], ocn[256];
	const char *const *names = o->tls_names ? o->tls_names : def_names;
	size_t num_names = o->tls_names ? o->num_tls_names : 2;
	const char *key_path, *kt;
	struct ca_init_result r;
	STACK_OF(X509) *issuers = NULL, *path = NULL;
	struct given_keys k = { NULL, NULL, NULL };
	int made[G_NUM], i, rc = 0;
	time_t now = time(NULL);

	memset(&r, 0, sizeof(r));
	memset(made, 0, sizeof(made));
	if (err_len > 0)
		err[0] = '\0';
	if (o->dir == NULL || *o->dir == '\0' || g->ca_cert == NULL ||
	    num_names == 0 || o->ocsp_days < 0 || o->tls_days < 0 ||
	    o->ocsp_days > MAX_DAYS || o->tls_days > MAX_DAYS) {
		snprintf(err, err_len, "init: bad options");
		goto out;
	}
	if (!given_paths(paths, o, g, err, err_len) ||
	    !join_path(priv, sizeof(priv), o->dir, "private", err, err_len))
		goto out;
	key_path = g->import_key ? g->import_key : paths[G_CA_KEY];
	if (!ca_key_read(&k.ca, key_path, o->passphrase, err, err_len) ||
	    !ca_cert_read(&r.ca_cert, g->ca_cert, err, err_len) ||
	    (g->chain != NULL && !ca_certs_read(&issuers, g->chain, err,
	    err_len)) ||
	    !given_check(&path, r.ca_cert, k.ca, key_path, g, issuers, err,
	    err_len))
		goto out;
	kt = o->key_type ? o->key_type : key_type_of(k.ca);
	if (!ca_keygen(&k.ocsp, kt) || !ca_keygen(&k.tls, kt)) {
		snprintf(err, err_len, "cannot generate %s keys", kt);
		goto out;
	}
	ca_name_last_cn(cn, sizeof(cn), X509_get_subject_name(r.ca_cert));
	snprintf(ocn, sizeof(ocn), "%.200s OCSP responder", cn);
	if ((r.ocsp_cert = ca_make_sub(r.ca_cert, k.ca, ocn, k.ocsp,
	    o->ocsp_days ? o->ocsp_days : 365, now, NULL, 0, r.ocsp_serial,
	    err, err_len)) == NULL ||
	    (r.tls_cert = ca_make_sub(r.ca_cert, k.ca, names[0], k.tls,
	    o->tls_days ? o->tls_days : 365, now, names, num_names,
	    r.tls_serial, err, err_len)) == NULL)
		goto out;
	if (!ca_init_dirs(o->dir, priv, err, err_len) ||
	    !given_write(paths, made, &r, &k, path, o->passphrase,
	    g->import_key != NULL, err, err_len))
		goto out;
	r.external = 1;
	r.chain_len = sk_X509_num(path);
	log_info("CA initialised in %s from %s", o->dir, g->ca_cert);
	*out = r;
	memset(&r, 0, sizeof(r));
	rc = 1;
 out:
	for (i = 0; !rc && i < G_NUM; i++)
		if (made[i])
			unlink(paths[i]);
	ca_init_result_cleanup(&r);
	sk_X509_pop_free(issuers, X509_free);
	sk_X509_pop_free(path, X509_free);
	EVP_PKEY_free(k.ca);
	EVP_PKEY_free(k.ocsp);
	EVP_PKEY_free(k.tls);
	return rc;
}

/* ---- the chain micad serves ---- */

/* Logs a certificate of the chain that is out of its validity now. */
static void
chain_warn_times(const char *path, STACK_OF(X509) *chain)
{
	char subj[CA_SUBJECT_MAX];
	X509 *x;
	int i;

	for (i = 0; i < sk_X509_num(chain); i++) {
		x = sk_X509_value(chain, i);
		if (X509_cmp_current_time(X509_get0_notAfter(x)) > 0 &&
		    X509_cmp_current_time(X509_get0_notBefore(x)) < 0)
			continue;
		ca_name_print(subj, sizeof(subj), X509_get_subject_name(x));
		log_warnx("%s: %s is expired or not yet valid: relying "
		    "parties cannot verify the CA's certificates (RFC 5280 "
		    "6.1.3)", path, subj);
	}
}

int
ca_chain_load(STACK_OF(X509) **out, const char *path, X509 *ca, char *err,
    size_t err_len)
{
	STACK_OF(X509) *sk = NULL, *vpath = NULL;
	char why[CA_ERR_MAX];
	int rc = 0;

	*out = NULL;
	if (path == NULL || *path == '\0') {
		if ((sk = sk_X509_new_null()) == NULL ||
		    !X509_add_cert(sk, ca, X509_ADD_FLAG_UP_REF))
			fatalx("sk_X509: out of memory");
		*out = sk;
		return 1;
	}
	if (!ca_certs_read(&sk, path, err, err_len))
		goto out;
	if (X509_cmp(sk_X509_value(sk, 0), ca) != 0) {
		snprintf(err, err_len, "%s: its first certificate is not the "
		    "CA certificate ([ca] cert): the chain is the CA, then "
		    "its issuers up to the root", path);
		goto out;
	}
	X509_free(sk_X509_shift(sk));
	if (!ca_chain_verify(&vpath, ca, sk, 0, why, sizeof(why))) {
		snprintf(err, err_len, "%s: the CA does not chain to its "
		    "root: %s", path, why);
		goto out;
	}
	chain_warn_times(path, vpath);
	*out = vpath;
	vpath = NULL;
	rc = 1;
 out:
	sk_X509_pop_free(sk, X509_free);
	sk_X509_pop_free(vpath, X509_free);
	return rc;
}
