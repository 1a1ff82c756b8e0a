/*
 * adm_check.c - `mica-admin check`: proves the CA is consistent.
 *
 * One read transaction copies the fixed part of every certificate record
 * (and checks its DER: parses, serial and validity match the record, the
 * CA's signature verifies), verifies the audit hash chain and reads the
 * meta "crl_number".  Then every serial is asked of the real OCSP
 * responder (ocsp_respond, the code path and cache HTTP clients get) and
 * looked up in the served full and delta CRLs, combined as RFC 5280
 * section 5.2.4 says: a delta whose BaseCRLNumber <= the full CRL's
 * number < its own number overrides the full CRL for the serials it
 * lists, and its removeFromCRL entries take a serial off.
 *
 * The walk runs on a worker thread.  OCSP and the CRLs are updated just
 * after a commit and a full CRL rebuild takes its number before it is
 * served, so a disagreement seen while changes are in flight is retried
 * (CHK_ATTEMPTS times); only one that persists is reported.  Structural
 * problems of the store itself (audit chain, links, certificate DER) are
 * reported at once.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "admin/adm_local.h"
#include "ca/ca.h"
#include "ca/micad.h"
#include "common/bytes.h"
#include "common/log.h"
#include "common/workq.h"
#include "crl/crl.h"
#include "ocsp/ocsp.h"
#include "store/store.h"

#define CHK_ATTEMPTS	8	/* attempts in which the store stood still */
#define CHK_MAX_TRIES	64	/* attempts in all, under constant change */
#define CHK_RETRY_MS	250
#define CHK_BUSY_MS	50	/* after an attempt the store changed under */
#define CHK_WHY_MAX	1024
#define CRL_NUMBER_KEY	"crl_number"	/* crl/crl_service.c */

enum chk_rc {
	CHK_OK = 0,
	CHK_MISMATCH,	/* OCSP/CRL disagree with the store: retried */
	CHK_FAIL,	/* the store itself is wrong, or an error: final */
};

/*
 * Whose certificate a record is.  mica's own (recorded by init and by a
 * renewal with the account "(ca)", which no account name can be: see
 * valid_name in adm_cmd.c) are told apart by their extendedKeyUsage.  A
 * renewal links the new certificate to the old one, which stays good
 * until it expires; a subscriber reissue revokes the old one.
 */
enum role {
	ROLE_SUBSCRIBER = 0,
	ROLE_CA,		/* "(ca)", the CA certificate itself */
	ROLE_OCSP,		/* "(ca)", id-kp-OCSPSigning */
	ROLE_TLS,		/* "(ca)", id-kp-serverAuth, no OCSPSigning */
	ROLE_OWN_OTHER,		/* "(ca)", neither: an error */
};
#define OWN_ACCOUNT	"(ca)"	/* ca/renew.c, mica_admin_main.c init */

/* What the check needs of one certificate record. */
struct item {
	uint8_t			serial[STORE_SERIAL_LEN]; /* item_find's key */
	struct cert_state	st;
	uint8_t			replaces[STORE_SERIAL_LEN];
	uint8_t			replaced_by[STORE_SERIAL_LEN];
	uint8_t			role;		/* enum role */
};

/* One entry of a served CRL. */
struct crl_ent {
	uint8_t		serial[STORE_SERIAL_LEN];
	int64_t		when;
	int		reason;		/* 0 when the extension is absent */
	int64_t		invalidity;	/* 0 when absent */
};

struct crl_view {
	int		 present;
	uint64_t	 number;
	uint64_t	 base;		/* delta: BaseCRLNumber */
	struct crl_ent	*e;
	size_t		 num;
};

struct chk {
	struct adm_req	*r;
	struct micad	*d;
	X509		*ca;		/* borrowed from the signer */
	enum chk_rc	 rc;
	char		 why[CHK_WHY_MAX];
	int		 attempts;	/* in all */
	int		 disturbed;	/* attempts the store changed under */
	uint64_t	 rev_seq, rev_seq2;	/* store_rev_last at start, end */
	uint64_t	 meta_number2;		/* crl_number at the end */

	struct item	*items;
	size_t		 num_items, cap_items;
	uint64_t	 good, hold, revoked;
	uint64_t	 ocsp_checked, crl_checked, links, audit;
	uint64_t	 meta_number, crl_number;
	uint64_t	 full_number, delta_number;
	uint64_t	 bad_keys;	/* compromised-key index entries */
};

