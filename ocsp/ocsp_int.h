/*
 * ocsp_int.h - internals shared by the files of the ocsp module only
 * (responder, cache, HTTP).  Other modules include ocsp/ocsp.h.
 */
#ifndef MICA_OCSP_INT_H
#define MICA_OCSP_INT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "ocsp/ocsp.h"

#define OCSP_SERIAL_LEN	16

/* A signed response, shared by the cache and in-flight answers. */
struct ocsp_blob {
	atomic_uint	refs;
	uint8_t		result;		/* enum ocsp_result */
	int64_t		this_update;
	int64_t		next_update;
	/* the signer's validity: served from the cache only inside it */
	int64_t		signer_not_before, signer_not_after;
	char		etag[OCSP_ETAG_MAX];
	/* "HEX,HEX": the serials it answers for (X-Mica-Serials), or NULL
	 * when it must not be kept by HTTP caches (a serial not issued
	 * yet, too many to name); freed with the blob */
	char		*serials;
	size_t		len;
	uint8_t		der[];
};

struct ocsp_blob	*ocsp_blob_new(const uint8_t *der, size_t len);
void			 ocsp_blob_ref(struct ocsp_blob *);
void			 ocsp_blob_unref(struct ocsp_blob *);

struct ocsp_cache;

struct ocsp_cache	*ocsp_cache_new(size_t max_entries, size_t max_bytes);
void			 ocsp_cache_free(struct ocsp_cache *);
/*
 * Returns a new reference to the response cached for exactly these
 * request bytes, if still fresh at now (before the refresh point, half of
 * its lifetime, not before thisUpdate - 60 s) and its signer valid at now,
 * else NULL.
 */
struct ocsp_blob	*ocsp_cache_get(struct ocsp_cache *, uint64_t hash,
			    const uint8_t *key, size_t key_len, int64_t now);
/*
 * Caches blob (takes a new reference) for the key, covering serials,
 * unless *gen no longer equals gen0 (checked under the lock, so an
 * ocsp_cache_invalidate that bumped it first cannot miss the entry).
 * Replaces an entry with the same key.  Returns 1 if inserted.
 */
int	ocsp_cache_put(struct ocsp_cache *, uint64_t hash, const uint8_t *key,
	    size_t key_len, struct ocsp_blob *blob,
	    const uint8_t (*serials)[OCSP_SERIAL_LEN], size_t num_serials,
	    atomic_uint_fast64_t *gen, uint64_t gen0);
/* Drops entries covering serial (NULL: all); returns how many. */
size_t	ocsp_cache_invalidate(struct ocsp_cache *,
	    const uint8_t *serial);
size_t	ocsp_cache_count(struct ocsp_cache *);
size_t	ocsp_cache_bytes(struct ocsp_cache *);
/* The keyed hash used for cache keys. */
uint64_t	ocsp_cache_hash(struct ocsp_cache *, const uint8_t *, size_t);

/*
 * An answer waiting for its signature from the signer process, so that
 * an event loop can ask for it without blocking (http.c).
 */
struct ocsp_pending;

/*
 * ocsp_respond for a request ocsp_respond_cached did not answer, except
 * that a signature by the remote signer (struct rsign) is not waited
 * for: returns 2 with *out_p, the answer waiting for the signature of
 * ocsp_pending_tbs (OCSP key, RSIGN_OCSP), to be finished with
 * ocsp_respond_finish on the same thread; otherwise 1 with *out (an
 * error answer, or signed here with a local key).
 */
int	ocsp_respond_begin(struct ocsp_ctx *, struct ocsp_answer *out,
	    struct ocsp_pending **out_p, const uint8_t *req, size_t req_len);
/* The ResponseData to sign (borrowed). */
const uint8_t	*ocsp_pending_tbs(const struct ocsp_pending *, size_t *out_len);
/*
 * Completes p with the signature sig (NULL: the signer failed or is
 * gone; the answer is then internalError) into *out, caches it when it
 * may be, counts it.  Returns 1.  p is still freed by the caller.
 */
int	ocsp_respond_finish(struct ocsp_ctx *, struct ocsp_pending *p,
	    struct ocsp_answer *out, const uint8_t *sig, size_t sig_len);
void	ocsp_pending_free(struct ocsp_pending *);
/* The remote signer of the responder's options, or NULL. */
const struct rsign	*ocsp_responder_rsign(struct ocsp_responder *);

