/*
 * crl_int.h - crl module internals shared by crl_builder.c and
 * crl_service.c.  Not for other modules.
 */
#ifndef MICA_CRL_INT_H
#define MICA_CRL_INT_H

#include <stddef.h>
#include <stdint.h>

#include "crl/crl.h"

/*
 * An encoded but unsigned CRL: buf holds room for the outer SEQUENCE
 * header, the TBSCertList at tbs_off, and room for the signature.
 */
struct crl_tbs {
	uint8_t		*buf;
	size_t		 cap;
	size_t		 tbs_off;
	size_t		 tbs_len;
	uint64_t	 number;
	uint64_t	 base_number;	/* delta only */
	uint64_t	 seq;		/* last event seq the CRL reflects */
	size_t		 num_entries;
};

/* Encodes the full CRL's TBS from the current state (no signing). */
int	crl_builder_full_tbs(struct crl_builder *, struct crl_tbs *,
	    uint64_t number, int64_t this_update, int64_t next_update);
/* Encodes the delta CRL's TBS against the current base. */
int	crl_builder_delta_tbs(struct crl_builder *, struct crl_tbs *,
	    uint64_t number, int64_t this_update, int64_t next_update);
/*
 * Signs t in place (only reads the builder's key and algorithm, so it may
 * run without the lock that guards the state).  On success the CRL is
 * t->buf[*out_off .. *out_off + *out_len) and t->buf is still owned by t.
 */
int	crl_builder_sign(const struct crl_builder *, struct crl_tbs *,
	    size_t *out_off, size_t *out_len);
void	crl_tbs_cleanup(struct crl_tbs *);
/* Makes the state as of seq the base of later delta CRLs. */
void	crl_builder_set_base(struct crl_builder *, uint64_t number,
	    uint64_t seq);

#endif
