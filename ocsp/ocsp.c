/*
 * ocsp.c - OCSP request checking, status lookup, response signing
 * (RFC 6960, RFC 5019, RFC 8954 / RFC 9654 nonces).
 *
 * ocsp_respond takes the exact request bytes: a cache hit never decodes
 * them.  On a miss the request is decoded with d2i_OCSP_REQUEST and
 * checked rule by rule; statuses come from one store read transaction;
 * the response is signed by the delegated signer with ResponderID byKey.
 * Responses are written straight to DER (build_response) from pieces
 * computed once per responder; the unit tests hold them byte-equal to
 * what OpenSSL's generic OCSP encoder writes for the same values.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/x509v3.h>
#include <sodium.h>

#include "common/bytes.h"
#include "common/log.h"
#include "common/rsign.h"
#include "common/sigmd.h"
#include "store/store.h"
#include "ocsp/ocsp_int.h"

#define NONCE_MIN	1	/* RFC 9654 section 2.1 */
#define NONCE_MAX	128
#define SHA1_LEN	20
#define SHA256_LEN	32
#define NLAT		9
#define ETAG_HASH_LEN	16
#define RESPID_LEN	(4 + SHA1_LEN)
#define SINGLE_MAX	160	/* a SingleResponse beyond its CertID */
#define ENVELOPE_MAX	256	/* fixed parts of ResponseData, OCSPResponse */
#define SERIALS_TXT_MAX	1024	/* X-Mica-Serials; more: not HTTP-cached */

/* Upper bounds of the latency buckets, microseconds. */
static const uint64_t lat_bounds_us[NLAT] = {
	50, 100, 250, 500, 1000, 2500, 5000, 10000, 50000
};
static const char *lat_bounds_txt[NLAT] = {
	"5e-05", "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005",
	"0.01", "0.05"
};
static const char *result_names[OCSPRES_COUNT] = {
	"good", "revoked", "unknown", "malformed", "unauthorized", "internal",
	"trylater"
};

/* OCSPResponse ::= SEQUENCE { responseStatus ENUMERATED } (no bytes). */
static const uint8_t der_malformed[] = { 0x30, 0x03, 0x0a, 0x01, 0x01 };
static const uint8_t der_internal[] = { 0x30, 0x03, 0x0a, 0x01, 0x02 };
static const uint8_t der_trylater[] = { 0x30, 0x03, 0x0a, 0x01, 0x03 };
static const uint8_t der_unauthorized[] = { 0x30, 0x03, 0x0a, 0x01, 0x06 };
/* responseStatus successful (RFC 6960 4.2.1). */
static const uint8_t der_successful[] = { 0x0a, 0x01, 0x00 };
/* responseType id-pkix-ocsp-basic. */
static const uint8_t der_oid_basic[] = {
	0x06, 0x09, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x01
};
/* Extension id-pkix-ocsp-extended-revoke, extnValue NULL (RFC 6960 2.2). */
static const uint8_t der_ext_revoke[] = {
	0x30, 0x0f, 0x06, 0x09, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30,
	0x01, 0x09, 0x04, 0x02, 0x05, 0x00
};
/* id-ce-invalidityDate (RFC 5280 5.3.2). */
static const uint8_t der_oid_invalidity[] = { 0x06, 0x03, 0x55, 0x1d, 0x18 };
static const uint8_t der_good[] = { 0x80, 0x00 };
static const uint8_t der_unknown[] = { 0x82, 0x00 };

/*
 * The signer and the response pieces that depend on it.  Immutable once
 * built and shared by reference, so a renewed signer can replace it while
 * threads still finish responses with the old one.
 */
struct signer {
	atomic_int		 refs;
	X509			*cert;
	EVP_PKEY		*key;
	const char		*mdname;	/* NULL for EdDSA */
	const struct rsign	*remote;	/* signs instead of key */
	int			 is_ca;
	/* cert's validity as integers: checked at every signature */
	int64_t			 not_before, not_after;
	/* Precomputed pieces of every response (see build_response). */
	uint8_t			 respid[RESPID_LEN];	/* [2] byKey */
	uint8_t			*sigalg;	/* AlgorithmIdentifier DER */
	size_t			 sigalg_len;
	uint8_t			*certs;		/* [0] { signer }, or NULL */
	size_t			 certs_len;
	size_t			 sig_max;
};

struct ocsp_responder {
	struct ocsp_opts	 opts;
	X509			*ca;
	struct store		*store;
	uint8_t			 name_sha1[SHA1_LEN], key_sha1[SHA1_LEN];
	uint8_t			 name_sha256[SHA256_LEN];
	uint8_t			 key_sha256[SHA256_LEN];
	pthread_mutex_t		 sig_mu;	/* guards sig */
	struct signer		*sig;
	atomic_uint_fast64_t	 sig_gen;	/* bumped on every swap */
	struct ocsp_cache	*cache;
	atomic_uint_fast64_t	 gen;
	atomic_uint_fast64_t	 results[OCSPRES_COUNT];
	atomic_uint_fast64_t	 hits, misses;
	atomic_uint_fast64_t	 lat[NLAT + 1];
	atomic_uint_fast64_t	 lat_sum_us;
	/* called when a signature is due and the signer is not valid */
	void			(*invalid_fn)(void *);
	void			*invalid_arg;
	atomic_int_fast64_t	 invalid_last;	/* monotonic s of last call */
};

struct ocsp_ctx {
	struct ocsp_responder	*r;
	struct store_reader	*reader;
	struct signer		*s;		/* the thread's reference */
	uint64_t		 s_gen;		/* r->sig_gen when taken */
	EVP_MD_CTX		*tmpl;		/* DigestSign initialised */
	EVP_MD_CTX		*work;		/* tmpl copied per response */
	uint8_t			*sig;		/* sig_max bytes */
	uint8_t			*tbs, *out;	/* encoder buffers */
	size_t			 tbs_cap, out_cap;
	uint8_t			(*serials)[OCSP_SERIAL_LEN];
	struct cert_state	*states;
	uint8_t			*kind;
	int			 saw_unissued;	/* a serial not in the store */
};

/* What one CertID is, before the store is asked. */
enum cid_kind {
	CID_FOREIGN = 0,	/* another issuer or hash algorithm */
	CID_NEVER,		/* ours, serial cannot have been issued */
	CID_LOOKUP,		/* ours, ask the store */
};

void
ocsp_opts_defaults(struct ocsp_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->next_update = 3600;
	o->max_certids = 16;
	o->unknown_revoked = 0;
	o->max_request = 16384;
	o->cache_entries = 65536;
	o->cache_bytes = 64u << 20;
}

static int
digest(const EVP_MD *md, const uint8_t *p, size_t len, uint8_t *out,
    size_t out_len)
{
	unsigned int n = 0;

	if (!EVP_Digest(p, len, out, &n, md, NULL) || n != out_len) {
		log_ssl("ocsp: digest");
		return 0;
	}
	return 1;
}

