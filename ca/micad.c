/*
 * micad.c - what the parts of micad share: signing a certificate inside a
 * store transaction, and the after-commit hook that makes OCSP and the
 * CRLs tell the truth before anyone is told of a status change.
 */
#include <sys/stat.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/x509.h>

#include "ca/ban.h"
#include "ca/ca.h"
#include "ca/micad.h"
#include "ca/notify.h"
#include "ca/restore.h"
#include "common/bytes.h"
#include "common/keyhash.h"
#include "common/log.h"
#include "common/workq.h"
#include "conf/conf.h"
#include "crl/crl.h"
#include "ocsp/ocsp.h"
#include "store/store.h"

static _Atomic uint64_t stats[MSTAT_COUNT];
/* Guards struct micad's settings and has_settings. */
static pthread_mutex_t settings_mtx = PTHREAD_MUTEX_INITIALIZER;

void
micad_stat_add(enum micad_stat s, uint64_t n)
{
	if ((unsigned)s < MSTAT_COUNT)
		atomic_fetch_add(&stats[s], n);
}

uint64_t
micad_stat_get(enum micad_stat s)
{
	return (unsigned)s < MSTAT_COUNT ? atomic_load(&stats[s]) : 0;
}

static const char *
crl_reason_name(int r)
{
	static const char *names[] = {
		"unspecified", "keyCompromise", "cACompromise",
		"affiliationChanged", "superseded", "cessationOfOperation",
		"certificateHold", "", "removeFromCRL", "privilegeWithdrawn",
		"aACompromise",
	};

	if (r < 0 || r >= (int)(sizeof(names) / sizeof(names[0])))
		return "unknown";
	return names[r];
}

struct changed_read {
	const uint8_t	*serial;
	struct cert_state st;
	char		 account[STORE_NAME_MAX + 1];
};

static enum store_rc
changed_txn(struct store_txn *txn, void *arg)
{
	struct changed_read *c = arg;
	struct cert_rec rec;
	enum store_rc rc;

	memset(&rec, 0, sizeof(rec));
	if ((rc = store_cert_get(txn, c->serial, &rec)) == STORE_OK) {
		c->st = rec.st;
		snprintf(c->account, sizeof(c->account), "%s", rec.account);
	}
	cert_rec_cleanup(&rec);
	return rc;
}

/* The event for the committed state: read back, so every caller (admin
 * revoke/hold/unhold, reissue approve, hold on request) is covered. */
static void
status_notify(struct micad *d, const uint8_t serial[16])
{
	struct changed_read c;
	struct notify_info ni;

	if (d->notify == NULL)
		return;
	memset(&c, 0, sizeof(c));
	c.serial = serial;
	if (store_read(d->store, changed_txn, &c) != STORE_OK)
		return;
	memset(&ni, 0, sizeof(ni));
	ni.serial = serial;
	ni.account = c.account;
	switch (c.st.status) {
	case CERT_REVOKED:
		ni.event = "cert.revoked";
		ni.reason = crl_reason_name(c.st.reason);
		break;
	case CERT_HOLD:
		ni.event = "cert.hold";
		ni.reason = crl_reason_name(c.st.reason);
		break;
	default:
		ni.event = "cert.released";
		break;
	}
	ni.time = c.st.revoked_at;
	notify_event(d->notify, &ni);
}

/* OCSP first, then one delta CRL rebuild for all of them, then tell. */
static void
changed_apply(struct micad *d, const uint8_t (*serials)[16], int n)
{
	struct timespec t0, t1;
	char hex[SERIAL_HEX_LEN];
	int i, ok;

	if (n <= 0)
		return;
	if (d->ocsp != NULL)
		for (i = 0; i < n; i++)
			ocsp_invalidate(d->ocsp, serials[i]);
	if (d->crl != NULL) {
		clock_gettime(CLOCK_MONOTONIC, &t0);
		ok = crl_service_changed(d->crl);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		micad_stat_add(MSTAT_CRL_DELTA_BUILDS, 1);
		micad_stat_add(MSTAT_CRL_DELTA_USEC, (uint64_t)
		    ((t1.tv_sec - t0.tv_sec) * 1000000 +
		    (t1.tv_nsec - t0.tv_nsec) / 1000));
		if (!ok) {
			micad_stat_add(MSTAT_CRL_DELTA_FAILED, 1);
			serial_hex(hex, serials[0]);
			log_warnx("serial=%s: delta CRL rebuild failed; "
			    "retried within a second", hex);
		}
	}
	for (i = 0; i < n; i++)
		status_notify(d, serials[i]);
	/* after the notifications: a copy for a later restore */
	restore_keep_crls(d->crl, d->crl_keep_dir, RESTORE_KEEP_FULL,
	    RESTORE_KEEP_DELTA);
}

