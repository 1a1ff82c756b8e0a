/*
 * der.c - a back-to-front DER writer for the OCSP response encoder.
 *
 * Writing from the end of the buffer towards its start makes nesting
 * cheap: the contents of a SEQUENCE are written first, then its length
 * (now known) and tag are prepended, with no second pass and no memmove.
 * Every call checks the room left; after the first failure every call is
 * a no-op and ocsp_derw_ok() returns 0, so callers check once.
 */
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "ocsp/ocsp_int.h"

void
ocsp_derw_init(struct ocsp_derw *w, uint8_t *buf, size_t cap)
{
	w->buf = buf;
	w->pos = cap;
	w->end = cap;
	w->failed = buf == NULL;
}

int
ocsp_derw_ok(const struct ocsp_derw *w)
{
	return !w->failed;
}

size_t
ocsp_derw_mark(const struct ocsp_derw *w)
{
	return w->pos;
}

const uint8_t *
ocsp_derw_data(const struct ocsp_derw *w, size_t *out_len)
{
	*out_len = w->failed ? 0 : w->end - w->pos;
	return w->failed ? NULL : w->buf + w->pos;
}

uint8_t *
ocsp_derw_reserve(struct ocsp_derw *w, size_t n)
{
	if (w->failed || n > w->pos) {
		w->failed = 1;
		return NULL;
	}
	w->pos -= n;
	return w->buf + w->pos;
}

void
ocsp_derw_put(struct ocsp_derw *w, const void *p, size_t n)
{
	uint8_t *d;

	if ((d = ocsp_derw_reserve(w, n)) != NULL && n > 0)
		memcpy(d, p, n);
}

void
ocsp_derw_u8(struct ocsp_derw *w, uint8_t v)
{
	ocsp_derw_put(w, &v, 1);
}

/* Prepends a DER length (X.690 8.1.3: short form below 128, else the
 * minimal long form) and the tag. */
void
ocsp_derw_hdr(struct ocsp_derw *w, uint8_t tag, size_t len)
{
	uint8_t b[1 + 1 + sizeof(uint32_t)];
	size_t n = 0, i;

	if (len > UINT32_MAX) {
		w->failed = 1;
		return;
	}
	b[0] = tag;
	if (len < 0x80)
		b[1] = (uint8_t)len, n = 2;
	else {
		for (i = len, n = 0; i > 0; i >>= 8)
			n++;
		b[1] = (uint8_t)(0x80 | n);
		for (i = 0; i < n; i++)
			b[2 + i] = (uint8_t)(len >> (8 * (n - 1 - i)));
		n += 2;
	}
	ocsp_derw_put(w, b, n);
}

void
ocsp_derw_wrap(struct ocsp_derw *w, uint8_t tag, size_t mark)
{
	if (w->failed || mark < w->pos) {
		w->failed = 1;
		return;
	}
	ocsp_derw_hdr(w, tag, mark - w->pos);
}

int
ocsp_derw_gentime(struct ocsp_derw *w, int64_t t)
{
	struct tm tm;
	time_t tt = (time_t)t;
	uint8_t s[2 + 15];
	int v[5], i, y;

	if ((int64_t)tt != t || gmtime_r(&tt, &tm) == NULL ||
	    tm.tm_year < -1900 || tm.tm_year > 9999 - 1900) {
		w->failed = 1;
		return 0;
	}
	y = tm.tm_year + 1900;
	s[0] = 0x18;	/* GeneralizedTime, RFC 5280 4.1.2.5.2 form */
	s[1] = 15;
	s[2] = (uint8_t)('0' + y / 1000);
	s[3] = (uint8_t)('0' + y / 100 % 10);
	s[4] = (uint8_t)('0' + y / 10 % 10);
	s[5] = (uint8_t)('0' + y % 10);
	v[0] = tm.tm_mon + 1;
	v[1] = tm.tm_mday;
	v[2] = tm.tm_hour;
	v[3] = tm.tm_min;
	v[4] = tm.tm_sec;
	for (i = 0; i < 5; i++) {
		s[6 + 2 * i] = (uint8_t)('0' + v[i] / 10);
		s[7 + 2 * i] = (uint8_t)('0' + v[i] % 10);
	}
	s[16] = 'Z';
	ocsp_derw_put(w, s, sizeof(s));
	return ocsp_derw_ok(w);
}
