/*
 * issue_load.c - durable issuances through the admin socket from several
 * concurrent clients: each thread connects, sends `issue` with a CSR
 * attachment (as mica-admin does), waits for the certificate, and starts
 * over.  A reply with a certificate is an acknowledgement: the issuance
 * is committed (and journalled).  Prints "issued N in S s: R/s".
 *
 *   issue_load -s SOCKET -a ACCOUNT -r CSR.der [-c CLIENTS] [-n PER_CLIENT]
 *              [-o ACKED]
 *
 * -o: every acknowledged serial (uppercase hex, as mica-admin prints) is
 * appended as one line, flushed before the next request: what the
 * clients were told.  A failed request ends that client (micad killed).
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/asn1.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "admin/admin.h"
#include "common/bytes.h"

static const char *sock_path, *account;
static uint8_t *csr;
static size_t csr_len;
static long per_client = 100;
static FILE *acked;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static long total;

static int
io_all(int fd, void *buf, size_t len, int wr)
{
	uint8_t *p = buf;
	ssize_t n;

	while (len > 0) {
		n = wr ? write(fd, p, len) : read(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return 0;
		p += n;
		len -= (size_t)n;
	}
	return 1;
}

/* The next DER element of universal type tag: p moves into its
 * contents (into: 1) or past it (into: 0). */
static int
der_step(const unsigned char **p, long *left, int tag, int into)
{
	const unsigned char *q = *p;
	long len;
	int t, xclass, r;

	r = ASN1_get_object(&q, &len, &t, &xclass, *left);
	if ((r & 0x80) != 0 || r == 0x21 || t != tag ||
	    len > *left - (long)(q - *p))
		return 0;
	*left -= (long)(q - *p) + (into ? 0 : len);
	*p = into ? q : q + len;
	if (into)
		*left = len;
	return 1;
}

/*
 * The serial (uppercase hex, as mica-admin prints it) of the PEM or DER
 * certificate in buf, read off the DER without decoding the certificate
 * (whose key OpenSSL 3 decodes at a cost that is the client's, not
 * micad's): Certificate -> tbsCertificate -> [0] version -> serial.
 */
static int
cert_serial_hex(const uint8_t *buf, size_t len, char *hex, size_t hex_len)
{
	BIO *bio = NULL;
	unsigned char *der = NULL;
	char *name = NULL, *hdr = NULL;
	const unsigned char *p;
	long n, left, vlen;
	int t, xclass, r, i = 0, ok = 0;
	size_t o;

	if (len >= 10 && memcmp(buf, "-----BEGIN", 10) == 0) {
		if (len > INT_MAX ||
		    (bio = BIO_new_mem_buf(buf, (int)len)) == NULL ||
		    !PEM_read_bio(bio, &name, &hdr, &der, &n))
			goto out;
		p = der;
		left = n;
	} else {
		p = buf;
		left = (long)len;
	}
	if (!der_step(&p, &left, V_ASN1_SEQUENCE, 1) ||
	    !der_step(&p, &left, V_ASN1_SEQUENCE, 1))
		goto out;
	/* [0] EXPLICIT version, when there */
	{
		const unsigned char *q = p;

		r = ASN1_get_object(&q, &vlen, &t, &xclass, left);
		if ((r & 0x80) == 0 && xclass == V_ASN1_CONTEXT_SPECIFIC &&
		    t == 0) {
			left -= (long)(q - p) + vlen;
			p = q + vlen;
		}
	}
	{
		const unsigned char *q = p;

		r = ASN1_get_object(&q, &vlen, &t, &xclass, left);
		if ((r & 0x80) != 0 || t != V_ASN1_INTEGER || vlen < 1 ||
		    vlen > 40)
			goto out;
		p = q;
	}
	/* as BN_bn2hex: no leading zero bytes, "0" for zero */
	while (i < vlen - 1 && p[i] == 0)
		i++;
	for (o = 0; i < vlen && o + 3 <= hex_len; i++, o += 2)
		snprintf(hex + o, 3, "%02X", p[i]);
	if (i != vlen)
		goto out;
	ok = 1;
 out:
	ERR_clear_error();
	OPENSSL_free(name);
	OPENSSL_free(hdr);
	OPENSSL_free(der);
	BIO_free(bio);
	return ok;
}