/*
 * The HTTP caches drop their answers for the serials in e (one BAN per
 * cache for the whole commit batch), bounded by [http] ban_timeout_ms;
 * a cache that fails is counted and logged by ban_send, and the
 * acknowledgement goes on.
 */
static void
changed_ban(struct micad *d, struct ban_expr *e)
{
	if (d->ban != NULL && e->num > 0)
		ban_send_expr(d->ban, e);
}

void
micad_status_changed(struct micad *d, const uint8_t serial[16])
{
	uint8_t one[1][16];
	struct ban_expr e;

	memcpy(one[0], serial, 16);
	changed_apply(d, (const uint8_t (*)[16])one, 1);
	ban_expr_init(&e);
	ban_expr_add(&e, serial);
	changed_ban(d, &e);
}

int
micad_changed_add(struct micad_changed *c, const uint8_t serial[16])
{
	int i;

	for (i = 0; i < c->n; i++)
		if (memcmp(c->serial[i], serial, 16) == 0)
			return 1;
	if (c->n >= MICAD_CHANGED_MAX)
		return 0;
	memcpy(c->serial[c->n++], serial, 16);
	return 1;
}

/* ---- settings a SIGHUP may change ---- */

int
micad_settings_from_conf(struct micad_settings *out,
    const struct mica_conf *c, char *err, size_t err_len)
{
	int i, rc = 0;

	memset(out, 0, sizeof(*out));
	if (!ca_profile_parse(&out->profile, c->ca.key_usage,
	    c->ca.ext_key_usage, err, err_len))
		goto out;
	out->profile.copy_san = c->ca.copy_san;
	for (i = 0; i < c->num_profiles; i++) {
		struct micad_profile *mp = &out->profiles[i];
		char e[256];

		snprintf(mp->name, sizeof(mp->name), "%s",
		    c->profiles[i].name);
		if (!ca_profile_parse(&mp->profile, c->profiles[i].key_usage,
		    c->profiles[i].ext_key_usage, e, sizeof(e))) {
			snprintf(err, err_len, "[profile.%s]: %s", mp->name, e);
			goto out;
		}
		mp->profile.copy_san = c->profiles[i].copy_san;
		mp->default_days = c->profiles[i].default_days;
	}
	out->num_profiles = c->num_profiles;
	out->policy = c->policy;
	out->default_days = c->ca.default_days;
	out->renew_before_days = c->ca.renew_before_days;
	rc = 1;
 out:
	return rc;
}

void
micad_settings_set(struct micad *d, const struct micad_settings *s)
{
	pthread_mutex_lock(&settings_mtx);
	d->settings = *s;
	d->has_settings = 1;
	pthread_mutex_unlock(&settings_mtx);
}

int
micad_settings_copy(struct micad *d, struct micad_settings *out, char *err,
    size_t err_len)
{
	int rc = 1;

	pthread_mutex_lock(&settings_mtx);
	if (d->has_settings)
		*out = d->settings;
	else
		rc = micad_settings_from_conf(out, d->conf, err, err_len);
	pthread_mutex_unlock(&settings_mtx);
	return rc;
}

/* ---- the writer thread ---- */

/*
 * Group commit.  Every micad_write is queued twice: on the writer's
 * workq (for the done callback on the loop, in order) and on wq_pending.
 * The writer's work for the oldest job takes everything pending (up to
 * WRITE_BATCH_MAX) and commits it as one batch (store_write_batch: one
 * journal fsync, one store fsync); the work items of the jobs it took
 * then find them done.  While a batch is being fsync'd, new jobs queue
 * up and form the next one: the more clients wait, the bigger the batch.
 */
#define WRITE_BATCH_MAX	256

