/*
 * reissue.c - the lost-certificate reissue workflow.
 *
 * Every state change is ONE store write (micad_write, on the writer
 * thread) whose callback re-reads what it depends on, so concurrent admin
 * commands and clients cannot interleave badly; callbacks have no effect
 * outside the transaction (store_write may run them again after growing
 * the map).  Only after the commit is anyone told: OCSP cache and delta
 * CRL first (on the writer), then on the loop the waiting connections
 * and the caller's callback.  Contexts are heap copies: the caller's
 * buffers and connections may go while a write is queued.
 */
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <sodium.h>

#include "ca/ca.h"
#include "ca/micad.h"
#include "ca/notify.h"
#include "ca/proto.h"
#include "ca/reissue.h"
#include "common/bytes.h"
#include "common/log.h"
#include "common/workq.h"
#include "conf/conf.h"
#include "store/store.h"

struct waiter {
	struct waiter	*next;
	uint64_t	 id;
	reissue_wait_fn	 fn;
	void		*arg;
};

struct reissue {
	struct micad	*d;
	uint8_t		*ca_der;	/* chain sent with ISSUED */
	size_t		 ca_len;
	struct waiter	*waiters;
};

static void
token_hash(uint8_t out[STORE_HASH_LEN], const uint8_t token[REISSUE_TOKEN_LEN])
{
	crypto_generichash(out, STORE_HASH_LEN, token, REISSUE_TOKEN_LEN,
	    NULL, 0);
}

static uint8_t
revoke_reason(uint8_t req_reason)
{
	/* Lost or compromised: the old key may be in other hands. */
	if (req_reason == REQREASON_DAMAGED)
		return REASON_SUPERSEDED;
	return REASON_KEY_COMPROMISE;
}

static const char *
req_reason_name(uint8_t r)
{
	switch (r) {
	case REQREASON_LOST:
		return "lost";
	case REQREASON_COMPROMISED:
		return "compromised";
	case REQREASON_DAMAGED:
		return "damaged";
	}
	return "unknown";
}

static const char *
crl_reason_name(uint8_t r)
{
	switch (r) {
	case REASON_UNSPECIFIED:
		return "unspecified";
	case REASON_KEY_COMPROMISE:
		return "keyCompromise";
	case REASON_CA_COMPROMISE:
		return "cACompromise";
	case REASON_AFFILIATION_CHANGED:
		return "affiliationChanged";
	case REASON_SUPERSEDED:
		return "superseded";
	case REASON_CESSATION:
		return "cessationOfOperation";
	case REASON_CERTIFICATE_HOLD:
		return "certificateHold";
	case REASON_REMOVE_FROM_CRL:
		return "removeFromCRL";
	case REASON_PRIVILEGE_WITHDRAWN:
		return "privilegeWithdrawn";
	case REASON_AA_COMPROMISE:
		return "aACompromise";
	}
	return "unknown";
}

