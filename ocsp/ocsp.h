/*
 * ocsp.h - mica's OCSP responder (RFC 6960, RFC 5019 profile, RFC 8954 /
 * RFC 9654 nonces) and micad's HTTP listener (OCSP, health, and routes the
 * integrator adds such as /ca.crt, /crl, /metrics).
 *
 * Layers:
 *   ocsp_responder   shared by all threads: CA and signer, issuer hashes,
 *                    the response cache, counters.  Thread-safe.
 *   ocsp_ctx         one per thread: a store_reader and a signing context.
 *   ocsp_http        N event threads (libevent, SO_REUSEPORT) speaking
 *                    HTTP/1.1 and sending cached answers; what the cache
 *                    cannot answer is built there and signed over the
 *                    thread's own channel to the signer process (without
 *                    waiting), or else by M signer threads (decode,
 *                    store, signature) without holding up the others.
 *
 * Invalidation: after a committed status change (revoke, hold, unhold,
 * issue) and BEFORE anyone is told of it, call ocsp_invalidate(serial).
 * A thread that read the store before the commit never caches its stale
 * answer (generation counter checked under the cache lock).
 */
#ifndef MICA_OCSP_H
#define MICA_OCSP_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "common/rsign.h"

struct store;
struct wb;
struct ocsp_responder;
struct ocsp_ctx;
struct ocsp_http;
struct ocsp_blob;

struct ocsp_opts {
	int		next_update;	/* s, nextUpdate - thisUpdate; 3600 */
	int		max_certids;	/* CertIDs per request; 16 */
	int		unknown_revoked; /* 1: never-issued serials are revoked
					  * with the extended revoke ext */
	size_t		max_request;	/* request DER cap; 16384 */
	size_t		cache_entries;	/* cached responses; 65536 */
	size_t		cache_bytes;	/* bytes of cached DER; 64 MiB */
	const struct rsign *rsign;	/* NULL: sign with signer_key; else
					 * responses are signed through it
					 * (the signer process) and
					 * signer_key is only a key of the
					 * same type (it sets the signature
					 * algorithm); must outlive the
					 * responder */
};

/* Fills opts with the defaults above. */
void	ocsp_opts_defaults(struct ocsp_opts *);

/*
 * Outcome of one request.  For a successful response the result is the
 * status of its first SingleResponse.
 */
enum ocsp_result {
	OCSPRES_GOOD = 0,
	OCSPRES_REVOKED,
	OCSPRES_UNKNOWN,
	OCSPRES_MALFORMED,	/* malformedRequest (1) */
	OCSPRES_UNAUTHORIZED,	/* unauthorized (6) */
	OCSPRES_INTERNAL,	/* internalError (2) */
	OCSPRES_TRYLATER,	/* tryLater (3): no signer valid right now */
	OCSPRES_COUNT
};

#define OCSP_ETAG_MAX	40	/* "\"" + 32 hex + "\"" + NUL, rounded */

/* What ocsp_respond produced: DER plus what HTTP caching headers need. */
struct ocsp_answer {
	const uint8_t		*der;		/* the OCSPResponse */
	size_t			 der_len;
	enum ocsp_result	 result;
	int			 cacheable;	/* successful and nonce-less */
	int64_t			 this_update;	/* unix s, when cacheable */
	int64_t			 next_update;
	char			 etag[OCSP_ETAG_MAX];	/* quoted, "" if none */
	/* "HEX[,HEX...]" (serial_hex) of the serials answered, for HTTP
	 * caches' bans; NULL: HTTP caches must not keep the answer */
	const char		*serials;
	struct ocsp_blob	*ref;		/* keeps der alive; internal */
};

/*
 * Creates the shared responder.  Takes its own references to ca_cert,
 * signer_cert and signer_key (the caller keeps and frees its own).  The
 * signer must be the CA itself or a delegated signer issued by it with
 * id-kp-OCSPSigning.  store must outlive the responder.  Calls
 * sodium_init().  Returns NULL on error (logged).
 */
struct ocsp_responder	*ocsp_responder_new(const struct ocsp_opts *,
			    X509 *ca_cert, X509 *signer_cert,
			    EVP_PKEY *signer_key, struct store *);
/* Frees the responder; NULL allowed.  No ctx or http may remain. */
void			 ocsp_responder_free(struct ocsp_responder *);

/* A per-thread context (store reader, signing state); NULL on error. */
struct ocsp_ctx		*ocsp_ctx_new(struct ocsp_responder *);
void			 ocsp_ctx_free(struct ocsp_ctx *);

/*
 * Answers one DER OCSPRequest.  Always fills *out with a response to send
 * (errors become OCSP error responses: malformedRequest, unauthorized,
 * internalError); returns 1, or 0 only when not even that was possible
 * (out of memory).  Release the answer with ocsp_answer_cleanup.
 */
int	ocsp_respond(struct ocsp_ctx *, struct ocsp_answer *out,
	    const uint8_t *req, size_t req_len);
