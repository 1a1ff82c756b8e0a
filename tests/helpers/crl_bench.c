/*
 * crl_bench.c - times mica's full CRL build for N revoked serials and the
 * delta build after one more revocation, and writes the same serials as an
 * openssl ca index.txt (plus CA key, cert and config) so tests/bench/crl.sh
 * can time `openssl ca -gencrl` over exactly the same revocations.
 *
 *   crl_bench N DIR
 *
 * Prints one key=value line.  Memory is the process peak (ru_maxrss),
 * printed before and after the full build.
 */
#include <sys/resource.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "common/bytes.h"
#include "common/log.h"
#include "store/store.h"
#include "crl/crl.h"
#include "crl/crl_int.h"	/* the service's zero-copy build path */

#define T0	1700000000LL

static X509	*bench_ca;
static EVP_PKEY	*bench_key;

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long
maxrss_kb(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

static int
make_ca(X509 **out_cert, EVP_PKEY **out_key)
{
	X509 *c;
	EVP_PKEY *k;
	X509_NAME *n;
	X509_EXTENSION *ext;
	X509V3_CTX v3;

	if ((k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256")) == NULL ||
	    (c = X509_new()) == NULL)
		return 0;
	X509_set_version(c, X509_VERSION_3);
	ASN1_INTEGER_set(X509_get_serialNumber(c), 1);
	n = X509_get_subject_name(c);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
	    (const unsigned char *)"mica bench CA", -1, -1, 0);
	X509_set_issuer_name(c, n);
	X509_gmtime_adj(X509_getm_notBefore(c), -3600);
	X509_gmtime_adj(X509_getm_notAfter(c), 86400 * 365);
	X509_set_pubkey(c, k);
	X509V3_set_ctx(&v3, c, c, NULL, NULL, 0);
	if ((ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_key_identifier,
	    "hash")) == NULL)
		return 0;
	X509_add_ext(c, ext, -1);
	X509_EXTENSION_free(ext);
	if ((ext = X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints,
	    "critical,CA:TRUE")) == NULL)
		return 0;
	X509_add_ext(c, ext, -1);
	X509_EXTENSION_free(ext);
	if (X509_sign(c, k, EVP_sha256()) <= 0)
		return 0;
	*out_cert = c;
	*out_key = k;
	return 1;
}

static int
write_ca(const char *dir, X509 *c, EVP_PKEY *k)
{
	char path[1024];
	FILE *f;
	int ok;

	snprintf(path, sizeof(path), "%s/ca.pem", dir);
	if ((f = fopen(path, "w")) == NULL)
		return 0;
	ok = PEM_write_X509(f, c);
	fclose(f);
	snprintf(path, sizeof(path), "%s/ca.key", dir);
	if (!ok || (f = fopen(path, "w")) == NULL)
		return 0;
	ok = PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL);
	fclose(f);
	snprintf(path, sizeof(path), "%s/ca.cnf", dir);
	if (!ok || (f = fopen(path, "w")) == NULL)
		return 0;
	fprintf(f, "[ ca ]\ndefault_ca = cadef\n[ cadef ]\ndir = %s\n"
	    "database = $dir/index.txt\ncertificate = $dir/ca.pem\n"
	    "private_key = $dir/ca.key\ndefault_md = sha256\n"
	    "default_crl_days = 7\ncrlnumber = $dir/crlnumber\n"
	    "unique_subject = no\ncrl_extensions = crl_ext\n"
	    "[ crl_ext ]\nauthorityKeyIdentifier = keyid:always\n", dir);
	fclose(f);
	snprintf(path, sizeof(path), "%s/crlnumber", dir);
	if ((f = fopen(path, "w")) == NULL)
		return 0;
	fprintf(f, "01\n");
	fclose(f);
	return 1;
}

static int
file_piece(const uint8_t *p, size_t len, void *arg)
{
	return fwrite(p, 1, len, arg) == len;
}

static enum store_rc
revoke_txn(struct store_txn *txn, void *arg)
{
	struct cert_rec *r = arg;

	if (r->der_len > 0)
		return store_cert_add(txn, r);
	return store_cert_set_status(txn, r->serial, CERT_REVOKED,
	    REASON_KEY_COMPROMISE, T0, 0, NULL);
}

/*
 * crl_service_changed after one revocation, with a real store in
 * DIR/store: read the event, take a CRL number (an fsync'd store_write),
 * build, sign and publish the delta.
 */
