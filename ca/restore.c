/*
 * restore.c - the start-time guard against restored older stores, the
 * re-application of what they lost from the last published CRLs, and the
 * copies of those CRLs kept next to the high-water mark (see restore.h).
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sodium.h>

#include "ca/restore.h"
#include "common/bytes.h"
#include "common/hwm.h"
#include "common/log.h"
#include "crl/crl.h"
#include "store/store.h"

#define CRL_FILE_MAX	(512L * 1024 * 1024)	/* larger is not ours */
#define LOG_SERIALS_MAX	1000			/* lost issuances logged */

static void
seterr(char *err, size_t err_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
seterr(char *err, size_t err_len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, err_len, fmt, ap);
	va_end(ap);
}

/* ---- the store's side ---- */

struct store_mark {
	uint64_t	store_id;
	uint64_t	crl_number;
	uint64_t	rev_seq;
};

static enum store_rc
mark_txn(struct store_txn *txn, void *arg)
{
	struct store_mark *m = arg;
	enum store_rc rc;

	if ((rc = store_meta_get_u64(txn, RESTORE_META_STORE_ID,
	    &m->store_id)) != STORE_OK ||
	    (rc = store_meta_get_u64(txn, "crl_number", &m->crl_number)) !=
	    STORE_OK)
		return rc;
	return store_rev_last(txn, &m->rev_seq);
}

static enum store_rc
set_id_txn(struct store_txn *txn, void *arg)
{
	return store_meta_set_u64(txn, RESTORE_META_STORE_ID,
	    *(uint64_t *)arg);
}

/* ---- reading the last published CRLs ---- */

/* One serial's last state according to the CRLs. */
struct crl_ent {
	uint8_t		serial[STORE_SERIAL_LEN];
	uint8_t		status;		/* CERT_REVOKED, CERT_HOLD, CERT_GOOD
					 * (removeFromCRL) */
	uint8_t		reason;
	int64_t		when, invalidity;
};

struct crl_set {
	struct crl_ent	*e;
	size_t		 n, cap;
	size_t		 sorted;	/* e[0..sorted) is in serial order */
	size_t		 skipped;	/* entries that are not ours */
	int		 complete;	/* a full CRL and a delta based on it:
					 * a serial not listed is not held */
};

static int64_t
asn1_time_unix(const ASN1_TIME *t)
{
	struct tm tm;

	if (t == NULL || !ASN1_TIME_to_tm(t, &tm))
		return 0;
	return (int64_t)timegm(&tm);
}

static X509_CRL *
read_crl(const char *dir, const char *name, X509 *ca, char *why,
    size_t why_len)
{
	char path[PATH_MAX];
	X509_CRL *crl = NULL;
	EVP_PKEY *pk;
	BIO *b = NULL;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >=
	    sizeof(path)) {
		seterr(why, why_len, "%s/%s: path too long", dir, name);
		return NULL;
	}
	if ((b = BIO_new_file(path, "rb")) == NULL) {
		seterr(why, why_len, "%s: %s", path, strerror(errno));
		ERR_clear_error();
		return NULL;
	}
	if ((crl = d2i_X509_CRL_bio(b, NULL)) == NULL) {
		seterr(why, why_len, "%s: not a DER CRL", path);
		ERR_clear_error();
		goto out;
	}
	/* RFC 5280 6.3.3 (f), (g): issued by our CA, signature verifies */
	pk = X509_get0_pubkey(ca);
	if (X509_NAME_cmp(X509_CRL_get_issuer(crl),
	    X509_get_subject_name(ca)) != 0 || pk == NULL ||
	    X509_CRL_verify(crl, pk) != 1) {
		seterr(why, why_len, "%s: not signed by this CA (RFC 5280 "
		    "6.3.3); ignored", path);
		ERR_clear_error();
		X509_CRL_free(crl);
		crl = NULL;
	}
out:
	BIO_free(b);
	return crl;
}

