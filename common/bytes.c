/*
 * bytes.c - bounded reader, growable buffer, hex helpers.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "common/bytes.h"

void
rd_init(struct rd *r, const void *p, size_t len)
{
	r->p = p;
	r->len = len;
}

size_t
rd_left(const struct rd *r)
{
	return r->len;
}

int
rd_bytes(struct rd *r, const uint8_t **out, size_t n)
{
	if (r->len < n)
		return 0;
	*out = r->p;
	r->p += n;
	r->len -= n;
	return 1;
}

int
rd_skip(struct rd *r, size_t n)
{
	const uint8_t *p;

	return rd_bytes(r, &p, n);
}

int
rd_copy(struct rd *r, void *out, size_t n)
{
	const uint8_t *p;

	if (!rd_bytes(r, &p, n))
		return 0;
	if (n > 0)
		memcpy(out, p, n);
	return 1;
}

int
rd_u8(struct rd *r, uint8_t *v)
{
	const uint8_t *p;

	if (!rd_bytes(r, &p, 1))
		return 0;
	*v = p[0];
	return 1;
}

int
rd_u16(struct rd *r, uint16_t *v)
{
	const uint8_t *p;

	if (!rd_bytes(r, &p, 2))
		return 0;
	*v = be16_get(p);
	return 1;
}

int
rd_u32(struct rd *r, uint32_t *v)
{
	const uint8_t *p;

	if (!rd_bytes(r, &p, 4))
		return 0;
	*v = be32_get(p);
	return 1;
}

int
rd_u64(struct rd *r, uint64_t *v)
{
	const uint8_t *p;

	if (!rd_bytes(r, &p, 8))
		return 0;
	*v = be64_get(p);
	return 1;
}

int
rd_u16_prefixed(struct rd *r, struct rd *out)
{
	struct rd save = *r;
	uint16_t n;
	const uint8_t *p;

	if (!rd_u16(r, &n) || !rd_bytes(r, &p, n)) {
		*r = save;
		return 0;
	}
	rd_init(out, p, n);
	return 1;
}

int
rd_u32_prefixed(struct rd *r, struct rd *out)
{
	struct rd save = *r;
	uint32_t n;
	const uint8_t *p;

	if (!rd_u32(r, &n) || !rd_bytes(r, &p, n)) {
		*r = save;
		return 0;
	}
	rd_init(out, p, n);
	return 1;
}

void
wb_init(struct wb *b)
{
	memset(b, 0, sizeof(*b));
}

void
wb_init_secret(struct wb *b)
{
	memset(b, 0, sizeof(*b));
	b->secret = 1;
}

void
wb_wipe(struct wb *b)
{
	int secret = b->secret;

	if (b->data != NULL)
		sodium_memzero(b->data, b->cap);
	free(b->data);
	memset(b, 0, sizeof(*b));
	b->secret = secret;
}

void
wb_cleanup(struct wb *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

int
wb_ok(const struct wb *b)
{
	return !b->failed;
}

int
wb_reserve(struct wb *b, size_t n)
{
	size_t cap;
	uint8_t *p;

	if (b->failed)
		return 0;
	if (n > SIZE_MAX - b->len) {
		b->failed = 1;
		return 0;
	}
	if (b->len + n <= b->cap)
		return 1;
	cap = b->cap ? b->cap : 64;
	while (cap < b->len + n) {
		if (cap > SIZE_MAX / 2) {
			cap = b->len + n;
			break;
		}
		cap *= 2;
	}
	if (b->secret) {
		if ((p = malloc(cap)) == NULL) {
			b->failed = 1;
			return 0;
		}
		if (b->len > 0)
			memcpy(p, b->data, b->len);
		if (b->data != NULL)
			sodium_memzero(b->data, b->cap);
		free(b->data);
	} else if ((p = realloc(b->data, cap)) == NULL) {
		b->failed = 1;
		return 0;
	}
	b->data = p;
	b->cap = cap;
	return 1;
}

void
wb_put(struct wb *b, const void *p, size_t n)
{
	if (n == 0 || !wb_reserve(b, n))
		return;
	memcpy(b->data + b->len, p, n);
	b->len += n;
}

void
wb_u8(struct wb *b, uint8_t v)
{
	wb_put(b, &v, 1);
}

void
wb_u16(struct wb *b, uint16_t v)
{
	uint8_t t[2];

	be16_put(t, v);
	wb_put(b, t, 2);
}

void
wb_u32(struct wb *b, uint32_t v)
{
	uint8_t t[4];

	be32_put(t, v);
	wb_put(b, t, 4);
}

void
wb_u64(struct wb *b, uint64_t v)
{
	uint8_t t[8];

	be64_put(t, v);
	wb_put(b, t, 8);
}

void
wb_str(struct wb *b, const char *s)
{
	wb_put(b, s, strlen(s));
}

uint8_t *
wb_steal(struct wb *b, size_t *out_len)
{
	uint8_t *p = b->data;

	*out_len = b->len;
	memset(b, 0, sizeof(*b));
	return p;
}

uint16_t
be16_get(const uint8_t *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

uint32_t
be32_get(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
	    ((uint32_t)p[2] << 8) | p[3];
}

uint64_t
be64_get(const uint8_t *p)
{
	return ((uint64_t)be32_get(p) << 32) | be32_get(p + 4);
}

void
be16_put(uint8_t *p, uint16_t v)
{
	p[0] = v >> 8;
	p[1] = v & 0xff;
}

void
be32_put(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24;
	p[1] = (v >> 16) & 0xff;
	p[2] = (v >> 8) & 0xff;
	p[3] = v & 0xff;
}

void
be64_put(uint8_t *p, uint64_t v)
{
	be32_put(p, (uint32_t)(v >> 32));
	be32_put(p + 4, (uint32_t)v);
}

void
hex_encode(char *out, const uint8_t *in, size_t len)
{
	static const char digits[] = "0123456789ABCDEF";
	size_t i;

	for (i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 0xf];
	}
	out[2 * len] = '\0';
}

int
hex_digit(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
serial_parse(uint8_t out[SERIAL_LEN], const char *text)
{
	char digits[2 * SERIAL_LEN];
	size_t n = 0, i, skip;
	const char *s = text;
	int seen = 0;

	while (isspace((unsigned char)*s))
		s++;
	/* "-1" is not serial 01: serials are positive (RFC 5280 4.1.2.2) */
	if (*s == '-')
		return 0;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
		s += 2;
	for (; *s != '\0'; s++) {
		if (*s == ':' || *s == ' ' || *s == '-' || *s == '\n')
			continue;
		if (hex_digit((unsigned char)*s) < 0)
			return 0;
		seen = 1;
		if (n == 0 && *s == '0')
			continue;	/* leading zeros carry no value */
		if (n == sizeof(digits))
			return 0;
		digits[n++] = *s;
	}
	if (!seen)
		return 0;
	memset(out, 0, SERIAL_LEN);
	skip = 2 * SERIAL_LEN - n;
	for (i = 0; i < n; i++) {
		size_t pos = skip + i;
		int v = hex_digit((unsigned char)digits[i]);

		if (pos % 2 == 0)
			out[pos / 2] |= v << 4;
		else
			out[pos / 2] |= v;
	}
	return 1;
}

void
serial_hex(char out[SERIAL_HEX_LEN], const uint8_t serial[SERIAL_LEN])
{
	size_t i = 0;

	while (i < SERIAL_LEN - 1 && serial[i] == 0)
		i++;
	hex_encode(out, serial + i, SERIAL_LEN - i);
}