/* For tests: the responder's generation counter and cache. */
uint64_t	ocsp_generation(struct ocsp_responder *);
struct ocsp_cache	*ocsp_responder_cache(struct ocsp_responder *);

/* HTTP helpers (exported for the GET fuzz target and tests). */
/*
 * Decodes the GET form path component (after "/ocsp/" or "/"):
 * percent-decoding, then base64 with or without padding.  Writes at most
 * out_cap bytes.  Returns 1 and *out_len, or 0 when malformed.
 */
int	ocsp_get_decode(uint8_t *out, size_t out_cap, size_t *out_len,
	    const char *path, size_t path_len);

/*
 * Back-to-front DER writer (der.c): content is written before its header,
 * so a SEQUENCE is closed by prepending its tag and length.  Usage:
 *   m = ocsp_derw_mark(w); ...write contents...; ocsp_derw_wrap(w, 0x30, m);
 * Writes stay inside [buf, buf + cap); overflow sets a sticky failure.
 */
struct ocsp_derw {
	uint8_t		*buf;
	size_t		 pos;		/* first written byte */
	size_t		 end;		/* cap */
	int		 failed;
};

void	ocsp_derw_init(struct ocsp_derw *, uint8_t *buf, size_t cap);
/* 1 unless a write did not fit (or buf was NULL). */
int	ocsp_derw_ok(const struct ocsp_derw *);
/* The current start; pass to ocsp_derw_wrap after writing contents. */
size_t	ocsp_derw_mark(const struct ocsp_derw *);
/* The bytes written so far (borrowed), NULL after a failure. */
const uint8_t	*ocsp_derw_data(const struct ocsp_derw *, size_t *out_len);
/* Claims n bytes in front of what is written; NULL when full. */
uint8_t	*ocsp_derw_reserve(struct ocsp_derw *, size_t n);
void	ocsp_derw_put(struct ocsp_derw *, const void *, size_t);
void	ocsp_derw_u8(struct ocsp_derw *, uint8_t);
/* Prepends tag and the DER length len. */
void	ocsp_derw_hdr(struct ocsp_derw *, uint8_t tag, size_t len);
/* Prepends tag and the length of everything written since mark. */
void	ocsp_derw_wrap(struct ocsp_derw *, uint8_t tag, size_t mark);
/* Prepends a GeneralizedTime YYYYMMDDHHMMSSZ for unix time t; 0 when the
 * year is outside 0..9999. */
int	ocsp_derw_gentime(struct ocsp_derw *, int64_t t);

/* ---- HTTP request heads (http_parse.c) ---- */

#define OCSP_HTTP_MAX_FIELDS	32

struct ocsp_http_field {
	size_t	name_off, name_len;	/* offsets into the parsed buffer */
	size_t	value_off, value_len;	/* without surrounding OWS */
};

/* A parsed request head; offsets point into the buffer given to the
 * parser. */
struct ocsp_http_head {
	size_t			 head_len;	/* through the empty line */
	enum ocsp_http_method	 method;
	int			 minor;		/* HTTP/1.<minor>: 0 or 1 */
	size_t			 target_off, target_len;
	size_t			 path_off, path_len; /* no query; may be 0 */
	int64_t			 content_length;	/* -1: none */
	int			 keep_alive;	/* after this request */
	int			 expect_continue;
	int			 chunked, hosts, conn_close, conn_keep;
	int			 nfields;
	struct ocsp_http_field	 fields[OCSP_HTTP_MAX_FIELDS];
};

enum ocsp_http_parse {
	OCSP_HTTP_PARSE_OK = 0,
	OCSP_HTTP_PARSE_MORE,		/* head incomplete */
	OCSP_HTTP_PARSE_ERROR		/* *code: the status to answer */
};

/*
 * Parses the request head at the start of buf[0..len) (RFC 9112),
 * looking at most at max_head bytes.  OK: *h describes it (h->head_len
 * bytes; a body of h->content_length bytes, when >= 0, follows).  MORE:
 * no complete head yet.  ERROR: *code is the status to answer before
 * closing (400, 411, 417, 431, 505).
 */
enum ocsp_http_parse	ocsp_http_parse_head(const uint8_t *buf, size_t len,
			    size_t max_head, struct ocsp_http_head *h,
			    int *code);
/* The value of the first field called name (any case), or NULL. */
const uint8_t	*ocsp_http_head_field(const struct ocsp_http_head *,
		    const uint8_t *buf, const char *name, size_t *out_len);

#endif