static uint64_t
crl_num(X509_CRL *crl, int nid)
{
	ASN1_INTEGER *ai;
	uint64_t v = 0;

	if ((ai = X509_CRL_get_ext_d2i(crl, nid, NULL, NULL)) != NULL) {
		if (!ASN1_INTEGER_get_uint64(&v, ai))
			v = 0;
		ASN1_INTEGER_free(ai);
	}
	ERR_clear_error();
	return v;
}

static int
ent_cmp(const void *a, const void *b)
{
	return memcmp(((const struct crl_ent *)a)->serial,
	    ((const struct crl_ent *)b)->serial, STORE_SERIAL_LEN);
}

/* The entry of serial: binary search in the sorted part, then the tail. */
static struct crl_ent *
set_find(struct crl_set *s, const uint8_t serial[STORE_SERIAL_LEN])
{
	struct crl_ent key, *e;
	size_t i;

	memcpy(key.serial, serial, STORE_SERIAL_LEN);
	if (s->sorted > 0 && (e = bsearch(&key, s->e, s->sorted,
	    sizeof(*s->e), ent_cmp)) != NULL)
		return e;
	for (i = s->sorted; i < s->n; i++)
		if (memcmp(s->e[i].serial, serial, STORE_SERIAL_LEN) == 0)
			return &s->e[i];
	return NULL;
}

/* Reads one entry; 0 if it is not one of ours (not 16 bytes, bad reason). */
static int
entry_read(X509_REVOKED *r, struct crl_ent *out)
{
	const ASN1_INTEGER *sn = X509_REVOKED_get0_serialNumber(r);
	ASN1_ENUMERATED *re;
	ASN1_GENERALIZEDTIME *inv;
	BIGNUM *bn;
	long reason = REASON_UNSPECIFIED;
	int ok;

	memset(out, 0, sizeof(*out));
	if ((bn = ASN1_INTEGER_to_BN(sn, NULL)) == NULL)
		return 0;
	ok = !BN_is_negative(bn) &&
	    BN_bn2binpad(bn, out->serial, STORE_SERIAL_LEN) ==
	    STORE_SERIAL_LEN;
	BN_free(bn);
	if (!ok)
		return 0;
	if ((re = X509_REVOKED_get_ext_d2i(r, NID_crl_reason, NULL,
	    NULL)) != NULL) {
		reason = ASN1_ENUMERATED_get(re);
		ASN1_ENUMERATED_free(re);
	}
	if ((inv = X509_REVOKED_get_ext_d2i(r, NID_invalidity_date, NULL,
	    NULL)) != NULL) {
		out->invalidity = asn1_time_unix(inv);
		ASN1_GENERALIZEDTIME_free(inv);
	}
	ERR_clear_error();
	out->when = asn1_time_unix(X509_REVOKED_get0_revocationDate(r));
	if (reason == REASON_CERTIFICATE_HOLD)
		out->status = CERT_HOLD;
	else if (reason == REASON_REMOVE_FROM_CRL)
		out->status = CERT_GOOD;
	else if (reason >= 0 && reason <= REASON_AA_COMPROMISE && reason != 7)
		out->status = CERT_REVOKED;
	else
		return 0;
	out->reason = (uint8_t)reason;
	return out->when > 0;
}

/*
 * Adds crl's entries to s; a later CRL's entry replaces an earlier one
 * (dedupe: 0 for the first CRL, whose serials are unique).
 */
static void
set_add_crl(struct crl_set *s, X509_CRL *crl, int dedupe)
{
	STACK_OF(X509_REVOKED) *sk = X509_CRL_get_REVOKED(crl);
	struct crl_ent e, *old;
	int i;

	for (i = 0; i < sk_X509_REVOKED_num(sk); i++) {
		if (!entry_read(sk_X509_REVOKED_value(sk, i), &e)) {
			s->skipped++;
			continue;
		}
		if (dedupe && (old = set_find(s, e.serial)) != NULL) {
			*old = e;
			continue;
		}
		if (s->n == s->cap) {
			s->cap = s->cap ? s->cap * 2 : 64;
			if ((s->e = reallocarray(s->e, s->cap,
			    sizeof(*s->e))) == NULL)
				fatal("reallocarray");
		}
		s->e[s->n++] = e;
	}
	if (s->n > 1)	/* qsort must not see NULL, even for 0 */
		qsort(s->e, s->n, sizeof(*s->e), ent_cmp);
	s->sorted = s->n;
}

