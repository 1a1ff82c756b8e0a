/*
 * crl.h - full and delta CRLs (RFC 5280 section 5), built incrementally.
 *
 * Two layers:
 *  - struct crl_builder: the in-memory revocation state (the DER of every
 *    current CRL entry in one growing buffer plus a serial index) fed with
 *    store revocation events, and the encoders that turn it into a signed
 *    full or delta CRL.  Not thread-safe by itself.
 *  - struct crl_service: what micad uses.  Owns a builder, reads new events
 *    from the store, builds and signs a delta CRL synchronously on every
 *    change, builds the full CRL on a schedule in its own thread (and on
 *    crl_service_rebuild), keeps each delta's base the oldest full CRL a
 *    relying party may still hold, publishes immutable refcounted
 *    snapshots for the HTTP threads and, if configured, files on disk.
 *
 * Does not include ca/ headers: the daemon hands in the CA certificate and
 * key.  crl_http_handle answers through the HTTP listener's route API
 * (ocsp/ocsp.h).
 */
#ifndef MICA_CRL_H
#define MICA_CRL_H

#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "common/rsign.h"

struct store;
struct hwm;
struct rev_event;
struct ocsp_http_req;

struct crl_builder;
struct crl_service;

/* Receives one piece of a CRL's DER; returns 1 to go on, 0 to stop. */
typedef int (*crl_piece_fn)(const uint8_t *p, size_t len, void *arg);

enum crl_kind {
	CRL_FULL = 0,
	CRL_DELTA = 1,
};

/* ---- builder (the core; used by the service, tests and the benchmark) ---- */

/*
 * Creates an empty builder that signs with ca_key (EC or RSA with SHA-256,
 * or Ed25519) as the subject of ca_cert.  Both are up-ref'd.  freshest_url
 * is the full URL of the delta CRL put into freshestCRL ("" or NULL: no
 * freshestCRL).  Returns NULL on error (logged); free with
 * crl_builder_free.
 */
struct crl_builder	*crl_builder_new(X509 *ca_cert, EVP_PKEY *ca_key,
			    const char *freshest_url);
void			 crl_builder_free(struct crl_builder *);
/*
 * Signs through rs (copied; NULL: with the builder's own key again)
 * instead of the key given to crl_builder_new, which then only needs to
 * be the CA's public key: the signer process holds the private one.
 */
void	crl_builder_set_rsign(struct crl_builder *, const struct rsign *rs);
/*
 * Applies one status change event (events must come in seq order).
 * New revocations and holds append an encoded entry; a released hold, a
 * hold turned into a revocation or a changed reason marks the old bytes
 * dead.  A revocation of a revoked serial changes its reason and keeps its
 * first revocationDate (and its invalidityDate unless the event has one).
 * Returns 1, or 0
 * on allocation failure or an event that does not follow the store's
 * transition rules (logged; the state is unchanged).
 */
int	crl_builder_apply(struct crl_builder *, const struct rev_event *);
/* Number of entries a full CRL would list now; last applied seq. */
size_t	crl_builder_count(const struct crl_builder *);
uint64_t crl_builder_last_seq(const struct crl_builder *);
/*
 * Encodes and signs a full CRL numbered number with the given thisUpdate
 * and nextUpdate (unix seconds).  *out_der is malloc'd (caller frees).
 * Marks the current state as the base for later delta CRLs (base number =
 * number, base seq = last applied seq).  Returns 1 or 0 (logged).
 */
int	crl_builder_full(struct crl_builder *, uint8_t **out_der,
	    size_t *out_len, uint64_t number, int64_t this_update,
	    int64_t next_update);
/*
 * Encodes and signs a delta CRL numbered number against the current base
 * (the last crl_builder_full, or what the service set):
 * deltaCRLIndicator = base number, one entry per serial changed since the
 * base (its current revocation or hold, or removeFromCRL for one released
 * from a hold since the base).  Returns 1, or 0
 * (logged; also when no full CRL has been built yet).
 */
int	crl_builder_delta(struct crl_builder *, uint8_t **out_der,
	    size_t *out_len, uint64_t number, int64_t this_update,
	    int64_t next_update);
/* The base number of the delta CRLs (0 before the first full build). */
uint64_t crl_builder_base_number(const struct crl_builder *);