static void
chk_set(struct chk *c, enum chk_rc rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Records the first problem of this attempt. */
static void
chk_set(struct chk *c, enum chk_rc rc, const char *fmt, ...)
{
	va_list ap;

	if (c->rc != CHK_OK)
		return;
	c->rc = rc;
	va_start(ap, fmt);
	vsnprintf(c->why, sizeof(c->why), fmt, ap);
	va_end(ap);
}

static const char *
st_name(int st)
{
	switch (st) {
	case CERT_GOOD: return "good";
	case CERT_HOLD: return "on hold";
	case CERT_REVOKED: return "revoked";
	default: return "in an unknown state";
	}
}

static int
serial_cmp(const void *a, const void *b)
{
	return memcmp(a, b, STORE_SERIAL_LEN);
}

static int
asn1_time_unix(const ASN1_TIME *t, int64_t *out)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	if (t == NULL || !ASN1_TIME_to_tm(t, &tm))
		return 0;
	*out = (int64_t)timegm(&tm);
	return 1;
}

/* A non-negative INTEGER of at most 16 bytes -> big-endian serial. */
static int
asn1_serial(const ASN1_INTEGER *ai, uint8_t out[STORE_SERIAL_LEN])
{
	BIGNUM *bn;
	int ok = 0;

	if ((bn = ASN1_INTEGER_to_BN(ai, NULL)) == NULL)
		goto out;
	if (BN_is_negative(bn) || BN_num_bytes(bn) > STORE_SERIAL_LEN)
		goto out;
	ok = BN_bn2binpad(bn, out, STORE_SERIAL_LEN) == STORE_SERIAL_LEN;
 out:
	BN_free(bn);
	return ok;
}

static const struct item *
item_find(const struct chk *c, const uint8_t serial[STORE_SERIAL_LEN])
{
	if (c->num_items == 0)	/* bsearch must not see NULL, even for 0 */
		return NULL;
	return bsearch(serial, c->items, c->num_items, sizeof(struct item),
	    serial_cmp);
}

/* ---- the store: one read transaction ---- */

static enum role
cert_role(X509 *x, X509 *ca, const char *account)
{
	uint32_t xku;

	if (strcmp(account, OWN_ACCOUNT) != 0)
		return ROLE_SUBSCRIBER;
	if (X509_cmp(x, ca) == 0)
		return ROLE_CA;
	xku = X509_get_extended_key_usage(x);
	if (xku & XKU_OCSP_SIGN)
		return ROLE_OCSP;
	if (xku & XKU_SSL_SERVER)
		return ROLE_TLS;
	return ROLE_OWN_OTHER;
}

static const char *
role_name(uint8_t role)
{
	switch (role) {
	case ROLE_CA:
		return "the CA certificate";
	case ROLE_OCSP:
		return "mica's OCSP signer";
	case ROLE_TLS:
		return "mica's TLS certificate";
	case ROLE_OWN_OTHER:
		return "a certificate of account " OWN_ACCOUNT;
	default:
		return "a subscriber certificate";
	}
}

/*
 * The record's DER is this CA's certificate for this serial and dates;
 * *out_role says whose it is.
 */
static int
check_der(struct chk *c, const struct cert_rec *rec, const char *hex,
    uint8_t *out_role)
{
	const unsigned char *p = rec->der;
	X509 *x = NULL;
	uint8_t s[STORE_SERIAL_LEN];
	int64_t nb, na;
	int ok = 0;

	if ((x = d2i_X509(NULL, &p, (long)rec->der_len)) == NULL ||
	    p != rec->der + rec->der_len) {
		chk_set(c, CHK_FAIL, "serial %s: the stored certificate DER "
		    "does not parse", hex);
		goto out;
	}
	if (!asn1_serial(X509_get0_serialNumber(x), s) ||
	    memcmp(s, rec->serial, sizeof(s)) != 0) {
		chk_set(c, CHK_FAIL, "serial %s: the stored certificate "
		    "carries another serial number", hex);
		goto out;
	}
	if (!ca_cert_times(x, &nb, &na) || nb != rec->st.not_before ||
	    na != rec->st.not_after) {
		chk_set(c, CHK_FAIL, "serial %s: notBefore/notAfter of the "
		    "certificate differ from the record", hex);
		goto out;
	}
	if (X509_verify(x, X509_get0_pubkey(c->ca)) != 1) {
		chk_set(c, CHK_FAIL, "serial %s: the certificate's signature "
		    "does not verify with the CA key", hex);
		goto out;
	}
	if ((*out_role = cert_role(x, c->ca, rec->account)) == ROLE_OWN_OTHER) {
		chk_set(c, CHK_FAIL, "serial %s: account %s is mica's own, but "
		    "the certificate is neither the CA's, an OCSP signer nor a "
		    "TLS server certificate", hex, OWN_ACCOUNT);
		goto out;
	}
	ok = 1;
 out:
	ERR_clear_error();
	X509_free(x);
	return ok;
}

