/*
 * listener.c - the CA protocol over TLS 1.3 on the micad event loop.
 *
 * One struct conn per client with a state enum; every event of its
 * bufferevent lands in read_cb / write_cb / event_cb.  Nothing blocks:
 * argon2id runs on the worker pool (common/workq.h) and its result comes
 * back to the loop, where ONE write transaction re-reads the account and
 * applies the attempt (ca/auth.h auth_login_apply).  Frames are decoded
 * with ca/proto.h from a capped input buffer.
 *
 * A connection that must close gets state CLOSING: reading stops, the
 * queued frames are flushed, then write_cb frees it.  Only the top-level
 * callbacks free a connection (conn_settle), never a handler.
 *
 * Floods: at most max_connections connections, max_per_address from one
 * address (counted in L.addrs).  Once more than shed_start % of
 * max_connections are open, each new connection closes one that has not
 * logged in and has nothing in progress (no LOGIN being verified or
 * written, no REISSUE being stored, no reply being written): first those
 * that never had a FETCH or STATUS answered, then the address holding
 * the most connections, then the oldest.  A shed connection whose TLS
 * session is up gets ERROR 11 (busy) first.  A logged-in connection is
 * never shed.  Refusals, sheds, failed handshakes and login timeouts are
 * logged at most once a second per reason, with counts (ratelog).
 */
#include <sys/types.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sodium.h>

#include "ca/auth.h"
#include "ca/listener.h"
#include "ca/micad.h"
#include "ca/notify.h"
#include "ca/proto.h"
#include "ca/repl.h"
#include "ca/reissue.h"
#include "ca/renew.h"
#include "ca/subrenew.h"
#include "common/addrcount.h"
#include "common/bytes.h"
#include "common/log.h"
#include "common/ratelog.h"
#include "common/workq.h"
#include "conf/conf.h"
#include "store/store.h"

#define PREAUTH_MAX_FRAME	4096	/* LOGIN fits; REISSUE needs login */
/* after a CHALLENGE, before any LOGIN: a RENEW carries a certificate, a
 * CSR and a signature (RSA 4096 fits) */
#define RENEW_MAX_FRAME		12288
#define MAX_ERRORS		16	/* protocol errors before we close */
/*
 * After an ERROR that closes the connection (a frame too large or
 * shorter than its header, a bad version, HELLO not first, too many
 * errors) the client may still be sending: closing with unread input
 * makes the kernel send a reset, which can destroy the ERROR before the
 * client reads it.  So the write side is shut down once the ERROR is
 * flushed, and input is read and discarded until the client closes, or
 * LINGER_S seconds, or LINGER_BYTES bytes (as the HTTP side does).
 */
#define LINGER_S		2
#define LINGER_BYTES		(1024 * 1024)
/* and in any case LINGER_MAX_S after it began: a client trickling a
 * byte now and then must not hold a slot (the flood defences do not shed
 * closing connections) */
#define LINGER_MAX_S		5
/*
 * Output throttle: a client that sends requests without reading the
 * replies would make us buffer without bound.  Above OUT_HIGH queued
 * bytes we stop reading its requests; once the output drained to
 * OUT_LOW, reading resumes.
 */
#define OUT_HIGH		(256 * 1024)
#define OUT_LOW			(OUT_HIGH / 2)
/* LOGINs in flight (on the worker pool or being written): per address,
 * and in all LOGINS_PER_WORKER x [daemon] workers.  Beyond, a LOGIN
 * waits in the login queue (FIFO, at most [protocol]
 * login_queue_per_address from one address and login_queue_max in all);
 * only when that is full is it refused with ERROR 11 and a "retry after
 * N s" hint. */
#define LOGINS_PER_ADDR		1
#define LOGINS_PER_WORKER	2
/* Failed-login counters for names that are not accounts, so that the
 * LOCKED answer does not tell which accounts exist.  Least recently used
 * entries go first. */
#define UNKNOWN_MAX		4096
/* Connections being closed (a shed one flushing its ERROR 11, at most a
 * second) do not hold a slot, but never more than this many. */
#define CLOSING_SLACK		256
#define SHED_SCAN		1024	/* connections looked at for a shed */

enum conn_state {
	CS_HANDSHAKE = 0,	/* TLS handshake running */
	CS_HELLO,		/* waiting for HELLO */
	CS_READY,		/* HELLO done, not logged in */
	CS_AUTHED,		/* logged in */
	CS_WAITING,		/* logged in, at least one WAIT open */
	CS_CLOSING,		/* flushing, then free */
};

struct login_job;
struct reissue_job;
struct acct_job;
struct list_job;

struct wait_ref {
	struct wait_ref	*next;
	struct conn	*conn;
	uint32_t	 frame_id;
	uint64_t	 req;
};

struct conn {
	struct conn		*next, *prev;
	uint64_t		 cid;
	enum conn_state		 state;
	int			 authed;
	struct bufferevent	*bev;
	char			 addr[INET6_ADDRSTRLEN];
	char			 account[STORE_NAME_MAX + 1];
	struct login_job	*login;		/* LOGIN in progress */
	struct reissue_job	*rjob;		/* REISSUE being stored */
	struct acct_job		*ajob;		/* PASSWD/ENROLL in progress */
	int			 pw_expired;	/* LOGIN verified, password too
						 * old: PASSWD only */
	struct renew_job	*renew;		/* RENEW being stored */
	struct list_job		*ljob;		/* LIST being read */
	uint8_t			 nonce[PROTO_NONCE_LEN];	/* CHALLENGE's */
	int			 has_nonce;	/* unused nonce in nonce */
	struct wait_ref		*waits;
	int			 num_errors;
	int			 out_full;	/* reading paused: OUT_HIGH */
	int			 useful;	/* a FETCH/STATUS was answered */
	struct addr_key		 key;		/* counted in L.addrs */
	int			 linger;	/* close the lingering way */
	int			 lingering;	/* write side shut, draining */
	size_t			 drained;	/* bytes discarded meanwhile */
	struct event		*deadline;	/* log in by then, or go */
};

/* 1 while a request of c is with a worker or the writer (reading of
 * its frames paused: replies stay in request order). */
static int
conn_working(const struct conn *c)
{
	return c->login != NULL || c->rjob != NULL || c->ajob != NULL ||
	    c->renew != NULL || c->ljob != NULL;
}

struct login_job {
	struct login_job *next;		/* L.logins: in flight, or L.queue */
	int		 queued;	/* in L.queue, not yet submitted */
	int64_t		 started_ms;	/* submitted (for the retry hint) */
	struct micad	*d;
	struct conn	*conn;		/* NULL once the connection is gone */
	atomic_int	 cancelled;	/* connection gone: skip the hash */
	int		 verified;	/* the worker ran argon2id */
	char		 addr[INET6_ADDRSTRLEN];
	uint64_t	 cid;
	uint32_t	 frame_id;
	char		 account[STORE_NAME_MAX + 1];
	char		 hash[AUTH_PWHASH_LEN];	/* account's or the dummy */
	char		*pw;			/* sodium_malloc'd */
	size_t		 pw_len;
	char		 code[AUTH_CODE_LEN + 1];
	int		 dummy;			/* hash is the dummy's */
	int		 pw_ok;			/* set by the worker */
	/* the write on the writer thread (login_txn) */
	struct auth_policy pol;
	int64_t		 now;
	enum auth_login_rc unk_rc;	/* unknown_check, read on the loop */
	const char	*unk_detail;
	enum auth_login_rc rc;		/* results */
	const char	*detail;
	int		 unknown;	/* name is not an account */
	int		 pw_max_days;	/* [policy] password_max_days */
	int		 pw_expired;	/* OK, but the password is too old */
	int64_t		 locked_until;	/* LOCKED: until then */
};

/* A RENEW being signed and stored; conn is NULL once the connection
 * is gone (the renewal still commits, nobody is told). */
struct renew_job {
	struct conn	*conn;
	uint64_t	 cid;
	uint32_t	 frame_id;
};

/* A REISSUE whose request is being stored; conn is NULL once the
 * connection is gone (the request is still stored). */
struct reissue_job {
	struct conn	*conn;
	uint64_t	 cid;
	uint32_t	 frame_id;
};

static struct {
	struct micad		*d;
	SSL_CTX			*ctx;
	struct evconnlistener	*lev;
	struct conn		*conns;		/* newest first */
	struct conn		*conns_tail;	/* the oldest */
	int			 num_conns;
	int			 num_closing;	/* of them in CS_CLOSING */
	int			 shed_at;	/* shed above; -1: never */
	struct addrcount	*addrs;		/* connections per address */
	struct ratelog		 rl[CA_LISTENER_STAT_COUNT];
	struct event		*tick;		/* 1 s: log lines, accept */
	int			 accept_paused;
	uint64_t		 next_cid;
	uint32_t		 max_frame;
	char			 dummy_hash[AUTH_PWHASH_LEN];
	int			 dummy_ready;	/* dummy_hash is made: LOGINs
						 * wait in the queue until then */
	uint64_t		 dummy_ops;	/* the limits of dummy_hash */
	size_t			 dummy_mem;
	uint64_t		 want_ops;	/* the newest limits asked for */
	size_t			 want_mem;
	struct login_job	*logins;	/* in flight, loop thread only */
	int			 num_logins;
	struct login_job	*queue;		/* waiting, oldest first */
	struct login_job	*queue_tail;
	int			 num_queued;
	int64_t			 login_ms;	/* moving average of a LOGIN's
						 * time in flight, ms */
	int64_t			 tls_nb, tls_na; /* L.ctx's certificate */
	int64_t			 tls_kicked;	/* monotonic s, last kick */
} L;

/* Loop thread only; a static table, so no allocation per name. */
struct unknown_name {
	char		name[STORE_NAME_MAX + 1];	/* "" = free slot */
	uint32_t	failed;
	int64_t		locked_until;
	uint64_t	used;				/* LRU clock */
};

static struct {
	struct unknown_name	e[UNKNOWN_MAX];
	uint64_t		clock;
} U;

static void	read_cb(struct bufferevent *, void *);
static void	write_cb(struct bufferevent *, void *);
static void	acct_conn_gone(struct conn *);
static void	event_cb(struct bufferevent *, short, void *);
static void	process_input(struct conn *);
static void	list_conn_gone(struct conn *);
static void	deadline_cb(evutil_socket_t, short, void *);
static void	login_dequeue(struct login_job *);
static void	login_job_free(struct login_job *);
static void	login_queue_run(void);

/* ---- connection lifecycle ---- */

static void
conn_timeouts(struct conn *c)
{
	const struct conf_proto	*p = &L.d->conf->proto;
	struct timeval		 hs = { p->handshake_timeout, 0 };
	struct timeval		 idle = { p->idle_timeout, 0 };

	if (c->state == CS_HANDSHAKE)
		bufferevent_set_timeouts(c->bev, &hs, &hs);
	else if (c->state == CS_WAITING)
		/* A waiting client may sit quietly for the admin. */
		bufferevent_set_timeouts(c->bev, NULL, &idle);
	else
		bufferevent_set_timeouts(c->bev, &idle, &idle);
}

static void
conn_free(struct conn *c)
{
	struct wait_ref	*w;

	log_debug("cid=%" PRIu64 " closed", c->cid);
	if (c->deadline != NULL)
		event_free(c->deadline);
	while ((w = c->waits) != NULL) {
		c->waits = w->next;
		reissue_wait_cancel(L.d->reissue, w);
		free(w);
	}
	if (c->login != NULL && c->login->queued) {
		/* Never submitted: dropped, not counted. */
		login_dequeue(c->login);
		log_info("cid=%" PRIu64 " login account=%s result=cancelled "
		    "detail=\"connection gone while queued, not counted\"",
		    c->cid, c->login->account);
		login_job_free(c->login);
		c->login = NULL;
	}
	if (c->login != NULL) {
		/* Not hashed yet: the worker skips it, and an attempt whose
		 * password was never checked is not counted.  Hashed: its
		 * write still commits, nobody is told. */
		atomic_store(&c->login->cancelled, 1);
		c->login->conn = NULL;
	}
	if (c->rjob != NULL)
		c->rjob->conn = NULL;	/* still stored, nobody told */
	acct_conn_gone(c);
	if (c->renew != NULL)
		c->renew->conn = NULL;	/* still commits, nobody told */
	list_conn_gone(c);
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		L.conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	else
		L.conns_tail = c->prev;
	L.num_conns--;
	if (c->state == CS_CLOSING)
		L.num_closing--;
	addrcount_del(L.addrs, &c->key);
	if (c->bev != NULL)
		bufferevent_free(c->bev);
	sodium_memzero(c, sizeof(*c));
	free(c);
}

