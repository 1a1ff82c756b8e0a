/*
 * cakeys_io.c - key generation, random serials, PEM key and certificate
 * files, small certificate accessors.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509.h>
#include <sodium.h>

#include "common/log.h"
#include "ca/ca.h"

int
ca_keygen(EVP_PKEY **out, const char *type)
{
	EVP_PKEY *key = NULL;
	int rc = 0;

	*out = NULL;
	if (type == NULL || *type == '\0' || strcmp(type, "ec-p256") == 0)
		key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	else if (strcmp(type, "ec-p384") == 0)
		key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
	else if (strcmp(type, "ed25519") == 0)
		key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	else if (strcmp(type, "rsa-3072") == 0)
		key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)3072);
	else {
		log_warnx("key type \"%s\" unknown (ec-p256, ec-p384, "
		    "ed25519, rsa-3072)", type);
		goto out;
	}
	if (key == NULL) {
		log_ssl("key generation (%s)", type ? type : "ec-p256");
		goto out;
	}
	*out = key;
	rc = 1;
 out:
	return rc;
}

void
ca_random_serial(uint8_t out[CA_SERIAL_LEN])
{
	size_t i;
	uint8_t acc;

	if (sodium_init() < 0)
		fatalx("sodium_init failed");
	do {
		randombytes_buf(out, CA_SERIAL_LEN);
		out[0] &= 0x7f;
		acc = 0;
		for (i = 0; i < CA_SERIAL_LEN; i++)
			acc |= out[i];
	} while (acc == 0);
}

static int
pass_cb(char *buf, int size, int rwflag, void *u)
{
	const char *pass = u;
	size_t len;

	(void)rwflag;
	if (pass == NULL || size <= 0)
		return -1;
	len = strlen(pass);
	if (len > (size_t)size)
		return -1;
	memcpy(buf, pass, len);
	return (int)len;
}

/*
 * Opens path for a new file with mode, O_EXCL, sets the exact mode and,
 * unless uid and gid are both -1, the owner (on the descriptor).
 */
static int
create_excl(const char *path, mode_t mode, uid_t uid, gid_t gid, char *err,
    size_t err_len)
{
	int fd;

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
	    mode);
	if (fd == -1) {
		snprintf(err, err_len, "%s: %s%s", path, strerror(errno),
		    errno == EEXIST ? " (refusing to overwrite)" : "");
		return -1;
	}
	if (fchmod(fd, mode) == -1) {
		snprintf(err, err_len, "%s: chmod: %s", path, strerror(errno));
		close(fd);
		unlink(path);
		return -1;
	}
	if ((uid != (uid_t)-1 || gid != (gid_t)-1) &&
	    fchown(fd, uid, gid) == -1) {
		snprintf(err, err_len, "%s: chown to %d:%d: %s", path,
		    (int)uid, (int)gid, strerror(errno));
		close(fd);
		unlink(path);
		return -1;
	}
	return fd;
}

/* Writes what the BIO holds to fd, fsyncs and closes it. */
static int
flush_mem_to_fd(BIO *mem, int fd, const char *path, char *err,
    size_t err_len)
{
	char *data;
	long len;
	ssize_t n;
	size_t off = 0;
	int rc = 0;

	len = BIO_get_mem_data(mem, &data);
	while (len > 0 && off < (size_t)len) {
		n = write(fd, data + off, (size_t)len - off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			snprintf(err, err_len, "%s: write: %s", path,
			    strerror(errno));
			goto out;
		}
		off += (size_t)n;
	}
	if (fsync(fd) == -1) {
		snprintf(err, err_len, "%s: fsync: %s", path, strerror(errno));
		goto out;
	}
	rc = 1;
 out:
	if (close(fd) == -1 && rc) {
		snprintf(err, err_len, "%s: close: %s", path, strerror(errno));
		rc = 0;
	}
	if (!rc)
		unlink(path);
	return rc;
}

/* PKCS#8 PBES2 with PBKDF2-HMAC-SHA256 and AES-256-CBC; 600000 rounds
 * (OWASP 2023) instead of OpenSSL's default 2048. */
#define KEY_PBKDF2_ITER	600000

static int
encode_encrypted(BIO *mem, EVP_PKEY *key, const char *passphrase)
{
	PKCS8_PRIV_KEY_INFO *p8 = NULL;
	X509_SIG *enc = NULL;
	int rc = 0;

	if ((p8 = EVP_PKEY2PKCS8(key)) == NULL ||
	    (enc = PKCS8_encrypt(-1, EVP_aes_256_cbc(), passphrase,
	    (int)strlen(passphrase), NULL, 16, KEY_PBKDF2_ITER, p8)) == NULL ||
	    !PEM_write_bio_PKCS8(mem, enc))
		goto out;
	rc = 1;
 out:
	X509_SIG_free(enc);
	PKCS8_PRIV_KEY_INFO_free(p8);
	return rc;
}