struct wjob {
	struct micad		*d;
	store_txn_fn		 fn;
	void			*arg;
	struct micad_changed	*changed;
	micad_done_fn		 done;
	enum store_rc		 rc;
	int			 committed;	/* writer thread only */
	struct wjob		*next;		/* wq_pending */
};

static pthread_mutex_t wq_mtx = PTHREAD_MUTEX_INITIALIZER;
static struct wjob *wq_head, *wq_tail;

/* store_write may run the transaction again (map grown): start empty. */
static enum store_rc
wjob_txn(struct store_txn *txn, void *arg)
{
	struct wjob *j = arg;

	if (j->changed != NULL)
		j->changed->n = 0;
	return j->fn(txn, j->arg);
}

/* Writer thread: commit, then make OCSP and the CRLs tell the truth. */
static void
wjob_work(void *arg)
{
	struct wjob *j = arg, *batch[WRITE_BATCH_MAX], *b;
	struct store_job sj[WRITE_BATCH_MAX];
	struct ban_expr e;
	size_t n = 0, i;
	int k;

	if (j->committed)
		return;		/* an earlier batch took it */
	pthread_mutex_lock(&wq_mtx);
	while (n < WRITE_BATCH_MAX && (b = wq_head) != NULL) {
		wq_head = b->next;
		if (wq_head == NULL)
			wq_tail = NULL;
		batch[n++] = b;
	}
	pthread_mutex_unlock(&wq_mtx);
	for (i = 0; i < n; i++) {
		sj[i].fn = wjob_txn;
		sj[i].arg = batch[i];
		sj[i].rc = STORE_IO;
	}
	store_write_batch(j->d->store, sj, n);
	ban_expr_init(&e);
	for (i = 0; i < n; i++) {
		b = batch[i];
		b->rc = sj[i].rc;
		b->committed = 1;
		if (b->rc == STORE_OK && b->changed != NULL) {
			changed_apply(b->d,
			    (const uint8_t (*)[16])b->changed->serial,
			    b->changed->n);
			for (k = 0; k < b->changed->n; k++)
				ban_expr_add(&e, b->changed->serial[k]);
		}
	}
	/* before wjob_done tells anyone: no cache serves the old answer */
	changed_ban(j->d, &e);
	micad_stat_add(MSTAT_WRITE_COMMITS, 1);
	if (n > 1)
		micad_stat_add(MSTAT_WRITE_GROUPED, n - 1);
}

/* Loop: now anyone may be told. */
static void
wjob_done(void *arg)
{
	struct wjob *j = arg;

	if (j->done != NULL)
		j->done(j->arg, j->rc);
	free(j);
}

int
micad_write(struct micad *d, store_txn_fn fn, void *arg,
    struct micad_changed *changed, micad_done_fn done)
{
	struct wjob *j;
	int rc = 0;

	if (d->writer == NULL || (j = calloc(1, sizeof(*j))) == NULL)
		goto out;
	j->d = d;
	j->fn = fn;
	j->arg = arg;
	j->changed = changed;
	j->done = done;
	j->rc = STORE_IO;
	/* Submitted and made pending under wq_mtx, so the writer cannot
	 * look for pending jobs in between.  The workq is FIFO with one
	 * thread: the oldest pending job's work item always runs first and
	 * takes it.  (Lock order: wq_mtx, then the workq's own.) */
	pthread_mutex_lock(&wq_mtx);
	if (!workq_submit(d->writer, wjob_work, wjob_done, j)) {
		pthread_mutex_unlock(&wq_mtx);
		free(j);
		goto out;
	}
	if (wq_tail != NULL)
		wq_tail->next = j;
	else
		wq_head = j;
	wq_tail = j;
	pthread_mutex_unlock(&wq_mtx);
	rc = 1;
 out:
	return rc;
}

int
micad_issue_txn(struct micad *d, struct store_txn *txn,
    const uint8_t *csr_der, size_t csr_len, const char *account, int days,
    const char *actor, uint8_t out_serial[16], uint8_t **out_der,
    size_t *out_len, char *err, size_t err_len)
{
	return micad_issue_txn_opts(d, txn, csr_der, csr_len, account, days,
	    actor, NULL, out_serial, out_der, out_len, err, err_len);
}

