/*
 * ocsp_serve.c - a standalone OCSP HTTP responder over a fresh store, for
 * interop checks and benchmarks without the rest of micad.
 *
 *   ocsp_serve -d DIR -c ca.crt -s signer.crt -k signer.key
 *       [-l 127.0.0.1:7780] [-t threads] [-S signers] [-g good.crt]...
 *       [-r revoked.crt]...
 *       [-h held.crt]... [-U]
 *
 * DIR is created as a new store; -g/-r/-h add certificates as good,
 * revoked (keyCompromise) or on hold; -U answers never-issued serials as
 * revoked (RFC 6960 2.2).  Prints "port N" once listening; SIGTERM or
 * SIGINT stops it.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "common/log.h"
#include "store/store.h"
#include "ocsp/ocsp.h"

#define MAX_CERTS	64

struct add {
	X509	*x;
	int	 status;
};

static volatile sig_atomic_t	stop;

static void
on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static X509 *
load_cert(const char *path)
{
	FILE *f;
	X509 *x;

	if ((f = fopen(path, "r")) == NULL)
		fatal("%s", path);
	if ((x = PEM_read_X509(f, NULL, NULL, NULL)) == NULL)
		fatalx("%s: not a PEM certificate", path);
	fclose(f);
	return x;
}

static enum store_rc
add_one(struct store_txn *txn, void *arg)
{
	struct add *a = arg;
	struct cert_rec rec;
	const ASN1_INTEGER *sn = X509_get0_serialNumber(a->x);
	unsigned char *der = NULL;
	int len, n;
	enum store_rc rc;

	memset(&rec, 0, sizeof(rec));
	n = ASN1_STRING_length(sn);
	if (n > 16)
		return STORE_INVALID;
	memcpy(rec.serial + 16 - n, ASN1_STRING_get0_data(sn), n);
	rec.st.status = CERT_GOOD;
	rec.issued_at = time(NULL);
	snprintf(rec.account, sizeof(rec.account), "bench");
	if ((len = i2d_X509(a->x, &der)) <= 0)
		return STORE_INVALID;
	rec.der = der;
	rec.der_len = (size_t)len;
	rc = store_cert_add(txn, &rec);
	OPENSSL_free(der);
	if (rc == STORE_OK && a->status != CERT_GOOD)
		rc = store_cert_set_status(txn, rec.serial, a->status,
		    REASON_KEY_COMPROMISE, time(NULL), 0, NULL);
	return rc;
}

int
main(int argc, char **argv)
{
	struct store_opts so;
	struct ocsp_opts oo;
	struct ocsp_http_opts ho;
	struct store *st = NULL;
	struct ocsp_responder *r;
	struct ocsp_http *h;
	struct add adds[MAX_CERTS];
	const char *dir = NULL, *ca = NULL, *scert = NULL, *skey = NULL;
	X509 *cax, *sx;
	EVP_PKEY *key;
	FILE *f;
	int ch, nadds = 0, i;
	enum store_rc rc;

	log_init("ocsp_serve", LOG_LVL_WARN);
	ocsp_opts_defaults(&oo);
	ocsp_http_opts_defaults(&ho);
	while ((ch = getopt(argc, argv, "d:c:s:k:l:t:S:g:r:h:U")) != -1) {
		switch (ch) {
		case 'd': dir = optarg; break;
		case 'c': ca = optarg; break;
		case 's': scert = optarg; break;
		case 'k': skey = optarg; break;
		case 'l':
			snprintf(ho.listen, sizeof(ho.listen), "%s", optarg);
			break;
		case 't': ho.threads = atoi(optarg); break;
		case 'S': ho.signers = atoi(optarg); break;
		case 'U': oo.unknown_revoked = 1; break;
		case 'g': case 'r': case 'h':
			if (nadds == MAX_CERTS)
				fatalx("too many certificates");
			adds[nadds].x = load_cert(optarg);
			adds[nadds++].status = ch == 'g' ? CERT_GOOD :
			    ch == 'r' ? CERT_REVOKED : CERT_HOLD;
			break;
		default:
			fatalx("usage: see tests/helpers/ocsp_serve.c");
		}
	}
	if (dir == NULL || ca == NULL || scert == NULL || skey == NULL)
		fatalx("-d, -c, -s and -k are required");
	memset(&so, 0, sizeof(so));
	so.create = 1;
	if ((rc = store_open(&st, dir, &so)) != STORE_OK)
		fatalx("store %s: %s", dir, store_strerror(rc));
	for (i = 0; i < nadds; i++) {
		if ((rc = store_write(st, add_one, &adds[i])) != STORE_OK)
			fatalx("add certificate: %s", store_strerror(rc));
		X509_free(adds[i].x);
	}
	cax = load_cert(ca);
	sx = load_cert(scert);
	if ((f = fopen(skey, "r")) == NULL)
		fatal("%s", skey);
	if ((key = PEM_read_PrivateKey(f, NULL, NULL, NULL)) == NULL)
		fatalx("%s: not a PEM private key", skey);
	fclose(f);
	if ((r = ocsp_responder_new(&oo, cax, sx, key, st)) == NULL ||
	    (h = ocsp_http_new(r, &ho)) == NULL)
		fatalx("cannot create the responder");
	signal(SIGPIPE, SIG_IGN);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	if (!ocsp_http_start(h))
		fatalx("cannot listen on %s", ho.listen);
	printf("port %d\n", ocsp_http_port(h));
	fflush(stdout);
	while (!stop)
		pause();
	ocsp_http_free(h);
	ocsp_responder_free(r);
	X509_free(cax);
	X509_free(sx);
	EVP_PKEY_free(key);
	store_close(st);
	return 0;
}
