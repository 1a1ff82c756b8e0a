/*
 * fuzz_ocsp.c - bytes in, OCSP response out: ocsp_respond over a temp
 * store, set up once.  The CA and signer below are a throwaway test
 * identity (the key signs nothing else); the seed corpus in
 * tests/fuzz/corpus/ocsp/ was made with them (openssl ocsp -reqout), so
 * seeds reach the good, revoked and unknown paths.  Leaf serials:
 * 11010203..0f good, 22010203..0f revoked, 33010203..0f never issued.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>

#include "common/log.h"
#include "store/store.h"
#include "ocsp/ocsp.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static const char ca_pem[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBizCCATGgAwIBAgIUH/SOdtaemLHviSgcs09bAX+kccQwCgYIKoZIzj0EAwIw\n"
    "EjEQMA4GA1UEAwwHRnV6eiBDQTAgFw0yNjExMjcxMDQ5MDNaGA8yMTI2MTEwMzEw\n"
    "NDkwM1owEjEQMA4GA1UEAwwHRnV6eiBDQTBZMBMGByqGSM49AgEGCCqGSM49AwEH\n"
    "A0IABOCVwE1UC069W1oup+NWINbv4aKH32DPCyQ77O1iOrG81S3n6cl37UQy8WoM\n"
    "lrMDIm3BuUnO91xQ0YEL4FzA/+ujYzBhMB0GA1UdDgQWBBSU4WpTa49mlNxVg39e\n"
    "EI+qujfJnjAfBgNVHSMEGDAWgBSU4WpTa49mlNxVg39eEI+qujfJnjAPBgNVHRMB\n"
    "Af8EBTADAQH/MA4GA1UdDwEB/wQEAwIBBjAKBggqhkjOPQQDAgNIADBFAiEA+4qo\n"
    "eZvTclQsqyaBYEx+0RpzXoBsvw6gMa4UWsWFs1sCIENkv5l+vnD0jVa1iXdsWsCT\n"
    "IZ/WrbDPBXg4y4aoWK4c\n"
    "-----END CERTIFICATE-----\n";

static const char signer_pem[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBnTCCAUKgAwIBAgIRAQAAAAAAAAAAAAAAAAAAAAEwCgYIKoZIzj0EAwIwEjEQ\n"
    "MA4GA1UEAwwHRnV6eiBDQTAgFw0yNjExMjcxMDQ5MDNaGA8yMTI2MTEwMzEwNDkw\n"
    "M1owFDESMBAGA1UEAwwJRnV6eiBPQ1NQMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcD\n"
    "QgAE8x5zkcj1FsgAAzE4veSyDr9/5w8h4zn8NrRNBB+Z3dv3u530GL4Q0vSpePVY\n"
    "gIOhYP5FHxBvhS2eWRqbA3vtD6N1MHMwEwYDVR0lBAwwCgYIKwYBBQUHAwkwDAYD\n"
    "VR0TAQH/BAIwADAOBgNVHQ8BAf8EBAMCB4AwHQYDVR0OBBYEFE6DaBKL45X/MZk+\n"
    "MjZ3YLyCnvLiMB8GA1UdIwQYMBaAFJThalNrj2aU3FWDf14Qj6q6N8meMAoGCCqG\n"
    "SM49BAMCA0kAMEYCIQDzUK6WlCdm9v+Bd6s+xXJmzFiAT2RWLGt1yQTWwslclQIh\n"
    "APWQp+xtj6sg1chG3/Do4j/UJ6rMcOtp/En/PyOPRm7P\n"
    "-----END CERTIFICATE-----\n";

static const char signer_key_pem[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgryxBlgggFvou5n2e\n"
    "4/VLFxu2CBMItMlTd9PKI0XdrPWhRANCAATzHnORyPUWyAADMTi95LIOv3/nDyHj\n"
    "Ofw2tE0EH5nd2/e7nfQYvhDS9Kl49ViAg6Fg/kUfEG+FLZ5ZGpsDe+0P\n"
    "-----END PRIVATE KEY-----\n";

static struct store		*st;
static struct ocsp_responder	*resp;
static struct ocsp_ctx		*ctx;
static char			 dir[64];

static const uint8_t serials[2][16] = {
	{ 0x11, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 },
	{ 0x22, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 },
};

static enum store_rc
populate(struct store_txn *txn, void *arg)
{
	struct cert_rec rec;
	enum store_rc rc;
	int i;

	(void)arg;
	for (i = 0; i < 2; i++) {
		memset(&rec, 0, sizeof(rec));
		memcpy(rec.serial, serials[i], 16);
		rec.st.status = CERT_GOOD;
		rec.st.not_before = 0;
		rec.st.not_after = 4102444800;
		rec.issued_at = time(NULL);
		snprintf(rec.account, sizeof(rec.account), "fuzz");
		rec.der = (uint8_t *)"\x30\x00";
		rec.der_len = 2;
		if ((rc = store_cert_add(txn, &rec)) != STORE_OK)
			return rc;
	}
	return store_cert_set_status(txn, serials[1], CERT_REVOKED,
	    REASON_KEY_COMPROMISE, 1700000000, 0, NULL);
}

static void
cleanup(void)
{
	char cmd[128];

	ocsp_ctx_free(ctx);
	ocsp_responder_free(resp);
	store_close(st);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "fuzz_ocsp: could not remove %s\n", dir);
}

static X509 *
pem_cert(const char *pem)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);

	BIO_free(b);
	return x;
}

static void
init(void)
{
	struct store_opts so;
	struct ocsp_opts oo;
	X509 *ca, *signer;
	EVP_PKEY *key;
	BIO *b;

	log_init("fuzz_ocsp", LOG_LVL_ERR);
	snprintf(dir, sizeof(dir), "/tmp/fuzz_ocsp.XXXXXX");
	if (mkdtemp(dir) == NULL)
		abort();
	memset(&so, 0, sizeof(so));
	so.create = 1;
	if (store_open(&st, dir, &so) != STORE_OK ||
	    store_write(st, populate, NULL) != STORE_OK)
		abort();
	ca = pem_cert(ca_pem);
	signer = pem_cert(signer_pem);
	b = BIO_new_mem_buf(signer_key_pem, -1);
	key = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
	BIO_free(b);
	if (ca == NULL || signer == NULL || key == NULL)
		abort();
	ocsp_opts_defaults(&oo);
	oo.cache_entries = 256;
	oo.cache_bytes = 1 << 20;
	if ((resp = ocsp_responder_new(&oo, ca, signer, key, st)) == NULL ||
	    (ctx = ocsp_ctx_new(resp)) == NULL)
		abort();
	X509_free(ca);
	X509_free(signer);
	EVP_PKEY_free(key);
	atexit(cleanup);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ocsp_answer a;
	const unsigned char *p;
	OCSP_RESPONSE *r;

	if (ctx == NULL)
		init();
	if (!ocsp_respond(ctx, &a, data, size))
		abort();
	/* whatever came in, what goes out is a well-formed OCSPResponse */
	p = a.der;
	if ((r = d2i_OCSP_RESPONSE(NULL, &p, (long)a.der_len)) == NULL ||
	    p != a.der + a.der_len)
		abort();
	OCSP_RESPONSE_free(r);
	if (size > 0 && data[0] == 0x30 && size % 7 == 0)
		ocsp_invalidate(resp, serials[0]);	/* exercise the walk */
	ocsp_answer_cleanup(&a);
	return 0;
}
