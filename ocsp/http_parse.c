/*
 * http_parse.c - the HTTP/1.1 request head parser of micad's HTTP
 * listener (RFC 9112 sections 2 to 6, RFC 9110 for the fields it acts
 * on).  Pure: bytes in, offsets and a verdict out; no allocation.
 *
 * Strict where leniency lets two parsers disagree about where a request
 * ends (request smuggling): one Content-Length (repeats must agree), no
 * Transfer-Encoding (answered 411, which RFC 9112 6.3 allows), no
 * whitespace before a field's colon, no obs-fold, no bare CR, no NUL.
 * Lenient where RFC 9112 asks for it: bare LF line ends (2.2), empty
 * lines before the request line (2.2).
 */
#include <string.h>
#include <strings.h>

#include "common/bytes.h"
#include "ocsp/ocsp_int.h"

#define METHOD_MAX	20
#define CL_DIGITS_MAX	12	/* 10^12 - 1: far above any body cap */
#define LEADING_EOL_MAX	8

/* RFC 9110 5.6.2: tchar. */
static int
is_tchar(uint8_t c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9'))
		return 1;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* A field value byte: HTAB, SP, VCHAR, obs-text (RFC 9110 5.5). */
static int
is_vbyte(uint8_t c)
{
	return c == '\t' || c == ' ' || (c > 0x20 && c != 0x7f);
}

/*
 * The next line of r: *line and *len without its CRLF or LF.  Returns 1,
 * 0 when no line end is in the input yet, -1 for a CR not followed by LF
 * or a NUL.
 */
static int
next_line(struct rd *r, const uint8_t **line, size_t *len)
{
	const uint8_t *p = r->p;
	size_t i;

	for (i = 0; i < r->len; i++) {
		if (p[i] == '\0')
			return -1;
		if (p[i] == '\r') {
			if (i + 1 >= r->len)
				return 0;
			if (p[i + 1] != '\n')
				return -1;
			*line = p;
			*len = i;
			return rd_skip(r, i + 2) ? 1 : -1;
		}
		if (p[i] == '\n') {
			*line = p;
			*len = i;
			return rd_skip(r, i + 1) ? 1 : -1;
		}
	}
	return 0;
}

/* Case-insensitive comparison of a field name with a NUL-terminated one. */
static int
name_is(const uint8_t *p, size_t len, const char *name)
{
	return strlen(name) == len && strncasecmp((const char *)p, name,
	    len) == 0;
}

/* Does the comma-separated list p[0..len) hold token (any case)? */
static int
list_has(const uint8_t *p, size_t len, const char *token)
{
	size_t i = 0, s, e, tl = strlen(token);

	while (i < len) {
		while (i < len && (p[i] == ' ' || p[i] == '\t' || p[i] == ','))
			i++;
		s = i;
		while (i < len && p[i] != ',')
			i++;
		e = i;
		while (e > s && (p[e - 1] == ' ' || p[e - 1] == '\t'))
			e--;
		if (e - s == tl && strncasecmp((const char *)p + s, token,
		    tl) == 0)
			return 1;
	}
	return 0;
}

/* Content-Length (RFC 9110 8.6): 1*DIGIT; repeats must be equal. */
static int
parse_length(const uint8_t *p, size_t len, int64_t *io)
{
	int64_t v = 0;
	size_t i;

	if (len == 0 || len > CL_DIGITS_MAX)
		return 0;
	for (i = 0; i < len; i++) {
		if (p[i] < '0' || p[i] > '9')
			return 0;
		v = v * 10 + (p[i] - '0');
	}
	if (*io >= 0 && *io != v)
		return 0;
	*io = v;
	return 1;
}

/*
 * The request line (RFC 9112 3): method SP request-target SP
 * HTTP-version, one space each.  The path is the target's path part:
 * origin-form up to '?', or the path of an absolute-form target
 * (RFC 9112 3.2.2), or empty (asterisk- and authority-form).
 */
static int
parse_request_line(const uint8_t *base, const uint8_t *p, size_t len,
    struct ocsp_http_head *h, int *code)
{
	size_t i = 0, m, t0, t1, s;

	*code = 400;
	while (i < len && i < METHOD_MAX + 1 && is_tchar(p[i]))
		i++;
	if (i == 0 || i > METHOD_MAX || i >= len || p[i] != ' ')
		return 0;
	m = i;
	if (m == 3 && memcmp(p, "GET", 3) == 0)
		h->method = OCSP_HTTP_GET;
	else if (m == 4 && memcmp(p, "HEAD", 4) == 0)
		h->method = OCSP_HTTP_HEAD;
	else if (m == 4 && memcmp(p, "POST", 4) == 0)
		h->method = OCSP_HTTP_POST;
	else
		h->method = OCSP_HTTP_OTHER;
	t0 = ++i;
	while (i < len && p[i] > 0x20 && p[i] < 0x7f)
		i++;
	t1 = i;
	if (t1 == t0 || i >= len || p[i] != ' ')
		return 0;
	i++;
	if (len - i != 8 || memcmp(p + i, "HTTP/", 5) != 0 ||
	    p[i + 5] < '0' || p[i + 5] > '9' || p[i + 6] != '.' ||
	    p[i + 7] < '0' || p[i + 7] > '9')
		return 0;
	if (p[i + 5] != '1' || (p[i + 7] != '0' && p[i + 7] != '1')) {
		*code = 505;
		return 0;
	}
	h->minor = p[i + 7] - '0';
	h->target_off = (size_t)(p - base) + t0;
	h->target_len = t1 - t0;

	/* the path */
	s = t0;
	if (t1 - t0 > 8 && strncasecmp((const char *)p + t0, "https://",
	    8) == 0)
		s = t0 + 8;
	else if (t1 - t0 > 7 && strncasecmp((const char *)p + t0, "http://",
	    7) == 0)
		s = t0 + 7;
	if (s != t0) {		/* absolute-form: skip the authority */
		while (s < t1 && p[s] != '/' && p[s] != '?' && p[s] != '#')
			s++;
		if (s < t1 && p[s] != '/')
			s = t1;	/* "http://host?q": an empty path */
	} else if (p[t0] != '/')
		s = t1;		/* "*" or authority-form: no path */
	i = s;
	while (i < t1 && p[i] != '?' && p[i] != '#')
		i++;
	h->path_off = (size_t)(p - base) + s;
	h->path_len = i - s;
	return 1;
}

/* One field line (RFC 9112 5): name ":" OWS value OWS. */
static int
parse_field(const uint8_t *base, const uint8_t *p, size_t len,
    struct ocsp_http_head *h, int *code)
{
	struct ocsp_http_field *f;
	size_t i = 0, v0, v1;

	*code = 400;
	while (i < len && is_tchar(p[i]))
		i++;
	if (i == 0 || i >= len || p[i] != ':')
		return 0;	/* empty name, or whitespace before ':' */
	v0 = i + 1;
	while (v0 < len && (p[v0] == ' ' || p[v0] == '\t'))
		v0++;
	v1 = len;
	while (v1 > v0 && (p[v1 - 1] == ' ' || p[v1 - 1] == '\t'))
		v1--;
	for (size_t k = v0; k < v1; k++)
		if (!is_vbyte(p[k]))
			return 0;
	if (h->nfields >= OCSP_HTTP_MAX_FIELDS) {
		*code = 431;
		return 0;
	}
	f = &h->fields[h->nfields++];
	f->name_off = (size_t)(p - base);
	f->name_len = i;
	f->value_off = (size_t)(p - base) + v0;
	f->value_len = v1 - v0;

	if (name_is(p, i, "Content-Length")) {
		if (!parse_length(p + v0, v1 - v0, &h->content_length))
			return 0;
	} else if (name_is(p, i, "Transfer-Encoding"))
		h->chunked = 1;
	else if (name_is(p, i, "Host"))
		h->hosts++;
	else if (name_is(p, i, "Connection")) {
		if (list_has(p + v0, v1 - v0, "close"))
			h->conn_close = 1;
		if (list_has(p + v0, v1 - v0, "keep-alive"))
			h->conn_keep = 1;
	} else if (name_is(p, i, "Expect")) {
		if (v1 - v0 != 12 || strncasecmp((const char *)p + v0,
		    "100-continue", 12) != 0) {
			*code = 417;	/* RFC 9110 10.1.1 */
			return 0;
		}
		h->expect_continue = 1;
	}
	return 1;
}

enum ocsp_http_parse
ocsp_http_parse_head(const uint8_t *buf, size_t len, size_t max_head,
    struct ocsp_http_head *h, int *code)
{
	struct rd r;
	const uint8_t *line;
	size_t llen;
	int got, eols = 0;

	memset(h, 0, sizeof(*h));
	h->content_length = -1;
	*code = 400;
	if (len > max_head)
		len = max_head;
	rd_init(&r, buf, len);
	/* RFC 9112 2.2: empty lines before the request line are ignored */
	while ((got = next_line(&r, &line, &llen)) == 1 && llen == 0)
		if (++eols > LEADING_EOL_MAX)
			return OCSP_HTTP_PARSE_ERROR;
	if (got == 1) {
		if (!parse_request_line(buf, line, llen, h, code))
			return OCSP_HTTP_PARSE_ERROR;
		for (;;) {
			if ((got = next_line(&r, &line, &llen)) != 1)
				break;
			if (llen == 0) {
				h->head_len = len - rd_left(&r);
				goto done;
			}
			if (line[0] == ' ' || line[0] == '\t')
				return OCSP_HTTP_PARSE_ERROR;	/* obs-fold */
			if (!parse_field(buf, line, llen, h, code))
				return OCSP_HTTP_PARSE_ERROR;
		}
	}
	if (got < 0)
		return OCSP_HTTP_PARSE_ERROR;
	if (len >= max_head) {
		*code = 431;
		return OCSP_HTTP_PARSE_ERROR;
	}
	return OCSP_HTTP_PARSE_MORE;
 done:
	if (h->chunked) {
		/* RFC 9112 6.1: both is an attack or an error; else 411 (6.3)
		 * rather than decoding chunks. */
		*code = h->content_length >= 0 ? 400 : 411;
		return OCSP_HTTP_PARSE_ERROR;
	}
	/* RFC 9112 3.2: exactly one Host in an HTTP/1.1 request */
	if ((h->minor == 1 && h->hosts != 1) || h->hosts > 1)
		return OCSP_HTTP_PARSE_ERROR;
	h->keep_alive = h->minor == 1 ? !h->conn_close :
	    h->conn_keep && !h->conn_close;
	if (h->minor == 0)
		h->expect_continue = 0;	/* RFC 9110 10.1.1: ignored */
	*code = 0;
	return OCSP_HTTP_PARSE_OK;
}

const uint8_t *
ocsp_http_head_field(const struct ocsp_http_head *h, const uint8_t *buf,
    const char *name, size_t *out_len)
{
	int i;

	for (i = 0; i < h->nfields; i++)
		if (name_is(buf + h->fields[i].name_off, h->fields[i].name_len,
		    name)) {
			*out_len = h->fields[i].value_len;
			return buf + h->fields[i].value_off;
		}
	return NULL;
}