static int
cert_cb(const struct cert_rec *rec, void *arg)
{
	struct chk *c = arg;
	struct item *it, *n;
	char hex[SERIAL_HEX_LEN];
	uint8_t role = ROLE_SUBSCRIBER;

	serial_hex(hex, rec->serial);
	if (c->num_items > 0 && memcmp(c->items[c->num_items - 1].serial,
	    rec->serial, STORE_SERIAL_LEN) >= 0) {
		chk_set(c, CHK_FAIL, "serial %s: certificates are not in "
		    "strict serial order (a serial appears twice?)", hex);
		return 0;
	}
	if (rec->st.status > CERT_REVOKED) {
		chk_set(c, CHK_FAIL, "serial %s: unknown status %u", hex,
		    rec->st.status);
		return 0;
	}
	if (!check_der(c, rec, hex, &role))
		return 0;
	if (c->num_items == c->cap_items) {
		size_t cap = c->cap_items ? 2 * c->cap_items : 1024;

		if ((n = reallocarray(c->items, cap, sizeof(*n))) == NULL)
			fatalx("out of memory");
		c->items = n;
		c->cap_items = cap;
	}
	it = &c->items[c->num_items++];
	it->role = role;
	memcpy(it->serial, rec->serial, STORE_SERIAL_LEN);
	it->st = rec->st;
	memcpy(it->replaces, rec->replaces, STORE_SERIAL_LEN);
	memcpy(it->replaced_by, rec->replaced_by, STORE_SERIAL_LEN);
	if (rec->st.status == CERT_GOOD)
		c->good++;
	else if (rec->st.status == CERT_HOLD)
		c->hold++;
	else
		c->revoked++;
	return 1;
}

static enum store_rc
read_txn(struct store_txn *txn, void *arg)
{
	struct chk *c = arg;
	char why[256] = "";
	uint64_t bad = 0, nopen = 0;
	enum store_rc rc;

	c->num_items = c->good = c->hold = c->revoked = 0;
	if ((rc = store_cert_iter(txn, cert_cb, c)) != STORE_OK ||
	    c->rc != CHK_OK)
		return rc;
	rc = store_audit_verify(txn, &c->audit, &bad, why, sizeof(why));
	if (rc == STORE_CORRUPT) {
		chk_set(c, CHK_FAIL, "audit chain broken at record %" PRIu64
		    ": %s", bad, why);
		return STORE_OK;
	}
	if (rc != STORE_OK)
		return rc;
	/* the open-request index agrees with the requests (NOTFOUND: an
	 * old store opened read-only, which has no index yet) */
	rc = store_request_index_check(txn, &nopen, why, sizeof(why));
	if (rc == STORE_CORRUPT) {
		chk_set(c, CHK_FAIL, "open request index: %s", why);
		return STORE_OK;
	}
	if (rc != STORE_OK && rc != STORE_NOTFOUND)
		return rc;
	/* every key revoked for keyCompromise or lost is in the
	 * compromised-key index, and every entry is one of them */
	rc = store_bad_key_check(txn, &c->bad_keys, why, sizeof(why));
	if (rc == STORE_CORRUPT) {
		chk_set(c, CHK_FAIL, "compromised-key index: %s", why);
		return STORE_OK;
	}
	if (rc != STORE_OK && rc != STORE_NOTFOUND)
		return rc;
	if ((rc = store_rev_last(txn, &c->rev_seq)) != STORE_OK)
		return rc;
	return store_meta_get_u64(txn, CRL_NUMBER_KEY, &c->meta_number);
}

/* After OCSP and the CRLs were read: did the store move meanwhile? */
static enum store_rc
end_txn(struct store_txn *txn, void *arg)
{
	struct chk *c = arg;
	enum store_rc rc;

	if ((rc = store_rev_last(txn, &c->rev_seq2)) != STORE_OK)
		return rc;
	return store_meta_get_u64(txn, CRL_NUMBER_KEY, &c->meta_number2);
}

/*
 * Every replacement names a predecessor of the same kind that names it
 * back: a subscriber's reissue revoked its predecessor; a renewal of
 * mica's own OCSP signer or TLS certificate leaves the old one good
 * until it expires (it may have been revoked since, too).
 */