int
ca_key_write(const char *path, EVP_PKEY *key, const char *passphrase,
    char *err, size_t err_len)
{
	return ca_key_write_owned(path, key, passphrase, (uid_t)-1, (gid_t)-1,
	    err, err_len);
}

int
ca_key_write_owned(const char *path, EVP_PKEY *key, const char *passphrase,
    uid_t uid, gid_t gid, char *err, size_t err_len)
{
	BIO *mem = NULL;
	int fd = -1, rc = 0, ok;
	char ebuf[256];

	if ((mem = BIO_new(BIO_s_secmem())) == NULL)
		fatalx("BIO_new");
	if (passphrase != NULL && *passphrase != '\0') {
		if (strlen(passphrase) > 1024) {
			snprintf(err, err_len, "%s: passphrase too long", path);
			goto out;
		}
		ok = encode_encrypted(mem, key, passphrase);
	} else
		ok = PEM_write_bio_PKCS8PrivateKey(mem, key, NULL, NULL, 0,
		    NULL, NULL);
	if (!ok) {
		ssl_errstr(ebuf, sizeof(ebuf));
		snprintf(err, err_len, "%s: encoding the key: %s", path, ebuf);
		goto out;
	}
	if ((fd = create_excl(path, 0600, uid, gid, err, err_len)) == -1)
		goto out;
	rc = flush_mem_to_fd(mem, fd, path, err, err_len);
 out:
	BIO_free(mem);
	return rc;
}

/* Opens path read-only, refusing group/other access when strict. */
static int
open_checked(const char *path, int strict, char *err, size_t err_len)
{
	struct stat sb;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		snprintf(err, err_len, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &sb) == -1 || !S_ISREG(sb.st_mode)) {
		snprintf(err, err_len, "%s: not a regular file", path);
		close(fd);
		return -1;
	}
	if (strict && (sb.st_mode & 077) != 0) {
		snprintf(err, err_len, "%s: key file is accessible by group "
		    "or others (mode %04o); refusing it, run chmod 600 %s",
		    path, (unsigned)(sb.st_mode & 07777), path);
		close(fd);
		return -1;
	}
	return fd;
}

/* A whole PEM file in memory (file_slurp). */
struct filebuf {
	uint8_t	*p;
	size_t	 len;
	int	 secret;	/* sodium_malloc'd: locked, wiped when freed */
};

/*
 * Reads the whole file open on fd, at most max bytes, in a few read(2)s
 * and closes fd.  OpenSSL's descriptor BIO reads PEM one byte per
 * read(2) (BIO_gets): about 600 system calls per certificate, 2,400 for
 * the signer's start.  A secret (a key file) goes into locked memory
 * that file_buf_free wipes.  Returns 1, or 0 with err set.
 */