/*
 * The public keys of mica's own certificates (OCSP signer, TLS server),
 * read once per file version: the check runs in the writer's
 * transaction for every issuance, and parsing the PEM file each time cost
 * more than the issuance itself.  A renewal replaces the file by rename,
 * so a new inode, size or mtime reads it again.
 */
#define OWNKEY_SLOTS	4

struct ownkey {
	char		 path[CONF_PATH_MAX];
	dev_t		 dev;
	ino_t		 ino;
	off_t		 size;
	struct timespec	 mtim;
	EVP_PKEY	*pub;
};

static pthread_mutex_t ownkey_mtx = PTHREAD_MUTEX_INITIALIZER;
static struct ownkey ownkeys[OWNKEY_SLOTS];

/* The cached public key of the certificate file path (an up-ref'd copy,
 * EVP_PKEY_free), or NULL when it cannot be read (logged). */
static EVP_PKEY *
ownkey_get(const char *path)
{
	struct ownkey *k = NULL;
	struct stat sb;
	X509 *x = NULL;
	EVP_PKEY *pub = NULL;
	char e[CA_ERR_MAX];
	size_t i;

	if (strlen(path) >= sizeof(ownkeys[0].path))
		return NULL;
	pthread_mutex_lock(&ownkey_mtx);
	for (i = 0; i < OWNKEY_SLOTS && k == NULL; i++)
		if (strcmp(ownkeys[i].path, path) == 0)
			k = &ownkeys[i];
	for (i = 0; i < OWNKEY_SLOTS && k == NULL; i++)
		if (ownkeys[i].path[0] == '\0')
			k = &ownkeys[i];
	if (k == NULL)
		k = &ownkeys[0];	/* more own files than slots: reuse */
	if (stat(path, &sb) == -1) {
		log_warn("own-key check: %s", path);
		goto out;
	}
	if (k->pub == NULL || strcmp(k->path, path) != 0 ||
	    k->dev != sb.st_dev || k->ino != sb.st_ino ||
	    k->size != sb.st_size || k->mtim.tv_sec != sb.st_mtim.tv_sec ||
	    k->mtim.tv_nsec != sb.st_mtim.tv_nsec) {
		EVP_PKEY_free(k->pub);
		memset(k, 0, sizeof(*k));
		if (!ca_cert_read(&x, path, e, sizeof(e))) {
			log_warnx("own-key check: %s", e);
			goto out;
		}
		if ((k->pub = X509_get_pubkey(x)) == NULL)
			goto out;
		memcpy(k->path, path, strlen(path) + 1);
		k->dev = sb.st_dev;
		k->ino = sb.st_ino;
		k->size = sb.st_size;
		k->mtim = sb.st_mtim;
	}
	if (EVP_PKEY_up_ref(k->pub))
		pub = k->pub;
 out:
	pthread_mutex_unlock(&ownkey_mtx);
	X509_free(x);
	return pub;
}

/* 1 if key is the public key of the certificate in the file path. */
static int
key_of_cert_file(EVP_PKEY *key, const char *path)
{
	EVP_PKEY *pub;
	int same = 0;

	if (path == NULL || *path == '\0')
		return 0;
	if ((pub = ownkey_get(path)) != NULL)
		same = EVP_PKEY_eq(key, pub) == 1;
	ERR_clear_error();	/* EVP_PKEY_eq of different types */
	EVP_PKEY_free(pub);
	return same;
}

/* The compromised-key index for a key's hash (keyhash_pkey). */
static int
key_bad_check(struct store_txn *txn, const uint8_t hash[KEYHASH_LEN],
    char *err, size_t err_len)
{
	struct bad_key bk;
	char hex[SERIAL_HEX_LEN];
	enum store_rc rc;

	rc = store_bad_key_get(txn, hash, &bk);
	if (rc == STORE_NOTFOUND)
		return STORE_OK;
	if (rc != STORE_OK)
		return rc;
	serial_hex(hex, bk.serial);
	if (bk.why == BADKEY_COMPROMISE)
		snprintf(err, err_len, "CSR: key: the public key was revoked "
		    "for keyCompromise (certificate %s) and is never certified "
		    "again; make a new key", hex);
	else
		snprintf(err, err_len, "CSR: key: the public key is the key "
		    "of lost certificate %s and is never certified again; "
		    "make a new key", hex);
	return STORE_INVALID;
}