/* Asks for a close after the queued output is flushed. */
static void
conn_close(struct conn *c)
{
	if (c->state == CS_CLOSING)
		return;
	c->state = CS_CLOSING;
	L.num_closing++;
	bufferevent_disable(c->bev, EV_READ);
	/* Makes write_cb run (deferred) even when nothing is queued, so a
	 * close requested outside our own callbacks is not forgotten. */
	bufferevent_trigger(c->bev, EV_WRITE,
	    BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
}

/* A close after a protocol error: flush, then linger (see LINGER_S). */
static void
conn_close_linger(struct conn *c)
{
	c->linger = 1;
	conn_close(c);
}

/* Discards what the client sent; 0 when the connection must go now. */
static int
linger_drain(struct conn *c)
{
	struct evbuffer	*in = bufferevent_get_input(c->bev);
	size_t		 n = evbuffer_get_length(in);

	c->drained += n;
	evbuffer_drain(in, n);
	return c->drained <= LINGER_BYTES;
}

/* The ERROR is flushed: shut the write side, read until EOF. */
static int
linger_start(struct conn *c)
{
	struct timeval	tv = { LINGER_S, 0 };
	evutil_socket_t	fd = bufferevent_getfd(c->bev);

	if (fd < 0 || shutdown(fd, SHUT_WR) != 0)
		return 0;
	c->lingering = 1;
	if (c->deadline != NULL) {
		struct timeval	max = { LINGER_MAX_S, 0 };

		evtimer_add(c->deadline, &max);	/* replaces the login one */
	}
	bufferevent_set_timeouts(c->bev, &tv, &tv);
	bufferevent_setwatermark(c->bev, EV_READ, 0, 0);
	bufferevent_enable(c->bev, EV_READ);
	return linger_drain(c);
}

/* Called last in every top-level callback: frees a CLOSING connection
 * whose output is flushed (after lingering when asked).  Returns 1 if c
 * is gone. */
static int
conn_settle(struct conn *c)
{
	if (c->state != CS_CLOSING ||
	    evbuffer_get_length(bufferevent_get_output(c->bev)) != 0)
		return 0;
	if (c->lingering)
		return 0;	/* until EOF, timeout or LINGER_BYTES */
	if (c->linger && linger_start(c))
		return 0;
	conn_free(c);
	return 1;
}

/*
 * A request of c that was with a worker or the writer is answered:
 * reading resumes (unless the output is full) and the frames that
 * arrived meanwhile are handled; a closing connection may go.
 */
static void
conn_resume(struct conn *c)
{
	if (c->state != CS_CLOSING) {
		if (!c->out_full)
			bufferevent_enable(c->bev, EV_READ);
		process_input(c);
	}
	conn_settle(c);
}

static void
conn_send_wb(struct conn *c, struct wb *w)
{
	if (!wb_ok(w) || w->len == 0 ||
	    bufferevent_write(c->bev, w->data, w->len) != 0) {
		log_warnx("cid=%" PRIu64 " cannot queue a frame", c->cid);
		conn_close(c);
	}
	wb_cleanup(w);
}

static void
conn_send(struct conn *c, const struct proto_msg *m)
{
	struct wb	w;

	wb_init(&w);
	if (!proto_encode(&w, m)) {
		log_warnx("cid=%" PRIu64 " encoding %s failed", c->cid,
		    proto_type_name(m->type));
		wb_cleanup(&w);
		conn_close(c);
		return;
	}
	conn_send_wb(c, &w);
}

static void
conn_error(struct conn *c, uint32_t id, uint16_t code, const char *text)
{
	struct wb	w;
	char		esc[PROTO_TEXT_MAX + 1];

	/* text may quote what the client sent (a CSR subject) */
	proto_log_escape(esc, sizeof(esc), text, PROTO_TEXT_MAX);
	log_info("cid=%" PRIu64 " id=%" PRIu32 " error code=%u (%s) text=\"%s\"",
	    c->cid, id, code, proto_err_name(code), esc);
	wb_init(&w);
	if (!proto_encode_error(&w, id, code, text))
		wb_cleanup(&w);
	else
		conn_send_wb(c, &w);
	if (++c->num_errors >= MAX_ERRORS) {
		log_info("cid=%" PRIu64 " too many errors, closing", c->cid);
		conn_close_linger(c);
	}
}

/* ---- LOGIN ---- */

static void
login_job_free(struct login_job *j)
{
	if (j == NULL)
		return;
	if (j->pw != NULL) {
		sodium_memzero(j->pw, j->pw_len + 1);
		sodium_free(j->pw);
	}
	sodium_memzero(j, sizeof(*j));
	free(j);
}

struct pwread_ctx {
	const char	*account;
	char		*hash;
	int		 found;
};

static enum store_rc
pwread_txn(struct store_txn *txn, void *arg)
{
	struct pwread_ctx	*p = arg;
	struct account_rec	 a;
	enum store_rc		 rc;

	p->found = 0;
	rc = store_account_get(txn, p->account, &a);
	if (rc == STORE_OK) {
		memcpy(p->hash, a.pwhash, AUTH_PWHASH_LEN);
		p->hash[AUTH_PWHASH_LEN - 1] = '\0';
		p->found = 1;
	}
	account_rec_wipe(&a);
	return rc == STORE_NOTFOUND ? STORE_OK : rc;
}

/* Worker thread: the expensive part only. */
static void
login_work(void *arg)
{
	struct login_job	*j = arg;

	if (atomic_load(&j->cancelled)) {
		sodium_memzero(j->pw, j->pw_len + 1);
		return;
	}
	j->pw_ok = auth_pwverify(j->hash, j->pw, j->pw_len);
	j->verified = 1;
	sodium_memzero(j->pw, j->pw_len + 1);
	/* Logged after the work, so tests can see the dummy was verified. */
	log_debug("cid=%" PRIu64 " argon2id verified against=%s", j->cid,
	    j->dummy ? "dummy" : "account");
}

/* ---- failed logins of names that are not accounts ---- */

static struct unknown_name *
unknown_find(const char *name)
{
	size_t	i;

	for (i = 0; i < UNKNOWN_MAX; i++)
		if (U.e[i].name[0] != '\0' && strcmp(U.e[i].name, name) == 0)
			return &U.e[i];
	return NULL;
}

/*
 * The answer auth_login_apply would give for an account with the
 * entry's counters: AUTH_LOGIN_LOCKED while locked, else FAILED.  Reads
 * only: store_write may run the transaction more than once, so the
 * counters change in unknown_failed, after the commit.
 */
static enum auth_login_rc
unknown_check(const char *name, int64_t now, const char **out_detail)
{
	struct unknown_name	*u = unknown_find(name);

	if (u != NULL && u->locked_until > now) {
		*out_detail = "unknown account, locked";
		return AUTH_LOGIN_LOCKED;
	}
	*out_detail = "unknown account";
	return AUTH_LOGIN_FAILED;
}

/* Counts one failure for name, like auth_login_apply for an account. */
static void
unknown_failed(const char *name, int64_t now, const struct auth_policy *pol)
{
	struct unknown_name	*u;
	size_t			 i;

	if ((u = unknown_find(name)) == NULL) {
		/* a free slot, else the least recently used one */
		u = &U.e[0];
		for (i = 0; i < UNKNOWN_MAX && u->name[0] != '\0'; i++)
			if (U.e[i].name[0] == '\0' || U.e[i].used < u->used)
				u = &U.e[i];
		memset(u, 0, sizeof(*u));
		snprintf(u->name, sizeof(u->name), "%s", name);
	}
	u->used = ++U.clock;
	if (u->locked_until > now)
		return;
	if (u->locked_until != 0) {
		u->locked_until = 0;
		u->failed = 0;
	}
	if (u->failed < UINT32_MAX)
		u->failed++;
	if (u->failed >= (uint32_t)(pol->max_failures > 0 ?
	    pol->max_failures : 1))
		u->locked_until = now + pol->lockout_seconds;
}

/*
 * Writer thread: the login decision, inside the write transaction.  The
 * unknown-name table is the loop's: unknown_check was read there before
 * the write was queued (j->unk_rc), and unknown_failed runs after it.
 */
static enum store_rc
login_txn(struct store_txn *txn, void *arg)
{
	struct login_job	*j = arg;
	struct account_rec	 a;
	char			 details[128];
	enum store_rc		 rc;
	int			 pw_ok = j->pw_ok;

	j->rc = AUTH_LOGIN_INTERNAL;
	j->detail = "store error";
	j->unknown = 0;
	rc = store_account_get(txn, j->account, &a);
	if (rc == STORE_NOTFOUND) {
		/* Counted and locked like an account, in memory. */
		j->unknown = 1;
		j->rc = j->unk_rc;
		j->detail = j->unk_detail;
		snprintf(details, sizeof(details), "cid=%" PRIu64 " %s",
		    j->cid, j->detail);
		rc = store_audit_append(txn, j->account, "auth.failure",
		    j->account, details, NULL);
		goto out;
	}
	if (rc != STORE_OK)
		goto out;
	/* The hash verified on the worker must still be the account's. */
	if (sodium_memcmp(a.pwhash, j->hash, AUTH_PWHASH_LEN) != 0)
		pw_ok = 0;
	j->rc = auth_login_apply(&a, pw_ok, j->code, j->now, &j->pol,
	    &j->detail);
	j->locked_until = a.locked_until;
	j->pw_expired = 0;
	if (j->rc == AUTH_LOGIN_OK && j->pw_max_days > 0 &&
	    (a.pw_changed != 0 ? a.pw_changed : a.created) +
	    (int64_t)j->pw_max_days * 86400 <= j->now) {
		j->pw_expired = 1;
		j->detail = "password and code ok, password expired";
	}
	if (j->rc != AUTH_LOGIN_LOCKED &&
	    (rc = store_account_put(txn, &a, 0)) != STORE_OK)
		goto out;
	snprintf(details, sizeof(details), "cid=%" PRIu64 " %s failed=%u",
	    j->cid, j->detail, a.failed);
	rc = store_audit_append(txn, j->account, j->rc == AUTH_LOGIN_OK ?
	    "auth.login" : "auth.failure", j->account, details, NULL);
out:
	if (rc != STORE_OK)
		j->rc = AUTH_LOGIN_INTERNAL;
	account_rec_wipe(&a);
	return rc;
}

static int64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Out of L.logins (a slot is free: the queue moves on). */
static void
login_unlist(struct login_job *j)
{
	struct login_job	**pp;
	int64_t			  took;

	for (pp = &L.logins; *pp != NULL; pp = &(*pp)->next)
		if (*pp == j) {
			*pp = j->next;
			L.num_logins--;
			took = mono_ms() - j->started_ms;
			if (took >= 0 && j->verified)
				L.login_ms = L.login_ms == 0 ? took :
				    (L.login_ms * 7 + took) / 8;
			break;
		}
	login_queue_run();
}

/* ERROR 7 saying until when (UTC) and who can lift the lock. */
static void
login_locked(struct conn *c, const struct login_job *j)
{
	char		 text[PROTO_TEXT_MAX + 1], when[32];
	struct tm	 tm;
	time_t		 t = (time_t)j->locked_until;

	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
		snprintf(when, sizeof(when), "later");
	snprintf(text, sizeof(text), "account locked until %s (too many "
	    "failed logins); an administrator can unlock it earlier", when);
	conn_error(c, j->frame_id, PROTO_E_LOCKED, text);
}

/* Password and code were right, the password is too old: the
 * connection may only PASSWD (ERROR 23 says so). */
static void
login_expired(struct conn *c, const struct login_job *j)
{
	char	 text[PROTO_TEXT_MAX + 1];

	c->pw_expired = 1;
	snprintf(c->account, sizeof(c->account), "%s", j->account);
	snprintf(text, sizeof(text), "password expired (older than %d "
	    "days, [policy] password_max_days): set a new one with `mica "
	    "passwd`", j->pw_max_days);
	conn_error(c, j->frame_id, PROTO_E_PW_EXPIRED, text);
}

/* Back on the loop after the commit: tell the client. */
static void
login_written(void *arg, enum store_rc rc)
{
	struct login_job	*j = arg;
	struct conn		*c = j->conn;

	login_unlist(j);
	if (rc != STORE_OK) {
		log_warnx("cid=%" PRIu64 " login account=%s: store: %s",
		    j->cid, j->account, store_strerror(rc));
		j->rc = AUTH_LOGIN_INTERNAL;
		j->detail = "store error";
	}
	if (rc == STORE_OK && j->unknown && j->rc == AUTH_LOGIN_FAILED)
		unknown_failed(j->account, j->now, &j->pol);
	if (j->unknown && j->rc == AUTH_LOGIN_LOCKED) {
		struct unknown_name *u = unknown_find(j->account);

		j->locked_until = u != NULL ? u->locked_until : j->now;
	}
	log_info("cid=%" PRIu64 " login account=%s result=%s detail=\"%s\"",
	    j->cid, j->account, j->rc == AUTH_LOGIN_OK ? "ok" : "refused",
	    j->detail);
	if (c == NULL)
		goto out;
	c->login = NULL;
	if (j->rc == AUTH_LOGIN_OK && j->pw_expired) {
		login_expired(c, j);
		goto next;
	}
	switch (j->rc) {
	case AUTH_LOGIN_OK: {
		struct wb w;

		c->authed = 1;
		c->state = CS_AUTHED;
		if (c->deadline != NULL)
			evtimer_del(c->deadline);
		snprintf(c->account, sizeof(c->account), "%s", j->account);
		wb_init(&w);
		if (proto_encode_ok(&w, j->frame_id))
			conn_send_wb(c, &w);
		else {
			wb_cleanup(&w);
			conn_close(c);
		}
		break;
	}
	case AUTH_LOGIN_FAILED:
		conn_error(c, j->frame_id, PROTO_E_AUTH_FAILED,
		    "authentication failed");
		break;
	case AUTH_LOGIN_LOCKED:
		login_locked(c, j);
		break;
	case AUTH_LOGIN_REPLAY:
		conn_error(c, j->frame_id, PROTO_E_REPLAY, "code already used; "
		    "wait for the next one");
		break;
	case AUTH_LOGIN_DISABLED:
		conn_error(c, j->frame_id, PROTO_E_DISABLED, "account disabled "
		    "by an administrator; ask them to enable it");
		break;
	default:
		conn_error(c, j->frame_id, PROTO_E_INTERNAL, "internal error");
		break;
	}
next:
	conn_resume(c);
out:
	login_job_free(j);
}

/* Back on the loop after argon2id: the attempt goes to the writer, in
 * one write transaction; the client hears after the commit. */
static void
login_done(void *arg)
{
	struct login_job	*j = arg;
	struct micad_settings	 set;
	char			 err[CA_ERR_MAX];

	if (!j->verified) {
		/* Cancelled before the worker got to it: the password was
		 * never checked, so the attempt is not counted. */
		login_unlist(j);
		log_info("cid=%" PRIu64 " login account=%s result=cancelled "
		    "detail=\"connection gone before verification, not "
		    "counted\"", j->cid, j->account);
		login_job_free(j);
		return;
	}
	/* The lock-out policy of this attempt: one copy of the settings
	 * (a SIGHUP may publish new ones meanwhile). */
	if (!micad_settings_copy(j->d, &set, err, sizeof(err))) {
		log_warnx("cid=%" PRIu64 " login: %s", j->cid, err);
		login_written(j, STORE_IO);
		return;
	}
	j->pol.max_failures = set.policy.max_failures;
	j->pol.lockout_seconds = set.policy.lockout_seconds;
	j->pol.totp_key = j->d->totp_key;
	j->pw_max_days = set.policy.password_max_days;
	j->now = (int64_t)time(NULL);
	j->unk_rc = unknown_check(j->account, j->now, &j->unk_detail);
	/* Stays in L.logins (the caps) and c->login until written. */
	if (!micad_write(j->d, login_txn, j, NULL, login_written))
		login_written(j, STORE_IO);
}

/* LOGINs in list from addr (their connections may be gone). */
static int
addr_logins(const struct login_job *list, const char *addr)
{
	const struct login_job	*j;
	int			 n = 0;

	for (j = list; j != NULL; j = j->next)
		if (strcmp(j->addr, addr) == 0)
			n++;
	return n;
}

/* [daemon] workers: the worker threads (at least 1). */
static int
num_workers(void)
{
	return L.d->conf->daemon.workers > 0 ? L.d->conf->daemon.workers : 1;
}

static int
logins_max(void)
{
	return LOGINS_PER_WORKER * num_workers();
}

/* 1 if a LOGIN from addr may go to the workers now. */
static int
login_slot_free(const char *addr)
{
	return L.dummy_ready && L.num_logins < logins_max() &&
	    addr_logins(L.logins, addr) < LOGINS_PER_ADDR;
}

/*
 * The "retry after" hint of a refused LOGIN, in seconds: the time the
 * LOGINs ahead of it need, from the measured average (at least 1 s, at
 * most 60 s).
 */
static int
login_retry_after(int ahead)
{
	int64_t	ms = L.login_ms > 0 ? L.login_ms : 1000;
	int64_t	s;

	s = (ms * (ahead + 1) / logins_max() + 999) / 1000;
	if (s < 1)
		s = 1;
	if (s > 60)
		s = 60;
	return (int)s;
}

/* Takes j out of the login queue (it is not freed). */
static void
login_dequeue(struct login_job *j)
{
	struct login_job	**pp, *prev = NULL;

	for (pp = &L.queue; *pp != NULL; prev = *pp, pp = &(*pp)->next)
		if (*pp == j) {
			*pp = j->next;
			if (L.queue_tail == j)
				L.queue_tail = prev;
			L.num_queued--;
			j->queued = 0;
			j->next = NULL;
			return;
		}
}

/* Hands j to the worker pool; 0 if the pool refused it. */
static int
login_submit(struct login_job *j)
{
	/* The dummy of now: a LOGIN queued before it was made gets the
	 * finished one, never a half-made one. */
	if (j->dummy)
		memcpy(j->hash, L.dummy_hash, AUTH_PWHASH_LEN);
	if (!workq_submit(L.d->workers, login_work, login_done, j))
		return 0;
	j->started_ms = mono_ms();
	j->next = L.logins;
	L.logins = j;
	L.num_logins++;
	return 1;
}

/* Loop: moves queued LOGINs (oldest first) to free slots. */
static void
login_queue_run(void)
{
	struct login_job	*j, *next;
	struct conn		*c;

	for (j = L.queue; L.dummy_ready && j != NULL &&
	    L.num_logins < logins_max(); j = next) {
		next = j->next;
		if (addr_logins(L.logins, j->addr) >= LOGINS_PER_ADDR)
			continue;
		login_dequeue(j);
		if (login_submit(j))
			continue;
		c = j->conn;
		log_warnx("cid=%" PRIu64 " login: worker pool refused a "
		    "queued LOGIN", j->cid);
		if (c != NULL) {
			c->login = NULL;
			conn_error(c, j->frame_id, PROTO_E_BUSY, "server busy, "
			    "retry after 1 s");
			if (c->state != CS_CLOSING && !c->out_full)
				bufferevent_enable(c->bev, EV_READ);
			/* freed by write_cb if closing */
		}
		login_job_free(j);
	}
}

/* Appends j to the login queue, or refuses it (ERROR 11): 1 if queued. */
static int
login_enqueue(struct conn *c, struct login_job *j)
{
	const struct conf_proto	*p = &L.d->conf->proto;
	char			 text[128];
	int			 mine = addr_logins(L.queue, c->addr);

	if (mine >= p->login_queue_per_address ||
	    L.num_queued >= p->login_queue_max) {
		snprintf(text, sizeof(text), "busy: login queue full (%d "
		    "waiting from your address, %d in all), retry after %d s",
		    mine, L.num_queued, login_retry_after(L.num_queued));
		log_info("cid=%" PRIu64 " addr=%s login refused: %d in "
		    "flight, %d queued (%d from the address)", c->cid, c->addr,
		    L.num_logins, L.num_queued, mine);
		conn_error(c, j->frame_id, PROTO_E_BUSY, text);
		return 0;
	}
	j->queued = 1;
	j->next = NULL;
	if (L.queue_tail != NULL)
		L.queue_tail->next = j;
	else
		L.queue = j;
	L.queue_tail = j;
	L.num_queued++;
	log_debug("cid=%" PRIu64 " addr=%s login queued: %d in flight, %d "
	    "queued", c->cid, c->addr, L.num_logins, L.num_queued);
	return 1;
}

static void
handle_login(struct conn *c, struct proto_msg *m)
{
	struct login_job	*j = NULL;
	struct pwread_ctx	 p;
	enum store_rc		 rc;

	if (c->authed) {
		conn_error(c, m->id, PROTO_E_TYPE, "already logged in");
		return;
	}
	if ((j = calloc(1, sizeof(*j))) == NULL ||
	    (j->pw = sodium_malloc(m->password_len + 1)) == NULL) {
		log_warn("cid=%" PRIu64 " login", c->cid);
		conn_error(c, m->id, PROTO_E_BUSY, "server busy");
		goto fail;
	}
	j->d = L.d;
	j->conn = c;
	atomic_init(&j->cancelled, 0);
	snprintf(j->addr, sizeof(j->addr), "%s", c->addr);
	j->cid = c->cid;
	j->frame_id = m->id;
	snprintf(j->account, sizeof(j->account), "%s", m->account);
	memcpy(j->pw, m->password, m->password_len);
	j->pw[m->password_len] = '\0';
	j->pw_len = m->password_len;
	snprintf(j->code, sizeof(j->code), "%s", m->otp);
	p.account = j->account;
	p.hash = j->hash;
	if ((rc = store_read(L.d->store, pwread_txn, &p)) != STORE_OK) {
		log_warnx("cid=%" PRIu64 " login: store: %s", c->cid,
		    store_strerror(rc));
		conn_error(c, m->id, PROTO_E_INTERNAL, "internal error");
		goto fail;
	}
	/* Unknown account: the same argon2id work against the dummy. */
	if (!p.found)
		j->dummy = 1;	/* login_submit copies the dummy hash */
	if (!login_slot_free(c->addr)) {
		if (!login_enqueue(c, j))
			goto fail;
	} else if (!login_submit(j)) {
		conn_error(c, m->id, PROTO_E_BUSY, "server busy, retry after "
		    "1 s");
		goto fail;
	}
	c->login = j;
	/* Replies stay in request order: no more frames until it is done. */
	bufferevent_disable(c->bev, EV_READ);
	return;
fail:
	login_job_free(j);
}

/* ---- PASSWD and ENROLL: the subscriber looks after the account ---- */

/*
 * One PASSWD or ENROLL: the new password is checked against the policy
 * on the loop, hashed (argon2id) on a worker, and stored by ONE write
 * transaction that re-reads the account; the client hears after the
 * commit.  conn is NULL once the connection is gone (the write still
 * commits).  Secrets live in sodium_malloc'd memory: the job itself.
 */
struct acct_job {
	struct micad	*d;
	struct conn	*conn;
	uint64_t	 cid;
	uint32_t	 frame_id;
	uint8_t		 type;			/* PROTO_PASSWD / ENROLL */
	char		 account[STORE_NAME_MAX + 1];
	char		 pw[PROTO_PASSWORD_MAX + 1];	/* the new one */
	size_t		 pw_len;
	char		 hash[AUTH_PWHASH_LEN];
	uint8_t		 code_hash[32];		/* ENROLL */
	uint8_t		 totp[AUTH_TOTP_SECRET_LEN];	/* ENROLL: new */
	uint64_t	 ops;
	size_t		 mem;
	int		 hashed;
	int64_t		 now;
	enum {
		AJ_OK = 0, AJ_GONE, AJ_CODE, AJ_INTERNAL,
	}		 result;
};

/* PASSWD and ENROLL in flight, to cap the argon2id work they queue. */
static int	num_acct_jobs;

static void
acct_job_free(struct acct_job *j)
{
	if (j == NULL)
		return;
	num_acct_jobs--;
	sodium_free(j);		/* wipes */
}

static void
acct_conn_gone(struct conn *c)
{
	if (c->ajob != NULL)
		c->ajob->conn = NULL;
}

/* Worker: the new password's argon2id hash. */
static void
acct_work(void *arg)
{
	struct acct_job	*j = arg;

	j->hashed = auth_pwhash(j->hash, j->pw, j->pw_len, j->ops, j->mem);
	sodium_memzero(j->pw, sizeof(j->pw));
}

/* The code is the account's, not used and not expired (constant time). */
static int
enrol_code_ok(const struct account_rec *a, const uint8_t hash[32],
    int64_t now)
{
	return a->enrol_expires != 0 && now < a->enrol_expires &&
	    sodium_memcmp(a->enrol_hash, hash, 32) == 0;
}

static enum store_rc
acct_txn(struct store_txn *txn, void *arg)
{
	struct acct_job		*j = arg;
	struct account_rec	 a;
	enum store_rc		 rc;
	char			 details[64];

	j->result = AJ_INTERNAL;
	rc = store_account_get(txn, j->account, &a);
	if (rc == STORE_NOTFOUND && j->type == PROTO_ENROLL) {
		j->result = AJ_CODE;
		rc = STORE_ABORT;
		goto out;
	}
	if (rc == STORE_NOTFOUND) {
		j->result = AJ_GONE;	/* removed meanwhile */
		rc = STORE_ABORT;
		goto out;
	}
	if (rc != STORE_OK)
		goto out;
	memcpy(a.pwhash, j->hash, AUTH_PWHASH_LEN);
	a.pwhash[AUTH_PWHASH_LEN - 1] = '\0';
	a.pw_changed = j->now;
	if (j->type == PROTO_ENROLL) {
		/* Single use: the check and the clearing commit together. */
		if (!enrol_code_ok(&a, j->code_hash, j->now)) {
			j->result = AJ_CODE;
			rc = STORE_ABORT;
			goto out;
		}
		if (!auth_totp_new_sealed(j->totp, j->d->totp_key, &a)) {
			rc = STORE_ABORT;
			goto out;
		}
		sodium_memzero(a.enrol_hash, sizeof(a.enrol_hash));
		a.enrol_expires = 0;
		a.failed = 0;
		a.locked_until = 0;
		a.last_totp_step = 0;
	}
	if ((rc = store_account_put(txn, &a, 0)) != STORE_OK)
		goto out;
	snprintf(details, sizeof(details), "cid=%" PRIu64, j->cid);
	rc = store_audit_append(txn, j->account, j->type == PROTO_ENROLL ?
	    "account.enrolled" : "account.password_changed", j->account,
	    details, NULL);
	if (rc == STORE_OK)
		j->result = AJ_OK;
out:
	account_rec_wipe(&a);
	return rc;
}

static void
acct_notify(struct acct_job *j)
{
	struct notify_info ni;

	memset(&ni, 0, sizeof(ni));
	ni.event = j->type == PROTO_ENROLL ? "account.enrolled" :
	    "account.password_changed";
	ni.account = j->account;
	ni.actor = j->account;
	notify_event(j->d->notify, &ni);
}

static void
acct_reply(struct conn *c, struct acct_job *j)
{
	struct proto_msg	r;

	switch (j->result) {
	case AJ_OK:
		break;
	case AJ_CODE:
		conn_error(c, j->frame_id, PROTO_E_AUTH_FAILED, "enrolment "
		    "code not valid (wrong, already used or expired): ask an "
		    "administrator for a new one");
		return;
	case AJ_GONE:
		conn_error(c, j->frame_id, PROTO_E_NOT_FOUND, "the account "
		    "was removed");
		return;
	default:
		conn_error(c, j->frame_id, PROTO_E_INTERNAL, "internal error");
		return;
	}
	if (j->type == PROTO_PASSWD) {
		/* The credentials were verified by LOGIN: with a fresh
		 * password the connection is logged in. */
		c->pw_expired = 0;
		c->authed = 1;
		c->state = CS_AUTHED;
		if (c->deadline != NULL)
			evtimer_del(c->deadline);
		proto_msg_init(&r, PROTO_OK, j->frame_id);
	} else {
		proto_msg_init(&r, PROTO_ENROLLED, j->frame_id);
		memcpy(r.totp_secret, j->totp, sizeof(j->totp));
		r.totp_secret_len = sizeof(j->totp);
	}
	conn_send(c, &r);
	proto_msg_cleanup(&r);	/* wipes the secret */
}

/* Loop, after the commit (or the abort). */
static void
acct_written(void *arg, enum store_rc rc)
{
	struct acct_job	*j = arg;
	struct conn	*c = j->conn;

	if (rc != STORE_OK && j->result == AJ_OK)
		j->result = AJ_INTERNAL;
	if (rc != STORE_OK && rc != STORE_ABORT)
		log_warnx("cid=%" PRIu64 " %s account=%s: store: %s", j->cid,
		    proto_type_name(j->type), j->account, store_strerror(rc));
	log_info("cid=%" PRIu64 " %s account=%s result=%s", j->cid,
	    proto_type_name(j->type), j->account, j->result == AJ_OK ? "ok" :
	    j->result == AJ_CODE ? "refused: enrolment code" :
	    j->result == AJ_GONE ? "refused: no account" : "failed");
	if (j->result == AJ_OK)
		acct_notify(j);
	if (c == NULL)
		goto out;
	c->ajob = NULL;
	acct_reply(c, j);
	conn_resume(c);
out:
	acct_job_free(j);
}

/* Loop, after argon2id: the change goes to the writer. */
static void
acct_hashed(void *arg)
{
	struct acct_job	*j = arg;

	if (!j->hashed) {
		j->result = AJ_INTERNAL;
		acct_written(j, STORE_IO);
		return;
	}
	j->now = (int64_t)time(NULL);
	if (!micad_write(j->d, acct_txn, j, NULL, acct_written))
		acct_written(j, STORE_IO);
}

/*
 * Checks the new password against the policy and queues its hashing.
 * Returns the job (c->ajob, reading paused) or NULL after an ERROR.
 */
static struct acct_job *
acct_start(struct conn *c, struct proto_msg *m, const char *account)
{
	struct micad_settings	 set;
	struct acct_job		*j;
	char			 why[CA_ERR_MAX];

	if (!micad_settings_copy(L.d, &set, why, sizeof(why))) {
		log_warnx("cid=%" PRIu64 " %s: %s", c->cid,
		    proto_type_name(m->type), why);
		conn_error(c, m->id, PROTO_E_INTERNAL, "internal error");
		return NULL;
	}
	if (!auth_password_check(account, m->new_password,
	    m->new_password_len, set.policy.min_password_length, why,
	    sizeof(why))) {
		log_info("cid=%" PRIu64 " %s account=%s refused: %s", c->cid,
		    proto_type_name(m->type), account, why);
		conn_error(c, m->id, PROTO_E_POLICY, why);
		return NULL;
	}
	if (num_acct_jobs >= LOGINS_PER_WORKER * num_workers()) {
		conn_error(c, m->id, PROTO_E_BUSY, "busy: too many password "
		    "changes in progress, try again later");
		return NULL;
	}
	if ((j = sodium_malloc(sizeof(*j))) == NULL) {
		conn_error(c, m->id, PROTO_E_BUSY, "server busy");
		return NULL;
	}
	memset(j, 0, sizeof(*j));
	num_acct_jobs++;
	j->d = L.d;
	j->conn = c;
	j->cid = c->cid;
	j->frame_id = m->id;
	j->type = m->type;
	snprintf(j->account, sizeof(j->account), "%s", account);
	memcpy(j->pw, m->new_password, m->new_password_len);
	j->pw_len = m->new_password_len;
	j->ops = set.policy.argon2_opslimit;
	j->mem = (size_t)set.policy.argon2_memlimit;
	return j;
}

static void
acct_submit(struct conn *c, struct acct_job *j)
{
	if (!workq_submit(L.d->workers, acct_work, acct_hashed, j)) {
		conn_error(c, j->frame_id, PROTO_E_BUSY, "server busy");
		acct_job_free(j);
		return;
	}
	c->ajob = j;
	bufferevent_disable(c->bev, EV_READ);
}

/* PASSWD: after a LOGIN (also one answered "password expired"). */
static void
handle_passwd(struct conn *c, struct proto_msg *m)
{
	struct acct_job	*j;

	if (!c->authed && !c->pw_expired) {
		conn_error(c, m->id, PROTO_E_NOT_AUTH,
		    "not authenticated: LOGIN first");
		return;
	}
	if ((j = acct_start(c, m, c->account)) != NULL)
		acct_submit(c, j);
}

struct enrol_read {
	const char	*account;
	const uint8_t	*hash;
	int64_t		 now;
	int		 ok;
};

static enum store_rc
enrol_read_txn(struct store_txn *txn, void *arg)
{
	struct enrol_read	*e = arg;
	struct account_rec	 a;
	enum store_rc		 rc;

	e->ok = 0;
	if ((rc = store_account_get(txn, e->account, &a)) == STORE_OK)
		e->ok = enrol_code_ok(&a, e->hash, e->now);
	account_rec_wipe(&a);
	return rc == STORE_NOTFOUND ? STORE_OK : rc;
}

/*
 * ENROLL: before any LOGIN.  A wrong, used or expired code (or an
 * unknown account) is refused at once, before any argon2id work; the
 * write transaction checks it again and uses it up.
 */
static void
handle_enroll(struct conn *c, struct proto_msg *m)
{
	struct enrol_read	 e;
	struct acct_job		*j;
	uint8_t			 hash[32];
	enum store_rc		 rc;

	if (c->authed || c->pw_expired) {
		conn_error(c, m->id, PROTO_E_TYPE, "ENROLL is for a "
		    "connection that has not logged in");
		return;
	}
	memset(&e, 0, sizeof(e));
	e.account = m->account;
	e.hash = hash;
	e.now = (int64_t)time(NULL);
	if (auth_enrol_code_hash(hash, m->enrol_code) &&
	    (rc = store_read(L.d->store, enrol_read_txn, &e)) != STORE_OK) {
		log_warnx("cid=%" PRIu64 " enroll: store: %s", c->cid,
		    store_strerror(rc));
		conn_error(c, m->id, PROTO_E_INTERNAL, "internal error");
		return;
	}
	if (!e.ok) {
		log_info("cid=%" PRIu64 " ENROLL account=%s result=refused: "
		    "enrolment code", c->cid, m->account);
		conn_error(c, m->id, PROTO_E_AUTH_FAILED, "enrolment code not "
		    "valid (wrong, already used or expired): ask an "
		    "administrator for a new one");
		return;
	}
	if ((j = acct_start(c, m, m->account)) == NULL)
		return;
	memcpy(j->code_hash, hash, sizeof(hash));
	acct_submit(c, j);
}

/* ---- REISSUE, WAIT, FETCH, STATUS ---- */

static uint16_t
reissue_code(enum reissue_rc rc)
{
	switch (rc) {
	case REISSUE_OK:
		return 0;
	case REISSUE_BAD_REQUEST:
	case REISSUE_NOT_PENDING:
		return PROTO_E_BAD_REQUEST;
	case REISSUE_DUPLICATE:
		return PROTO_E_DUPLICATE;
	case REISSUE_NOT_FOUND:
		return PROTO_E_NOT_FOUND;
	case REISSUE_INTERNAL:
		break;
	}
	return PROTO_E_INTERNAL;
}

/* Loop: the request is stored (or refused); ACCEPTED or ERROR. */
static void
reissue_created(void *arg, enum reissue_rc rc, uint64_t id, uint8_t state,
    const uint8_t token[REISSUE_TOKEN_LEN], const char *err)
{
	struct reissue_job	*rj = arg;
	struct conn		*c = rj->conn;
	struct proto_msg	 r;

	if (c == NULL) {
		if (rc == REISSUE_OK)
			log_info("cid=%" PRIu64 " req=%" PRIu64 " stored, "
			    "connection gone before ACCEPTED", rj->cid, id);
		goto out;
	}
	c->rjob = NULL;
	if (rc != REISSUE_OK)
		conn_error(c, rj->frame_id, reissue_code(rc),
		    rc == REISSUE_INTERNAL ? "internal error" : err);
	else {
		log_info("cid=%" PRIu64 " req=%" PRIu64 " accepted state=%s",
		    c->cid, id, proto_state_name(state));
		proto_msg_init(&r, PROTO_ACCEPTED, rj->frame_id);
		r.request = id;
		r.state = state;
		memcpy(r.token, token, PROTO_TOKEN_LEN);
		r.has_token = 1;
		conn_send(c, &r);
		sodium_memzero(r.token, sizeof(r.token));
		proto_msg_cleanup(&r);
	}
	conn_resume(c);
out:
	free(rj);
}

static void
handle_reissue(struct conn *c, struct proto_msg *m)
{
	struct reissue_job	*rj;

	if ((rj = calloc(1, sizeof(*rj))) == NULL) {
		log_warn("cid=%" PRIu64 " reissue", c->cid);
		conn_error(c, m->id, PROTO_E_BUSY, "server busy");
		return;
	}
	rj->conn = c;
	rj->cid = c->cid;
	rj->frame_id = m->id;
	/* REQUEST: the same request without a lost certificate */
	if (!reissue_create(L.d, c->account, m->type == PROTO_REQUEST ? NULL :
	    m->serial, m->csr, m->csr_len, m->reason, m->note, reissue_created,
	    rj)) {
		free(rj);
		conn_error(c, m->id, PROTO_E_INTERNAL, "internal error");
		return;
	}
	c->rjob = rj;
	/* Replies stay in request order: no more frames until it is done. */
	bufferevent_disable(c->bev, EV_READ);
}

/*
 * ISSUED carries the CA certificate (res->chain_der) and then its
 * issuers up to the root, so that the client can build the path to the
 * root it pins and write it to NEW.crt.chain.
 */
static int
add_issuers(struct proto_msg *r, STACK_OF(X509) *chain)
{
	uint8_t *der;
	size_t len;
	int i, ok;

	for (i = 1; chain != NULL && i < sk_X509_num(chain); i++) {
		if (!ca_cert_der(sk_X509_value(chain, i), &der, &len))
			return 0;
		ok = proto_msg_add_chain(r, der, len);
		free(der);
		if (!ok)
			return 0;
	}
	return 1;
}

/* Sends the decided (or current) state of a request as one frame. */
static void
send_result(struct conn *c, uint32_t frame_id,
    const struct reissue_result *res, int status_only)
{
	struct proto_msg	r;

	if (!status_only && res->state == REQ_ISSUED) {
		proto_msg_init(&r, PROTO_ISSUED, frame_id);
		r.request = res->id;
		if (!proto_msg_set_cert(&r, res->cert_der, res->cert_len) ||
		    !proto_msg_add_chain(&r, res->chain_der, res->chain_len) ||
		    !add_issuers(&r, L.d->chain)) {
			proto_msg_cleanup(&r);
			conn_error(c, frame_id, PROTO_E_INTERNAL,
			    "internal error");
			return;
		}
	} else if (!status_only && res->state == REQ_REJECTED) {
		proto_msg_init(&r, PROTO_REJECTED, frame_id);
		r.request = res->id;
		snprintf(r.text, sizeof(r.text), "%s",
		    res->why != NULL ? res->why : "");
		/* the admin's text: a TEXT field has no control characters */
		proto_text_sanitize(r.text);
	} else {
		proto_msg_init(&r, PROTO_ACCEPTED, frame_id);
		r.request = res->id;
		r.state = res->state;
	}
	log_info("cid=%" PRIu64 " req=%" PRIu64 " sent %s", c->cid, res->id,
	    proto_type_name(r.type));
	conn_send(c, &r);
	proto_msg_cleanup(&r);
}

static void
wait_fired(void *arg, const struct reissue_result *res)
{
	struct wait_ref	*w = arg, **pp;
	struct conn	*c = w->conn;

	for (pp = &c->waits; *pp != NULL; pp = &(*pp)->next)
		if (*pp == w) {
			*pp = w->next;
			break;
		}
	if (c->state != CS_CLOSING) {
		send_result(c, w->frame_id, res, 0);
		if (c->waits == NULL && c->state == CS_WAITING) {
			c->state = CS_AUTHED;
			conn_timeouts(c);
		}
	}
	free(w);
	/* A connection closing meanwhile is freed by write_cb. */
}

static void
handle_wait(struct conn *c, struct proto_msg *m)
{
	struct wait_ref		*w;
	struct reissue_result	 ack;
	enum reissue_rc		 rc;

	if ((w = calloc(1, sizeof(*w))) == NULL) {
		conn_error(c, m->id, PROTO_E_BUSY, "server busy");
		return;
	}
	w->conn = c;
	w->frame_id = m->id;
	w->req = m->request;
	/* Linked first: wait_fired may run inside reissue_wait. */
	w->next = c->waits;
	c->waits = w;
	rc = reissue_wait(L.d, c->account, m->request, wait_fired, w);
	if (rc != REISSUE_OK) {
		c->waits = w->next;
		free(w);
		conn_error(c, m->id, reissue_code(rc), rc == REISSUE_NOT_FOUND ?
		    "not found" : "internal error");
		return;
	}
	/* Still linked: registered, not decided yet.  Acknowledge. */
	if (c->waits == w) {
		log_info("cid=%" PRIu64 " req=%" PRIu64 " waiting", c->cid,
		    m->request);
		c->state = CS_WAITING;
		conn_timeouts(c);
		memset(&ack, 0, sizeof(ack));
		ack.id = m->request;
		ack.state = REQ_PENDING;
		send_result(c, m->id, &ack, 1);
	}
}

struct lookup_arg {
	struct conn	*conn;
	uint32_t	 frame_id;
	int		 status_only;
};

static void
lookup_cb(void *arg, const struct reissue_result *res)
{
	struct lookup_arg *la = arg;

	send_result(la->conn, la->frame_id, res, la->status_only);
}

static void
handle_fetch(struct conn *c, struct proto_msg *m, int status_only)
{
	struct lookup_arg	la = { c, m->id, status_only };
	enum reissue_rc		rc;

	rc = reissue_lookup(L.d, m->request, m->token, lookup_cb, &la);
	if (rc == REISSUE_OK)
		c->useful = 1;	/* shed after those that did nothing */
	else
		conn_error(c, m->id, reissue_code(rc), rc == REISSUE_NOT_FOUND ?
		    "not found" : "internal error");
}

/* ---- CHALLENGE, RENEW ---- */

/* A fresh nonce for this connection's next RENEW (replaces any other). */
static void
handle_challenge(struct conn *c, struct proto_msg *m)
{
	struct proto_msg	r;

	randombytes_buf(c->nonce, sizeof(c->nonce));
	c->has_nonce = 1;
	c->useful = 1;	/* shed after those that did nothing */
	proto_msg_init(&r, PROTO_NONCE, m->id);
	memcpy(r.nonce, c->nonce, sizeof(r.nonce));
	conn_send(c, &r);
	proto_msg_cleanup(&r);
}

/* Loop: the renewal committed (or was refused); RENEWED or ERROR. */
static void
renew_done(void *arg, uint16_t code, const char *err, const uint8_t *der,
    size_t der_len)
{
	struct renew_job	*rj = arg;
	struct conn		*c = rj->conn;
	struct proto_msg	 r;
	uint8_t			*ca_der = NULL;
	size_t			 ca_len = 0;

	if (c == NULL)
		goto out;
	c->renew = NULL;
	if (code != 0)
		conn_error(c, rj->frame_id, code, err);
	else {
		proto_msg_init(&r, PROTO_RENEWED, rj->frame_id);
		if (!ca_cert_der(ca_signer_get0_cert(L.d->signer), &ca_der,
		    &ca_len) || !proto_msg_set_cert(&r, der, der_len) ||
		    !proto_msg_add_chain(&r, ca_der, ca_len))
			conn_error(c, rj->frame_id, PROTO_E_INTERNAL,
			    "internal error (the certificate was renewed: "
			    "run mica list)");
		else
			conn_send(c, &r);
		proto_msg_cleanup(&r);
		free(ca_der);
	}
	conn_resume(c);
out:
	free(rj);
}

static void
handle_renew(struct conn *c, struct proto_msg *m)
{
	struct renew_job	*rj;
	uint8_t			 nonce[PROTO_NONCE_LEN];
	char			 err[CA_ERR_MAX];
	uint16_t		 code;

	if (!c->has_nonce) {
		conn_error(c, m->id, PROTO_E_BAD_REQUEST, "RENEW: no unused "
		    "CHALLENGE nonce on this connection: send CHALLENGE "
		    "first and sign its nonce");
		return;
	}
	/* single use, whatever the outcome */
	memcpy(nonce, c->nonce, sizeof(nonce));
	sodium_memzero(c->nonce, sizeof(c->nonce));
	c->has_nonce = 0;
	if ((rj = calloc(1, sizeof(*rj))) == NULL) {
		log_warn("cid=%" PRIu64 " renew", c->cid);
		conn_error(c, m->id, PROTO_E_BUSY, "server busy");
		return;
	}
	rj->conn = c;
	rj->cid = c->cid;
	rj->frame_id = m->id;
	if (!subrenew_start(L.d, c->cid, nonce, m->cert, m->cert_len, m->csr,
	    m->csr_len, m->sig, m->sig_len, renew_done, rj, &code, err,
	    sizeof(err))) {
		free(rj);
		conn_error(c, m->id, code, err);
		return;
	}
	c->renew = rj;
	/* Replies stay in request order: no more frames until it is done. */
	bufferevent_disable(c->bev, EV_READ);
}

/* ---- LIST ---- */

/*
 * The account's certificates for a CERTS reply: all are counted, the
 * PROTO_LIST_MAX newest (issued_at, then serial) are kept, newest first.
 * The certs database has no index by account, so this is one scan of it
 * in a read transaction, on a worker (struct list_job).
 */
struct list_ctx {
	const char		*account;
	struct proto_msg	*reply;		/* CERTS being filled */
	int64_t			 issued[PROTO_LIST_MAX];
	uint32_t		 total;
	uint32_t		 seen;		/* records read */
	int			 bad;		/* a record did not parse, or
						 * out of memory, or a stop */
};

static atomic_int	list_stopping;

/* 1 if (ia, a) is newer than (ib, b). */
static int
list_newer(int64_t ia, const uint8_t *a, int64_t ib, const uint8_t *b)
{
	if (ia != ib)
		return ia > ib;
	return memcmp(a, b, PROTO_SERIAL_LEN) > 0;
}

static int
list_cb(const struct cert_rec *rec, void *arg)
{
	static const struct proto_certinfo empty;
	struct list_ctx		*lc = arg;
	struct proto_msg	*r = lc->reply;
	struct proto_certinfo	*ci;
	const unsigned char	*p = rec->der;
	unsigned char		*q;
	X509			*x = NULL;
	size_t			 i, n = r->num_certs;
	int			 len;

	/* micad stops: the scan ends (nobody is told; at 10^6 it would
	 * hold the stop for its length) */
	if ((++lc->seen & 1023) == 0 && atomic_load(&list_stopping)) {
		lc->bad = 1;
		return 0;
	}
	if (strcmp(rec->account, lc->account) != 0)
		return 1;
	if (lc->total < UINT32_MAX)
		lc->total++;
	for (i = 0; i < n; i++)
		if (list_newer(rec->issued_at, rec->serial, lc->issued[i],
		    r->certs[i].serial))
			break;
	if (i == PROTO_LIST_MAX)
		return 1;		/* older than all we keep */
	if ((x = d2i_X509(NULL, &p, (long)rec->der_len)) == NULL ||
	    (len = i2d_X509_NAME(X509_get_subject_name(x), NULL)) < 2 ||
	    len > PROTO_SUBJECT_MAX) {
		ERR_clear_error();
		lc->bad = 1;
		goto out;
	}
	if (n < PROTO_LIST_MAX) {
		/* one more slot at the end (out of memory: fail the list) */
		if (!proto_msg_add_certinfo(r, &empty)) {
			lc->bad = 1;
			goto out;
		}
		n++;
	}
	/* shift the older ones down; the oldest falls off when full */
	memmove(&r->certs[i + 1], &r->certs[i], (n - 1 - i) * sizeof(*ci));
	memmove(&lc->issued[i + 1], &lc->issued[i],
	    (n - 1 - i) * sizeof(lc->issued[0]));
	ci = &r->certs[i];
	memset(ci, 0, sizeof(*ci));
	memcpy(ci->serial, rec->serial, PROTO_SERIAL_LEN);
	ci->status = rec->st.status;
	ci->not_before = rec->st.not_before;
	ci->not_after = rec->st.not_after;
	memcpy(ci->replaced_by, rec->replaced_by, PROTO_SERIAL_LEN);
	q = ci->subject;
	ci->subject_len = (size_t)i2d_X509_NAME(X509_get_subject_name(x), &q);
	lc->issued[i] = rec->issued_at;
 out:
	X509_free(x);
	return 1;
}

static enum store_rc
list_txn(struct store_txn *txn, void *arg)
{
	return store_cert_iter(txn, list_cb, arg);
}

/*
 * A LIST on a worker: the scan reads every certificate record (about a
 * third of a second at 10^6 here), which must not stall the loop and
 * every other subscriber with it.  At most one per worker thread in
 * flight; beyond, ERROR 11 (busy).  conn is NULL once the connection is
 * gone (the scan ends, nobody is told).
 */
struct list_job {
	struct conn		*conn;
	uint64_t		 cid;
	uint32_t		 frame_id;
	char			 account[STORE_NAME_MAX + 1];
	struct list_ctx		 lc;
	struct proto_msg	 reply;
	enum store_rc		 rc;
};

static int	num_list_jobs;

/* The connection is gone: the scan ends, nobody is told. */
static void
list_conn_gone(struct conn *c)
{
	if (c->ljob != NULL)
		c->ljob->conn = NULL;
}

static void
list_job_free(struct list_job *j)
{
	num_list_jobs--;
	proto_msg_cleanup(&j->reply);
	free(j);
}

/* Worker. */
static void
list_work(void *arg)
{
	struct list_job	*j = arg;

	j->rc = store_read(L.d->store, list_txn, &j->lc);
}

/* Loop: the reply, then the connection's next frames. */
static void
list_done(void *arg)
{
	struct list_job	*j = arg;
	struct conn	*c = j->conn;

	if (j->lc.bad && atomic_load(&list_stopping))
		log_info("cid=%" PRIu64 " account=%s list: given up at stop",
		    j->cid, j->account);
	else if (j->rc != STORE_OK || j->lc.bad)
		log_warnx("cid=%" PRIu64 " account=%s list: %s", j->cid,
		    j->account, j->rc != STORE_OK ? "store read failed" :
		    "a certificate record does not parse");
	else
		log_info("cid=%" PRIu64 " account=%s list total=%" PRIu32
		    " sent=%zu", j->cid, j->account, j->lc.total,
		    j->reply.num_certs);
	if (c == NULL)
		goto out;
	c->ljob = NULL;
	if (j->rc != STORE_OK || j->lc.bad)
		conn_error(c, j->frame_id, PROTO_E_INTERNAL, "internal error");
	else {
		j->reply.total = j->lc.total;
		conn_send(c, &j->reply);
	}
	conn_resume(c);
 out:
	list_job_free(j);
}

static void
handle_list(struct conn *c, struct proto_msg *m)
{
	struct list_job	*j;

	if (num_list_jobs >= num_workers()) {
		log_info("cid=%" PRIu64 " account=%s list refused: %d in "
		    "flight", c->cid, c->account, num_list_jobs);
		conn_error(c, m->id, PROTO_E_BUSY, "busy: too many LISTs in "
		    "progress, retry after 1 s");
		return;
	}
	if ((j = calloc(1, sizeof(*j))) == NULL) {
		log_warn("cid=%" PRIu64 " list", c->cid);
		conn_error(c, m->id, PROTO_E_BUSY, "server busy");
		return;
	}
	num_list_jobs++;
	j->conn = c;
	j->cid = c->cid;
	j->frame_id = m->id;
	snprintf(j->account, sizeof(j->account), "%s", c->account);
	proto_msg_init(&j->reply, PROTO_CERTS, m->id);
	j->lc.account = j->account;
	j->lc.reply = &j->reply;
	if (!workq_submit(L.d->workers, list_work, list_done, j)) {
		conn_error(c, m->id, PROTO_E_BUSY, "server busy");
		list_job_free(j);
		return;
	}
	c->ljob = j;
	/* Replies stay in request order: no more frames until it is done. */
	bufferevent_disable(c->bev, EV_READ);
}

static void
handle_hello(struct conn *c, struct proto_msg *m)
{
	struct proto_msg	r;
	size_t			i;
	int			ok = 0;

	for (i = 0; i < m->num_versions; i++)
		if (m->versions[i] == PROTO_VERSION)
			ok = 1;
	if (!ok) {
		conn_error(c, m->id, PROTO_E_VERSION, "no common version");
		conn_close_linger(c);
		return;
	}
	proto_msg_init(&r, PROTO_SERVER_HELLO, m->id);
	r.chosen_version = PROTO_VERSION;
	r.max_frame = L.max_frame;
	conn_send(c, &r);
	proto_msg_cleanup(&r);
	if (c->state == CS_HELLO)
		c->state = CS_READY;
}

static void
dispatch(struct conn *c, struct proto_msg *m)
{
	char refuse[512];

	log_debug("cid=%" PRIu64 " id=%" PRIu32 " got %s", c->cid, m->id,
	    proto_type_name(m->type));
	if (c->state == CS_HELLO && m->type != PROTO_HELLO) {
		conn_error(c, m->id, PROTO_E_MALFORMED, "HELLO must be first");
		conn_close_linger(c);
		return;
	}
	if (!proto_type_is_request(m->type)) {
		conn_error(c, m->id, PROTO_E_TYPE, "not a request type");
		return;
	}
	if (repl_refuse_proto(m->type, refuse, sizeof(refuse))) {
		/* not busy: a client must not retry here, but go to the
		 * primary (a LOGIN's code was not checked) */
		log_info("cid=%" PRIu64 " id=%" PRIu32 " %s refused: this "
		    "server is a standby", c->cid, m->id,
		    proto_type_name(m->type));
		conn_error(c, m->id, PROTO_E_STANDBY, refuse);
		return;
	}
	switch (m->type) {
	case PROTO_HELLO:
		if (c->state != CS_HELLO)
			conn_error(c, m->id, PROTO_E_TYPE, "HELLO again");
		else
			handle_hello(c, m);
		break;
	case PROTO_LOGIN:
		handle_login(c, m);
		break;
	case PROTO_REISSUE:
	case PROTO_REQUEST:
	case PROTO_WAIT:
		if (!c->authed) {
			conn_error(c, m->id, PROTO_E_NOT_AUTH,
			    "not authenticated: LOGIN first");
			break;
		}
		if (m->type == PROTO_REISSUE || m->type == PROTO_REQUEST)
			handle_reissue(c, m);
		else
			handle_wait(c, m);
		break;
	case PROTO_LIST:
		if (!c->authed)
			conn_error(c, m->id, PROTO_E_NOT_AUTH,
			    "not authenticated: LOGIN first");
		else
			handle_list(c, m);
		break;
	case PROTO_FETCH:
		handle_fetch(c, m, 0);
		break;
	case PROTO_CHALLENGE:
		handle_challenge(c, m);
		break;
	case PROTO_RENEW:
		handle_renew(c, m);
		break;
	case PROTO_STATUS:
		handle_fetch(c, m, 1);
		break;
	case PROTO_PASSWD:
		handle_passwd(c, m);
		break;
	case PROTO_ENROLL:
		handle_enroll(c, m);
		break;
	default:
		conn_error(c, m->id, PROTO_E_TYPE, "unknown message type");
		break;
	}
}

/*
 * A frame the codec refused can still break a conversation rule that
 * PROTOCOL.md ranks first: before HELLO any other type is ERROR 1 and the
 * connection closes (even when its fields are malformed), and a reply
 * type sent by a client is ERROR 3 whatever its fields.
 */
static void
refine_failure(const struct conn *c, struct proto_result *res,
    const uint8_t *buf, size_t len)
{
	struct rd	r;
	uint32_t	flen;
	uint8_t		version, type;

	rd_init(&r, buf, len);
	if (res->fatal || !rd_u32(&r, &flen) || !rd_u8(&r, &version) ||
	    !rd_u8(&r, &type))
		return;
	if (c->state == CS_HELLO && type != PROTO_HELLO) {
		res->code = PROTO_E_MALFORMED;
		res->fatal = 1;
		snprintf(res->text, sizeof(res->text), "HELLO must be first");
	} else if (!proto_type_is_request(type)) {
		res->code = PROTO_E_TYPE;
		snprintf(res->text, sizeof(res->text), "not a request type");
	}
}

/* Decodes and handles every complete frame in the input buffer. */
static void
process_input(struct conn *c)
{
	struct evbuffer		*in = bufferevent_get_input(c->bev);
	struct proto_result	 res;
	struct proto_msg	 m;
	enum proto_status	 st;
	const uint8_t		*buf;
	uint32_t		 cap;
	size_t			 len;

	while (c->state != CS_CLOSING && c->state != CS_HANDSHAKE &&
	    !conn_working(c) && !c->out_full &&
	    (len = evbuffer_get_length(in)) > 0) {
		if (evbuffer_get_length(bufferevent_get_output(c->bev)) >
		    OUT_HIGH) {
			/* The client does not read: stop reading it until
			 * write_cb sees the output drained to OUT_LOW. */
			c->out_full = 1;
			bufferevent_disable(c->bev, EV_READ);
			log_debug("cid=%" PRIu64 " output full, reading paused",
			    c->cid);
			break;
		}
		cap = c->authed ? L.max_frame : (L.max_frame <
		    PREAUTH_MAX_FRAME ? L.max_frame : PREAUTH_MAX_FRAME);
		if (!c->authed && c->has_nonce)
			cap = L.max_frame < RENEW_MAX_FRAME ? L.max_frame :
			    RENEW_MAX_FRAME;
		if (len > PROTO_LEN_PREFIX + (size_t)cap)
			len = PROTO_LEN_PREFIX + (size_t)cap;
		if ((buf = evbuffer_pullup(in, (ev_ssize_t)len)) == NULL) {
			conn_close(c);
			break;
		}
		memset(&res, 0, sizeof(res));
		st = proto_decode(&res, &m, buf, len, cap);
		if (st == PROTO_NEED_MORE)
			break;
		if (st == PROTO_FAIL) {
			refine_failure(c, &res, buf, len);
			conn_error(c, res.id, res.code, res.text);
			if (res.fatal || res.consumed == 0)
				conn_close_linger(c);
			else
				evbuffer_drain(in, res.consumed);
			continue;
		}
		evbuffer_drain(in, res.consumed);
		dispatch(c, &m);
		proto_msg_cleanup(&m);
	}
}

/* ---- bufferevent callbacks ---- */

static void
read_cb(struct bufferevent *bev, void *arg)
{
	struct conn	*c = arg;

	(void)bev;
	if (c->lingering) {
		if (!linger_drain(c))
			conn_free(c);
		return;
	}
	process_input(c);
	conn_settle(c);
}

/* Runs when the output drained to OUT_LOW (the write low watermark). */
static void
write_cb(struct bufferevent *bev, void *arg)
{
	struct conn	*c = arg;

	if (c->out_full && c->state != CS_CLOSING &&
	    evbuffer_get_length(bufferevent_get_output(bev)) <= OUT_LOW) {
		c->out_full = 0;
		log_debug("cid=%" PRIu64 " output drained, reading resumed",
		    c->cid);
		if (!conn_working(c))
			bufferevent_enable(bev, EV_READ);
		process_input(c);
	}
	conn_settle(c);
}

/* log_info or log_debug (the format is checked by both). */
#define log_at(lvl, ...) do {						\
	if ((lvl) == LOG_LVL_INFO)					\
		log_info(__VA_ARGS__);					\
	else								\
		log_debug(__VA_ARGS__);					\
} while (0)

