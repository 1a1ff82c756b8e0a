/*
 * test_http_parse.c - the HTTP/1.1 request head parser (ocsp/http_parse.c):
 * request line, fields, framing (Content-Length, Transfer-Encoding),
 * Host and Expect rules, keep-alive, limits, and incomplete input.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ocsp/ocsp_int.h"

#define MAX_HEAD	8192

/* A POST with the fields a real OCSP client sends. */
static const char post_req[] =
    "POST /ocsp HTTP/1.1\r\n"
    "Host: ocsp.example\r\n"
    "Content-Type:   application/ocsp-request  \r\n"
    "Content-Length: 83\r\n"
    "\r\n";

/* Parses the NUL-terminated s with max_head MAX_HEAD. */
static enum ocsp_http_parse
parse(const char *s, struct ocsp_http_head *h, int *code)
{
	return ocsp_http_parse_head((const uint8_t *)s, strlen(s), MAX_HEAD,
	    h, code);
}

/* Asserts that field name of h has exactly the value want. */
static void
assert_field(const struct ocsp_http_head *h, const char *buf,
    const char *name, const char *want)
{
	const uint8_t *v;
	size_t len = 0;

	v = ocsp_http_head_field(h, (const uint8_t *)buf, name, &len);
	assert_non_null(v);
	assert_int_equal(len, strlen(want));
	assert_memory_equal(v, want, len);
}

/* Asserts that the path of h is exactly want. */
static void
assert_path(const struct ocsp_http_head *h, const char *buf,
    const char *want)
{
	assert_int_equal(h->path_len, strlen(want));
	assert_true(h->path_off <= h->head_len);
	assert_memory_equal(buf + h->path_off, want, h->path_len);
}

static void
test_minimal_get10(void **state)
{
	const char *req = "GET / HTTP/1.0\r\n\r\n";
	struct ocsp_http_head h;
	int code = -1;

	(void)state;
	assert_int_equal(parse(req, &h, &code), OCSP_HTTP_PARSE_OK);
	assert_int_equal(code, 0);
	assert_int_equal(h.method, OCSP_HTTP_GET);
	assert_int_equal(h.minor, 0);
	assert_int_equal(h.head_len, 18);
	assert_int_equal(h.target_off, 4);
	assert_int_equal(h.target_len, 1);
	assert_int_equal(h.path_off, 4);
	assert_int_equal(h.path_len, 1);
	assert_int_equal(h.content_length, -1);
	assert_int_equal(h.keep_alive, 0);
	assert_int_equal(h.expect_continue, 0);
	assert_int_equal(h.nfields, 0);
	assert_int_equal(h.hosts, 0);
}

static void
test_post11(void **state)
{
	struct ocsp_http_head h;
	const uint8_t *v;
	size_t len = 99;
	int code = -1;

	(void)state;
	assert_int_equal(parse(post_req, &h, &code), OCSP_HTTP_PARSE_OK);
	assert_int_equal(code, 0);
	assert_int_equal(h.method, OCSP_HTTP_POST);
	assert_int_equal(h.minor, 1);
	assert_int_equal(h.head_len, strlen(post_req));
	assert_int_equal(h.head_len, 107);
	assert_int_equal(h.target_off, 5);
	assert_int_equal(h.target_len, 5);
	assert_int_equal(h.path_off, 5);
	assert_int_equal(h.path_len, 5);
	assert_memory_equal(post_req + h.target_off, "/ocsp", 5);
	assert_int_equal(h.content_length, 83);
	assert_int_equal(h.keep_alive, 1);
	assert_int_equal(h.expect_continue, 0);
	assert_int_equal(h.nfields, 3);
	assert_int_equal(h.hosts, 1);
	assert_int_equal(h.fields[0].name_off, 21);
	assert_int_equal(h.fields[0].name_len, 4);
	assert_int_equal(h.fields[0].value_off, 27);
	assert_int_equal(h.fields[0].value_len, 12);

	/* lookups: any case, OWS trimmed on both sides */
	assert_field(&h, post_req, "Host", "ocsp.example");
	assert_field(&h, post_req, "HOST", "ocsp.example");
	assert_field(&h, post_req, "content-type", "application/ocsp-request");
	assert_field(&h, post_req, "Content-TYPE", "application/ocsp-request");
	assert_field(&h, post_req, "content-length", "83");
	v = ocsp_http_head_field(&h, (const uint8_t *)post_req, "Accept",
	    &len);
	assert_null(v);
	assert_int_equal(len, 99);
	/* a prefix of a name is not the name */
	assert_null(ocsp_http_head_field(&h, (const uint8_t *)post_req,
	    "Hos", &len));
	assert_null(ocsp_http_head_field(&h, (const uint8_t *)post_req,
	    "Hostx", &len));
}