/* One issue request; 1 and the serial's hex when acknowledged. */
static int
issue_one(char *hex, size_t hex_len)
{
	struct sockaddr_un sun;
	struct adm_msg req, rep;
	const struct adm_attach *cert;
	struct wb b;
	uint8_t hdr[4], *body = NULL;
	uint32_t len;
	char err[256];
	int fd = -1, ok = 0;
	static const char *argv[] = { "issue", "--account", NULL, "--csr",
	    "load.csr", "--days", "30" };
	size_t i;

	adm_msg_init(&req);
	adm_msg_init(&rep);
	wb_init(&b);
	for (i = 0; i < sizeof(argv) / sizeof(argv[0]); i++)
		req.argv[req.argc++] = strdup(argv[i] ? argv[i] : account);
	adm_msg_attach(&req, "csr", csr, csr_len);
	if (!adm_request_encode(&b, &req))
		goto out;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", sock_path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM, 0)) < 0 ||
	    connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0 ||
	    !io_all(fd, b.data, b.len, 1) || !io_all(fd, hdr, 4, 0))
		goto out;
	len = be32_get(hdr);
	if (len > ADM_MAX_REPLY || (body = malloc(len ? len : 1)) == NULL ||
	    !io_all(fd, body, len, 0) ||
	    !adm_reply_parse(&rep, body, len, err, sizeof(err)) ||
	    rep.code != 0 || (cert = adm_msg_get(&rep, "cert")) == NULL)
		goto out;
	if (!cert_serial_hex(cert->data, cert->len, hex, hex_len))
		goto out;
	ok = 1;
out:
	free(body);
	if (fd >= 0)
		close(fd);
	wb_cleanup(&b);
	adm_msg_cleanup(&req);
	adm_msg_cleanup(&rep);
	return ok;
}

static void *
client(void *arg)
{
	char hex[80];
	long i, n = 0;

	(void)arg;
	for (i = 0; i < per_client; i++) {
		if (!issue_one(hex, sizeof(hex)))
			break;
		n++;
		if (acked != NULL) {
			pthread_mutex_lock(&mu);
			fprintf(acked, "%s\n", hex);
			fflush(acked);
			pthread_mutex_unlock(&mu);
		}
	}
	pthread_mutex_lock(&mu);
	total += n;
	pthread_mutex_unlock(&mu);
	return NULL;
}

static int
read_csr(const char *path)
{
	FILE *f;
	uint8_t buf[65536];
	size_t n;

	if ((f = fopen(path, "rb")) == NULL)
		return 0;
	n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	if (n == 0 || (csr = malloc(n)) == NULL)
		return 0;
	memcpy(csr, buf, n);
	csr_len = n;
	return 1;
}

int
main(int argc, char **argv)
{
	struct timespec t0, t1;
	pthread_t *th;
	double secs;
	int ch, clients = 1, i;

	while ((ch = getopt(argc, argv, "s:a:r:c:n:o:")) != -1) {
		switch (ch) {
		case 's': sock_path = optarg; break;
		case 'a': account = optarg; break;
		case 'r':
			if (!read_csr(optarg)) {
				fprintf(stderr, "issue_load: %s: cannot read\n",
				    optarg);
				return 1;
			}
			break;
		case 'c': clients = atoi(optarg); break;
		case 'n': per_client = atol(optarg); break;
		case 'o':
			if ((acked = fopen(optarg, "a")) == NULL) {
				perror(optarg);
				return 1;
			}
			break;
		default:
			goto usage;
		}
	}
	if (sock_path == NULL || account == NULL || csr == NULL ||
	    clients < 1 || clients > 1024 || per_client < 1)
		goto usage;
	if ((th = calloc((size_t)clients, sizeof(*th))) == NULL)
		return 1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < clients; i++)
		if (pthread_create(&th[i], NULL, client, NULL) != 0)
			return 1;
	for (i = 0; i < clients; i++)
		pthread_join(th[i], NULL);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (double)(t1.tv_sec - t0.tv_sec) +
	    (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	printf("issued %ld in %.2f s: %.0f/s with %d clients\n", total, secs,
	    secs > 0 ? (double)total / secs : 0.0, clients);
	free(th);
	free(csr);
	if (acked != NULL)
		fclose(acked);
	return total == (long)clients * per_client ? 0 : 1;
usage:
	fprintf(stderr, "usage: issue_load -s SOCKET -a ACCOUNT -r CSR "
	    "[-c CLIENTS] [-n PER_CLIENT] [-o ACKED]\n");
	return 2;
}
