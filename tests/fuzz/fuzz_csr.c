/*
 * fuzz_csr.c - ca_csr_check (size cap, the CertificationRequest items,
 * the key built from its parts or decoded, version, key policy,
 * signature, subject) fed with arbitrary bytes, once with no policy and
 * once with an allowed subject so the name comparison runs too.
 */
#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "common/log.h"
#include "ca/ca.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	static int init;
	struct ca_csr_policy pol = { 0 };
	struct ca_csr *req = NULL;
	STACK_OF(X509_EXTENSION) *exts;
	char err[CA_ERR_MAX], txt[CA_SUBJECT_MAX];

	if (!init) {
		log_init("fuzz_csr", LOG_LVL_ERR);
		init = 1;
	}
	if (ca_csr_check(&req, data, len, NULL, err, sizeof(err))) {
		ca_name_print(txt, sizeof(txt), ca_csr_subject(req));
		/* the requested extensions, as the SAN checks read them */
		exts = ca_csr_extensions(req);
		(void)ca_exts_san_allowed(exts, "DNS:a.example", err,
		    sizeof(err));
		sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
		ca_csr_free(req);
	}
	pol.allowed_subject = "/CN=alice/O=Example";
	(void)ca_csr_check(NULL, data, len, &pol, err, sizeof(err));
	return 0;
}
