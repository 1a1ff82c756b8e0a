/*
 * totpseal.h - the accounts' TOTP secrets encrypted at rest.
 *
 * A 32-byte key in its own file (private/totp.key, mode 0600, never in
 * the store or a backup) seals each secret with libsodium's
 * XChaCha20-Poly1305 (IETF AEAD), the account name as associated data:
 * a sealed secret copied to another account's record does not open.
 *
 *	sealed = nonce[24] || ciphertext || tag[16]
 *
 * The nonce is random per seal (192 bits: no counter to keep).  The key
 * lives in sodium_malloc'd memory, read-only after load.
 */
#ifndef MICA_TOTPSEAL_H
#define MICA_TOTPSEAL_H

#include <stddef.h>
#include <stdint.h>

#define TOTPSEAL_KEY_LEN	32
#define TOTPSEAL_NONCE_LEN	24
#define TOTPSEAL_TAG_LEN	16
#define TOTPSEAL_OVERHEAD	(TOTPSEAL_NONCE_LEN + TOTPSEAL_TAG_LEN)

struct totpseal_key;

enum totpseal_load {
	TOTPSEAL_LOADED = 0,	/* the file existed */
	TOTPSEAL_CREATED,	/* create was 1 and the file was missing */
	TOTPSEAL_FAILED,	/* err says why */
};

/*
 * Reads the key from path: a regular file (not a symlink) of exactly
 * TOTPSEAL_KEY_LEN bytes, not readable or writable by group or others.
 * With create, a missing file is made (O_EXCL, mode 0600, random key,
 * fsync of the file and its directory).  *out is freed with
 * totpseal_key_free.
 */
enum totpseal_load totpseal_key_load(struct totpseal_key **out,
		    const char *path, int create, char *err, size_t err_len);
/* A key from raw bytes (tests).  NULL when out of memory. */
struct totpseal_key *totpseal_key_from(const uint8_t key[TOTPSEAL_KEY_LEN]);
/* Wipes and frees; NULL allowed. */
void		totpseal_key_free(struct totpseal_key *);

/*
 * Seals plain[0..len) for account name into out (out_cap >= len +
 * TOTPSEAL_OVERHEAD).  Returns 1 and *out_len, or 0.
 */
int	totpseal_seal(const struct totpseal_key *, const char *name,
	    uint8_t *out, size_t out_cap, size_t *out_len,
	    const uint8_t *plain, size_t len);
/*
 * Opens a sealed secret of account name into out (out_cap >= len -
 * TOTPSEAL_OVERHEAD; put it in sodium_malloc'd memory).  Returns 1 and
 * *out_len, or 0 when it is too short, was sealed under another key or
 * name, or was altered (out is then wiped).
 */
int	totpseal_open(const struct totpseal_key *, const char *name,
	    uint8_t *out, size_t out_cap, size_t *out_len,
	    const uint8_t *sealed, size_t len);

#endif