static void
check_links(struct chk *c)
{
	const struct item *it, *o;
	char h1[SERIAL_HEX_LEN], h2[SERIAL_HEX_LEN];
	size_t i;

	c->links = 0;
	for (i = 0; i < c->num_items && c->rc == CHK_OK; i++) {
		it = &c->items[i];
		serial_hex(h1, it->serial);
		if (!serial_is_zero(it->replaces)) {
			serial_hex(h2, it->replaces);
			c->links++;
			if ((o = item_find(c, it->replaces)) == NULL)
				chk_set(c, CHK_FAIL, "serial %s replaces %s, "
				    "which is not in the store", h1, h2);
			else if (o->role != it->role)
				chk_set(c, CHK_FAIL, "serial %s (%s) replaces "
				    "%s (%s): a replacement is of the same kind",
				    h1, role_name(it->role), h2,
				    role_name(o->role));
			else if (it->role == ROLE_SUBSCRIBER &&
			    o->st.status != CERT_REVOKED)
				chk_set(c, CHK_FAIL, "serial %s replaces %s, "
				    "which is %s, not revoked", h1, h2,
				    st_name(o->st.status));
			else if (memcmp(o->replaced_by, it->serial,
			    STORE_SERIAL_LEN) != 0)
				chk_set(c, CHK_FAIL, "serial %s replaces %s, "
				    "whose replaced_by does not point back",
				    h1, h2);
		}
		if (!serial_is_zero(it->replaced_by)) {
			serial_hex(h2, it->replaced_by);
			if ((o = item_find(c, it->replaced_by)) == NULL)
				chk_set(c, CHK_FAIL, "serial %s is replaced "
				    "by %s, which is not in the store", h1, h2);
			else if (memcmp(o->replaces, it->serial,
			    STORE_SERIAL_LEN) != 0)
				chk_set(c, CHK_FAIL, "serial %s is replaced "
				    "by %s, which does not name it in "
				    "replaces", h1, h2);
			else if (it->role == ROLE_SUBSCRIBER &&
			    it->st.status != CERT_REVOKED)
				chk_set(c, CHK_FAIL, "serial %s is replaced "
				    "by %s but is %s, not revoked", h1, h2,
				    st_name(it->st.status));
		}
	}
}

/* ---- the served CRLs ---- */

static int
ent_cmp(const void *a, const void *b)
{
	const struct crl_ent *x = a, *y = b;

	return memcmp(x->serial, y->serial, STORE_SERIAL_LEN);
}

static const struct crl_ent *
ent_find(const struct crl_view *v, const uint8_t serial[STORE_SERIAL_LEN])
{
	if (!v->present || v->num == 0)
		return NULL;
	return bsearch(serial, v->e, v->num, sizeof(struct crl_ent),
	    serial_cmp);
}

/* One X509_REVOKED -> entry; 0 when it is malformed. */
static int
ent_parse(struct crl_ent *e, const X509_REVOKED *rv)
{
	ASN1_ENUMERATED *reason = NULL;
	ASN1_GENERALIZEDTIME *inv = NULL;
	long v;
	int crit = 0, ok = 0;

	memset(e, 0, sizeof(*e));
	if (!asn1_serial(X509_REVOKED_get0_serialNumber(rv), e->serial) ||
	    !asn1_time_unix(X509_REVOKED_get0_revocationDate(rv), &e->when))
		goto out;
	reason = X509_REVOKED_get_ext_d2i(rv, NID_crl_reason, &crit, NULL);
	if (reason == NULL && crit != -1)
		goto out;	/* present but undecodable, or twice */
	if (reason != NULL) {
		if ((v = ASN1_ENUMERATED_get(reason)) < 0 || v > 10)
			goto out;
		e->reason = (int)v;
	}
	crit = 0;
	inv = X509_REVOKED_get_ext_d2i(rv, NID_invalidity_date, &crit, NULL);
	if (inv == NULL && crit != -1)
		goto out;
	if (inv != NULL && !asn1_time_unix(inv, &e->invalidity))
		goto out;
	ok = 1;
 out:
	ASN1_ENUMERATED_free(reason);
	ASN1_GENERALIZEDTIME_free(inv);
	return ok;
}

static int
crl_ext_u64(X509_CRL *crl, int nid, uint64_t *out)
{
	ASN1_INTEGER *ai;
	int crit = 0, ok;

	if ((ai = X509_CRL_get_ext_d2i(crl, nid, &crit, NULL)) == NULL)
		return crit == -1 ? -1 : 0;
	ok = ASN1_INTEGER_get_uint64(out, ai);
	ASN1_INTEGER_free(ai);
	return ok;
}

/*
 * Parses and verifies a served CRL into v: signed by the CA, issued by
 * it, cRLNumber (and for a delta deltaCRLIndicator) as the snapshot says,
 * entries sorted, no serial twice.
 */
