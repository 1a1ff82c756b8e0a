/*
 * micad.h - the daemon's shared context, handed to every part of micad
 * (admin socket, CA protocol listener, reissue workflow, OCSP, CRL).
 */
#ifndef MICA_MICAD_H
#define MICA_MICAD_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "ca/ca.h"
#include "common/keyhash.h"
#include "conf/conf.h"
#include "store/store.h"

struct event_base;
struct mica_conf;
struct store;
struct store_txn;
struct ca_signer;
struct sign_client;
struct ocsp_responder;
struct crl_service;
struct workq;
struct reissue;
struct notify;
struct expiry;

/*
 * What a SIGHUP may change and other threads read.  The daemon holds one
 * published copy (struct micad.settings, under a mutex); a job copies it
 * once with micad_settings_copy and uses only that copy, so one job never
 * mixes two configurations.
 */
/* A [profile.NAME] section, parsed. */
struct micad_profile {
	char			name[CONF_PROFILE_NAME_MAX + 1];
	struct ca_profile	profile;
	int			default_days;
};

struct micad_settings {
	struct conf_policy	policy;		/* [policy] */
	struct ca_profile	profile;	/* [ca] key_usage, ext_key_usage,
						 * copy_san, parsed */
	int			default_days;	/* [ca] */
	int			renew_before_days; /* [ca] */
	struct micad_profile	profiles[CONF_PROFILES_MAX];
	int			num_profiles;
};

struct micad {
	struct event_base	*base;		/* the main loop */
	/* As loaded at start and never written afterwards; what SIGHUP
	 * reloads is read with micad_settings_copy instead. */
	struct mica_conf	*conf;
	struct store		*store;
	struct ca_signer	*signer;	/* ca/ca.h */
	/* The CA certificate, then its issuers up to the root ([ca] chain;
	 * the CA alone when it is the root); read at start, read-only. */
	STACK_OF(X509)		*chain;
	struct sign_client	*sclient;	/* ca/sign_client.h: the signer
						 * process; NULL = keys here
						 * (tests) */
	struct ocsp_responder	*ocsp;		/* ocsp/ocsp.h, may be NULL */
	struct crl_service	*crl;		/* crl/crl.h, may be NULL */
	struct workq		*workers;	/* common/workq.h */
	struct reissue		*reissue;	/* ca/reissue.h, may be NULL */
	struct notify		*notify;	/* ca/notify.h, may be NULL */
	struct expiry		*expiry;	/* ca/expiry.h, may be NULL */
	struct ban		*ban;		/* ca/ban.h: HTTP caches to ban
						 * changed serials in; NULL:
						 * none */
	time_t			 started;
	volatile int		 stopping;
	struct workq		*writer;	/* 1 thread: every store commit */
	/* MICAD_PRESIGN_THREADS: an operator's issuance is checked and
	 * signed there, in parallel, before its write goes to the writer;
	 * NULL: signed inside the write (tests) */
	struct workq		*presign;
	struct hwm		*hwm;		/* common/hwm.h, may be NULL */
	/* seals the accounts' TOTP secrets (common/totpseal.h); NULL only
	 * in unit tests that need no TOTP */
	const struct totpseal_key *totp_key;
	const char		*crl_keep_dir;	/* copies of the last CRLs for
						 * a restore (ca/restore.h);
						 * NULL: publish_dir has them */
	/* the published settings: micad.c's mutex guards both */
	struct micad_settings	 settings;
	int			 has_settings;
};

/*
 * Fills out from a loaded config (parses the [ca] profile).  Returns 1,
 * or 0 with the reason in err.
 */
int	micad_settings_from_conf(struct micad_settings *out,
	    const struct mica_conf *, char *err, size_t err_len);
/* Publishes s (copied) for every later micad_settings_copy.  Any thread. */
void	micad_settings_set(struct micad *, const struct micad_settings *s);
/*
 * Copies the published settings into out (under the mutex, so never a
 * half-written one).  Before any micad_settings_set they come from
 * d->conf (unit tests that set up a struct micad by hand).  Returns 1, or
 * 0 with err when that config's profile does not parse.  Any thread.
 */
int	micad_settings_copy(struct micad *, struct micad_settings *out,
	    char *err, size_t err_len);

/* Counters for /metrics (atomics: any thread may add or read). */
enum micad_stat {
	MSTAT_REQ_CREATED = 0,		/* reissue requests stored */
	MSTAT_REQ_REFUSED,		/* reissue requests refused */
	MSTAT_REQ_APPROVED,		/* approved and issued */
	MSTAT_REQ_REJECTED,
	MSTAT_CRL_DELTA_BUILDS,		/* delta rebuilds after a change */
	MSTAT_CRL_DELTA_FAILED,
	MSTAT_CRL_DELTA_USEC,		/* their total duration */
	MSTAT_EXPIRY_SENT,		/* cert.expiring events */
	MSTAT_WRITE_COMMITS,		/* writer batches committed */
	MSTAT_WRITE_GROUPED,		/* writes that shared a batch's fsync */
	MSTAT_COUNT
};