/*
 * The cheap part of ocsp_respond: answers from the cache (or a request of
 * impossible size) and returns 1; returns 0 when
 * the request needs decoding, the store and a signature (ocsp_respond).
 * Never signs: an event loop can call it without blocking.  *out is
 * zeroed either way.
 */
int	ocsp_respond_cached(struct ocsp_ctx *, struct ocsp_answer *out,
	    const uint8_t *req, size_t req_len);
/* Drops the answer's reference; the zeroed answer may be reused. */
void	ocsp_answer_cleanup(struct ocsp_answer *);

/*
 * Drops every cached response covering serial (16 bytes, big-endian) and
 * makes in-flight lookups that began before the call not cache their
 * answers.  Thread-safe.  Call after the commit, before telling anyone.
 */
void	ocsp_invalidate(struct ocsp_responder *, const uint8_t serial[16]);
/*
 * Replaces the delegated signer (a renewed ocsp.crt and its key; up-refs
 * both) while the responder runs: checked against the CA like the first
 * one, taken up by each thread at its next signature; cached answers are
 * dropped.  Returns 1, or 0 (logged) keeping the old signer.
 */
int	ocsp_responder_set_signer(struct ocsp_responder *, X509 *cert,
	    EVP_PKEY *key);
/* Drops the whole cache (e.g. after a signer key change).  Thread-safe. */
void	ocsp_invalidate_all(struct ocsp_responder *);
/*
 * The current signer's notBefore and notAfter (unix s).  Thread-safe.
 * No answer is ever signed outside [notBefore, notAfter]: such a request
 * gets tryLater (RFC 6960 2.3), a cached answer of that signer is no
 * longer served, and the hook below is called.
 */
void	ocsp_responder_signer_times(struct ocsp_responder *,
	    int64_t *out_not_before, int64_t *out_not_after);
/*
 * Sets fn(arg), called (from any OCSP thread, at most once per
 * OCSP_INVALID_HOOK_SECS of the monotonic clock) when a request needs a
 * signature and the signer is outside its validity, so that the owner
 * renews it.  fn must be thread-safe and must not block.  Call before the
 * HTTP threads start.
 */
#define OCSP_INVALID_HOOK_SECS	5
void	ocsp_responder_set_invalid_hook(struct ocsp_responder *,
	    void (*fn)(void *), void *arg);

/*
 * Appends Prometheus text exposition of the counters (requests by result,
 * cache hits/misses/entries, latency histogram) to b.  Thread-safe.
 */
void	ocsp_metrics_append(struct ocsp_responder *, struct wb *b);

/* Cumulative count of requests with this result (for tests, metrics). */
uint64_t	ocsp_stat_result(struct ocsp_responder *, enum ocsp_result);
/* Cumulative cache hits and misses. */
uint64_t	ocsp_stat_cache_hits(struct ocsp_responder *);
uint64_t	ocsp_stat_cache_misses(struct ocsp_responder *);

/* ---- HTTP listener ---- */

struct ocsp_http_opts {
	char		listen[256];	/* "127.0.0.1:7780", "[::1]:0" */
	int		threads;	/* event (I/O) threads; 1 */
	int		signers;	/* threads answering what the cache
					 * cannot (decode, store, sign); 2.
					 * 0: the event threads do it.  Not
					 * started when every event thread
					 * has a signer channel (rsign) */
	int		max_body;	/* POST body cap, bytes; 16384 */
	int		max_headers;	/* header block cap, bytes; 8192 */
	int		timeout;	/* s, read/write/idle timeout; 30 */
	int		header_timeout;	/* s, from a request's first byte
					 * (or the accept) to its last, head
					 * and body; 10, 0 = off */
	int		max_connections; /* open connections, all threads;
					 * 1024, 0 = no limit */
	int		max_per_address; /* open connections per client
					 * address; 64, 0 = no limit.  Over
					 * it: 503 with Retry-After, closed */
	int		shed_start;	/* % of max_connections: above it
					 * each new connection closes one
					 * with no request in progress (the
					 * address holding most connections
					 * first, then the oldest); 75,
					 * 0 = never */	int		cache_max_age;	/* s, the longest Cache-Control
					 * max-age of a GET answer (never
					 * past its nextUpdate); 60,
					 * 0 = no-store */
};

/* What the listener counts (refused, shed, closed connections). */
enum ocsp_http_stat {
	OCSP_HTTP_REFUSED_MAX_CONNECTIONS = 0,	/* table full */
	OCSP_HTTP_REFUSED_PER_ADDRESS,		/* max_per_address */
	OCSP_HTTP_SHED,				/* closed for a new one */
	OCSP_HTTP_HEADER_TIMEOUT,		/* header_timeout */
	OCSP_HTTP_SIGN_BUSY,			/* a request answered 503:
						 * the signer channel's queue
						 * was full */
	OCSP_HTTP_STAT_COUNT
};

/* Fills opts with the defaults above. */
void	ocsp_http_opts_defaults(struct ocsp_http_opts *);

/*
 * One HTTP request as a route sees it; valid only during the route's
 * callback.  The route answers it exactly once with ocsp_http_send or
 * ocsp_http_send_error (an unanswered request gets a 500).
 */
