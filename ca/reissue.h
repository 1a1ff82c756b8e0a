/*
 * reissue.h - the lost-certificate reissue workflow: creating a request,
 * approving (sign the replacement and revoke the lost certificate in ONE
 * store transaction) or rejecting it, retrieval by id + token, and the
 * list of connections waiting for a decision.  Loop thread only.
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
 * REISSUE from the logged-in account: validates the lost serial and the
 * CSR, stores a pending request (only the token's BLAKE2b hash), puts the
 * lost certificate on hold if the policy says so, and with review = auto
 * approves at once (actor "auto").  On REISSUE_OK: *out_id, *out_state
 * and out_token (shown once to the client).  On failure err holds a text
 * for the client.
 */
enum reissue_rc	reissue_create(struct micad *d, const char *account,
		    const uint8_t lost_serial[16], const uint8_t *csr_der,
		    size_t csr_len, uint8_t reason, const char *note,
		    uint64_t *out_id, uint8_t *out_state,
		    uint8_t out_token[REISSUE_TOKEN_LEN], char *err,
		    size_t err_len);

/*
 * Admin approve (also the auto-review path): ONE write transaction signs
 * the replacement, revokes the lost certificate, links them, marks the
 * request issued and audits; after the commit calls micad_status_changed
 * and pushes ISSUED to the waiters.  Returns 1, or 0 with err set.
 */
int	reissue_approve(struct micad *d, uint64_t id, const char *actor,
	    char *err, size_t err_len);
/*
 * Admin reject: marks the request rejected with why, releases a hold the
 * request placed, audits; after the commit micad_status_changed (if a
 * hold was released) and REJECTED pushed to the waiters.  Returns 1, or 0
 * with err set.
 */
int	reissue_reject(struct micad *d, uint64_t id, const char *actor,
	    const char *why, char *err, size_t err_len);

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
/* Drops every waiter registered with arg (a closing connection). */
void		reissue_wait_cancel(struct reissue *, void *arg);

#endif
