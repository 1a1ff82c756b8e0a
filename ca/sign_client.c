/*
 * sign_client.c - the network side of the signer process (see
 * sign_client.h).
 */
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <linux/futex.h>
#include <sys/syscall.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "ca/ca.h"
#include "ca/sign_client.h"
#include "ca/sign_policy.h"
#include "ca/sign_proc.h"
#include "ca/sign_proto.h"
#include "common/bytes.h"
#include "common/log.h"
#include "common/rsign.h"
#include "common/sigmd.h"

#define RBUF		(128 * 1024)
#define NSTANDIN	4
#define OCSP_BATCH_MAX	SIGN_BATCH_MAX	/* OCSP requests in one write */
#define OCSP_BATCH_BYTES (64 * 1024)	/* their bytes (one may be more) */
#define OCHAN_RBUF	(16 * 1024)
#define ACHAN_MAX	64	/* event-loop channels (HTTP threads) */
#define ACHAN_QMAX	512	/* requests waiting on one of them */

/* struct ojob's st */
#define OJ_IDLE		0	/* nothing new */
#define OJ_SLEEP	1	/* its thread sleeps on st */
#define OJ_KICK		2	/* look again (a channel is free, or lost) */
#define OJ_DONE		3	/* finished: ok/err/sig_len are set */

struct pend {
	uint32_t	 id;
	int		 done;
	uint16_t	 type;
	uint8_t		*body;
	size_t		 len;
	pthread_cond_t	 cv;
	struct pend	*next;
};

/* One OCSP signature asked for (on the caller's stack). */
struct ojob {
	const uint8_t	*tbs;
	size_t		 len;
	uint8_t		*sig;		/* the caller's buffer */
	size_t		 sig_cap, sig_len;
	int		 sent;		/* in a batch: its sender finishes it */
	int		 st;		/* OJ_*, atomic: the futex word */
	int		 ok;
	int		 refused;	/* err is the signer's reason */
	char		 err[1024];
	struct ojob	*next;
};

/* An OCSP channel (sign_proc.h): used by one sender at a time. */
struct ochan {
	int		 fd;
	struct wb	 w;		/* the batch's frames */
	uint8_t		*rbuf;
	size_t		 rlen, rcap;
};

/* One request on an event-loop channel (struct rsign_chan). */
struct areq {
	const uint8_t	*tbs;
	size_t		 len;
	void		*cookie;	/* NULL: dropped (aborted) */
};

/*
 * An event-loop channel: used by one thread only, no lock.  q is a ring
 * of the requests waiting; out[0..nout) the batch at the signer (ids
 * base..base+nout-1).
 */
struct achan {
	struct rsign_chan base;		/* first: the rsign_chan pointer */
	struct sign_client *sc;
	int		 fd;
	struct areq	 q[ACHAN_QMAX];
	size_t		 qhead, qlen;
	struct areq	 out[OCSP_BATCH_MAX];
	uint8_t		 answered[OCSP_BATCH_MAX];
	int		 nout, nleft;
	uint32_t	 next_id, out_base;
	int		 broken;
	struct wb	 w;
	uint8_t		*rbuf;
	size_t		 rlen, rcap;
};

struct sign_client {
	int		 fd;
	pid_t		 pid;
	X509		*ca;
	pthread_t	 thr;		/* the watchdog */
	int		 thr_started;
	pthread_mutex_t	 mu;		/* pending, next_id, lost, reading */
	int		 reading;	/* a caller is the reader now */
	uint8_t		*rbuf;		/* the reader's (one at a time) */
	size_t		 rlen, rcap;
	pthread_mutex_t	 wmu;		/* writes to fd */
	struct pend	*pending;
	uint32_t	 next_id;
	int		 lost, closing;
	void		(*lost_fn)(void *);
	void		*lost_arg;
	struct rsign	 rs;
	/* OCSP batches: the queue and the free channels */
	pthread_mutex_t	 omu;		/* all of these */
	struct ojob	*oq, **oq_tail;
	struct ochan	 och[SIGN_OCSP_CHANS];
	struct ochan	*ofree[SIGN_OCSP_CHANS];
	int		 nofree;
	int		 nchan;		/* channels in use */
	uint32_t	 onext_id;
	int		 olost;
	pthread_mutex_t	 smu;		/* stand-ins, ca_alg */
	EVP_PKEY	*standin[NSTANDIN];
	/* the AlgorithmIdentifier the CA key's signatures carry, learnt
	 * once from a stand-in (sign_client_der) */
	X509_ALGOR	*ca_alg;
	uint8_t		*ca_alg_der;
	size_t		 ca_alg_len;
	/* the HELLO answer, read once (sign_client_ready) */
	pthread_mutex_t	 hmu;
	int		 hello_state;	/* 0 not read, 1 ok, -1 failed */
	char		 hello_info[1024];
	char		 hello_err[1024];
	/* the CA key's signatures are checked by sign_client_der's own
	 * EVP_DigestVerify (not an RSA-PSS key, whose parameters only
	 * X509_verify reads) */
	int		 der_check;
	EVP_MD_CTX	*vtmpl;		/* DigestVerify initialised with the CA
					 * key, copied per check; NULL: init
					 * each time (EdDSA) */
	/* event-loop channels, one per HTTP thread */
	struct achan	*ach;
	int		 nach;
};

static int
write_all(int fd, const uint8_t *p, size_t len)
{
	ssize_t w;

	while (len > 0) {
		w = send(fd, p, len, MSG_NOSIGNAL);
		if (w == -1 && errno == EINTR)
			continue;
		if (w <= 0)
			return 0;
		p += w;
		len -= (size_t)w;
	}
	return 1;
}

/* Reads exactly one frame (blocking), before the receiver runs. */
static int
read_frame(int fd, struct sign_frame *f, uint8_t **out_buf, char *err,
    size_t err_len)
{
	uint8_t *buf = NULL, *nb;
	size_t cap = SIGN_HDR_LEN, len = 0, used = 0;
	enum sign_parse_rc prc;
	ssize_t n;

	if ((buf = malloc(cap)) == NULL)
		fatal("malloc");
	for (;;) {
		prc = sign_frame_parse(f, &used, buf, len, err, err_len);
		if (prc == SIGN_PARSE_OK)
			break;
		if (prc == SIGN_PARSE_BAD)
			goto fail;
		if (used > cap) {
			if ((nb = realloc(buf, used)) == NULL)
				fatal("realloc");
			buf = nb;
			cap = used;
		}
		n = read(fd, buf + len, cap - len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			snprintf(err, err_len, "the signer process exited "
			    "before answering");
			goto fail;
		}
		len += (size_t)n;
	}
	*out_buf = buf;
	return 1;
 fail:
	free(buf);
	return 0;
}

/*
 * The wake-ups of OCSP jobs: a futex word per job instead of a condition
 * variable under the queue's lock, so a thread woken for its signature
 * never wakes only to wait for the lock the waker still holds (each of
 * those is one more context switch).  A job's thread returns as soon as
 * it sees OJ_DONE: whoever sets it touches nothing of the job after the
 * exchange but the futex address (a stray wake-up is harmless).
 */