/* ---- service ---- */

struct crl_opts {
	int64_t		 full_interval;	/* seconds between full builds;
					 * 0 = 3600 */
	int64_t		 next_update;	/* seconds a full CRL is valid
					 * (nextUpdate); 0 = full_interval;
					 * shorter lowers full_interval */
	int64_t		 delta_max_age;	/* seconds a delta is valid and may
					 * be cached; 0 = 60 */
	const char	*base_url;	/* e.g. "http://127.0.0.1:7780": delta
					 * at <url>/crl/delta.crl; NULL/"" = none */
	const char	*publish_dir;	/* full.crl/delta.crl; NULL/"" = none */
	int		 no_thread;	/* 1: no background thread (full CRLs
					 * only by crl_service_rebuild) */
	struct hwm	*hwm;		/* common/hwm.h: CRL numbers continue
					 * above it and raise it before use;
					 * NULL = none */
	int64_t		(*clock)(void);	/* wall clock in s; NULL = time()
					 * (tests move it) */
	const struct rsign *rsign;	/* NULL: sign with ca_key; else
					 * ca_key may be the public key and
					 * rsign signs (another process) */
	/*
	 * Start in the background (micad): crl_service_new returns at once
	 * and the thread makes the first CRLs.  Until then the last CRLs
	 * published are served from seed_dir if they are current: signed
	 * by the CA, not expired, and numbered seed_last[kind] (the last
	 * number of that kind the signer signed, so nothing newer was ever
	 * published); otherwise getting a CRL of that kind waits for the
	 * first build, and so do crl_service_changed and _rebuild.  ready
	 * is called on the thread once the first build is done (ok 1) or
	 * failed (ok 0).  Needs a thread (no_thread 0).
	 */
	int		 background;
	const char	*seed_dir;	/* NULL/"" = serve nothing before */
	const char	*seed_name[2];	/* [CRL_FULL], [CRL_DELTA] */
	uint64_t	 seed_last[2];	/* 0 = unknown: not served */
	void		(*ready)(void *arg, int ok);
	void		*ready_arg;
};

/*
 * An immutable published CRL.  Hold it with crl_service_get, release with
 * crl_snapshot_release; fields never change while held.
 */
struct crl_snapshot {
	enum crl_kind	 kind;
	const uint8_t	*der;		/* contiguous DER: always set when the
					 * snapshot came from crl_service_get;
					 * from crl_service_peek it may be NULL
					 * (use crl_snapshot_der or _pieces) */
	size_t		 der_len;
	int64_t		 this_update;
	int64_t		 next_update;
	int64_t		 fresh_until;	/* HTTP caches may keep it until then:
					 * the next scheduled full build, or
					 * the delta's nextUpdate */
	uint64_t	 number;
	uint64_t	 base_number;	/* delta only, else 0 */
	int		 from_file;	/* the one published before, read
					 * at a background start (it is on
					 * disk already) */
	char		 etag[48];	/* quoted, e.g. "\"full-1a\"" */
};

/*
 * Loads the revocation state by replaying store_rev_iter from seq 1,
 * builds and publishes a full and a delta CRL (each numbered from the
 * store's meta "crl_number", advanced in a store_write before use and
 * kept above opts->hwm, which is raised durably before use; full and
 * delta share the sequence, RFC 5280 5.2.3), and unless
 * opts->no_thread starts the thread that builds the full CRL every
 * full_interval and the delta before it expires.  The delta base
 * recorded by the last run (meta crl_base_*) is kept while full CRLs
 * published before may still be held.  ca_cert/ca_key are
 * up-ref'd; store must outlive the service.  Returns NULL on error.
 */
struct crl_service	*crl_service_new(struct store *, X509 *ca_cert,
			    EVP_PKEY *ca_key, const struct crl_opts *);
/*
 * micad is stopping: a first build of a background start not yet past
 * reading the events gives up (takes no number, publishes nothing).  Any
 * thread; NULL allowed.
 */
void			 crl_service_stopping(struct crl_service *);
/* Stops the thread, frees everything; NULL allowed.  Held snapshots stay
 * valid until released. */
void			 crl_service_free(struct crl_service *);
/*
 * Call after every committed status change: reads events after the last
 * one seen, updates the state, builds, signs and publishes a delta CRL
 * now (the full CRL waits for its schedule).  Thread-safe.  Returns 1,
 * or 0 (the thread retries within a second).
 */
