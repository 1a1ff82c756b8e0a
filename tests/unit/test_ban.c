/*
 * test_ban.c - ca/ban.c: the BAN client against real loopback servers
 * that answer, refuse, stay silent, dribble, talk nonsense or hang up;
 * the status line parser on malformed input; the X-Mica-Ban expression.
 */
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "ca/ban.h"
#include "common/bytes.h"
#include "conf/conf.h"

enum mode {
	M_OK,		/* reads the request, answers 200 */
	M_403,		/* answers 403 */
	M_SILENT,	/* accepts, reads, never answers */
	M_JUNK,		/* answers a line that is no status line */
	M_HANGUP,	/* reads the request, closes */
	M_DRIBBLE,	/* "HTTP/1.1 200 OK" a byte at a time, no line end */
	M_ENDLESS	/* 8 KiB without a line end */
};

struct server {
	enum mode	 mode;
	int		 fd;
	int		 port;
	pthread_t	 tid;
	int		 stop;
	int		 accepted;
	char		 last_req[BAN_EXPR_MAX + 1024];
};

/* Reads a request head (to the empty line) into s->last_req. */
static void
read_head(struct server *s, int c)
{
	size_t got = 0;
	ssize_t n;

	while (got < sizeof(s->last_req) - 1) {
		n = read(c, s->last_req + got, sizeof(s->last_req) - 1 - got);
		if (n <= 0)
			break;
		got += (size_t)n;
		s->last_req[got] = '\0';
		if (strstr(s->last_req, "\r\n\r\n") != NULL)
			break;
	}
	s->last_req[got] = '\0';
}

static void
serve(struct server *s, int c)
{
	static const char ok[] = "HTTP/1.1 200 Banned\r\nContent-Length: 0"
	    "\r\nConnection: close\r\n\r\n";
	static const char no[] = "HTTP/1.1 403 Forbidden\r\n\r\n";
	char big[8192];
	const char *p;
	struct timespec ms50 = { 0, 50 * 1000 * 1000 };

	read_head(s, c);
	switch (s->mode) {
	case M_OK:
		(void)!write(c, ok, sizeof(ok) - 1);
		break;
	case M_403:
		(void)!write(c, no, sizeof(no) - 1);
		break;
	case M_JUNK:
		(void)!write(c, "hello there\r\n", 13);
		break;
	case M_DRIBBLE:
		for (p = "HTTP/1.1 200 OK"; *p != '\0' && !s->stop; p++) {
			if (write(c, p, 1) != 1)
				break;
			nanosleep(&ms50, NULL);
		}
		while (!s->stop)
			nanosleep(&ms50, NULL);
		break;
	case M_ENDLESS:
		memset(big, 'H', sizeof(big));
		(void)!write(c, big, sizeof(big));
		while (!s->stop)
			nanosleep(&ms50, NULL);
		break;
	case M_SILENT:
		while (!s->stop)
			nanosleep(&ms50, NULL);
		break;
	default:
		break;
	}
}

static void *
server_main(void *arg)
{
	struct server *s = arg;
	int c;

	while ((c = accept(s->fd, NULL, NULL)) >= 0) {
		__atomic_add_fetch(&s->accepted, 1, __ATOMIC_SEQ_CST);
		serve(s, c);
		close(c);
	}
	return NULL;
}

static int
listen_any(int *out_port)
{
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);
	int fd, one = 1;

	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(fd, 16), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
	*out_port = ntohs(sin.sin_port);
	return fd;
}

static void
server_start(struct server *s, enum mode m)
{
	memset(s, 0, sizeof(*s));
	s->mode = m;
	s->fd = listen_any(&s->port);
	assert_int_equal(pthread_create(&s->tid, NULL, server_main, s), 0);
}

static void
server_stop(struct server *s)
{
	__atomic_store_n(&s->stop, 1, __ATOMIC_SEQ_CST);
	shutdown(s->fd, SHUT_RDWR);	/* accept returns */
	pthread_join(s->tid, NULL);
	close(s->fd);
}

/* A port nothing listens on (bound, then closed). */
static int
refusing_port(void)
{
	int port, fd = listen_any(&port);

	close(fd);
	return port;
}

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct ban *
client(const char *fmt, ...)
{
	char urls[1024], err[256];
	struct ban *b;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(urls, sizeof(urls), fmt, ap);
	va_end(ap);
	b = ban_new(urls, 300, err, sizeof(err));
	if (b == NULL)
		fail_msg("ban_new(%s): %s", urls, err);
	return b;
}

/* ---- the status line ---- */