static void
event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct conn	*c = arg;
	unsigned long	 e;
	char		 buf[256];
	int		 lvl;

	if (what & BEV_EVENT_CONNECTED) {
		log_debug("cid=%" PRIu64 " tls established %s", c->cid,
		    SSL_get_version(bufferevent_openssl_get_ssl(bev)));
		c->state = CS_HELLO;
		conn_timeouts(c);
		process_input(c);
		conn_settle(c);
		return;
	}
	/* A flood of connections that never log in ends here: one line a
	 * second for them, each one's details at debug. */
	if (!c->authed && (what & (BEV_EVENT_TIMEOUT | BEV_EVENT_ERROR)))
		ratelog_event(&L.rl[c->state == CS_HANDSHAKE ?
		    CA_LISTENER_HANDSHAKE_FAILED : CA_LISTENER_PRELOGIN_ERROR],
		    c->addr);
	lvl = c->authed ? LOG_LVL_INFO : LOG_LVL_DEBUG;
	if (what & BEV_EVENT_TIMEOUT)
		log_at(lvl, "cid=%" PRIu64 " timeout in state %d, closing",
		    c->cid, (int)c->state);
	else if (what & BEV_EVENT_ERROR) {
		buf[0] = '\0';
		while ((e = bufferevent_get_openssl_error(bev)) != 0)
			ERR_error_string_n(e, buf, sizeof(buf));
		log_at(lvl, "cid=%" PRIu64 " %s error: %s", c->cid,
		    c->state == CS_HANDSHAKE ? "tls handshake" : "connection",
		    buf[0] != '\0' ? buf : evutil_socket_error_to_string(
		    EVUTIL_SOCKET_ERROR()));
	} else
		log_debug("cid=%" PRIu64 " eof", c->cid);
	conn_free(c);
}