static double
service_delta(const char *dir)
{
	struct store_opts so = { .create = 1 };
	struct crl_opts co = { .no_thread = 1 };
	struct store *st = NULL;
	struct crl_service *svc;
	struct cert_rec r;
	static uint8_t der[] = { 0x30, 0x00 };
	char path[1024];
	double t;

	snprintf(path, sizeof(path), "%s/store", dir);
	if (store_open(&st, path, &so) != STORE_OK)
		fatalx("store_open %s", path);
	memset(&r, 0, sizeof(r));
	RAND_bytes(r.serial, sizeof(r.serial));
	r.serial[0] &= 0x7f;
	r.der = der;
	r.der_len = sizeof(der);
	if (store_write(st, revoke_txn, &r) != STORE_OK)
		fatalx("store_cert_add");
	if ((svc = crl_service_new(st, bench_ca, bench_key, &co)) == NULL)
		fatalx("crl_service_new");
	r.der_len = 0;
	if (store_write(st, revoke_txn, &r) != STORE_OK)
		fatalx("revoke");
	t = now_s();
	if (!crl_service_changed(svc))
		fatalx("crl_service_changed");
	t = now_s() - t;
	crl_service_free(svc);
	store_close(st);
	return t;
}

static void
utc(char out[16], int64_t t)
{
	struct tm tm;
	time_t tt = (time_t)t;

	gmtime_r(&tt, &tm);
	strftime(out, 16, "%y%m%d%H%M%SZ", &tm);
}

int
main(int argc, char *argv[])
{
	struct crl_builder *b;
	struct rev_event ev;
	X509 *ca = NULL;
	EVP_PKEY *key = NULL;
	uint8_t *der = NULL;
	size_t len, dlen, i, n;
	char path[1024], hex[2 * STORE_SERIAL_LEN + 1], rd[16], exp[16];
	double t, t_load, t_full, t_delta, t_svc;
	struct crl_tbs tbs;
	long rss_before;
	FILE *idx;

	if (argc != 3 || (n = strtoul(argv[1], NULL, 10)) == 0) {
		fprintf(stderr, "usage: crl_bench N DIR\n");
		return 2;
	}
	log_init("crl_bench", LOG_LVL_WARN);
	if (!make_ca(&ca, &key) || !write_ca(argv[2], ca, key))
		fatalx("CA setup failed");
	bench_ca = ca;
	bench_key = key;
	if ((b = crl_builder_new(ca, key, "http://127.0.0.1:7780/crl/"
	    "delta.crl")) == NULL)
		fatalx("builder");
	snprintf(path, sizeof(path), "%s/index.txt", argv[2]);
	if ((idx = fopen(path, "w")) == NULL)
		fatal("%s", path);
	utc(exp, T0 + 86400LL * 3650);

	memset(&ev, 0, sizeof(ev));
	t_load = 0;
	for (i = 0; i < n; i++) {
		RAND_bytes(ev.serial, STORE_SERIAL_LEN);
		ev.serial[0] &= 0x7f;
		ev.serial[0] |= 0x01;	/* no leading zero byte */
		ev.seq = i + 1;
		ev.status = CERT_REVOKED;
		ev.reason = REASON_SUPERSEDED;
		ev.when = T0 + (int64_t)i;
		t = now_s();
		if (!crl_builder_apply(b, &ev))
			fatalx("apply");
		t_load += now_s() - t;
		hex_encode(hex, ev.serial, STORE_SERIAL_LEN);
		utc(rd, ev.when);
		fprintf(idx, "R\t%s\t%s,superseded\t%s\tunknown\t/CN=c%zu\n",
		    exp, rd, hex, i);
	}
	if (fclose(idx) != 0)
		fatal("%s", path);

	/* as crl_service does: TBS referencing the entry chunks, sign */
	rss_before = maxrss_kb();
	t = now_s();
	if (!crl_builder_full_tbs(b, &tbs, 1, T0 + (int64_t)n,
	    T0 + (int64_t)n + 7 * 86400) || !crl_builder_sign(b, &tbs))
		fatalx("full");
	crl_builder_set_base(b, 1, tbs.seq);
	t_full = now_s() - t;
	len = tbs.der_len;
	snprintf(path, sizeof(path), "%s/mica_full.crl", argv[2]);
	if ((idx = fopen(path, "w")) == NULL ||
	    !crl_tbs_pieces(&tbs, file_piece, idx) || fclose(idx) != 0)
		fatal("%s", path);
	/* tbs stays alive like a published snapshot until the end */

	/* one more revocation, then the delta */
	RAND_bytes(ev.serial, STORE_SERIAL_LEN);
	ev.serial[0] &= 0x7f;
	ev.seq = n + 1;
	ev.reason = REASON_KEY_COMPROMISE;
	t = now_s();
	if (!crl_builder_apply(b, &ev) ||
	    !crl_builder_delta(b, &der, &dlen, 2, T0 + (int64_t)n,
	    T0 + (int64_t)n + 3600))
		fatalx("delta");
	t_delta = now_s() - t;
	free(der);
	t_svc = service_delta(argv[2]);

	printf("n=%zu mica_apply_s=%.3f mica_full_s=%.5f crl_bytes=%zu "
	    "rss_before_build_kb=%ld maxrss_kb=%ld delta_ms=%.3f "
	    "service_delta_ms=%.3f\n", n, t_load, t_full, len, rss_before,
	    maxrss_kb(), t_delta * 1000, t_svc * 1000);
	crl_tbs_cleanup(&tbs);
	crl_builder_free(b);
	X509_free(ca);
	EVP_PKEY_free(key);
	return 0;
}
