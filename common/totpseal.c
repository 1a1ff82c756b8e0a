/*
 * totpseal.c - TOTP secrets sealed with XChaCha20-Poly1305 (totpseal.h).
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "common/totpseal.h"

struct totpseal_key {
	uint8_t	k[TOTPSEAL_KEY_LEN];
};

_Static_assert(TOTPSEAL_KEY_LEN ==
    crypto_aead_xchacha20poly1305_ietf_KEYBYTES, "key length");
_Static_assert(TOTPSEAL_NONCE_LEN ==
    crypto_aead_xchacha20poly1305_ietf_NPUBBYTES, "nonce length");
_Static_assert(TOTPSEAL_TAG_LEN ==
    crypto_aead_xchacha20poly1305_ietf_ABYTES, "tag length");

struct totpseal_key *
totpseal_key_from(const uint8_t key[TOTPSEAL_KEY_LEN])
{
	struct totpseal_key *k;

	if ((k = sodium_malloc(sizeof(*k))) == NULL)
		return NULL;
	memcpy(k->k, key, TOTPSEAL_KEY_LEN);
	sodium_mprotect_readonly(k);
	return k;
}

void
totpseal_key_free(struct totpseal_key *k)
{
	if (k != NULL)
		sodium_free(k);		/* wipes */
}

/* Writes a new random key to path (O_EXCL) and makes it durable. */
static int
key_create(const char *path, char *err, size_t err_len)
{
	uint8_t	 key[TOTPSEAL_KEY_LEN];
	char	 dir[PATH_MAX];
	int	 fd = -1, dfd = -1, rc = 0;

	randombytes_buf(key, sizeof(key));
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    0600);
	if (fd == -1) {
		snprintf(err, err_len, "cannot create %s: %s", path,
		    strerror(errno));
		goto out;
	}
	if (write(fd, key, sizeof(key)) != (ssize_t)sizeof(key) ||
	    fsync(fd) == -1) {
		snprintf(err, err_len, "cannot write %s: %s", path,
		    strerror(errno));
		unlink(path);
		goto out;
	}
	snprintf(dir, sizeof(dir), "%s", path);
	if ((dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC)) !=
	    -1)
		(void)fsync(dfd);
	rc = 1;
out:
	sodium_memzero(key, sizeof(key));
	if (fd != -1)
		close(fd);
	if (dfd != -1)
		close(dfd);
	return rc;
}

enum totpseal_load
totpseal_key_load(struct totpseal_key **out, const char *path, int create,
    char *err, size_t err_len)
{
	struct totpseal_key	*k = NULL;
	enum totpseal_load	 ret = TOTPSEAL_FAILED, got = TOTPSEAL_LOADED;
	struct stat		 sb;
	ssize_t			 n;
	int			 fd = -1;

	*out = NULL;
	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1 &&
	    errno == ENOENT && create) {
		if (!key_create(path, err, err_len))
			goto out;
		got = TOTPSEAL_CREATED;
		fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	}
	if (fd == -1) {
		snprintf(err, err_len, "TOTP key %s: %s", path,
		    strerror(errno));
		goto out;
	}
	if (fstat(fd, &sb) == -1 || !S_ISREG(sb.st_mode)) {
		snprintf(err, err_len, "TOTP key %s: not a regular file",
		    path);
		goto out;
	}
	if ((sb.st_mode & 077) != 0) {
		snprintf(err, err_len, "TOTP key %s: mode %03o: readable or "
		    "writable by group or others (chmod 600)", path,
		    (unsigned)(sb.st_mode & 0777));
		goto out;
	}
	if (sb.st_size != TOTPSEAL_KEY_LEN) {
		snprintf(err, err_len, "TOTP key %s: %lld bytes, want %d",
		    path, (long long)sb.st_size, TOTPSEAL_KEY_LEN);
		goto out;
	}
	if ((k = sodium_malloc(sizeof(*k))) == NULL) {
		snprintf(err, err_len, "TOTP key: out of memory");
		goto out;
	}
	n = read(fd, k->k, sizeof(k->k));
	if (n != (ssize_t)sizeof(k->k)) {
		snprintf(err, err_len, "TOTP key %s: short read", path);
		goto out;
	}
	sodium_mprotect_readonly(k);
	*out = k;
	k = NULL;
	ret = got;
out:
	if (fd != -1)
		close(fd);
	totpseal_key_free(k);
	return ret;
}

int
totpseal_seal(const struct totpseal_key *k, const char *name, uint8_t *out,
    size_t out_cap, size_t *out_len, const uint8_t *plain, size_t len)
{
	unsigned long long	 clen = 0;

	*out_len = 0;
	if (k == NULL || len > SIZE_MAX - TOTPSEAL_OVERHEAD ||
	    out_cap < len + TOTPSEAL_OVERHEAD)
		return 0;
	randombytes_buf(out, TOTPSEAL_NONCE_LEN);
	if (crypto_aead_xchacha20poly1305_ietf_encrypt(out +
	    TOTPSEAL_NONCE_LEN, &clen, plain, len,
	    (const unsigned char *)name, strlen(name), NULL, out,
	    k->k) != 0)
		return 0;
	*out_len = TOTPSEAL_NONCE_LEN + (size_t)clen;
	return 1;
}

int
totpseal_open(const struct totpseal_key *k, const char *name, uint8_t *out,
    size_t out_cap, size_t *out_len, const uint8_t *sealed, size_t len)
{
	unsigned long long	 plen = 0;

	*out_len = 0;
	if (k == NULL || len < TOTPSEAL_OVERHEAD ||
	    out_cap < len - TOTPSEAL_OVERHEAD)
		return 0;
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(out, &plen, NULL,
	    sealed + TOTPSEAL_NONCE_LEN, len - TOTPSEAL_NONCE_LEN,
	    (const unsigned char *)name, strlen(name), sealed, k->k) != 0) {
		sodium_memzero(out, out_cap);
		return 0;
	}
	*out_len = (size_t)plen;
	return 1;
}