/* ---- accepting ---- */

/*
 * The connection to close for a new one, or NULL: not logged in, not
 * closing, nothing in progress (LOGIN, REISSUE, a reply being written);
 * those without an answered FETCH/STATUS first, then the address holding
 * the most connections, then the oldest.  Only the SHED_SCAN oldest are
 * looked at (a bounded cost per accept whatever max_connections is).
 */
static struct conn *
pick_victim(void)
{
	struct conn	*c, *best = NULL;
	int		 n, best_n = 0, seen = 0;

	for (c = L.conns_tail; c != NULL && seen < SHED_SCAN;
	    c = c->prev, seen++) {
		if (c->authed || c->state == CS_CLOSING || conn_working(c) ||
		    c->waits != NULL ||
		    evbuffer_get_length(bufferevent_get_output(c->bev)) > 0)
			continue;
		n = addrcount_get(L.addrs, &c->key);
		/* from the oldest: a tie keeps the older one */
		if (best == NULL || c->useful < best->useful ||
		    (c->useful == best->useful && n > best_n)) {
			best = c;
			best_n = n;
		}
	}
	return best;
}

/*
 * Closes c to make room: at once while TLS is not up, else after ERROR
 * 11 (busy), with a short deadline for the flush.
 */
static void
shed(struct conn *c)
{
	struct timeval	one = { 1, 0 };
	struct wb	w;

	log_debug("cid=%" PRIu64 " addr=%s shed in state %d", c->cid, c->addr,
	    (int)c->state);
	ratelog_event(&L.rl[CA_LISTENER_SHED], c->addr);
	if (c->state == CS_HANDSHAKE) {
		conn_free(c);
		return;
	}
	wb_init(&w);
	if (!proto_encode_error(&w, 0, PROTO_E_BUSY, "busy: too many "
	    "connections, closed to make room; try again later") ||
	    bufferevent_write(c->bev, w.data, w.len) != 0) {
		wb_cleanup(&w);
		conn_free(c);
		return;
	}
	wb_cleanup(&w);
	conn_close(c);
	bufferevent_set_timeouts(c->bev, &one, &one);
}