/* micad_csr_key_check for a CSR's public key (NULL: not decodable);
 * the key's hash goes to hash and, when out_spki is not NULL, the
 * canonical SPKI it hashed to *out_spki (OPENSSL_free). */
static int
key_check(struct micad *d, struct store_txn *txn, const struct ca_csr *csr,
    uint8_t hash[KEYHASH_LEN], unsigned char **out_spki,
    size_t *out_spki_len, char *err, size_t err_len)
{
	EVP_PKEY *key = ca_csr_pubkey(csr);
	const char *whose = NULL;
	const uint8_t *spki;
	size_t spki_len;
	unsigned int n = 0;

	if (key == NULL) {
		snprintf(err, err_len, "CSR: RFC 2986 section 4.1: the "
		    "subjectPKInfo cannot be decoded");
		return STORE_INVALID;
	}
	/* public keys from the certificates: this process holds no
	 * private key (the signer process does) */
	if (EVP_PKEY_eq(key, X509_get0_pubkey(ca_signer_get0_cert(
	    d->signer))) == 1)
		whose = "the CA's own key";
	else if (EVP_PKEY_eq(key, X509_get0_pubkey(ca_signer_get0_ocsp_cert(
	    d->signer))) == 1 ||
	    key_of_cert_file(key, d->conf->ca.ocsp_cert))
		whose = "the OCSP signer's key";
	else if (key_of_cert_file(key, d->conf->ca.tls_cert))
		whose = "the TLS server certificate's key";
	ERR_clear_error();
	if (whose != NULL) {
		snprintf(err, err_len, "CSR: key: the public key is %s; a "
		    "subscriber certificate needs a key of its own", whose);
		return STORE_INVALID;
	}
	/* the CSR's own bytes when they are the canonical SPKI: the same
	 * hash as encoding the key again, without OpenSSL's encoder */
	if (ca_csr_spki_canonical(csr) &&
	    (spki = ca_csr_spki(csr, &spki_len)) != NULL) {
		if (!EVP_Digest(spki, spki_len, hash, &n, EVP_sha256(),
		    NULL) || n != KEYHASH_LEN) {
			log_ssl("keyhash: SubjectPublicKeyInfo");
			snprintf(err, err_len, "CSR: key: cannot hash the "
			    "public key");
			return STORE_INVALID;
		}
		if (out_spki != NULL) {
			if ((*out_spki = OPENSSL_memdup(spki, spki_len)) ==
			    NULL)
				fatalx("OPENSSL_memdup");
			*out_spki_len = spki_len;
		}
	} else if (!keyhash_pkey_der(hash, key, out_spki, out_spki_len)) {
		snprintf(err, err_len, "CSR: key: cannot hash the public key");
		return STORE_INVALID;
	}
	return key_bad_check(txn, hash, err, err_len);
}

int
micad_csr_key_check(struct micad *d, struct store_txn *txn,
    const struct ca_csr *req, char *err, size_t err_len)
{
	uint8_t hash[KEYHASH_LEN];

	return key_check(d, txn, req, hash, NULL, NULL, err, err_len);
}

/* The account's allowed subject as mica encodes it; NULL = any. */
static int
account_subject(X509_NAME **out, const struct account_rec *acct, char *err,
    size_t err_len)
{
	char perr[128];

	*out = NULL;
	if (acct->subject[0] == '\0')
		return 1;
	if ((*out = ca_subject_parse(acct->subject, perr, sizeof(perr))) ==
	    NULL) {
		snprintf(err, err_len, "the account's allowed subject is "
		    "invalid: %s", perr);
		return 0;
	}
	return 1;
}

const struct micad_profile *
micad_profile_find(const struct micad_settings *s, const char *name)
{
	int i;

	for (i = 0; i < s->num_profiles; i++)
		if (strcmp(s->profiles[i].name, name) == 0)
			return &s->profiles[i];
	return NULL;
}

int
micad_csr_sans_check(const struct micad_settings *s,
    const struct ca_csr *req, const char *acct_sans, char *err,
    size_t err_len)
{
	if (!s->profile.copy_san)
		return 1;	/* nothing of the CSR's SANs is copied */
	return ca_csr_san_allowed(req, acct_sans, err, err_len);
}

