/*
 * http.c - micad's HTTP listener: OCSP over POST and GET (RFC 6960
 * appendix A, RFC 5019 section 5), /healthz and routes the integrator
 * registers (/ca.crt, /crl, /metrics).
 *
 * N event threads, each with its own event_base, listening socket (all
 * bound to one port with SO_REUSEPORT, so the kernel spreads connections)
 * and its own ocsp_ctx, send what the response cache holds.  With a
 * remote signer that offers channels (struct rsign_chan: micad's signer
 * process), each event thread answers the rest itself without blocking:
 * it decodes, reads the store and encodes the ResponseData, queues it on
 * its channel and writes the answer when the signature comes back
 * (answer_async, sch_done); what one loop turn queued leaves as one
 * batch.  Otherwise M signer
 * threads answer the rest (decode, store lookup, signature: a nonce, a
 * first query) from a shared queue and hand each answer back to its event
 * thread through that thread's eventfd; meanwhile the event thread goes
 * on answering other connections, and the connection's later requests
 * wait, so its answers stay in order.  When nothing else waits for the
 * event thread and no signer has work, it signs itself (two thread
 * wake-ups less for a lone client).  A thread is stopped through a pipe
 * watched by its base, so no libevent locking is needed across threads.
 *
 * HTTP/1.1 is spoken here directly on the sockets, not through evhttp:
 * one persistent read event per connection, requests parsed in place
 * (http_parse.c) from a per-thread buffer, every answer of one read
 * written with one send().  A cached OCSP answer thus costs one read and
 * one write system call and no allocation; evhttp spent about as much
 * again on epoll_ctl calls, header lists and printf per request.
 *
 * Per connection: a partial request is kept in its own buffer (at most
 * max_headers + max_body bytes); answers the socket did not take wait in
 * an evbuffer, and while more than OUT_HIGH bytes wait no further request
 * is read (pipelining cannot grow memory).  header_timeout bounds the
 * time from a request's first byte (or the accept) to its last (head and
 * body); timeout bounds idle keep-alive and slow readers.  After an
 * error the connection is closed the lingering way (shutdown, drain what
 * the client still sends, close), so the client reads the error rather
 * than a reset.
 *
 * Floods (all of it off the request path: the cached answer stays one
 * read and one write, no lock, no allocation): a connection table shared
 * by the threads (num_conns) and a count per client address (addrs,
 * under amu, taken on accept and close only).  An address holding
 * max_per_address connections gets a fast 503 with Retry-After.  Once
 * more than shed_start % of max_connections are open, each new
 * connection closes one of the accepting thread's connections that has
 * no request in progress: first those that never completed a request
 * (idle since the accept, or a head still arriving), then idle
 * keep-alive ones; among them the address holding the most connections,
 * then the oldest.  A request being answered (signer job, unsent
 * output) is never shed.  A thread sheds only its own connections (the
 * kernel spreads a flood over the threads alike).  Refusals, sheds and
 * header timeouts are logged at most once a second per reason, with
 * counts (common/ratelog.h).
 */
#include <sys/eventfd.h>
#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>

#include "common/addrcount.h"
#include "common/bytes.h"
#include "common/log.h"
#include "common/ratelog.h"
#include "ocsp/ocsp_int.h"

#define MAX_ROUTES	32
#define MAX_PREFIXES	8	/* http_url paths served (old and new) */
#define PREFIX_MAX	100
#define MAX_THREADS	64
#define ROUTE_MAX	128
#define BACKLOG		1024
#define HDRS_MAX	2048	/* response fields a route adds */
#define OUT_HIGH	(256 * 1024)	/* queued output that stops reading */
#define LINGER_S	2	/* draining a closed connection */
#define LINGER_BYTES	(64 * 1024)
#define RETRY_AFTER_S	5	/* Retry-After of a refusal */
#define SHED_SCAN	1024	/* connections looked at for a shed */
#define CT_REQUEST	"application/ocsp-request"
#define CT_RESPONSE	"application/ocsp-response"

struct route {
	char		 prefix[ROUTE_MAX];
	size_t		 len;
	ocsp_http_cb	 cb;
	void		*arg;
};

struct http_thread;
struct hconn;

/*
 * A request the cache could not answer, handed from an event thread to
 * the signer threads and back.  c is touched by the event thread only
 * (NULL once the connection is gone); the signer fills a.
 */
struct sign_job {
	struct sign_job		*next;
	struct http_thread	*t;		/* whose done list */
	struct hconn		*c;
	int			 minor, head;	/* for the answer's framing */
	int			 get;		/* GET or HEAD: may be cached */
	char			 inm[OCSP_ETAG_MAX]; /* If-None-Match or "" */
	struct ocsp_answer	 a;
	int			 ok;
	struct ocsp_pending	*p;	/* at the signer channel, or NULL */
	size_t			 len;
	uint8_t			 req[];		/* the request's DER */
};

struct job_list {
	struct sign_job		*head, **tail;
};

struct signer_thread {
	struct ocsp_http	*h;
	struct ocsp_ctx		*ctx;
	pthread_t		 tid;
};

/* One accepted connection. */
struct hconn {
	struct hconn		*prev, *next;
	struct http_thread	*t;
	evutil_socket_t		 fd;
	struct event		*rev;		/* EV_READ | EV_PERSIST */
	struct event		*wev;		/* EV_WRITE | EV_PERSIST */
	struct evbuffer		*out;		/* answers not yet written */
	uint8_t			*in;		/* a partial request */
	size_t			 in_len;
	time_t			 head_start;	/* head due by this + header_timeout;
						 * 0: no head in progress */
	time_t			 last;		/* last progress either way */
	size_t			 drained;	/* bytes discarded while lingering */
	struct sign_job		*job;		/* in flight, or NULL */
	struct sockaddr_storage	 peer;		/* the client's address */
	struct addr_key		 key;		/* counted in h->addrs */
	uint8_t			 reading;	/* rev is added */
	uint8_t			 writing;	/* wev is added */
	unsigned		 closing:1;	/* no more requests; close once
						 * out is written */
	unsigned		 lingering:1;
	unsigned		 paused:1;	/* out over OUT_HIGH */
	unsigned		 eof:1;
	unsigned		 continued:1;	/* 100 Continue sent */
	unsigned		 waiting:1;	/* job in flight: requests behind it
						 * wait (answers stay in order) */
	unsigned		 served:1;	/* a request was answered */
};

/*
 * The RFC 5019 header values of the last cacheable answer a thread sent:
 * every hit of the same cached response within one second reuses them
 * (no gmtime/strftime/printf per request).
 */
struct hdr_memo {
	int64_t		this_update, next_update, now;
	char		cache_control[96];
	char		last_modified[40];
	char		expires[40];
};

struct http_thread {
	struct ocsp_http	*h;
	int			 idx;
	pthread_t		 tid;
	int			 running;
	struct event_base	*base;
	struct evconnlistener	*lev;
	int			 accept_paused;
	struct event		*stop_ev;
	int			 stop_fds[2];
	struct event		*sweep_ev;	/* 1 s: deadlines */
	struct ocsp_ctx		*ctx;		/* NULL without a responder */
	uint8_t			*getbuf;	/* decoded GET request */
	uint8_t			*rbuf;		/* reads land here */
	size_t			 rcap;		/* max_headers + max_body */
	char			*path;		/* NUL-terminated route path */
	struct wb		 tx;		/* this turn's answers */
	struct evbuffer		*body;		/* a route's body */
	char			 hdrs[HDRS_MAX];	/* a route's fields */
	size_t			 hdrs_len;
	int			 hdrs_full;
	struct hconn		*conns;		/* newest first */
	struct hconn		*conns_tail;	/* the oldest */
	pthread_mutex_t		 dmu;		/* guards done */
	struct job_list		 done;		/* answered by a signer */
	int			 efd;		/* eventfd: done is not empty */
	struct event		*done_ev;
	int			 dmu_ok;	/* dmu initialised */
	time_t			 date_now;
	char			 date[40];	/* Date for date_now */
	struct hdr_memo		 memo;
	/* the signer channel (answers signed without leaving the loop),
	 * or NULL: the signer threads */
	struct rsign_chan	*sch;
	struct event		*sch_ev;	/* its fd readable */
	struct event		*flush_ev;	/* send what was queued */
	int			 flush_pending;
};

struct ocsp_http {
	struct ocsp_responder	*r;
	struct ocsp_http_opts	 opts;
	struct route		 routes[MAX_ROUTES];
	int			 nroutes;
	char			 prefixes[MAX_PREFIXES][PREFIX_MAX];
	int			 nprefixes;
	struct http_thread	*threads;
	int			 nthreads;
	int			 started;
	int			 bound;		/* ocsp_http_bind done */
	int			 port;
	int			 num_conns;	/* all threads, atomic */
	int			 shed_at;	/* shed above this many; -1: never */
	pthread_mutex_t		 amu;		/* guards addrs */
	struct addrcount	*addrs;		/* connections per address */
	struct ratelog		 rl[OCSP_HTTP_STAT_COUNT];
	/* signer threads and their queue */
	pthread_mutex_t		 jmu;
	pthread_cond_t		 jcv;
	struct job_list		 jobs;
	int			 jstop;
	struct signer_thread	*signers;
	int			 nsigners;	/* started */
	int			 inflight;	/* jobs queued or signing;
						 * atomic */
	int			 sync_ok;	/* jmu, jcv initialised */
};