struct ocsp_http_req;
struct sockaddr;

enum ocsp_http_method {
	OCSP_HTTP_GET = 1,
	OCSP_HTTP_HEAD,
	OCSP_HTTP_POST,
	OCSP_HTTP_OTHER		/* any other method token */
};

/*
 * Called on an HTTP thread for a request whose path (without its query)
 * starts with the route's prefix.  Several threads may call it at once:
 * it must be thread-safe.
 */
typedef void (*ocsp_http_cb)(struct ocsp_http_req *req, const char *path,
    void *arg);

enum ocsp_http_method	ocsp_http_req_method(const struct ocsp_http_req *);
/* The client's address (AF_INET or AF_INET6). */
const struct sockaddr	*ocsp_http_req_peer(const struct ocsp_http_req *);
/* The value of the request field name (any case), or NULL. */
const char	*ocsp_http_req_header(const struct ocsp_http_req *,
		    const char *name);
/*
 * Adds a response field (copied; no CR or LF allowed).  Date,
 * Content-Length and Connection are added by the listener.  Returns 1, or
 * 0 when invalid or the header block (2 KiB) is full.
 */
int	ocsp_http_add_header(struct ocsp_http_req *, const char *name,
	    const char *value);
/* Drops the fields added so far (an error after a success's headers:
 * no cache lifetime or validator may go out with it). */
void	ocsp_http_clear_headers(struct ocsp_http_req *);
/* Appends a copy of data to the response body.  Returns 1, or 0. */
int	ocsp_http_body_add(struct ocsp_http_req *, const void *data,
	    size_t len);
/*
 * Appends data to the body without copying; cleanup(data, len, arg) runs
 * once it is sent or dropped (may be NULL for static data).  Returns 1,
 * or 0 (cleanup not called).
 */
int	ocsp_http_body_add_ref(struct ocsp_http_req *, const void *data,
	    size_t len, void (*cleanup)(const void *, size_t, void *),
	    void *arg);
/*
 * Sends the response: status line, Date, Content-Length, the fields
 * added, then the body (none for HEAD, 304 or 204; Content-Length still
 * gives the body's length for HEAD).
 */
void	ocsp_http_send(struct ocsp_http_req *, int code, const char *reason);
/* An HTTP date (RFC 9110 5.6.7, "Sun, 06 Nov 1994 08:49:37 GMT") for t;
 * the epoch if t cannot be formatted.  len >= 30. */
void	ocsp_http_date(char *buf, size_t len, int64_t t);
/* Drops the body built so far and sends code with a text/plain body
 * "CODE REASON\n"; fields already added (e.g. Allow) are kept. */
void	ocsp_http_send_error(struct ocsp_http_req *, int code,
	    const char *reason);

/*
 * Creates a listener that is not yet bound; NULL on error.  r may be NULL
 * for a listener serving only routes (the OCSP paths then answer 404).
 */
struct ocsp_http	*ocsp_http_new(struct ocsp_responder *,
			    const struct ocsp_http_opts *);
/*
 * Registers a route: requests whose path starts with prefix ("/metrics",
 * "/crl") go to cb; routes are checked in the order added, before the
 * OCSP routes.  Only before ocsp_http_start; prefix is copied.  Returns 1,
 * or 0 when already started or the table is full.
 */
int	ocsp_http_add_route(struct ocsp_http *, const char *prefix,
	    ocsp_http_cb cb, void *arg);
/*
 * Also serves every path under prefix ("/pki": /pki/ocsp, /pki/crl,
 * /pki/ca.crt ... are answered as /ocsp, /crl, /ca.crt ...): the path
 * part of [ca] http_url and of the earlier URLs in old_http_urls, so
 * that certificates issued with either find their OCSP, CRL and CA
 * certificate URLs.  The prefix is stripped when it is followed by '/'
 * or ends the path.  Only before ocsp_http_start; "" and "/" are
 * ignored.  Returns 1, or 0 when started, full (8) or longer than 99.
 */
int	ocsp_http_add_prefix(struct ocsp_http *, const char *prefix);
/*
 * Binds the listen address (SO_REUSEPORT, one socket per thread, all on the
 * same port; port 0 picks one) without starting any thread, so a daemon can
 * bind as root and serve only after dropping privileges.  Returns 1, or 0
 * with the error logged (also when already bound or started).
 */
int	ocsp_http_bind(struct ocsp_http *);
/*
 * Binds (unless ocsp_http_bind was called) and starts the threads.
 * Returns 1, or 0 with the error logged.
 */
int	ocsp_http_start(struct ocsp_http *);
/* How many connections were refused, shed or timed out (any thread). */
uint64_t	ocsp_http_stat(struct ocsp_http *, enum ocsp_http_stat);
/* The bound TCP port (after start), else 0. */
int	ocsp_http_port(const struct ocsp_http *);
/* Stops and joins the threads; idempotent. */
void	ocsp_http_stop(struct ocsp_http *);
/* Stops if needed and frees; NULL allowed. */
void	ocsp_http_free(struct ocsp_http *);

#endif
