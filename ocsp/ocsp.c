/*
 * ocsp.c - OCSP request checking, status lookup, response signing
 * (RFC 6960, RFC 5019, RFC 8954 / RFC 9654 nonces).
 *
 * ocsp_respond takes the exact request bytes: a cache hit never decodes
 * them.  On a miss the request is decoded with d2i_OCSP_REQUEST and
 * checked rule by rule; statuses come from one store read transaction;
 * the response is signed by the delegated signer with ResponderID byKey.
 */
#include <inttypes.h>
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
#include "store/store.h"
#include "ocsp/ocsp_int.h"

#define NONCE_MIN	1	/* RFC 9654 section 2.1 */
#define NONCE_MAX	128
#define SHA1_LEN	20
#define SHA256_LEN	32
#define NLAT		9
#define ETAG_HASH_LEN	16

/* Upper bounds of the latency buckets, microseconds. */
static const uint64_t lat_bounds_us[NLAT] = {
	50, 100, 250, 500, 1000, 2500, 5000, 10000, 50000
};
static const char *lat_bounds_txt[NLAT] = {
	"5e-05", "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005",
	"0.01", "0.05"
};
static const char *result_names[OCSPRES_COUNT] = {
	"good", "revoked", "unknown", "malformed", "unauthorized", "internal"
};

/* OCSPResponse ::= SEQUENCE { responseStatus ENUMERATED } (no bytes). */
static const uint8_t der_malformed[] = { 0x30, 0x03, 0x0a, 0x01, 0x01 };
static const uint8_t der_internal[] = { 0x30, 0x03, 0x0a, 0x01, 0x02 };
static const uint8_t der_unauthorized[] = { 0x30, 0x03, 0x0a, 0x01, 0x06 };

struct ocsp_responder {
	struct ocsp_opts	 opts;
	X509			*ca;
	X509			*signer;
	EVP_PKEY		*key;
	const char		*mdname;	/* NULL for EdDSA */
	int			 signer_is_ca;
	struct store		*store;
	uint8_t			 name_sha1[SHA1_LEN], key_sha1[SHA1_LEN];
	uint8_t			 name_sha256[SHA256_LEN];
	uint8_t			 key_sha256[SHA256_LEN];
	X509_EXTENSION		*ext_revoke;	/* RFC 6960 section 2.2 */
	struct ocsp_cache	*cache;
	atomic_uint_fast64_t	 gen;
	atomic_uint_fast64_t	 results[OCSPRES_COUNT];
	atomic_uint_fast64_t	 hits, misses;
	atomic_uint_fast64_t	 lat[NLAT + 1];
	atomic_uint_fast64_t	 lat_sum_us;
};