static void
crl_load(struct chk *c, struct crl_view *v, enum crl_kind kind)
{
	const struct crl_snapshot *s;
	const char *name = kind == CRL_FULL ? "full" : "delta";
	const unsigned char *p;
	X509_CRL *crl = NULL;
	STACK_OF(X509_REVOKED) *revs;
	uint64_t n = 0;
	char hex[SERIAL_HEX_LEN];
	size_t i;
	int r;

	memset(v, 0, sizeof(*v));
	if ((s = crl_service_get(c->d->crl, kind)) == NULL) {
		if (kind == CRL_FULL)
			chk_set(c, CHK_MISMATCH, "no full CRL is served");
		return;
	}
	v->present = 1;
	v->number = s->number;
	v->base = s->base_number;
	p = s->der;
	if ((crl = d2i_X509_CRL(NULL, &p, (long)s->der_len)) == NULL ||
	    p != s->der + s->der_len) {
		chk_set(c, CHK_FAIL, "%s CRL %" PRIu64 ": does not parse",
		    name, s->number);
		goto out;
	}
	if (X509_CRL_verify(crl, X509_get0_pubkey(c->ca)) != 1 ||
	    X509_NAME_cmp(X509_CRL_get_issuer(crl),
	    X509_get_subject_name(c->ca)) != 0) {
		chk_set(c, CHK_FAIL, "%s CRL %" PRIu64 ": not issued and "
		    "signed by the CA", name, s->number);
		goto out;
	}
	if (crl_ext_u64(crl, NID_crl_number, &n) != 1 || n != s->number) {
		chk_set(c, CHK_FAIL, "%s CRL %" PRIu64 ": cRLNumber "
		    "extension missing or different (RFC 5280 5.2.3)", name,
		    s->number);
		goto out;
	}
	r = crl_ext_u64(crl, NID_delta_crl, &n);
	if ((kind == CRL_FULL && r != -1) || (kind == CRL_DELTA &&
	    (r != 1 || n != s->base_number))) {
		chk_set(c, CHK_FAIL, "%s CRL %" PRIu64 ": deltaCRLIndicator "
		    "wrong (RFC 5280 5.2.4)", name, s->number);
		goto out;
	}
	revs = X509_CRL_get_REVOKED(crl);
	v->num = revs != NULL ? (size_t)sk_X509_REVOKED_num(revs) : 0;
	if (v->num > 0 &&
	    (v->e = reallocarray(NULL, v->num, sizeof(*v->e))) == NULL)
		fatalx("out of memory");
	for (i = 0; i < v->num; i++)
		if (!ent_parse(&v->e[i],
		    sk_X509_REVOKED_value(revs, (int)i))) {
			chk_set(c, CHK_FAIL, "%s CRL %" PRIu64 ": entry %zu "
			    "is malformed", name, s->number, i);
			goto out;
		}
	if (v->num > 1)
		qsort(v->e, v->num, sizeof(*v->e), ent_cmp);
	for (i = 1; i < v->num; i++)
		if (memcmp(v->e[i - 1].serial, v->e[i].serial,
		    STORE_SERIAL_LEN) == 0) {
			serial_hex(hex, v->e[i].serial);
			chk_set(c, CHK_FAIL, "%s CRL %" PRIu64 ": serial %s "
			    "listed twice", name, s->number, hex);
			goto out;
		}
 out:
	ERR_clear_error();
	X509_CRL_free(crl);
	crl_snapshot_release(s);
}

/* Compares one item's store status with full+delta (RFC 5280 5.2.4). */
static void
check_crl_item(struct chk *c, const struct item *it, const struct crl_view *f,
    const struct crl_view *dl, int use_delta)
{
	const struct crl_ent *e = NULL, *de = NULL;
	const char *src = "full";
	uint64_t num = f->number;
	char hex[SERIAL_HEX_LEN];
	int want_reason;

	serial_hex(hex, it->serial);
	if (use_delta && (de = ent_find(dl, it->serial)) != NULL) {
		src = "delta";
		num = dl->number;
		e = de->reason == REASON_REMOVE_FROM_CRL ? NULL : de;
	} else
		e = ent_find(f, it->serial);
	if (it->st.status == CERT_GOOD) {
		if (e != NULL)
			chk_set(c, CHK_MISMATCH, "serial %s: good in the "
			    "store but listed in the %s CRL %" PRIu64
			    " (reason %s)", hex, src, num,
			    adm_reason_name(e->reason));
		return;
	}
	if (e == NULL) {
		chk_set(c, CHK_MISMATCH, "serial %s: %s in the store but "
		    "not listed by the CRLs (full %" PRIu64 ", delta %"
		    PRIu64 "%s)", hex, st_name(it->st.status), f->number,
		    dl->number, de != NULL ? ", removeFromCRL in the delta" :
		    "");
		return;
	}
	want_reason = it->st.status == CERT_HOLD ? REASON_CERTIFICATE_HOLD :
	    it->st.reason;
	if (e->reason != want_reason)
		chk_set(c, CHK_MISMATCH, "serial %s: the %s CRL %" PRIu64
		    " says reason %s, the store %s", hex, src, num,
		    adm_reason_name(e->reason), adm_reason_name(want_reason));
	else if (e->when != it->st.revoked_at)
		chk_set(c, CHK_MISMATCH, "serial %s: the %s CRL %" PRIu64
		    " says revocation time %" PRId64 ", the store %" PRId64,
		    hex, src, num, e->when, it->st.revoked_at);
	else if (it->st.status == CERT_REVOKED &&
	    e->invalidity != it->st.invalidity)
		chk_set(c, CHK_MISMATCH, "serial %s: the %s CRL %" PRIu64
		    " says invalidity date %" PRId64 ", the store %" PRId64,
		    hex, src, num, e->invalidity, it->st.invalidity);
}

