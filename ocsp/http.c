/*
 * http.c - micad's HTTP listener: OCSP over POST and GET (RFC 6960
 * appendix A, RFC 5019 section 5), /healthz and routes the integrator
 * registers (/ca.crt, /crl, /metrics).
 *
 * N threads, each with its own event_base, evhttp, listening socket (all
 * bound to one port with SO_REUSEPORT, so the kernel spreads connections)
 * and its own ocsp_ctx.  A thread is stopped through a pipe watched by its
 * base, so no libevent locking is needed across threads.
 */
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
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <event2/util.h>

#include "common/bytes.h"
#include "common/log.h"
#include "ocsp/ocsp_int.h"

#define MAX_ROUTES	32
#define MAX_THREADS	64
#define ROUTE_MAX	128
#define BACKLOG		1024
#define CT_REQUEST	"application/ocsp-request"
#define CT_RESPONSE	"application/ocsp-response"

struct route {
	char		 prefix[ROUTE_MAX];
	size_t		 len;
	ocsp_http_cb	 cb;
	void		*arg;
};

/*
 * One accepted connection.  evhttp 2.1 has no per-connection hooks, so we
 * create each connection's bufferevent (evhttp_set_bevcb) and keep one
 * reference to it: once evhttp has freed it (its event callback is
 * cleared) the sweep drops our reference.  Created without
 * BEV_OPT_CLOSE_ON_FREE, so evhttp still closes the socket at once.
 */
struct hconn {
	struct hconn		*next;
	struct bufferevent	*bev;
	time_t			 deadline;	/* headers due; 0 = done */
	int			 refuse;	/* over max_connections */
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
	struct evhttp		*http;
	struct event		*stop_ev;
	int			 stop_fds[2];
	struct ocsp_ctx		*ctx;
	uint8_t			*getbuf;	/* decoded GET request */
	struct hconn		*conns;
	size_t			 num_deadlines;	/* conns with deadline != 0 */
	struct hdr_memo		 memo;
	struct event		*sweep_ev;	/* 1 s: deadlines, frees */
};

struct ocsp_http {
	struct ocsp_responder	*r;
	struct ocsp_http_opts	 opts;
	struct route		 routes[MAX_ROUTES];
	int			 nroutes;
	struct http_thread	*threads;
	int			 nthreads;
	int			 started;
	int			 bound;		/* ocsp_http_bind done */
	int			 port;
	int			 num_conns;	/* all threads, atomic */
};