/* Refuses a new connection from addr: counted, logged, closed. */
static void
refuse(evutil_socket_t fd, enum ca_listener_stat st, const char *addr)
{
	ratelog_event(&L.rl[st], addr);
	evutil_closesocket(fd);
}

/* Remembers the validity of ctx's certificate (tls_watch). */
static void
tls_times_set(SSL_CTX *ctx)
{
	X509 *x = SSL_CTX_get0_certificate(ctx);

	if (x == NULL || !ca_cert_times(x, &L.tls_nb, &L.tls_na)) {
		L.tls_nb = INT64_MIN;
		L.tls_na = INT64_MAX;
	}
	L.tls_kicked = 0;
}

/*
 * At every accept: a TLS certificate outside its validity now (the clock
 * jumped) fails every handshake, so a renewal is kicked at once (at most
 * every 5 s) rather than at the next expiry check.
 */
static void
tls_watch(void)
{
	struct timespec ts;
	int64_t now = time(NULL);

	if (now >= L.tls_nb && now < L.tls_na)
		return;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	if (L.tls_kicked != 0 && ts.tv_sec - L.tls_kicked < 5)
		return;
	L.tls_kicked = ts.tv_sec > 0 ? ts.tv_sec : 1;
	log_warnx("ca protocol: the TLS certificate %s is %s: clients refuse "
	    "it; renewing", L.d->conf->ca.tls_cert, now < L.tls_nb ?
	    "not yet valid" : "expired");
	renew_kick(NULL);
}

