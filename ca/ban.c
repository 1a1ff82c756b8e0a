/*
 * ban.c - HTTP BAN requests to the OCSP caches (see ban.h).
 *
 * One short TCP connection per cache and ban: connect, write the request,
 * read until the status line is complete (at most BAN_RESP_MAX bytes),
 * close.  Every cache is driven by one poll loop with one deadline, so
 * the slowest cache costs the commit at most ban_timeout_ms whatever the
 * number of caches.  Hosts are resolved once, at start.
 */
#include <sys/socket.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ca/ban.h"
#include "common/bytes.h"
#include "common/log.h"
#include "conf/conf.h"

#define BAN_WARN_EVERY	60	/* s between two warnings per cache */
#define BAN_REQ_MAX	(BAN_EXPR_MAX + 512)
#define BAN_EXPR_HEAD	"(^|,)("
#define BAN_EXPR_TAIL	")(,|$)"

struct cache {
	char			 url[128];	/* as configured */
	char			 authority[300];	/* Host: */
	struct sockaddr_storage	 sa;
	socklen_t		 salen;
	time_t			 last_warn;	/* ban_send's thread only */
	uint64_t		 quiet;		/* failures not logged */
	struct ban_cache_stat	 st;		/* under mu */
};

struct ban {
	pthread_mutex_t	 mu;
	int		 timeout_ms;
	int		 n;
	struct cache	 c[CONF_BAN_MAX];
};

enum cstate { C_CONNECT, C_SEND, C_READ, C_DONE };

/* One cache's exchange in ban_send. */
struct xfer {
	int		 fd;
	enum cstate	 state;
	size_t		 sent;
	size_t		 got;
	int		 code;		/* 0: none yet */
	char		 err[BAN_ERR_MAX];
	uint8_t		 buf[BAN_RESP_MAX];
};

/* ---- the expression ---- */

void
ban_expr_init(struct ban_expr *e)
{
	memset(e, 0, sizeof(*e));
}

void
ban_expr_add(struct ban_expr *e, const uint8_t serial[16])
{
	char hex[SERIAL_HEX_LEN];
	size_t hl, need;

	if (e->all)
		return;
	serial_hex(hex, serial);
	hl = strlen(hex);
	need = (e->num == 0 ? sizeof(BAN_EXPR_HEAD) - 1 : 1) + hl +
	    sizeof(BAN_EXPR_TAIL);	/* tail and NUL */
	if (e->len + need > sizeof(e->text)) {
		e->all = 1;
		return;
	}
	if (e->num == 0) {
		memcpy(e->text, BAN_EXPR_HEAD, sizeof(BAN_EXPR_HEAD) - 1);
		e->len = sizeof(BAN_EXPR_HEAD) - 1;
	} else
		e->text[e->len++] = '|';
	memcpy(e->text + e->len, hex, hl);
	e->len += hl;
	e->num++;
}

const char *
ban_expr_get(struct ban_expr *e)
{
	if (e->all)
		return ".";	/* every answer that names a serial */
	if (e->num == 0)
		return "";
	/* the tail is appended here; room was kept by ban_expr_add */
	memcpy(e->text + e->len, BAN_EXPR_TAIL, sizeof(BAN_EXPR_TAIL));
	return e->text;
}

/* ---- set-up ---- */