/* A request being answered (the route API's ocsp_http_req). */
struct ocsp_http_req {
	struct http_thread		*t;
	struct hconn			*c;
	const struct ocsp_http_head	*h;
	const uint8_t			*buf;	/* the head; values NUL-ended */
	int				 sent;
};

void
ocsp_http_opts_defaults(struct ocsp_http_opts *o)
{
	memset(o, 0, sizeof(*o));
	snprintf(o->listen, sizeof(o->listen), "127.0.0.1:7780");
	o->threads = 1;
	o->signers = 2;
	o->max_body = 16384;
	o->max_headers = 8192;
	o->timeout = 30;
	o->header_timeout = 10;
	o->max_connections = 1024;
	o->max_per_address = 64;
	o->shed_start = 75;
	o->cache_max_age = 60;
}

/* ---- GET path decoding ---- */

static int
hexval(uint8_t c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Next character of the path, percent-escapes decoded. */
static int
next_char(struct rd *r, uint8_t *out)
{
	uint8_t c, h1, h2;

	if (!rd_u8(r, &c))
		return 0;
	if (c != '%') {
		*out = c;
		return 1;
	}
	if (!rd_u8(r, &h1) || !rd_u8(r, &h2) || hexval(h1) < 0 ||
	    hexval(h2) < 0)
		return -1;
	*out = (uint8_t)(hexval(h1) << 4 | hexval(h2));
	return 1;
}

static int
b64val(uint8_t c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+' || c == '-')
		return 62;
	if (c == '/' || c == '_')
		return 63;
	return -1;
}

int
ocsp_get_decode(uint8_t *out, size_t out_cap, size_t *out_len,
    const char *path, size_t path_len)
{
	struct rd r;
	uint32_t acc = 0;
	size_t n = 0, nchars = 0, npad = 0;
	uint8_t c;
	int v, got;

	rd_init(&r, path, path_len);
	while ((got = next_char(&r, &c)) == 1) {
		if (c == '=') {
			npad++;
			continue;
		}
		if (npad > 0 || (v = b64val(c)) < 0)
			return 0;	/* data after padding, or not base64 */
		acc = acc << 6 | (uint32_t)v;
		if (++nchars % 4 == 0) {
			if (n + 3 > out_cap)
				return 0;
			out[n++] = (uint8_t)(acc >> 16);
			out[n++] = (uint8_t)(acc >> 8);
			out[n++] = (uint8_t)acc;
			acc = 0;
		}
	}
	if (got < 0)
		return 0;
	switch (nchars % 4) {
	case 0:
		if (npad != 0)
			return 0;
		break;
	case 2:		/* one byte; "==" or no padding */
		if ((npad != 0 && npad != 2) || n + 1 > out_cap)
			return 0;
		out[n++] = (uint8_t)(acc >> 4);
		break;
	case 3:		/* two bytes; "=" or no padding */
		if (npad > 1 || n + 2 > out_cap)
			return 0;
		out[n++] = (uint8_t)(acc >> 10);
		out[n++] = (uint8_t)(acc >> 2);
		break;
	default:
		return 0;
	}
	if (n == 0)
		return 0;
	*out_len = n;
	return 1;
}

/* ---- response text ---- */

static const char *
reason_of(int code)
{
	switch (code) {
	case 100: return "Continue";
	case 200: return "OK";
	case 304: return "Not Modified";
	case 400: return "Bad Request";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 411: return "Length Required";
	case 413: return "Content Too Large";
	case 415: return "Unsupported Media Type";
	case 417: return "Expectation Failed";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	case 505: return "HTTP Version Not Supported";
	default: return "Error";
	}
}

void
ocsp_http_date(char *buf, size_t len, int64_t t)
{
	struct tm tm;
	time_t tt = (time_t)t;

	if (gmtime_r(&tt, &tm) == NULL ||
	    strftime(buf, len, "%a, %d %b %Y %H:%M:%S GMT", &tm) == 0)
		snprintf(buf, len, "Thu, 01 Jan 1970 00:00:00 GMT");
}

/* The Date field value (RFC 9110 6.6.1), formatted once a second. */
static const char *
date_now(struct http_thread *t)
{
	time_t now = time(NULL);

	if (now != t->date_now) {
		ocsp_http_date(t->date, sizeof(t->date), (int64_t)now);
		t->date_now = now;
	}
	return t->date;
}

static void
tx_str(struct http_thread *t, const char *s)
{
	wb_str(&t->tx, s);
}

static void
tx_num(struct http_thread *t, uint64_t v)
{
	char d[24];
	size_t i = sizeof(d);

	do {
		d[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	wb_put(&t->tx, d + i, sizeof(d) - i);
}

/*
 * Status line, Date, Content-Length (unless none) and Connection for c:
 * "close" when no request follows, "keep-alive" for an HTTP/1.0 client
 * that asked for it (RFC 9112 9.3).
 */
static void
tx_status(struct http_thread *t, const struct hconn *c, int minor, int code,
    const char *reason, int64_t content_length)
{
	tx_str(t, "HTTP/1.1 ");
	tx_num(t, (uint64_t)code);
	tx_str(t, " ");
	tx_str(t, reason);
	tx_str(t, "\r\nDate: ");
	tx_str(t, date_now(t));
	if (content_length >= 0) {
		tx_str(t, "\r\nContent-Length: ");
		tx_num(t, (uint64_t)content_length);
	}
	if (c->closing)
		tx_str(t, "\r\nConnection: close");
	else if (minor == 0)
		tx_str(t, "\r\nConnection: keep-alive");
	tx_str(t, "\r\n");
}

/* A short text/plain answer from the listener itself; closes c. */
static void
tx_error(struct http_thread *t, struct hconn *c, int code)
{
	char body[80];
	int n;

	n = snprintf(body, sizeof(body), "%d %s\n", code, reason_of(code));
	c->closing = 1;
	tx_status(t, c, 1, code, reason_of(code), n);
	tx_str(t, "Content-Type: text/plain\r\n\r\n");
	wb_put(&t->tx, body, (size_t)n);
}

/* ---- connections ---- */

static void	conn_cb(evutil_socket_t, short, void *);

static void
conn_free(struct hconn *c)
{
	struct http_thread *t = c->t;

	if (c->job != NULL)
		c->job->c = NULL;	/* done_cb drops the answer */
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		t->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	else
		t->conns_tail = c->prev;
	if (c->rev != NULL)
		event_free(c->rev);
	if (c->wev != NULL)
		event_free(c->wev);
	if (c->out != NULL)
		evbuffer_free(c->out);	/* runs the references' cleanups */
	if (c->fd >= 0)
		evutil_closesocket(c->fd);
	free(c->in);
	pthread_mutex_lock(&t->h->amu);
	addrcount_del(t->h->addrs, &c->key);
	pthread_mutex_unlock(&t->h->amu);
	free(c);
	__atomic_sub_fetch(&t->h->num_conns, 1, __ATOMIC_RELAXED);
}

/* Adds or deletes ev; *added mirrors it (no libevent lock to ask). */
static void
event_want(struct event *ev, uint8_t *added, int on)
{
	if (on && !*added) {
		if (event_add(ev, NULL) == 0)
			*added = 1;
	} else if (!on && *added) {
		event_del(ev);
		*added = 0;
	}
}

static void
want_read(struct hconn *c, int on)
{
	event_want(c->rev, &c->reading, on);
}

static void
want_write(struct hconn *c, int on)
{
	event_want(c->wev, &c->writing, on);
}

/*
 * Everything is written and no request follows: half-close and read
 * until the client closes (or LINGER_S / LINGER_BYTES), so unread
 * request bytes do not turn our last answer into a reset.  Returns 1, or
 * 0 when c was freed (at once if the client has closed already).
 */
static int
conn_linger(struct hconn *c)
{
	c->lingering = 1;
	c->last = time(NULL);
	want_write(c, 0);
	if (c->eof || shutdown(c->fd, SHUT_WR) != 0) {
		conn_free(c);
		return 0;
	}
	want_read(c, 1);
	return 1;
}

/* Moves this turn's answers behind those already queued on c. */
static int
tx_spill(struct http_thread *t, struct hconn *c)
{
	int ok = 1;

	if (t->tx.len > 0 && evbuffer_add(c->out, t->tx.data, t->tx.len) != 0)
		ok = 0;
	t->tx.len = 0;
	return ok;
}

/*
 * Writes this turn's answers and what was queued.  Returns 1, or 0 when
 * c was freed (write error, or closed after its last answer).
 */
static int
conn_flush(struct hconn *c)
{
	struct http_thread *t = c->t;
	ssize_t n;
	int err;

	if (!wb_ok(&t->tx)) {		/* an answer did not fit in memory */
		t->tx.failed = 0;
		t->tx.len = 0;
		conn_free(c);
		return 0;
	}
	if (t->tx.len > 0 && evbuffer_get_length(c->out) == 0) {
		n = send(c->fd, t->tx.data, t->tx.len, MSG_NOSIGNAL);
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
		    errno != EINTR) {
			t->tx.len = 0;
			conn_free(c);
			return 0;
		}
		if (n > 0) {
			c->last = time(NULL);
			if ((size_t)n < t->tx.len)
				memmove(t->tx.data, t->tx.data + n,
				    t->tx.len - (size_t)n);
			t->tx.len -= (size_t)n;
		}
	}
	if (!tx_spill(t, c)) {
		conn_free(c);
		return 0;
	}
	while (evbuffer_get_length(c->out) > 0) {
		n = evbuffer_write(c->out, c->fd);
		if (n > 0) {
			c->last = time(NULL);
			continue;
		}
		err = EVUTIL_SOCKET_ERROR();
		if (n < 0 && (err == EAGAIN || err == EWOULDBLOCK ||
		    err == EINTR))
			break;
		conn_free(c);
		return 0;
	}
	if (evbuffer_get_length(c->out) > 0) {
		want_write(c, 1);
		if (evbuffer_get_length(c->out) > OUT_HIGH)
			c->paused = 1;
		if (c->paused)
			want_read(c, 0);
		return 1;
	}
	want_write(c, 0);
	if (c->waiting)
		return 1;		/* done_cb flushes the rest */
	if (c->closing)
		return conn_linger(c);
	c->paused = 0;
	want_read(c, 1);
	return 1;
}

/* ---- the route API ---- */

enum ocsp_http_method
ocsp_http_req_method(const struct ocsp_http_req *rq)
{
	return rq->h->method;
}

const struct sockaddr *
ocsp_http_req_peer(const struct ocsp_http_req *rq)
{
	return (const struct sockaddr *)&rq->c->peer;
}

const char *
ocsp_http_req_header(const struct ocsp_http_req *rq, const char *name)
{
	size_t len;

	/* values were NUL-terminated in place before the route ran */
	return (const char *)ocsp_http_head_field(rq->h, rq->buf, name, &len);
}

int
ocsp_http_add_header(struct ocsp_http_req *rq, const char *name,
    const char *value)
{
	struct http_thread *t = rq->t;
	size_t nl = strlen(name), vl = strlen(value);

	if (nl == 0 || strpbrk(name, ":\r\n \t") != NULL ||
	    strpbrk(value, "\r\n") != NULL ||
	    t->hdrs_len + nl + vl + 4 > sizeof(t->hdrs)) {
		t->hdrs_full = 1;
		return 0;
	}
	memcpy(t->hdrs + t->hdrs_len, name, nl);
	memcpy(t->hdrs + t->hdrs_len + nl, ": ", 2);
	memcpy(t->hdrs + t->hdrs_len + nl + 2, value, vl);
	memcpy(t->hdrs + t->hdrs_len + nl + 2 + vl, "\r\n", 2);
	t->hdrs_len += nl + vl + 4;
	return 1;
}

void
ocsp_http_clear_headers(struct ocsp_http_req *rq)
{
	rq->t->hdrs_len = 0;
	rq->t->hdrs_full = 0;
}

int
ocsp_http_body_add(struct ocsp_http_req *rq, const void *data, size_t len)
{
	return evbuffer_add(rq->t->body, data, len) == 0;
}

int
ocsp_http_body_add_ref(struct ocsp_http_req *rq, const void *data,
    size_t len, void (*cleanup)(const void *, size_t, void *), void *arg)
{
	return evbuffer_add_reference(rq->t->body, data, len, cleanup,
	    arg) == 0;
}

void
ocsp_http_send(struct ocsp_http_req *rq, int code, const char *reason)
{
	struct http_thread *t = rq->t;
	struct hconn *c = rq->c;
	size_t blen = evbuffer_get_length(t->body);
	int no_body = code == 304 || code == 204 || code < 200;

	if (rq->sent)
		return;
	rq->sent = 1;
	if (t->hdrs_full) {		/* a field was lost: do not guess */
		t->hdrs_full = 0;
		t->hdrs_len = 0;
		evbuffer_drain(t->body, blen);
		tx_error(t, c, 500);
		return;
	}
	tx_status(t, c, rq->h->minor, code, reason, no_body ? -1 :
	    (int64_t)blen);
	wb_put(&t->tx, t->hdrs, t->hdrs_len);
	tx_str(t, "\r\n");
	t->hdrs_len = 0;
	if (no_body || rq->h->method == OCSP_HTTP_HEAD || blen == 0) {
		evbuffer_drain(t->body, blen);	/* runs the cleanups */
		return;
	}
	/* the body's chains move to the connection: references stay so */
	if (!tx_spill(t, c) || evbuffer_add_buffer(c->out, t->body) != 0) {
		evbuffer_drain(t->body, evbuffer_get_length(t->body));
		c->closing = 1;
	}
}

void
ocsp_http_send_error(struct ocsp_http_req *rq, int code, const char *reason)
{
	struct http_thread *t = rq->t;
	char body[96];
	int n;

	evbuffer_drain(t->body, evbuffer_get_length(t->body));
	n = snprintf(body, sizeof(body), "%d %s\n", code, reason);
	if (n < 0 || (size_t)n >= sizeof(body))
		n = 0;
	ocsp_http_add_header(rq, "Content-Type", "text/plain");
	evbuffer_add(t->body, body, (size_t)n);
	ocsp_http_send(rq, code, reason);
}

/* ---- OCSP answers ---- */

/*
 * RFC 5019 section 6.2 header values for a, from the memo if current:
 * max-age and Expires end at nextUpdate or after max_age seconds,
 * whichever is first (a short lifetime bounds how long an HTTP cache
 * can serve an answer a lost ban left behind).
 */
static const struct hdr_memo *
hdr_values(struct hdr_memo *m, const struct ocsp_answer *a, int max_age)
{
	int64_t now = (int64_t)time(NULL), age;

	if (m->now == now && m->this_update == a->this_update &&
	    m->next_update == a->next_update)
		return m;
	age = a->next_update > now ? a->next_update - now : 0;
	if (age > max_age)
		age = max_age;
	snprintf(m->cache_control, sizeof(m->cache_control), "max-age=%"
	    PRId64 ", public, no-transform, must-revalidate", age);
	ocsp_http_date(m->last_modified, sizeof(m->last_modified),
	    a->this_update);
	ocsp_http_date(m->expires, sizeof(m->expires), now + age);
	m->now = now;
	m->this_update = a->this_update;
	m->next_update = a->next_update;
	return m;
}

/*
 * Writes answer a into this turn's output for c: HTTP/1.<minor>
 * framing, no body for HEAD (head), 304 when inm is its ETag.  Only a
 * GET (get) answer that names its serials may be kept by HTTP caches;
 * POST, error and nonce answers get no-store.
 */
static void
tx_answer(struct http_thread *t, struct hconn *c, int minor, int head,
    int get, const char *inm, const struct ocsp_answer *a)
{
	const struct hdr_memo *m;
	int code = 200, cacheable;

	cacheable = a->cacheable && get && a->serials != NULL &&
	    t->h->opts.cache_max_age > 0;
	if (cacheable && inm != NULL && strcmp(inm, a->etag) == 0)
		code = 304;
	tx_status(t, c, minor, code, reason_of(code),
	    code == 304 ? -1 : (int64_t)a->der_len);
	if (!cacheable) {
		tx_str(t, "Content-Type: " CT_RESPONSE
		    "\r\nCache-Control: no-cache, no-store\r\n\r\n");
	} else {
		m = hdr_values(&t->memo, a, t->h->opts.cache_max_age);
		tx_str(t, "Content-Type: " CT_RESPONSE "\r\nCache-Control: ");
		tx_str(t, m->cache_control);
		tx_str(t, "\r\nLast-Modified: ");
		tx_str(t, m->last_modified);
		tx_str(t, "\r\nExpires: ");
		tx_str(t, m->expires);
		tx_str(t, "\r\nETag: ");
		tx_str(t, a->etag);
		tx_str(t, "\r\nX-Mica-Serials: ");
		tx_str(t, a->serials);
		tx_str(t, "\r\n\r\n");
	}
	if (code == 200 && !head)
		wb_put(&t->tx, a->der, a->der_len);
}

/*
 * Hands a request the cache cannot answer to the signer threads; c waits
 * (its later requests stay buffered) until done_cb writes the answer.
 */
static int
enqueue(struct ocsp_http_req *rq, const uint8_t *der, size_t len)
{
	struct http_thread *t = rq->t;
	struct ocsp_http *h = t->h;
	struct sign_job *j;
	const char *inm;

	if ((j = calloc(1, sizeof(*j) + len)) == NULL)
		return 0;
	j->t = t;
	j->c = rq->c;
	j->minor = rq->h->minor;
	j->head = rq->h->method == OCSP_HTTP_HEAD;
	j->get = rq->h->method == OCSP_HTTP_GET || j->head;
	if ((inm = ocsp_http_req_header(rq, "If-None-Match")) != NULL &&
	    strlen(inm) < sizeof(j->inm))
		memcpy(j->inm, inm, strlen(inm) + 1);
	j->len = len;
	memcpy(j->req, der, len);
	rq->sent = 1;
	rq->c->job = j;
	rq->c->waiting = 1;
	__atomic_add_fetch(&h->inflight, 1, __ATOMIC_RELAXED);
	pthread_mutex_lock(&h->jmu);
	*h->jobs.tail = j;
	h->jobs.tail = &j->next;
	pthread_cond_signal(&h->jcv);
	pthread_mutex_unlock(&h->jmu);
	return 1;
}

static void	job_complete(struct http_thread *, struct sign_job *);
static void	job_free(struct sign_job *);

/* A signature came back on t's signer channel (or never will: sig NULL). */
static void
sch_done(void *cookie, const uint8_t *sig, size_t sig_len)
{
	struct sign_job *j = cookie;
	struct http_thread *t = j->t;

	j->ok = ocsp_respond_finish(t->ctx, j->p, &j->a, sig, sig_len);
	ocsp_pending_free(j->p);
	j->p = NULL;
	job_complete(t, j);
}

/* Runs after the callbacks of this loop turn: one batch for all. */
static void
flush_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct http_thread *t = arg;

	(void)fd;
	(void)ev;
	t->flush_pending = 0;
	t->sch->ops->flush(t->sch, sch_done);
}

/*
 * Sends t's queued signing requests once this turn of the loop is done
 * (flush_cb), so that every request of the turn leaves in one batch.
 */
static void
flush_soon(struct http_thread *t)
{
	if (!t->flush_pending) {
		t->flush_pending = 1;
		event_active(t->flush_ev, EV_TIMEOUT, 1);
	}
}

static void
sch_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct http_thread *t = arg;

	(void)fd;
	(void)ev;
	t->sch->ops->input(t->sch, sch_done);
	/* the next batch after this turn's other requests are in */
	flush_soon(t);
}