/*
 * The union of the last full CRL and the delta on top of it, in the order
 * they were issued: a delta older than the full one adds nothing.
 * Returns the number of CRLs used.
 */
static int
load_crls(struct crl_set *s, const struct restore_opts *o)
{
	X509_CRL *full, *delta;
	uint64_t fnum = 0, dnum = 0, dbase = 0;
	char why[PATH_MAX + 128];
	int used = 0;

	if (o->crl_dir == NULL || o->ca_cert == NULL)
		return 0;
	if ((full = read_crl(o->crl_dir, o->full_name, o->ca_cert, why,
	    sizeof(why))) == NULL)
		log_warnx("restore: last full CRL: %s", why);
	if ((delta = read_crl(o->crl_dir, o->delta_name, o->ca_cert, why,
	    sizeof(why))) == NULL)
		log_warnx("restore: last delta CRL: %s", why);
	if (full != NULL) {
		fnum = crl_num(full, NID_crl_number);
		set_add_crl(s, full, 0);
		used++;
		log_info("restore: read full CRL number %" PRIu64 " (%d "
		    "entries)", fnum, sk_X509_REVOKED_num(
		    X509_CRL_get_REVOKED(full)));
	}
	if (delta != NULL) {
		dnum = crl_num(delta, NID_crl_number);
		dbase = crl_num(delta, NID_delta_crl);
		if (full != NULL && dnum < fnum) {
			s->complete = 1;	/* the full one is newer */
			log_info("restore: delta CRL %" PRIu64 " is older than "
			    "full CRL %" PRIu64 "; not used", dnum, fnum);
		} else {
			if (full == NULL || dbase > fnum)
				log_warnx("restore: delta CRL %" PRIu64 " is "
				    "based on CRL %" PRIu64 ", not on the full "
				    "CRL found (%" PRIu64 "); changes between "
				    "them may be missing", dnum, dbase, fnum);
			set_add_crl(s, delta, 1);
			/*
			 * A delta based on an older full CRL than the one found
			 * (the base is the oldest full CRL a relying party may
			 * still hold) lists every change since that base, so
			 * the pair is complete too (RFC 5280 5.2.4).
			 */
			s->complete = full != NULL && dbase <= fnum;
			used++;
			log_info("restore: read delta CRL number %" PRIu64
			    " (base %" PRIu64 ")", dnum, dbase);
		}
	}
	X509_CRL_free(full);
	X509_CRL_free(delta);
	return used;
}

/* ---- accepting a restore ---- */

struct accept_ctx {
	const struct restore_opts	*o;
	struct hwm_state		 hs;
	struct store_mark		 sm;
	struct crl_set			 set;
	int				 num_crls;
	uint64_t			 reapplied, unknown;
	uint64_t			 new_rev_seq;
	int64_t				 now;
};