void
ocsp_http_opts_defaults(struct ocsp_http_opts *o)
{
	memset(o, 0, sizeof(*o));
	snprintf(o->listen, sizeof(o->listen), "127.0.0.1:7780");
	o->threads = 2;
	o->max_body = 16384;
	o->max_headers = 8192;
	o->timeout = 30;
	o->header_timeout = 10;
	o->max_connections = 1024;
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

/* ---- responses ---- */

static void
http_date(char *buf, size_t len, int64_t t)
{
	struct tm tm;
	time_t tt = (time_t)t;

	if (gmtime_r(&tt, &tm) == NULL ||
	    strftime(buf, len, "%a, %d %b %Y %H:%M:%S GMT", &tm) == 0)
		snprintf(buf, len, "Thu, 01 Jan 1970 00:00:00 GMT");
}

static void
blob_release(const void *data, size_t len, void *arg)
{
	(void)data;
	(void)len;
	ocsp_blob_unref(arg);
}

/* RFC 5019 section 6.2 header values for a, from the memo if current. */
static const struct hdr_memo *
hdr_values(struct hdr_memo *m, const struct ocsp_answer *a)
{
	int64_t now = (int64_t)time(NULL), age;

	if (m->now == now && m->this_update == a->this_update &&
	    m->next_update == a->next_update)
		return m;
	age = a->next_update > now ? a->next_update - now : 0;
	snprintf(m->cache_control, sizeof(m->cache_control), "max-age=%"
	    PRId64 ", public, no-transform, must-revalidate", age);
	http_date(m->last_modified, sizeof(m->last_modified), a->this_update);
	http_date(m->expires, sizeof(m->expires), a->next_update);
	m->now = now;
	m->this_update = a->this_update;
	m->next_update = a->next_update;
	return m;
}

static void
send_answer(struct http_thread *t, struct evhttp_request *req,
    struct ocsp_answer *a)
{
	struct evkeyvalq *oh = evhttp_request_get_output_headers(req);
	struct evbuffer *buf = evhttp_request_get_output_buffer(req);
	const struct hdr_memo *m;
	const char *inm;

	evhttp_add_header(oh, "Content-Type", CT_RESPONSE);
	if (!a->cacheable) {
		evhttp_add_header(oh, "Cache-Control", "no-cache, no-store");
	} else {
		m = hdr_values(&t->memo, a);
		evhttp_add_header(oh, "Cache-Control", m->cache_control);
		evhttp_add_header(oh, "Last-Modified", m->last_modified);
		evhttp_add_header(oh, "Expires", m->expires);
		evhttp_add_header(oh, "ETag", a->etag);
		inm = evhttp_find_header(evhttp_request_get_input_headers(req),
		    "If-None-Match");
		if (inm != NULL && strcmp(inm, a->etag) == 0) {
			evhttp_send_reply(req, 304, "Not Modified", NULL);
			return;
		}
	}
	if (a->ref != NULL) {
		ocsp_blob_ref(a->ref);
		if (evbuffer_add_reference(buf, a->der, a->der_len,
		    blob_release, a->ref) != 0) {
			ocsp_blob_unref(a->ref);
			evhttp_send_error(req, 500, NULL);
			return;
		}
	} else if (evbuffer_add(buf, a->der, a->der_len) != 0) {
		evhttp_send_error(req, 500, NULL);
		return;
	}
	evhttp_send_reply(req, 200, "OK", NULL);
}

/*
 * Writes a reply evhttp has just queued at once, instead of on the next
 * loop turn: evhttp would wait for the socket to poll writable, write,
 * and only then finish the request.  When everything went out we run
 * evhttp's write callback ourselves (bufferevent_trigger), which
 * finishes the request exactly as the loop would have; if the socket
 * takes only part (or fails) the rest stays queued and the normal path
 * sends it (or reports the error).  evcon may be freed by the trigger
 * (Connection: close): nothing is touched after it.
 */
static void
flush_reply(struct evhttp_connection *evcon)
{
	struct bufferevent *bev;
	struct evbuffer *out;
	evutil_socket_t fd;

	if (evcon == NULL ||
	    (bev = evhttp_connection_get_bufferevent(evcon)) == NULL ||
	    (fd = bufferevent_getfd(bev)) < 0)
		return;
	out = bufferevent_get_output(bev);
	if (evbuffer_get_length(out) == 0 || evbuffer_write(out, fd) <= 0 ||
	    evbuffer_get_length(out) != 0)
		return;
	bufferevent_trigger(bev, EV_WRITE, 0);
}

static void
answer(struct http_thread *t, struct evhttp_request *req, const uint8_t *der,
    size_t len)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	struct ocsp_answer a;

	if (!ocsp_respond(t->ctx, &a, der, len)) {
		evhttp_send_error(req, 503, NULL);
		return;
	}
	send_answer(t, req, &a);	/* req may be gone after flush_reply */
	ocsp_answer_cleanup(&a);
	flush_reply(evcon);
}

static int
content_type_ok(struct evhttp_request *req)
{
	const char *ct;
	size_t n = sizeof(CT_REQUEST) - 1;

	ct = evhttp_find_header(evhttp_request_get_input_headers(req),
	    "Content-Type");
	if (ct == NULL || strncasecmp(ct, CT_REQUEST, n) != 0)
		return 0;
	return ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ' || ct[n] == '\t';
}