static void
accept_cb(struct evconnlistener *lev, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	const struct conf_proto	*p = &L.d->conf->proto;
	struct conn		*c = NULL, *victim = NULL;
	SSL			*ssl = NULL;
	struct addr_key		 key;
	char			 addr[INET6_ADDRSTRLEN] = "?";
	int			 n;

	(void)lev;
	(void)salen;
	(void)arg;
	tls_watch();
	addr_key_from_sa(&key, sa);
	addr_key_str(&key, addr, sizeof(addr));
	if (addrcount_get(L.addrs, &key) >= p->max_per_address) {
		refuse(fd, CA_LISTENER_REFUSED_PER_ADDRESS, addr);
		return;
	}
	/* the open ones with this one; those closing go within a second */
	n = L.num_conns - L.num_closing + 1;
	if (L.shed_at >= 0 && n > L.shed_at)
		victim = pick_victim();
	if ((n > p->max_connections && victim == NULL) ||
	    L.num_conns >= p->max_connections + CLOSING_SLACK) {
		refuse(fd, CA_LISTENER_REFUSED_MAX_CONNECTIONS, addr);
		return;
	}
	if (victim != NULL)
		shed(victim);
	if ((c = calloc(1, sizeof(*c))) == NULL ||
	    (ssl = SSL_new(L.ctx)) == NULL) {
		log_warnx("accept addr=%s: out of memory", addr);
		goto refuse;
	}
	c->bev = bufferevent_openssl_socket_new(L.d->base, fd, ssl,
	    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		log_warnx("accept addr=%s: bufferevent", addr);
		SSL_free(ssl);
		goto refuse;
	}
	if (!addrcount_add(L.addrs, &key)) {
		/* cannot happen: sized for max_connections + slack */
		log_warnx("accept addr=%s: address table full", addr);
		bufferevent_free(c->bev);
		free(c);
		return;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
	c->cid = ++L.next_cid;
	c->state = CS_HANDSHAKE;
	c->key = key;
	snprintf(c->addr, sizeof(c->addr), "%s", addr);
	c->next = L.conns;
	if (L.conns != NULL)
		L.conns->prev = c;
	else
		L.conns_tail = c;
	L.conns = c;
	L.num_conns++;
	bufferevent_setcb(c->bev, read_cb, write_cb, event_cb, c);
	/* Never buffer more than one frame (plus its length prefix). */
	bufferevent_setwatermark(c->bev, EV_READ, 0,
	    PROTO_LEN_PREFIX + (size_t)L.max_frame);
	/* write_cb runs when the output drains to OUT_LOW (see OUT_HIGH) */
	bufferevent_setwatermark(c->bev, EV_WRITE, OUT_LOW, 0);
	conn_timeouts(c);
	{
		struct timeval lt = { L.d->conf->proto.login_timeout, 0 };

		if ((c->deadline = evtimer_new(L.d->base, deadline_cb, c)) ==
		    NULL || evtimer_add(c->deadline, &lt) != 0) {
			log_warnx("accept addr=%s: timer", addr);
			conn_free(c);
			return;
		}
	}
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	log_debug("cid=%" PRIu64 " accepted addr=%s", c->cid, addr);
	return;
refuse:
	free(c);
	evutil_closesocket(fd);
}

/*
 * A connection that has not logged in within [protocol] login_timeout of
 * being accepted is closed, however busily it trickles bytes: the idle
 * timeout alone would let a slow client hold a slot for ever.
 */
static void
deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn	*c = arg;

	(void)fd;
	(void)what;
	if (c->lingering) {	/* LINGER_MAX_S after an error: done */
		log_debug("cid=%" PRIu64 " addr=%s lingered %ds, closing",
		    c->cid, c->addr, LINGER_MAX_S);
		conn_free(c);
		return;
	}
	if (c->authed)
		return;
	if (c->login != NULL && c->login->queued) {
		char	text[128];

		/* Its password was never checked: the client may send the
		 * same LOGIN again, so tell it rather than just close. */
		login_dequeue(c->login);
		snprintf(text, sizeof(text), "busy: your LOGIN waited in the "
		    "login queue for login_timeout (%d s), retry after %d s",
		    L.d->conf->proto.login_timeout,
		    login_retry_after(L.num_queued));
		conn_error(c, c->login->frame_id, PROTO_E_BUSY, text);
		login_job_free(c->login);
		c->login = NULL;
		ratelog_event(&L.rl[CA_LISTENER_LOGIN_TIMEOUT], c->addr);
		conn_close(c);
		return;
	}
	log_debug("cid=%" PRIu64 " addr=%s not logged in within %ds, closing",
	    c->cid, c->addr, L.d->conf->proto.login_timeout);
	ratelog_event(&L.rl[CA_LISTENER_LOGIN_TIMEOUT], c->addr);
	conn_free(c);
}

