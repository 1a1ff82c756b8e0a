/*
 * fuzz_ocsp_get.c - the GET form's path decoding (percent escapes, then
 * base64 with or without padding; RFC 6960 appendix A.1), then the
 * decoded bytes through d2i_OCSP_REQUEST as the responder would.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ocsp.h>

#include "ocsp/ocsp_int.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define OUT_CAP	16384

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t out[OUT_CAP];
	const unsigned char *p;
	OCSP_REQUEST *req;
	size_t len = 0;

	if (!ocsp_get_decode(out, sizeof(out), &len, (const char *)data, size))
		return 0;
	/* base64 yields at most 3 bytes per 4 characters */
	if (len == 0 || len > sizeof(out) || len > (size * 3) / 4 + 2)
		abort();
	p = out;
	if ((req = d2i_OCSP_REQUEST(NULL, &p, (long)len)) != NULL)
		OCSP_REQUEST_free(req);
	ERR_clear_error();
	return 0;
}