static int
cache_resolve(struct cache *c, const char *url, char *err, size_t err_len)
{
	struct addrinfo hints, *res = NULL;
	char host[256], port_s[8];
	int port, gai;

	if (strlen(url) >= sizeof(c->url) ||
	    !conf_ban_url_parse(url, host, sizeof(host), &port)) {
		snprintf(err, err_len, "ban_urls: \"%s\": not "
		    "http://HOST:PORT", url);
		return 0;
	}
	snprintf(c->url, sizeof(c->url), "%s", url);
	snprintf(c->st.url, sizeof(c->st.url), "%s", url);
	if (strchr(host, ':') != NULL)
		snprintf(c->authority, sizeof(c->authority), "[%s]:%d", host,
		    port);
	else
		snprintf(c->authority, sizeof(c->authority), "%s:%d", host,
		    port);
	snprintf(port_s, sizeof(port_s), "%d", port);
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	if ((gai = getaddrinfo(host, port_s, &hints, &res)) != 0) {
		snprintf(err, err_len, "ban_urls: \"%s\": %s", url,
		    gai_strerror(gai));
		return 0;
	}
	if (res->ai_addrlen > sizeof(c->sa)) {
		freeaddrinfo(res);
		snprintf(err, err_len, "ban_urls: \"%s\": odd address", url);
		return 0;
	}
	memcpy(&c->sa, res->ai_addr, res->ai_addrlen);
	c->salen = res->ai_addrlen;
	freeaddrinfo(res);
	return 1;
}

struct ban *
ban_new(const char *urls, int timeout_ms, char *err, size_t err_len)
{
	struct ban *b = NULL;
	char buf[CONF_STR_MAX], *tok, *save = NULL, *p;

	err[0] = '\0';
	if (strlen(urls) >= sizeof(buf)) {
		snprintf(err, err_len, "ban_urls: too long");
		return NULL;
	}
	snprintf(buf, sizeof(buf), "%s", urls);
	if ((b = calloc(1, sizeof(*b))) == NULL) {
		snprintf(err, err_len, "out of memory");
		return NULL;
	}
	if (pthread_mutex_init(&b->mu, NULL) != 0) {
		free(b);
		snprintf(err, err_len, "cannot make a mutex");
		return NULL;
	}
	b->timeout_ms = timeout_ms > 0 ? timeout_ms : 200;
	for (p = buf; (tok = strtok_r(p, ", \t", &save)) != NULL; p = NULL) {
		if (b->n >= CONF_BAN_MAX) {
			snprintf(err, err_len, "ban_urls: more than %d caches",
			    CONF_BAN_MAX);
			goto fail;
		}
		if (!cache_resolve(&b->c[b->n], tok, err, err_len))
			goto fail;
		b->n++;
	}
	if (b->n == 0)
		goto fail;
	return b;
 fail:
	ban_free(b);
	return NULL;
}

void
ban_free(struct ban *b)
{
	if (b == NULL)
		return;
	pthread_mutex_destroy(&b->mu);
	free(b);
}

int
ban_num_caches(const struct ban *b)
{
	return b != NULL ? b->n : 0;
}

/* ---- the answer ---- */

enum ban_status
ban_parse_status(const uint8_t *buf, size_t len, int *out_code)
{
	static const char pfx[] = "HTTP/1.";
	const size_t pl = sizeof(pfx) - 1;
	size_t i, eol;
	int code = 0;

	/* what is there must be a prefix of a status line */
	for (i = 0; i < len && i < pl; i++)
		if (buf[i] != (uint8_t)pfx[i])
			return BAN_STATUS_BAD;
	for (eol = 0; eol < len && buf[eol] != '\n'; eol++)
		;
	if (eol == len)		/* no line end yet */
		return len >= BAN_RESP_MAX ? BAN_STATUS_BAD : BAN_STATUS_MORE;
	/* "HTTP/1.x SP DDD" then SP or the line end */
	if (eol < pl + 5 || buf[pl] < '0' || buf[pl] > '9' ||
	    buf[pl + 1] != ' ')
		return BAN_STATUS_BAD;
	for (i = pl + 2; i < pl + 5; i++) {
		if (buf[i] < '0' || buf[i] > '9')
			return BAN_STATUS_BAD;
		code = code * 10 + (buf[i] - '0');
	}
	if (eol > pl + 5 && buf[pl + 5] != ' ' && buf[pl + 5] != '\r')
		return BAN_STATUS_BAD;
	if (code < 100)
		return BAN_STATUS_BAD;
	*out_code = code;
	return BAN_STATUS_OK;
}

/* ---- sending ---- */