static void
test_other_methods(void **state)
{
	static const struct {
		const char		*req;
		enum ocsp_http_method	 method;
	} t[] = {
		{ "GET / HTTP/1.0\r\n\r\n", OCSP_HTTP_GET },
		{ "HEAD / HTTP/1.0\r\n\r\n", OCSP_HTTP_HEAD },
		{ "POST / HTTP/1.0\r\n\r\n", OCSP_HTTP_POST },
		{ "get / HTTP/1.0\r\n\r\n", OCSP_HTTP_OTHER },
		{ "Post / HTTP/1.0\r\n\r\n", OCSP_HTTP_OTHER },
		{ "PUT / HTTP/1.0\r\n\r\n", OCSP_HTTP_OTHER },
		{ "GETS / HTTP/1.0\r\n\r\n", OCSP_HTTP_OTHER },
		{ "M-SEARCH / HTTP/1.0\r\n\r\n", OCSP_HTTP_OTHER },
		/* 20 characters: the longest method accepted */
		{ "ABCDEFGHIJKLMNOPQRST / HTTP/1.0\r\n\r\n", OCSP_HTTP_OTHER },
	};
	struct ocsp_http_head h;
	size_t i;
	int code;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		code = -1;
		if (parse(t[i].req, &h, &code) != OCSP_HTTP_PARSE_OK)
			fail_msg("case %zu: %s not OK", i, t[i].req);
		assert_int_equal(code, 0);
		assert_int_equal(h.method, t[i].method);
	}
}

static void
test_bare_lf(void **state)
{
	const char *req = "POST /x HTTP/1.1\nHost: a\nContent-Length: 7\n\n";
	const char *mixed = "GET /x HTTP/1.1\r\nHost: a\n\r\n";
	struct ocsp_http_head h;
	int code = -1;

	(void)state;
	assert_int_equal(parse(req, &h, &code), OCSP_HTTP_PARSE_OK);
	assert_int_equal(code, 0);
	assert_int_equal(h.head_len, strlen(req));
	assert_int_equal(h.content_length, 7);
	assert_int_equal(h.nfields, 2);
	assert_field(&h, req, "host", "a");

	assert_int_equal(parse(mixed, &h, &code), OCSP_HTTP_PARSE_OK);
	assert_int_equal(h.head_len, strlen(mixed));
	assert_field(&h, mixed, "Host", "a");
}

static void
test_leading_empty_lines(void **state)
{
	char buf[128];
	struct ocsp_http_head h;
	int n, code;

	(void)state;
	for (n = 0; n <= 9; n++) {
		buf[0] = '\0';
		for (int k = 0; k < n; k++)
			strcat(buf, k % 2 ? "\n" : "\r\n");
		strcat(buf, "GET /a HTTP/1.0\r\n\r\n");
		code = -1;
		if (n <= 8) {
			assert_int_equal(parse(buf, &h, &code),
			    OCSP_HTTP_PARSE_OK);
			assert_int_equal(code, 0);
			assert_int_equal(h.head_len, strlen(buf));
			/* offsets stay relative to the buffer start */
			assert_int_equal(h.target_off, (size_t)(3 * (n / 2) +
			    (n % 2) * 2 + 4));
			assert_path(&h, buf, "/a");
		} else {
			assert_int_equal(parse(buf, &h, &code),
			    OCSP_HTTP_PARSE_ERROR);
			assert_int_equal(code, 400);
		}
	}
	/* only empty lines so far: wait for more */
	code = -1;
	assert_int_equal(parse("\r\n\r\n", &h, &code), OCSP_HTTP_PARSE_MORE);
}

