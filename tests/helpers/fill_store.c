/*
 * fill_store.c - adds N certificates to an initialised CA's store, offline
 * (micad stopped), for the OCSP benchmark's large stores.
 *
 *   fill_store -d STOREDIR -c ca.crt -n N [-b batch] [-r revoke_every]
 *       [-s der_bytes] [-i index.txt] [-q num_requests -o reqdir]
 *
 * Serials are 16 random bytes (top bit clear), sorted before insertion so
 * each batch (one store_write, default 10,000 certificates) touches few
 * pages.  The DER is a filler SEQUENCE of der_bytes (OCSP reads only the
 * state).  Every revoke_every-th certificate (default 100; 0 = none) is
 * revoked as superseded: not keyCompromise, whose revocation indexes the
 * certificate's key (the filler has none, and the store would warn about
 * every such record).  -i appends the same certificates to an
 * `openssl ca` index.txt (for `openssl ocsp -index`); -q writes that many
 * OCSP requests (SHA-1 CertID) for random filled serials as
 * reqdir/req_K.der (nonce-less) and reqdir/nonce_K.der (the same CertID
 * with a 16-byte nonce), K = 0..num_requests-1.  Prints one key=value
 * line.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sodium.h>

#include "common/log.h"
#include "store/store.h"

#define DEFAULT_BATCH	10000
#define DEFAULT_REVOKE	100
#define DEFAULT_DER	512
#define MAX_DER		65536
#define MAX_CERTS	100000000UL
#define YEAR		(365 * 86400LL)

struct fill {
	uint8_t		(*serials)[STORE_SERIAL_LEN];
	size_t		 num;
	size_t		 next;		/* first serial of the batch */
	size_t		 batch;
	size_t		 revoke_every;
	size_t		 revoked;
	uint8_t		*der;
	size_t		 der_len;
	int64_t		 now;
};

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
serial_cmp(const void *a, const void *b)
{
	return memcmp(a, b, STORE_SERIAL_LEN);
}

static int
is_revoked(const struct fill *f, size_t i)
{
	return f->revoke_every != 0 && i % f->revoke_every == 0;
}

/* One batch: serials [next, next + batch) in one write transaction. */
static enum store_rc
add_batch(struct store_txn *txn, void *arg)
{
	struct fill *f = arg;
	struct cert_rec rec;
	size_t i, end = f->next + f->batch;
	enum store_rc rc = STORE_OK;

	if (end > f->num)
		end = f->num;
	for (i = f->next; i < end; i++) {
		memset(&rec, 0, sizeof(rec));
		memcpy(rec.serial, f->serials[i], STORE_SERIAL_LEN);
		rec.st.status = CERT_GOOD;
		rec.st.not_before = f->now - 3600;
		rec.st.not_after = f->now + YEAR;
		rec.issued_at = f->now - 3600;
		snprintf(rec.account, sizeof(rec.account), "fill");
		rec.der = f->der;
		rec.der_len = f->der_len;
		if ((rc = store_cert_add(txn, &rec)) != STORE_OK)
			break;
		if (is_revoked(f, i) && (rc = store_cert_set_status(txn,
		    rec.serial, CERT_REVOKED, REASON_SUPERSEDED,
		    f->now - 60, 0, NULL)) != STORE_OK)
			break;
	}
	return rc;
}

/* Serial as `openssl ca` writes it: hex byte pairs, no leading zeros. */
static void
serial_hex(char *out, const uint8_t serial[STORE_SERIAL_LEN])
{
	size_t i = 0, n = 0;

	while (i < STORE_SERIAL_LEN - 1 && serial[i] == 0)
		i++;
	for (; i < STORE_SERIAL_LEN; i++)
		n += (size_t)sprintf(out + n, "%02X", serial[i]);
}

static void
utc_time(char *out, size_t len, int64_t t)
{
	struct tm tm;
	time_t tt = (time_t)t;

	gmtime_r(&tt, &tm);
	strftime(out, len, "%y%m%d%H%M%SZ", &tm);
}