/* Precomputes issuerNameHash and issuerKeyHash (RFC 6960 4.1.1). */
static int
issuer_hashes(struct ocsp_responder *r)
{
	const ASN1_BIT_STRING *pub;
	unsigned char *name = NULL;
	int name_len, rc = 0;

	if ((name_len = i2d_X509_NAME(X509_get_subject_name(r->ca),
	    &name)) <= 0) {
		log_ssl("ocsp: encode CA name");
		goto out;
	}
	if ((pub = X509_get0_pubkey_bitstr(r->ca)) == NULL) {
		log_ssl("ocsp: CA public key");
		goto out;
	}
	if (!digest(EVP_sha1(), name, name_len, r->name_sha1, SHA1_LEN) ||
	    !digest(EVP_sha256(), name, name_len, r->name_sha256,
	    SHA256_LEN) ||
	    !digest(EVP_sha1(), pub->data, pub->length, r->key_sha1,
	    SHA1_LEN) ||
	    !digest(EVP_sha256(), pub->data, pub->length, r->key_sha256,
	    SHA256_LEN))
		goto out;
	rc = 1;
 out:
	OPENSSL_free(name);
	return rc;
}

/*
 * Signs an empty BasicOCSPResponse the generic way once, to learn the
 * AlgorithmIdentifier OpenSSL writes for this key (RSA, RSA-PSS, ECDSA,
 * EdDSA alike); every later response reuses its DER.
 */
/*
 * The same with a stand-in key (another process signs): an X509 signed
 * with it carries the AlgorithmIdentifier OpenSSL writes for that key
 * type, without OCSP_basic_sign_ctx's key-matches-certificate check.
 */
static int
learn_sigalg_standin(struct signer *r)
{
	X509 *x = NULL;
	unsigned char *der = NULL;
	int len, rc = 0;

	if ((x = X509_new()) == NULL ||
	    !X509_set_pubkey(x, X509_get0_pubkey(r->cert)) ||
	    X509_sign(x, r->key, sigmd_get(r->key)) <= 0 ||
	    (len = i2d_X509_ALGOR(X509_get0_tbs_sigalg(x), &der)) <= 0) {
		log_ssl("ocsp: signature algorithm");
		goto out;
	}
	r->sigalg = der;
	r->sigalg_len = (size_t)len;
	rc = 1;
 out:
	X509_free(x);
	return rc;
}

