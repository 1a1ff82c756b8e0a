/*
 * micad.c - what the parts of micad share: signing a certificate inside a
 * store transaction, and the after-commit hook that makes OCSP and the
 * CRLs tell the truth before anyone is told of a status change.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/x509.h>

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

void
micad_status_changed(struct micad *d, const uint8_t serial[16])
{
	uint8_t one[1][16];

	memcpy(one[0], serial, 16);
	changed_apply(d, (const uint8_t (*)[16])one, 1);
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
	int rc = 0;

	memset(out, 0, sizeof(*out));
	if (!ca_profile_parse(&out->profile, c->ca.key_usage,
	    c->ca.ext_key_usage, err, err_len))
		goto out;
	out->profile.copy_san = c->ca.copy_san;
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

struct wjob {
	struct micad		*d;
	store_txn_fn		 fn;
	void			*arg;
	struct micad_changed	*changed;
	micad_done_fn		 done;
	enum store_rc		 rc;
};

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
	struct wjob *j = arg;

	j->rc = store_write(j->d->store, wjob_txn, j);
	if (j->rc == STORE_OK && j->changed != NULL)
		changed_apply(j->d, (const uint8_t (*)[16])j->changed->serial,
		    j->changed->n);
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
	if (!workq_submit(d->writer, wjob_work, wjob_done, j)) {
		free(j);
		goto out;
	}
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
	struct micad_settings s;

	err[0] = '\0';
	if (!micad_settings_copy(d, &s, err, err_len))
		return STORE_INVALID;
	return micad_issue_txn_with(d, &s, txn, csr_der, csr_len, account,
	    days, actor, NULL, out_serial, out_der, out_len, err, err_len);
}

/* 1 if key is the public key of the certificate in the file path. */
static int
key_of_cert_file(EVP_PKEY *key, const char *path)
{
	X509 *x = NULL;
	char e[CA_ERR_MAX];
	int same = 0;

	if (path == NULL || *path == '\0')
		return 0;
	if (!ca_cert_read(&x, path, e, sizeof(e))) {
		log_warnx("own-key check: %s", e);
		goto out;
	}
	same = EVP_PKEY_eq(key, X509_get0_pubkey(x)) == 1;
 out:
	ERR_clear_error();	/* EVP_PKEY_eq of different types */
	X509_free(x);
	return same;
}

int
micad_csr_key_check(struct micad *d, struct store_txn *txn, X509_REQ *req,
    char *err, size_t err_len)
{
	EVP_PKEY *key = X509_REQ_get0_pubkey(req);
	struct bad_key bk;
	uint8_t hash[KEYHASH_LEN];
	char hex[SERIAL_HEX_LEN];
	const char *whose = NULL;
	enum store_rc rc;

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
	if (!keyhash_pkey(hash, key)) {
		snprintf(err, err_len, "CSR: key: cannot hash the public key");
		return STORE_INVALID;
	}
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

int
micad_issue_txn_with(struct micad *d, const struct micad_settings *s,
    struct store_txn *txn, const uint8_t *csr_der, size_t csr_len,
    const char *account, int days, const char *actor,
    const X509_NAME *subject, uint8_t out_serial[16], uint8_t **out_der,
    size_t *out_len, char *err, size_t err_len)
{
	struct account_rec acct;
	struct ca_csr_policy pol;
	struct ca_issue_params ip;
	struct ca_issued iss;
	struct cert_rec rec;
	X509_REQ *req = NULL;
	X509_NAME *acct_subj = NULL;
	char hex[SERIAL_HEX_LEN], det[STORE_NAME_MAX + 64];
	int tries;
	enum store_rc rc;

	memset(&acct, 0, sizeof(acct));
	memset(&iss, 0, sizeof(iss));
	err[0] = '\0';
	if ((rc = store_account_get(txn, account, &acct)) != STORE_OK)
		goto out;
	memset(&pol, 0, sizeof(pol));
	pol.allowed_subject = acct.subject;
	rc = STORE_INVALID;
	if (!ca_csr_check(&req, csr_der, csr_len, &pol, err, err_len))
		goto out;
	if ((rc = micad_csr_key_check(d, txn, req, err, err_len)) !=
	    STORE_OK)
		goto out;
	rc = STORE_INVALID;
	if (subject == NULL &&
	    !account_subject(&acct_subj, &acct, err, err_len))
		goto out;
	memset(&ip, 0, sizeof(ip));
	ip.req = req;
	ip.subject = subject != NULL ? subject : acct_subj;
	ip.days = days > 0 ? days : s->default_days;
	ip.profile = &s->profile;
	ip.base_url = d->conf->ca.http_url;
	for (tries = 0; tries < 4; tries++) {
		ca_random_serial(ip.serial);
		ca_issued_cleanup(&iss);
		if (!ca_issue(d->signer, &iss, &ip, err, err_len)) {
			rc = STORE_INVALID;
			goto out;
		}
		memset(&rec, 0, sizeof(rec));
		memcpy(rec.serial, ip.serial, sizeof(rec.serial));
		rec.st.status = CERT_GOOD;
		rec.st.not_before = iss.not_before;
		rec.st.not_after = iss.not_after;
		rec.issued_at = time(NULL);
		snprintf(rec.account, sizeof(rec.account), "%s", account);
		rec.der = iss.der;
		rec.der_len = iss.der_len;
		rc = store_cert_add(txn, &rec);
		if (rc != STORE_EXISTS)	/* a serial is never reused */
			break;
	}
	if (rc != STORE_OK)
		goto out;
	serial_hex(hex, ip.serial);
	snprintf(det, sizeof(det), "account=%s days=%d", account, ip.days);
	if ((rc = store_audit_append(txn, actor, "cert.issue", hex, det,
	    NULL)) != STORE_OK)
		goto out;
	memcpy(out_serial, ip.serial, 16);
	*out_der = iss.der;
	*out_len = iss.der_len;
	iss.der = NULL;
	rc = STORE_OK;
 out:
	ca_issued_cleanup(&iss);
	X509_NAME_free(acct_subj);
	X509_REQ_free(req);
	account_rec_wipe(&acct);
	return rc;
}