struct ocsp_ctx {
	struct ocsp_responder	*r;
	struct store_reader	*reader;
	EVP_MD_CTX		*tmpl;		/* DigestSign initialised */
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

/* id-pkix-ocsp-extended-revoke, extnValue NULL (RFC 6960 section 2.2). */
static X509_EXTENSION *
make_ext_revoke(void)
{
	static const uint8_t null_der[] = { 0x05, 0x00 };
	ASN1_OBJECT *obj = NULL;
	ASN1_OCTET_STRING *os = NULL;
	X509_EXTENSION *ext = NULL;

	if ((obj = OBJ_txt2obj("1.3.6.1.5.5.7.48.1.9", 1)) == NULL ||
	    (os = ASN1_OCTET_STRING_new()) == NULL ||
	    !ASN1_OCTET_STRING_set(os, null_der, sizeof(null_der)) ||
	    (ext = X509_EXTENSION_create_by_OBJ(NULL, obj, 0, os)) == NULL)
		log_ssl("ocsp: extended revoke extension");
	ASN1_OBJECT_free(obj);
	ASN1_OCTET_STRING_free(os);
	return ext;
}

static int
check_signer(struct ocsp_responder *r)
{
	if (X509_check_private_key(r->signer, r->key) != 1) {
		log_ssl("ocsp: signer key does not match signer certificate");
		return 0;
	}
	r->signer_is_ca = X509_cmp(r->signer, r->ca) == 0;
	if (!r->signer_is_ca) {
		if (X509_check_issued(r->ca, r->signer) != X509_V_OK) {
			log_warnx("ocsp: RFC 6960 4.2.2.2: signer is not "
			    "issued by the CA");
			return 0;
		}
		if ((X509_get_extended_key_usage(r->signer) &
		    XKU_OCSP_SIGN) == 0)
			log_warnx("ocsp: RFC 6960 4.2.2.2: signer lacks "
			    "id-kp-OCSPSigning; clients will reject answers");
	}
	if (EVP_PKEY_is_a(r->key, "ED25519") || EVP_PKEY_is_a(r->key, "ED448"))
		r->mdname = NULL;
	else
		r->mdname = "SHA256";
	ERR_clear_error();
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
	if (!X509_up_ref(ca_cert))
		goto fail;
	r->ca = ca_cert;
	if (!X509_up_ref(signer_cert))
		goto fail;
	r->signer = signer_cert;
	if (!EVP_PKEY_up_ref(signer_key))
		goto fail;
	r->key = signer_key;
	if (!check_signer(r) || !issuer_hashes(r) ||
	    (r->ext_revoke = make_ext_revoke()) == NULL)
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
	X509_EXTENSION_free(r->ext_revoke);
	X509_free(r->ca);
	X509_free(r->signer);
	EVP_PKEY_free(r->key);
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
	/* A template copied per response saves the provider fetch. */
	if ((c->tmpl = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestSignInit_ex(c->tmpl, NULL, r->mdname, NULL, NULL,
	    r->key, NULL) != 1) {
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
	EVP_MD_CTX_free(c->tmpl);
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

static int
add_invalidity(OCSP_SINGLERESP *single, int64_t when)
{
	ASN1_GENERALIZEDTIME *t;
	int ok;

	if ((t = ASN1_GENERALIZEDTIME_set(NULL, (time_t)when)) == NULL)
		return 0;
	ok = OCSP_SINGLERESP_add1_ext_i2d(single, NID_invalidity_date, t, 0,
	    0) == 1;
	ASN1_GENERALIZEDTIME_free(t);
	return ok;
}

/*
 * Adds the SingleResponse for CertID i (echoed as sent).  *out_status
 * gets the OCSP cert status; *io_ext_revoke is set when the extended
 * revoke extension is needed.
 */
static int
add_single(struct ocsp_ctx *c, OCSP_BASICRESP *bs, OCSP_CERTID *cid,
    int i, ASN1_TIME *thisupd, ASN1_TIME *nextupd, int *out_status,
    int *io_ext_revoke)
{
	const struct cert_state *st = &c->states[i];
	OCSP_SINGLERESP *single;
	ASN1_TIME *rt = NULL;
	int status, reason = OCSP_REVOKED_STATUS_NOSTATUS, ok = 0;
	int64_t when = 0;

	if (c->kind[i] == CID_FOREIGN)
		status = V_OCSP_CERTSTATUS_UNKNOWN;
	else if (c->kind[i] == CID_NEVER) {
		if (c->r->opts.unknown_revoked) {
			status = V_OCSP_CERTSTATUS_REVOKED;
			reason = OCSP_REVOKED_STATUS_CERTIFICATEHOLD;
			*io_ext_revoke = 1;
		} else
			status = V_OCSP_CERTSTATUS_UNKNOWN;
	} else if (st->status == CERT_GOOD)
		status = V_OCSP_CERTSTATUS_GOOD;
	else {
		status = V_OCSP_CERTSTATUS_REVOKED;
		when = st->revoked_at;
		if (st->status == CERT_HOLD)
			reason = OCSP_REVOKED_STATUS_CERTIFICATEHOLD;
		else if (st->reason != REASON_UNSPECIFIED &&
		    st->reason <= REASON_AA_COMPROMISE && st->reason != 7)
			reason = st->reason;	/* RFC 5280 5.3.1: omit 0 */
	}
	if (status == V_OCSP_CERTSTATUS_REVOKED &&
	    (rt = ASN1_TIME_set(NULL, (time_t)when)) == NULL)
		goto out;
	if ((single = OCSP_basic_add1_status(bs, cid, status, reason, rt,
	    thisupd, nextupd)) == NULL)
		goto out;
	if (c->kind[i] == CID_LOOKUP && st->status == CERT_REVOKED &&
	    st->invalidity != 0 && !add_invalidity(single, st->invalidity))
		goto out;
	*out_status = status;
	ok = 1;
 out:
	ASN1_TIME_free(rt);
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

/* Signs bs with the delegated signer, ResponderID byKey. */
static int
sign_basic(struct ocsp_ctx *c, OCSP_BASICRESP *bs)
{
	struct ocsp_responder *r = c->r;
	EVP_MD_CTX *mctx;
	unsigned long flags = OCSP_RESPID_KEY;
	int ok = 0;

	if (r->signer_is_ca)
		flags |= OCSP_NOCERTS;
	if ((mctx = EVP_MD_CTX_new()) == NULL)
		goto out;
	if (EVP_MD_CTX_copy_ex(mctx, c->tmpl) != 1) {
		ERR_clear_error();
		if (EVP_DigestSignInit_ex(mctx, NULL, r->mdname, NULL, NULL,
		    r->key, NULL) != 1)
			goto out;
	}
	if (OCSP_basic_sign_ctx(bs, r->signer, mctx, NULL, flags) != 1)
		goto out;
	ok = 1;
 out:
	if (!ok)
		log_ssl("ocsp: sign response");
	EVP_MD_CTX_free(mctx);
	return ok;
}

/*
 * Builds and signs the response for a decoded request whose CertIDs are
 * classified in c.  Returns the response DER in *out (OPENSSL_free).
 */
static int
build_response(struct ocsp_ctx *c, OCSP_REQUEST *req, int n, int nonce,
    int64_t now, enum ocsp_result *out_res, unsigned char **out,
    int *out_len)
{
	struct ocsp_responder *r = c->r;
	OCSP_BASICRESP *bs = NULL;
	OCSP_RESPONSE *resp = NULL;
	ASN1_TIME *thisupd = NULL, *nextupd = NULL;
	int i, status, first = V_OCSP_CERTSTATUS_UNKNOWN, ext_revoke = 0;
	int ok = 0;

	if ((bs = OCSP_BASICRESP_new()) == NULL ||
	    (thisupd = ASN1_TIME_set(NULL, (time_t)now)) == NULL ||
	    (nextupd = ASN1_TIME_set(NULL,
	    (time_t)(now + r->opts.next_update))) == NULL)
		goto out;
	for (i = 0; i < n; i++) {
		if (!add_single(c, bs,
		    OCSP_onereq_get0_id(OCSP_request_onereq_get0(req, i)), i,
		    thisupd, nextupd, &status, &ext_revoke))
			goto out;
		if (i == 0)
			first = status;
	}
	if (nonce && OCSP_copy_nonce(bs, req) != 1)
		goto out;
	if (ext_revoke && OCSP_BASICRESP_add_ext(bs, r->ext_revoke, -1) != 1)
		goto out;
	if (!sign_basic(c, bs))
		goto out;
	if ((resp = OCSP_response_create(OCSP_RESPONSE_STATUS_SUCCESSFUL,
	    bs)) == NULL || (*out_len = i2d_OCSP_RESPONSE(resp, out)) <= 0)
		goto out;
	*out_res = status_result(first);
	ok = 1;
 out:
	if (!ok)
		log_ssl("ocsp: build response");
	OCSP_RESPONSE_free(resp);
	OCSP_BASICRESP_free(bs);
	ASN1_TIME_free(thisupd);
	ASN1_TIME_free(nextupd);
	return ok;
}

/*
 * Decodes and answers a request not found in the cache.  On success
 * *out_blob holds the signed response and *out_nonce says whether it
 * echoes a nonce (then it must not be cached); c->serials[0..*out_num)
 * are the serials it covers.
 */
static enum ocsp_result
respond_miss(struct ocsp_ctx *c, const uint8_t *in, size_t len, int64_t now,
    struct ocsp_blob **out_blob, int *out_nonce, size_t *out_num)
{
	struct ocsp_responder *r = c->r;
	OCSP_REQUEST *req = NULL;
	const unsigned char *p = in;
	unsigned char *der = NULL;
	enum ocsp_result res = OCSPRES_MALFORMED;
	int i, n, ours = 0, der_len = 0;
	size_t num = 0;

	*out_blob = NULL;
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
	if (ours == 0) {
		res = OCSPRES_UNAUTHORIZED;	/* RFC 5019 2.2.3 */
		goto out;
	}
	res = OCSPRES_INTERNAL;
	if (!lookup_states(c, n))
		goto out;
	if (!build_response(c, req, n, *out_nonce, now, &res, &der, &der_len))
	{
		res = OCSPRES_INTERNAL;
		goto out;
	}
	if ((*out_blob = ocsp_blob_new(der, (size_t)der_len)) == NULL) {
		res = OCSPRES_INTERNAL;
		goto out;
	}
	(*out_blob)->result = (uint8_t)res;
	(*out_blob)->this_update = now;
	(*out_blob)->next_update = now + r->opts.next_update;
	*out_num = num;
 out:
	ERR_clear_error();
	OPENSSL_free(der);
	OCSP_REQUEST_free(req);
	return res;
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
	if (cacheable)
		memcpy(a->etag, b->etag, sizeof(a->etag));
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
ocsp_respond(struct ocsp_ctx *c, struct ocsp_answer *out, const uint8_t *req,
    size_t req_len)
{
	struct ocsp_responder *r = c->r;
	struct ocsp_blob *b = NULL;
	struct timespec t0;
	enum ocsp_result res;
	uint64_t h, gen0;
	int64_t now;
	size_t num = 0;
	int nonce = 0;

	memset(out, 0, sizeof(*out));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	now = (int64_t)time(NULL);
	if (req_len == 0 || req_len > r->opts.max_request) {
		answer_error(out, OCSPRES_MALFORMED);
		goto done;
	}
	h = ocsp_cache_hash(r->cache, req, req_len);
	if ((b = ocsp_cache_get(r->cache, h, req, req_len, now)) != NULL) {
		atomic_fetch_add_explicit(&r->hits, 1, memory_order_relaxed);
		answer_blob(out, b, 1);
		goto done;
	}
	atomic_fetch_add_explicit(&r->misses, 1, memory_order_relaxed);
	/* Taken before the read: an invalidation after it voids our put. */
	gen0 = atomic_load(&r->gen);
	c->saw_unissued = 0;
	res = respond_miss(c, req, req_len, now, &b, &nonce, &num);
	if (b == NULL) {
		answer_error(out, res);
		goto done;
	}
	/* An "unknown" for a serial that is not in the store yet is not
	 * kept: the serial may be issued a moment later. */
	if (!nonce)
		set_etag(b);
	if (!nonce && !c->saw_unissued) {
		ocsp_cache_put(r->cache, h, req, req_len, b,
		    (const uint8_t (*)[OCSP_SERIAL_LEN])c->serials, num,
		    &r->gen, gen0);
	}
	answer_blob(out, b, !nonce);
 done:
	count(r, out->result, &t0);
	return 1;
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
	    "result (first CertID's status for successful answers).\n");
	put_line(b, "# TYPE mica_ocsp_requests_total counter\n");
	for (i = 0; i < OCSPRES_COUNT; i++)
		put_line(b, "mica_ocsp_requests_total{result=\"%s\"} %" PRIu64
		    "\n", result_names[i], ocsp_stat_result(r, i));
	put_line(b, "# HELP mica_ocsp_cache_hits_total OCSP answers served "
	    "from the response cache.\n");
	put_line(b, "# TYPE mica_ocsp_cache_hits_total counter\n");
	put_line(b, "mica_ocsp_cache_hits_total %" PRIu64 "\n",
	    ocsp_stat_cache_hits(r));
	put_line(b, "# HELP mica_ocsp_cache_misses_total OCSP requests not "
	    "found in the response cache.\n");
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
	    "an OCSP request (excluding HTTP).\n");
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