/* Every CRL entry names a certificate of the store. */
static void
check_crl_orphans(struct chk *c, const struct crl_view *v, const char *name)
{
	char hex[SERIAL_HEX_LEN];
	size_t i;

	for (i = 0; i < v->num && c->rc == CHK_OK; i++)
		if (item_find(c, v->e[i].serial) == NULL) {
			serial_hex(hex, v->e[i].serial);
			chk_set(c, CHK_MISMATCH, "the %s CRL %" PRIu64
			    " lists serial %s, which is not in the store",
			    name, v->number, hex);
		}
}

static void
check_crls(struct chk *c)
{
	struct crl_view f, dl;
	uint64_t served;
	size_t i;
	int use_delta = 0;

	crl_load(c, &f, CRL_FULL);
	crl_load(c, &dl, CRL_DELTA);
	if (c->rc != CHK_OK)
		goto out;
	c->full_number = f.number;
	c->delta_number = dl.number;
	served = f.number > dl.number ? f.number : dl.number;
	c->crl_number = served;
	if (served != c->meta_number) {
		chk_set(c, CHK_MISMATCH, "the CRL number served (full %"
		    PRIu64 ", delta %" PRIu64 ") is not the store's "
		    "meta %s %" PRIu64, f.number, dl.number, CRL_NUMBER_KEY,
		    c->meta_number);
		goto out;
	}
	/* RFC 5280 5.2.4: base <= complete CRL number < delta number */
	if (dl.present) {
		if (dl.base > f.number) {
			chk_set(c, CHK_MISMATCH, "the delta CRL %" PRIu64
			    " has base %" PRIu64 ", newer than the full CRL %"
			    PRIu64, dl.number, dl.base, f.number);
			goto out;
		}
		use_delta = dl.number > f.number;
	}
	for (i = 0; i < c->num_items && c->rc == CHK_OK; i++)
		check_crl_item(c, &c->items[i], &f, &dl, use_delta);
	check_crl_orphans(c, &f, "full");
	if (use_delta)
		check_crl_orphans(c, &dl, "delta");
	c->crl_checked = f.num + (use_delta ? dl.num : 0);
 out:
	free(f.e);
	free(dl.e);
}

/* ---- OCSP through the real responder ---- */

struct ocsp_chk {
	struct ocsp_ctx		*ctx;
	X509_STORE		*trust;
	STACK_OF(X509)		*certs;
	ASN1_BIT_STRING		*key;	/* borrowed */
	X509_NAME		*name;	/* borrowed */
};