static void
test_every_prefix_is_more(void **state)
{
	static const char *reqs[] = {
		post_req,
		"GET / HTTP/1.0\r\n\r\n",
		"\r\n\nGET /a?b HTTP/1.1\nHost: h\n\n",
	};
	struct ocsp_http_head h;
	size_t i, n, len;
	int code;

	(void)state;
	for (i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
		len = strlen(reqs[i]);
		for (n = 0; n < len; n++) {
			code = -1;
			if (ocsp_http_parse_head((const uint8_t *)reqs[i], n,
			    MAX_HEAD, &h, &code) != OCSP_HTTP_PARSE_MORE)
				fail_msg("req %zu prefix %zu not MORE", i, n);
		}
		code = -1;
		assert_int_equal(ocsp_http_parse_head((const uint8_t *)reqs[i],
		    len, MAX_HEAD, &h, &code), OCSP_HTTP_PARSE_OK);
		assert_int_equal(h.head_len, len);
		assert_int_equal(code, 0);
	}
}

static void
test_max_head(void **state)
{
	const char *req = "GET /abc HTTP/1.1\r\nHost: h\r\n\r\n";
	size_t len = strlen(req);
	struct ocsp_http_head h;
	int code;

	(void)state;
	/* exactly fitting */
	code = -1;
	assert_int_equal(ocsp_http_parse_head((const uint8_t *)req, len, len,
	    &h, &code), OCSP_HTTP_PARSE_OK);
	assert_int_equal(h.head_len, len);
	assert_int_equal(code, 0);
	/* one byte too long, whatever the buffer holds */
	code = -1;
	assert_int_equal(ocsp_http_parse_head((const uint8_t *)req, len,
	    len - 1, &h, &code), OCSP_HTTP_PARSE_ERROR);
	assert_int_equal(code, 431);
	code = -1;
	assert_int_equal(ocsp_http_parse_head((const uint8_t *)req, len - 1,
	    len - 1, &h, &code), OCSP_HTTP_PARSE_ERROR);
	assert_int_equal(code, 431);
	/* fewer bytes than max_head: just incomplete */
	code = -1;
	assert_int_equal(ocsp_http_parse_head((const uint8_t *)req, len - 1,
	    len, &h, &code), OCSP_HTTP_PARSE_MORE);
	/* a long field in a small limit */
	code = -1;
	assert_int_equal(ocsp_http_parse_head((const uint8_t *)req, len, 10,
	    &h, &code), OCSP_HTTP_PARSE_ERROR);
	assert_int_equal(code, 431);
}

/* A request with nfields fields (Host first), into buf. */
static void
build_fields(char *buf, size_t cap, int nfields)
{
	size_t off;
	int i;

	off = (size_t)snprintf(buf, cap, "GET / HTTP/1.1\r\nHost: h\r\n");
	for (i = 1; i < nfields; i++)
		off += (size_t)snprintf(buf + off, cap - off, "X-F%d: %d\r\n",
		    i, i);
	snprintf(buf + off, cap - off, "\r\n");
}

static void
test_field_count(void **state)
{
	char buf[2048];
	struct ocsp_http_head h;
	int code;

	(void)state;
	build_fields(buf, sizeof(buf), OCSP_HTTP_MAX_FIELDS);
	code = -1;
	assert_int_equal(parse(buf, &h, &code), OCSP_HTTP_PARSE_OK);
	assert_int_equal(h.nfields, 32);
	assert_field(&h, buf, "x-f31", "31");

	build_fields(buf, sizeof(buf), OCSP_HTTP_MAX_FIELDS + 1);
	code = -1;
	assert_int_equal(parse(buf, &h, &code), OCSP_HTTP_PARSE_ERROR);
	assert_int_equal(code, 431);
}