static void
test_parse_status(void **state)
{
	static const struct {
		const char		*in;
		enum ban_status		 want;
		int			 code;
	} t[] = {
		{ "HTTP/1.1 200 OK\r\n", BAN_STATUS_OK, 200 },
		{ "HTTP/1.0 403 Forbidden\r\n\r\n", BAN_STATUS_OK, 403 },
		{ "HTTP/1.1 200\r\n", BAN_STATUS_OK, 200 },
		{ "HTTP/1.1 204\n", BAN_STATUS_OK, 204 },
		{ "", BAN_STATUS_MORE, 0 },
		{ "HTT", BAN_STATUS_MORE, 0 },
		{ "HTTP/1.1 200 OK", BAN_STATUS_MORE, 0 },
		{ "XTTP/1.1 200 OK\r\n", BAN_STATUS_BAD, 0 },
		{ "hello\r\n", BAN_STATUS_BAD, 0 },
		{ "HTTP/2 200\r\n", BAN_STATUS_BAD, 0 },
		{ "HTTP/1.1 2x0 OK\r\n", BAN_STATUS_BAD, 0 },
		{ "HTTP/1.1 200OK\r\n", BAN_STATUS_BAD, 0 },
		{ "HTTP/1.1 099 Low\r\n", BAN_STATUS_BAD, 0 },
		{ "HTTP/1.1 20\r\n", BAN_STATUS_BAD, 0 },
		{ "HTTP/1.\n", BAN_STATUS_BAD, 0 },
		{ "HTTP/1.1  200 OK\r\n", BAN_STATUS_BAD, 0 },
		{ "\n", BAN_STATUS_BAD, 0 },
	};
	uint8_t big[BAN_RESP_MAX];
	size_t i;
	int code;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		code = 0;
		if (ban_parse_status((const uint8_t *)t[i].in, strlen(t[i].in),
		    &code) != t[i].want)
			fail_msg("\"%s\": not %d", t[i].in, (int)t[i].want);
		if (t[i].want == BAN_STATUS_OK)
			assert_int_equal(code, t[i].code);
	}
	/* a full buffer without a line end is refused, not waited for */
	memcpy(big, "HTTP/1.1 200 ", 13);
	memset(big + 13, 'x', sizeof(big) - 13);
	assert_int_equal(ban_parse_status(big, sizeof(big), &code),
	    BAN_STATUS_BAD);
	assert_int_equal(ban_parse_status(big, sizeof(big) - 1, &code),
	    BAN_STATUS_MORE);
}

/* ---- the expression ---- */

static void
test_expr(void **state)
{
	struct ban_expr e;
	uint8_t s[16];
	int i;

	(void)state;
	ban_expr_init(&e);
	assert_string_equal(ban_expr_get(&e), "");
	memset(s, 0, sizeof(s));
	s[15] = 0x0a;
	ban_expr_add(&e, s);
	assert_string_equal(ban_expr_get(&e), "(^|,)(0A)(,|$)");
	s[0] = 0x7f;
	ban_expr_add(&e, s);
	assert_string_equal(ban_expr_get(&e),
	    "(^|,)(0A|7F00000000000000000000000000000A)(,|$)");
	/* too many for one header: every answer */
	for (i = 0; i < 200; i++) {
		s[1] = (uint8_t)i;
		ban_expr_add(&e, s);
	}
	assert_int_equal(e.all, 1);
	assert_string_equal(ban_expr_get(&e), ".");
}

static void
test_new(void **state)
{
	char err[256], urls[2048];
	struct ban *b;
	size_t n = 0;
	int i;

	(void)state;
	assert_null(ban_new("", 200, err, sizeof(err)));
	assert_string_equal(err, "");
	assert_null(ban_new(" , ", 200, err, sizeof(err)));
	assert_string_equal(err, "");
	assert_null(ban_new("http://127.0.0.1", 200, err, sizeof(err)));
	assert_non_null(strstr(err, "not http://HOST:PORT"));
	assert_null(ban_new("https://127.0.0.1:1", 200, err, sizeof(err)));
	assert_null(ban_new("http://127.0.0.1:0", 200, err, sizeof(err)));
	assert_null(ban_new("http://127.0.0.1:65536", 200, err, sizeof(err)));
	assert_null(ban_new("http://127.0.0.1:80/path", 200, err,
	    sizeof(err)));
	for (i = 0; i <= CONF_BAN_MAX; i++)
		n += (size_t)snprintf(urls + n, sizeof(urls) - n,
		    "http://127.0.0.1:%d ", 1000 + i);
	assert_null(ban_new(urls, 200, err, sizeof(err)));
	assert_non_null(strstr(err, "more than"));
	b = ban_new("http://127.0.0.1:1, http://[::1]:2/", 200, err,
	    sizeof(err));
	assert_non_null(b);
	assert_int_equal(ban_num_caches(b), 2);
	ban_free(b);
	ban_free(NULL);
}

/* ---- against servers ---- */