/* Asks the responder about one serial and compares with the store. */
static void
check_ocsp_item(struct chk *c, struct ocsp_chk *o, const struct item *it)
{
	struct ocsp_answer ans;
	OCSP_CERTID *cid = NULL, *cid2 = NULL;
	OCSP_REQUEST *req = NULL;
	OCSP_RESPONSE *resp = NULL;
	OCSP_BASICRESP *bs = NULL;
	ASN1_INTEGER *ai = NULL;
	ASN1_GENERALIZEDTIME *rev = NULL, *tu = NULL, *nu = NULL;
	BIGNUM *bn = NULL;
	unsigned char *der = NULL;
	const unsigned char *p;
	char hex[SERIAL_HEX_LEN];
	int len, status, reason, want;
	int64_t when = 0;

	memset(&ans, 0, sizeof(ans));
	serial_hex(hex, it->serial);
	if ((bn = BN_bin2bn(it->serial, STORE_SERIAL_LEN, NULL)) == NULL ||
	    (ai = BN_to_ASN1_INTEGER(bn, NULL)) == NULL ||
	    (cid = OCSP_cert_id_new(EVP_sha1(), o->name, o->key, ai)) ==
	    NULL || (cid2 = OCSP_CERTID_dup(cid)) == NULL ||
	    (req = OCSP_REQUEST_new()) == NULL ||
	    OCSP_request_add0_id(req, cid2) == NULL)
		fatalx("check: out of memory building an OCSP request");
	cid2 = NULL;
	if ((len = i2d_OCSP_REQUEST(req, &der)) <= 0)
		fatalx("check: cannot encode an OCSP request");
	if (!ocsp_respond(o->ctx, &ans, der, (size_t)len))
		fatalx("check: out of memory in the OCSP responder");
	c->ocsp_checked++;
	p = ans.der;
	if ((resp = d2i_OCSP_RESPONSE(NULL, &p, (long)ans.der_len)) == NULL ||
	    OCSP_response_status(resp) != OCSP_RESPONSE_STATUS_SUCCESSFUL ||
	    (bs = OCSP_response_get1_basic(resp)) == NULL) {
		chk_set(c, CHK_MISMATCH, "serial %s: the OCSP responder gave "
		    "no successful response (status %d)", hex,
		    resp != NULL ? OCSP_response_status(resp) : -1);
		goto out;
	}
	if (OCSP_basic_verify(bs, o->certs, o->trust, 0) <= 0) {
		chk_set(c, CHK_FAIL, "serial %s: the OCSP response's "
		    "signature does not verify against the CA", hex);
		goto out;
	}
	if (!OCSP_resp_find_status(bs, cid, &status, &reason, &rev, &tu,
	    &nu)) {
		chk_set(c, CHK_MISMATCH, "serial %s: the OCSP response does "
		    "not answer for this CertID", hex);
		goto out;
	}
	if (it->st.status == CERT_GOOD) {
		if (status != V_OCSP_CERTSTATUS_GOOD)
			chk_set(c, CHK_MISMATCH, "serial %s: good in the store "
			    "but OCSP says %s", hex,
			    OCSP_cert_status_str(status));
		goto out;
	}
	if (status != V_OCSP_CERTSTATUS_REVOKED) {
		chk_set(c, CHK_MISMATCH, "serial %s: %s in the store but OCSP "
		    "says %s", hex, st_name(it->st.status),
		    OCSP_cert_status_str(status));
		goto out;
	}
	want = it->st.status == CERT_HOLD ? REASON_CERTIFICATE_HOLD :
	    it->st.reason;
	if (reason == OCSP_REVOKED_STATUS_NOSTATUS)
		reason = REASON_UNSPECIFIED;	/* RFC 5280 5.3.1: omitted */
	if (reason != want)
		chk_set(c, CHK_MISMATCH, "serial %s: OCSP says reason %s, the "
		    "store %s", hex, adm_reason_name(reason),
		    adm_reason_name(want));
	else if (!asn1_time_unix(rev, &when) || when != it->st.revoked_at)
		chk_set(c, CHK_MISMATCH, "serial %s: OCSP says revocation "
		    "time %" PRId64 ", the store %" PRId64, hex, when,
		    it->st.revoked_at);
 out:
	ERR_clear_error();
	ocsp_answer_cleanup(&ans);
	OPENSSL_free(der);
	OCSP_BASICRESP_free(bs);
	OCSP_RESPONSE_free(resp);
	OCSP_REQUEST_free(req);
	OCSP_CERTID_free(cid);
	OCSP_CERTID_free(cid2);
	ASN1_INTEGER_free(ai);
	BN_free(bn);
}

static void
check_ocsp(struct chk *c)
{
	struct ocsp_chk o;
	size_t i;

	memset(&o, 0, sizeof(o));
	c->ocsp_checked = 0;
	if ((o.ctx = ocsp_ctx_new(c->d->ocsp)) == NULL) {
		chk_set(c, CHK_FAIL, "cannot make an OCSP context (see "
		    "micad's log)");
		goto out;
	}
	/* the CA is the anchor even when it is an issuing CA under an
	 * offline root (not self-signed): PARTIAL_CHAIN */
	if ((o.trust = X509_STORE_new()) == NULL ||
	    !X509_STORE_add_cert(o.trust, c->ca) ||
	    !X509_STORE_set_flags(o.trust, X509_V_FLAG_PARTIAL_CHAIN) ||
	    (o.certs = sk_X509_new_null()) == NULL ||
	    !X509_add_cert(o.certs, c->ca, X509_ADD_FLAG_UP_REF))
		fatalx("check: out of memory");
	o.key = X509_get0_pubkey_bitstr(c->ca);
	o.name = X509_get_subject_name(c->ca);
	for (i = 0; i < c->num_items && c->rc == CHK_OK; i++)
		check_ocsp_item(c, &o, &c->items[i]);
 out:
	sk_X509_pop_free(o.certs, X509_free);
	X509_STORE_free(o.trust);
	ocsp_ctx_free(o.ctx);
}