/* EMFILE and friends: accepting pauses for a second (tick_cb resumes),
 * so the loop does not spin on a full backlog and the log stays short. */
static void
accept_error_cb(struct evconnlistener *lev, void *arg)
{
	(void)arg;
	log_warnx("ca protocol: accept: %s; pausing 1 s",
	    evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
	evconnlistener_disable(lev);
	L.accept_paused = 1;
}

/* Once a second: the log lines held back, accepting after a pause. */
static void
tick_cb(evutil_socket_t fd, short what, void *arg)
{
	int	i;

	(void)fd;
	(void)what;
	(void)arg;
	if (L.accept_paused && L.lev != NULL &&
	    evconnlistener_enable(L.lev) == 0)
		L.accept_paused = 0;
	for (i = 0; i < CA_LISTENER_STAT_COUNT; i++)
		ratelog_flush(&L.rl[i]);
}

uint64_t
ca_listener_stat(enum ca_listener_stat st)
{
	if ((unsigned)st >= CA_LISTENER_STAT_COUNT)
		return 0;
	return ratelog_total(&L.rl[st]);
}

/* The per-address table, the log lines and their timer. */
static int
limits_init(struct micad *d)
{
	const struct conf_proto	*p = &d->conf->proto;
	struct timeval		 one = { 1, 0 };
	char			 why[RATELOG_TEXT];

	L.shed_at = p->shed_start > 0 ? (int)((int64_t)p->max_connections *
	    p->shed_start / 100) : -1;
	if ((L.addrs = addrcount_new((size_t)p->max_connections +
	    CLOSING_SLACK)) == NULL)
		return 0;
	snprintf(why, sizeof(why), "max_connections %d", p->max_connections);
	if (!ratelog_init(&L.rl[CA_LISTENER_REFUSED_MAX_CONNECTIONS],
	    "ca protocol: refused", why))
		return 0;
	snprintf(why, sizeof(why), "max_per_address %d", p->max_per_address);
	if (!ratelog_init(&L.rl[CA_LISTENER_REFUSED_PER_ADDRESS],
	    "ca protocol: refused", why))
		return 0;
	snprintf(why, sizeof(why), "not logged in, over shed_start %d%% of "
	    "max_connections %d", p->shed_start, p->max_connections);
	if (!ratelog_init(&L.rl[CA_LISTENER_SHED], "ca protocol: shed", why))
		return 0;
	snprintf(why, sizeof(why), "TLS handshake not completed: error or "
	    "handshake_timeout %d s", p->handshake_timeout);
	if (!ratelog_init(&L.rl[CA_LISTENER_HANDSHAKE_FAILED],
	    "ca protocol: closed", why))
		return 0;
	snprintf(why, sizeof(why), "not logged in within login_timeout %d s",
	    p->login_timeout);
	if (!ratelog_init(&L.rl[CA_LISTENER_LOGIN_TIMEOUT],
	    "ca protocol: closed", why))
		return 0;
	if (!ratelog_init(&L.rl[CA_LISTENER_PRELOGIN_ERROR],
	    "ca protocol: closed", "error or timeout after the TLS handshake, "
	    "before a login"))
		return 0;
	if ((L.tick = event_new(d->base, -1, EV_PERSIST, tick_cb, NULL)) ==
	    NULL || event_add(L.tick, &one) != 0)
		return 0;
	return 1;
}

/*
 * The certificates a client needs between the TLS certificate and the
 * root it pins: the CA and its intermediates (chain is the CA first, the
 * root last; a CA that is its own root adds nothing).
 */
static int
tls_add_chain(SSL_CTX *ctx, STACK_OF(X509) *chain)
{
	int i, n = chain != NULL ? sk_X509_num(chain) : 0;

	for (i = 0; i + 1 < n; i++)
		if (SSL_CTX_add1_chain_cert(ctx, sk_X509_value(chain, i)) !=
		    1) {
			log_ssl("TLS certificate chain");
			return 0;
		}
	return 1;
}

static SSL_CTX *
tls_ctx_new(const struct mica_conf *conf, STACK_OF(X509) *chain)
{
	SSL_CTX	*ctx = NULL, *ret = NULL;

	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
		log_ssl("SSL_CTX_new");
		goto out;
	}
	/* TLS 1.3 only: a 1.2 client fails the handshake. */
	if (!SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION)) {
		log_ssl("TLS 1.3 minimum");
		goto out;
	}
	if (SSL_CTX_use_certificate_chain_file(ctx, conf->ca.tls_cert) != 1) {
		log_ssl("%s", conf->ca.tls_cert);
		goto out;
	}
	if (!tls_add_chain(ctx, chain))
		goto out;
	if (SSL_CTX_use_PrivateKey_file(ctx, conf->ca.tls_key,
	    SSL_FILETYPE_PEM) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
		log_ssl("%s", conf->ca.tls_key);
		goto out;
	}
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_num_tickets(ctx, 0);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	ret = ctx;
	ctx = NULL;
out:
	SSL_CTX_free(ctx);
	return ret;
}

int
ca_listener_reload_tls(void)
{
	SSL_CTX *ctx;

	if (L.d == NULL || L.ctx == NULL)
		return 0;
	if ((ctx = tls_ctx_new(L.d->conf, L.d->chain)) == NULL)
		return 0;
	/* Connections already open keep the old context (their SSL holds a
	 * reference); new ones get the renewed certificate. */
	SSL_CTX_free(L.ctx);
	L.ctx = ctx;
	tls_times_set(ctx);
	log_info("ca protocol: TLS certificate reloaded from %s",
	    L.d->conf->ca.tls_cert);
	return 1;
}

static int dummy_start(uint64_t, size_t, int);