void		micad_stat_add(enum micad_stat, uint64_t n);
uint64_t	micad_stat_get(enum micad_stat);

/*
 * Called after a committed status change of serial (revoke, hold, unhold,
 * reissue) and before anyone is told of it: drops the serial's cached
 * OCSP responses and rebuilds the delta CRL, then schedules the full CRL;
 * last queues the notify event (cert.revoked, cert.hold or cert.released,
 * from the certificate's committed state).  Any thread (micad_write runs
 * it on the writer thread).
 */
void	micad_status_changed(struct micad *, const uint8_t serial[16]);

/* The certificates whose status a write transaction changed. */
#define MICAD_CHANGED_MAX	4
struct micad_changed {
	int	n;
	uint8_t	serial[MICAD_CHANGED_MAX][16];
};

/* Inside a write transaction: records that serial's status changed.
 * Returns 1, or 0 when the list is full (the caller returns STORE_INVALID
 * or similar; that never happens with MICAD_CHANGED_MAX callers). */
int	micad_changed_add(struct micad_changed *, const uint8_t serial[16]);

/* Runs on the loop after the write: rc is store_write's result. */
typedef void (*micad_done_fn)(void *arg, enum store_rc rc);

/*
 * Queues a store write on d->writer (one thread, FIFO).  There:
 * store_write(d->store, fn, arg) (fn may run more than once: changed, if
 * not NULL, is emptied before every run and fn fills it with
 * micad_changed_add); after a commit with changed->n > 0, the OCSP cache
 * of every changed serial is dropped, the delta CRL rebuilt once and the
 * notify events queued (micad_status_changed).  Only then done(arg, rc)
 * runs on the loop (never before micad_write returned).  arg and changed
 * must live until done.  Returns 1, or 0 (nothing queued, done will not
 * run) when there is no writer or it is stopping.
 */
int	micad_write(struct micad *, store_txn_fn fn, void *arg,
	    struct micad_changed *changed, micad_done_fn done);

/*
 * Inside a write transaction: signs a certificate for account from a CSR
 * (DER, already checked by the caller), with a fresh random serial, stores
 * it as good and appends an audit record by actor.  days <= 0 means the
 * configured default.  Returns an enum store_rc: STORE_OK with *out_der
 * (malloc'd, caller frees) holding the certificate; STORE_INVALID when
 * signing failed (message in err); other values from the store, which the
 * caller passes on so that store_write can grow the map and retry.
 */
int	micad_issue_txn(struct micad *, struct store_txn *,
	    const uint8_t *csr_der, size_t csr_len, const char *account,
	    int days, const char *actor, uint8_t out_serial[16],
	    uint8_t **out_der, size_t *out_len, char *err, size_t err_len);
/*
 * micad_issue_txn with settings the caller copied (micad_settings_copy)
 * at the start of its job: days <= 0 means s->default_days, the profile
 * is s->profile.  micad_issue_txn copies them itself.  The certificate's
 * subject is subject (a reissue: the lost certificate's), or with NULL
 * the account's allowed subject as mica encodes it (the CSR's when the
 * account allows any subject): never the CSR's bytes, which only match
 * it case- and space-insensitively.
 */
int	micad_issue_txn_with(struct micad *, const struct micad_settings *s,
	    struct store_txn *, const uint8_t *csr_der, size_t csr_len,
	    const char *account, int days, const char *actor,
	    const X509_NAME *subject, uint8_t out_serial[16],
	    uint8_t **out_der, size_t *out_len, char *err, size_t err_len);
/* What an operator's `mica-admin issue` may add. */
struct micad_issue_opts {
	const char		*profile;	/* [profile.NAME]; NULL: [ca] */
	const char *const	*sans;		/* the certificate's SANs
						 * ("DNS:x", checked), instead
						 * of the CSR's; num_sans 0:
						 * none given */
	size_t			 num_sans;
	int			 enrolment;	/* subscriber's first
						 * certificate: the CSR's
						 * subject is not compared (the
						 * certificate carries the
						 * account's) */
};

/*
 * micad_issue_txn for the operator: with a named profile (its key
 * usage, EKU, copy_san and default_days) and SANs set by the operator.
 * A CSR's SANs (copied when the profile's copy_san is on and no SANs are
 * given) must be on the account's list when it has one.  An unknown
 * profile is STORE_INVALID with "--profile NAME: no such profile ..." in
 * err.
 */