/* Applies one CRL entry if it is newer than the store's state. */
static enum store_rc
reapply_one(struct store_txn *txn, struct accept_ctx *a,
    const struct crl_ent *e)
{
	struct cert_state st;
	char hex[SERIAL_HEX_LEN], det[128];
	enum store_rc rc;
	uint8_t to;
	int raise_kc;

	serial_hex(hex, e->serial);
	rc = store_cert_state(txn, e->serial, &st);
	if (rc == STORE_NOTFOUND) {
		if (e->status == CERT_GOOD)
			return STORE_OK;
		if (a->unknown < LOG_SERIALS_MAX)
			log_warnx("restore: serial=%s is listed in the last "
			    "published CRL but unknown to this store: issued "
			    "after the backup (lost issuance)", hex);
		a->unknown++;
		snprintf(det, sizeof(det), "listed %s in the last published "
		    "CRL, unknown to the restored store", e->status ==
		    CERT_HOLD ? "on hold" : "revoked");
		return store_audit_append(txn, "micad",
		    "restore.lost_issuance", hex, det, NULL);
	}
	if (rc != STORE_OK)
		return rc;
	to = e->status;
	/* a reason raised to keyCompromise after the backup is raised again
	 * (and the key indexed as compromised in the same transaction) */
	raise_kc = to == CERT_REVOKED && st.status == CERT_REVOKED &&
	    e->reason == REASON_KEY_COMPROMISE &&
	    st.reason != REASON_KEY_COMPROMISE;
	if ((to == CERT_REVOKED && st.status == CERT_REVOKED && !raise_kc) ||
	    (to == CERT_HOLD && st.status != CERT_GOOD) ||
	    (to == CERT_GOOD && st.status != CERT_HOLD))
		return STORE_OK;	/* the store is as new or newer */
	if ((rc = store_cert_set_status(txn, e->serial, to, e->reason,
	    to == CERT_GOOD ? a->now : e->when, e->invalidity, NULL)) !=
	    STORE_OK)
		return rc;
	a->reapplied++;
	log_warnx("restore: serial=%s %s again from the last published CRL",
	    hex, to == CERT_REVOKED ? "revoked" : to == CERT_HOLD ?
	    "put on hold" : "released");
	snprintf(det, sizeof(det), "%s again from the last published CRL "
	    "(reason %u)", to == CERT_REVOKED ? "revoked" : to == CERT_HOLD ?
	    "on hold" : "released", e->reason);
	return store_audit_append(txn, "micad", "restore.reapply", hex, det,
	    NULL);
}

/*
 * Certificates the store has on hold that the last published CRLs (a
 * complete full + delta pair) no longer list: released after the backup.
 * Collected first, changed after the walk.
 */
struct held {
	struct crl_set	*set;
	struct crl_set	 rel;
};

static int
held_cb(const struct cert_rec *c, void *arg)
{
	struct held *h = arg;
	struct crl_ent e;

	if (c->st.status != CERT_HOLD || set_find(h->set, c->serial) != NULL)
		return 1;
	memset(&e, 0, sizeof(e));
	memcpy(e.serial, c->serial, STORE_SERIAL_LEN);
	e.status = CERT_GOOD;
	e.reason = REASON_REMOVE_FROM_CRL;
	if (h->rel.n == h->rel.cap) {
		h->rel.cap = h->rel.cap ? h->rel.cap * 2 : 16;
		if ((h->rel.e = reallocarray(h->rel.e, h->rel.cap,
		    sizeof(*h->rel.e))) == NULL)
			fatal("reallocarray");
	}
	h->rel.e[h->rel.n++] = e;
	return 1;
}

static enum store_rc
release_absent(struct store_txn *txn, struct accept_ctx *a)
{
	struct held h;
	enum store_rc rc;
	size_t i;

	if (!a->set.complete)
		return STORE_OK;
	memset(&h, 0, sizeof(h));
	h.set = &a->set;
	rc = store_cert_iter(txn, held_cb, &h);
	for (i = 0; rc == STORE_OK && i < h.rel.n; i++)
		rc = reapply_one(txn, a, &h.rel.e[i]);
	free(h.rel.e);
	return rc;
}