static int
write_index(const struct fill *f, const char *path)
{
	FILE *fp;
	char hex[2 * STORE_SERIAL_LEN + 1], exp[32], rev[32];
	size_t i;
	int rc = 0;

	if ((fp = fopen(path, "a")) == NULL) {
		log_warn("%s", path);
		return 0;
	}
	utc_time(exp, sizeof(exp), f->now + YEAR);
	utc_time(rev, sizeof(rev), f->now - 60);
	for (i = 0; i < f->num; i++) {
		serial_hex(hex, f->serials[i]);
		if (is_revoked(f, i))
			fprintf(fp, "R\t%s\t%s,superseded\t%s\tunknown\t"
			    "/CN=fill-%zu\n", exp, rev, hex, i);
		else
			fprintf(fp, "V\t%s\t\t%s\tunknown\t/CN=fill-%zu\n",
			    exp, hex, i);
	}
	if (fflush(fp) != 0 || ferror(fp)) {
		log_warn("%s", path);
		goto out;
	}
	rc = 1;
 out:
	if (fclose(fp) != 0)
		rc = 0;
	return rc;
}

/* An OCSPRequest for one serial (SHA-1 CertID, RFC 5019), nonce or not. */
static int
write_request(X509 *ca, const uint8_t serial[STORE_SERIAL_LEN], int nonce,
    const char *path)
{
	BIGNUM *bn = NULL;
	ASN1_INTEGER *sn = NULL;
	OCSP_CERTID *cid = NULL;
	OCSP_REQUEST *req = NULL;
	unsigned char *der = NULL;
	FILE *fp = NULL;
	int len, rc = 0;

	if ((bn = BN_bin2bn(serial, STORE_SERIAL_LEN, NULL)) == NULL ||
	    (sn = BN_to_ASN1_INTEGER(bn, NULL)) == NULL ||
	    (cid = OCSP_cert_id_new(EVP_sha1(), X509_get_subject_name(ca),
	    X509_get0_pubkey_bitstr(ca), sn)) == NULL ||
	    (req = OCSP_REQUEST_new()) == NULL) {
		log_ssl("request for %s", path);
		goto out;
	}
	if (OCSP_request_add0_id(req, cid) == NULL) {
		log_ssl("request for %s", path);
		goto out;
	}
	cid = NULL;	/* owned by req */
	if (nonce && OCSP_request_add1_nonce(req, NULL, 16) != 1) {
		log_ssl("nonce for %s", path);
		goto out;
	}
	if ((len = i2d_OCSP_REQUEST(req, &der)) <= 0) {
		log_ssl("encode %s", path);
		goto out;
	}
	if ((fp = fopen(path, "wb")) == NULL ||
	    fwrite(der, 1, (size_t)len, fp) != (size_t)len) {
		log_warn("%s", path);
		goto out;
	}
	rc = 1;
 out:
	if (fp != NULL && fclose(fp) != 0)
		rc = 0;
	OPENSSL_free(der);
	OCSP_REQUEST_free(req);
	OCSP_CERTID_free(cid);
	ASN1_INTEGER_free(sn);
	BN_free(bn);
	return rc;
}

static int
write_requests(const struct fill *f, const char *ca_path, size_t num,
    const char *dir)
{
	FILE *fp;
	X509 *ca = NULL;
	char path[4096], npath[4096];
	const uint8_t *serial;
	size_t i;
	int rc = 0;

	if ((fp = fopen(ca_path, "r")) == NULL) {
		log_warn("%s", ca_path);
		return 0;
	}
	ca = PEM_read_X509(fp, NULL, NULL, NULL);
	fclose(fp);
	if (ca == NULL) {
		log_ssl("%s: not a PEM certificate", ca_path);
		return 0;
	}
	for (i = 0; i < num; i++) {
		serial = f->serials[randombytes_uniform((uint32_t)f->num)];
		if (snprintf(path, sizeof(path), "%s/req_%zu.der", dir, i) >=
		    (int)sizeof(path) || snprintf(npath, sizeof(npath),
		    "%s/nonce_%zu.der", dir, i) >= (int)sizeof(npath) ||
		    !write_request(ca, serial, 0, path) ||
		    !write_request(ca, serial, 1, npath))
			goto out;
	}
	rc = 1;
 out:
	X509_free(ca);
	return rc;
}

