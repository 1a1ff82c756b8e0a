/*
 * fuzz_reprec.c - the admin command "replica record" on arbitrary bytes:
 * an admin request frame (adm_request_parse) whose words and attachments
 * go through adm_reprec_parse against a fixed CA.  The corpus
 * (corpus/reprec) holds requests with certificates that CA issued (the
 * profiles of replica add), so the signature, EKU and CN checks run.
 * What passes must hold three distinct certificates of bounded size
 * under the checked name.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "admin/admin.h"
#include "ca/repl.h"
#include "common/log.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* A test CA (EC P-256, CN=mica fuzz CA); its key is not kept anywhere. */
static const char ca_pem[] =
"-----BEGIN CERTIFICATE-----\n"
"MIIBlTCCATugAwIBAgIUAmw6ax/MkwBwsrInaZSkFNgbebswCgYIKoZIzj0EAwIw\n"
"FzEVMBMGA1UEAwwMbWljYSBmdXp6IENBMCAXDTI2MTIwMzA2MDMxOVoYDzIxMjYx\n"
"MTA5MDYwMzE5WjAXMRUwEwYDVQQDDAxtaWNhIGZ1enogQ0EwWTATBgcqhkjOPQIB\n"
"BggqhkjOPQMBBwNCAASZjzyom74cUodybyOVamNPsBzlXBgjkThJRuy5GeXQ5E+m\n"
"RF7jEvnZRKncBewwpA5sZ4kkji6ri4neDEZuqoP6o2MwYTAdBgNVHQ4EFgQUHkda\n"
"kpbbiiBoxr09R7WPFUvrpS0wHwYDVR0jBBgwFoAUHkdakpbbiiBoxr09R7WPFUvr\n"
"pS0wDwYDVR0TAQH/BAUwAwEB/zAOBgNVHQ8BAf8EBAMCAQYwCgYIKoZIzj0EAwID\n"
"SAAwRQIgFF4HqXt2yQyxUN+EICSfYW7H8D3re22zXYSYckaqeaYCIQCYsfHqyWw2\n"
"WMEVRo/4y3JtQBIfmhRr1ULXLp3PXHeWBQ==\n"
"-----END CERTIFICATE-----\n";

static X509 *
fuzz_ca(void)
{
	static X509 *ca;
	BIO *b;

	if (ca != NULL)
		return ca;
	log_init("fuzz_reprec", LOG_LVL_ERR);
	if ((b = BIO_new_mem_buf(ca_pem, -1)) == NULL ||
	    (ca = PEM_read_bio_X509(b, NULL, NULL, NULL)) == NULL)
		abort();
	BIO_free(b);
	return ca;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct adm_replica_rec rr;
	struct adm_msg m;
	char name[REPL_NAME_MAX + 1], err[512];
	int i, j;

	adm_msg_init(&m);
	if (adm_request_parse(&m, data, len, err, sizeof(err)) &&
	    adm_reprec_parse(&rr, name, sizeof(name), &m, fuzz_ca(), 0, err,
	    sizeof(err))) {
		if (rr.name != name || strcmp(name, m.argv[2]) != 0)
			abort();
		for (i = 0; i < ADM_REPREC_CERTS; i++) {
			if (rr.rec[i].der == NULL || rr.rec[i].der_len == 0 ||
			    rr.rec[i].der_len > ADM_REPREC_CERT_MAX)
				abort();
			for (j = 0; j < i; j++)
				if (memcmp(rr.rec[i].serial, rr.rec[j].serial,
				    sizeof(rr.rec[i].serial)) == 0)
					abort();
		}
		adm_reprec_cleanup(&rr);
	} else if (strlen(err) >= sizeof(err) - 1 || err[0] == '\0')
		abort();	/* a refusal always says why, in full */
	adm_msg_cleanup(&m);
	return 0;
}