/*
 * Who asked: the operator (mica-admin issue: an account without a SAN
 * list gets the CSR's SANs unchecked, as the operator reviewed the CSR)
 * or a subscriber (only SANs on the account's list).
 */
enum issue_origin { ISSUE_OPERATOR, ISSUE_SUBSCRIBER };

static int issue_core(struct micad *, const struct micad_settings *,
    struct store_txn *, const uint8_t *, size_t, const char *, int,
    const char *, const X509_NAME *, enum issue_origin,
    const struct micad_issue_opts *, uint8_t[16], uint8_t **, size_t *,
    char *, size_t);

int
micad_issue_txn_with(struct micad *d, const struct micad_settings *s,
    struct store_txn *txn, const uint8_t *csr_der, size_t csr_len,
    const char *account, int days, const char *actor,
    const X509_NAME *subject, uint8_t out_serial[16], uint8_t **out_der,
    size_t *out_len, char *err, size_t err_len)
{
	return issue_core(d, s, txn, csr_der, csr_len, account, days, actor,
	    subject, ISSUE_SUBSCRIBER, NULL, out_serial, out_der, out_len,
	    err, err_len);
}

int
micad_issue_txn_enrol(struct micad *d, const struct micad_settings *s,
    struct store_txn *txn, const uint8_t *csr_der, size_t csr_len,
    const char *account, int days, const char *actor,
    uint8_t out_serial[16], uint8_t **out_der, size_t *out_len, char *err,
    size_t err_len)
{
	struct micad_issue_opts o;

	memset(&o, 0, sizeof(o));
	o.enrolment = 1;
	return issue_core(d, s, txn, csr_der, csr_len, account, days, actor,
	    NULL, ISSUE_SUBSCRIBER, &o, out_serial, out_der, out_len, err,
	    err_len);
}

/* The settings for an operator's issuance: [ca] or o->profile's. */
static int
opts_settings(struct micad *d, const struct micad_issue_opts *o,
    struct micad_settings *s, char *err, size_t err_len)
{
	const struct micad_profile *mp;
	char names[256] = "";
	size_t len;
	int i;

	err[0] = '\0';
	if (!micad_settings_copy(d, s, err, err_len))
		return 0;
	if (o != NULL && o->profile != NULL) {
		if ((mp = micad_profile_find(s, o->profile)) == NULL) {
			for (i = 0; i < s->num_profiles; i++) {
				len = strlen(names);
				snprintf(names + len, sizeof(names) - len,
				    "%s%s", i ? ", " : "", s->profiles[i].name);
			}
			snprintf(err, err_len, "--profile %s: no such profile "
			    "in the configuration (%s%s)", o->profile,
			    s->num_profiles ? "configured: " : "none configured;"
			    " add a [profile.NAME] section", names);
			return 0;
		}
		s->profile = mp->profile;
		s->default_days = mp->default_days;
	}
	return 1;
}

int
micad_issue_txn_opts(struct micad *d, struct store_txn *txn,
    const uint8_t *csr_der, size_t csr_len, const char *account, int days,
    const char *actor, const struct micad_issue_opts *o,
    uint8_t out_serial[16], uint8_t **out_der, size_t *out_len, char *err,
    size_t err_len)
{
	struct micad_settings s;

	if (!opts_settings(d, o, &s, err, err_len))
		return STORE_INVALID;
	return issue_core(d, &s, txn, csr_der, csr_len, account, days, actor,
	    NULL, ISSUE_OPERATOR, o, out_serial, out_der, out_len, err,
	    err_len);
}

/*
 * The signing half of an issuance (txn may be a read transaction): the
 * account, the CSR and key rules, then the signature with a fresh random
 * serial.  What the storing half re-checks is kept in ps.
 */
static int
issue_sign(struct micad *d, const struct micad_settings *s,
    struct store_txn *txn, const uint8_t *csr_der, size_t csr_len,
    const char *account, int days, const X509_NAME *subject,
    enum issue_origin origin, const struct micad_issue_opts *o,
    struct micad_presigned *ps, char *err, size_t err_len)
{
	struct account_rec acct;
	struct ca_csr_policy pol;
	struct ca_issue_params ip;
	struct ca_issued iss;
	struct ca_csr *req = NULL;
	X509_NAME *acct_subj = NULL;
	unsigned char *spki = NULL;
	size_t spki_len = 0;
	enum store_rc rc;

