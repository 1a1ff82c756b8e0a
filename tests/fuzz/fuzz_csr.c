/*
 * fuzz_csr.c - ca_csr_check (size cap, d2i_X509_REQ, version, key policy,
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
	X509_REQ *req = NULL;
	char err[CA_ERR_MAX], txt[CA_SUBJECT_MAX];

	if (!init) {
		log_init("fuzz_csr", LOG_LVL_ERR);
		init = 1;
	}
	if (ca_csr_check(&req, data, len, NULL, err, sizeof(err))) {
		ca_name_print(txt, sizeof(txt), X509_REQ_get_subject_name(req));
		X509_REQ_free(req);
	}
	pol.allowed_subject = "/CN=alice/O=Example";
	(void)ca_csr_check(NULL, data, len, &pol, err, sizeof(err));
	return 0;
}