int	micad_issue_txn_opts(struct micad *, struct store_txn *,
	    const uint8_t *csr_der, size_t csr_len, const char *account,
	    int days, const char *actor, const struct micad_issue_opts *o,
	    uint8_t out_serial[16], uint8_t **out_der, size_t *out_len,
	    char *err, size_t err_len);
/*
 * An enrolment's approval (mica request): micad_issue_txn_with for the
 * account's own subject (the CSR's when the account allows any), the
 * CSR's subject not compared, the subscriber's SAN rules.
 */
int	micad_issue_txn_enrol(struct micad *, const struct micad_settings *s,
	    struct store_txn *, const uint8_t *csr_der, size_t csr_len,
	    const char *account, int days, const char *actor,
	    uint8_t out_serial[16], uint8_t **out_der, size_t *out_len,
	    char *err, size_t err_len);
/*
 * The SAN rule for a subscriber's CSR (reissue, enrolment): when
 * s->profile.copy_san is on, every DNS, IP and email SAN of req must be
 * on the account's list (acct_sans; an empty list allows none).  1, or 0
 * with the reason in err.
 */
int	micad_csr_sans_check(const struct micad_settings *s,
	    const struct ca_csr *req, const char *acct_sans, char *err,
	    size_t err_len);
/* The named profile of s, or NULL. */
const struct micad_profile *micad_profile_find(const struct micad_settings *s,
	    const char *name);

/*
 * Inside a transaction: the key rules no CSR check alone can apply.  The
 * key must not be mica's own (the CA's, the OCSP signer's, the TLS
 * server's) and must not be in the compromised-key index (revoked for
 * keyCompromise, or a reissue's lost key).  Returns STORE_OK,
 * STORE_INVALID with the reason in err, or a store error.
 */
int	micad_csr_key_check(struct micad *, struct store_txn *,
	    const struct ca_csr *req, char *err, size_t err_len);

/*
 * Signing outside the writer.  The writer runs the write transactions
 * one after another; a certificate signed inside one (micad_issue_txn)
 * holds the whole batch for a round trip to the signer process and its
 * fdatasync of signer.log.  An operator's issuance is therefore signed
 * first, on one of MICAD_PRESIGN_THREADS threads, in a read transaction
 * (many in flight at once: the signer answers them together after one
 * fdatasync), and only stored in the write, which checks again what may
 * have changed in between.  The certificate is told to nobody before the
 * write committed; one that is signed but not stored (the account
 * changed, the key was found compromised, the write failed) is in
 * signer.log only, as a signed certificate whose store write failed
 * always was.
 */
#define MICAD_PRESIGN_THREADS	16

struct micad_presigned {
	uint8_t		 serial[16];
	uint8_t		*der;		/* malloc'd */
	size_t		 der_len;
	int64_t		 not_before, not_after;
	uint8_t		 keyhash[KEYHASH_LEN];	/* the CSR key's */
	char		 account[STORE_NAME_MAX + 1];
	/* the account as the signing half saw it */
	char		 acct_subject[STORE_SUBJECT_MAX + 1];
	char		 acct_sans[STORE_SANS_MAX + 1];
	char		 det[STORE_NAME_MAX + 128];	/* audit details */
};

/*
 * micad_issue_txn_opts's checks and signature, in txn (a read
 * transaction will do); nothing is stored.  STORE_OK with ps filled
 * (micad_presigned_cleanup), else as micad_issue_txn_opts.
 */
int	micad_issue_presign(struct micad *, struct store_txn *,
	    const uint8_t *csr_der, size_t csr_len, const char *account,
	    int days, const struct micad_issue_opts *o,
	    struct micad_presigned *ps, char *err, size_t err_len);
/*
 * The signing half of micad_issue_txn_with (subject != NULL: a reissue
 * approval) or of micad_issue_txn_enrol (subject NULL, enrolment 1), in
 * txn (a read transaction will do); nothing is stored.  STORE_OK with ps
 * filled, stored by micad_issue_presigned_txn; else as those.
 */
int	micad_issue_presign_sub(struct micad *, const struct micad_settings *s,
	    struct store_txn *, const uint8_t *csr_der, size_t csr_len,
	    const char *account, int days, const X509_NAME *subject,
	    int enrolment, struct micad_presigned *ps, char *err,
	    size_t err_len);
/*
 * In the write transaction: the account still there with the allowed
 * subject and SANs the signature was made for (else STORE_NOTFOUND, or
 * STORE_INVALID with err), the key not put in the compromised-key index
 * since (mica's own keys are not checked again); then the
 * certificate is stored as good with its audit record by actor.
 */
int	micad_issue_presigned_txn(struct micad *, struct store_txn *,
	    const struct micad_presigned *ps, const char *actor, char *err,
	    size_t err_len);
void	micad_presigned_cleanup(struct micad_presigned *);

#endif