	memset(&acct, 0, sizeof(acct));
	memset(&iss, 0, sizeof(iss));
	err[0] = '\0';
	if ((rc = store_account_get(txn, account, &acct)) != STORE_OK)
		goto out;
	memset(&pol, 0, sizeof(pol));
	if (o == NULL || !o->enrolment)
		pol.allowed_subject = acct.subject;
	rc = STORE_INVALID;
	if (!ca_csr_check(&req, csr_der, csr_len, &pol, err, err_len))
		goto out;
	if ((rc = key_check(d, txn, req, ps->keyhash, &spki, &spki_len, err,
	    err_len)) != STORE_OK)
		goto out;
	rc = STORE_INVALID;
	/* the CSR's SANs, when they are what the certificate gets */
	if ((o == NULL || o->num_sans == 0) && s->profile.copy_san &&
	    (origin == ISSUE_SUBSCRIBER || acct.sans[0] != '\0') &&
	    !micad_csr_sans_check(s, req, acct.sans, err, err_len))
		goto out;
	if (subject == NULL &&
	    !account_subject(&acct_subj, &acct, err, err_len))
		goto out;
	memset(&ip, 0, sizeof(ip));
	ip.req = req;
	ip.subject = subject != NULL ? subject : acct_subj;
	ip.days = days > 0 ? days : s->default_days;
	ip.profile = &s->profile;
	ip.base_url = d->conf->ca.http_url;
	ip.spki = spki;
	ip.spki_len = spki_len;
	ip.der_only = 1;	/* the DER is what is stored and sent */
	if (o != NULL && o->num_sans > 0) {
		ip.sans = o->sans;
		ip.num_sans = o->num_sans;
	}
	ca_random_serial(ip.serial);
	if (!ca_issue(d->signer, &iss, &ip, err, err_len))
		goto out;
	memcpy(ps->serial, ip.serial, sizeof(ps->serial));
	ps->not_before = iss.not_before;
	ps->not_after = iss.not_after;
	ps->der = iss.der;
	ps->der_len = iss.der_len;
	iss.der = NULL;
	snprintf(ps->account, sizeof(ps->account), "%s", account);
	memcpy(ps->acct_subject, acct.subject, sizeof(ps->acct_subject));
	memcpy(ps->acct_sans, acct.sans, sizeof(ps->acct_sans));
	/* what the operator chose is on the record too */
	if (o != NULL && (o->profile != NULL || o->num_sans > 0))
		snprintf(ps->det, sizeof(ps->det), "account=%s days=%d "
		    "profile=%s sans=%zu", account, ip.days, o->profile != NULL ?
		    o->profile : "(ca)", o->num_sans);
	else
		snprintf(ps->det, sizeof(ps->det), "account=%s days=%d",
		    account, ip.days);
	rc = STORE_OK;
 out:
	ca_issued_cleanup(&iss);
	OPENSSL_free(spki);
	X509_NAME_free(acct_subj);
	ca_csr_free(req);
	account_rec_wipe(&acct);
	return rc;
}

/*
 * The storing half, in the write transaction.  recheck: the signing half
 * ran in an earlier transaction, so what it decided on must still hold
 * (the account is there with the same allowed subject and SANs, the key
 * is not in the compromised-key index since: by its hash, as the
 * encoding of keys costs more than the rest of the write; mica's own
 * keys change only by renewals, whose new keys come from no CSR).  STORE_EXISTS: the serial is taken.
 */