/*
 * The answer is built here (decode, store, ResponseData) and its
 * signature asked for on the thread's signer channel; c waits (its later
 * requests stay buffered) until sch_done writes the answer, and the
 * loop goes on serving other connections.  Every request queued in one
 * turn of the loop leaves in one batch (flush_cb).
 */
static void
answer_async(struct ocsp_http_req *rq, const uint8_t *der, size_t len)
{
	struct http_thread *t = rq->t;
	struct ocsp_answer a;
	struct ocsp_pending *p = NULL;
	struct sign_job *j;
	const uint8_t *tbs;
	const char *inm;
	char addr[INET6_ADDRSTRLEN];
	size_t tbs_len;
	int rc;

	if ((rc = ocsp_respond_begin(t->ctx, &a, &p, der, len)) == 0) {
		ocsp_http_send_error(rq, 503, reason_of(503));
		return;
	}
	if (rc == 1) {
		rq->sent = 1;
		tx_answer(t, rq->c, rq->h->minor,
		    rq->h->method == OCSP_HTTP_HEAD,
		    rq->h->method != OCSP_HTTP_POST,
		    ocsp_http_req_header(rq, "If-None-Match"), &a);
		ocsp_answer_cleanup(&a);
		return;
	}
	if ((j = calloc(1, sizeof(*j))) == NULL) {
		ocsp_pending_free(p);
		ocsp_http_send_error(rq, 503, reason_of(503));
		return;
	}
	j->t = t;
	j->c = rq->c;
	j->p = p;
	j->minor = rq->h->minor;
	j->head = rq->h->method == OCSP_HTTP_HEAD;
	j->get = rq->h->method == OCSP_HTTP_GET || j->head;
	if ((inm = ocsp_http_req_header(rq, "If-None-Match")) != NULL &&
	    strlen(inm) < sizeof(j->inm))
		memcpy(j->inm, inm, strlen(inm) + 1);
	tbs = ocsp_pending_tbs(p, &tbs_len);
	if (!t->sch->ops->submit(t->sch, tbs, tbs_len, j)) {
		/* the queue is full (a slow signer) or the signer is gone */
		job_free(j);
		addr_key_str(&rq->c->key, addr, sizeof(addr));
		ratelog_event(&t->h->rl[OCSP_HTTP_SIGN_BUSY], addr);
		ocsp_http_add_header(rq, "Retry-After", "1");
		ocsp_http_send_error(rq, 503, reason_of(503));
		return;
	}
	rq->sent = 1;
	rq->c->job = j;
	rq->c->waiting = 1;
	flush_soon(t);
}