static void
futex_wake1(int *w)
{
	(void)syscall(SYS_futex, w, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

/* Sleeps until st changes from OJ_IDLE; a kick sent before counts. */
static void
ojob_wait(struct ojob *j)
{
	int v = OJ_IDLE;

	if (__atomic_compare_exchange_n(&j->st, &v, OJ_SLEEP, 0,
	    __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		while (__atomic_load_n(&j->st, __ATOMIC_ACQUIRE) == OJ_SLEEP)
			(void)syscall(SYS_futex, &j->st, FUTEX_WAIT_PRIVATE,
			    OJ_SLEEP, NULL, NULL, 0);
	v = OJ_KICK;
	(void)__atomic_compare_exchange_n(&j->st, &v, OJ_IDLE, 0,
	    __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}

/* Called with omu held, j still queued (not done): look again. */
static void
ojob_kick(struct ojob *j)
{
	if (__atomic_exchange_n(&j->st, OJ_KICK, __ATOMIC_ACQ_REL) ==
	    OJ_SLEEP)
		futex_wake1(&j->st);
}

/* The result is set: j's thread may return from here on. */
static void
ojob_done(struct ojob *j)
{
	if (__atomic_exchange_n(&j->st, OJ_DONE, __ATOMIC_ACQ_REL) ==
	    OJ_SLEEP)
		futex_wake1(&j->st);
}

static void
mark_lost(struct sign_client *sc)
{
	struct ojob *j;
	struct pend *p;
	int tell;

	pthread_mutex_lock(&sc->mu);
	tell = !sc->lost && !sc->closing;
	sc->lost = 1;
	for (p = sc->pending; p != NULL; p = p->next)
		pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&sc->mu);
	pthread_mutex_lock(&sc->omu);
	sc->olost = 1;
	for (j = sc->oq; j != NULL; j = j->next)
		ojob_kick(j);
	pthread_mutex_unlock(&sc->omu);
	if (tell) {
		log_warnx("the signer process (pid %ld) is gone: no "
		    "certificate, CRL or OCSP response can be signed; "
		    "stopping", (long)sc->pid);
		if (sc->lost_fn != NULL)
			sc->lost_fn(sc->lost_arg);
	}
}

/* Hands one reply to its waiter; 0 when nobody asked for that id. */
static int
deliver(struct sign_client *sc, const struct sign_frame *f)
{
	struct pend *p;
	int found = 0;

	pthread_mutex_lock(&sc->mu);
	for (p = sc->pending; p != NULL; p = p->next)
		if (p->id == f->id && !p->done)
			break;
	if (p != NULL && (f->type == SIGN_R_OK || f->type == SIGN_R_ERR)) {
		if ((p->body = malloc(f->body_len + 1)) == NULL)
			fatal("malloc");
		if (f->body_len > 0)
			memcpy(p->body, f->body, f->body_len);
		p->body[f->body_len] = '\0';
		p->len = f->body_len;
		p->type = f->type;
		p->done = 1;
		pthread_cond_signal(&p->cv);
		found = 1;
	}
	pthread_mutex_unlock(&sc->mu);
	return found;
}

/*
 * One read by the caller that holds the reader role: every complete
 * reply in the buffer goes to its waiter.  0 on EOF or a bad reply.
 */
static int
read_step(struct sign_client *sc)
{
	struct sign_frame f;
	enum sign_parse_rc prc;
	size_t off = 0, used = 0;
	uint8_t *nb;
	char err[256];
	ssize_t n;

	n = read(sc->fd, sc->rbuf + sc->rlen, sc->rcap - sc->rlen);
	if (n == -1 && errno == EINTR)
		return 1;
	if (n <= 0)
		return 0;
	sc->rlen += (size_t)n;
	while ((prc = sign_frame_parse(&f, &used, sc->rbuf + off,
	    sc->rlen - off, err, sizeof(err))) == SIGN_PARSE_OK) {
		if (!deliver(sc, &f)) {
			log_warnx("signer: a reply for no request (id %u)",
			    (unsigned)f.id);
			return 0;
		}
		off += used;
	}
	if (prc == SIGN_PARSE_BAD) {
		log_warnx("signer: malformed reply: %s", err);
		return 0;
	}
	memmove(sc->rbuf, sc->rbuf + off, sc->rlen - off);
	sc->rlen -= off;
	if (used > sc->rcap) {
		if ((nb = realloc(sc->rbuf, used)) == NULL)
			fatal("realloc");
		sc->rbuf = nb;
		sc->rcap = used;
	}
	return 1;
}

/*
 * Notices the signer's death while nobody waits for a reply: poll with
 * no events wakes only for POLLHUP/POLLERR (the peer closed, or our own
 * shutdown in sign_client_free).
 */
static void *
watchdog(void *arg)
{
	struct sign_client *sc = arg;
	struct pollfd pfd;

	pfd.fd = sc->fd;
	pfd.events = 0;
	for (;;) {
		pfd.revents = 0;
		if (poll(&pfd, 1, -1) == -1 && errno == EINTR)
			continue;
		if (pfd.revents & (POLLHUP | POLLERR | POLLNVAL))
			break;
	}
	mark_lost(sc);
	return NULL;
}

int
sign_client_call(struct sign_client *sc, uint16_t type, const void *body,
    size_t body_len, uint8_t **out, size_t *out_len, char *err,
    size_t err_len)
{
	struct pend p, **pp, *q;
	struct wb w;
	int rc = 0, sent, ok;

	*out = NULL;
	*out_len = 0;
	/* the first call may come before the HELLO answer was read */
	if (!sign_client_ready(sc, NULL, 0, err, err_len))
		return 0;
	memset(&p, 0, sizeof(p));
	pthread_cond_init(&p.cv, NULL);
	wb_init(&w);
	pthread_mutex_lock(&sc->mu);
	if (sc->lost) {
		pthread_mutex_unlock(&sc->mu);
		snprintf(err, err_len, "the signer process is gone");
		goto out;
	}
	p.id = ++sc->next_id;
	p.next = sc->pending;
	sc->pending = &p;
	pthread_mutex_unlock(&sc->mu);

	if (!sign_frame_encode(&w, type, p.id, body, body_len) || !wb_ok(&w))
		fatalx("signer request of %zu bytes: over the limit",
		    body_len);
	pthread_mutex_lock(&sc->wmu);
	sent = write_all(sc->fd, w.data, w.len);
	pthread_mutex_unlock(&sc->wmu);

	/*
	 * Leader/follower: the first waiter reads for everyone and hands
	 * each reply to its waiter; when its own has come it passes the
	 * role on.  A reply read by its own waiter costs no thread switch.
	 */
	pthread_mutex_lock(&sc->mu);
	while (sent && !p.done && !sc->lost) {
		if (sc->reading) {
			pthread_cond_wait(&p.cv, &sc->mu);
			continue;
		}
		sc->reading = 1;
		pthread_mutex_unlock(&sc->mu);
		ok = read_step(sc);
		if (!ok)
			mark_lost(sc);
		pthread_mutex_lock(&sc->mu);
		sc->reading = 0;
	}
	for (pp = &sc->pending; *pp != NULL; pp = &(*pp)->next)
		if (*pp == &p) {
			*pp = p.next;
			break;
		}
	/* someone still waiting takes over the reading */
	for (q = sc->pending; q != NULL; q = q->next)
		if (!q->done) {
			pthread_cond_signal(&q->cv);
			break;
		}
	pthread_mutex_unlock(&sc->mu);
	if (!p.done)
		snprintf(err, err_len, "the signer process is gone");
	else if (p.type != SIGN_R_OK)
		snprintf(err, err_len, "signer refused: %s", (char *)p.body);
	else {
		*out = p.body;
		*out_len = p.len;
		p.body = NULL;
		rc = 1;
	}
 out:
	free(p.body);
	pthread_cond_destroy(&p.cv);
	wb_cleanup(&w);
	return rc;
}

/*
 * OCSP signatures, batched.  A thread that needs one queues a job; if a
 * channel is free it becomes the sender: it takes every queued job (up
 * to OCSP_BATCH_MAX jobs, OCSP_BATCH_BYTES bytes), writes their frames
 * back to back in one write, reads the replies (the signer answers the
 * frames of one read with one write), hands each signature to its job
 * and wakes the jobs' threads.  Jobs queued meanwhile wait for the next
 * free channel: under load one round trip to the signer carries many
 * signatures, with one light load it is one request and one reply, as
 * before.  The signature is written straight into the caller's buffer.
 */
/* Sets the result (not yet told: ojob_done). */
static void
ojob_finish(struct ojob *j, int ok, const char *why, size_t why_len)
{
	j->ok = ok;
	if (!ok)
		snprintf(j->err, sizeof(j->err), "%.*s", (int)why_len, why);
	j->sig_len = ok ? j->sig_len : 0;
}


/* Reads the replies of the batch b[0..n) (ids base..base+n-1); 0 when
 * the channel is broken (EOF, a malformed or unexpected reply). */
static int
ochan_read(struct ochan *ch, struct ojob **b, int n, uint32_t base,
    uint8_t *answered)
{
	struct sign_frame f[OCSP_BATCH_MAX];
	enum sign_parse_rc prc;
	size_t used = 0, got, i;
	uint8_t *nb;
	char err[256];
	int left = n;
	uint32_t k;
	ssize_t r;

	ch->rlen = 0;
	while (left > 0) {
		prc = sign_batch_parse(f, (size_t)left, &got, &used, 0,
		    ch->rbuf, ch->rlen, err, sizeof(err));
		if (prc == SIGN_PARSE_BAD) {
			log_warnx("signer: malformed reply: %s", err);
			return 0;
		}
		if (prc == SIGN_PARSE_SHORT) {
			if (used > ch->rcap) {
				if ((nb = realloc(ch->rbuf, used)) == NULL)
					fatal("realloc");
				ch->rbuf = nb;
				ch->rcap = used;
			}
			r = read(ch->fd, ch->rbuf + ch->rlen, ch->rcap -
			    ch->rlen);
			if (r == -1 && errno == EINTR)
				continue;
			if (r <= 0)
				return 0;
			ch->rlen += (size_t)r;
			continue;
		}
		for (i = 0; i < got; i++) {
			k = f[i].id - base;
			if (k >= (uint32_t)n || answered[k]) {
				log_warnx("signer: an OCSP reply for no "
				    "request (id %u)", (unsigned)f[i].id);
				return 0;
			}
			answered[k] = 1;
			if (f[i].type == SIGN_R_ERR) {
				b[k]->refused = 1;
				ojob_finish(b[k], 0, (const char *)f[i].body,
				    f[i].body_len);
			} else if (!rsign_len_ok("signer", f[i].body_len,
			    b[k]->sig_cap)) {
				ojob_finish(b[k], 0, "bad signature length",
				    20);
			} else {
				memcpy(b[k]->sig, f[i].body, f[i].body_len);
				b[k]->sig_len = f[i].body_len;
				ojob_finish(b[k], 1, NULL, 0);
			}
			left--;
		}
		memmove(ch->rbuf, ch->rbuf + used, ch->rlen - used);
		ch->rlen -= used;
	}
	if (ch->rlen != 0) {
		log_warnx("signer: %zu bytes after the last OCSP reply",
		    ch->rlen);
		return 0;
	}
	return 1;
}

/*
 * Called with omu held, a channel free and jobs queued: sends one batch
 * and waits for its replies (omu released meanwhile, held again on
 * return).  me is the caller's job (maybe not in this batch).
 */
static void
osend(struct sign_client *sc, struct ojob *me)
{
	struct ojob *b[OCSP_BATCH_MAX], *j;
	uint8_t answered[OCSP_BATCH_MAX];
	struct ochan *ch;
	size_t bytes = 0;
	uint32_t base;
	int n = 0, i, ok, mine = -1;

	ch = sc->ofree[--sc->nofree];
	while ((j = sc->oq) != NULL && n < OCSP_BATCH_MAX &&
	    (n == 0 || bytes + j->len <= OCSP_BATCH_BYTES)) {
		if ((sc->oq = j->next) == NULL)
			sc->oq_tail = &sc->oq;
		j->sent = 1;
		bytes += j->len;
		if (j == me)
			mine = n;
		b[n++] = j;
	}
	base = sc->onext_id;
	sc->onext_id += (uint32_t)n;
	/* more waiting and another channel free: its sender starts now */
	if (sc->oq != NULL && sc->nofree > 0)
		ojob_kick(sc->oq);
	pthread_mutex_unlock(&sc->omu);

	memset(answered, 0, sizeof(answered));
	ch->w.len = 0;
	for (i = 0; i < n; i++)
		if (!sign_frame_encode(&ch->w, SIGN_T_OCSP, base + (uint32_t)i,
		    b[i]->tbs, b[i]->len))
			fatalx("signer request of %zu bytes: over the limit",
			    b[i]->len);
	if (!wb_ok(&ch->w))
		fatalx("signer: out of memory");
	ok = write_all(ch->fd, ch->w.data, ch->w.len) &&
	    ochan_read(ch, b, n, base, answered);
	if (ch->w.cap > 4 * OCSP_BATCH_BYTES) {
		wb_cleanup(&ch->w);
		wb_init(&ch->w);
	}
	if (!ok)
		mark_lost(sc);	/* before the jobs go: later ones fail */
	/* the channel is free again before the jobs are told */
	pthread_mutex_lock(&sc->omu);
	if (ok)
		sc->ofree[sc->nofree++] = ch;	/* a broken one is dropped */
	/* the next batch: the oldest waiting job sends it */
	if (sc->oq != NULL && sc->nofree > 0)
		ojob_kick(sc->oq);
	pthread_mutex_unlock(&sc->omu);
	for (i = 0; i < n; i++) {
		if (!ok && !answered[i])
			ojob_finish(b[i], 0, "the signer process is gone", 26);
		if (i != mine)
			ojob_done(b[i]);
	}
	if (mine != -1)
		__atomic_store_n(&me->st, OJ_DONE, __ATOMIC_RELEASE);
	pthread_mutex_lock(&sc->omu);
}

static int
ocsp_sign(struct sign_client *sc, const uint8_t *tbs, size_t tbs_len,
    uint8_t *sig, size_t sig_cap, size_t *out_sig_len, char *err,
    size_t err_len)
{
	struct ojob j, **pp;

	memset(&j, 0, sizeof(j));
	j.tbs = tbs;
	j.len = tbs_len;
	j.sig = sig;
	j.sig_cap = sig_cap;
	pthread_mutex_lock(&sc->omu);
	*sc->oq_tail = &j;
	sc->oq_tail = &j.next;
	while (__atomic_load_n(&j.st, __ATOMIC_ACQUIRE) != OJ_DONE) {
		if (j.sent) {
			/* in a batch: its sender tells */
			pthread_mutex_unlock(&sc->omu);
			while (__atomic_load_n(&j.st, __ATOMIC_ACQUIRE) !=
			    OJ_DONE)
				ojob_wait(&j);
			pthread_mutex_lock(&sc->omu);
			break;
		}
		if (sc->olost) {
			/* out of the queue: nobody will send it */
			for (pp = &sc->oq; *pp != &j; pp = &(*pp)->next)
				;
			if ((*pp = j.next) == NULL)
				sc->oq_tail = pp;
			ojob_finish(&j, 0, "the signer process is gone", 26);
			break;
		}
		if (sc->nofree > 0) {
			osend(sc, &j);
			continue;
		}
		pthread_mutex_unlock(&sc->omu);
		ojob_wait(&j);
		pthread_mutex_lock(&sc->omu);
	}
	pthread_mutex_unlock(&sc->omu);
	if (!j.ok) {
		snprintf(err, err_len, "%s%s", j.refused ? "signer refused: " :
		    "", j.err);
		return 0;
	}
	*out_sig_len = j.sig_len;
	return 1;
}

/*
 * Event-loop channels (common/rsign.h): one per HTTP thread, used from
 * its libevent loop.  The thread queues the ResponseData of each answer
 * that needs a signature; when no batch is out it writes every queued
 * one (at most OCSP_BATCH_MAX, about OCSP_BATCH_BYTES) back to back in
 * one write; when the last reply of the batch is in, the next batch
 * leaves.  So the signer sees a batch per round trip however many
 * connections wait, and the HTTP thread never sleeps on the signer: it
 * serves other connections (cached answers too) meanwhile.  The write
 * blocks only while the socket buffer is full, and it is written to
 * only when the signer's channel thread has answered everything sent,
 * so that thread is reading.  A full queue (ACHAN_QMAX) refuses: the
 * HTTP side answers 503.
 */
static void
achan_fail(struct achan *ch, rsign_done_fn done)
{
	struct areq r;
	int i;

	for (i = 0; i < ch->nout; i++) {
		if (ch->answered[i] || ch->out[i].cookie == NULL)
			continue;
		ch->answered[i] = 1;
		done(ch->out[i].cookie, NULL, 0);
	}
	ch->nout = ch->nleft = 0;
	while (ch->qlen > 0) {
		r = ch->q[ch->qhead];
		ch->qhead = (ch->qhead + 1) % ACHAN_QMAX;
		ch->qlen--;
		done(r.cookie, NULL, 0);
	}
}

/* The channel is unusable: the signer is treated as gone (micad
 * stops), every request fails. */
static void
achan_broken(struct achan *ch, rsign_done_fn done)
{
	ch->broken = 1;
	mark_lost(ch->sc);
	achan_fail(ch, done);
}

static int
achan_fd(const struct rsign_chan *rc)
{
	return ((const struct achan *)rc)->fd;
}

static int
achan_submit(struct rsign_chan *rc, const uint8_t *tbs, size_t tbs_len,
    void *cookie)
{
	struct achan *ch = (struct achan *)rc;
	struct areq *r;

	if (ch->broken || ch->qlen >= ACHAN_QMAX ||
	    tbs_len > SIGN_OCSP_MAX)
		return 0;
	r = &ch->q[(ch->qhead + ch->qlen) % ACHAN_QMAX];
	r->tbs = tbs;
	r->len = tbs_len;
	r->cookie = cookie;
	ch->qlen++;
	return 1;
}

static void
achan_flush(struct rsign_chan *rc, rsign_done_fn done)
{
	struct achan *ch = (struct achan *)rc;
	size_t bytes = 0;
	struct areq *r;
	int n = 0;

	if (ch->broken || ch->nout > 0 || ch->qlen == 0)
		return;
	ch->w.len = 0;
	ch->out_base = ch->next_id;
	while (ch->qlen > 0 && n < OCSP_BATCH_MAX) {
		r = &ch->q[ch->qhead];
		if (n > 0 && bytes + r->len > OCSP_BATCH_BYTES)
			break;
		if (!sign_frame_encode(&ch->w, SIGN_T_OCSP, ch->next_id++,
		    r->tbs, r->len))
			fatalx("signer request of %zu bytes: over the limit",
			    r->len);
		bytes += r->len;
		ch->out[n] = *r;
		ch->answered[n] = 0;
		n++;
		ch->qhead = (ch->qhead + 1) % ACHAN_QMAX;
		ch->qlen--;
	}
	ch->nout = ch->nleft = n;
	if (!wb_ok(&ch->w))
		fatalx("signer: out of memory");
	if (!write_all(ch->fd, ch->w.data, ch->w.len)) {
		log_warnx("signer: OCSP channel: write failed");
		achan_broken(ch, done);
		return;
	}
	if (ch->w.cap > 4 * OCSP_BATCH_BYTES) {
		wb_cleanup(&ch->w);
		wb_init(&ch->w);
	}
}

/* A reply read, kept until the next batch has left (achan_input). */
struct areply {
	void		*cookie;
	const uint8_t	*sig;		/* in ch->rbuf; NULL: refused */
	size_t		 len;
};

static void
areplies_deliver(const struct areply *d, int n, rsign_done_fn done)
{
	int i;

	for (i = 0; i < n; i++)
		done(d[i].cookie, d[i].sig, d[i].len);
}

/*
 * The replies read so far.  When they complete the batch, the requests
 * that queued meanwhile leave as the next batch first, and only then are
 * the answers finished and sent: the signer signs the next batch while
 * this thread sends the last one's answers (one after the other, either
 * side waited for the other).
 */
static void
achan_input(struct rsign_chan *rc, rsign_done_fn done)
{
	struct achan *ch = (struct achan *)rc;
	struct areply d[OCSP_BATCH_MAX];
	struct sign_frame f;
	enum sign_parse_rc prc;
	size_t off = 0, used = 0;
	uint32_t k;
	uint8_t *nb;
	char err[256];
	ssize_t r;
	int nd = 0;

	if (ch->broken)
		return;
	r = recv(ch->fd, ch->rbuf + ch->rlen, ch->rcap - ch->rlen,
	    MSG_DONTWAIT);
	if (r == -1 && (errno == EINTR || errno == EAGAIN ||
	    errno == EWOULDBLOCK))
		return;
	if (r <= 0) {
		if (r == -1)
			log_warn("signer: OCSP channel: read");
		achan_broken(ch, done);
		return;
	}
	ch->rlen += (size_t)r;
	while ((prc = sign_frame_parse(&f, &used, ch->rbuf + off,
	    ch->rlen - off, err, sizeof(err))) == SIGN_PARSE_OK) {
		k = f.id - ch->out_base;
		if (k >= (uint32_t)ch->nout || ch->answered[k] ||
		    (f.type != SIGN_R_OK && f.type != SIGN_R_ERR)) {
			log_warnx("signer: an OCSP reply for no request "
			    "(id %u)", (unsigned)f.id);
			areplies_deliver(d, nd, done);
			achan_broken(ch, done);
			return;
		}
		ch->answered[k] = 1;
		ch->nleft--;
		off += used;
		if (ch->out[k].cookie == NULL)
			continue;	/* aborted */
		d[nd].cookie = ch->out[k].cookie;
		d[nd].sig = NULL;
		d[nd].len = 0;
		if (f.type == SIGN_R_ERR)
			log_warnx("ocsp: signer refused: %.*s",
			    (int)f.body_len, (const char *)f.body);
		else {
			d[nd].sig = f.body;
			d[nd].len = f.body_len;
		}
		nd++;
	}
	if (prc == SIGN_PARSE_BAD) {
		log_warnx("signer: malformed OCSP reply: %s", err);
		areplies_deliver(d, nd, done);
		achan_broken(ch, done);
		return;
	}
	if (ch->nleft == 0) {
		if (ch->rlen != off) {
			log_warnx("signer: %zu bytes after the last OCSP "
			    "reply", ch->rlen - off);
			areplies_deliver(d, nd, done);
			achan_broken(ch, done);
			return;
		}
		ch->nout = 0;
		/* the next batch (what queued meanwhile) leaves now; a done
		 * callback may queue more (submit touches only the queue),
		 * which the caller flushes after this batch */
		achan_flush(rc, done);
	}
	/* the replies point into rbuf: finished before it moves */
	areplies_deliver(d, nd, done);
	memmove(ch->rbuf, ch->rbuf + off, ch->rlen - off);
	ch->rlen -= off;
	if (used > ch->rcap) {
		if ((nb = realloc(ch->rbuf, used)) == NULL)
			fatal("realloc");
		ch->rbuf = nb;
		ch->rcap = used;
	}
}

static void
achan_abort(struct rsign_chan *rc, rsign_done_fn done)
{
	struct achan *ch = (struct achan *)rc;
	struct areq r;
	int i;

	/* a batch that is out keeps its ids: its replies are dropped */
	for (i = 0; i < ch->nout; i++) {
		if (ch->answered[i] || ch->out[i].cookie == NULL)
			continue;
		done(ch->out[i].cookie, NULL, 0);
		ch->out[i].cookie = NULL;
	}
	while (ch->qlen > 0) {
		r = ch->q[ch->qhead];
		ch->qhead = (ch->qhead + 1) % ACHAN_QMAX;
		ch->qlen--;
		done(r.cookie, NULL, 0);
	}
}

static const struct rsign_chan_ops achan_ops = {
	achan_fd, achan_submit, achan_flush, achan_input, achan_abort
};

static struct rsign_chan *
rsign_chan_cb(void *arg, int idx)
{
	struct sign_client *sc = arg;

	if (idx < 0 || idx >= sc->nach)
		return NULL;
	return &sc->ach[idx].base;
}

static int
rsign_cb(void *arg, enum rsign_kind kind, const uint8_t *tbs, size_t tbs_len,
    uint8_t *sig, size_t sig_cap, size_t *out_sig_len)
{
	uint8_t *r = NULL;
	size_t rlen = 0;
	char err[SIGN_SMALL_MAX];
	int rc = 0;

	if (kind == RSIGN_OCSP) {
		if (!ocsp_sign(arg, tbs, tbs_len, sig, sig_cap, out_sig_len,
		    err, sizeof(err))) {
			log_warnx("ocsp: %s", err);
			return 0;
		}
		return 1;
	}
	if (!sign_client_call(arg, SIGN_T_CRL, tbs, tbs_len, &r, &rlen, err,
	    sizeof(err))) {
		log_warnx("crl: %s", err);
		goto out;
	}
	if (!rsign_len_ok("signer", rlen, sig_cap))
		goto out;
	memcpy(sig, r, rlen);
	*out_sig_len = rlen;
	rc = 1;
 out:
	free(r);
	return rc;
}

const struct rsign *
sign_client_rsign(struct sign_client *sc)
{
	return &sc->rs;
}

EVP_PKEY *
sign_client_standin(struct sign_client *sc, X509 *cert)
{
	EVP_PKEY *pub = X509_get0_pubkey(cert), *k = NULL;
	char group[64] = "";
	int i;

	if (pub == NULL)
		return NULL;
	pthread_mutex_lock(&sc->smu);
	for (i = 0; i < NSTANDIN && sc->standin[i] != NULL; i++)
		if (EVP_PKEY_get_base_id(sc->standin[i]) ==
		    EVP_PKEY_get_base_id(pub) &&
		    EVP_PKEY_get_bits(sc->standin[i]) ==
		    EVP_PKEY_get_bits(pub) &&
		    sigmd_get(sc->standin[i]) == sigmd_get(pub)) {
			k = sc->standin[i];
			goto out;
		}
	if (i == NSTANDIN)
		goto out;
	if (EVP_PKEY_is_a(pub, "RSA"))
		k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA",
		    (size_t)EVP_PKEY_get_bits(pub));
	else if (EVP_PKEY_is_a(pub, "EC") && EVP_PKEY_get_group_name(pub,
	    group, sizeof(group), NULL) == 1)
		k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", group);
	else if (EVP_PKEY_is_a(pub, "ED25519"))
		k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	if (k == NULL)
		log_ssl("signer: stand-in key");
	sc->standin[i] = k;
 out:
	pthread_mutex_unlock(&sc->smu);
	return k;
}

/* The signed certificate must be the one sent, signed by the CA. */
static int
same_cert(const struct sign_client *sc, X509 *sent, X509 *got)
{
	return X509_cmp(sent, got) != 0 &&	/* signature differs */
	    ASN1_INTEGER_cmp(X509_get0_serialNumber(sent),
	    X509_get0_serialNumber(got)) == 0 &&
	    X509_NAME_cmp(X509_get_subject_name(sent),
	    X509_get_subject_name(got)) == 0 &&
	    EVP_PKEY_eq(X509_get0_pubkey(sent), X509_get0_pubkey(got)) == 1 &&
	    X509_verify(got, X509_get0_pubkey(sc->ca)) == 1;
}

int
sign_client_cert(void *arg, X509 **x, int ocsp_renewal, char *err,
    size_t err_len)
{
	struct sign_client *sc = arg;
	EVP_PKEY *si;
	unsigned char *der = NULL;
	const unsigned char *p;
	uint8_t *r = NULL;
	size_t rlen = 0;
	X509 *got = NULL;
	int n, rc = 0;

	if ((si = sign_client_standin(sc, sc->ca)) == NULL ||
	    X509_sign(*x, si, sigmd_get(si)) <= 0 ||
	    (n = i2d_X509(*x, &der)) <= 0) {
		log_ssl("signer: preparing the certificate");
		snprintf(err, err_len, "preparing the certificate failed");
		goto out;
	}
	if (!sign_client_call(sc, ocsp_renewal ? SIGN_T_OCSP_CERT :
	    SIGN_T_CERT, der, (size_t)n, &r, &rlen, err, err_len))
		goto out;
	p = r;
	if ((got = d2i_X509(NULL, &p, (long)rlen)) == NULL ||
	    p != r + rlen || !same_cert(sc, *x, got)) {
		snprintf(err, err_len, "the signer's certificate is not the "
		    "one asked for");
		goto out;
	}
	X509_free(*x);
	*x = got;
	got = NULL;
	rc = 1;
 out:
	ERR_clear_error();
	X509_free(got);
	OPENSSL_free(der);
	free(r);
	return rc;
}

/* 1 if sig is the CA key's signature over tbs. */
static int
ca_sig_ok(const struct sign_client *sc, const struct sign_cert_spans *c)
{
	EVP_PKEY *pub = X509_get0_pubkey(sc->ca);
	EVP_MD_CTX *m = NULL;
	int ok;

	ok = pub != NULL && (m = EVP_MD_CTX_new()) != NULL &&
	    ((sc->vtmpl != NULL && EVP_MD_CTX_copy_ex(m, sc->vtmpl) == 1) ||
	    EVP_DigestVerifyInit(m, NULL, sigmd_get(pub), NULL, pub) == 1) &&
	    EVP_DigestVerify(m, c->sig, c->sig_len, c->tbs, c->tbs_len) == 1;
	EVP_MD_CTX_free(m);
	return ok;
}

/* The CA key's DigestVerify context to copy, when it can be copied. */
static void
vtmpl_set(struct sign_client *sc)
{
	EVP_PKEY *pub = X509_get0_pubkey(sc->ca);
	EVP_MD_CTX *m = NULL, *t = NULL;

	if (pub == NULL || (t = EVP_MD_CTX_new()) == NULL ||
	    (m = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestVerifyInit(t, NULL, sigmd_get(pub), NULL, pub) != 1 ||
	    EVP_MD_CTX_copy_ex(m, t) != 1) {
		/* EdDSA contexts cannot be copied: initialised each time */
		EVP_MD_CTX_free(t);
		t = NULL;
	}
	EVP_MD_CTX_free(m);
	ERR_clear_error();
	sc->vtmpl = t;
}

/* 1 if ca_sig_ok checks this CA key's signatures as X509_verify does. */
static int
der_checkable(EVP_PKEY *pub)
{
	return pub != NULL && (EVP_PKEY_is_a(pub, "EC") ||
	    EVP_PKEY_is_a(pub, "RSA") || EVP_PKEY_is_a(pub, "ED25519") ||
	    EVP_PKEY_is_a(pub, "ED448"));
}

/* sign_client_der for a key sign_client_der cannot check itself: the
 * certificate decoded and compared (sign_client_cert). */
static int
der_by_cert(struct sign_client *sc, X509 *x, uint8_t **out_der,
    size_t *out_len, char *err, size_t err_len)
{
	X509 *y = x;
	int rc = 0;

	if (!X509_up_ref(x))
		fatalx("X509_up_ref");
	if (!sign_client_cert(sc, &y, 0, err, err_len))
		goto out;
	if (!ca_cert_der(y, out_der, out_len)) {
		snprintf(err, err_len, "encoding the certificate failed");
		goto out;
	}
	rc = 1;
 out:
	X509_free(y);
	return rc;
}

/*
 * The CA key's AlgorithmIdentifier, learnt once: a throw-away
 * certificate signed with a stand-in of the CA key's type.  1 or 0.
 */
static int
learn_ca_alg(struct sign_client *sc)
{
	X509 *x = NULL;
	EVP_PKEY *si;
	unsigned char *der = NULL;
	int n, rc = 0;

	pthread_mutex_lock(&sc->smu);
	if (sc->ca_alg != NULL) {
		rc = 1;
		goto out;
	}
	pthread_mutex_unlock(&sc->smu);
	si = sign_client_standin(sc, sc->ca);
	pthread_mutex_lock(&sc->smu);
	if (sc->ca_alg != NULL) {
		rc = 1;
		goto out;
	}
	if (si == NULL || (x = X509_new()) == NULL ||
	    !X509_set_pubkey(x, X509_get0_pubkey(sc->ca)) ||
	    X509_sign(x, si, sigmd_get(si)) <= 0 ||
	    (n = i2d_X509_ALGOR(X509_get0_tbs_sigalg(x), &der)) <= 0 ||
	    (sc->ca_alg = X509_ALGOR_dup(X509_get0_tbs_sigalg(x))) == NULL) {
		log_ssl("signer: the CA key's signature algorithm");
		goto out;
	}
	sc->ca_alg_der = der;
	sc->ca_alg_len = (size_t)n;
	der = NULL;
	rc = 1;
 out:
	pthread_mutex_unlock(&sc->smu);
	OPENSSL_free(der);
	X509_free(x);
	return rc;
}

/*
 * What is sent for x: x's TBSCertificate with the CA key's signature
 * algorithm, in a Certificate whose signature is one zero byte (the
 * signer never reads it; it signs the TBS).  *out malloc'd.  1 or 0.
 */
static int
cert_unsigned(struct sign_client *sc, X509 *x, uint8_t **out,
    size_t *out_len)
{
	static const uint8_t nosig[1] = { 0 };
	unsigned char *tbs = NULL;
	int n, rc = 0;

	if (!learn_ca_alg(sc))
		return 0;
	/* OpenSSL 3.0 has no setter for the TBS's signature field but
	 * X509_sign; the field is x's own, written before re-encoding */
	if (X509_ALGOR_copy((X509_ALGOR *)X509_get0_tbs_sigalg(x),
	    sc->ca_alg) != 1 || (n = i2d_re_X509_tbs(x, &tbs)) <= 0)
		goto out;
	if (!sign_cert_build(out, out_len, tbs, (size_t)n, sc->ca_alg_der,
	    sc->ca_alg_len, nosig, sizeof(nosig)))
		goto out;
	rc = 1;
 out:
	OPENSSL_free(tbs);
	return rc;
}

int
sign_client_der(void *arg, X509 *x, uint8_t **out_der, size_t *out_len,
    char *err, size_t err_len)
{
	struct sign_client *sc = arg;
	struct sign_cert_spans sent, got;
	uint8_t *der = NULL, *r = NULL;
	size_t n = 0, rlen = 0;
	int rc = 0;

	if (!sc->der_check)
		return der_by_cert(sc, x, out_der, out_len, err, err_len);
	if (!cert_unsigned(sc, x, &der, &n) ||
	    !sign_cert_spans(&sent, der, n)) {
		log_ssl("signer: preparing the certificate");
		snprintf(err, err_len, "preparing the certificate failed");
		goto out;
	}
	if (!sign_client_call(sc, SIGN_T_CERT, der, n, &r, &rlen, err,
	    err_len))
		goto out;
	/* what was sent, byte for byte, and the CA's signature over it:
	 * the certificate asked for, without decoding it again (decoding
	 * its key costs OpenSSL 3 more than the signature check) */
	if (!sign_cert_spans(&got, r, rlen) || got.tbs_len != sent.tbs_len ||
	    memcmp(got.tbs, sent.tbs, sent.tbs_len) != 0 ||
	    got.alg_len != sent.alg_len ||
	    memcmp(got.alg, sent.alg, sent.alg_len) != 0 ||
	    !ca_sig_ok(sc, &got)) {
		snprintf(err, err_len, "the signer's certificate is not the "
		    "one asked for");
		goto out;
	}
	*out_der = r;
	*out_len = rlen;
	r = NULL;
	rc = 1;
 out:
	ERR_clear_error();
	free(der);
	free(r);
	return rc;
}

EVP_PKEY *
sign_client_ocsp_newkey(struct sign_client *sc, char *err, size_t err_len)
{
	uint8_t *r = NULL;
	size_t rlen = 0;
	const unsigned char *p;
	EVP_PKEY *k = NULL;

	if (!sign_client_call(sc, SIGN_T_OCSP_NEWKEY, NULL, 0, &r, &rlen, err,
	    err_len))
		goto out;
	p = r;
	if ((k = d2i_PUBKEY(NULL, &p, (long)rlen)) == NULL ||
	    p != r + rlen) {
		EVP_PKEY_free(k);
		k = NULL;
		snprintf(err, err_len, "the signer's new key does not decode");
	}
 out:
	ERR_clear_error();
	free(r);
	return k;
}

int
sign_client_ocsp_commit(struct sign_client *sc, char *err, size_t err_len)
{
	uint8_t *r = NULL;
	size_t rlen = 0;
	int rc;

	rc = sign_client_call(sc, SIGN_T_OCSP_COMMIT, NULL, 0, &r, &rlen, err,
	    err_len);
	free(r);
	return rc;
}

/* Asks for the HELLO answer (read by hello_read); a few bytes into an
 * empty socket: never blocks. */
static int
hello_send(struct sign_client *sc, char *err, size_t err_len)
{
	struct wb w;
	int rc = 0;

	wb_init(&w);
	(void)sign_frame_encode(&w, SIGN_T_HELLO, 0, NULL, 0);
	if (!wb_ok(&w) || !write_all(sc->fd, w.data, w.len)) {
		snprintf(err, err_len, "the signer process exited at start");
		goto out;
	}
	rc = 1;
 out:
	wb_cleanup(&w);
	return rc;
}

/* Waits for the HELLO answer: the keys loaded (info) or why not. */
static int
hello_read(struct sign_client *sc, char *info, size_t info_len, char *err,
    size_t err_len)
{
	struct sign_frame f;
	uint8_t *buf = NULL;
	int rc = 0;

	if (!read_frame(sc->fd, &f, &buf, err, err_len))
		goto out;
	if (f.type != SIGN_R_OK) {
		snprintf(err, err_len, "%.*s", (int)f.body_len,
		    (const char *)f.body);
		goto out;
	}
	snprintf(info, info_len, "%.*s", (int)f.body_len,
	    (const char *)f.body);
	rc = 1;
 out:
	free(buf);
	return rc;
}

/*
 * How many OCSP channels (signer threads): one per CPU, at most two for
 * an EC or Ed25519 key, whose signature (tens of microseconds) costs
 * less than a thread wake-up here (fewer channels batch more), at most
 * SIGN_OCSP_CHANS for an RSA key (a millisecond or more a signature:
 * made in parallel).  One channel was measured too: a little less CPU
 * per answer, but at 16 connections requests seldom overlap, and a
 * request that waits for the busy channel costs its thread one more
 * wake-up (docs/SIGNER.md).
 */
static int
ocsp_chans(const struct mica_conf *c, X509 *ca)
{
	X509 *x = NULL;
	EVP_PKEY *k;
	char err[256];
	long ncpu;
	int max = 2;

	if (c->ca.ocsp_cert[0] != '\0' &&
	    !ca_cert_read(&x, c->ca.ocsp_cert, err, sizeof(err)))
		return 1;	/* the signer says why at HELLO */
	k = X509_get0_pubkey(x != NULL ? x : ca);
	if (k != NULL && EVP_PKEY_is_a(k, "RSA"))
		max = SIGN_OCSP_CHANS;
	X509_free(x);
	ERR_clear_error();
	ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	return ncpu < 1 ? 1 : ncpu > max ? max : (int)ncpu;
}

struct sign_client *
sign_client_start(const struct mica_conf *c, const struct privdrop *pd,
    char *info, size_t info_len, char *err, size_t err_len)
{
	struct sign_client *sc;

	if ((sc = sign_client_spawn(c, pd, err, err_len)) == NULL)
		return NULL;
	if (!sign_client_ready(sc, info, info_len, err, err_len)) {
		sign_client_free(sc);
		return NULL;
	}
	return sc;
}

int
sign_client_ready(struct sign_client *sc, char *info, size_t info_len,
    char *err, size_t err_len)
{
	int status, rc;

	pthread_mutex_lock(&sc->hmu);
	if (sc->hello_state == 0) {
		if (hello_read(sc, sc->hello_info, sizeof(sc->hello_info),
		    sc->hello_err, sizeof(sc->hello_err))) {
			sc->hello_state = 1;
			/* from now on the watchdog tells a lost signer */
			if (pthread_create(&sc->thr, NULL, watchdog, sc) != 0)
				fatalx("cannot start the signer watchdog");
			sc->thr_started = 1;
		} else {
			sc->hello_state = -1;
			/* it exits after saying why: reaped here, not lost */
			(void)shutdown(sc->fd, SHUT_RDWR);
			while (waitpid(sc->pid, &status, 0) == -1 &&
			    errno == EINTR)
				;
			sc->pid = -1;
		}
	}
	rc = sc->hello_state == 1;
	if (info != NULL)
		snprintf(info, info_len, "%s", rc ? sc->hello_info : "");
	if (!rc)
		snprintf(err, err_len, "%s", sc->hello_err);
	pthread_mutex_unlock(&sc->hmu);
	return rc;
}

struct sign_client *
sign_client_spawn(const struct mica_conf *c, const struct privdrop *pd,
    char *err, size_t err_len)
{
	struct sign_client *sc;
	int sv[2], (*cv)[2] = NULL, *child = NULL, i, ntot;

	if ((sc = calloc(1, sizeof(*sc))) == NULL)
		fatal("calloc");
	sc->fd = -1;
	for (i = 0; i < SIGN_OCSP_CHANS; i++) {
		sc->och[i].fd = -1;
		wb_init(&sc->och[i].w);
	}
	sc->oq_tail = &sc->oq;
	pthread_mutex_init(&sc->omu, NULL);
	pthread_mutex_init(&sc->mu, NULL);
	pthread_mutex_init(&sc->wmu, NULL);
	pthread_mutex_init(&sc->smu, NULL);
	pthread_mutex_init(&sc->hmu, NULL);
	sc->rs.sign = rsign_cb;
	sc->rs.chan = rsign_chan_cb;
	sc->rs.arg = sc;
	if (!ca_cert_read(&sc->ca, c->ca.cert, err, err_len))
		goto fail;
	sc->der_check = der_checkable(X509_get0_pubkey(sc->ca));
	vtmpl_set(sc);
	sc->nchan = ocsp_chans(c, sc->ca);
	/* one event-loop channel per HTTP thread (docs/SIGNER.md) */
	sc->nach = c->http.threads < 0 ? 0 : c->http.threads > ACHAN_MAX ?
	    ACHAN_MAX : c->http.threads;
	if (sc->nach > 0 && (sc->ach = calloc((size_t)sc->nach,
	    sizeof(*sc->ach))) == NULL)
		fatal("calloc");
	for (i = 0; i < sc->nach; i++) {
		sc->ach[i].fd = -1;
		wb_init(&sc->ach[i].w);
	}
	ntot = sc->nchan + sc->nach;
	if ((cv = calloc((size_t)ntot, sizeof(*cv))) == NULL ||
	    (child = calloc((size_t)ntot, sizeof(*child))) == NULL)
		fatal("calloc");
	for (i = 0; i < ntot; i++)
		cv[i][0] = cv[i][1] = -1;
	for (i = 0; i < ntot; i++)
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
		    cv[i]) != 0) {
			snprintf(err, err_len, "socketpair: %s",
			    strerror(errno));
			goto fail;
		}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
		snprintf(err, err_len, "socketpair: %s", strerror(errno));
		goto fail;
	}
	fflush(stdout);
	fflush(stderr);
	if ((sc->pid = fork()) == -1) {
		snprintf(err, err_len, "fork: %s", strerror(errno));
		close(sv[0]);
		close(sv[1]);
		goto fail;
	}
	if (sc->pid == 0) {
		close(sv[0]);
		for (i = 0; i < ntot; i++) {
			close(cv[i][0]);
			child[i] = cv[i][1];
		}
		/* the network side's client is not the signer's: freed, so
		 * the signer exits without leaks (valgrind follows forks) */
		free(cv);
		EVP_MD_CTX_free(sc->vtmpl);
		X509_free(sc->ca);
		free(sc->ach);
		free(sc);
		sign_proc_main(sv[1], child, ntot, c, pd);
	}
	close(sv[1]);
	sc->fd = sv[0];
	for (i = 0; i < ntot; i++) {
		close(cv[i][1]);
		cv[i][1] = -1;
	}
	for (i = 0; i < sc->nchan; i++) {
		sc->och[i].fd = cv[i][0];
		cv[i][0] = -1;
		if ((sc->och[i].rbuf = malloc(OCHAN_RBUF)) == NULL)
			fatal("malloc");
		sc->och[i].rcap = OCHAN_RBUF;
		sc->ofree[i] = &sc->och[i];
	}
	sc->nofree = sc->nchan;
	for (i = 0; i < sc->nach; i++) {
		sc->ach[i].base.ops = &achan_ops;
		sc->ach[i].sc = sc;
		sc->ach[i].fd = cv[sc->nchan + i][0];
		cv[sc->nchan + i][0] = -1;
		if ((sc->ach[i].rbuf = malloc(OCHAN_RBUF)) == NULL)
			fatal("malloc");
		sc->ach[i].rcap = OCHAN_RBUF;
	}
	free(cv);
	cv = NULL;
	free(child);
	child = NULL;
	if ((sc->rbuf = malloc(RBUF)) == NULL)
		fatal("malloc");
	sc->rcap = RBUF;
	if (!hello_send(sc, err, err_len))
		goto fail;
	return sc;
 fail:
	for (i = 0; cv != NULL && i < sc->nchan + sc->nach; i++) {
		if (cv[i][0] != -1)
			close(cv[i][0]);
		if (cv[i][1] != -1)
			close(cv[i][1]);
	}
	free(cv);
	free(child);
	sign_client_free(sc);
	return NULL;
}

void
sign_client_on_lost(struct sign_client *sc, void (*fn)(void *), void *arg)
{
	pthread_mutex_lock(&sc->mu);
	sc->lost_fn = fn;
	sc->lost_arg = arg;
	pthread_mutex_unlock(&sc->mu);
}

pid_t
sign_client_pid(const struct sign_client *sc)
{
	return sc->pid;
}

void
sign_client_free(struct sign_client *sc)
{
	int i, status;

	if (sc == NULL)
		return;
	pthread_mutex_lock(&sc->mu);
	sc->closing = 1;
	pthread_mutex_unlock(&sc->mu);
	if (sc->fd != -1)
		(void)shutdown(sc->fd, SHUT_RDWR);
	if (sc->thr_started)
		pthread_join(sc->thr, NULL);
	if (sc->fd != -1) {
		close(sc->fd);
		while (sc->pid > 0 && waitpid(sc->pid, &status, 0) == -1 &&
		    errno == EINTR)
			;
	}
	for (i = 0; i < SIGN_OCSP_CHANS; i++) {
		if (sc->och[i].fd != -1)
			close(sc->och[i].fd);
		wb_cleanup(&sc->och[i].w);
		free(sc->och[i].rbuf);
	}
	for (i = 0; i < sc->nach; i++) {
		if (sc->ach[i].fd != -1)
			close(sc->ach[i].fd);
		wb_cleanup(&sc->ach[i].w);
		free(sc->ach[i].rbuf);
	}
	free(sc->ach);
	for (i = 0; i < NSTANDIN; i++)
		EVP_PKEY_free(sc->standin[i]);
	X509_ALGOR_free(sc->ca_alg);
	OPENSSL_free(sc->ca_alg_der);
	EVP_MD_CTX_free(sc->vtmpl);
	X509_free(sc->ca);
	free(sc->rbuf);
	pthread_mutex_destroy(&sc->mu);
	pthread_mutex_destroy(&sc->wmu);
	pthread_mutex_destroy(&sc->smu);
	pthread_mutex_destroy(&sc->omu);
	pthread_mutex_destroy(&sc->hmu);
	free(sc);
}