static void
handle_post(struct http_thread *t, struct evhttp_request *req)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	const uint8_t *der;

	if (!content_type_ok(req)) {
		evhttp_send_error(req, 415, "Unsupported Media Type");
		return;
	}
	if (len > (size_t)t->h->opts.max_body) {
		evhttp_send_error(req, 413, "Payload Too Large");
		return;
	}
	if ((der = evbuffer_pullup(in, -1)) == NULL && len > 0) {
		evhttp_send_error(req, 500, NULL);
		return;
	}
	answer(t, req, der, len);
}

/* RFC 6960 A.1: GET {url}/{url-encoding of base-64 encoding of DER}. */
static void
handle_get(struct http_thread *t, struct evhttp_request *req,
    const char *b64)
{
	size_t len = 0, cap = (size_t)t->h->opts.max_body;

	if (!ocsp_get_decode(t->getbuf, cap, &len, b64, strlen(b64)))
		len = 0;	/* answered as malformedRequest */
	answer(t, req, t->getbuf, len);
}

/* ---- connection limits and the header deadline ---- */

static int
hconn_gone(const struct hconn *hc)
{
	bufferevent_event_cb ecb = NULL;

	bufferevent_getcb(hc->bev, NULL, NULL, &ecb, NULL);
	return ecb == NULL;	/* evhttp always sets one while it owns it */
}

/* Closes a live connection's socket; evhttp sees EOF and frees it. */
static void
hconn_kill(struct hconn *hc, const char *reply)
{
	evutil_socket_t fd = bufferevent_getfd(hc->bev);

	if (fd < 0)
		return;
	/* Best effort: the close says enough if this fails. */
	if (reply != NULL)
		(void)send(fd, reply, strlen(reply),
		    MSG_NOSIGNAL | MSG_DONTWAIT);
	shutdown(fd, SHUT_RDWR);
}

/* Drops connections evhttp has freed; enforces deadlines and refusals. */
static void
sweep(struct http_thread *t)
{
	struct hconn **pp = &t->conns, *hc;
	time_t now = time(NULL);

	while ((hc = *pp) != NULL) {
		if (hconn_gone(hc)) {
			*pp = hc->next;
			if (hc->deadline != 0)
				t->num_deadlines--;
			bufferevent_decref(hc->bev);
			free(hc);
			__atomic_sub_fetch(&t->h->num_conns, 1, __ATOMIC_RELAXED);
			continue;
		}
		if (hc->refuse) {
			hc->refuse = 0;
			if (hc->deadline != 0)
				t->num_deadlines--;
			hc->deadline = 0;
			hconn_kill(hc, "HTTP/1.1 503 Service Unavailable\r\n"
			    "Connection: close\r\nContent-Length: 0\r\n\r\n");
		} else if (hc->deadline != 0 && now >= hc->deadline) {
			log_info("http: header_timeout %d s reached, closing",
			    t->h->opts.header_timeout);
			hc->deadline = 0;
			t->num_deadlines--;
			hconn_kill(hc, NULL);
		}
		pp = &hc->next;
	}
}

static void
sweep_cb(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	sweep(arg);
}

/* evhttp's bevcb: a new connection; counted, given a header deadline. */
static struct bufferevent *
conn_new(struct event_base *base, void *arg)
{
	struct http_thread *t = arg;
	struct ocsp_http *h = t->h;
	struct hconn *hc;
	int n;

	/* Count only live ones; before linking the new one, whose
	 * callbacks evhttp has not set yet. */
	if (h->opts.max_connections > 0 && __atomic_load_n(&h->num_conns,
	    __ATOMIC_RELAXED) >= h->opts.max_connections)
		sweep(t);
	if ((hc = calloc(1, sizeof(*hc))) == NULL)
		return NULL;	/* evhttp makes its own: not counted */
	if ((hc->bev = bufferevent_socket_new(base, -1, 0)) == NULL) {
		free(hc);
		return NULL;
	}
	bufferevent_incref(hc->bev);
	if (h->opts.header_timeout > 0) {
		hc->deadline = time(NULL) + h->opts.header_timeout;
		t->num_deadlines++;
	}
	hc->next = t->conns;
	t->conns = hc;
	n = __atomic_add_fetch(&h->num_conns, 1, __ATOMIC_RELAXED);
	if (h->opts.max_connections > 0 && n > h->opts.max_connections) {
		log_info("http: refused a connection: max_connections %d "
		    "reached", h->opts.max_connections);
		hc->refuse = 1;
		/* The socket is set after we return: close it next turn. */
		event_active(t->sweep_ev, EV_TIMEOUT, 0);
	}
	return hc->bev;
}