static void
test_paths(void **state)
{
	static const struct {
		const char	*target;
		const char	*path;
	} t[] = {
		{ "/ocsp/abc", "/ocsp/abc" },
		{ "/ocsp/abc?x=1", "/ocsp/abc" },
		{ "/ocsp/abc#frag", "/ocsp/abc" },
		{ "/ocsp/a?b#c", "/ocsp/a" },
		{ "/?x", "/" },
		{ "/a%2Fb", "/a%2Fb" },
		{ "http://host:80/ocsp/abc?x=1", "/ocsp/abc" },
		{ "HTTP://HOST/Q", "/Q" },
		{ "http://host", "" },
		{ "http://host?q=/x", "" },
		{ "http://host#/x", "" },
		{ "https://h", "" },
		{ "https://h/", "/" },
		{ "https://h:443/a/b?c", "/a/b" },
		{ "*", "" },
		{ "host:443", "" },
		{ "http://", "" },
	};
	char buf[256];
	struct ocsp_http_head h;
	size_t i;
	int code;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		snprintf(buf, sizeof(buf), "OPTIONS %s HTTP/1.1\r\nHost: h\r\n"
		    "\r\n", t[i].target);
		code = -1;
		if (parse(buf, &h, &code) != OCSP_HTTP_PARSE_OK)
			fail_msg("case %zu: %s not OK", i, t[i].target);
		assert_int_equal(h.target_off, 8);
		assert_int_equal(h.target_len, strlen(t[i].target));
		if (h.path_len != strlen(t[i].path) ||
		    memcmp(buf + h.path_off, t[i].path, h.path_len) != 0)
			fail_msg("case %zu: %s: path %.*s, want %s", i,
			    t[i].target, (int)h.path_len, buf + h.path_off,
			    t[i].path);
		/* the path lies inside the target */
		assert_true(h.path_off >= h.target_off);
		assert_true(h.path_off + h.path_len <= h.target_off +
		    h.target_len);
	}
}

/* Expected verdicts for whole requests (len 0: strlen). */
struct verdict {
	const char		*req;
	size_t			 len;
	enum ocsp_http_parse	 want;
	int			 code;
};