static void
answer(struct ocsp_http_req *rq, const uint8_t *der, size_t len)
{
	struct http_thread *t = rq->t;
	struct ocsp_answer a;
	int ok;

	if (!(ok = ocsp_respond_cached(t->ctx, &a, der, len))) {
		if (t->sch != NULL) {
			answer_async(rq, der, len);
			return;
		}
		/*
		 * To a signer thread, unless nothing else waits for this
		 * thread and no signer has work: then signing here delays
		 * no one and saves two thread wake-ups (a lone client's
		 * round trip).
		 */
		if (t->h->nsigners > 0 && (__atomic_load_n(&t->h->inflight,
		    __ATOMIC_RELAXED) > 0 || event_base_get_num_events(t->base,
		    EVENT_BASE_COUNT_ACTIVE) > 0)) {
			if (enqueue(rq, der, len))
				return;
			ocsp_http_send_error(rq, 503, reason_of(503));
			return;
		}
		ok = ocsp_respond(t->ctx, &a, der, len);
	}
	if (!ok) {
		ocsp_http_send_error(rq, 503, reason_of(503));
		return;
	}
	rq->sent = 1;
	tx_answer(t, rq->c, rq->h->minor, rq->h->method == OCSP_HTTP_HEAD,
	    rq->h->method != OCSP_HTTP_POST,
	    ocsp_http_req_header(rq, "If-None-Match"), &a);
	ocsp_answer_cleanup(&a);
}

static int
content_type_ok(const struct ocsp_http_req *rq)
{
	const char *ct = ocsp_http_req_header(rq, "Content-Type");
	size_t n = sizeof(CT_REQUEST) - 1;

	if (ct == NULL || strncasecmp(ct, CT_REQUEST, n) != 0)
		return 0;
	return ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ' || ct[n] == '\t';
}

/*
 * 1 when der[0..len) is exactly one DER SEQUENCE (an OCSPRequest starts
 * so): tag 0x30, a definite length (X.690 8.1.3) covering the rest.
 */
static int
der_one_sequence(const uint8_t *der, size_t len)
{
	size_t n, hl, i, nl;

	if (len < 2 || der[0] != 0x30)
		return 0;
	if (der[1] < 0x80) {
		n = der[1];
		hl = 2;
	} else {
		nl = der[1] & 0x7f;
		if (nl == 0 || nl > 4 || len < 2 + nl)
			return 0;
		for (n = 0, i = 0; i < nl; i++)
			n = n << 8 | der[2 + i];
		hl = 2 + nl;
	}
	return n == len - hl;
}

/*
 * RFC 6960 A.1: GET {url}/{url-encoding of base-64 encoding of DER}.
 * A path that is not that (not base64, not one DER SEQUENCE) is no OCSP
 * request: 404, so that no HTTP cache keeps junk as a 200.
 */
static void
handle_get(struct ocsp_http_req *rq, const char *b64, size_t b64_len)
{
	struct http_thread *t = rq->t;
	size_t len = 0, cap = (size_t)t->h->opts.max_body;

	if (!ocsp_get_decode(t->getbuf, cap, &len, b64, b64_len) ||
	    !der_one_sequence(t->getbuf, len)) {
		ocsp_http_send_error(rq, 404, reason_of(404));
		return;
	}
	answer(rq, t->getbuf, len);
}

static void
method_not_allowed(struct ocsp_http_req *rq, const char *allow)
{
	ocsp_http_add_header(rq, "Allow", allow);
	ocsp_http_send_error(rq, 405, reason_of(405));
}