static void
test_ok(void **state)
{
	struct server s;
	struct ban_cache_stat st;
	struct ban *b;
	struct wb m;
	char want[128];

	(void)state;
	server_start(&s, M_OK);
	b = client("http://127.0.0.1:%d", s.port);
	assert_int_equal(ban_send(b, "(^|,)(0A|0B)(,|$)"), 1);
	assert_non_null(strstr(s.last_req, "BAN / HTTP/1.1\r\n"));
	snprintf(want, sizeof(want), "Host: 127.0.0.1:%d\r\n", s.port);
	assert_non_null(strstr(s.last_req, want));
	assert_non_null(strstr(s.last_req,
	    "X-Mica-Ban: (^|,)(0A|0B)(,|$)\r\n"));
	assert_int_equal(ban_send(b, "(^|,)(0C)(,|$)"), 1);
	assert_true(ban_stat(b, 0, &st));
	assert_int_equal(st.bans, 2);
	assert_int_equal(st.failures, 0);
	assert_true(st.last_ok > 0);
	assert_false(ban_stat(b, 1, &st));
	/* nothing is sent for a line break or an empty expression */
	assert_int_equal(ban_send(b, "a\r\nX-Evil: 1"), 0);
	assert_int_equal(ban_send(b, ""), 0);
	assert_int_equal(s.accepted, 2);
	wb_init(&m);
	ban_metrics_append(b, &m);
	wb_u8(&m, 0);
	snprintf(want, sizeof(want), "mica_cache_bans_total{cache=\""
	    "http://127.0.0.1:%d\"} 2\n", s.port);
	assert_non_null(strstr((char *)m.data, want));
	snprintf(want, sizeof(want), "mica_cache_ban_failures_total{cache=\""
	    "http://127.0.0.1:%d\"} 0\n", s.port);
	assert_non_null(strstr((char *)m.data, want));
	wb_cleanup(&m);
	ban_free(b);
	server_stop(&s);
}

/* One failing server: ban_send returns 0, the failure says why. */
static void
fails_with(enum mode mode, const char *why, int timed)
{
	struct server s;
	struct ban_cache_stat st;
	struct ban *b;
	int64_t t0, dt;

	server_start(&s, mode);
	b = client("http://127.0.0.1:%d", s.port);
	t0 = now_ms();
	assert_int_equal(ban_send(b, "(^|,)(0A)(,|$)"), 0);
	dt = now_ms() - t0;
	assert_true(ban_stat(b, 0, &st));
	assert_int_equal(st.bans, 0);
	assert_int_equal(st.failures, 1);
	assert_true(st.last_failure > 0);
	if (strstr(st.last_error, why) == NULL)
		fail_msg("mode %d: last error \"%s\", not \"%s\"", (int)mode,
		    st.last_error, why);
	/* a silent server costs the whole timeout, never much more (the
	 * bound is loose: a loaded machine) */
	if (timed) {
		assert_true(dt >= 290);
		assert_true(dt < 300 * 20);
	}
	ban_free(b);
	server_stop(&s);
}

static void
test_failures(void **state)
{
	(void)state;
	fails_with(M_403, "answered 403", 0);
	fails_with(M_JUNK, "not an HTTP answer", 0);
	fails_with(M_HANGUP, "closed before a status line", 0);
	fails_with(M_SILENT, "no answer within the timeout", 1);
	fails_with(M_DRIBBLE, "no answer within the timeout", 1);
	fails_with(M_ENDLESS, "not an HTTP answer", 0);
}

static void
test_refused(void **state)
{
	struct ban_cache_stat st;
	struct ban *b;

	(void)state;
	b = client("http://127.0.0.1:%d", refusing_port());
	assert_int_equal(ban_send(b, "."), 0);
	assert_true(ban_stat(b, 0, &st));
	assert_int_equal(st.failures, 1);
	assert_non_null(strstr(st.last_error, "refused"));
	ban_free(b);
}

/* All caches at once: a silent one does not hold back the others, and
 * the whole costs one timeout, not one per cache. */
static void
test_parallel(void **state)
{
	struct server ok1, ok2, silent1, silent2;
	struct ban_cache_stat st;
	struct ban *b;
	int64_t t0, dt;
	int i;

	(void)state;
	server_start(&ok1, M_OK);
	server_start(&ok2, M_OK);
	server_start(&silent1, M_SILENT);
	server_start(&silent2, M_SILENT);
	b = client("http://127.0.0.1:%d http://127.0.0.1:%d "
	    "http://127.0.0.1:%d,http://127.0.0.1:%d http://127.0.0.1:%d/",
	    silent1.port, ok1.port, refusing_port(), silent2.port, ok2.port);
	assert_int_equal(ban_num_caches(b), 5);
	t0 = now_ms();
	assert_int_equal(ban_send(b, "(^|,)(0A)(,|$)"), 2);
	dt = now_ms() - t0;
	assert_true(dt >= 290);
	assert_true(dt < 2 * 300 + 3000);	/* one timeout, not three */
	for (i = 0; i < 5; i++) {
		assert_true(ban_stat(b, i, &st));
		assert_int_equal(st.bans + st.failures, 1);
		assert_int_equal(st.bans, i == 1 || i == 4);
	}
	ban_free(b);
	server_stop(&ok1);
	server_stop(&ok2);
	server_stop(&silent1);
	server_stop(&silent2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_status),
		cmocka_unit_test(test_expr),
		cmocka_unit_test(test_new),
		cmocka_unit_test(test_ok),
		cmocka_unit_test(test_failures),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_parallel),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
