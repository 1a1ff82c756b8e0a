/*
 * reissue.h - the lost-certificate reissue workflow: creating a request,
 * approving (sign the replacement and revoke the lost certificate in ONE
 * store transaction) or rejecting it, retrieval by id + token, and the
 * list of connections waiting for a decision.  Loop thread only; the
 * store writes go to micad's writer thread (micad_write) and the results
 * come back on the loop, after OCSP and the CRLs were updated.
 */
#ifndef MICA_REISSUE_H
#define MICA_REISSUE_H

#include <stddef.h>
#include <stdint.h>

struct micad;
struct reissue;

#define REISSUE_TOKEN_LEN	32	/* retrieval token, random bytes */

/* Outcomes of the workflow calls; the listener maps them to protocol
 * error codes. */
enum reissue_rc {
	REISSUE_OK = 0,
	REISSUE_BAD_REQUEST,	/* validation failed (message in err) */
	REISSUE_DUPLICATE,	/* an open request exists for that serial */
	REISSUE_NOT_FOUND,	/* unknown id, wrong token, not yours */
	REISSUE_NOT_PENDING,	/* approve/reject of a decided request */
	REISSUE_INTERNAL,	/* store or signing failure (logged) */
};

/* What a waiter (or FETCH) gets when a request is decided. */
struct reissue_result {
	uint64_t	 id;
	uint8_t		 state;		/* enum req_state */
	const uint8_t	*cert_der;	/* ISSUED: the new certificate */
	size_t		 cert_len;
	const uint8_t	*chain_der;	/* ISSUED: the CA certificate */
	size_t		 chain_len;
	const char	*why;		/* REJECTED: the reason text */
};

/* Called on the loop when the request a waiter waits for is decided.
 * The result and its buffers are valid only during the call. */
typedef void (*reissue_wait_fn)(void *arg, const struct reissue_result *);

/*
 * Creates the workflow state for d (reads the CA certificate from
 * conf->ca.cert for the chain sent with ISSUED).  Set d->reissue to the
 * result.  NULL on error (logged).  Free with reissue_free.
 */
struct reissue	*reissue_new(struct micad *d);
/* Frees the state and drops every waiter without calling it. NULL ok. */
void		 reissue_free(struct reissue *);

/*
 * The outcome of reissue_create, on the loop: rc REISSUE_OK with id,
 * state (REQ_PENDING, or REQ_ISSUED after an automatic approval) and
 * token (shown once to the client); otherwise err holds a text for the
 * client.  The buffers are valid only during the call.
 */
typedef void (*reissue_create_fn)(void *arg, enum reissue_rc rc,
    uint64_t id, uint8_t state, const uint8_t token[REISSUE_TOKEN_LEN],
    const char *err);

/*
 * REISSUE from the logged-in account: validates the lost serial and the
 * CSR, stores a pending request (only the token's BLAKE2b hash), puts the
 * lost certificate on hold if the policy says so, and with review = auto
 * approves at once (actor "auto").  Everything is copied: the caller's
 * buffers may go at once.  Returns 1: fn(arg, ...) will run once on the
 * loop, never before this returns (a refusal is audited first); or 0:
 * nothing was queued (micad is stopping, out of memory), fn never runs.
 */
/*
 * lost_serial NULL: an enrolment (REQUEST, `mica request`): a request for
 * a first certificate of the account, reviewed like a reissue; approving
 * it signs the certificate (the account's subject, the SAN rules) and
 * revokes nothing.  Its request record carries, instead of a lost
 * serial, 0x80, seven zero bytes and the request id (reissue_is_enrolment):
 * never a certificate's serial (top bit clear), and unique for the
 * store's one-open-request-per-serial index.
 */
int	reissue_create(struct micad *d, const char *account,
	    const uint8_t lost_serial[16], const uint8_t *csr_der,
	    size_t csr_len, uint8_t reason, const char *note,
	    reissue_create_fn fn, void *arg);

/* The outcome of an approval or rejection, on the loop: ok 1, or 0 with
 * err (valid during the call). */
typedef void (*reissue_decide_fn)(void *arg, int ok, const char *err);

/*
 * Admin approve (also the auto-review path): ONE write transaction signs
 * the replacement, revokes the lost certificate, links them, marks the
 * request issued and audits; after the commit OCSP and the CRLs are
 * updated (on the writer), then on the loop ISSUED is pushed to the
 * waiters and fn(arg, 1, "") runs.  A failure is audited in a
 * transaction of its own before fn(arg, 0, err).  Returns 1 (fn will run
 * once, never before this returns) or 0 (not queued, fn never runs).
 */
int	reissue_approve(struct micad *d, uint64_t id, const char *actor,
	    reissue_decide_fn fn, void *arg);
/*
 * Admin reject: marks the request rejected with why, releases a hold the
 * request placed, audits; after the commit OCSP/CRL updates (if a hold
 * was released), REJECTED pushed to the waiters, then fn.  Returns like
 * reissue_approve.
 */
int	reissue_reject(struct micad *d, uint64_t id, const char *actor,
	    const char *why, reissue_decide_fn fn, void *arg);

/*
 * FETCH / STATUS: looks up request id and checks the token against the
 * stored hash in constant time.  Unknown id and wrong token are both
 * REISSUE_NOT_FOUND.  On REISSUE_OK fn(arg, result) is called once with
 * the request's current state (certificate and chain when issued).
 */
enum reissue_rc	reissue_lookup(struct micad *d, uint64_t id,
		    const uint8_t token[REISSUE_TOKEN_LEN],
		    reissue_wait_fn fn, void *arg);

/*
 * WAIT from the logged-in account for its own request id.  If the
 * request is already decided fn is called at once (before returning
 * REISSUE_OK); otherwise fn(arg, ...) is registered and called once when
 * it is decided.  Another account's request is REISSUE_NOT_FOUND.
 */
enum reissue_rc	reissue_wait(struct micad *d, const char *account,
		    uint64_t id, reissue_wait_fn fn, void *arg);
/* 1 when a request's lost_serial is an enrolment's marker. */
int	reissue_is_enrolment(const uint8_t lost_serial[16]);
/* Drops every waiter registered with arg (a closing connection). */
void		reissue_wait_cancel(struct reissue *, void *arg);

/*
 * At start, with [policy] review = auto: approves (actor "auto") the
 * requests still pending, which a stop caught between storing them and
 * their automatic approval.  Each approval runs like reissue_approve;
 * outcomes are logged.  Returns 0 if the store could not be read.
 */
int		reissue_resume_auto(struct micad *d);

#endif