/* Routes one complete request; body is its content. */
static void
dispatch(struct ocsp_http_req *rq, const uint8_t *body, size_t body_len)
{
	struct http_thread *t = rq->t;
	struct ocsp_http *h = t->h;
	const struct ocsp_http_head *hd = rq->h;
	const char *path = t->path;
	size_t plen = hd->path_len;
	int i, get;

	memcpy(t->path, rq->buf + hd->path_off, plen);
	t->path[plen] = '\0';
	if (plen == 0 || path[0] != '/' || memchr(path, '\0', plen) != NULL) {
		rq->c->closing = 1;	/* a broken client: no more requests */
		ocsp_http_send_error(rq, 400, reason_of(400));
		return;
	}
	/* the path part of http_url (now or before): served as the root */
	for (i = 0; i < h->nprefixes; i++) {
		size_t n = strlen(h->prefixes[i]);

		if (plen < n || memcmp(path, h->prefixes[i], n) != 0)
			continue;
		if (path[n] == '/') {		/* "/pki/ocsp" -> "/ocsp" */
			path += n;
			plen -= n;
			break;
		}
		if (path[n] == '\0') {		/* "/pki" -> "/" */
			t->path[n - 1] = '/';
			path += n - 1;
			plen = 1;
			break;
		}
	}
	for (i = 0; i < h->nroutes; i++)
		if (strncmp(path, h->routes[i].prefix, h->routes[i].len) == 0) {
			h->routes[i].cb(rq, path, h->routes[i].arg);
			if (!rq->sent)
				ocsp_http_send_error(rq, 500, reason_of(500));
			return;
		}
	get = hd->method == OCSP_HTTP_GET || hd->method == OCSP_HTTP_HEAD;
	if (strcmp(path, "/healthz") == 0) {
		if (!get) {
			method_not_allowed(rq, "GET, HEAD");
			return;
		}
		ocsp_http_add_header(rq, "Content-Type", "text/plain");
		ocsp_http_body_add(rq, "ok\n", 3);
		ocsp_http_send(rq, 200, reason_of(200));
	} else if (t->ctx == NULL)
		ocsp_http_send_error(rq, 404, reason_of(404));
	else if (strcmp(path, "/ocsp") == 0 || strcmp(path, "/") == 0) {
		if (hd->method != OCSP_HTTP_POST)
			method_not_allowed(rq, "POST");
		else if (!content_type_ok(rq))
			ocsp_http_send_error(rq, 415, reason_of(415));
		else
			answer(rq, body, body_len);
	} else if (!get)
		method_not_allowed(rq, "GET, HEAD");
	else if (strncmp(path, "/ocsp/", 6) == 0)
		handle_get(rq, path + 6, plen - 6);
	else
		handle_get(rq, path + 1, plen - 1);
}

/* ---- reading requests ---- */

/*
 * Answers every complete request at the start of buf[0..len) (their
 * answers go to t->tx) and returns the bytes consumed; stops at a partial
 * request, an error (c->closing) or when c's output is over OUT_HIGH.
 */
static size_t
process(struct hconn *c, uint8_t *buf, size_t len)
{
	struct http_thread *t = c->t;
	struct ocsp_http *h = t->h;
	struct ocsp_http_head hd;
	struct ocsp_http_req rq;
	size_t off = 0, body, i;
	int code;

	while (off < len && !c->closing && !c->paused && !c->waiting) {
		switch (ocsp_http_parse_head(buf + off, len - off,
		    (size_t)h->opts.max_headers, &hd, &code)) {
		case OCSP_HTTP_PARSE_MORE:
			if (c->head_start == 0)
				c->head_start = time(NULL);
			return off;
		case OCSP_HTTP_PARSE_ERROR:
			log_debug("http: bad request head: %d", code);
			tx_error(t, c, code);
			return len;
		case OCSP_HTTP_PARSE_OK:
			break;
		}
		body = hd.content_length > 0 ? (size_t)hd.content_length : 0;
		if (hd.content_length > (int64_t)h->opts.max_body) {
			tx_error(t, c, 413);
			return len;
		}
		if (len - off - hd.head_len < body) {
			/* the body is due by the same deadline as the head */
			if (c->head_start == 0)
				c->head_start = time(NULL);
			/* RFC 9110 10.1.1: ask for the body only now */
			if (hd.expect_continue && hd.minor == 1 &&
			    !c->continued) {
				tx_str(t, "HTTP/1.1 100 Continue\r\n\r\n");
				c->continued = 1;
			}
			return off;
		}
		c->head_start = 0;
		c->continued = 0;
		if (!hd.keep_alive)
			c->closing = 1;
		/* values become C strings for the routes (each is followed
		 * by at least its line end, inside the head) */
		for (i = 0; i < (size_t)hd.nfields; i++)
			buf[off + hd.fields[i].value_off +
			    hd.fields[i].value_len] = '\0';
		memset(&rq, 0, sizeof(rq));
		rq.t = t;
		rq.c = c;
		rq.h = &hd;
		rq.buf = buf + off;
		t->hdrs_len = 0;
		t->hdrs_full = 0;
		evbuffer_drain(t->body, evbuffer_get_length(t->body));
		dispatch(&rq, buf + off + hd.head_len, body);
		c->served = 1;
		off += hd.head_len + body;
		if (evbuffer_get_length(c->out) + t->tx.len > OUT_HIGH)
			c->paused = 1;
	}
	return off;
}

/*
 * Answers what c has buffered and keeps the rest.  buf is either c->in or
 * the thread's read buffer.  Returns 1, or 0 when c was freed.
 */
static int
consume(struct hconn *c, uint8_t *buf, size_t len)
{
	struct http_thread *t = c->t;
	size_t used, left;

	used = process(c, buf, len);
	left = len - used;
	/* After EOF, once every complete request is answered (none is held
	 * back by a pause or a signature), nothing more can come. */
	if (c->eof && !c->paused && !c->waiting)
		c->closing = 1;
	if (left == 0 || c->closing) {
		free(c->in);
		c->in = NULL;
		c->in_len = 0;
	} else if (buf != c->in) {
		if (c->in == NULL && (c->in = malloc(t->rcap)) == NULL) {
			t->tx.len = 0;
			conn_free(c);
			return 0;
		}
		memcpy(c->in, buf + used, left);
		c->in_len = left;
	} else {
		memmove(c->in, c->in + used, left);
		c->in_len = left;
	}
	if (c->in_len == 0 && !c->closing)
		c->head_start = 0;
	return conn_flush(c);
}

/* Reads and discards until EOF while lingering. */
static void
linger_read(struct hconn *c)
{
	ssize_t n;

	n = recv(c->fd, c->t->rbuf, c->t->rcap, 0);
	if (n > 0) {
		c->drained += (size_t)n;
		if (c->drained <= LINGER_BYTES)
			return;
	} else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK ||
	    errno == EINTR))
		return;
	conn_free(c);
}

static void
conn_read(struct hconn *c)
{
	struct http_thread *t = c->t;
	uint8_t *buf;
	size_t have;
	ssize_t n;

	if (c->in_len >= t->rcap) {
		/* only while a job is in flight: a whole request fits */
		if (c->waiting)
			want_read(c, 0);	/* done_cb reads again */
		else
			conn_free(c);
		return;
	}
	if (c->in_len > 0) {
		buf = c->in;
		have = c->in_len;
	} else {
		buf = t->rbuf;
		have = 0;
	}
	n = recv(c->fd, buf + have, t->rcap - have, 0);
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return;
		conn_free(c);
		return;
	}
	if (n == 0) {
		/* The client is done sending: answer what is complete. */
		c->eof = 1;
		want_read(c, 0);
		if (have == 0) {
			c->closing = 1;
			t->tx.len = 0;
			conn_flush(c);
			return;
		}
	}
	c->last = time(NULL);
	t->tx.len = 0;
	consume(c, buf, have + (size_t)n);
}

static void
conn_cb(evutil_socket_t fd, short what, void *arg)
{
	struct hconn *c = arg;
	struct http_thread *t = c->t;

	(void)fd;
	if (c->lingering) {
		linger_read(c);
		return;
	}
	if (what & EV_WRITE) {
		t->tx.len = 0;
		if (!conn_flush(c))
			return;
		/* drained after a pause: answer the requests held back */
		if (!c->paused && !c->writing && !c->waiting &&
		    c->in_len > 0 && !c->closing) {
			consume(c, c->in, c->in_len);
			return;
		}
	}
	if ((what & EV_READ) && c->reading)
		conn_read(c);
}

/* ---- deadlines ---- */

static void
sweep_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct http_thread *t = arg;
	struct ocsp_http *h = t->h;
	struct hconn *c, *next;
	time_t now = time(NULL);

	char addr[INET6_ADDRSTRLEN];
	int i;

	(void)fd;
	(void)ev;
	if (t->accept_paused && evconnlistener_enable(t->lev) == 0)
		t->accept_paused = 0;
	for (c = t->conns; c != NULL; c = next) {
		next = c->next;
		if (c->lingering) {
			if (now >= c->last + LINGER_S)
				conn_free(c);
		} else if (c->head_start != 0 && h->opts.header_timeout > 0 &&
		    now >= c->head_start + h->opts.header_timeout) {
			addr_key_str(&c->key, addr, sizeof(addr));
			log_debug("http: addr=%s header_timeout %d s reached, "
			    "closing", addr, h->opts.header_timeout);
			ratelog_event(&h->rl[OCSP_HTTP_HEADER_TIMEOUT], addr);
			conn_free(c);
		} else if (now >= c->last + h->opts.timeout)
			conn_free(c);
	}
	/* the tail of a flood: lines held back by the one-a-second rule */
	for (i = 0; i < OCSP_HTTP_STAT_COUNT; i++)
		ratelog_flush(&h->rl[i]);
}

/* ---- accepting ---- */

/*
 * A 503 (RFC 9110 15.6.4) with Retry-After (10.2.3) written straight
 * to the socket of a connection that is being closed: best effort, the
 * close says enough if the socket does not take it.
 */