static int
learn_sigalg(struct signer *r)
{
	OCSP_BASICRESP *bs = NULL;
	EVP_MD_CTX *mctx = NULL;
	unsigned char *der = NULL;
	int len, rc = 0;

	if (r->remote != NULL)		/* key is a stand-in of cert's type */
		return learn_sigalg_standin(r);
	if ((bs = OCSP_BASICRESP_new()) == NULL ||
	    (mctx = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestSignInit_ex(mctx, NULL, r->mdname, NULL, NULL, r->key,
	    NULL) != 1 ||
	    OCSP_basic_sign_ctx(bs, r->cert, mctx, NULL,
	    OCSP_RESPID_KEY | OCSP_NOCERTS) != 1 ||
	    (len = i2d_X509_ALGOR(OCSP_resp_get0_tbs_sigalg(bs), &der)) <= 0) {
		log_ssl("ocsp: signature algorithm");
		goto out;
	}
	r->sigalg = der;
	r->sigalg_len = (size_t)len;
	der = NULL;
	rc = 1;
 out:
	OPENSSL_free(der);
	EVP_MD_CTX_free(mctx);
	OCSP_BASICRESP_free(bs);
	return rc;
}

/*
 * Precomputes the constant parts of every response: ResponderID byKey
 * (SHA-1 of the signer's public key, RFC 6960 4.2.1), the signature
 * AlgorithmIdentifier, the certs [0] field holding a delegated signer
 * (RFC 6960 4.2.2.2), and the largest signature.
 */
static int
encoder_setup(struct signer *r)
{
	struct ocsp_derw w;
	unsigned char *cert = NULL;
	unsigned int n = 0;
	size_t m, len;
	const uint8_t *p;
	int cert_len, size, rc = 0;

	r->respid[0] = 0xa2;
	r->respid[1] = 2 + SHA1_LEN;
	r->respid[2] = 0x04;
	r->respid[3] = SHA1_LEN;
	if (X509_pubkey_digest(r->cert, EVP_sha1(), r->respid + 4, &n) != 1 ||
	    n != SHA1_LEN) {
		log_ssl("ocsp: signer key hash");
		goto out;
	}
	if ((size = EVP_PKEY_get_size(X509_get0_pubkey(r->cert))) <= 0) {
		log_ssl("ocsp: signature size");
		goto out;
	}
	r->sig_max = (size_t)size;
	if (!learn_sigalg(r))
		goto out;
	if (!r->is_ca) {
		if ((cert_len = i2d_X509(r->cert, &cert)) <= 0) {
			log_ssl("ocsp: encode signer certificate");
			goto out;
		}
		if ((r->certs = malloc((size_t)cert_len + 16)) == NULL) {
			log_warn("ocsp: malloc");
			goto out;
		}
		ocsp_derw_init(&w, r->certs, (size_t)cert_len + 16);
		m = ocsp_derw_mark(&w);
		ocsp_derw_put(&w, cert, (size_t)cert_len);
		ocsp_derw_wrap(&w, 0x30, m);
		ocsp_derw_wrap(&w, 0xa0, m);
		if ((p = ocsp_derw_data(&w, &len)) == NULL)
			goto out;
		memmove(r->certs, p, len);
		r->certs_len = len;
	}
	rc = 1;
 out:
	OPENSSL_free(cert);
	return rc;
}

/* An ASN1_TIME as unix seconds. */
static int
asn1_unix(const ASN1_TIME *t, int64_t *out)
{
	struct tm tm;

	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
		return 0;
	*out = (int64_t)timegm(&tm);
	return 1;
}

static int
check_signer(struct signer *r, X509 *ca)
{
	if (!asn1_unix(X509_get0_notBefore(r->cert), &r->not_before) ||
	    !asn1_unix(X509_get0_notAfter(r->cert), &r->not_after)) {
		log_ssl("ocsp: signer certificate validity");
		return 0;
	}
	/* With a remote signer, key is a stand-in of the same type: the
	 * signer process checked its own key against the certificate. */
	if (!r->remote && X509_check_private_key(r->cert, r->key) != 1) {
		log_ssl("ocsp: signer key does not match signer certificate");
		return 0;
	}
	r->is_ca = X509_cmp(r->cert, ca) == 0;
	if (!r->is_ca) {
		if (X509_check_issued(ca, r->cert) != X509_V_OK) {
			log_warnx("ocsp: RFC 6960 4.2.2.2: signer is not "
			    "issued by the CA");
			return 0;
		}
		if ((X509_get_extended_key_usage(r->cert) &
		    XKU_OCSP_SIGN) == 0)
			log_warnx("ocsp: RFC 6960 4.2.2.2: signer lacks "
			    "id-kp-OCSPSigning; clients will reject answers");
	}
	r->mdname = sigmd_name(r->key);
	ERR_clear_error();
	return 1;
}

static void
signer_unref(struct signer *s)
{
	if (s == NULL || atomic_fetch_sub(&s->refs, 1) != 1)
		return;
	OPENSSL_free(s->sigalg);
	free(s->certs);
	X509_free(s->cert);
	EVP_PKEY_free(s->key);
	free(s);
}

/* Checks a signer against the CA and precomputes its pieces. */
static struct signer *
signer_new(X509 *ca, X509 *cert, EVP_PKEY *key, const struct rsign *remote)
{
	struct signer *s;

	if ((s = calloc(1, sizeof(*s))) == NULL) {
		log_warn("ocsp: calloc");
		return NULL;
	}
	atomic_init(&s->refs, 1);
	s->remote = remote;
	if (!X509_up_ref(cert)) {
		free(s);
		return NULL;
	}
	s->cert = cert;
	if (!EVP_PKEY_up_ref(key)) {
		signer_unref(s);
		return NULL;
	}
	s->key = key;
	if (!check_signer(s, ca) || !encoder_setup(s)) {
		signer_unref(s);
		return NULL;
	}
	return s;
}

int
ocsp_responder_set_signer(struct ocsp_responder *r, X509 *cert,
    EVP_PKEY *key)
{
	struct signer *s, *old;

	if ((s = signer_new(r->ca, cert, key, r->opts.rsign)) == NULL)
		return 0;
	pthread_mutex_lock(&r->sig_mu);
	old = r->sig;
	r->sig = s;
	atomic_fetch_add(&r->sig_gen, 1);
	pthread_mutex_unlock(&r->sig_mu);
	signer_unref(old);
	/* Cached answers carry the old signer: sign them afresh. */
	ocsp_invalidate_all(r);
	atomic_store(&r->invalid_last, 0);	/* report the next at once */
	log_info("ocsp: signer replaced");
	return 1;
}

/* Brings the thread's signer (and its signing template) up to date. */
static int
ctx_sync_signer(struct ocsp_ctx *c)
{
	struct ocsp_responder *r = c->r;
	struct signer *s;
	EVP_MD_CTX *tmpl = NULL;
	uint8_t *sig = NULL;
	uint64_t gen = atomic_load(&r->sig_gen);

	if (c->s != NULL && gen == c->s_gen)
		return 1;
	pthread_mutex_lock(&r->sig_mu);
	s = r->sig;
	atomic_fetch_add(&s->refs, 1);
	gen = atomic_load(&r->sig_gen);
	pthread_mutex_unlock(&r->sig_mu);
	/* A template copied per response saves the provider fetch. */
	if ((tmpl = EVP_MD_CTX_new()) == NULL ||
	    (s->remote == NULL && EVP_DigestSignInit_ex(tmpl, NULL, s->mdname,
	    NULL, NULL, s->key, NULL) != 1) ||
	    (sig = malloc(s->sig_max)) == NULL) {
		log_ssl("ocsp: signing context");
		EVP_MD_CTX_free(tmpl);
		free(sig);
		signer_unref(s);
		return 0;
	}
	EVP_MD_CTX_free(c->tmpl);
	free(c->sig);
	signer_unref(c->s);
	c->tmpl = tmpl;
	c->sig = sig;
	c->s = s;
	c->s_gen = gen;
	return 1;
}

struct ocsp_responder *
ocsp_responder_new(const struct ocsp_opts *opts, X509 *ca_cert,
    X509 *signer_cert, EVP_PKEY *signer_key, struct store *store)
{
	struct ocsp_responder *r;

	if (sodium_init() < 0) {
		log_warnx("ocsp: sodium_init failed");
		return NULL;
	}
	if ((r = calloc(1, sizeof(*r))) == NULL) {
		log_warn("ocsp: calloc");
		return NULL;
	}
	r->opts = *opts;
	if (r->opts.max_certids <= 0)
		r->opts.max_certids = 1;
	if (r->opts.next_update <= 0)
		r->opts.next_update = 3600;
	r->store = store;
	pthread_mutex_init(&r->sig_mu, NULL);
	if (!X509_up_ref(ca_cert))
		goto fail;
	r->ca = ca_cert;
	if ((r->sig = signer_new(ca_cert, signer_cert, signer_key,
	    r->opts.rsign)) == NULL ||
	    !issuer_hashes(r))
		goto fail;
	if ((r->cache = ocsp_cache_new(r->opts.cache_entries,
	    r->opts.cache_bytes)) == NULL)
		goto fail;
	return r;
 fail:
	ocsp_responder_free(r);
	return NULL;
}

void
ocsp_responder_free(struct ocsp_responder *r)
{
	if (r == NULL)
		return;
	ocsp_cache_free(r->cache);
	signer_unref(r->sig);
	X509_free(r->ca);
	pthread_mutex_destroy(&r->sig_mu);
	free(r);
}

struct ocsp_ctx *
ocsp_ctx_new(struct ocsp_responder *r)
{
	struct ocsp_ctx *c;
	size_t n = (size_t)r->opts.max_certids;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->r = r;
	if ((c->serials = calloc(n, OCSP_SERIAL_LEN)) == NULL ||
	    (c->states = calloc(n, sizeof(*c->states))) == NULL ||
	    (c->kind = calloc(n, 1)) == NULL)
		goto fail;
	if ((c->reader = store_reader_new(r->store)) == NULL) {
		log_warnx("ocsp: cannot create a store reader");
		goto fail;
	}
	if ((c->work = EVP_MD_CTX_new()) == NULL || !ctx_sync_signer(c)) {
		log_ssl("ocsp: signing context");
		goto fail;
	}
	return c;
 fail:
	ocsp_ctx_free(c);
	return NULL;
}

void
ocsp_ctx_free(struct ocsp_ctx *c)
{
	if (c == NULL)
		return;
	store_reader_free(c->reader);
	signer_unref(c->s);
	EVP_MD_CTX_free(c->tmpl);
	EVP_MD_CTX_free(c->work);
	free(c->sig);
	free(c->tbs);
	free(c->out);
	free(c->serials);
	free(c->states);
	free(c->kind);
	free(c);
}

/*
 * Classifies a CertID: ours if the hash algorithm is SHA-1 or SHA-256 and
 * both issuer hashes match the CA (RFC 6960 4.1.1).  The serial becomes
 * the store's 16-byte big-endian key; a negative or longer serial was
 * never issued.
 */
static enum cid_kind
certid_classify(struct ocsp_responder *r, OCSP_CERTID *cid,
    uint8_t serial[OCSP_SERIAL_LEN])
{
	ASN1_OCTET_STRING *nh = NULL, *kh = NULL;
	ASN1_OBJECT *md = NULL;
	ASN1_INTEGER *sn = NULL;
	const uint8_t *en, *ek, *p;
	size_t hl;
	int len;

	memset(serial, 0, OCSP_SERIAL_LEN);
	if (!OCSP_id_get0_info(&nh, &md, &kh, &sn, cid) || nh == NULL ||
	    kh == NULL || md == NULL || sn == NULL)
		return CID_FOREIGN;
	switch (OBJ_obj2nid(md)) {
	case NID_sha1:
		en = r->name_sha1;
		ek = r->key_sha1;
		hl = SHA1_LEN;
		break;
	case NID_sha256:
		en = r->name_sha256;
		ek = r->key_sha256;
		hl = SHA256_LEN;
		break;
	default:
		return CID_FOREIGN;
	}
	if ((size_t)ASN1_STRING_length(nh) != hl ||
	    (size_t)ASN1_STRING_length(kh) != hl ||
	    memcmp(ASN1_STRING_get0_data(nh), en, hl) != 0 ||
	    memcmp(ASN1_STRING_get0_data(kh), ek, hl) != 0)
		return CID_FOREIGN;
	if (ASN1_STRING_type(sn) == V_ASN1_NEG_INTEGER)
		return CID_NEVER;
	p = ASN1_STRING_get0_data(sn);
	len = ASN1_STRING_length(sn);
	while (len > 0 && p[0] == 0) {
		p++;
		len--;
	}
	if (len == 0 || len > OCSP_SERIAL_LEN)
		return CID_NEVER;
	memcpy(serial + OCSP_SERIAL_LEN - len, p, len);
	return CID_LOOKUP;
}

/*
 * RFC 8954 / RFC 9654: the extnValue is an OCTET STRING wrapping the
 * nonce OCTET STRING of 1..128 octets.
 */
static int
nonce_ok(X509_EXTENSION *ext)
{
	ASN1_OCTET_STRING *v, *inner = NULL;
	const unsigned char *p, *end;
	int ok = 0;

	if ((v = X509_EXTENSION_get_data(ext)) == NULL)
		goto out;
	p = ASN1_STRING_get0_data(v);
	end = p + ASN1_STRING_length(v);
	if ((inner = d2i_ASN1_OCTET_STRING(NULL, &p,
	    ASN1_STRING_length(v))) == NULL || p != end) {
		log_debug("ocsp: RFC 8954 2.1: nonce is not an OCTET STRING");
		goto out;
	}
	if (ASN1_STRING_length(inner) < NONCE_MIN ||
	    ASN1_STRING_length(inner) > NONCE_MAX) {
		log_debug("ocsp: RFC 9654 2.1: nonce length %d out of 1..128",
		    ASN1_STRING_length(inner));
		goto out;
	}
	ok = 1;
 out:
	ASN1_OCTET_STRING_free(inner);
	ERR_clear_error();
	return ok;
}

/*
 * Request extensions: at most one nonce, valid; any other critical
 * extension is not understood (RFC 5280 4.2).  Returns 1 ok, 0 malformed.
 */
static int
check_extensions(OCSP_REQUEST *req, int *out_nonce)
{
	X509_EXTENSION *ext;
	int i, n, nid;

	*out_nonce = 0;
	n = OCSP_REQUEST_get_ext_count(req);
	for (i = 0; i < n; i++) {
		ext = OCSP_REQUEST_get_ext(req, i);
		nid = OBJ_obj2nid(X509_EXTENSION_get_object(ext));
		if (nid == NID_id_pkix_OCSP_Nonce) {
			if (*out_nonce || !nonce_ok(ext))
				return 0;
			*out_nonce = 1;
		} else if (X509_EXTENSION_get_critical(ext))
			return 0;
	}
	return 1;
}

/* Looks up every CertID of ours in one read transaction. */
static int
lookup_states(struct ocsp_ctx *c, int n)
{
	struct store_txn *txn;
	enum store_rc rc;
	int i, ok = 0;

	if ((txn = store_reader_begin(c->reader)) == NULL) {
		log_warnx("ocsp: store read transaction failed");
		return 0;
	}
	for (i = 0; i < n; i++) {
		if (c->kind[i] != CID_LOOKUP)
			continue;
		rc = store_cert_state(txn, c->serials[i], &c->states[i]);
		if (rc == STORE_NOTFOUND) {
			c->kind[i] = CID_NEVER;
			c->saw_unissued = 1;
		}
		else if (rc != STORE_OK) {
			log_warnx("ocsp: store: %s", store_strerror(rc));
			goto out;
		}
	}
	ok = 1;
 out:
	store_reader_end(c->reader);
	return ok;
}

static enum ocsp_result
status_result(int status)
{
	if (status == V_OCSP_CERTSTATUS_GOOD)
		return OCSPRES_GOOD;
	if (status == V_OCSP_CERTSTATUS_REVOKED)
		return OCSPRES_REVOKED;
	return OCSPRES_UNKNOWN;
}

/* What one SingleResponse says (RFC 6960 4.2.1 CertStatus). */
struct single {
	int	status;		/* V_OCSP_CERTSTATUS_* */
	int	reason;		/* OCSP_REVOKED_STATUS_NOSTATUS: none */
	int64_t	when;		/* revocationTime */
	int64_t	invalidity;	/* invalidityDate extension, 0: none */
};

/* The status of CertID i; *io_ext_revoke is set when the extended
 * revoke extension is needed (RFC 6960 2.2). */
static void
single_status(struct ocsp_ctx *c, int i, struct single *s,
    int *io_ext_revoke)
{
	const struct cert_state *st = &c->states[i];

	memset(s, 0, sizeof(*s));
	s->reason = OCSP_REVOKED_STATUS_NOSTATUS;
	if (c->kind[i] == CID_FOREIGN)
		s->status = V_OCSP_CERTSTATUS_UNKNOWN;
	else if (c->kind[i] == CID_NEVER) {
		if (c->r->opts.unknown_revoked) {
			s->status = V_OCSP_CERTSTATUS_REVOKED;
			s->reason = OCSP_REVOKED_STATUS_CERTIFICATEHOLD;
			*io_ext_revoke = 1;
		} else
			s->status = V_OCSP_CERTSTATUS_UNKNOWN;
	} else if (st->status == CERT_GOOD)
		s->status = V_OCSP_CERTSTATUS_GOOD;
	else {
		s->status = V_OCSP_CERTSTATUS_REVOKED;
		s->when = st->revoked_at;
		if (st->status == CERT_HOLD)
			s->reason = OCSP_REVOKED_STATUS_CERTIFICATEHOLD;
		else if (st->reason != REASON_UNSPECIFIED &&
		    st->reason <= REASON_AA_COMPROMISE && st->reason != 7)
			s->reason = st->reason;	/* RFC 5280 5.3.1: omit 0 */
		if (st->status == CERT_REVOKED)
			s->invalidity = st->invalidity;
	}
}

/* Prepends the DER of an OpenSSL-decoded item (i2d into place). */
static void
put_i2d_certid(struct ocsp_derw *w, const OCSP_CERTID *cid)
{
	unsigned char *p;
	int len;

	if ((len = i2d_OCSP_CERTID(cid, NULL)) <= 0 ||
	    (p = ocsp_derw_reserve(w, (size_t)len)) == NULL ||
	    i2d_OCSP_CERTID(cid, &p) != len)
		w->failed = 1;
}

static void
put_i2d_ext(struct ocsp_derw *w, const X509_EXTENSION *ext)
{
	unsigned char *p;
	int len;

	if ((len = i2d_X509_EXTENSION(ext, NULL)) <= 0 ||
	    (p = ocsp_derw_reserve(w, (size_t)len)) == NULL ||
	    i2d_X509_EXTENSION(ext, &p) != len)
		w->failed = 1;
}

/*
 * Prepends one SingleResponse (RFC 6960 4.2.1): the CertID as the request
 * sent it, certStatus, thisUpdate, nextUpdate [0], and singleExtensions
 * [1] with the invalidity date when there is one.
 */
static void
put_single(struct ocsp_derw *w, const OCSP_CERTID *cid,
    const struct single *s, int64_t this_upd, int64_t next_upd)
{
	size_t m = ocsp_derw_mark(w), m1;

	if (s->invalidity != 0) {
		m1 = ocsp_derw_mark(w);
		ocsp_derw_gentime(w, s->invalidity);
		ocsp_derw_wrap(w, 0x04, m1);
		ocsp_derw_put(w, der_oid_invalidity,
		    sizeof(der_oid_invalidity));
		ocsp_derw_wrap(w, 0x30, m1);	/* Extension */
		ocsp_derw_wrap(w, 0x30, m1);	/* Extensions */
		ocsp_derw_wrap(w, 0xa1, m1);
	}
	m1 = ocsp_derw_mark(w);
	ocsp_derw_gentime(w, next_upd);
	ocsp_derw_wrap(w, 0xa0, m1);
	ocsp_derw_gentime(w, this_upd);
	if (s->status == V_OCSP_CERTSTATUS_GOOD)
		ocsp_derw_put(w, der_good, sizeof(der_good));
	else if (s->status == V_OCSP_CERTSTATUS_UNKNOWN)
		ocsp_derw_put(w, der_unknown, sizeof(der_unknown));
	else {
		m1 = ocsp_derw_mark(w);
		if (s->reason != OCSP_REVOKED_STATUS_NOSTATUS) {
			/* revocationReason [0] EXPLICIT CRLReason */
			ocsp_derw_u8(w, (uint8_t)s->reason);
			ocsp_derw_hdr(w, 0x0a, 1);
			ocsp_derw_hdr(w, 0xa0, 3);
		}
		ocsp_derw_gentime(w, s->when);
		ocsp_derw_wrap(w, 0xa1, m1);	/* revoked [1] RevokedInfo */
	}
	put_i2d_certid(w, cid);
	ocsp_derw_wrap(w, 0x30, m);
}

static int
grow(uint8_t **buf, size_t *cap, size_t need)
{
	uint8_t *p;

	if (*cap >= need)
		return 1;
	if ((p = realloc(*buf, need)) == NULL) {
		log_warn("ocsp: realloc");
		return 0;
	}
	*buf = p;
	*cap = need;
	return 1;
}

/*
 * nextUpdate of an answer signed at now by the thread's signer: the
 * configured lifetime, cut at the signer's notAfter, so that no client
 * or HTTP cache keeps an answer past its signer's validity.
 */
static int64_t
next_update_at(const struct ocsp_ctx *c, int64_t now)
{
	int64_t nu = now + c->r->opts.next_update;

	if (c->s != NULL && nu > c->s->not_after)
		nu = c->s->not_after;
	return nu;
}

/*
 * Encodes ResponseData (RFC 6960 4.2.1; version v1 omitted as DEFAULT):
 * responderID byKey, producedAt, the SingleResponses in request order,
 * and responseExtensions (the request's nonce as sent, RFC 8954 2.1; the
 * extended revoke extension).  *out points into c->tbs.
 */
static int
encode_tbs(struct ocsp_ctx *c, OCSP_REQUEST *req, size_t req_len, int n,
    int nonce, int64_t now, enum ocsp_result *out_res,
    const uint8_t **out, size_t *out_len)
{
	struct ocsp_responder *r = c->r;
	struct ocsp_derw w;
	struct single s;
	size_t m, m1;
	int i, ext_revoke = 0;

	/* DER CertIDs and the nonce are no longer than their request BER. */
	if (!grow(&c->tbs, &c->tbs_cap, req_len + (size_t)n * SINGLE_MAX +
	    ENVELOPE_MAX))
		return 0;
	for (i = 0; i < n; i++)
		if (c->kind[i] == CID_NEVER && r->opts.unknown_revoked)
			ext_revoke = 1;
	ocsp_derw_init(&w, c->tbs, c->tbs_cap);
	m = ocsp_derw_mark(&w);
	if (nonce || ext_revoke) {
		m1 = ocsp_derw_mark(&w);
		if (ext_revoke)
			ocsp_derw_put(&w, der_ext_revoke,
			    sizeof(der_ext_revoke));
		if (nonce)
			put_i2d_ext(&w, OCSP_REQUEST_get_ext(req,
			    OCSP_REQUEST_get_ext_by_NID(req,
			    NID_id_pkix_OCSP_Nonce, -1)));
		ocsp_derw_wrap(&w, 0x30, m1);
		ocsp_derw_wrap(&w, 0xa1, m1);
	}
	m1 = ocsp_derw_mark(&w);
	for (i = n - 1; i >= 0; i--) {
		single_status(c, i, &s, &ext_revoke);
		put_single(&w, OCSP_onereq_get0_id(OCSP_request_onereq_get0(
		    req, i)), &s, now, next_update_at(c, now));
		if (i == 0)
			*out_res = status_result(s.status);
	}
	ocsp_derw_wrap(&w, 0x30, m1);
	ocsp_derw_gentime(&w, now);	/* producedAt */
	ocsp_derw_put(&w, c->s->respid, sizeof(c->s->respid));
	ocsp_derw_wrap(&w, 0x30, m);
	return (*out = ocsp_derw_data(&w, out_len)) != NULL;
}

/*
 * The signer is outside its validity at now: warn and call the owner's
 * hook, both at most once per OCSP_INVALID_HOOK_SECS (monotonic).
 */
static void
signer_invalid(struct ocsp_responder *r, const struct signer *s, int64_t now)
{
	struct timespec ts;
	int_fast64_t last, mono;
	char tnb[40], tna[40], tnow[40];

	clock_gettime(CLOCK_MONOTONIC, &ts);
	mono = (int_fast64_t)ts.tv_sec;
	last = atomic_load(&r->invalid_last);
	if (last != 0 && mono - last < OCSP_INVALID_HOOK_SECS && mono >= last)
		return;
	if (!atomic_compare_exchange_strong(&r->invalid_last, &last,
	    mono == 0 ? 1 : mono))
		return;		/* another thread does it */
	ocsp_http_date(tnb, sizeof(tnb), s->not_before);
	ocsp_http_date(tna, sizeof(tna), s->not_after);
	ocsp_http_date(tnow, sizeof(tnow), now);
	log_warnx("ocsp: the signer certificate is %s (valid %s to %s, now "
	    "%s): answering tryLater (RFC 6960 2.3) until it is renewed",
	    now < s->not_before ? "not yet valid" : "expired", tnb, tna,
	    tnow);
	if (r->invalid_fn != NULL)
		r->invalid_fn(r->invalid_arg);
}

void
ocsp_responder_set_invalid_hook(struct ocsp_responder *r, void (*fn)(void *),
    void *arg)
{
	r->invalid_fn = fn;
	r->invalid_arg = arg;
}

void
ocsp_responder_signer_times(struct ocsp_responder *r, int64_t *out_nb,
    int64_t *out_na)
{
	pthread_mutex_lock(&r->sig_mu);
	*out_nb = r->sig->not_before;
	*out_na = r->sig->not_after;
	pthread_mutex_unlock(&r->sig_mu);
}

/* Signs tbs with a copy of the thread's initialised context. */
static int
sign_tbs(struct ocsp_ctx *c, const uint8_t *tbs, size_t tbs_len,
    size_t *out_sig_len)
{
	struct signer *r = c->s;

	if (r->remote != NULL)
		return r->remote->sign(r->remote->arg, RSIGN_OCSP, tbs,
		    tbs_len, c->sig, r->sig_max, out_sig_len);
	if (EVP_MD_CTX_copy_ex(c->work, c->tmpl) != 1) {
		/* EdDSA contexts cannot be copied: initialise afresh. */
		ERR_clear_error();
		if (EVP_DigestSignInit_ex(c->work, NULL, r->mdname, NULL,
		    NULL, r->key, NULL) != 1)
			return 0;
	}
	*out_sig_len = r->sig_max;
	return EVP_DigestSign(c->work, c->sig, out_sig_len, tbs,
	    tbs_len) == 1 && *out_sig_len <= r->sig_max;
}

/*
 * The ResponseData of a decoded request whose CertIDs are classified in
 * c, signed by the thread's current signer (RFC 6960 2.3: tryLater when
 * it is outside its validity).  *tbs points into c->tbs.
 */
static int
prepare_tbs(struct ocsp_ctx *c, OCSP_REQUEST *req, size_t req_len, int n,
    int nonce, int64_t now, enum ocsp_result *out_res, const uint8_t **tbs,
    size_t *tbs_len)
{
	struct signer *r;

	if (!ctx_sync_signer(c))
		return 0;
	r = c->s;
	if (now < r->not_before || now > r->not_after) {
		/* RFC 6960 2.3: no answer a client could verify */
		signer_invalid(c->r, r, now);
		*out_res = OCSPRES_TRYLATER;
		return 0;
	}
	return encode_tbs(c, req, req_len, n, nonce, now, out_res, tbs,
	    tbs_len);
}

/*
 * The OCSPResponse (RFC 6960 4.2.1) wrapping a BasicOCSPResponse of the
 * ResponseData tbs, signer r's signatureAlgorithm, the signature sig and,
 * for a delegated signer, certs; straight to DER from precomputed pieces.
 * *out points into c->out, valid until the next call.
 */
static int
wrap_response(struct ocsp_ctx *c, const struct signer *r, const uint8_t *tbs,
    size_t tbs_len, const uint8_t *sig, size_t sig_len, const uint8_t **out,
    size_t *out_len)
{
	struct ocsp_derw w;
	size_t m;

	if (!grow(&c->out, &c->out_cap, tbs_len + r->sigalg_len + sig_len +
	    r->certs_len + ENVELOPE_MAX))
		return 0;
	ocsp_derw_init(&w, c->out, c->out_cap);
	m = ocsp_derw_mark(&w);
	if (r->certs != NULL)
		ocsp_derw_put(&w, r->certs, r->certs_len);
	ocsp_derw_put(&w, sig, sig_len);
	ocsp_derw_u8(&w, 0);		/* no unused bits */
	ocsp_derw_hdr(&w, 0x03, sig_len + 1);
	ocsp_derw_put(&w, r->sigalg, r->sigalg_len);
	ocsp_derw_put(&w, tbs, tbs_len);
	ocsp_derw_wrap(&w, 0x30, m);	/* BasicOCSPResponse */
	ocsp_derw_wrap(&w, 0x04, m);	/* response OCTET STRING */
	ocsp_derw_put(&w, der_oid_basic, sizeof(der_oid_basic));
	ocsp_derw_wrap(&w, 0x30, m);	/* ResponseBytes */
	ocsp_derw_wrap(&w, 0xa0, m);	/* [0] EXPLICIT */
	ocsp_derw_put(&w, der_successful, sizeof(der_successful));
	ocsp_derw_wrap(&w, 0x30, m);	/* OCSPResponse */
	return (*out = ocsp_derw_data(&w, out_len)) != NULL;
}

/*
 * A signed response as a blob, for signer s (its validity bounds the
 * cache and nextUpdate).
 */
static struct ocsp_blob *
make_blob(const struct ocsp_responder *r, const struct signer *s,
    const uint8_t *der, size_t der_len, enum ocsp_result res, int64_t now)
{
	struct ocsp_blob *b;
	int64_t nu = now + r->opts.next_update;

	if ((b = ocsp_blob_new(der, der_len)) == NULL)
		return NULL;
	b->signer_not_before = s->not_before;
	b->signer_not_after = s->not_after;
	b->result = (uint8_t)res;
	b->this_update = now;
	b->next_update = nu > s->not_after ? s->not_after : nu;
	return b;
}

/*
 * Decodes and answers a request not found in the cache.  On success
 * *out_blob holds the signed response and *out_nonce says whether it
 * echoes a nonce (then it must not be cached); c->serials[0..*out_num)
 * are the serials it covers.  With defer and a remote signer nothing is
 * signed: *out_tbs (into c->tbs) is the ResponseData to sign and
 * *out_blob stays NULL.
 */
static enum ocsp_result
respond_miss(struct ocsp_ctx *c, const uint8_t *in, size_t len, int64_t now,
    int defer, struct ocsp_blob **out_blob, int *out_nonce, size_t *out_num,
    const uint8_t **out_tbs, size_t *out_tbs_len)
{
	struct ocsp_responder *r = c->r;
	OCSP_REQUEST *req = NULL;
	const unsigned char *p = in;
	const uint8_t *der = NULL, *tbs = NULL;
	enum ocsp_result res = OCSPRES_MALFORMED;
	int i, n, ours = 0;
	size_t num = 0, der_len = 0, tbs_len = 0, sig_len = 0;

	*out_blob = NULL;
	*out_tbs = NULL;
	if ((req = d2i_OCSP_REQUEST(NULL, &p, (long)len)) == NULL ||
	    p != in + len) {
		log_debug("ocsp: RFC 6960 4.1.1: request does not decode");
		goto out;
	}
	n = OCSP_request_onereq_count(req);
	if (n <= 0 || n > r->opts.max_certids) {
		log_debug("ocsp: request has %d CertIDs (1..%d)", n,
		    r->opts.max_certids);
		goto out;
	}
	if (!check_extensions(req, out_nonce))
		goto out;
	for (i = 0; i < n; i++) {
		c->kind[i] = certid_classify(r, OCSP_onereq_get0_id(
		    OCSP_request_onereq_get0(req, i)), c->serials[i]);
		if (c->kind[i] != CID_FOREIGN)
			ours++;
	}
	num = (size_t)n;	/* zero serials (never issued) match nothing */
	*out_num = num;
	if (ours == 0) {
		res = OCSPRES_UNAUTHORIZED;	/* RFC 5019 2.2.3 */
		goto out;
	}
	res = OCSPRES_INTERNAL;
	if (!lookup_states(c, n))
		goto out;
	if (!prepare_tbs(c, req, len, n, *out_nonce, now, &res, &tbs,
	    &tbs_len)) {
		if (res != OCSPRES_TRYLATER) {
			log_ssl("ocsp: build response");
			res = OCSPRES_INTERNAL;
		}
		goto out;
	}
	if (defer && c->s->remote != NULL) {
		*out_tbs = tbs;
		*out_tbs_len = tbs_len;
		goto out;
	}
	if (!sign_tbs(c, tbs, tbs_len, &sig_len) ||
	    !wrap_response(c, c->s, tbs, tbs_len, c->sig, sig_len, &der,
	    &der_len)) {
		log_ssl("ocsp: build response");
		res = OCSPRES_INTERNAL;
		goto out;
	}
	if ((*out_blob = make_blob(r, c->s, der, der_len, res, now)) == NULL)
		res = OCSPRES_INTERNAL;
 out:
	ERR_clear_error();
	OCSP_REQUEST_free(req);
	return res;
}

/*
 * b->serials: the non-zero serials of the request, upper-case hex as mica
 * prints them, comma-separated, each once; left NULL when they do not
 * fit SERIALS_TXT_MAX (an HTTP cache then gets no-store: a ban could not
 * name the answer).
 */
static void
set_serials(struct ocsp_blob *b, const uint8_t (*serials)[OCSP_SERIAL_LEN],
    size_t num)
{
	static const uint8_t zero[OCSP_SERIAL_LEN];
	char hex[SERIAL_HEX_LEN], *t;
	size_t i, j, n = 0, hl;

	if ((t = malloc(SERIALS_TXT_MAX)) == NULL)
		return;
	for (i = 0; i < num; i++) {
		if (memcmp(serials[i], zero, OCSP_SERIAL_LEN) == 0)
			continue;
		for (j = 0; j < i; j++)
			if (memcmp(serials[i], serials[j],
			    OCSP_SERIAL_LEN) == 0)
				break;
		if (j < i)
			continue;
		serial_hex(hex, serials[i]);
		hl = strlen(hex);
		if (n + hl + 2 > SERIALS_TXT_MAX) {
			free(t);
			return;
		}
		if (n > 0)
			t[n++] = ',';
		memcpy(t + n, hex, hl);
		n += hl;
	}
	if (n == 0) {
		free(t);
		return;
	}
	t[n] = '\0';
	b->serials = t;
}

static void
set_etag(struct ocsp_blob *b)
{
	uint8_t h[ETAG_HASH_LEN];
	char hex[2 * ETAG_HASH_LEN + 1];

	crypto_generichash(h, sizeof(h), b->der, b->len, NULL, 0);
	hex_encode(hex, h, sizeof(h));
	snprintf(b->etag, sizeof(b->etag), "\"%s\"", hex);
}

static void
answer_error(struct ocsp_answer *a, enum ocsp_result res)
{
	a->result = res;
	switch (res) {
	case OCSPRES_MALFORMED:
		a->der = der_malformed;
		a->der_len = sizeof(der_malformed);
		break;
	case OCSPRES_UNAUTHORIZED:
		a->der = der_unauthorized;
		a->der_len = sizeof(der_unauthorized);
		break;
	case OCSPRES_TRYLATER:
		a->der = der_trylater;
		a->der_len = sizeof(der_trylater);
		break;
	default:
		a->result = OCSPRES_INTERNAL;
		a->der = der_internal;
		a->der_len = sizeof(der_internal);
		break;
	}
}

static void
answer_blob(struct ocsp_answer *a, struct ocsp_blob *b, int cacheable)
{
	a->ref = b;
	a->der = b->der;
	a->der_len = b->len;
	a->result = (enum ocsp_result)b->result;
	a->cacheable = cacheable;
	a->this_update = b->this_update;
	a->next_update = b->next_update;
	if (cacheable) {
		memcpy(a->etag, b->etag, sizeof(a->etag));
		a->serials = b->serials;
	}
}

static void
count(struct ocsp_responder *r, enum ocsp_result res,
    const struct timespec *t0)
{
	struct timespec t1;
	uint64_t us;
	int i;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	us = (uint64_t)(t1.tv_sec - t0->tv_sec) * 1000000u +
	    (uint64_t)((t1.tv_nsec - t0->tv_nsec) / 1000);
	for (i = 0; i < NLAT && us > lat_bounds_us[i]; i++)
		;
	atomic_fetch_add_explicit(&r->lat[i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&r->lat_sum_us, us, memory_order_relaxed);
	atomic_fetch_add_explicit(&r->results[res], 1, memory_order_relaxed);
}

int
ocsp_respond_cached(struct ocsp_ctx *c, struct ocsp_answer *out,
    const uint8_t *req, size_t req_len)
{
	struct ocsp_responder *r = c->r;
	struct ocsp_blob *b;
	struct timespec t0;

	memset(out, 0, sizeof(*out));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (req_len == 0 || req_len > r->opts.max_request)
		answer_error(out, OCSPRES_MALFORMED);
	else if ((b = ocsp_cache_get(r->cache, ocsp_cache_hash(r->cache, req,
	    req_len), req, req_len, (int64_t)time(NULL))) != NULL) {
		atomic_fetch_add_explicit(&r->hits, 1, memory_order_relaxed);
		answer_blob(out, b, 1);
	} else
		return 0;
	count(r, out->result, &t0);
	return 1;
}

/* An answer the cache may not hold: a nonce or no signed response. */
struct ocsp_pending {
	struct signer	*s;		/* a reference: the one that signs */
	struct timespec	 t0;
	int64_t		 now;
	uint64_t	 h, gen0;
	enum ocsp_result res;
	int		 nonce, saw_unissued;
	size_t		 num;
	uint8_t		(*serials)[OCSP_SERIAL_LEN];
	uint8_t		*req, *tbs;
	size_t		 req_len, tbs_len;
};

/*
 * What follows a signed response b: the ETag, the serials and the cache
 * (unless it echoes a nonce or names a serial not issued yet: it may be
 * issued a moment later), then *out.
 */
static void
respond_tail(struct ocsp_responder *r, struct ocsp_blob *b, int nonce,
    int saw_unissued, const uint8_t (*serials)[OCSP_SERIAL_LEN], size_t num,
    uint64_t h, const uint8_t *req, size_t req_len, uint64_t gen0,
    struct ocsp_answer *out)
{
	if (!nonce)
		set_etag(b);
	if (!nonce && !saw_unissued) {
		set_serials(b, serials, num);
		ocsp_cache_put(r->cache, h, req, req_len, b, serials, num,
		    &r->gen, gen0);
	}
	answer_blob(out, b, !nonce);
}

/* ocsp_respond past the cache; with pp, ocsp_respond_begin's. */
static int
respond_full(struct ocsp_ctx *c, struct ocsp_answer *out,
    struct ocsp_pending **pp, const uint8_t *req, size_t req_len)
{
	struct ocsp_responder *r = c->r;
	struct ocsp_pending *p;
	struct ocsp_blob *b = NULL;
	struct timespec t0;
	enum ocsp_result res;
	const uint8_t *tbs = NULL;
	uint64_t h, gen0;
	int64_t now;
	size_t num = 0, tbs_len = 0;
	int nonce = 0;

	memset(out, 0, sizeof(*out));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	now = (int64_t)time(NULL);
	h = ocsp_cache_hash(r->cache, req, req_len);
	atomic_fetch_add_explicit(&r->misses, 1, memory_order_relaxed);
	/* Taken before the read: an invalidation after it voids our put. */
	gen0 = atomic_load(&r->gen);
	c->saw_unissued = 0;
	res = respond_miss(c, req, req_len, now, pp != NULL, &b, &nonce, &num,
	    &tbs, &tbs_len);
	if (tbs != NULL) {
		if ((p = calloc(1, sizeof(*p))) == NULL ||
		    (p->req = malloc(req_len)) == NULL ||
		    (p->tbs = malloc(tbs_len)) == NULL ||
		    (p->serials = calloc(num, OCSP_SERIAL_LEN)) == NULL) {
			log_warn("ocsp: pending answer");
			ocsp_pending_free(p);
			answer_error(out, OCSPRES_INTERNAL);
			goto done;
		}
		p->s = c->s;
		atomic_fetch_add(&p->s->refs, 1);
		p->t0 = t0;
		p->now = now;
		p->h = h;
		p->gen0 = gen0;
		p->res = res;
		p->nonce = nonce;
		p->saw_unissued = c->saw_unissued;
		p->num = num;
		memcpy(p->serials, c->serials, num * OCSP_SERIAL_LEN);
		memcpy(p->req, req, req_len);
		p->req_len = req_len;
		memcpy(p->tbs, tbs, tbs_len);
		p->tbs_len = tbs_len;
		*pp = p;
		return 2;
	}
	if (b == NULL) {
		answer_error(out, res);
		goto done;
	}
	respond_tail(r, b, nonce, c->saw_unissued,
	    (const uint8_t (*)[OCSP_SERIAL_LEN])c->serials, num, h, req,
	    req_len, gen0, out);
 done:
	count(r, out->result, &t0);
	return 1;
}

int
ocsp_respond(struct ocsp_ctx *c, struct ocsp_answer *out, const uint8_t *req,
    size_t req_len)
{
	/* the cache (or a request of impossible size) first */
	if (ocsp_respond_cached(c, out, req, req_len))
		return 1;
	return respond_full(c, out, NULL, req, req_len);
}

int
ocsp_respond_begin(struct ocsp_ctx *c, struct ocsp_answer *out,
    struct ocsp_pending **out_p, const uint8_t *req, size_t req_len)
{
	*out_p = NULL;
	return respond_full(c, out, out_p, req, req_len);
}

const uint8_t *
ocsp_pending_tbs(const struct ocsp_pending *p, size_t *out_len)
{
	*out_len = p->tbs_len;
	return p->tbs;
}

int
ocsp_respond_finish(struct ocsp_ctx *c, struct ocsp_pending *p,
    struct ocsp_answer *out, const uint8_t *sig, size_t sig_len)
{
	struct ocsp_responder *r = c->r;
	struct ocsp_blob *b = NULL;
	const uint8_t *der;
	size_t der_len;

	memset(out, 0, sizeof(*out));
	/* sig NULL: refused or no signer (logged where it was seen) */
	if (sig == NULL || !rsign_len_ok("ocsp", sig_len, p->s->sig_max)) {
		answer_error(out, OCSPRES_INTERNAL);
	} else if (!wrap_response(c, p->s, p->tbs, p->tbs_len, sig, sig_len,
	    &der, &der_len) || (b = make_blob(r, p->s, der, der_len, p->res,
	    p->now)) == NULL) {
		log_warnx("ocsp: build response: out of memory");
		answer_error(out, OCSPRES_INTERNAL);
	} else
		respond_tail(r, b, p->nonce, p->saw_unissued,
		    (const uint8_t (*)[OCSP_SERIAL_LEN])p->serials, p->num,
		    p->h, p->req, p->req_len, p->gen0, out);
	count(r, out->result, &p->t0);
	return 1;
}

void
ocsp_pending_free(struct ocsp_pending *p)
{
	if (p == NULL)
		return;
	signer_unref(p->s);
	free(p->serials);
	free(p->req);
	free(p->tbs);
	free(p);
}

void
ocsp_answer_cleanup(struct ocsp_answer *a)
{
	ocsp_blob_unref(a->ref);
	memset(a, 0, sizeof(*a));
}

void
ocsp_invalidate(struct ocsp_responder *r, const uint8_t serial[16])
{
	size_t n;

	atomic_fetch_add(&r->gen, 1);
	n = ocsp_cache_invalidate(r->cache, serial);
	log_debug("ocsp: invalidated %zu cached responses", n);
}

void
ocsp_invalidate_all(struct ocsp_responder *r)
{
	atomic_fetch_add(&r->gen, 1);
	ocsp_cache_invalidate(r->cache, NULL);
}

uint64_t
ocsp_generation(struct ocsp_responder *r)
{
	return atomic_load(&r->gen);
}

const struct rsign *
ocsp_responder_rsign(struct ocsp_responder *r)
{
	return r->opts.rsign;
}

struct ocsp_cache *
ocsp_responder_cache(struct ocsp_responder *r)
{
	return r->cache;
}

uint64_t
ocsp_stat_result(struct ocsp_responder *r, enum ocsp_result res)
{
	if ((unsigned)res >= OCSPRES_COUNT)
		return 0;
	return atomic_load_explicit(&r->results[res], memory_order_relaxed);
}

uint64_t
ocsp_stat_cache_hits(struct ocsp_responder *r)
{
	return atomic_load_explicit(&r->hits, memory_order_relaxed);
}

uint64_t
ocsp_stat_cache_misses(struct ocsp_responder *r)
{
	return atomic_load_explicit(&r->misses, memory_order_relaxed);
}

static void
put_line(struct wb *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
put_line(struct wb *b, const char *fmt, ...)
{
	char line[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n > 0 && (size_t)n < sizeof(line))
		wb_put(b, line, (size_t)n);
}

void
ocsp_metrics_append(struct ocsp_responder *r, struct wb *b)
{
	uint64_t cum = 0;
	int i;

	put_line(b, "# HELP mica_ocsp_requests_total OCSP requests by "
	    "result (first CertID's status for successful answers; this run: "
	    "resets at restart).\n");
	put_line(b, "# TYPE mica_ocsp_requests_total counter\n");
	for (i = 0; i < OCSPRES_COUNT; i++)
		put_line(b, "mica_ocsp_requests_total{result=\"%s\"} %" PRIu64
		    "\n", result_names[i], ocsp_stat_result(r, i));
	put_line(b, "# HELP mica_ocsp_cache_hits_total OCSP answers served "
	    "from the response cache (this run: resets at restart).\n");
	put_line(b, "# TYPE mica_ocsp_cache_hits_total counter\n");
	put_line(b, "mica_ocsp_cache_hits_total %" PRIu64 "\n",
	    ocsp_stat_cache_hits(r));
	put_line(b, "# HELP mica_ocsp_cache_misses_total OCSP requests not "
	    "found in the response cache (this run: resets at restart).\n");
	put_line(b, "# TYPE mica_ocsp_cache_misses_total counter\n");
	put_line(b, "mica_ocsp_cache_misses_total %" PRIu64 "\n",
	    ocsp_stat_cache_misses(r));
	put_line(b, "# HELP mica_ocsp_cache_entries Cached OCSP responses.\n");
	put_line(b, "# TYPE mica_ocsp_cache_entries gauge\n");
	put_line(b, "mica_ocsp_cache_entries %zu\n",
	    ocsp_cache_count(r->cache));
	put_line(b, "# HELP mica_ocsp_cache_bytes Bytes charged to the OCSP "
	    "response cache.\n");
	put_line(b, "# TYPE mica_ocsp_cache_bytes gauge\n");
	put_line(b, "mica_ocsp_cache_bytes %zu\n", ocsp_cache_bytes(r->cache));
	put_line(b, "# HELP mica_ocsp_request_duration_seconds Time to answer "
	    "an OCSP request (excluding HTTP; this run: resets at "
	    "restart).\n");
	put_line(b, "# TYPE mica_ocsp_request_duration_seconds histogram\n");
	for (i = 0; i <= NLAT; i++) {
		cum += atomic_load_explicit(&r->lat[i], memory_order_relaxed);
		put_line(b, "mica_ocsp_request_duration_seconds_bucket"
		    "{le=\"%s\"} %" PRIu64 "\n",
		    i < NLAT ? lat_bounds_txt[i] : "+Inf", cum);
	}
	put_line(b, "mica_ocsp_request_duration_seconds_sum %.6f\n",
	    (double)atomic_load_explicit(&r->lat_sum_us,
	    memory_order_relaxed) / 1e6);
	put_line(b, "mica_ocsp_request_duration_seconds_count %" PRIu64 "\n",
	    cum);
}