/* A complete request arrived: the header deadline no longer applies. */
static void
conn_headers_done(struct http_thread *t, struct evhttp_request *req)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	struct bufferevent *bev;
	struct hconn *hc;

	/* Keep-alive requests after the first: nothing to look for. */
	if (t->num_deadlines == 0 || evcon == NULL ||
	    (bev = evhttp_connection_get_bufferevent(evcon)) == NULL)
		return;
	for (hc = t->conns; hc != NULL; hc = hc->next)
		if (hc->bev == bev) {
			if (hc->deadline != 0)
				t->num_deadlines--;
			hc->deadline = 0;
			break;
		}
}

static void
handle(struct evhttp_request *req, void *arg)
{
	struct http_thread *t = arg;
	struct ocsp_http *h = t->h;
	const struct evhttp_uri *uri;
	const char *path;
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	int i, get;

	conn_headers_done(t, req);
	if ((uri = evhttp_request_get_evhttp_uri(req)) == NULL ||
	    (path = evhttp_uri_get_path(uri)) == NULL || path[0] != '/') {
		evhttp_send_error(req, 400, NULL);
		return;
	}
	for (i = 0; i < h->nroutes; i++)
		if (strncmp(path, h->routes[i].prefix, h->routes[i].len) == 0) {
			h->routes[i].cb(req, path, h->routes[i].arg);
			return;
		}
	get = cmd == EVHTTP_REQ_GET || cmd == EVHTTP_REQ_HEAD;
	if (strcmp(path, "/healthz") == 0 && get) {
		evhttp_add_header(evhttp_request_get_output_headers(req),
		    "Content-Type", "text/plain");
		evbuffer_add(evhttp_request_get_output_buffer(req), "ok\n", 3);
		evhttp_send_reply(req, 200, "OK", NULL);
	} else if (strcmp(path, "/ocsp") == 0 || strcmp(path, "/") == 0) {
		if (cmd == EVHTTP_REQ_POST)
			handle_post(t, req);
		else
			evhttp_send_error(req, 405, "Method Not Allowed");
	} else if (get && strncmp(path, "/ocsp/", 6) == 0)
		handle_get(t, req, path + 6);
	else if (get)
		handle_get(t, req, path + 1);
	else
		evhttp_send_error(req, 405, "Method Not Allowed");
}

/* ---- lifecycle ---- */

struct ocsp_http *
ocsp_http_new(struct ocsp_responder *r, const struct ocsp_http_opts *opts)
{
	struct ocsp_http *h;

	if (opts->threads < 1 || opts->threads > MAX_THREADS ||
	    opts->max_body < 64) {
		log_warnx("ocsp http: threads must be 1..%d, max_body >= 64",
		    MAX_THREADS);
		return NULL;
	}
	if ((h = calloc(1, sizeof(*h))) == NULL)
		return NULL;
	h->r = r;
	h->opts = *opts;
	return h;
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
	if (t->stop_ev != NULL)
		event_free(t->stop_ev);
	if (t->http != NULL)
		evhttp_free(t->http);
	if (t->sweep_ev != NULL)
		event_free(t->sweep_ev);
	while (t->conns != NULL) {
		struct hconn *hc = t->conns;

		t->conns = hc->next;
		bufferevent_decref(hc->bev);
		free(hc);
		if (t->h != NULL)
			__atomic_sub_fetch(&t->h->num_conns, 1,
			    __ATOMIC_RELAXED);
	}
	if (t->base != NULL)
		event_base_free(t->base);
	if (t->stop_fds[0] >= 0)
		close(t->stop_fds[0]);
	if (t->stop_fds[1] >= 0)
		close(t->stop_fds[1]);
	ocsp_ctx_free(t->ctx);
	free(t->getbuf);
	memset(t, 0, sizeof(*t));
	t->stop_fds[0] = t->stop_fds[1] = -1;
}