static enum store_rc
accept_txn(struct store_txn *txn, void *arg)
{
	struct accept_ctx *a = arg;
	uint64_t crl = a->sm.crl_number > a->hs.crl_number ?
	    a->sm.crl_number : a->hs.crl_number;
	char det[512];
	enum store_rc rc;
	size_t i;

	a->reapplied = a->unknown = 0;
	/* numbers continue above the mark; lost seqs are never reused */
	if ((rc = store_meta_set_u64(txn, "crl_number", crl)) != STORE_OK ||
	    (rc = store_meta_set_u64(txn, "rev_seq_floor", a->hs.rev_seq)) !=
	    STORE_OK)
		return rc;
	for (i = 0; i < a->set.n; i++)
		if ((rc = reapply_one(txn, a, &a->set.e[i])) != STORE_OK)
			return rc;
	if ((rc = release_absent(txn, a)) != STORE_OK)
		return rc;
	if ((rc = store_meta_set_u64(txn, RESTORE_META_STORE_ID,
	    a->hs.store_id)) != STORE_OK ||
	    (rc = store_meta_set_u64(txn, RESTORE_META_TIME,
	    (uint64_t)a->now)) != STORE_OK ||
	    (rc = store_meta_set_u64(txn, RESTORE_META_LOST_FROM,
	    a->sm.rev_seq + 1)) != STORE_OK ||
	    (rc = store_meta_set_u64(txn, RESTORE_META_LOST_TO,
	    a->hs.rev_seq)) != STORE_OK ||
	    (rc = store_meta_set_u64(txn, RESTORE_META_CRL_ABOVE,
	    a->hs.crl_number)) != STORE_OK ||
	    (rc = store_meta_set_u64(txn, RESTORE_META_REAPPLIED,
	    a->reapplied)) != STORE_OK ||
	    (rc = store_meta_set_u64(txn, RESTORE_META_UNKNOWN,
	    a->unknown)) != STORE_OK ||
	    (rc = store_meta_set_u64(txn, RESTORE_META_NO_CRLS,
	    a->num_crls == 0)) != STORE_OK)
		return rc;
	snprintf(det, sizeof(det), "accepted an older store: CRL number %"
	    PRIu64 " < %" PRIu64 " or revocation seq %" PRIu64 " < %" PRIu64
	    "; %" PRIu64 " changes applied again from %d CRL(s), %" PRIu64
	    " unknown serials", a->sm.crl_number, a->hs.crl_number,
	    a->sm.rev_seq, a->hs.rev_seq, a->reapplied, a->num_crls,
	    a->unknown);
	if ((rc = store_audit_append(txn, "micad", "store.restore", "", det,
	    NULL)) != STORE_OK)
		return rc;
	return store_rev_last(txn, &a->new_rev_seq);
}

static int
accept_restore(struct hwm *h, struct store *store,
    const struct restore_opts *o, const struct hwm_state *hs,
    const struct store_mark *sm, char *err, size_t err_len)
{
	struct accept_ctx a;
	struct hwm_state nh;
	uint64_t lost;
	enum store_rc rc;
	int ok = 0;

	memset(&a, 0, sizeof(a));
	a.o = o;
	a.hs = *hs;
	a.sm = *sm;
	a.now = (int64_t)time(NULL);
	lost = hs->rev_seq > sm->rev_seq ? hs->rev_seq - sm->rev_seq : 0;
	log_warnx("restore: accepting store %s, older than what was "
	    "published: lost revocation seq %" PRIu64 "..%" PRIu64 " (%"
	    PRIu64 " revocations/holds/releases); CRL numbers up to %" PRIu64
	    " were published (the store had %" PRIu64 "); new CRLs continue "
	    "above %" PRIu64, o->store_path, sm->rev_seq + 1, hs->rev_seq,
	    lost, hs->crl_number, sm->crl_number, hs->crl_number);
	a.num_crls = load_crls(&a.set, o);
	if (a.num_crls == 0)
		log_warnx("restore: no published CRL found in %s: the lost "
		    "changes cannot be applied again", o->crl_dir != NULL ?
		    o->crl_dir : "(none)");
	if ((rc = store_write(store, accept_txn, &a)) != STORE_OK) {
		seterr(err, err_len, "store %s: recording the accepted "
		    "restore: %s", o->store_path, store_strerror(rc));
		goto out;
	}
	nh = *hs;
	if (a.new_rev_seq > nh.rev_seq)
		nh.rev_seq = a.new_rev_seq;
	if (!hwm_set(h, &nh)) {
		seterr(err, err_len, "cannot write the high-water mark %s",
		    hwm_path(h));
		goto out;
	}
	log_warnx("restore: %" PRIu64 " changes applied again from %d "
	    "published CRL(s) (%zu entries read, %zu not ours); %" PRIu64
	    " revoked or held serials unknown to the store (lost issuances, "
	    "listed above and in the audit trail)", a.reapplied, a.num_crls,
	    a.set.n, a.set.skipped, a.unknown);
	ok = 1;
out:
	free(a.set.e);
	return ok;
}