static int
file_slurp(struct filebuf *fb, int fd, const char *path, size_t max,
    int secret, char *err, size_t err_len)
{
	struct stat sb;
	size_t cap, len = 0;
	ssize_t n;
	int rc = 0;

	memset(fb, 0, sizeof(*fb));
	fb->secret = secret;
	if (fstat(fd, &sb) == -1) {
		snprintf(err, err_len, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (sb.st_size < 0 || (uint64_t)sb.st_size > max) {
		snprintf(err, err_len, "%s: larger than %zu bytes; not a PEM "
		    "%s file", path, max, secret ? "key" : "certificate");
		goto out;
	}
	/* one byte more than the file: a file that grew shows as longer */
	cap = (size_t)sb.st_size + 1;
	/* sodium_malloc needs it; a no-op when done (every program of
	 * ours calls it, a test helper may not) */
	if (secret && sodium_init() < 0)
		fatalx("libsodium initialisation failed");
	fb->p = secret ? sodium_malloc(cap) : malloc(cap);
	if (fb->p == NULL)
		fatal("%s: allocating %zu bytes", path, cap);
	while (len < cap) {
		n = read(fd, fb->p + len, cap - len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			snprintf(err, err_len, "%s: %s", path, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len == cap) {
		snprintf(err, err_len, "%s: changed while being read", path);
		goto out;
	}
	fb->len = len;
	rc = 1;
 out:
	close(fd);
	return rc;
}

static void
file_buf_free(struct filebuf *fb)
{
	if (fb->p == NULL)
		return;
	if (fb->secret)
		sodium_free(fb->p);	/* wipes */
	else
		free(fb->p);
	fb->p = NULL;
}

/* A read-only memory BIO over fb; out of memory is fatal. */
static BIO *
file_bio(const struct filebuf *fb)
{
	BIO *bio;

	if (fb->len > INT_MAX ||
	    (bio = BIO_new_mem_buf(fb->p, (int)fb->len)) == NULL)
		fatalx("BIO_new_mem_buf");
	return bio;
}

int
ca_key_read(EVP_PKEY **out, const char *path, const char *passphrase,
    char *err, size_t err_len)
{
	struct filebuf fb = { NULL, 0, 0 };
	BIO *bio = NULL;
	EVP_PKEY *key = NULL;
	int fd, rc = 0;
	char ebuf[256];

	*out = NULL;
	if (ca_key_is_uri(path))
		return ca_key_token_load(out, path, NULL, err, err_len);
	if ((fd = open_checked(path, 1, err, err_len)) == -1 ||
	    !file_slurp(&fb, fd, path, CA_KEY_FILE_MAX, 1, err, err_len))
		goto out;
	bio = file_bio(&fb);
	key = PEM_read_bio_PrivateKey(bio, NULL, pass_cb, (void *)passphrase);
	if (key == NULL) {
		ssl_errstr(ebuf, sizeof(ebuf));
		snprintf(err, err_len, "%s: cannot read the private key%s: %s",
		    path, passphrase ? " (wrong passphrase?)" :
		    " (encrypted? no passphrase given)", ebuf);
		goto out;
	}
	*out = key;
	rc = 1;
 out:
	BIO_free(bio);
	file_buf_free(&fb);
	return rc;
}

int
ca_cert_write(const char *path, X509 *cert, char *err, size_t err_len)
{
	return ca_cert_write_owned(path, cert, (uid_t)-1, (gid_t)-1, err,
	    err_len);
}

int
ca_cert_write_owned(const char *path, X509 *cert, uid_t uid, gid_t gid,
    char *err, size_t err_len)
{
	BIO *mem = NULL;
	int fd, rc = 0;

	if ((mem = BIO_new(BIO_s_mem())) == NULL)
		fatalx("BIO_new");
	if (!PEM_write_bio_X509(mem, cert)) {
		log_ssl("PEM_write_bio_X509");
		snprintf(err, err_len, "%s: cannot encode the certificate",
		    path);
		goto out;
	}
	if ((fd = create_excl(path, 0644, uid, gid, err, err_len)) == -1)
		goto out;
	rc = flush_mem_to_fd(mem, fd, path, err, err_len);
 out:
	BIO_free(mem);
	return rc;
}

int
ca_cert_read(X509 **out, const char *path, char *err, size_t err_len)
{
	struct filebuf fb = { NULL, 0, 0 };
	BIO *bio = NULL;
	X509 *cert;
	int fd, rc = 0;
	char ebuf[256];

	*out = NULL;
	if ((fd = open_checked(path, 0, err, err_len)) == -1 ||
	    !file_slurp(&fb, fd, path, CA_CERT_FILE_MAX, 0, err, err_len))
		goto out;
	bio = file_bio(&fb);
	if ((cert = PEM_read_bio_X509(bio, NULL, NULL, NULL)) == NULL) {
		ssl_errstr(ebuf, sizeof(ebuf));
		snprintf(err, err_len, "%s: not a PEM certificate: %s", path,
		    ebuf);
		goto out;
	}
	*out = cert;
	rc = 1;
 out:
	BIO_free(bio);
	file_buf_free(&fb);
	return rc;
}

int
ca_cert_serial(const X509 *cert, uint8_t out[CA_SERIAL_LEN])
{
	BIGNUM *bn = NULL;
	int rc = 0;

	bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
	if (bn == NULL) {
		ERR_clear_error();
		goto out;
	}
	if (BN_is_negative(bn) || BN_num_bytes(bn) > CA_SERIAL_LEN)
		goto out;
	if (BN_bn2binpad(bn, out, CA_SERIAL_LEN) != CA_SERIAL_LEN)
		goto out;
	rc = 1;
 out:
	BN_free(bn);
	return rc;
}

static int
asn1_time_unix(const ASN1_TIME *t, int64_t *out)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	if (t == NULL || !ASN1_TIME_to_tm(t, &tm)) {
		ERR_clear_error();
		return 0;
	}
	*out = (int64_t)timegm(&tm);
	return 1;
}

int
ca_cert_times(const X509 *cert, int64_t *out_not_before,
    int64_t *out_not_after)
{
	return asn1_time_unix(X509_get0_notBefore(cert), out_not_before) &&
	    asn1_time_unix(X509_get0_notAfter(cert), out_not_after);
}

int
ca_cert_der(const X509 *cert, uint8_t **out, size_t *out_len)
{
	uint8_t *buf = NULL, *p;
	int len, rc = 0;

	*out = NULL;
	*out_len = 0;
	if ((len = i2d_X509(cert, NULL)) <= 0) {
		log_ssl("i2d_X509");
		goto out;
	}
	if ((buf = malloc((size_t)len)) == NULL)
		fatal("malloc");
	p = buf;
	if (i2d_X509(cert, &p) != len) {
		log_ssl("i2d_X509");
		free(buf);
		goto out;
	}
	*out = buf;
	*out_len = (size_t)len;
	rc = 1;
 out:
	return rc;
}

int
ca_certs_read(STACK_OF(X509) **out, const char *path, char *err,
    size_t err_len)
{
	struct filebuf fb = { NULL, 0, 0 };
	STACK_OF(X509) *sk = NULL;
	BIO *bio = NULL;
	X509 *x;
	unsigned long e;
	int fd, rc = 0;
	char ebuf[256];

	*out = NULL;
	if ((fd = open_checked(path, 0, err, err_len)) == -1 ||
	    !file_slurp(&fb, fd, path, CA_CERT_FILE_MAX * CA_CHAIN_MAX, 0, err,
	    err_len))
		goto out;
	bio = file_bio(&fb);
	if ((sk = sk_X509_new_null()) == NULL)
		fatalx("sk_X509_new_null");
	for (;;) {
		if ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) == NULL) {
			/* the end of the file reads as "no start line" */
			e = ERR_peek_last_error();
			if (sk_X509_num(sk) > 0 &&
			    ERR_GET_LIB(e) == ERR_LIB_PEM &&
			    ERR_GET_REASON(e) == PEM_R_NO_START_LINE) {
				ERR_clear_error();
				break;
			}
			ssl_errstr(ebuf, sizeof(ebuf));
			snprintf(err, err_len, "%s: %s: %s", path,
			    sk_X509_num(sk) == 0 ? "no PEM certificate" :
			    "a certificate does not parse", ebuf);
			goto out;
		}
		if (sk_X509_num(sk) == CA_CHAIN_MAX) {
			X509_free(x);
			snprintf(err, err_len, "%s: more than %d certificates",
			    path, CA_CHAIN_MAX);
			goto out;
		}
		if (!sk_X509_push(sk, x))
			fatalx("sk_X509_push");
	}
	*out = sk;
	sk = NULL;
	rc = 1;
 out:
	sk_X509_pop_free(sk, X509_free);
	BIO_free(bio);
	file_buf_free(&fb);
	return rc;
}

int
ca_certs_write(const char *path, STACK_OF(X509) *certs, char *err,
    size_t err_len)
{
	BIO *mem = NULL;
	int fd, i, rc = 0;

	if ((mem = BIO_new(BIO_s_mem())) == NULL)
		fatalx("BIO_new");
	for (i = 0; i < sk_X509_num(certs); i++)
		if (!PEM_write_bio_X509(mem, sk_X509_value(certs, i))) {
			log_ssl("PEM_write_bio_X509");
			snprintf(err, err_len, "%s: cannot encode the "
			    "certificates", path);
			goto out;
		}
	if ((fd = create_excl(path, 0644, (uid_t)-1, (gid_t)-1, err,
	    err_len)) == -1)
		goto out;
	rc = flush_mem_to_fd(mem, fd, path, err, err_len);
 out:
	BIO_free(mem);
	return rc;
}

int
ca_csr_write(const char *path, X509_REQ *req, char *err, size_t err_len)
{
	BIO *mem = NULL;
	int fd, rc = 0;

	if ((mem = BIO_new(BIO_s_mem())) == NULL)
		fatalx("BIO_new");
	if (!PEM_write_bio_X509_REQ(mem, req)) {
		log_ssl("PEM_write_bio_X509_REQ");
		snprintf(err, err_len, "%s: cannot encode the CSR", path);
		goto out;
	}
	if ((fd = create_excl(path, 0644, (uid_t)-1, (gid_t)-1, err,
	    err_len)) == -1)
		goto out;
	rc = flush_mem_to_fd(mem, fd, path, err, err_len);
 out:
	BIO_free(mem);
	return rc;
}