int	crl_service_changed(struct crl_service *);
/* The last full CRL build (for /metrics); counts are per run. */
struct crl_full_stats {
	uint64_t	duration_usec;	/* build, sign and publish */
	uint64_t	entries;	/* revoked entries listed */
	int64_t		time;		/* its thisUpdate (unix), 0 = none */
	uint64_t	builds;		/* full builds since start */
	uint64_t	failures;	/* failed full builds since start */
};
/* Any thread. */
void	crl_service_full_stats(struct crl_service *, struct crl_full_stats *);
/* Builds and publishes a full CRL (and a fresh delta) now.  1 or 0. */
int	crl_service_rebuild(struct crl_service *);
/*
 * Returns the current CRL of that kind with a reference the caller drops
 * with crl_snapshot_release, or NULL if there is none (or no memory).
 * Any thread.  Sets der: for a full CRL that is a contiguous copy made
 * once per snapshot (der_len more bytes while the snapshot lives).
 */
const struct crl_snapshot *crl_service_get(struct crl_service *,
			    enum crl_kind);
/*
 * Like crl_service_get without making the contiguous copy: der may be
 * NULL; read the bytes with crl_snapshot_pieces (zero copy, what the HTTP
 * handler and the publish directory use).  For metadata (number, dates)
 * prefer this.
 */
const struct crl_snapshot *crl_service_peek(struct crl_service *,
			    enum crl_kind);
/*
 * Like crl_service_peek but never waits (the HTTP threads: a first build
 * at 10^6 revocations takes seconds, and every OCSP request on the
 * thread would wait behind it).  NULL with *out_pending 1: a background
 * start's first CRL of that kind is still being built (and none
 * published before is served); NULL with *out_pending 0: there is none.
 */
const struct crl_snapshot *crl_service_peek_nowait(struct crl_service *,
			    enum crl_kind, int *out_pending);
/* CRL requests answered 503 "not yet" before the first build (this run;
 * for /metrics).  Any thread. */
uint64_t crl_service_not_ready_total(struct crl_service *);
void	crl_snapshot_release(const struct crl_snapshot *);
/* Takes one more reference (released with crl_snapshot_release). */
const struct crl_snapshot *crl_snapshot_ref(const struct crl_snapshot *);
/*
 * A full CRL is kept in pieces (its entries shared with the builder, no
 * copy); fn is called on each in order and returns 1 to go on.  The bytes
 * stay valid while the snapshot is held.  Returns 1, or 0 if fn did.
 */
int	crl_snapshot_pieces(const struct crl_snapshot *, crl_piece_fn fn,
	    void *arg);
/*
 * Writes the snapshot's DER as dir/name with mode, atomically and
 * durably (temp file, fsync, rename, fsync of dir), the way the publish
 * directory is written.  Returns 1, or 0 (logged).
 */
int	crl_snapshot_write(const struct crl_snapshot *, const char *dir,
	    const char *name, mode_t mode);
/* Contiguous DER, made on first use and kept (a copy: costs der_len). */
const uint8_t *crl_snapshot_der(const struct crl_snapshot *);
/* PEM text of a snapshot, made on first use and kept; NULL on error. */
const char *crl_snapshot_pem(const struct crl_snapshot *, size_t *out_len);

/*
 * Serves GET/HEAD /crl, /crl/full.crl, /crl/delta.crl (DER,
 * application/pkix-crl) and the same names + ".pem" (/crl.pem,
 * /crl/full.crl.pem, /crl/delta.crl.pem; also the older /crl/full.pem,
 * /crl/delta.pem) as application/x-pem-file, with ETag, Last-Modified,
 * Expires and Cache-Control max-age up to the snapshot's fresh_until,
 * and If-None-Match (304); 404 for other paths, 405 for other methods,
 * 503 when no CRL exists: at once, never waiting, with Retry-After and
 * Cache-Control no-store while the first build of a background start
 * runs (counted: crl_service_not_ready_total).  path is the request
 * path (a query is ignored).  Callable from any HTTP thread.  Returns
 * the HTTP status sent.
 */
int	crl_http_handle(struct crl_service *, struct ocsp_http_req *,
	    const char *path);

#endif