/* Creates thread t's base, evhttp and socket bound to sa. */
static int
thread_setup(struct ocsp_http *h, struct http_thread *t,
    struct sockaddr *sa, int salen)
{
	struct evconnlistener *lev;
	int one_int = 1;
	unsigned flags = LEV_OPT_REUSEABLE | LEV_OPT_REUSEABLE_PORT |
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC;

	t->h = h;
	if ((t->ctx = ocsp_ctx_new(h->r)) == NULL ||
	    (t->getbuf = malloc((size_t)h->opts.max_body)) == NULL ||
	    (t->base = event_base_new()) == NULL ||
	    (t->http = evhttp_new(t->base)) == NULL)
		return 0;
	if (pipe2(t->stop_fds, O_CLOEXEC | O_NONBLOCK) != 0) {
		t->stop_fds[0] = t->stop_fds[1] = -1;
		log_warn("ocsp http: pipe");
		return 0;
	}
	if ((t->stop_ev = event_new(t->base, t->stop_fds[0], EV_READ,
	    stop_cb, t)) == NULL || event_add(t->stop_ev, NULL) != 0)
		return 0;
	evhttp_set_timeout(t->http, h->opts.timeout);
	evhttp_set_max_headers_size(t->http, h->opts.max_headers);
	evhttp_set_max_body_size(t->http, h->opts.max_body);
	/* Every method reaches handle(), which answers 405 (RFC 9110
	 * 15.5.6) for the ones a route does not take; libevent itself would
	 * say 501. */
	evhttp_set_allowed_methods(t->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST |
	    EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
	    EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT |
	    EVHTTP_REQ_PATCH);
	evhttp_set_gencb(t->http, handle, t);
	evhttp_set_bevcb(t->http, conn_new, t);
	{
		struct timeval one = { 1, 0 };

		if ((t->sweep_ev = event_new(t->base, -1, EV_PERSIST,
		    sweep_cb, t)) == NULL || event_add(t->sweep_ev, &one) != 0)
			return 0;
	}
	if ((lev = evconnlistener_new_bind(t->base, NULL, NULL, flags,
	    BACKLOG, sa, salen)) == NULL) {
		log_warn("ocsp http: bind %s", h->opts.listen);
		return 0;
	}
	/*
	 * Accepted sockets inherit TCP_NODELAY from the listener (Linux):
	 * evhttp never sets it, and Nagle holding back a reply behind an
	 * unacknowledged one shows in the p99.  Best effort.
	 */
	if (setsockopt(evconnlistener_get_fd(lev), IPPROTO_TCP, TCP_NODELAY,
	    &one_int, sizeof(one_int)) != 0)
		log_warn("ocsp http: TCP_NODELAY");
	if (evhttp_bind_listener(t->http, lev) == NULL) {
		evconnlistener_free(lev);
		return 0;
	}
	if (h->port == 0) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);

		if (getsockname(evconnlistener_get_fd(lev),
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
		h->threads[i].stop_fds[0] = h->threads[i].stop_fds[1] = -1;
	for (i = 0; i < h->nthreads; i++) {
		h->threads[i].idx = i;
		if (!thread_setup(h, &h->threads[i], (struct sockaddr *)&ss,
		    salen))
			goto out;
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
	log_info("ocsp http: listening on %s port %d, %d threads",
	    h->opts.listen, h->port, h->nthreads);
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
		thread_cleanup(t);
	}
	free(h->threads);
	h->threads = NULL;
	h->nthreads = 0;
	h->started = 0;
	h->bound = 0;
	h->port = 0;
}

void
ocsp_http_free(struct ocsp_http *h)
{
	if (h == NULL)
		return;
	ocsp_http_stop(h);
	free(h);
}