static const struct verdict verdicts[] = {
	/* request line */
	{ "ABCDEFGHIJKLMNOPQRSTU / HTTP/1.0\r\n\r\n", 0,
	    OCSP_HTTP_PARSE_ERROR, 400 },			/* 21 chars */
	{ "GET  / HTTP/1.0\r\n\r\n", 0, OCSP_HTTP_PARSE_ERROR, 400 },
	{ "GET /  HTTP/1.0\r\n\r\n", 0, OCSP_HTTP_PARSE_ERROR, 400 },
	{ "GET\t/ HTTP/1.0\r\n\r\n", 0, OCSP_HTTP_PARSE_ERROR, 400 },
	{ "GET /\tHTTP/1.0\r\n\r\n", 0, OCSP_HTTP_PARSE_ERROR, 400 },
	{ " GET / HTTP/1.0\r\n\r\n", 0, OCSP_HTTP_PARSE_ERROR, 400 },
	{ "GET /\r\n\r\n", 0, OCSP_HTTP_PARSE_ERROR, 400 },
	{ "GET / \r\n\r\n", 0, OCSP_HTTP_PARSE_ERROR, 400 },
	{ "GET\r\n\r\n", 0, OCSP_HTTP_PARSE_ERROR, 400 },
	{ "GET / HTTP/1.0 \r\n\r\n", 0, OCSP_HTTP_PARSE_ERROR, 400 },
	{ "GET / HTTP/1.2\r\nHost: h\r\n\r\n", 0,
	    OCSP_HTTP_PARSE_ERROR, 505 },
	{ "GET / HTTP/2.0\r\nHost: h\r\n\r\n", 0,
	    OCSP_HTTP_PARSE_ERROR, 505 },
	{ "GET / HTTP/0.9\r\n\r\n", 0, OCSP_HTTP_PARSE_ERROR, 505 },
	{ "GET / HTTP/1.1x\r\nHost: h\r\n\r\n", 0,
	    OCSP_HTTP_PARSE_ERROR, 400 },
	{ "GET / http/1.1\r\nHost: h\r\n\r\n", 0,
	    OCSP_HTTP_PARSE_ERROR, 400 },
	{ "GET / HTTP/1.a\r\nHost: h\r\n\r\n", 0,
	    OCSP_HTTP_PARSE_ERROR, 400 },
	{ "GET / HTTP/11\r\nHost: h\r\n\r\n", 0,
	    OCSP_HTTP_PARSE_ERROR, 400 },
	/* target bytes */
	{ "GET /\x80 HTTP/1.0\r\n\r\n", 0, OCSP_HTTP_PARSE_ERROR, 400 },
	{ "GET /\xff HTTP/1.0\r\n\r\n", 0, OCSP_HTTP_PARSE_ERROR, 400 },
	{ "GET /\x01 HTTP/1.0\r\n\r\n", 0, OCSP_HTTP_PARSE_ERROR, 400 },
	{ "GET /\x7f HTTP/1.0\r\n\r\n", 0, OCSP_HTTP_PARSE_ERROR, 400 },
	/* field lines */
	{ "GET / HTTP/1.1\r\nHost : h\r\n\r\n", 0,
	    OCSP_HTTP_PARSE_ERROR, 400 },
	{ "GET / HTTP/1.1\r\nHost\t: h\r\n\r\n", 0,
	    OCSP_HTTP_PARSE_ERROR, 400 },
	{ "GET / HTTP/1.1\r\nHost: h\r\n: v\r\n\r\n", 0,
	    OCSP_HTTP_PARSE_ERROR, 400 },
	{ "GET / HTTP/1.1\r\nHost: h\r\nNoColon\r\n\r\n", 0,
	    OCSP_HTTP_PARSE_ERROR, 400 },
	{ "GET / HTTP/1.1\r\nHost: h\r\nX-A: b\r\n  c\r\n\r\n", 0,
	    OCSP_HTTP_PARSE_ERROR, 400 },			/* obs-fold */
	{ "GET / HTTP/1.1\r\nHost: h\r\nX-A: b\r\n\tc\r\n\r\n", 0,
	    OCSP_HTTP_PARSE_ERROR, 400 },
	{ "GET / HTTP/1.1\r\n Host: h\r\n\r\n", 0,
	    OCSP_HTTP_PARSE_ERROR, 400 },
	{ "GET / HTTP/1.1\r\nHost: h\rX-A: b\r\n\r\n", 0,
	    OCSP_HTTP_PARSE_ERROR, 400 },			/* bare CR */
	{ "GET / HTTP/1.1\rHost: h\r\n\r\n", 0,
	    OCSP_HTTP_PARSE_ERROR, 400 },
	{ "GET / HTTP/1.1\r\nHost: h\r\n\r\r\n", 0,
	    OCSP_HTTP_PARSE_ERROR, 400 },
	{ "GET / HTTP/1.1\r\nHost: h\0\r\n\r\n", 28,
	    OCSP_HTTP_PARSE_ERROR, 400 },			/* NUL */
	{ "GET /\0 HTTP/1.0\r\n\r\n", 19, OCSP_HTTP_PARSE_ERROR, 400 },
	{ "\0", 1, OCSP_HTTP_PARSE_ERROR, 400 },
	{ "GET / HTTP/1.1\r\nHost: h\r\nX-A: a\x01z\r\n\r\n", 0,
	    OCSP_HTTP_PARSE_ERROR, 400 },
	{ "GET / HTTP/1.1\r\nHost: h\r\nX-A: a\x7fz\r\n\r\n", 0,
	    OCSP_HTTP_PARSE_ERROR, 400 },
	{ "GET / HTTP/1.1\r\nHost: h\r\nX-A: \x1f\r\n\r\n", 0,
	    OCSP_HTTP_PARSE_ERROR, 400 },
	{ "GET / HTTP/1.1\r\nHost: h\r\nX\x80: a\r\n\r\n", 0,
	    OCSP_HTTP_PARSE_ERROR, 400 },
	/* obs-text and HTAB inside a value are fine */
	{ "GET / HTTP/1.1\r\nHost: h\r\nX-A: a\x80\xff\tz\r\n\r\n", 0,
	    OCSP_HTTP_PARSE_OK, 0 },
	/* Content-Length */
	{ "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1x\r\n\r\n", 0,
	    OCSP_HTTP_PARSE_ERROR, 400 },
	{ "POST / HTTP/1.1\r\nHost: h\r\nContent-Length:\r\n\r\n", 0,
	    OCSP_HTTP_PARSE_ERROR, 400 },
	{ "POST / HTTP/1.1\r\nHost: h\r\nContent-Length:   \r\n\r\n", 0,
	    OCSP_HTTP_PARSE_ERROR, 400 },
	{ "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1000000000000\r\n"
	    "\r\n", 0, OCSP_HTTP_PARSE_ERROR, 400 },		/* 13 digits */
	{ "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +5\r\n\r\n", 0,
	    OCSP_HTTP_PARSE_ERROR, 400 },
	{ "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", 0,
	    OCSP_HTTP_PARSE_ERROR, 400 },
	{ "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5 5\r\n\r\n", 0,
	    OCSP_HTTP_PARSE_ERROR, 400 },
	{ "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5,5\r\n\r\n", 0,
	    OCSP_HTTP_PARSE_ERROR, 400 },
	{ "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n"
	    "content-length: 6\r\n\r\n", 0, OCSP_HTTP_PARSE_ERROR, 400 },
	{ "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n"
	    "Content-Length: 5\r\n\r\n", 0, OCSP_HTTP_PARSE_OK, 0 },
	/* Transfer-Encoding */
	{ "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n",
	    0, OCSP_HTTP_PARSE_ERROR, 411 },
	{ "POST / HTTP/1.1\r\nHost: h\r\ntransfer-encoding: gzip\r\n\r\n",
	    0, OCSP_HTTP_PARSE_ERROR, 411 },
	{ "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
	    "Content-Length: 5\r\n\r\n", 0, OCSP_HTTP_PARSE_ERROR, 400 },
	{ "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n", 0,
	    OCSP_HTTP_PARSE_ERROR, 400 },
	/* Expect */
	{ "POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n\r\n", 0,
	    OCSP_HTTP_PARSE_OK, 0 },
	{ "POST / HTTP/1.1\r\nHost: h\r\nExpect: 200-ok\r\n\r\n", 0,
	    OCSP_HTTP_PARSE_ERROR, 417 },
	{ "POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue, x\r\n\r\n",
	    0, OCSP_HTTP_PARSE_ERROR, 417 },
	{ "POST / HTTP/1.1\r\nHost: h\r\nExpect:\r\n\r\n", 0,
	    OCSP_HTTP_PARSE_ERROR, 417 },
	/* Host */
	{ "GET / HTTP/1.1\r\n\r\n", 0, OCSP_HTTP_PARSE_ERROR, 400 },
	{ "GET / HTTP/1.1\r\nX-Host: h\r\n\r\n", 0,
	    OCSP_HTTP_PARSE_ERROR, 400 },
	{ "GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n", 0,
	    OCSP_HTTP_PARSE_ERROR, 400 },
	{ "GET / HTTP/1.0\r\nHost: a\r\nHOST: b\r\n\r\n", 0,
	    OCSP_HTTP_PARSE_ERROR, 400 },
	{ "GET / HTTP/1.0\r\nHost: a\r\n\r\n", 0, OCSP_HTTP_PARSE_OK, 0 },
	{ "GET / HTTP/1.1\r\nHost:\r\n\r\n", 0, OCSP_HTTP_PARSE_OK, 0 },
	/* incomplete: a CR at the end may still get its LF */
	{ "GET / HTTP/1.1\r", 0, OCSP_HTTP_PARSE_MORE, 400 },
	{ "GET / HTTP/1.1\r\nHost: h\r\n\r", 0, OCSP_HTTP_PARSE_MORE, 400 },
	/* ... but a bad request line is known before the head ends */
	{ "GET  / HTTP/1.1\r\n", 0, OCSP_HTTP_PARSE_ERROR, 400 },
	{ "GET / HTTP/1.1\r\nHost : h\r\n", 0, OCSP_HTTP_PARSE_ERROR, 400 },
};