/* Random unique serials, top bit clear, sorted. */
static int
make_serials(struct fill *f)
{
	size_t i, k;

	if ((f->serials = calloc(f->num, STORE_SERIAL_LEN)) == NULL)
		return 0;
	randombytes_buf(f->serials, f->num * STORE_SERIAL_LEN);
	for (i = 0; i < f->num; i++) {
		f->serials[i][0] &= 0x7f;
		f->serials[i][0] |= 0x01;	/* never all zero */
	}
	qsort(f->serials, f->num, STORE_SERIAL_LEN, serial_cmp);
	for (i = 1, k = 1; i < f->num; i++)	/* drop (unlikely) twins */
		if (memcmp(f->serials[i], f->serials[k - 1],
		    STORE_SERIAL_LEN) != 0)
			memcpy(f->serials[k++], f->serials[i],
			    STORE_SERIAL_LEN);
	f->num = k;
	return 1;
}

static size_t
parse_count(const char *s, size_t max)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *s == '\0' || *end != '\0' || v > max)
		fatalx("bad number \"%s\" (0..%zu)", s, max);
	return (size_t)v;
}

int
main(int argc, char **argv)
{
	struct store_opts so;
	struct store *st = NULL;
	struct fill f;
	const char *dir = NULL, *ca = NULL, *index = NULL, *reqdir = NULL;
	size_t nreq = 0;
	double t0, t_fill, t_index;
	int ch;
	enum store_rc rc;

	log_init("fill_store", LOG_LVL_WARN);
	memset(&f, 0, sizeof(f));
	f.batch = DEFAULT_BATCH;
	f.revoke_every = DEFAULT_REVOKE;
	f.der_len = DEFAULT_DER;
	while ((ch = getopt(argc, argv, "d:c:n:b:r:s:i:q:o:")) != -1) {
		switch (ch) {
		case 'd': dir = optarg; break;
		case 'c': ca = optarg; break;
		case 'n': f.num = parse_count(optarg, MAX_CERTS); break;
		case 'b': f.batch = parse_count(optarg, 1000000); break;
		case 'r': f.revoke_every = parse_count(optarg, MAX_CERTS); break;
		case 's': f.der_len = parse_count(optarg, MAX_DER); break;
		case 'i': index = optarg; break;
		case 'q': nreq = parse_count(optarg, 1000000); break;
		case 'o': reqdir = optarg; break;
		default:
			fatalx("usage: see tests/helpers/fill_store.c");
		}
	}
	if (dir == NULL || f.num == 0 || f.batch == 0 || f.der_len < 4 ||
	    (nreq > 0 && (reqdir == NULL || ca == NULL)))
		fatalx("-d and -n > 0 are required; -q needs -o and -c; "
		    "-s >= 4");
	if (sodium_init() < 0)
		fatalx("sodium_init");
	/* A filler SEQUENCE: 30 82 LL LL 00... */
	if ((f.der = calloc(1, f.der_len)) == NULL)
		fatal("calloc");
	f.der[0] = 0x30;
	f.der[1] = 0x82;
	f.der[2] = (uint8_t)((f.der_len - 4) >> 8);
	f.der[3] = (uint8_t)(f.der_len - 4);
	f.now = (int64_t)time(NULL);
	if (!make_serials(&f))
		fatal("serials");

	memset(&so, 0, sizeof(so));
	so.create = 0;
	so.exclusive = 1;	/* STORE_LOCKED while micad runs */
	if ((rc = store_open(&st, dir, &so)) != STORE_OK)
		fatalx("store %s: %s", dir, store_strerror(rc));
	t0 = now_s();
	for (f.next = 0; f.next < f.num; f.next += f.batch)
		if ((rc = store_write(st, add_batch, &f)) != STORE_OK)
			fatalx("store_write at %zu: %s", f.next,
			    store_strerror(rc));
	t_fill = now_s() - t0;
	store_close(st);
	f.revoked = f.revoke_every == 0 ? 0 :
	    (f.num + f.revoke_every - 1) / f.revoke_every;

	t0 = now_s();
	if (index != NULL && !write_index(&f, index))
		fatalx("cannot write %s", index);
	t_index = now_s() - t0;
	if (nreq > 0 && !write_requests(&f, ca, nreq, reqdir))
		fatalx("cannot write the requests");
	printf("certs=%zu revoked=%zu batch=%zu der_bytes=%zu fill_s=%.2f "
	    "index_s=%.2f requests=%zu\n", f.num, f.revoked, f.batch,
	    f.der_len, t_fill, t_index, nreq);
	free(f.serials);
	free(f.der);
	return 0;
}