/* ---- the job ---- */

static void
check_once(struct chk *c)
{
	enum store_rc rc;

	c->rc = CHK_OK;
	c->why[0] = '\0';
	c->links = c->crl_checked = c->ocsp_checked = c->audit = 0;
	rc = store_read(c->d->store, read_txn, c);
	if (rc != STORE_OK) {
		chk_set(c, CHK_FAIL, "reading the store: %s",
		    store_strerror(rc));
		return;
	}
	if (c->rc != CHK_OK)
		return;
	check_links(c);
	if (c->rc != CHK_OK)
		return;
	check_crls(c);
	if (c->rc != CHK_OK)
		return;
	check_ocsp(c);
}

/*
 * A disagreement is retried: CHK_ATTEMPTS times when the store stood
 * still during the attempt (a change committed just before it may not
 * have reached OCSP/CRL yet, or a CRL build had taken its number), and
 * without counting when revocation events or CRL numbers moved during
 * it, up to CHK_MAX_TRIES attempts in all.
 */
static void
check_work(void *arg)
{
	struct chk *c = arg;
	struct timespec ts;
	int still = 0, busy;

	for (c->attempts = 1; ; c->attempts++) {
		check_once(c);
		if (c->rc != CHK_MISMATCH)
			break;
		busy = store_read(c->d->store, end_txn, c) != STORE_OK ||
		    c->rev_seq2 != c->rev_seq ||
		    c->meta_number2 != c->meta_number;
		if (busy)
			c->disturbed++;
		else
			still++;
		if (still == CHK_ATTEMPTS || c->attempts == CHK_MAX_TRIES)
			break;
		ts.tv_sec = 0;
		ts.tv_nsec = (busy ? CHK_BUSY_MS : CHK_RETRY_MS) * 1000000L;
		while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
			;
	}
}

static void
check_done(void *arg)
{
	struct chk *c = arg;
	struct adm_req *r = c->r;

	if (c->rc != CHK_OK) {
		log_warnx("check by %s: FAILED: %s", r->actor, c->why);
		if (c->rc == CHK_MISMATCH)
			adm_fail(r, "check: %s (still so after %d attempts; "
			    "the store changed during %d of them)", c->why,
			    c->attempts, c->disturbed);
		else
			adm_fail(r, "check: %s", c->why);
	} else {
		adm_out(r, "certificates: %zu (good %" PRIu64 ", hold %"
		    PRIu64 ", revoked %" PRIu64 "); ocsp answers checked: %"
		    PRIu64 "; crl entries checked: %" PRIu64 "; links "
		    "checked: %" PRIu64 "; audit records: %" PRIu64 "; crl "
		    "number: %" PRIu64 "\n", c->num_items, c->good, c->hold,
		    c->revoked, c->ocsp_checked, c->crl_checked, c->links,
		    c->audit, c->crl_number);
		adm_out(r, "compromised-key index: %" PRIu64 " keys, agrees "
		    "with the revocations and reissues\n", c->bad_keys);
		adm_out(r, "consistent: store, OCSP and CRLs (full %" PRIu64
		    ", delta %" PRIu64 ") agree\n", c->full_number,
		    c->delta_number);
		log_info("check by %s: OK certs=%zu attempts=%d", r->actor,
		    c->num_items, c->attempts);
	}
	free(c->items);
	free(c);
	adm_done(r);
}

/*
 * `check`: proves that OCSP and the served CRLs agree with the store for
 * every certificate, that replacement links are sound, the audit chain
 * verifies and the CRL number matches meta.  Replies from check_done.
 */
void
adm_cmd_check(struct adm_req *r)
{
	struct chk *c;

	if (r->in.argc != 1) {
		adm_usage(r, "usage: check");
		return;
	}
	if (r->d->signer == NULL || r->d->ocsp == NULL || r->d->crl == NULL) {
		adm_fail(r, "check: this micad runs without %s",
		    r->d->signer == NULL ? "a CA signer" :
		    r->d->ocsp == NULL ? "an OCSP responder" :
		    "a CRL service");
		return;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL)
		fatalx("out of memory");
	c->r = r;
	c->d = r->d;
	c->ca = ca_signer_get0_cert(r->d->signer);
	if (!workq_submit(r->d->workers, check_work, check_done, c)) {
		free(c);
		adm_fail(r, "check: micad is stopping");
		return;
	}
	r->async = 1;	/* check_done replies */
}