static void
test_verdicts(void **state)
{
	const struct verdict *v;
	struct ocsp_http_head h;
	enum ocsp_http_parse got;
	size_t i, len;
	int code;

	(void)state;
	for (i = 0; i < sizeof(verdicts) / sizeof(verdicts[0]); i++) {
		v = &verdicts[i];
		len = v->len ? v->len : strlen(v->req);
		code = -1;
		got = ocsp_http_parse_head((const uint8_t *)v->req, len,
		    MAX_HEAD, &h, &code);
		if (got != v->want || (got != OCSP_HTTP_PARSE_MORE &&
		    code != v->code))
			fail_msg("case %zu (%s): got %d code %d, want %d "
			    "code %d", i, v->req, got, code, v->want,
			    v->code);
		if (got == OCSP_HTTP_PARSE_OK)
			assert_int_equal(h.head_len, len);
	}
}

static void
test_content_length(void **state)
{
	static const struct {
		const char	*value;
		int64_t		 want;
	} t[] = {
		{ "0", 0 },
		{ "007", 7 },
		{ "  12  ", 12 },
		{ "\t999999999999\t", 999999999999LL },	/* 12 digits */
	};
	char buf[256];
	struct ocsp_http_head h;
	size_t i;
	int code;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		snprintf(buf, sizeof(buf), "POST / HTTP/1.1\r\nHost: h\r\n"
		    "Content-Length:%s\r\n\r\n", t[i].value);
		code = -1;
		assert_int_equal(parse(buf, &h, &code), OCSP_HTTP_PARSE_OK);
		assert_int_equal(code, 0);
		assert_true(h.content_length == t[i].want);
	}
	/* equal repeats, written differently */
	code = -1;
	assert_int_equal(parse("POST / HTTP/1.1\r\nHost: h\r\n"
	    "Content-Length: 5\r\nCONTENT-LENGTH: 005\r\n\r\n", &h, &code),
	    OCSP_HTTP_PARSE_OK);
	assert_int_equal(h.content_length, 5);
	assert_int_equal(h.nfields, 3);
}