static void
send_503(struct http_thread *t, evutil_socket_t fd, const char *why)
{
	char msg[512];
	int n, blen;

	blen = (int)strlen("503 Service Unavailable: \n") + (int)strlen(why);
	n = snprintf(msg, sizeof(msg), "HTTP/1.1 503 Service Unavailable\r\n"
	    "Date: %s\r\nRetry-After: %d\r\nConnection: close\r\n"
	    "Content-Type: text/plain\r\nContent-Length: %d\r\n\r\n"
	    "503 Service Unavailable: %s\n", date_now(t), RETRY_AFTER_S, blen,
	    why);
	if (n > 0 && (size_t)n < sizeof(msg))
		(void)send(fd, msg, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
}

/*
 * Reads (and drops) what the client has sent already, so that the close
 * is a FIN after our 503, not a reset that could destroy it (a client
 * sends its request right after connecting).  Bounded: LINGER_BYTES.
 */
static void
drain(struct http_thread *t, evutil_socket_t fd)
{
	size_t got = 0;
	ssize_t n;

	while (got < LINGER_BYTES &&
	    (n = recv(fd, t->rbuf, t->rcap, MSG_DONTWAIT)) > 0)
		got += (size_t)n;
}

/* Refuses a new connection (counted and logged as st) and closes it. */
static void
refuse(struct http_thread *t, evutil_socket_t fd, enum ocsp_http_stat st,
    const struct addr_key *key)
{
	char addr[INET6_ADDRSTRLEN];

	addr_key_str(key, addr, sizeof(addr));
	ratelog_event(&t->h->rl[st], addr);
	send_503(t, fd, st == OCSP_HTTP_REFUSED_PER_ADDRESS ?
	    "too many connections from your address" :
	    "too many connections");
	drain(t, fd);
	evutil_closesocket(fd);
}

/*
 * The connection of thread t to close for a new one, or NULL: one with
 * no request in progress (nothing being signed or written, not closing),
 * those that never completed a request first, then the address holding
 * the most connections, then the oldest.  Only the SHED_SCAN oldest are
 * looked at, so a flood costs a bounded scan per accept whatever
 * max_connections is (honest clients are mostly among the newest).
 * h->amu held.
 */
static struct hconn *
pick_victim(struct http_thread *t)
{
	struct hconn *c, *best = NULL;
	int tier, n, best_tier = 0, best_n = 0, seen = 0;

	for (c = t->conns_tail; c != NULL && seen < SHED_SCAN;
	    c = c->prev, seen++) {
		if (c->lingering || c->closing || c->waiting || c->writing ||
		    evbuffer_get_length(c->out) > 0)
			continue;
		tier = c->served;
		n = addrcount_get(t->h->addrs, &c->key);
		/* from the oldest: a tie keeps the older one */
		if (best == NULL || tier < best_tier ||
		    (tier == best_tier && n > best_n)) {
			best = c;
			best_tier = tier;
			best_n = n;
		}
	}
	return best;
}

/* Closes c to make room: a 503 if it never had an answer. */
static void
shed(struct hconn *c)
{
	char addr[INET6_ADDRSTRLEN];

	addr_key_str(&c->key, addr, sizeof(addr));
	log_debug("http: addr=%s shed (served=%d)", addr, (int)c->served);
	ratelog_event(&c->t->h->rl[OCSP_HTTP_SHED], addr);
	if (!c->served)
		send_503(c->t, c->fd, "server busy, connection closed to "
		    "make room");
	drain(c->t, c->fd);
	conn_free(c);
}

/*
 * Admits a new connection from key (one more counted in num_conns) or
 * says why not; *out_victim is a connection to shed first.
 */
static int
admit(struct http_thread *t, const struct addr_key *key, int n,
    struct hconn **out_victim, enum ocsp_http_stat *out_why)
{
	struct ocsp_http *h = t->h;
	int ok = 0;

	*out_victim = NULL;
	pthread_mutex_lock(&h->amu);
	if (h->opts.max_per_address > 0 &&
	    addrcount_get(h->addrs, key) >= h->opts.max_per_address) {
		*out_why = OCSP_HTTP_REFUSED_PER_ADDRESS;
		goto out;
	}
	if (h->shed_at >= 0 && n > h->shed_at)
		*out_victim = pick_victim(t);
	*out_why = OCSP_HTTP_REFUSED_MAX_CONNECTIONS;
	if ((h->opts.max_connections > 0 && n > h->opts.max_connections &&
	    *out_victim == NULL) || !addrcount_add(h->addrs, key)) {
		*out_victim = NULL;
		goto out;
	}
	ok = 1;
 out:
	pthread_mutex_unlock(&h->amu);
	return ok;
}

static void
accept_cb(struct evconnlistener *lev, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct http_thread *t = arg;
	struct ocsp_http *h = t->h;
	struct hconn *c, *victim;
	struct addr_key key;
	enum ocsp_http_stat why;
	int n;

	(void)lev;
	addr_key_from_sa(&key, sa);
	n = __atomic_add_fetch(&h->num_conns, 1, __ATOMIC_RELAXED);
	if (!admit(t, &key, n, &victim, &why)) {
		__atomic_sub_fetch(&h->num_conns, 1, __ATOMIC_RELAXED);
		refuse(t, fd, why, &key);
		return;
	}
	if (victim != NULL)
		shed(victim);
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		pthread_mutex_lock(&h->amu);
		addrcount_del(h->addrs, &key);
		pthread_mutex_unlock(&h->amu);
		__atomic_sub_fetch(&h->num_conns, 1, __ATOMIC_RELAXED);
		evutil_closesocket(fd);
		return;
	}
	c->t = t;
	c->fd = fd;
	c->key = key;
	if (salen > 0 && (size_t)salen <= sizeof(c->peer))
		memcpy(&c->peer, sa, (size_t)salen);
	c->head_start = c->last = time(NULL);
	c->next = t->conns;
	if (t->conns != NULL)
		t->conns->prev = c;
	else
		t->conns_tail = c;
	t->conns = c;
	if ((c->out = evbuffer_new()) == NULL ||
	    (c->rev = event_new(t->base, fd, EV_READ | EV_PERSIST, conn_cb,
	    c)) == NULL ||
	    (c->wev = event_new(t->base, fd, EV_WRITE | EV_PERSIST, conn_cb,
	    c)) == NULL) {
		conn_free(c);
		return;
	}
	want_read(c, 1);
	if (!c->reading)
		conn_free(c);
}

static void
accept_error_cb(struct evconnlistener *lev, void *arg)
{
	int err = EVUTIL_SOCKET_ERROR();

	struct http_thread *t = arg;

	/* EMFILE and friends: pause accepting; the sweep resumes it */
	log_warnx("ocsp http: accept: %s; pausing 1 s",
	    evutil_socket_error_to_string(err));
	evconnlistener_disable(lev);
	t->accept_paused = 1;
}

/* ---- signer threads ---- */

static void
job_free(struct sign_job *j)
{
	if (j->ok)
		ocsp_answer_cleanup(&j->a);
	ocsp_pending_free(j->p);
	free(j);
}

/* Takes the whole list l (emptying it); the caller holds its lock. */
static struct sign_job *
list_take(struct job_list *l)
{
	struct sign_job *j = l->head;

	l->head = NULL;
	l->tail = &l->head;
	return j;
}

static void *
signer_main(void *arg)
{
	struct signer_thread *st = arg;
	struct ocsp_http *h = st->h;
	struct sign_job *j;
	struct http_thread *t;
	uint64_t one = 1;
	int was_empty;

	for (;;) {
		pthread_mutex_lock(&h->jmu);
		while (!h->jstop && h->jobs.head == NULL)
			pthread_cond_wait(&h->jcv, &h->jmu);
		if (h->jstop) {
			pthread_mutex_unlock(&h->jmu);
			break;
		}
		j = h->jobs.head;
		if ((h->jobs.head = j->next) == NULL)
			h->jobs.tail = &h->jobs.head;
		pthread_mutex_unlock(&h->jmu);

		j->next = NULL;
		j->ok = ocsp_respond(st->ctx, &j->a, j->req, j->len);
		__atomic_sub_fetch(&h->inflight, 1, __ATOMIC_RELAXED);
		t = j->t;
		pthread_mutex_lock(&t->dmu);
		was_empty = t->done.head == NULL;
		*t->done.tail = j;
		t->done.tail = &j->next;
		pthread_mutex_unlock(&t->dmu);
		/* one wake-up per batch; a failed write leaves the job for
		 * the next one (the counter only grows) */
		if (was_empty && write(t->efd, &one, sizeof(one)) !=
		    (ssize_t)sizeof(one))
			log_warn("ocsp http: eventfd");
	}
	return NULL;
}

/* An event thread's answers came back: write them, resume the
 * connections' later requests. */
