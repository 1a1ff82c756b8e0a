/*
 * fuzz_http.c - the HTTP/1.1 request head parser (ocsp/http_parse.c):
 * on OK every offset stays inside the head and the head inside the input
 * and the limit; on ERROR the status is one the listener can answer.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ocsp/ocsp_int.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define BIG_HEAD	8192
#define SMALL_HEAD	64

/* Does [off, off + len) lie inside [0, end)? */
static int
inside(size_t off, size_t len, size_t end)
{
	return off <= end && len <= end - off;
}

/* Parses data[0..size) with max_head and aborts on a broken invariant. */
static void
check(const uint8_t *data, size_t size, size_t max_head)
{
	struct ocsp_http_head h;
	const uint8_t *v;
	size_t vlen;
	int code = -1, i;

	switch (ocsp_http_parse_head(data, size, max_head, &h, &code)) {
	case OCSP_HTTP_PARSE_OK:
		if (code != 0 || h.head_len > size || h.head_len > max_head ||
		    h.head_len == 0)
			abort();
		if (!inside(h.target_off, h.target_len, h.head_len) ||
		    h.target_len == 0 ||
		    !inside(h.path_off, h.path_len, h.head_len) ||
		    h.path_off < h.target_off ||
		    h.path_off + h.path_len > h.target_off + h.target_len)
			abort();
		if (h.method < OCSP_HTTP_GET || h.method > OCSP_HTTP_OTHER ||
		    (h.minor != 0 && h.minor != 1))
			abort();
		if (h.nfields < 0 || h.nfields > OCSP_HTTP_MAX_FIELDS)
			abort();
		for (i = 0; i < h.nfields; i++)
			if (h.fields[i].name_len == 0 ||
			    !inside(h.fields[i].name_off, h.fields[i].name_len,
			    h.head_len) ||
			    !inside(h.fields[i].value_off,
			    h.fields[i].value_len, h.head_len))
				abort();
		if (h.content_length < -1 || h.content_length > 999999999999LL ||
		    (h.keep_alive != 0 && h.keep_alive != 1))
			abort();
		v = ocsp_http_head_field(&h, data, "Host", &vlen);
		if (v != NULL && !inside((size_t)(v - data), vlen, h.head_len))
			abort();
		if (h.minor == 1 && v == NULL)
			abort();	/* HTTP/1.1 needs its Host */
		v = ocsp_http_head_field(&h, data, "Content-Type", &vlen);
		if (v != NULL && !inside((size_t)(v - data), vlen, h.head_len))
			abort();
		break;
	case OCSP_HTTP_PARSE_MORE:
		if (size >= max_head)
			abort();	/* a full buffer is never "more" */
		break;
	case OCSP_HTTP_PARSE_ERROR:
		if (code != 400 && code != 411 && code != 417 &&
		    code != 431 && code != 505)
			abort();
		break;
	default:
		abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check(data, size, BIG_HEAD);
	check(data, size, SMALL_HEAD);
	if (size > 0) {
		check(data, size - 1, BIG_HEAD);
		check(data, size - 1, SMALL_HEAD);
	}
	return 0;
}