static int64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
xfer_fail(struct xfer *x, const char *what, int err)
{
	if (err != 0)
		snprintf(x->err, sizeof(x->err), "%s: %s", what,
		    strerror(err));
	else
		snprintf(x->err, sizeof(x->err), "%s", what);
	x->state = C_DONE;
}

static void
xfer_start(struct xfer *x, const struct cache *c)
{
	x->fd = socket(c->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0);
	if (x->fd < 0) {
		xfer_fail(x, "socket", errno);
		return;
	}
	if (connect(x->fd, (const struct sockaddr *)&c->sa, c->salen) == 0)
		x->state = C_SEND;
	else if (errno == EINPROGRESS)
		x->state = C_CONNECT;
	else
		xfer_fail(x, "connect", errno);
}

/* Moves x on after poll said revents; req is its request. */
static void
xfer_step(struct xfer *x, short revents, const char *req, size_t req_len)
{
	ssize_t n;
	int soerr = 0;
	socklen_t sl = sizeof(soerr);

	if (x->state == C_CONNECT) {
		if (getsockopt(x->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0)
			soerr = errno;
		if (soerr != 0) {
			xfer_fail(x, "connect", soerr);
			return;
		}
		if (!(revents & (POLLOUT | POLLERR | POLLHUP)))
			return;
		x->state = C_SEND;
	}
	if (x->state == C_SEND) {
		n = send(x->fd, req + x->sent, req_len - x->sent,
		    MSG_NOSIGNAL);
		if (n < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK &&
			    errno != EINTR)
				xfer_fail(x, "send", errno);
			return;
		}
		x->sent += (size_t)n;
		if (x->sent == req_len)
			x->state = C_READ;
		return;
	}
	if (x->state != C_READ || !(revents & (POLLIN | POLLERR | POLLHUP)))
		return;
	n = recv(x->fd, x->buf + x->got, sizeof(x->buf) - x->got, 0);
	if (n < 0) {
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			xfer_fail(x, "recv", errno);
		return;
	}
	if (n == 0) {
		xfer_fail(x, "closed before a status line", 0);
		return;
	}
	x->got += (size_t)n;
	switch (ban_parse_status(x->buf, x->got, &x->code)) {
	case BAN_STATUS_MORE:
		break;
	case BAN_STATUS_BAD:
		x->code = 0;
		xfer_fail(x, "not an HTTP answer", 0);
		break;
	case BAN_STATUS_OK:
		if (x->code != 200)
			snprintf(x->err, sizeof(x->err), "answered %d",
			    x->code);
		x->state = C_DONE;
		break;
	}
}

/* Counts cache c's result and logs a failure at most once a minute. */
static void
note_result(struct ban *b, struct cache *c, const struct xfer *x,
    const char *expr)
{
	time_t now = time(NULL);
	int ok = x->state == C_DONE && x->code == 200;

	pthread_mutex_lock(&b->mu);
	if (ok) {
		c->st.bans++;
		c->st.last_ok = (int64_t)now;
	} else {
		c->st.failures++;
		c->st.last_failure = (int64_t)now;
		snprintf(c->st.last_error, sizeof(c->st.last_error), "%s",
		    x->state == C_DONE ? x->err : "no answer within the "
		    "timeout");
	}
	pthread_mutex_unlock(&b->mu);
	if (ok) {
		log_debug("ban: cache=%s ok expr=%s", c->url, expr);
		return;
	}
	if (c->last_warn != 0 && now - c->last_warn < BAN_WARN_EVERY) {
		c->quiet++;
		return;
	}
	log_warnx("ban: cache=%s failed: %s (timeout %d ms; %" PRIu64
	    " more failures since the last warning); its answers may be "
	    "stale up to [http] cache_max_age", c->url, x->state == C_DONE ?
	    x->err : "no answer within the timeout", b->timeout_ms, c->quiet);
	c->last_warn = now;
	c->quiet = 0;
}

