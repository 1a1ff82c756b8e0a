/*
 * crl_int.h - crl module internals shared by crl_builder.c,
 * crl_service.c and crl_http.c.  Not for other modules.
 */
#ifndef MICA_CRL_INT_H
#define MICA_CRL_INT_H

#include <stddef.h>
#include <stdint.h>

#include "crl/crl.h"

/*
 * The entries live in fixed-size chunks shared (refcounted) between the
 * builder and published snapshots: a snapshot references [0, its len) of
 * each chunk; the builder only appends past that, and copies a shared
 * chunk before changing bytes in it (marking an entry dead, compacting).
 */
#define CRL_CHUNK_SHIFT	20
#define CRL_CHUNK_SIZE	((size_t)1 << CRL_CHUNK_SHIFT)

struct crl_chunk {
	unsigned int	refs;		/* atomic */
	uint32_t	len;
	uint8_t		data[];
};

/* Drops one reference; the last frees the chunk.  NULL allowed. */
void	crl_chunk_unref(struct crl_chunk *);

/*
 * An encoded CRL in pieces: head (outer header room, TBS header, the
 * fields before the entries, inline entries), the shared entry chunks,
 * tail (crlExtensions, then after signing the algorithm and signature).
 */
struct crl_tbs {
	uint8_t			*head;
	size_t			 head_off;	/* TBS starts here */
	size_t			 head_len;
	struct crl_chunk	**chunks;	/* one reference each */
	uint32_t		*chunk_len;
	size_t			 num_chunks;
	uint8_t			*tail;
	size_t			 tail_len, tail_cap, exts_len;
	size_t			 tbs_len;
	size_t			 der_off;	/* set by crl_builder_sign */
	size_t			 der_len;
	uint64_t		 number;
	uint64_t		 base_number;	/* delta only */
	uint64_t		 seq;		/* last event seq reflected */
	size_t			 num_entries;
};

/* Encodes the full CRL's TBS from the current state (no signing). */
int	crl_builder_full_tbs(struct crl_builder *, struct crl_tbs *,
	    uint64_t number, int64_t this_update, int64_t next_update);
/* Encodes the delta CRL's TBS against the current base. */
int	crl_builder_delta_tbs(struct crl_builder *, struct crl_tbs *,
	    uint64_t number, int64_t this_update, int64_t next_update);
/*
 * Signs t (only reads the builder's key and algorithm, so it may run
 * without the lock that guards the state): EVP_DigestSignUpdate over the
 * pieces, no copy (Ed25519, one-shot only, signs a flattened copy).
 */
int	crl_builder_sign(const struct crl_builder *, struct crl_tbs *);
/* Calls fn on each piece of the signed DER in order; 1, or fn's 0. */
int	crl_tbs_pieces(const struct crl_tbs *, crl_piece_fn fn, void *arg);
/* A malloc'd contiguous copy of the signed DER; NULL on error. */
uint8_t	*crl_tbs_flatten(const struct crl_tbs *);
void	crl_tbs_cleanup(struct crl_tbs *);
/*
 * Makes the state as of seq (a published full CRL numbered number) the
 * base of later delta CRLs; a base only moves forward.  May be called
 * before the events are applied (at start, with a base recorded in the
 * store): the events after seq are then logged as they come.
 */
void	crl_builder_set_base(struct crl_builder *, uint64_t number,
	    uint64_t seq);

/* Counts a CRL request answered "not yet" (crl_http.c). */
void	crl_service_count_not_ready(struct crl_service *);

#endif