static void
test_expect(void **state)
{
	static const char *ok[] = {
		"POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: h\r\nexpect:100-CONTINUE \r\n\r\n",
		"POST / HTTP/1.1\r\nHost: h\r\nEXPECT: 100-Continue\r\n\r\n",
	};
	struct ocsp_http_head h;
	size_t i;
	int code;

	(void)state;
	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		code = -1;
		assert_int_equal(parse(ok[i], &h, &code), OCSP_HTTP_PARSE_OK);
		assert_int_equal(h.expect_continue, 1);
	}
	code = -1;
	assert_int_equal(parse(post_req, &h, &code), OCSP_HTTP_PARSE_OK);
	assert_int_equal(h.expect_continue, 0);
}

/*
 * RFC 9110 10.1.1: "A server that receives a 100-continue expectation in
 * an HTTP/1.0 request MUST ignore that expectation."  An HTTP/1.0 client
 * does not expect a 1xx interim response.
 */
static void
test_expect_http10_ignored(void **state)
{
	const char *req = "POST / HTTP/1.0\r\nExpect: 100-continue\r\n"
	    "Content-Length: 3\r\n\r\n";
	struct ocsp_http_head h;
	int code = -1;

	(void)state;
	assert_int_equal(parse(req, &h, &code), OCSP_HTTP_PARSE_OK);
	assert_int_equal(code, 0);
	assert_int_equal(h.content_length, 3);
	assert_int_equal(h.expect_continue, 0);
}