static int
issue_store(struct store_txn *txn,
    const struct micad_presigned *ps, const char *actor, int recheck,
    char *err, size_t err_len)
{
	struct account_rec acct;
	struct cert_rec rec;
	char hex[SERIAL_HEX_LEN];
	enum store_rc rc;

	if (recheck) {
		memset(&acct, 0, sizeof(acct));
		rc = store_account_get(txn, ps->account, &acct);
		if (rc == STORE_OK && (strcmp(acct.subject,
		    ps->acct_subject) != 0 || strcmp(acct.sans,
		    ps->acct_sans) != 0)) {
			snprintf(err, err_len, "the account \"%s\" was "
			    "changed while the certificate was being signed; "
			    "nothing was issued, ask again", ps->account);
			rc = STORE_INVALID;
		}
		account_rec_wipe(&acct);
		if (rc != STORE_OK)
			return rc;
		if ((rc = key_bad_check(txn, ps->keyhash, err, err_len)) !=
		    STORE_OK)
			return rc;
	}
	memset(&rec, 0, sizeof(rec));
	memcpy(rec.serial, ps->serial, sizeof(rec.serial));
	rec.st.status = CERT_GOOD;
	rec.st.not_before = ps->not_before;
	rec.st.not_after = ps->not_after;
	rec.issued_at = time(NULL);
	snprintf(rec.account, sizeof(rec.account), "%s", ps->account);
	rec.der = ps->der;
	rec.der_len = ps->der_len;
	if ((rc = store_cert_add(txn, &rec)) != STORE_OK)
		return rc;
	serial_hex(hex, ps->serial);
	return store_audit_append(txn, actor, "cert.issue", hex, ps->det,
	    NULL);
}

void
micad_presigned_cleanup(struct micad_presigned *ps)
{
	free(ps->der);
	memset(ps, 0, sizeof(*ps));
}

static int
issue_core(struct micad *d, const struct micad_settings *s,
    struct store_txn *txn, const uint8_t *csr_der, size_t csr_len,
    const char *account, int days, const char *actor,
    const X509_NAME *subject, enum issue_origin origin,
    const struct micad_issue_opts *o, uint8_t out_serial[16],
    uint8_t **out_der, size_t *out_len, char *err, size_t err_len)
{
	struct micad_presigned ps;
	int tries;
	enum store_rc rc = STORE_INVALID;

	memset(&ps, 0, sizeof(ps));
	for (tries = 0; tries < 4; tries++) {
		micad_presigned_cleanup(&ps);
		if ((rc = issue_sign(d, s, txn, csr_der, csr_len, account,
		    days, subject, origin, o, &ps, err, err_len)) != STORE_OK)
			goto out;
		rc = issue_store(txn, &ps, actor, 0, err, err_len);
		if (rc != STORE_EXISTS)	/* a serial is never reused */
			break;
	}
	if (rc != STORE_OK)
		goto out;
	memcpy(out_serial, ps.serial, 16);
	*out_der = ps.der;
	*out_len = ps.der_len;
	ps.der = NULL;
 out:
	micad_presigned_cleanup(&ps);
	return rc;
}

int
micad_issue_presign(struct micad *d, struct store_txn *txn,
    const uint8_t *csr_der, size_t csr_len, const char *account, int days,
    const struct micad_issue_opts *o, struct micad_presigned *ps, char *err,
    size_t err_len)
{
	struct micad_settings s;

	memset(ps, 0, sizeof(*ps));
	if (!opts_settings(d, o, &s, err, err_len))
		return STORE_INVALID;
	return issue_sign(d, &s, txn, csr_der, csr_len, account, days, NULL,
	    ISSUE_OPERATOR, o, ps, err, err_len);
}

int
micad_issue_presign_sub(struct micad *d, const struct micad_settings *s,
    struct store_txn *txn, const uint8_t *csr_der, size_t csr_len,
    const char *account, int days, const X509_NAME *subject, int enrolment,
    struct micad_presigned *ps, char *err, size_t err_len)
{
	struct micad_issue_opts o;

	memset(ps, 0, sizeof(*ps));
	memset(&o, 0, sizeof(o));
	o.enrolment = enrolment;
	/* as issue_core is called by micad_issue_txn_with and _enrol */
	return issue_sign(d, s, txn, csr_der, csr_len, account, days, subject,
	    ISSUE_SUBSCRIBER, enrolment ? &o : NULL, ps, err, err_len);
}

int
micad_issue_presigned_txn(struct micad *d, struct store_txn *txn,
    const struct micad_presigned *ps, const char *actor, char *err,
    size_t err_len)
{
	enum store_rc rc;

	(void)d;
	err[0] = '\0';
	rc = issue_store(txn, ps, actor, 1, err, err_len);
	if (rc == STORE_EXISTS) {
		snprintf(err, err_len, "the random serial was taken; nothing "
		    "was issued, ask again");
		rc = STORE_INVALID;
	}
	return rc;
}