/* ---- the guard ---- */

static int
behind_msg(char *err, size_t err_len, const struct restore_opts *o,
    const struct hwm_state *hs, const struct store_mark *sm)
{
	seterr(err, err_len, "store %s is older than what micad has already "
	    "published: its CRL number is %" PRIu64 " and its last revocation "
	    "sequence %" PRIu64 ", but the high-water mark %s records CRL "
	    "number %" PRIu64 " and revocation sequence %" PRIu64 " (a "
	    "restored backup?). Serving it would un-revoke certificates and "
	    "reuse CRL numbers (RFC 5280 5.2.3). If the restore is intended, "
	    "start once with micad --accept-restore: CRL numbers then "
	    "continue above %" PRIu64 " and the changes still listed in the "
	    "last published CRLs are applied again", o->store_path,
	    sm->crl_number, sm->rev_seq, o->hwm_path, hs->crl_number,
	    hs->rev_seq, hs->crl_number);
	return 0;
}

/* A first start (new CA, or an upgrade): the mark starts at the store. */
static int
create_mark(struct hwm *h, struct store *store, const struct restore_opts *o,
    const struct store_mark *sm, char *err, size_t err_len)
{
	struct hwm_state hs;
	enum store_rc rc;

	memset(&hs, 0, sizeof(hs));
	hs.store_id = sm->store_id;
	hs.crl_number = sm->crl_number;
	hs.rev_seq = sm->rev_seq;
	if ((rc = store_write(store, set_id_txn, &hs.store_id)) != STORE_OK) {
		seterr(err, err_len, "store %s: %s", o->store_path,
		    store_strerror(rc));
		return 0;
	}
	if (!hwm_set(h, &hs)) {
		seterr(err, err_len, "cannot create the high-water mark %s "
		    "(see above)", o->hwm_path);
		return 0;
	}
	log_info("created the high-water mark %s (CRL number %" PRIu64
	    ", revocation seq %" PRIu64 ")", o->hwm_path, hs.crl_number,
	    hs.rev_seq);
	return 1;
}

int
restore_guard(struct hwm **out_hwm, struct store *store,
    const struct restore_opts *o, char *err, size_t err_len)
{
	struct hwm *h = NULL;
	struct hwm_state hs;
	struct store_mark sm;
	char why[512];
	enum hwm_rc hrc;
	enum store_rc rc;
	int ok = 0, behind, new_id;

	*out_hwm = NULL;
	memset(&sm, 0, sizeof(sm));
	if ((rc = store_read(store, mark_txn, &sm)) != STORE_OK) {
		seterr(err, err_len, "store %s: %s", o->store_path,
		    store_strerror(rc));
		return 0;
	}
	hrc = hwm_load(&h, o->hwm_path, why, sizeof(why));
	if (hrc == HWM_CORRUPT || hrc == HWM_IO) {
		seterr(err, err_len, "high-water mark: %s. micad will not guess "
		    "what it has already published: put the file back from "
		    "the backup of %s, or, if it is lost for good, move it "
		    "away (micad then creates a new one from the store, and "
		    "cannot tell whether the store is older than what was "
		    "published)", why, o->hwm_path);
		return 0;
	}
	hwm_get(h, &hs);
	new_id = sm.store_id == 0;
	if (sm.store_id == 0 && hrc == HWM_OK)
		sm.store_id = hs.store_id;	/* a store from before ids */
	if (sm.store_id == 0) {
		while (sm.store_id == 0)
			randombytes_buf(&sm.store_id, sizeof(sm.store_id));
	}
	if (hrc == HWM_MISSING) {
		ok = o->check_only || create_mark(h, store, o, &sm, err,
		    err_len);
		goto out;
	}
	if (hs.store_id != sm.store_id) {
		seterr(err, err_len, "the high-water mark %s belongs to another "
		    "store (id %016" PRIx64 ", this store %s has %016" PRIx64
		    "): a file of another CA? Point [store] hwm_file at this "
		    "CA's mark", o->hwm_path, hs.store_id, o->store_path,
		    sm.store_id);
		goto out;
	}
	behind = sm.crl_number < hs.crl_number || sm.rev_seq < hs.rev_seq;
	if (behind && !o->accept) {
		behind_msg(err, err_len, o, &hs, &sm);
		goto out;
	}
	if (o->check_only) {
		if (behind)
			log_warnx("store %s is older than the high-water mark "
			    "%s (CRL number %" PRIu64 " < %" PRIu64 " or "
			    "revocation seq %" PRIu64 " < %" PRIu64 "); "
			    "--accept-restore accepts it", o->store_path,
			    o->hwm_path, sm.crl_number, hs.crl_number,
			    sm.rev_seq, hs.rev_seq);
		ok = 1;
		goto out;
	}
	if (behind) {
		if (!accept_restore(h, store, o, &hs, &sm, err, err_len))
			goto out;
	} else if (o->accept)
		log_info("--accept-restore: the store is not older than the "
		    "high-water mark %s; nothing to accept", o->hwm_path);
	/* a store from before ids takes the mark's */
	if (new_id && (rc = store_write(store, set_id_txn, &sm.store_id)) !=
	    STORE_OK) {
		seterr(err, err_len, "store %s: %s", o->store_path,
		    store_strerror(rc));
		goto out;
	}
	ok = 1;
out:
	if (ok && !o->check_only) {
		*out_hwm = h;
		h = NULL;
	}
	hwm_free(h);
	return ok;
}