int
ban_send(struct ban *b, const char *expr)
{
	struct xfer *x = NULL;
	struct pollfd pfd[CONF_BAN_MAX];
	int idx[CONF_BAN_MAX];
	char *req = NULL;
	size_t req_len[CONF_BAN_MAX];
	int64_t deadline;
	int i, np, ok = 0;

	if (b == NULL || b->n == 0 || expr[0] == '\0' ||
	    strlen(expr) >= BAN_EXPR_MAX || strpbrk(expr, "\r\n") != NULL)
		return 0;
	if ((x = calloc((size_t)b->n, sizeof(*x))) == NULL ||
	    (req = malloc((size_t)b->n * BAN_REQ_MAX)) == NULL)
		fatalx("ban: out of memory");
	deadline = mono_ms() + b->timeout_ms;
	for (i = 0; i < b->n; i++) {
		int n = snprintf(req + (size_t)i * BAN_REQ_MAX, BAN_REQ_MAX,
		    "BAN / HTTP/1.1\r\nHost: %s\r\nX-Mica-Ban: %s\r\n"
		    "Content-Length: 0\r\nConnection: close\r\n\r\n",
		    b->c[i].authority, expr);

		req_len[i] = n > 0 && n < BAN_REQ_MAX ? (size_t)n : 0;
		x[i].fd = -1;
		xfer_start(&x[i], &b->c[i]);
	}
	for (;;) {
		int64_t wait = deadline - mono_ms();

		for (i = 0, np = 0; i < b->n; i++) {
			if (x[i].state == C_DONE)
				continue;
			pfd[np].fd = x[i].fd;
			pfd[np].events = x[i].state == C_READ ? POLLIN :
			    POLLOUT;
			pfd[np].revents = 0;
			idx[np++] = i;
		}
		if (np == 0 || wait <= 0)
			break;
		if (poll(pfd, (nfds_t)np, (int)wait) < 0 && errno != EINTR) {
			log_warn("ban: poll");
			break;
		}
		for (i = 0; i < np; i++)
			if (pfd[i].revents != 0)
				xfer_step(&x[idx[i]], pfd[i].revents,
				    req + (size_t)idx[i] * BAN_REQ_MAX,
				    req_len[idx[i]]);
	}
	for (i = 0; i < b->n; i++) {
		if (x[i].fd >= 0)
			close(x[i].fd);
		note_result(b, &b->c[i], &x[i], expr);
		if (x[i].state == C_DONE && x[i].code == 200)
			ok++;
	}
	free(req);
	free(x);
	return ok;
}

int
ban_send_expr(struct ban *b, struct ban_expr *e)
{
	const char *expr = ban_expr_get(e);

	if (expr[0] == '\0')
		return 0;
	return ban_send(b, expr);
}

/* ---- counters ---- */

int
ban_stat(struct ban *b, int i, struct ban_cache_stat *out)
{
	if (b == NULL || i < 0 || i >= b->n)
		return 0;
	pthread_mutex_lock(&b->mu);
	*out = b->c[i].st;
	pthread_mutex_unlock(&b->mu);
	return 1;
}

void
ban_metrics_append(struct ban *b, struct wb *m)
{
	struct ban_cache_stat st;
	char line[512];
	int i, pass;

	for (pass = 0; pass < 2; pass++) {
		wb_str(m, pass == 0 ?
		    "# HELP mica_cache_bans_total BAN requests an HTTP cache "
		    "([http] ban_urls) answered 200\n"
		    "# TYPE mica_cache_bans_total counter\n" :
		    "# HELP mica_cache_ban_failures_total BAN requests an "
		    "HTTP cache refused, did not answer in ban_timeout_ms or "
		    "answered other than 200\n"
		    "# TYPE mica_cache_ban_failures_total counter\n");
		for (i = 0; ban_stat(b, i, &st); i++) {
			snprintf(line, sizeof(line), "%s{cache=\"%s\"} %"
			    PRIu64 "\n", pass == 0 ? "mica_cache_bans_total" :
			    "mica_cache_ban_failures_total", st.url,
			    pass == 0 ? st.bans : st.failures);
			wb_str(m, line);
		}
	}
}