/* UTC "YYYY-MM-DD HH:MM:SS UTC" for messages. */
static void
fmt_time(char *out, size_t out_len, int64_t t)
{
	struct tm	tm;
	time_t		tt = (time_t)t;

	if (gmtime_r(&tt, &tm) == NULL ||
	    strftime(out, out_len, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
		snprintf(out, out_len, "%" PRId64, t);
}

/* One audit record in a transaction of its own (failures that aborted
 * the transaction they happened in); lives in the job that needs it. */
struct audit_ctx {
	char		 actor[STORE_NAME_MAX + 1];
	const char	*action;
	char		 subject[64];
	char		 details[CA_ERR_MAX];
	void		*owner;		/* the job, for then */
	micad_done_fn	 then;
};

static enum store_rc
audit_txn(struct store_txn *txn, void *arg)
{
	struct audit_ctx *a = arg;

	return store_audit_append(txn, a->actor, a->action, a->subject,
	    a->details, NULL);
}

static void
audit_done(void *arg, enum store_rc rc)
{
	struct audit_ctx *a = arg;

	if (rc != STORE_OK)
		log_warnx("audit %s: %s", a->action, store_strerror(rc));
	a->then(a->owner, rc);
}

/* Queues the audit record; then(owner, rc) runs after it, on the loop.
 * Returns 0 when nothing was queued (then does not run). */
static int
audit_alone(struct micad *d, struct audit_ctx *a, void *owner,
    micad_done_fn then)
{
	a->owner = owner;
	a->then = then;
	return micad_write(d, audit_txn, a, NULL, audit_done);
}

struct reissue *
reissue_new(struct micad *d)
{
	struct reissue	*r = NULL, *ret = NULL;
	X509		*cert = NULL;
	char		 err[CA_ERR_MAX];

	if ((r = calloc(1, sizeof(*r))) == NULL) {
		log_warn("reissue_new");
		goto out;
	}
	r->d = d;
	if (d->signer != NULL) {
		if (!ca_cert_der(ca_signer_get0_cert(d->signer), &r->ca_der,
		    &r->ca_len)) {
			log_warnx("reissue: CA certificate DER");
			goto out;
		}
	} else {
		if (!ca_cert_read(&cert, d->conf->ca.cert, err, sizeof(err)) ||
		    !ca_cert_der(cert, &r->ca_der, &r->ca_len)) {
			log_warnx("reissue: %s: %s", d->conf->ca.cert, err);
			goto out;
		}
	}
	ret = r;
	r = NULL;
out:
	X509_free(cert);
	reissue_free(r);
	return ret;
}

void
reissue_free(struct reissue *r)
{
	struct waiter	*w;

	if (r == NULL)
		return;
	while ((w = r->waiters) != NULL) {
		r->waiters = w->next;
		free(w);
	}
	free(r->ca_der);
	free(r);
}

/* ---- enrolment requests (no lost certificate) ---- */

int
reissue_is_enrolment(const uint8_t lost_serial[16])
{
	return (lost_serial[0] & 0x80) != 0;
}

/* The marker an enrolment request carries instead of a lost serial. */
static void
enrolment_marker(uint8_t out[16], uint64_t id)
{
	memset(out, 0, 16);
	out[0] = 0x80;
	be64_put(out + 8, id);
}

/* "-" for an enrolment, else the lost serial in hex. */
static const char *
lost_text(char hex[SERIAL_HEX_LEN], const uint8_t lost[16])
{
	if (reissue_is_enrolment(lost))
		snprintf(hex, SERIAL_HEX_LEN, "-");
	else
		serial_hex(hex, lost);
	return hex;
}

/* ---- creating a request ---- */

struct create_ctx {
	struct micad		*d;
	char			 account[STORE_NAME_MAX + 1];
	uint8_t			 lost[STORE_SERIAL_LEN];
	uint8_t			*csr;		/* malloc'd copy */
	size_t			 csr_len;
	uint8_t			 reason;
	int			 enrol;		/* REQUEST: no lost certificate */
	char			 note[STORE_NOTE_MAX + 1];
	uint8_t			 hash[STORE_HASH_LEN];
	uint8_t			 token[REISSUE_TOKEN_LEN];
	int64_t			 now;
	reissue_create_fn	 fn;
	void			*arg;
	struct micad_changed	 changed;
	struct audit_ctx	 audit;		/* request.refused */
	struct micad_settings	 set;		/* copied once at the start */
	/* results */
	uint64_t		 id;
	int			 held;
	uint8_t			 state;
	int			 resumed;	/* an earlier request, new token */
	enum reissue_rc		 rc;
	char			 err[CA_ERR_MAX];
};

/* ---- resuming a request whose ACCEPTED was lost ---- */

/* 1 if the two CSRs (DER) carry the same public key. */
static int
csr_same_key(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	const unsigned char	*p;
	X509_REQ		*ra = NULL, *rb = NULL;
	EVP_PKEY		*ka, *kb;
	int			 same = 0;

	if (alen > LONG_MAX || blen > LONG_MAX)
		return 0;
	p = a;
	if ((ra = d2i_X509_REQ(NULL, &p, (long)alen)) == NULL)
		goto out;
	p = b;
	if ((rb = d2i_X509_REQ(NULL, &p, (long)blen)) == NULL)
		goto out;
	if ((ka = X509_REQ_get0_pubkey(ra)) != NULL &&
	    (kb = X509_REQ_get0_pubkey(rb)) != NULL)
		same = EVP_PKEY_eq(ka, kb) == 1;
out:
	ERR_clear_error();
	X509_REQ_free(ra);
	X509_REQ_free(rb);
	return same;
}

struct issued_find {
	const uint8_t	*new_serial;
	uint64_t	 id;
};

static int
issued_find_cb(const struct request_rec *q, void *arg)
{
	struct issued_find *f = arg;

	if (q->state == REQ_ISSUED &&
	    memcmp(q->new_serial, f->new_serial, STORE_SERIAL_LEN) == 0) {
		f->id = q->id;
		return 0;
	}
	return 1;
}

/*
 * The connection broke after the request was stored and before the
 * client had its ACCEPTED (micad killed in between, under review = auto
 * even after the approval).  The client keeps the key it sent and runs
 * again with a new code: the same account asking again for the same
 * lost serial with a CSR for the same key gets that request back with a
 * new token (the old one, never seen by anybody, stops working).
 * STORE_OK and c->resumed when request id is such a request, else
 * STORE_NOTFOUND.
 */
static enum store_rc
resume_request(struct create_ctx *c, struct store_txn *txn, uint64_t id,
    int same_lost)
{
	struct request_rec	q;
	char			subj[64];
	enum store_rc		rc;

	memset(&q, 0, sizeof(q));
	if ((rc = store_request_get(txn, id, &q)) != STORE_OK)
		goto out;
	if (strcmp(q.account, c->account) != 0 || (same_lost &&
	    memcmp(q.lost_serial, c->lost, STORE_SERIAL_LEN) != 0) ||
	    (q.state != REQ_PENDING && q.state != REQ_ISSUED) ||
	    !csr_same_key(q.csr, q.csr_len, c->csr, c->csr_len)) {
		rc = STORE_NOTFOUND;
		goto out;
	}
	memcpy(q.token_hash, c->hash, STORE_HASH_LEN);
	if ((rc = store_request_put(txn, &q)) != STORE_OK)
		goto out;
	snprintf(subj, sizeof(subj), "req=%" PRIu64, id);
	if ((rc = store_audit_append(txn, c->account, "request.resumed", subj,
	    "same account, lost serial and key: a new retrieval token",
	    NULL)) != STORE_OK)
		goto out;
	c->id = id;
	c->held = q.held;
	c->state = q.state;
	c->resumed = 1;
	c->rc = REISSUE_OK;
out:
	request_rec_cleanup(&q);
	return rc;
}

/*
 * The lost certificate was replaced already, by a request of this
 * account for this key whose ACCEPTED was lost?  Named either by the
 * lost serial (revoked, replaced_by set) or, by a client that took "the
 * only good certificate", by the replacement itself (replaces set, its
 * key the CSR's).  As resume_request.
 */
static enum store_rc
resume_issued(struct create_ctx *c, struct store_txn *txn,
    const struct cert_rec *lost)
{
	struct issued_find	f;
	enum store_rc		rc;
	int			by_replacement;

	if (strcmp(lost->account, c->account) != 0)
		return STORE_NOTFOUND;
	by_replacement = lost->st.status != CERT_REVOKED;
	if (by_replacement ? serial_is_zero(lost->replaces) :
	    serial_is_zero(lost->replaced_by))
		return STORE_NOTFOUND;
	f.new_serial = by_replacement ? lost->serial : lost->replaced_by;
	f.id = 0;
	if ((rc = store_request_iter(txn, issued_find_cb, &f)) != STORE_OK)
		return rc;
	if (f.id == 0)
		return STORE_NOTFOUND;
	return resume_request(c, txn, f.id, !by_replacement);
}

/* The CSR rules of ca/ca.h against the lost certificate and account. */
static int
check_csr(struct create_ctx *c, struct store_txn *txn,
    const struct cert_rec *lost, const struct account_rec *acct)
{
	struct ca_csr_policy	 pol;
	const uint8_t		*p = lost->der;
	X509			*lcert = NULL;
	struct ca_csr		*req = NULL;
	enum store_rc		 src;
	int			 rc = 0;

	if (lost->der_len > LONG_MAX ||
	    (lcert = d2i_X509(NULL, &p, (long)lost->der_len)) == NULL) {
		log_ssl("reissue: stored certificate does not parse");
		snprintf(c->err, sizeof(c->err), "internal error");
		c->rc = REISSUE_INTERNAL;
		goto out;
	}
	memset(&pol, 0, sizeof(pol));
	pol.allowed_subject = acct->subject;
	pol.expected_subject = X509_get_subject_name(lcert);
	pol.lost_cert_der = lost->der;
	pol.lost_cert_len = lost->der_len;
	if (!ca_csr_check(&req, c->csr, c->csr_len, &pol, c->err,
	    sizeof(c->err)) ||
	    !micad_csr_sans_check(&c->set, req, acct->sans, c->err,
	    sizeof(c->err))) {
		c->rc = REISSUE_BAD_REQUEST;
		goto out;
	}
	/* mica's own keys, compromised and lost keys: refused at once */
	src = micad_csr_key_check(c->d, txn, req, c->err, sizeof(c->err));
	if (src != STORE_OK) {
		c->rc = src == STORE_INVALID ? REISSUE_BAD_REQUEST :
		    REISSUE_INTERNAL;
		if (src != STORE_INVALID)
			snprintf(c->err, sizeof(c->err), "internal error");
		goto out;
	}
	rc = 1;
out:
	ca_csr_free(req);
	X509_free(lcert);
	return rc;
}

/*
 * An enrolment's CSR: the account's key rules and SAN list.  Its subject
 * is not checked against the account's: the certificate carries the
 * account's subject (the CSR proves possession of the key); an account
 * that allows any subject gets the CSR's.
 */
static int
check_enrol_csr(struct create_ctx *c, struct store_txn *txn,
    const struct account_rec *acct)
{
	struct ca_csr	*req = NULL;
	enum store_rc	 src;
	int		 rc = 0;

	if (!ca_csr_check(&req, c->csr, c->csr_len, NULL, c->err,
	    sizeof(c->err)) ||
	    !micad_csr_sans_check(&c->set, req, acct->sans, c->err,
	    sizeof(c->err))) {
		c->rc = REISSUE_BAD_REQUEST;
		goto out;
	}
	src = micad_csr_key_check(c->d, txn, req, c->err, sizeof(c->err));
	if (src != STORE_OK) {
		c->rc = src == STORE_INVALID ? REISSUE_BAD_REQUEST :
		    REISSUE_INTERNAL;
		if (src != STORE_INVALID)
			snprintf(c->err, sizeof(c->err), "internal error");
		goto out;
	}
	rc = 1;
out:
	ca_csr_free(req);
	return rc;
}

/* REQUEST: a pending request for a first certificate of the account. */
static enum store_rc
enrol_txn(struct store_txn *txn, struct create_ctx *c)
{
	struct account_rec	 acct;
	struct request_rec	 q;
	char			 subj[64];
	enum store_rc		 rc;

	memset(&acct, 0, sizeof(acct));
	memset(&q, 0, sizeof(q));
	if ((rc = store_account_get(txn, c->account, &acct)) != STORE_OK)
		goto out;
	if (!check_enrol_csr(c, txn, &acct)) {
		rc = STORE_ABORT;
		goto out;
	}
	if ((rc = store_request_next_id(txn, &c->id)) != STORE_OK)
		goto out;
	enrolment_marker(c->lost, c->id);
	q.id = c->id;
	q.state = REQ_PENDING;
	q.reason = REQREASON_LOST;	/* unused: nothing is revoked */
	snprintf(q.account, sizeof(q.account), "%s", c->account);
	memcpy(q.lost_serial, c->lost, STORE_SERIAL_LEN);
	memcpy(q.token_hash, c->hash, STORE_HASH_LEN);
	q.created = c->now;
	snprintf(q.note, sizeof(q.note), "%s", c->note);
	q.csr = c->csr;
	q.csr_len = c->csr_len;
	if ((rc = store_request_put(txn, &q)) != STORE_OK)
		goto out;
	snprintf(subj, sizeof(subj), "req=%" PRIu64, c->id);
	if ((rc = store_audit_append(txn, c->account, "request.created", subj,
	    "enrolment (a first certificate, nothing replaced)", NULL)) !=
	    STORE_OK)
		goto out;
	c->held = 0;
	c->rc = REISSUE_OK;
out:
	if (rc != STORE_OK && rc != STORE_ABORT)
		c->rc = REISSUE_INTERNAL;
	account_rec_wipe(&acct);
	return rc;
}

static enum store_rc
create_txn(struct store_txn *txn, void *arg)
{
	struct create_ctx	*c = arg;
	struct cert_rec		 lost;
	struct account_rec	 acct;
	struct request_rec	 q;
	uint64_t		 open_id;
	char			 hex[SERIAL_HEX_LEN], subj[64], when[32];
	char			 details[STORE_NOTE_MAX + 1];
	enum store_rc		 rc;

	memset(&lost, 0, sizeof(lost));
	memset(&acct, 0, sizeof(acct));
	memset(&q, 0, sizeof(q));
	c->rc = REISSUE_INTERNAL;
	c->held = 0;
	c->resumed = 0;
	c->err[0] = '\0';
	if (c->enrol)
		return enrol_txn(txn, c);
	serial_hex(hex, c->lost);

	rc = store_cert_get(txn, c->lost, &lost);
	if (rc == STORE_NOTFOUND || (rc == STORE_OK &&
	    strcmp(lost.account, c->account) != 0)) {
		/* Same answer for "no such serial" and "not yours". */
		c->rc = REISSUE_BAD_REQUEST;
		snprintf(c->err, sizeof(c->err), "serial %s is not a "
		    "certificate of this account", hex);
		rc = STORE_ABORT;
		goto out;
	}
	if (rc != STORE_OK)
		goto out;
	if (lost.st.status == CERT_REVOKED ||
	    !serial_is_zero(lost.replaces)) {
		rc = resume_issued(c, txn, &lost);
		if (rc != STORE_NOTFOUND)
			goto out;	/* resumed, or a store error */
		rc = STORE_OK;
	}
	if (lost.st.status != CERT_GOOD && lost.st.status != CERT_HOLD) {
		c->rc = REISSUE_BAD_REQUEST;
		snprintf(c->err, sizeof(c->err), "certificate %s is revoked",
		    hex);
		rc = STORE_ABORT;
		goto out;
	}
	if (lost.st.not_after < c->now) {
		c->rc = REISSUE_BAD_REQUEST;
		fmt_time(when, sizeof(when), lost.st.not_after);
		snprintf(c->err, sizeof(c->err), "certificate %s expired on "
		    "%s: an expired certificate is not reissued, ask the CA "
		    "for a new one", hex, when);
		rc = STORE_ABORT;
		goto out;
	}
	if ((rc = store_account_get(txn, c->account, &acct)) != STORE_OK)
		goto out;
	if (!check_csr(c, txn, &lost, &acct)) {
		rc = STORE_ABORT;
		goto out;
	}
	/* One open request per lost serial: an index lookup (store.h). */
	rc = store_request_open_find(txn, c->lost, &open_id);
	if (rc == STORE_OK) {
		if ((rc = resume_request(c, txn, open_id, 1)) !=
		    STORE_NOTFOUND)
			goto out;	/* resumed, or a store error */
		c->rc = REISSUE_DUPLICATE;
		snprintf(c->err, sizeof(c->err), "request %" PRIu64 " for "
		    "serial %s is still open", open_id, hex);
		rc = STORE_ABORT;
		goto out;
	}
	if (rc != STORE_NOTFOUND)
		goto out;
	if ((rc = store_request_next_id(txn, &c->id)) != STORE_OK)
		goto out;
	q.id = c->id;
	q.state = REQ_PENDING;
	q.reason = c->reason;
	snprintf(q.account, sizeof(q.account), "%s", c->account);
	memcpy(q.lost_serial, c->lost, STORE_SERIAL_LEN);
	memcpy(q.token_hash, c->hash, STORE_HASH_LEN);
	q.created = c->now;
	snprintf(q.note, sizeof(q.note), "%s", c->note);
	q.csr = c->csr;
	q.csr_len = c->csr_len;
	if (c->set.policy.hold_on_request &&
	    lost.st.status == CERT_GOOD) {
		rc = store_cert_set_status(txn, c->lost, CERT_HOLD,
		    REASON_CERTIFICATE_HOLD, c->now, 0, NULL);
		if (rc != STORE_OK)
			goto out;
		if (!micad_changed_add(&c->changed, c->lost)) {
			rc = STORE_INVALID;
			goto out;
		}
		q.held = 1;
		if ((rc = store_audit_append(txn, c->account, "cert.hold",
		    hex, "held until the reissue request is decided",
		    NULL)) != STORE_OK)
			goto out;
	}
	if ((rc = store_request_put(txn, &q)) != STORE_OK)
		goto out;
	snprintf(subj, sizeof(subj), "req=%" PRIu64, c->id);
	snprintf(details, sizeof(details), "serial=%s reason=%s held=%d",
	    hex, req_reason_name(c->reason), q.held);
	if ((rc = store_audit_append(txn, c->account, "request.created", subj,
	    details, NULL)) != STORE_OK)
		goto out;
	c->held = q.held;
	c->rc = REISSUE_OK;
out:
	if (rc != STORE_OK && rc != STORE_ABORT)
		c->rc = REISSUE_INTERNAL;
	cert_rec_cleanup(&lost);
	account_rec_wipe(&acct);
	return rc;
}

static void
create_free(struct create_ctx *c)
{
	if (c == NULL)
		return;
	free(c->csr);
	sodium_memzero(c, sizeof(*c));	/* the token */
	free(c);
}

/* Loop: the caller learns the outcome; c is freed. */
static void
create_finish(struct create_ctx *c)
{
	if (c->rc != REISSUE_OK)
		sodium_memzero(c->token, sizeof(c->token));
	c->fn(c->arg, c->rc, c->id, c->state, c->token,
	    c->rc == REISSUE_OK ? "" : c->err);
	create_free(c);
}

static void
create_audited(void *arg, enum store_rc rc)
{
	(void)rc;	/* logged by audit_done */
	create_finish(arg);
}

/* Loop: a refusal is logged and audited before the client hears it.
 * Returns 0 when the audit could not be queued. */
static int
create_refuse_queue(struct create_ctx *c)
{
	char hex[SERIAL_HEX_LEN];

	micad_stat_add(MSTAT_REQ_REFUSED, 1);
	lost_text(hex, c->lost);
	/* err may quote the CSR's subject: escaped for the log and audit */
	proto_log_escape(c->audit.details, sizeof(c->audit.details), c->err,
	    sizeof(c->err));
	log_info("%s refused account=%s serial=%s why=\"%s\"",
	    c->enrol ? "enrolment" : "reissue", c->account, hex,
	    c->audit.details);
	snprintf(c->audit.actor, sizeof(c->audit.actor), "%s", c->account);
	c->audit.action = "request.refused";
	snprintf(c->audit.subject, sizeof(c->audit.subject), "%s", hex);
	if (audit_alone(c->d, &c->audit, c, create_audited))
		return 1;
	log_warnx("audit request.refused: micad is stopping");
	return 0;
}

static void
create_refuse(struct create_ctx *c)
{
	if (!create_refuse_queue(c))
		create_finish(c);
}

static void
create_auto_done(void *arg, int ok, const char *err)
{
	struct create_ctx *c = arg;

	if (ok)
		c->state = REQ_ISSUED;
	else
		log_warnx("req=%" PRIu64 " auto approval failed: %s", c->id,
		    err);
	create_finish(c);
}

/* Loop, after create_txn's commit (and OCSP/CRL for a hold). */
static void
create_written(void *arg, enum store_rc rc)
{
	struct create_ctx	*c = arg;
	struct notify_info	 ni;
	char			 hex[SERIAL_HEX_LEN];

	lost_text(hex, c->lost);
	if (rc != STORE_OK || c->rc != REISSUE_OK) {
		if (c->rc == REISSUE_OK || c->rc == REISSUE_INTERNAL) {
			c->rc = REISSUE_INTERNAL;
			snprintf(c->err, sizeof(c->err), "internal error");
			log_warnx("reissue: account=%s serial=%s store: %s",
			    c->account, hex, store_strerror(rc));
		}
		create_refuse(c);
		return;
	}
	if (c->resumed) {
		/* an earlier request of this client, now with a new token */
		log_info("req=%" PRIu64 " resumed account=%s serial=%s "
		    "state=%s", c->id, c->account, hex,
		    c->state == REQ_ISSUED ? "issued" : "pending");
		if (c->state == REQ_PENDING &&
		    c->set.policy.review == REVIEW_AUTO &&
		    reissue_approve(c->d, c->id, "auto", create_auto_done, c))
			return;
		create_finish(c);
		return;
	}
	if (c->enrol)
		log_info("req=%" PRIu64 " enrolment requested account=%s",
		    c->id, c->account);
	else
		log_info("req=%" PRIu64 " reissue requested account=%s "
		    "serial=%s reason=%s held=%d", c->id, c->account, hex,
		    req_reason_name(c->reason), c->held);
	micad_stat_add(MSTAT_REQ_CREATED, 1);
	memset(&ni, 0, sizeof(ni));
	ni.event = "request.created";
	ni.request_id = c->id;
	ni.account = c->account;
	ni.serial = c->enrol ? NULL : c->lost;
	ni.reason = c->enrol ? NULL : req_reason_name(c->reason);
	ni.time = c->now;
	notify_event(c->d->notify, &ni);
	c->state = REQ_PENDING;
	if (c->set.policy.review == REVIEW_AUTO &&
	    !reissue_approve(c->d, c->id, "auto", create_auto_done, c)) {
		log_warnx("req=%" PRIu64 " auto approval failed: micad is "
		    "stopping", c->id);
		create_finish(c);
		return;
	}
	if (c->set.policy.review != REVIEW_AUTO)
		create_finish(c);
}

int
reissue_create(struct micad *d, const char *account,
    const uint8_t lost_serial[16], const uint8_t *csr_der, size_t csr_len,
    uint8_t reason, const char *note, reissue_create_fn fn, void *arg)
{
	struct create_ctx	*c;
	int			 ok = 0;

	if ((c = calloc(1, sizeof(*c))) == NULL ||
	    (c->csr = malloc(csr_len ? csr_len : 1)) == NULL) {
		log_warn("reissue_create");
		goto out;
	}
	c->d = d;
	c->fn = fn;
	c->arg = arg;
	snprintf(c->account, sizeof(c->account), "%s", account);
	if (lost_serial != NULL)
		memcpy(c->lost, lost_serial, sizeof(c->lost));
	else
		c->enrol = 1;	/* the marker is set with the id */
	if (csr_len > 0)
		memcpy(c->csr, csr_der, csr_len);
	c->csr_len = csr_len;
	c->reason = reason;
	snprintf(c->note, sizeof(c->note), "%s", note != NULL ? note : "");
	c->now = time(NULL);
	c->rc = REISSUE_INTERNAL;
	if (!micad_settings_copy(d, &c->set, c->err, sizeof(c->err))) {
		log_warnx("reissue: account=%s: %s", c->account, c->err);
		snprintf(c->err, sizeof(c->err), "internal error");
		ok = create_refuse_queue(c);
		goto out;
	}
	if (reason > REQREASON_DAMAGED) {
		snprintf(c->err, sizeof(c->err), "unknown reason %u", reason);
		c->rc = REISSUE_BAD_REQUEST;
		ok = create_refuse_queue(c);
		goto out;
	}
	randombytes_buf(c->token, sizeof(c->token));
	token_hash(c->hash, c->token);
	ok = micad_write(d, create_txn, c, &c->changed, create_written);
 out:
	if (!ok)
		create_free(c);
	return ok;
}

/* ---- waiters ---- */

static void
notify_waiters(struct micad *d, const struct reissue_result *res)
{
	struct reissue	*r = d->reissue;
	struct waiter	*w, **pp, *mine = NULL;

	if (r == NULL)
		return;
	/* Detach first: a callback may close its connection, which calls
	 * reissue_wait_cancel and edits the list. */
	pp = &r->waiters;
	while ((w = *pp) != NULL) {
		if (w->id == res->id) {
			*pp = w->next;
			w->next = mine;
			mine = w;
		} else
			pp = &w->next;
	}
	while ((w = mine) != NULL) {
		mine = w->next;
		w->fn(w->arg, res);
		free(w);
	}
}

void
reissue_wait_cancel(struct reissue *r, void *arg)
{
	struct waiter	*w, **pp;

	if (r == NULL)
		return;
	pp = &r->waiters;
	while ((w = *pp) != NULL) {
		if (w->arg == arg) {
			*pp = w->next;
			free(w);
		} else
			pp = &w->next;
	}
}

/* ---- approval and rejection ---- */

struct decide_ctx {
	struct micad		*d;
	uint64_t		 id;
	char			 actor[STORE_NAME_MAX + 1];
	int			 approve;
	char			 why[STORE_NOTE_MAX + 1];	/* reject */
	int64_t			 now;
	reissue_decide_fn	 fn;
	void			*arg;
	struct micad_changed	 chg;
	struct audit_ctx	 audit;		/* request.*_failed */
	struct micad_settings	 set;		/* copied once at the start */
	/* results */
	uint8_t			 lost[STORE_SERIAL_LEN];
	uint8_t			 new_serial[STORE_SERIAL_LEN];
	uint8_t			*der;
	size_t			 der_len;
	int			 changed;	/* the lost cert's status changed */
	char			 account[STORE_NAME_MAX + 1];
	enum reissue_rc		 rc;
	char			 err[CA_ERR_MAX];
	/* an approval signed on d->presign before the write (ps.der set),
	 * for this request's CSR (BLAKE2b) */
	struct micad_presigned	 ps;
	enum store_rc		 ps_rc;
	uint8_t			 ps_csr[crypto_generichash_BYTES];
};

/* Re-reads the request inside the transaction: it must still be pending. */
static enum store_rc
decide_get(struct decide_ctx *c, struct store_txn *txn, struct request_rec *q)
{
	enum store_rc	rc;

	rc = store_request_get(txn, c->id, q);
	if (rc == STORE_NOTFOUND) {
		c->rc = REISSUE_NOT_FOUND;
		snprintf(c->err, sizeof(c->err), "request %" PRIu64
		    " not found", c->id);
		return STORE_ABORT;
	}
	if (rc != STORE_OK)
		return rc;
	if (q->state != REQ_PENDING) {
		c->rc = REISSUE_NOT_PENDING;
		snprintf(c->err, sizeof(c->err), "request %" PRIu64 " is not "
		    "pending (state %s)", c->id, q->state == REQ_ISSUED ?
		    "issued" : q->state == REQ_REJECTED ? "rejected" :
		    "approved");
		return STORE_ABORT;
	}
	memcpy(c->lost, q->lost_serial, STORE_SERIAL_LEN);
	snprintf(c->account, sizeof(c->account), "%s", q->account);
	return STORE_OK;
}

/* The lost certificate's subject (what its replacement carries). */
static X509_NAME *
lost_subject(const struct cert_rec *lost)
{
	const uint8_t	*p = lost->der;
	X509		*x;
	X509_NAME	*name = NULL;

	if (lost->der_len > LONG_MAX ||
	    (x = d2i_X509(NULL, &p, (long)lost->der_len)) == NULL) {
		log_ssl("reissue: stored certificate does not parse");
		return NULL;
	}
	if ((name = X509_NAME_dup(X509_get_subject_name(x))) == NULL)
		log_ssl("reissue: subject copy");
	X509_free(x);
	return name;
}

/*
 * The lost certificate must still be replaceable when the request is
 * decided: not revoked (by an admin or another path) and not expired
 * since the request (an expired certificate is not reissued).
 */
static int
approve_recheck(struct decide_ctx *c, const struct cert_rec *lost)
{
	char when[32], hex[SERIAL_HEX_LEN];

	serial_hex(hex, lost->serial);
	if (lost->st.status == CERT_REVOKED) {
		snprintf(c->err, sizeof(c->err), "lost certificate was "
		    "revoked (reason %s) since the request; reject it",
		    crl_reason_name(lost->st.reason));
		return 0;
	}
	if (lost->st.status != CERT_GOOD && lost->st.status != CERT_HOLD) {
		snprintf(c->err, sizeof(c->err), "lost certificate %s has an "
		    "unknown status; reject the request", hex);
		return 0;
	}
	if (lost->st.not_after < c->now) {
		fmt_time(when, sizeof(when), lost->st.not_after);
		snprintf(c->err, sizeof(c->err), "lost certificate %s expired "
		    "on %s, after the request was made: an expired "
		    "certificate is not reissued; reject the request", hex,
		    when);
		return 0;
	}
	return 1;
}

/*
 * What an approval checks, in the presign thread's read transaction and
 * again in the write: the request re-read (still pending) and, unless it
 * is an enrolment, its lost certificate still replaceable
 * (approve_recheck).  When out_subject is not NULL, *out_subject is the
 * lost certificate's subject (NULL for an enrolment; X509_NAME_free).
 * q and lost are the caller's to clean up.
 */
static enum store_rc
approve_load(struct decide_ctx *c, struct store_txn *txn,
    struct request_rec *q, struct cert_rec *lost, X509_NAME **out_subject)
{
	enum store_rc	rc;

	c->rc = REISSUE_INTERNAL;
	c->err[0] = '\0';
	if ((rc = decide_get(c, txn, q)) != STORE_OK)
		return rc;
	if (reissue_is_enrolment(q->lost_serial))
		return STORE_OK;
	if ((rc = store_cert_get(txn, q->lost_serial, lost)) != STORE_OK)
		return rc;
	/*
	 * Revoked or expired since the request: nothing to replace any
	 * more, and signing now would hand out a certificate nobody
	 * decided on knowing that.
	 */
	if (!approve_recheck(c, lost)) {
		c->rc = REISSUE_BAD_REQUEST;
		return STORE_ABORT;
	}
	if (out_subject != NULL &&
	    (*out_subject = lost_subject(lost)) == NULL) {
		snprintf(c->err, sizeof(c->err), "internal error");
		return STORE_INVALID;
	}
	return STORE_OK;
}

/*
 * The new certificate of an approval, in the write: signed here (no
 * presign pool), or the one signed before (approve_presign_txn) stored
 * after the rechecks, for the same request and CSR.  subject: the lost
 * certificate's (NULL for an enrolment, and when presigned).
 */
static enum store_rc
approve_sign(struct decide_ctx *c, struct store_txn *txn,
    const struct request_rec *q, const X509_NAME *subject)
{
	uint8_t		h[crypto_generichash_BYTES];
	enum store_rc	rc;

	if (c->ps.der == NULL) {
		if (reissue_is_enrolment(q->lost_serial))
			return micad_issue_txn_enrol(c->d, &c->set, txn,
			    q->csr, q->csr_len, q->account,
			    c->set.policy.request_days, c->actor,
			    c->new_serial, &c->der, &c->der_len, c->err,
			    sizeof(c->err));
		return micad_issue_txn_with(c->d, &c->set, txn, q->csr,
		    q->csr_len, q->account, c->set.policy.request_days,
		    c->actor, subject, c->new_serial, &c->der, &c->der_len,
		    c->err, sizeof(c->err));
	}
	crypto_generichash(h, sizeof(h), q->csr, q->csr_len, NULL, 0);
	if (sodium_memcmp(h, c->ps_csr, sizeof(h)) != 0 ||
	    strcmp(q->account, c->ps.account) != 0) {
		snprintf(c->err, sizeof(c->err), "the request changed while "
		    "its certificate was being signed; nothing was issued, "
		    "approve again");
		return STORE_INVALID;
	}
	rc = micad_issue_presigned_txn(c->d, txn, &c->ps, c->actor, c->err,
	    sizeof(c->err));
	if (rc == STORE_NOTFOUND)
		snprintf(c->err, sizeof(c->err), "the account \"%s\" was "
		    "removed while the certificate was being signed; nothing "
		    "was issued", q->account);
	if (rc == STORE_OK)
		memcpy(c->new_serial, c->ps.serial, STORE_SERIAL_LEN);
	return rc;
}

/* Approving an enrolment: sign, mark the request issued; nothing is
 * revoked or linked. */
static enum store_rc
approve_enrol_txn(struct store_txn *txn, struct decide_ctx *c,
    struct request_rec *q)
{
	char		subj[64], nhex[SERIAL_HEX_LEN], details[256];
	enum store_rc	rc;

	rc = approve_sign(c, txn, q, NULL);
	if (rc != STORE_OK) {
		if (rc == STORE_INVALID)
			c->rc = REISSUE_BAD_REQUEST;
		return rc;
	}
	serial_hex(nhex, c->new_serial);
	q->state = REQ_ISSUED;
	memcpy(q->new_serial, c->new_serial, STORE_SERIAL_LEN);
	q->decided = c->now;
	snprintf(q->decided_by, sizeof(q->decided_by), "%s", c->actor);
	if ((rc = store_request_put(txn, q)) != STORE_OK)
		return rc;
	snprintf(subj, sizeof(subj), "req=%" PRIu64, c->id);
	snprintf(details, sizeof(details), "account=%s enrolment new=%s",
	    q->account, nhex);
	if ((rc = store_audit_append(txn, c->actor, "request.approved", subj,
	    details, NULL)) != STORE_OK)
		return rc;
	c->rc = REISSUE_OK;
	return STORE_OK;
}

static enum store_rc
approve_txn(struct store_txn *txn, void *arg)
{
	struct decide_ctx	*c = arg;
	struct request_rec	 q;
	struct cert_rec		 lost;
	X509_NAME		*subject = NULL;
	char			 subj[64], lhex[SERIAL_HEX_LEN];
	char			 nhex[SERIAL_HEX_LEN], details[256];
	enum store_rc		 rc;

	memset(&q, 0, sizeof(q));
	memset(&lost, 0, sizeof(lost));
	free(c->der);		/* from an earlier run of this callback */
	c->der = NULL;
	c->changed = 0;
	/* presigned: for the subject of this lost certificate, whose DER
	 * does not change */
	if ((rc = approve_load(c, txn, &q, &lost, c->ps.der == NULL ?
	    &subject : NULL)) != STORE_OK)
		goto out;
	if (reissue_is_enrolment(q.lost_serial)) {
		rc = approve_enrol_txn(txn, c, &q);
		goto out;
	}
	rc = approve_sign(c, txn, &q, subject);
	if (rc != STORE_OK) {
		if (rc == STORE_INVALID)
			c->rc = REISSUE_BAD_REQUEST;
		goto out;
	}
	serial_hex(lhex, q.lost_serial);
	serial_hex(nhex, c->new_serial);
	rc = store_cert_set_status(txn, q.lost_serial, CERT_REVOKED,
	    revoke_reason(q.reason), c->now, q.created, NULL);
	if (rc != STORE_OK)
		goto out;
	c->changed = 1;
	if (!micad_changed_add(&c->chg, q.lost_serial)) {
		rc = STORE_INVALID;
		goto out;
	}
	snprintf(details, sizeof(details), "reason=%s replaced_by=%s "
	    "req=%" PRIu64, crl_reason_name(revoke_reason(q.reason)), nhex,
	    c->id);
	if ((rc = store_audit_append(txn, c->actor, "cert.revoked", lhex,
	    details, NULL)) != STORE_OK)
		goto out;
	if ((rc = store_cert_link(txn, q.lost_serial, c->new_serial)) !=
	    STORE_OK)
		goto out;
	q.state = REQ_ISSUED;
	memcpy(q.new_serial, c->new_serial, STORE_SERIAL_LEN);
	q.decided = c->now;
	snprintf(q.decided_by, sizeof(q.decided_by), "%s", c->actor);
	if ((rc = store_request_put(txn, &q)) != STORE_OK)
		goto out;
	snprintf(subj, sizeof(subj), "req=%" PRIu64, c->id);
	snprintf(details, sizeof(details), "account=%s lost=%s new=%s",
	    q.account, lhex, nhex);
	if ((rc = store_audit_append(txn, c->actor, "request.approved", subj,
	    details, NULL)) != STORE_OK)
		goto out;
	c->rc = REISSUE_OK;
out:
	X509_NAME_free(subject);
	cert_rec_cleanup(&lost);
	request_rec_cleanup(&q);
	return rc;
}

static enum store_rc
reject_txn(struct store_txn *txn, void *arg)
{
	struct decide_ctx	*c = arg;
	struct request_rec	 q;
	struct cert_state	 st;
	char			 subj[64], hex[SERIAL_HEX_LEN];
	enum store_rc		 rc;

	memset(&q, 0, sizeof(q));
	c->changed = 0;
	c->rc = REISSUE_INTERNAL;
	c->err[0] = '\0';
	if ((rc = decide_get(c, txn, &q)) != STORE_OK)
		goto out;
	serial_hex(hex, q.lost_serial);
	if (q.held) {
		if ((rc = store_cert_state(txn, q.lost_serial, &st)) !=
		    STORE_OK)
			goto out;
		/* Release only the hold this request placed. */
		if (st.status == CERT_HOLD) {
			rc = store_cert_set_status(txn, q.lost_serial,
			    CERT_GOOD, REASON_REMOVE_FROM_CRL, c->now, 0, NULL);
			if (rc != STORE_OK)
				goto out;
			c->changed = 1;
			if (!micad_changed_add(&c->chg, q.lost_serial)) {
				rc = STORE_INVALID;
				goto out;
			}
			if ((rc = store_audit_append(txn, c->actor,
			    "cert.released", hex, "hold released: reissue "
			    "request rejected", NULL)) != STORE_OK)
				goto out;
		}
	}
	q.state = REQ_REJECTED;
	q.decided = c->now;
	snprintf(q.decided_by, sizeof(q.decided_by), "%s", c->actor);
	snprintf(q.why, sizeof(q.why), "%s", c->why);
	if ((rc = store_request_put(txn, &q)) != STORE_OK)
		goto out;
	snprintf(subj, sizeof(subj), "req=%" PRIu64, c->id);
	if ((rc = store_audit_append(txn, c->actor, "request.rejected", subj,
	    c->why, NULL)) != STORE_OK)
		goto out;
	c->rc = REISSUE_OK;
out:
	request_rec_cleanup(&q);
	return rc;
}

/* Loop: the caller learns the outcome; c is freed. */
static void
decide_finish(struct decide_ctx *c, int ok)
{
	c->fn(c->arg, ok, ok ? "" : c->err);
	free(c->der);
	micad_presigned_cleanup(&c->ps);
	free(c);
}

/*
 * Presign thread, in a read transaction: what approve_txn checks before
 * it signs, and the signature (micad.h: signing outside the writer).
 * The write checks it all again (approve_txn with ps.der set).
 */
static enum store_rc
approve_presign_txn(struct store_txn *txn, void *arg)
{
	struct decide_ctx	*c = arg;
	struct request_rec	 q;
	struct cert_rec		 lost;
	X509_NAME		*subject = NULL;
	enum store_rc		 rc;

	memset(&q, 0, sizeof(q));
	memset(&lost, 0, sizeof(lost));
	micad_presigned_cleanup(&c->ps);
	if ((rc = approve_load(c, txn, &q, &lost, &subject)) != STORE_OK)
		goto out;
	rc = micad_issue_presign_sub(c->d, &c->set, txn, q.csr, q.csr_len,
	    q.account, c->set.policy.request_days, subject,
	    reissue_is_enrolment(q.lost_serial), &c->ps, c->err,
	    sizeof(c->err));
	if (rc == STORE_INVALID)
		c->rc = REISSUE_BAD_REQUEST;
	if (rc == STORE_OK)
		crypto_generichash(c->ps_csr, sizeof(c->ps_csr), q.csr,
		    q.csr_len, NULL, 0);
out:
	X509_NAME_free(subject);
	cert_rec_cleanup(&lost);
	request_rec_cleanup(&q);
	return rc;
}

static void
approve_presign_work(void *arg)
{
	struct decide_ctx *c = arg;

	c->ps_rc = store_read(c->d->store, approve_presign_txn, c);
}

static void	decide_written(void *, enum store_rc);

/* Loop: signed (or refused); now the write, which checks again. */
static void
approve_presigned(void *arg)
{
	struct decide_ctx *c = arg;

	if (c->ps_rc != STORE_OK) {
		decide_written(c, c->ps_rc);
		return;
	}
	if (!micad_write(c->d, approve_txn, c, &c->chg, decide_written)) {
		snprintf(c->err, sizeof(c->err), "micad is stopping");
		decide_finish(c, 0);
	}
}

static void
decide_audited(void *arg, enum store_rc rc)
{
	(void)rc;	/* logged by audit_done */
	decide_finish(arg, 0);
}

/* Loop, after the commit; OCSP and the CRLs were updated on the writer. */
static void
decide_written(void *arg, enum store_rc rc)
{
	struct decide_ctx	*c = arg;
	struct reissue		*r = c->d->reissue;
	struct reissue_result	 res;
	struct notify_info	 ni;
	char			 lhex[SERIAL_HEX_LEN], nhex[SERIAL_HEX_LEN];

	if (rc != STORE_OK || c->rc != REISSUE_OK) {
		if (c->err[0] == '\0')
			snprintf(c->err, sizeof(c->err), "store: %s",
			    store_strerror(rc));
		log_warnx("req=%" PRIu64 " %s by %s failed: %s", c->id,
		    c->approve ? "approve" : "reject", c->actor, c->err);
		snprintf(c->audit.actor, sizeof(c->audit.actor), "%s",
		    c->actor);
		c->audit.action = c->approve ? "request.approve_failed" :
		    "request.reject_failed";
		snprintf(c->audit.subject, sizeof(c->audit.subject),
		    "req=%" PRIu64, c->id);
		snprintf(c->audit.details, sizeof(c->audit.details), "%s",
		    c->err);
		if (!audit_alone(c->d, &c->audit, c, decide_audited)) {
			log_warnx("audit %s: micad is stopping",
			    c->audit.action);
			decide_finish(c, 0);
		}
		return;
	}
	if (c->ps.der != NULL) {	/* signed before the write */
		free(c->der);
		c->der = c->ps.der;
		c->der_len = c->ps.der_len;
		c->ps.der = NULL;
	}
	lost_text(lhex, c->lost);
	memset(&res, 0, sizeof(res));
	res.id = c->id;
	if (c->approve) {
		serial_hex(nhex, c->new_serial);
		log_info("req=%" PRIu64 " reissue approved by=%s lost=%s "
		    "new=%s", c->id, c->actor, lhex, nhex);
		res.state = REQ_ISSUED;
		res.cert_der = c->der;
		res.cert_len = c->der_len;
		if (r != NULL) {
			res.chain_der = r->ca_der;
			res.chain_len = r->ca_len;
		}
	} else {
		log_info("req=%" PRIu64 " reissue rejected by=%s lost=%s "
		    "released=%d", c->id, c->actor, lhex, c->changed);
		res.state = REQ_REJECTED;
		res.why = c->why;
	}
	micad_stat_add(c->approve ? MSTAT_REQ_APPROVED : MSTAT_REQ_REJECTED,
	    1);
	memset(&ni, 0, sizeof(ni));
	ni.event = c->approve ? "request.approved" : "request.rejected";
	ni.request_id = c->id;
	ni.account = c->account;
	ni.serial = reissue_is_enrolment(c->lost) ? NULL : c->lost;
	ni.new_serial = c->approve ? c->new_serial : NULL;
	ni.actor = c->actor;
	ni.why = c->approve ? NULL : c->why;
	ni.time = c->now;
	notify_event(c->d->notify, &ni);
	notify_waiters(c->d, &res);
	decide_finish(c, 1);
}

static int
decide(struct micad *d, uint64_t id, const char *actor, const char *why,
    reissue_decide_fn fn, void *arg)
{
	struct decide_ctx	*c;

	if ((c = calloc(1, sizeof(*c))) == NULL) {
		log_warn("reissue decide");
		return 0;
	}
	c->d = d;
	c->id = id;
	snprintf(c->actor, sizeof(c->actor), "%s", actor);
	c->approve = why == NULL;
	snprintf(c->why, sizeof(c->why), "%s", why != NULL ? why : "");
	c->now = time(NULL);
	c->fn = fn;
	c->arg = arg;
	if (!micad_settings_copy(d, &c->set, c->err, sizeof(c->err))) {
		log_warnx("req=%" PRIu64 " %s", id, c->err);
		free(c);
		return 0;
	}
	/* an approval is signed first when there is the pool for it (as
	 * mica-admin issue), so that the writer does not wait for the
	 * signer; else it is signed inside the write */
	if (c->approve && d->presign != NULL) {
		if (!workq_submit(d->presign, approve_presign_work,
		    approve_presigned, c)) {
			free(c);
			return 0;
		}
		return 1;
	}
	if (!micad_write(d, c->approve ? approve_txn : reject_txn, c, &c->chg,
	    decide_written)) {
		free(c);
		return 0;
	}
	return 1;
}

int
reissue_approve(struct micad *d, uint64_t id, const char *actor,
    reissue_decide_fn fn, void *arg)
{
	return decide(d, id, actor, NULL, fn, arg);
}

int
reissue_reject(struct micad *d, uint64_t id, const char *actor,
    const char *why, reissue_decide_fn fn, void *arg)
{
	return decide(d, id, actor, why != NULL ? why : "", fn, arg);
}

/* ---- lookup by token, WAIT ---- */

struct lookup_ctx {
	uint64_t		 id;
	const uint8_t		*hash;		/* NULL: check account */
	const char		*account;
	struct request_rec	 q;
	struct cert_rec		 cert;
	int			 found;
};

static enum store_rc
lookup_txn(struct store_txn *txn, void *arg)
{
	struct lookup_ctx	*c = arg;
	static const uint8_t	 zero[STORE_HASH_LEN];
	enum store_rc		 rc;
	int			 match;

	request_rec_cleanup(&c->q);
	cert_rec_cleanup(&c->cert);
	c->found = 0;
	rc = store_request_get(txn, c->id, &c->q);
	if (rc == STORE_NOTFOUND) {
		/* Same work as a wrong token. */
		if (c->hash != NULL)
			c->found = sodium_memcmp(zero, c->hash,
			    STORE_HASH_LEN) == 2;	/* never true */
		return STORE_OK;
	}
	if (rc != STORE_OK)
		return rc;
	if (c->hash != NULL)
		match = sodium_memcmp(c->q.token_hash, c->hash,
		    STORE_HASH_LEN) == 0;
	else
		match = strcmp(c->q.account, c->account) == 0;
	if (!match)
		return STORE_OK;
	if (c->q.state == REQ_ISSUED) {
		rc = store_cert_get(txn, c->q.new_serial, &c->cert);
		if (rc != STORE_OK)
			return rc;
	}
	c->found = 1;
	return STORE_OK;
}

static void
fill_result(struct reissue *r, struct lookup_ctx *c,
    struct reissue_result *res)
{
	memset(res, 0, sizeof(*res));
	res->id = c->q.id;
	res->state = c->q.state;
	if (c->q.state == REQ_ISSUED) {
		res->cert_der = c->cert.der;
		res->cert_len = c->cert.der_len;
		if (r != NULL) {
			res->chain_der = r->ca_der;
			res->chain_len = r->ca_len;
		}
	} else if (c->q.state == REQ_REJECTED)
		res->why = c->q.why;
}

static enum reissue_rc
lookup(struct micad *d, struct lookup_ctx *c)
{
	enum store_rc	rc;

	if ((rc = store_read(d->store, lookup_txn, c)) != STORE_OK) {
		log_warnx("req=%" PRIu64 " lookup: %s", c->id,
		    store_strerror(rc));
		return REISSUE_INTERNAL;
	}
	return c->found ? REISSUE_OK : REISSUE_NOT_FOUND;
}

enum reissue_rc
reissue_lookup(struct micad *d, uint64_t id,
    const uint8_t token[REISSUE_TOKEN_LEN], reissue_wait_fn fn, void *arg)
{
	struct lookup_ctx	c;
	struct reissue_result	res;
	uint8_t			hash[STORE_HASH_LEN];
	enum reissue_rc		rc;

	memset(&c, 0, sizeof(c));
	token_hash(hash, token);
	c.id = id;
	c.hash = hash;
	if ((rc = lookup(d, &c)) == REISSUE_OK) {
		fill_result(d->reissue, &c, &res);
		fn(arg, &res);
	}
	request_rec_cleanup(&c.q);
	cert_rec_cleanup(&c.cert);
	return rc;
}

enum reissue_rc
reissue_wait(struct micad *d, const char *account, uint64_t id,
    reissue_wait_fn fn, void *arg)
{
	struct lookup_ctx	 c;
	struct reissue_result	 res;
	struct waiter		*w;
	enum reissue_rc		 rc;

	memset(&c, 0, sizeof(c));
	c.id = id;
	c.account = account;
	if ((rc = lookup(d, &c)) != REISSUE_OK)
		goto out;
	if (c.q.state == REQ_ISSUED || c.q.state == REQ_REJECTED) {
		fill_result(d->reissue, &c, &res);
		fn(arg, &res);
		goto out;
	}
	if (d->reissue == NULL || (w = calloc(1, sizeof(*w))) == NULL) {
		rc = REISSUE_INTERNAL;
		goto out;
	}
	w->id = id;
	w->fn = fn;
	w->arg = arg;
	w->next = d->reissue->waiters;
	d->reissue->waiters = w;
out:
	request_rec_cleanup(&c.q);
	cert_rec_cleanup(&c.cert);
	return rc;
}

/* ---- requests left pending by a stop (review = auto) ---- */

#define RESUME_MAX	4096	/* per start; more wait for the next one */

struct resume_ctx {
	uint64_t	ids[RESUME_MAX];
	size_t		num;
	size_t		more;	/* pending beyond RESUME_MAX */
};

static int
resume_cb(const struct request_rec *q, void *arg)
{
	struct resume_ctx *rc = arg;

	if (q->state != REQ_PENDING)
		return 1;
	if (rc->num < RESUME_MAX)
		rc->ids[rc->num++] = q->id;
	else
		rc->more++;
	return 1;
}

static enum store_rc
resume_txn(struct store_txn *txn, void *arg)
{
	struct resume_ctx *rc = arg;

	rc->num = rc->more = 0;
	return store_request_iter(txn, resume_cb, rc);
}

static void
resume_done(void *arg, int ok, const char *err)
{
	uint64_t id = (uint64_t)(uintptr_t)arg;

	if (ok)
		log_info("req=%" PRIu64 " left pending by a stop: approved "
		    "(review = auto)", id);
	else
		log_warnx("req=%" PRIu64 " left pending by a stop: automatic "
		    "approval failed: %s", id, err);
}

int
reissue_resume_auto(struct micad *d)
{
	struct micad_settings	 set;
	struct resume_ctx	*rc = NULL;
	char			 err[CA_ERR_MAX];
	enum store_rc		 src;
	size_t			 i;
	int			 ok = 0;

	if (!micad_settings_copy(d, &set, err, sizeof(err))) {
		log_warnx("resume pending requests: %s", err);
		goto out;
	}
	if (set.policy.review != REVIEW_AUTO) {
		ok = 1;
		goto out;
	}
	if ((rc = calloc(1, sizeof(*rc))) == NULL) {
		log_warn("resume pending requests");
		goto out;
	}
	if ((src = store_read(d->store, resume_txn, rc)) != STORE_OK) {
		log_warnx("resume pending requests: store: %s",
		    store_strerror(src));
		goto out;
	}
	if (rc->num > 0)
		log_info("review = auto: %zu request%s left pending by a stop, "
		    "deciding them now%s", rc->num, rc->num == 1 ? "" : "s",
		    rc->more > 0 ? " (more at the next start)" : "");
	for (i = 0; i < rc->num; i++)
		if (!reissue_approve(d, rc->ids[i], "auto", resume_done,
		    (void *)(uintptr_t)rc->ids[i]))
			log_warnx("req=%" PRIu64 " left pending: approval not "
			    "queued", rc->ids[i]);
	ok = 1;
out:
	free(rc);
	return ok;
}