static void
done_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct http_thread *t = arg;
	struct sign_job *j, *next;
	uint64_t n;

	(void)ev;
	if (read(fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		log_warn("ocsp http: eventfd");
	pthread_mutex_lock(&t->dmu);
	j = list_take(&t->done);
	pthread_mutex_unlock(&t->dmu);
	for (; j != NULL; j = next) {
		next = j->next;
		job_complete(t, j);
	}
}

/* Writes j's answer (unless its connection is gone), frees j, and
 * resumes the connection's later requests. */
static void
job_complete(struct http_thread *t, struct sign_job *j)
{
	struct hconn *c;

	if ((c = j->c) == NULL) {	/* the connection is gone */
		job_free(j);
		return;
	}
	c->job = NULL;
	c->waiting = 0;
	t->tx.len = 0;
	if (j->ok)
		tx_answer(t, c, j->minor, j->head, j->get,
		    j->inm[0] != '\0' ? j->inm : NULL, &j->a);
	else
		tx_error(t, c, 503);
	job_free(j);
	if (!conn_flush(c))
		return;
	if (!c->paused && !c->writing && !c->closing && c->in_len > 0)
		consume(c, c->in, c->in_len);
	else if (!c->paused && !c->closing && !c->eof)
		want_read(c, 1);
}

/* ---- lifecycle ---- */

/* The per-address table and the rate-limited log lines. */
static int
http_limits_init(struct ocsp_http *h)
{
	char why[RATELOG_TEXT];
	size_t max_addrs;

	/* a connection is counted in num_conns before its address, so at
	 * most max_connections (+1 per thread racing) addresses */
	max_addrs = h->opts.max_connections > 0 ?
	    (size_t)h->opts.max_connections + MAX_THREADS : 65536;
	if (pthread_mutex_init(&h->amu, NULL) != 0)
		return 0;
	if ((h->addrs = addrcount_new(max_addrs)) == NULL) {
		pthread_mutex_destroy(&h->amu);
		return 0;
	}
	snprintf(why, sizeof(why), "max_connections %d",
	    h->opts.max_connections);
	if (!ratelog_init(&h->rl[OCSP_HTTP_REFUSED_MAX_CONNECTIONS],
	    "http: refused", why))
		return 0;
	snprintf(why, sizeof(why), "max_per_address %d",
	    h->opts.max_per_address);
	if (!ratelog_init(&h->rl[OCSP_HTTP_REFUSED_PER_ADDRESS],
	    "http: refused", why))
		return 0;
	snprintf(why, sizeof(why), "no request in progress, over shed_start "
	    "%d%% of max_connections %d", h->opts.shed_start,
	    h->opts.max_connections);
	if (!ratelog_init(&h->rl[OCSP_HTTP_SHED], "http: shed", why))
		return 0;
	snprintf(why, sizeof(why), "header_timeout %d s",
	    h->opts.header_timeout);
	if (!ratelog_init(&h->rl[OCSP_HTTP_HEADER_TIMEOUT], "http: closed",
	    why))
		return 0;
	return ratelog_init(&h->rl[OCSP_HTTP_SIGN_BUSY], "ocsp: answered 503 "
	    "on", "a nonce'd request: the signer queue of its thread is full");
}

struct ocsp_http *
ocsp_http_new(struct ocsp_responder *r, const struct ocsp_http_opts *opts)
{
	struct ocsp_http *h;

	if (opts->threads < 1 || opts->threads > MAX_THREADS ||
	    opts->max_body < 64 || opts->max_headers < 256 ||
	    opts->timeout < 1) {
		log_warnx("ocsp http: threads must be 1..%d, max_body >= 64, "
		    "max_headers >= 256, timeout >= 1", MAX_THREADS);
		return NULL;
	}
	if (opts->signers < 0 || opts->signers > MAX_THREADS) {
		log_warnx("ocsp http: signers must be 0..%d", MAX_THREADS);
		return NULL;
	}
	if (opts->max_per_address < 0 || opts->shed_start < 0 ||
	    opts->shed_start > 100 || opts->max_connections < 0) {
		log_warnx("ocsp http: max_per_address and max_connections "
		    "must be >= 0, shed_start 0..100");
		return NULL;
	}
	if ((h = calloc(1, sizeof(*h))) == NULL)
		return NULL;
	h->r = r;
	h->opts = *opts;
	h->jobs.tail = &h->jobs.head;
	h->shed_at = opts->shed_start > 0 && opts->max_connections > 0 ?
	    (int)((int64_t)opts->max_connections * opts->shed_start / 100) :
	    -1;
	if (pthread_mutex_init(&h->jmu, NULL) != 0) {
		free(h);
		return NULL;
	}
	if (pthread_cond_init(&h->jcv, NULL) != 0) {
		pthread_mutex_destroy(&h->jmu);
		free(h);
		return NULL;
	}
	h->sync_ok = 1;
	if (!http_limits_init(h)) {
		ocsp_http_free(h);
		return NULL;
	}
	return h;
}

int
ocsp_http_add_prefix(struct ocsp_http *h, const char *prefix)
{
	size_t n = strlen(prefix);
	int i;

	while (n > 0 && prefix[n - 1] == '/')
		n--;
	if (n == 0)
		return 1;
	if (h->started || h->nprefixes >= MAX_PREFIXES || n >= PREFIX_MAX ||
	    prefix[0] != '/')
		return 0;
	for (i = 0; i < h->nprefixes; i++)
		if (strlen(h->prefixes[i]) == n &&
		    memcmp(h->prefixes[i], prefix, n) == 0)
			return 1;
	memcpy(h->prefixes[h->nprefixes], prefix, n);
	h->prefixes[h->nprefixes++][n] = '\0';
	return 1;
}

int
ocsp_http_add_route(struct ocsp_http *h, const char *prefix, ocsp_http_cb cb,
    void *arg)
{
	struct route *rt;

	if (h->started || h->nroutes >= MAX_ROUTES ||
	    strlen(prefix) >= ROUTE_MAX || prefix[0] != '/')
		return 0;
	rt = &h->routes[h->nroutes++];
	snprintf(rt->prefix, sizeof(rt->prefix), "%s", prefix);
	rt->len = strlen(rt->prefix);
	rt->cb = cb;
	rt->arg = arg;
	return 1;
}

static void
stop_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct http_thread *t = arg;

	(void)fd;
	(void)ev;
	event_base_loopbreak(t->base);
}

static void *
thread_main(void *arg)
{
	struct http_thread *t = arg;

	if (event_base_dispatch(t->base) < 0)
		log_warnx("ocsp http: thread %d: event loop failed", t->idx);
	return NULL;
}

/* Frees what thread t owns; its thread must not be running. */
static void
thread_cleanup(struct http_thread *t)
{
	struct sign_job *j, *next;

	while (t->conns != NULL)
		conn_free(t->conns);	/* detaches their jobs */
	if (t->sch != NULL)		/* frees them (before the ctx) */
		t->sch->ops->abort(t->sch, sch_done);
	if (t->sch_ev != NULL)
		event_free(t->sch_ev);
	if (t->flush_ev != NULL)
		event_free(t->flush_ev);
	if (t->dmu_ok) {
		for (j = list_take(&t->done); j != NULL; j = next) {
			next = j->next;
			job_free(j);
		}
		pthread_mutex_destroy(&t->dmu);
	}
	if (t->done_ev != NULL)
		event_free(t->done_ev);
	if (t->efd >= 0)
		close(t->efd);
	if (t->lev != NULL)
		evconnlistener_free(t->lev);
	if (t->stop_ev != NULL)
		event_free(t->stop_ev);
	if (t->sweep_ev != NULL)
		event_free(t->sweep_ev);
	if (t->body != NULL)
		evbuffer_free(t->body);
	if (t->base != NULL)
		event_base_free(t->base);
	if (t->stop_fds[0] >= 0)
		close(t->stop_fds[0]);
	if (t->stop_fds[1] >= 0)
		close(t->stop_fds[1]);
	ocsp_ctx_free(t->ctx);
	free(t->getbuf);
	free(t->rbuf);
	free(t->path);
	wb_cleanup(&t->tx);
	memset(t, 0, sizeof(*t));
	t->stop_fds[0] = t->stop_fds[1] = t->efd = -1;
}

/* Creates thread t's base, buffers and socket bound to sa. */
static int
thread_setup(struct ocsp_http *h, struct http_thread *t,
    struct sockaddr *sa, int salen)
{
	struct timeval one = { 1, 0 };
	const struct rsign *rs;
	int one_int = 1;
	unsigned flags = LEV_OPT_REUSEABLE | LEV_OPT_REUSEABLE_PORT |
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC;