/* ---- copies of the last published CRLs ---- */

static pthread_mutex_t keep_mu = PTHREAD_MUTEX_INITIALIZER;
static uint64_t kept[2];

void
restore_keep_crls(struct crl_service *crl, const char *dir,
    const char *full_name, const char *delta_name)
{
	const struct crl_snapshot *sn;
	const char *names[2] = { full_name, delta_name };
	int k;

	if (crl == NULL || dir == NULL)
		return;
	pthread_mutex_lock(&keep_mu);
	for (k = CRL_FULL; k <= CRL_DELTA; k++) {
		if ((sn = crl_service_peek(crl, (enum crl_kind)k)) == NULL)
			continue;
		/* one read from these copies at start is there already */
		if (sn->number > kept[k] && !sn->from_file &&
		    crl_snapshot_write(sn, dir, names[k], 0600))
			kept[k] = sn->number;
		crl_snapshot_release(sn);
	}
	pthread_mutex_unlock(&keep_mu);
}

/* ---- status ---- */

int
restore_status_line(struct store_txn *txn, char *out, size_t out_len)
{
	const char *keys[] = { RESTORE_META_TIME, RESTORE_META_LOST_FROM,
	    RESTORE_META_LOST_TO, RESTORE_META_CRL_ABOVE,
	    RESTORE_META_REAPPLIED, RESTORE_META_UNKNOWN,
	    RESTORE_META_NO_CRLS };
	uint64_t v[7];
	char when[32], lost[96];
	struct tm tm;
	time_t t;
	size_t i;

	out[0] = '\0';
	for (i = 0; i < 7; i++)
		if (store_meta_get_u64(txn, keys[i], &v[i]) != STORE_OK)
			return 0;
	if (v[0] == 0)
		return 1;
	t = (time_t)v[0];
	gmtime_r(&t, &tm);
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm);
	if (v[2] >= v[1])
		snprintf(lost, sizeof(lost), "lost revocation seq %" PRIu64
		    "..%" PRIu64 " (%" PRIu64 " changes)", v[1], v[2],
		    v[2] - v[1] + 1);
	else
		snprintf(lost, sizeof(lost), "no revocation change lost");
	snprintf(out, out_len, "store restored on %s; %s; CRL numbers "
	    "continue above %" PRIu64 "; %" PRIu64 " changes applied again "
	    "from the last published CRLs%s; %" PRIu64 " revoked or "
	    "held serials unknown to the store (lost issuances, see mica-admin "
	    "audit)",
	    when, lost, v[3], v[4], v[6] ? " (none found)" : "", v[5]);
	return 1;
}