int
ca_listener_start(struct micad *d)
{
	const struct conf_proto	*p = &d->conf->proto;
	struct sockaddr_storage	 ss;
	int			 sslen = sizeof(ss), rc = 0;

	if (L.lev != NULL) {
		log_warnx("ca listener already started");
		goto out;
	}
	memset(&L, 0, sizeof(L));
	L.d = d;
	L.max_frame = p->max_frame;
	if (L.max_frame < PROTO_MAX_FRAME_MIN)
		L.max_frame = PROTO_MAX_FRAME_MIN;
	if (L.max_frame > PROTO_MAX_FRAME_LIMIT)
		L.max_frame = PROTO_MAX_FRAME_LIMIT;
	if (d->reissue == NULL || d->workers == NULL || d->store == NULL) {
		log_warnx("ca listener: reissue, workers and store needed");
		goto out;
	}
	/* Unknown accounts cost the same argon2id work as known ones. */
	L.dummy_ops = L.want_ops = d->conf->policy.argon2_opslimit;
	L.dummy_mem = L.want_mem = (size_t)d->conf->policy.argon2_memlimit;
	/* Made on a worker: OCSP, CRLs and the admin socket do not wait for
	 * it; LOGINs do (queued until dummy_done). */
	if (!dummy_start(L.dummy_ops, L.dummy_mem, 1))
		goto out;
	if ((L.ctx = tls_ctx_new(d->conf, d->chain)) == NULL)
		goto out;
	if (!limits_init(d)) {
		log_warnx("ca listener: cannot set up the connection limits");
		goto out;
	}
	tls_times_set(L.ctx);
	memset(&ss, 0, sizeof(ss));
	if (evutil_parse_sockaddr_port(p->listen, (struct sockaddr *)&ss,
	    &sslen) != 0) {
		log_warnx("[protocol] listen: cannot parse \"%s\"", p->listen);
		goto out;
	}
	L.lev = evconnlistener_new_bind(d->base, accept_cb, NULL,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
	    128, (struct sockaddr *)&ss, sslen);
	if (L.lev == NULL) {
		log_warn("ca listener: bind %s", p->listen);
		goto out;
	}
	evconnlistener_set_error_cb(L.lev, accept_error_cb);
	log_info("ca protocol listening on %s (TLS 1.3)", p->listen);
	rc = 1;
out:
	if (!rc)
		ca_listener_stop();
	return rc;
}

/*
 * A new dummy hash, made by a child process (micad --argon2-dummy, see
 * ca_listener_dummy_main): argon2id cannot be interrupted, and a stop
 * must not wait for it, nor share an address space with its 256 MiB
 * (populating them holds the memory map lock other threads need).  A
 * stop kills the child.  Only the newest one asked for is taken (two
 * SIGHUPs in a row may finish in either order); the generation lives
 * outside L, so a restarted listener never takes a job of the one
 * before.  Loop thread only.
 */
struct dummy_job {
	struct dummy_job *next;
	uint64_t	gen;
	int64_t		started_ms;
	uint64_t	ops;
	size_t		mem;
	pid_t		pid;
	int		fd;		/* the child's stdout */
	struct event	*ev;
	size_t		len;
	int		ok;
	char		hash[AUTH_PWHASH_LEN];
};

#define DUMMY_NICE	10	/* the child's nice value */

static uint64_t dummy_gen;
static struct dummy_job *dummy_jobs;	/* children running */
static struct event *dummy_first;	/* the first one, from the loop */
static char dummy_exe[PATH_MAX];	/* this program, read at start */

/* Loop: logins started from now on use the new dummy. */
static void
dummy_done(struct dummy_job *j)
{
	const char		*params;

	if (L.lev == NULL)
		goto out;		/* stopped */
	if (!L.dummy_ready && !j->ok) {
		log_warnx("ca protocol: argon2id dummy hash for opslimit=%"
		    PRIu64 " memlimit=%zu failed at start; stopping", j->ops,
		    j->mem);
		kill(getpid(), SIGTERM);
		goto out;
	}
	/* superseded (two SIGHUPs); at start the older one serves until
	 * the newer is made */
	if (j->gen != dummy_gen && L.dummy_ready)
		goto out;
	if (!j->ok) {
		log_warnx("ca protocol: argon2id dummy hash for opslimit=%"
		    PRIu64 " memlimit=%zu failed; unknown accounts keep "
		    "costing opslimit=%" PRIu64 " memlimit=%zu", j->ops, j->mem,
		    L.dummy_ops, L.dummy_mem);
		/* the next SIGHUP tries again */
		L.want_ops = L.dummy_ops;
		L.want_mem = L.dummy_mem;
		goto out;
	}
	memcpy(L.dummy_hash, j->hash, sizeof(L.dummy_hash));
	L.dummy_ops = j->ops;
	L.dummy_mem = j->mem;
	if (!L.dummy_ready) {
		L.dummy_ready = 1;
		log_info("ca protocol: argon2id dummy hash made in %" PRId64
		    " ms; LOGINs are served (%d waited)",
		    mono_ms() - j->started_ms, L.num_queued);
		login_queue_run();
		goto out;
	}
	/* the parameters the hash itself carries ("$m=...,t=...,p=..."),
	 * so the log shows what a verification of it will cost */
	if ((params = strstr(L.dummy_hash, "$m=")) != NULL)
		params++;
	else
		params = "?";
	log_info("ca protocol: argon2id dummy hash recomputed opslimit=%"
	    PRIu64 " memlimit=%zu params=%.*s", j->ops, j->mem,
	    (int)strcspn(params, "$"), params);
 out:
	sodium_memzero(j->hash, sizeof(j->hash));
	free(j);
}

static void
dummy_unlink(struct dummy_job *j)
{
	struct dummy_job **pp;

	for (pp = &dummy_jobs; *pp != NULL; pp = &(*pp)->next)
		if (*pp == j) {
			*pp = j->next;
			return;
		}
}

/* Ends a child: killed (kill) or exited; 1 if it exited 0. */
static int
dummy_reap(struct dummy_job *j, int kill_it)
{
	int st = 0;

	if (j->ev != NULL)
		event_free(j->ev);
	j->ev = NULL;
	if (j->fd != -1)
		close(j->fd);
	j->fd = -1;
	if (kill_it)
		(void)kill(j->pid, SIGKILL);
	while (waitpid(j->pid, &st, 0) == -1 && errno == EINTR)
		;
	return !kill_it && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

/* Loop: the child's answer (the hash string), then its end. */
static void
dummy_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dummy_job *j = arg;
	ssize_t n;
	int exited;

	(void)what;
	n = read(fd, j->hash + j->len, sizeof(j->hash) - j->len);
	if (n == -1 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n > 0) {
		j->len += (size_t)n;
		if (j->len < sizeof(j->hash))
			return;
		n = -1;		/* too long: not a hash */
	}
	dummy_unlink(j);
	exited = dummy_reap(j, 0);
	j->ok = n == 0 && exited && j->len > 0 && j->len < sizeof(j->hash) &&
	    strncmp(j->hash, "$argon2id$", 10) == 0;
	if (j->len < sizeof(j->hash))
		j->hash[j->len] = '\0';
	dummy_done(j);
}

/* A child making a dummy hash at these limits. */
static int
dummy_spawn(uint64_t ops, size_t mem)
{
	extern char **environ;
	posix_spawn_file_actions_t fa;
	struct dummy_job *j;
	char a_ops[32], a_mem[32], a_ppid[32];
	char *argv[] = { "micad", "--argon2-dummy", a_ops, a_mem, a_ppid,
	    NULL };
	int p[2] = { -1, -1 }, e;

	if ((j = calloc(1, sizeof(*j))) == NULL) {
		log_warn("ca protocol: dummy hash");
		return 0;
	}
	j->fd = -1;
	j->gen = ++dummy_gen;
	j->started_ms = mono_ms();
	j->ops = ops;
	j->mem = mem;
	snprintf(a_ops, sizeof(a_ops), "%" PRIu64, ops);
	snprintf(a_mem, sizeof(a_mem), "%zu", mem);
	snprintf(a_ppid, sizeof(a_ppid), "%ld", (long)getpid());
	if (pipe2(p, O_CLOEXEC) == -1) {
		log_warn("ca protocol: dummy hash: pipe");
		free(j);
		return 0;
	}
	/* stdout is the pipe; stderr stays (its log lines go with ours);
	 * nothing else of ours (sockets, the store) goes to the child */
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, p[1], 1);
	posix_spawn_file_actions_addclosefrom_np(&fa, 3);
	e = posix_spawn(&j->pid, dummy_exe, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(p[1]);
	if (e != 0) {
		log_warnx("ca protocol: dummy hash: cannot run %s: %s",
		    dummy_exe, strerror(e));
		close(p[0]);
		free(j);
		return 0;
	}
	j->fd = p[0];
	if ((j->ev = event_new(L.d->base, j->fd, EV_READ | EV_PERSIST,
	    dummy_read_cb, j)) == NULL || event_add(j->ev, NULL) != 0) {
		log_warnx("ca protocol: dummy hash: cannot watch the child");
		(void)dummy_reap(j, 1);
		free(j);
		return 0;
	}
	j->next = dummy_jobs;
	dummy_jobs = j;
	return 1;
}

/* Loop, once it runs (every service is up): the first dummy. */
static void
dummy_first_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	if (!dummy_spawn(L.dummy_ops, L.dummy_mem)) {
		log_warnx("ca protocol: cannot start the argon2id dummy hash; "
		    "stopping");
		kill(getpid(), SIGTERM);
	}
}

/*
 * At start (first), the child is started from the loop once it runs, so
 * nothing of the start waits for it; later ones (SIGHUP) at once.
 */
static int
dummy_start(uint64_t ops, size_t mem, int first)
{
	ssize_t n;

	if (!first)
		return dummy_spawn(ops, mem);
	/* as root, before the drop: /proc/self/exe is ours to read */
	if ((n = readlink("/proc/self/exe", dummy_exe,
	    sizeof(dummy_exe) - 1)) <= 0) {
		log_warn("ca protocol: dummy hash: /proc/self/exe");
		return 0;
	}
	dummy_exe[n] = '\0';
	if (dummy_first == NULL &&
	    (dummy_first = event_new(L.d->base, -1, 0, dummy_first_cb,
	    NULL)) == NULL) {
		log_warnx("ca protocol: dummy hash: cannot make the event");
		return 0;
	}
	event_active(dummy_first, EV_READ, 0);
	return 1;
}

/* At stop: a dummy still being made is not waited for: its child is
 * killed. */
static void
dummy_stop(void)
{
	struct dummy_job *j;
	int n = 0;

	if (dummy_first != NULL)
		event_free(dummy_first);
	dummy_first = NULL;
	while ((j = dummy_jobs) != NULL) {
		dummy_jobs = j->next;
		(void)dummy_reap(j, 1);
		sodium_memzero(j->hash, sizeof(j->hash));
		free(j);
		n++;
	}
	if (n > 0)
		log_info("ca protocol: %d argon2id dummy hash(es) still being "
		    "made at stop: not waited for", n);
}

/*
 * micad --argon2-dummy OPS MEM PPID: the child's side.  Prints the hash
 * of a random password; dies with its parent.
 */
int
ca_listener_dummy_main(int argc, char **argv)
{
	char out[AUTH_PWHASH_LEN];
	unsigned long long ops, mem;
	long ppid;
	size_t len, off = 0;
	ssize_t w;
	char *end;

	if (argc != 5)
		return 2;
	(void)prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	/* a second of CPU right after a start, when the responder answers
	 * its first requests on the same cores: those go first (LOGINs
	 * wait for this hash anyway) */
	(void)setpriority(PRIO_PROCESS, 0, DUMMY_NICE);
	ops = strtoull(argv[2], &end, 10);
	if (*end != '\0')
		return 2;
	mem = strtoull(argv[3], &end, 10);
	if (*end != '\0')
		return 2;
	ppid = strtol(argv[4], &end, 10);
	if (*end != '\0' || (long)getppid() != ppid)
		return 1;	/* the parent is gone already */
	if (sodium_init() < 0 || !auth_dummy_hash(out, (uint64_t)ops,
	    (size_t)mem))
		return 1;
	len = strnlen(out, sizeof(out));
	while (off < len) {
		if ((w = write(1, out + off, len - off)) <= 0) {
			if (w == -1 && errno == EINTR)
				continue;
			return 1;
		}
		off += (size_t)w;
	}
	sodium_memzero(out, sizeof(out));
	return 0;
}

int
ca_listener_set_argon2(uint64_t ops, size_t mem)
{
	int	rc = 0;

	if (L.lev == NULL || (ops == L.want_ops && mem == L.want_mem)) {
		rc = 1;
		goto out;
	}
	if (!dummy_start(ops, mem, 0))
		goto out;
	L.want_ops = ops;
	L.want_mem = mem;
	log_info("ca protocol: argon2id limits changed: recomputing the "
	    "dummy hash for opslimit=%" PRIu64 " memlimit=%zu", ops, mem);
	rc = 1;
 out:
	return rc;
}

void
ca_listener_stop(void)
{
	int	i;

	if (L.lev != NULL)
		evconnlistener_free(L.lev);
	L.lev = NULL;
	atomic_store(&list_stopping, 1);
	while (L.conns != NULL)
		conn_free(L.conns);
	if (L.tick != NULL)
		event_free(L.tick);
	L.tick = NULL;
	for (i = 0; i < CA_LISTENER_STAT_COUNT; i++)
		ratelog_cleanup(&L.rl[i]);
	addrcount_free(L.addrs);
	L.addrs = NULL;
	SSL_CTX_free(L.ctx);
	L.ctx = NULL;
	sodium_memzero(L.dummy_hash, sizeof(L.dummy_hash));
	dummy_stop();
}