	t->h = h;
	wb_init(&t->tx);
	t->rcap = (size_t)h->opts.max_headers + (size_t)h->opts.max_body;
	if ((h->r != NULL && (t->ctx = ocsp_ctx_new(h->r)) == NULL) ||
	    (t->getbuf = malloc((size_t)h->opts.max_body)) == NULL ||
	    (t->rbuf = malloc(t->rcap)) == NULL ||
	    (t->path = malloc((size_t)h->opts.max_headers + 1)) == NULL ||
	    (t->body = evbuffer_new()) == NULL ||
	    !wb_reserve(&t->tx, 4096) ||
	    (t->base = event_base_new()) == NULL)
		return 0;
	if (pthread_mutex_init(&t->dmu, NULL) != 0)
		return 0;
	t->dmu_ok = 1;
	if (t->ctx != NULL && (rs = ocsp_responder_rsign(h->r)) != NULL &&
	    rs->chan != NULL && (t->sch = rs->chan(rs->arg, t->idx)) != NULL) {
		if ((t->sch_ev = event_new(t->base, t->sch->ops->fd(t->sch),
		    EV_READ | EV_PERSIST, sch_cb, t)) == NULL ||
		    event_add(t->sch_ev, NULL) != 0 ||
		    (t->flush_ev = event_new(t->base, -1, 0, flush_cb,
		    t)) == NULL)
			return 0;
	}
	t->done.tail = &t->done.head;
	if ((t->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
		log_warn("ocsp http: eventfd");
		return 0;
	}
	if ((t->done_ev = event_new(t->base, t->efd, EV_READ | EV_PERSIST,
	    done_cb, t)) == NULL || event_add(t->done_ev, NULL) != 0)
		return 0;
	if (pipe2(t->stop_fds, O_CLOEXEC | O_NONBLOCK) != 0) {
		t->stop_fds[0] = t->stop_fds[1] = -1;
		log_warn("ocsp http: pipe");
		return 0;
	}
	if ((t->stop_ev = event_new(t->base, t->stop_fds[0], EV_READ,
	    stop_cb, t)) == NULL || event_add(t->stop_ev, NULL) != 0)
		return 0;
	if ((t->sweep_ev = event_new(t->base, -1, EV_PERSIST, sweep_cb,
	    t)) == NULL || event_add(t->sweep_ev, &one) != 0)
		return 0;
	if ((t->lev = evconnlistener_new_bind(t->base, accept_cb, t, flags,
	    BACKLOG, sa, salen)) == NULL) {
		log_warn("ocsp http: bind %s", h->opts.listen);
		return 0;
	}
	evconnlistener_set_error_cb(t->lev, accept_error_cb);
	/*
	 * Accepted sockets inherit TCP_NODELAY from the listener (Linux):
	 * Nagle holding back an answer behind an unacknowledged one shows
	 * in the p99.  Best effort.
	 */
	if (setsockopt(evconnlistener_get_fd(t->lev), IPPROTO_TCP,
	    TCP_NODELAY, &one_int, sizeof(one_int)) != 0)
		log_warn("ocsp http: TCP_NODELAY");
	if (h->port == 0) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);

		if (getsockname(evconnlistener_get_fd(t->lev),
		    (struct sockaddr *)&ss, &sl) != 0)
			return 0;
		if (ss.ss_family == AF_INET)
			h->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
		else
			h->port = ntohs(
			    ((struct sockaddr_in6 *)&ss)->sin6_port);
		/* later threads bind the port the kernel picked */
		if (sa->sa_family == AF_INET)
			((struct sockaddr_in *)sa)->sin_port = htons(h->port);
		else
			((struct sockaddr_in6 *)sa)->sin6_port =
			    htons(h->port);
	}
	return 1;
}

/* "host:port" or "[v6]:port"; port 0 (any) is allowed. */
static int
parse_listen(const char *text, struct sockaddr_storage *ss, int *salen)
{
	char buf[300];
	const char *colon;
	char *end;
	long port;

	memset(ss, 0, sizeof(*ss));
	*salen = sizeof(*ss);
	if ((colon = strrchr(text, ':')) == NULL)
		return 0;
	port = strtol(colon + 1, &end, 10);
	if (colon[1] == '\0' || *end != '\0' || port < 0 || port > 65535)
		return 0;
	/* evutil refuses port 0: parse with 1 and put the 0 back */
	if (snprintf(buf, sizeof(buf), "%.*s:1", (int)(colon - text), text) >=
	    (int)sizeof(buf))
		return 0;
	if (evutil_parse_sockaddr_port(buf, (struct sockaddr *)ss, salen) != 0)
		return 0;
	if (ss->ss_family == AF_INET)
		((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
	else if (ss->ss_family == AF_INET6)
		((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
	else
		return 0;
	return 1;
}

int
ocsp_http_bind(struct ocsp_http *h)
{
	struct sockaddr_storage ss;
	int salen, i, rc = 0;

	if (h->started || h->bound)
		return 0;
	if (!parse_listen(h->opts.listen, &ss, &salen)) {
		log_warnx("ocsp http: bad listen address \"%s\"",
		    h->opts.listen);
		return 0;
	}
	if ((h->threads = calloc((size_t)h->opts.threads,
	    sizeof(*h->threads))) == NULL)
		return 0;
	h->nthreads = h->opts.threads;
	h->port = 0;
	for (i = 0; i < h->nthreads; i++)
		h->threads[i].stop_fds[0] = h->threads[i].stop_fds[1] =
		    h->threads[i].efd = -1;
	for (i = 0; i < h->nthreads; i++) {
		h->threads[i].idx = i;
		if (!thread_setup(h, &h->threads[i], (struct sockaddr *)&ss,
		    salen))
			goto out;
	}
	/* the signers' contexts (store readers) too, before a privilege
	 * drop; their threads start with the rest */
	for (i = 0; i < h->nthreads && h->threads[i].sch != NULL; i++)
		;
	if (h->r != NULL && h->opts.signers > 0 && i < h->nthreads) {
		if ((h->signers = calloc((size_t)h->opts.signers,
		    sizeof(*h->signers))) == NULL)
			goto out;
		for (i = 0; i < h->opts.signers; i++) {
			h->signers[i].h = h;
			if ((h->signers[i].ctx = ocsp_ctx_new(h->r)) == NULL)
				goto out;
		}
	}
	h->bound = 1;
	rc = 1;
 out:
	if (!rc)
		ocsp_http_stop(h);
	return rc;
}

int
ocsp_http_start(struct ocsp_http *h)
{
	int i, rc = 0;
	sigset_t all, old;

	if (h->started || (!h->bound && !ocsp_http_bind(h)))
		return 0;
	/* HTTP threads take no signals; the main loop handles them. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	h->jstop = 0;
	for (i = 0; h->signers != NULL && i < h->opts.signers; i++) {
		if (pthread_create(&h->signers[i].tid, NULL, signer_main,
		    &h->signers[i]) != 0) {
			log_warnx("ocsp http: pthread_create failed");
			break;
		}
		h->nsigners++;
	}
	if (h->signers != NULL && h->nsigners < h->opts.signers) {
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		h->started = 1;
		goto out;
	}
	for (i = 0; i < h->nthreads; i++) {
		if (pthread_create(&h->threads[i].tid, NULL, thread_main,
		    &h->threads[i]) != 0) {
			log_warnx("ocsp http: pthread_create failed");
			break;
		}
		h->threads[i].running = 1;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	h->started = 1;
	if (i < h->nthreads)
		goto out;
	log_info("ocsp http: listening on %s port %d, %d threads, %d signers",
	    h->opts.listen, h->port, h->nthreads, h->nsigners);
	rc = 1;
 out:
	if (!rc)
		ocsp_http_stop(h);
	return rc;
}

int
ocsp_http_port(const struct ocsp_http *h)
{
	return h->started ? h->port : 0;
}

void
ocsp_http_stop(struct ocsp_http *h)
{
	struct http_thread *t;
	struct sign_job *j, *next;
	int i;

	if (h == NULL || h->threads == NULL)
		return;
	for (i = 0; i < h->nthreads; i++) {
		t = &h->threads[i];
		if (t->running && write(t->stop_fds[1], "x", 1) != 1)
			log_warn("ocsp http: stop thread %d", i);
	}
	for (i = 0; i < h->nthreads; i++) {
		t = &h->threads[i];
		if (t->running)
			pthread_join(t->tid, NULL);
		t->running = 0;
	}
	/* Signers next: none may hand a job to a thread being freed. */
	pthread_mutex_lock(&h->jmu);
	h->jstop = 1;
	pthread_cond_broadcast(&h->jcv);
	pthread_mutex_unlock(&h->jmu);
	for (i = 0; i < h->nsigners; i++)
		pthread_join(h->signers[i].tid, NULL);
	h->nsigners = 0;
	/* connections first (they detach their jobs), then the jobs */
	for (i = 0; i < h->nthreads; i++)
		thread_cleanup(&h->threads[i]);
	for (j = list_take(&h->jobs); j != NULL; j = next) {
		next = j->next;
		job_free(j);
	}
	for (i = 0; h->signers != NULL && i < h->opts.signers; i++)
		ocsp_ctx_free(h->signers[i].ctx);
	free(h->signers);
	h->signers = NULL;
	free(h->threads);
	h->threads = NULL;
	h->nthreads = 0;
	h->started = 0;
	h->bound = 0;
	h->port = 0;
}

uint64_t
ocsp_http_stat(struct ocsp_http *h, enum ocsp_http_stat st)
{
	if ((unsigned)st >= OCSP_HTTP_STAT_COUNT)
		return 0;
	return ratelog_total(&h->rl[st]);
}

void
ocsp_http_free(struct ocsp_http *h)
{
	int i;

	if (h == NULL)
		return;
	ocsp_http_stop(h);
	for (i = 0; i < OCSP_HTTP_STAT_COUNT; i++)
		ratelog_cleanup(&h->rl[i]);
	if (h->addrs != NULL) {
		addrcount_free(h->addrs);
		pthread_mutex_destroy(&h->amu);
	}
	if (h->sync_ok) {
		pthread_cond_destroy(&h->jcv);
		pthread_mutex_destroy(&h->jmu);
	}
	free(h);
}