static void
test_keep_alive(void **state)
{
	static const struct {
		const char	*req;
		int		 keep;
	} t[] = {
		{ "GET / HTTP/1.1\r\nHost: h\r\n\r\n", 1 },
		{ "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", 0 },
		{ "GET / HTTP/1.1\r\nHost: h\r\nconnection: CLOSE\r\n\r\n", 0 },
		{ "GET / HTTP/1.1\r\nHost: h\r\n"
		    "Connection: Keep-Alive, close\r\n\r\n", 0 },
		{ "GET / HTTP/1.1\r\nHost: h\r\n"
		    "Connection: ,, close ,\r\n\r\n", 0 },
		{ "GET / HTTP/1.1\r\nHost: h\r\n"
		    "Connection: keep-alive\r\n\r\n", 1 },
		{ "GET / HTTP/1.1\r\nHost: h\r\n"
		    "Connection: closed, xclose\r\n\r\n", 1 },
		{ "GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\n\r\n", 1 },
		{ "GET / HTTP/1.0\r\n\r\n", 0 },
		{ "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 1 },
		{ "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", 1 },
		{ "GET / HTTP/1.0\r\nConnection: TE, keep-alive\r\n\r\n", 1 },
		{ "GET / HTTP/1.0\r\n"
		    "Connection: keep-alive\r\nConnection: close\r\n\r\n", 0 },
		{ "GET / HTTP/1.0\r\nConnection: keep-alives\r\n\r\n", 0 },
	};
	struct ocsp_http_head h;
	size_t i;
	int code;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		code = -1;
		if (parse(t[i].req, &h, &code) != OCSP_HTTP_PARSE_OK)
			fail_msg("case %zu not OK", i);
		if (h.keep_alive != t[i].keep)
			fail_msg("case %zu: keep_alive %d, want %d", i,
			    h.keep_alive, t[i].keep);
	}
}

static void
test_pipelined(void **state)
{
	const char *first = "POST /a HTTP/1.1\r\nHost: h\r\n"
	    "Content-Length: 4\r\n\r\n";
	const char *both = "POST /a HTTP/1.1\r\nHost: h\r\n"
	    "Content-Length: 4\r\n\r\nbody"
	    "GET /b HTTP/1.1\r\nHost: h\r\n\r\n";
	struct ocsp_http_head h;
	int code = -1;

	(void)state;
	assert_int_equal(parse(both, &h, &code), OCSP_HTTP_PARSE_OK);
	assert_int_equal(h.head_len, strlen(first));
	assert_int_equal(h.content_length, 4);
	assert_int_equal(h.nfields, 2);
	assert_path(&h, both, "/a");
	/* the second request, after the body */
	code = -1;
	assert_int_equal(parse(both + h.head_len + 4, &h, &code),
	    OCSP_HTTP_PARSE_OK);
	assert_int_equal(h.method, OCSP_HTTP_GET);
	assert_int_equal(h.head_len, 28);
	assert_int_equal(h.content_length, -1);

	/* bytes after the head, even bad ones, are not the parser's */
	code = -1;
	assert_int_equal(ocsp_http_parse_head((const uint8_t *)
	    "GET / HTTP/1.0\r\n\r\n\0\r\x01", 21, MAX_HEAD, &h, &code),
	    OCSP_HTTP_PARSE_OK);
	assert_int_equal(h.head_len, 18);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_minimal_get10),
		cmocka_unit_test(test_post11),
		cmocka_unit_test(test_other_methods),
		cmocka_unit_test(test_bare_lf),
		cmocka_unit_test(test_leading_empty_lines),
		cmocka_unit_test(test_every_prefix_is_more),
		cmocka_unit_test(test_max_head),
		cmocka_unit_test(test_field_count),
		cmocka_unit_test(test_paths),
		cmocka_unit_test(test_verdicts),
		cmocka_unit_test(test_content_length),
		cmocka_unit_test(test_expect),
		cmocka_unit_test(test_expect_http10_ignored),
		cmocka_unit_test(test_keep_alive),
		cmocka_unit_test(test_pipelined),
	};

	return cmocka_run_group_tests_name("http_parse", tests, NULL, NULL);
}
