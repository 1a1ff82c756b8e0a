/*
 * store_extra.h - the store's record codecs, exported for the fuzz target
 * (tests/fuzz/fuzz_store_records.c) and for offline tools.  Callers outside
 * store/ normally never need them: use store/store.h.
 *
 * Every record is: a version byte (STORE_REC_VERSION), fixed-width
 * big-endian fields, then u16-prefixed strings and u32-prefixed DER.  The
 * decoders read only through the bounded reader (common/bytes.h), check
 * every value and length, reject trailing bytes, and return 1 or 0.  Byte
 * strings in decoded records (der, csr) point into the input.
 */
#ifndef MICA_STORE_EXTRA_H
#define MICA_STORE_EXTRA_H

#include <stddef.h>
#include <stdint.h>

#include "common/bytes.h"
#include "store/store.h"

#define STORE_REC_VERSION	1
#define STORE_ACCOUNT_VERSION	2	/* accounts: the TOTP secret sealed */
/* An account record with allowed SANs (records.c): version 2 + sans. */
#define STORE_ACCOUNT_VERSION_SANS	3
#define STORE_DER_MAX		(1024 * 1024)	/* cert or CSR DER */
#define STORE_REV_REC_LEN	(1 + STORE_SERIAL_LEN + 1 + 1 + 8 + 8)
#define STORE_AUDIT_HEAD_LEN	(8 + STORE_HASH_LEN)

/* Certificates (key: the 16-byte serial). */
int	store_rec_cert_encode(struct wb *, const struct cert_rec *);
int	store_rec_cert_decode(struct cert_rec *out,
	    const uint8_t serial[STORE_SERIAL_LEN], const uint8_t *, size_t);
/* Decodes only the fixed part (the OCSP hot path). */
int	store_rec_cert_state_decode(struct cert_state *out, const uint8_t *,
	    size_t);

/* Revocation events (key: u64 seq). */
int	store_rec_rev_encode(struct wb *, const struct rev_event *);
int	store_rec_rev_decode(struct rev_event *out, uint64_t seq,
	    const uint8_t *, size_t);

/* Accounts (key: the name, 1..STORE_NAME_MAX bytes, no NUL). */
int	store_rec_account_encode(struct wb *, const struct account_rec *);
int	store_rec_account_decode(struct account_rec *out, const uint8_t *key,
	    size_t key_len, const uint8_t *, size_t);

/* Requests (key: u64 id). */
int	store_rec_request_encode(struct wb *, const struct request_rec *);
int	store_rec_request_decode(struct request_rec *out, uint64_t id,
	    const uint8_t *, size_t);

/* Audit records (key: u64 seq). */
int	store_rec_audit_encode(struct wb *, const struct audit_rec *);
int	store_rec_audit_decode(struct audit_rec *out, uint64_t seq,
	    const uint8_t *, size_t);
/*
 * Computes rec->hash = BLAKE2b-256(prev || u64 seq || u64 when ||
 * u16-prefixed actor, action, subject, details).  Returns 1, 0 on error.
 */
int	store_audit_hash(uint8_t out[STORE_HASH_LEN],
	    const struct audit_rec *rec);

#endif
