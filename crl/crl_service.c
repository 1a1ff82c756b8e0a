/*
 * crl_service.c - keeps the CRLs current: events from the store, a delta
 * CRL on every change (before the change is acknowledged), a full CRL on
 * a schedule ([crl] full_interval and mica-admin crl), snapshots for the
 * HTTP threads, atomic files in the publish directory.
 *
 * The delta's base (RFC 5280 5.2.4).  A delta with BaseCRLNumber B
 * applies to every complete CRL numbered B or more.  Relying parties and
 * HTTP caches keep a full CRL until its nextUpdate, so the base is the
 * OLDEST published full CRL that one of them may still hold: its
 * nextUpdate has not passed by more than CRL_SKEW (a relying party whose
 * clock is behind still takes it as valid), and the delta lists every
 * revocation, hold, reason change and release since it.  Then any
 * still-valid full CRL plus the current delta shows every change.  The
 * published full CRLs (number, event seq, nextUpdate) are kept in
 * fulls[], oldest first; the oldest drops out once it has expired.
 *
 * Across a restart the list is lost but relying parties keep their full
 * CRLs, so every full build also records in the store (meta crl_base_*)
 * the oldest full CRL still valid and the latest nextUpdate of all of
 * them.  At start that record becomes one entry standing for every full
 * CRL published before (a delta with its base applies to all of them,
 * whose numbers are higher) until the last of them expires.  Taking the
 * full CRL built at start as the base would be simpler, but every
 * relying party holding an earlier, still-valid full CRL could apply no
 * delta until it fetched a new one: the bug this design removes.  The
 * record is written before the full CRL is signed, so a crash can only
 * leave a record that is older (a bigger delta), never a newer one.
 *
 * Locks (never taken in the reverse order):
 *   full_mu / delta_mu  serialize full builds / delta builds
 *   state_mu            the builder and fulls[]; held to apply events,
 *                       take a CRL number and encode a TBS (a memcpy),
 *                       never to sign
 *   pub_mu              the current snapshots (a pointer swap)
 *   file_mu             the publish directory
 *   sched_mu            the schedule of the thread
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "common/hwm.h"
#include "common/log.h"
#include "store/store.h"
#include "crl/crl.h"
#include "crl/crl_int.h"

#define DEF_FULL_INTERVAL	3600
#define DEF_DELTA_MAX_AGE	60
#define CRL_SKEW		300	/* s a full CRL stays a delta base
					 * after its nextUpdate */
#define NUMBER_KEY		"crl_number"
#define BASE_NUMBER_KEY		"crl_base_number"
#define BASE_SEQ_KEY		"crl_base_seq"
#define BASE_UNTIL_KEY		"crl_base_until"

struct snap {
	struct crl_snapshot	pub;	/* first: handed out as a pointer */
	struct crl_tbs		t;	/* the signed CRL in pieces */
	unsigned int		 refs;
	pthread_mutex_t		 pem_mu;	/* guards der and pem */
	uint8_t			*der;	/* contiguous copy, on demand */
	char			*pem;
	size_t			 pem_len;
};

/* A published full CRL a relying party may hold (a delta base). */
struct full_rec {
	uint64_t	number;
	uint64_t	seq;		/* last event it reflects */
	int64_t		next_update;	/* the latest, for the restart entry */
};

struct crl_service {
	struct store		*store;
	struct hwm		*hwm;		/* may be NULL */
	struct crl_builder	*b;
	int64_t			 validity;	/* full nextUpdate - thisUpdate */
	int64_t			 interval;	/* between full builds */
	int64_t			 delta_age;	/* delta validity and max-age */
	int64_t			(*clock)(void);
	char			*publish_dir;
	int			 pub_dfd;	/* publish_dir, or -1 */

	pthread_mutex_t		 full_mu, delta_mu, state_mu, pub_mu, file_mu;
	struct snap		*cur[2];
	uint64_t		 file_number[2];
	struct full_rec		*fulls;		/* oldest first; state_mu */
	size_t			 num_fulls, fulls_cap;

	pthread_mutex_t		 sched_mu;
	pthread_cond_t		 cond;
	int			 stop;
	_Atomic int		 stopping;	/* stop, read without sched_mu */

	/* background start (crl_opts.background) */
	int			 bg;
	int			 ready;		/* pub_mu: first build done */
	pthread_cond_t		 pub_cv;	/* pub_mu: cur[] or ready */
	X509			*ca;		/* verifies the seeds */
	char			*seed_dir;
	char			*seed_name[2];
	uint64_t		 seed_last[2];
	void			(*ready_cb)(void *, int);
	void			*ready_arg;
	struct timespec		 full_due, delta_due;
	pthread_t		 thr;
	int			 have_thr;

	/* the last full build, for /metrics (crl_service_full_stats) */
	_Atomic uint64_t	 full_usec;
	_Atomic uint64_t	 full_entries;
	_Atomic int64_t		 full_time;
	_Atomic uint64_t	 full_builds;
	_Atomic uint64_t	 full_failures;
	/* CRL requests answered "not yet" before the first build */
	_Atomic uint64_t	 not_ready;
};

/* The wall clock of a build and the monotonic time its second began. */
struct stamp {
	int64_t		 wall;
	struct timespec	 mono;
};

static void
mono_now(struct timespec *ts)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
}

static void
ts_add_ms(struct timespec *ts, uint64_t ms)
{
	ts->tv_sec += (time_t)(ms / 1000);
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

static int
ts_before(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec < b->tv_sec ||
	    (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

/*
 * thisUpdate has whole seconds: a CRL valid for N s must be replaced N s
 * after the start of its second, so the schedule counts from there.
 */
static void
stamp_now(const struct crl_service *svc, struct stamp *st)
{
	struct timespec rt;

	mono_now(&st->mono);
	clock_gettime(CLOCK_REALTIME, &rt);
	st->wall = (int64_t)rt.tv_sec;
	if (svc->clock != NULL) {
		st->wall = svc->clock();
		return;
	}
	if (st->mono.tv_nsec >= rt.tv_nsec)
		st->mono.tv_nsec -= rt.tv_nsec;
	else {
		st->mono.tv_sec--;
		st->mono.tv_nsec += 1000000000L - rt.tv_nsec;
	}
}

/* ---- snapshots ---- */

static void
snap_unref(struct snap *s)
{
	if (s == NULL || __atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	pthread_mutex_destroy(&s->pem_mu);
	crl_tbs_cleanup(&s->t);
	free(s->der);
	free(s->pem);
	free(s);
}

void
crl_snapshot_release(const struct crl_snapshot *cs)
{
	snap_unref((struct snap *)(uintptr_t)cs);
}

const struct crl_snapshot *
crl_snapshot_ref(const struct crl_snapshot *cs)
{
	struct snap *s = (struct snap *)(uintptr_t)cs;

	__atomic_add_fetch(&s->refs, 1, __ATOMIC_ACQ_REL);
	return cs;
}

int
crl_snapshot_pieces(const struct crl_snapshot *cs, crl_piece_fn fn,
    void *arg)
{
	const struct snap *s = (const struct snap *)cs;

	return crl_tbs_pieces(&s->t, fn, arg);
}

const uint8_t *
crl_snapshot_der(const struct crl_snapshot *cs)
{
	struct snap *s = (struct snap *)(uintptr_t)cs;
	const uint8_t *p;

	pthread_mutex_lock(&s->pem_mu);
	if (s->der == NULL) {
		s->der = crl_tbs_flatten(&s->t);
		s->pub.der = s->der;
	}
	p = s->der;
	pthread_mutex_unlock(&s->pem_mu);
	return p;
}

/* Base64 in 64-column lines across pieces (48 input bytes a line). */
struct pem_enc {
	char	*p;
	size_t	 n;
	uint8_t	 carry[48];
	size_t	 clen;
};

static void
pem_line(struct pem_enc *e, const uint8_t *in, size_t len)
{
	e->n += (size_t)EVP_EncodeBlock((unsigned char *)e->p + e->n, in,
	    (int)len);
	e->p[e->n++] = '\n';
}

static int
pem_piece(const uint8_t *p, size_t len, void *arg)
{
	struct pem_enc *e = arg;
	size_t k;

	if (e->clen > 0) {
		k = 48 - e->clen < len ? 48 - e->clen : len;
		memcpy(e->carry + e->clen, p, k);
		e->clen += k;
		p += k;
		len -= k;
		if (e->clen < 48)
			return 1;
		pem_line(e, e->carry, 48);
		e->clen = 0;
	}
	for (; len >= 48; p += 48, len -= 48)
		pem_line(e, p, 48);
	memcpy(e->carry, p, len);
	e->clen = len;
	return 1;
}

const char *
crl_snapshot_pem(const struct crl_snapshot *cs, size_t *out_len)
{
	struct snap *s = (struct snap *)(uintptr_t)cs;
	static const char head[] = "-----BEGIN X509 CRL-----\n";
	static const char tail[] = "-----END X509 CRL-----\n";
	struct pem_enc e;
	size_t cap;

	pthread_mutex_lock(&s->pem_mu);
	if (s->pem != NULL)
		goto out;
	memset(&e, 0, sizeof(e));
	cap = sizeof(head) + sizeof(tail) + (cs->der_len + 47) / 48 * 66 + 1;
	if ((e.p = malloc(cap)) == NULL)
		goto out;
	memcpy(e.p, head, sizeof(head) - 1);
	e.n = sizeof(head) - 1;
	(void)crl_tbs_pieces(&s->t, pem_piece, &e);
	if (e.clen > 0)
		pem_line(&e, e.carry, e.clen);
	memcpy(e.p + e.n, tail, sizeof(tail) - 1);
	e.n += sizeof(tail) - 1;
	e.p[e.n] = '\0';
	s->pem = e.p;
	s->pem_len = e.n;
out:
	if (s->pem != NULL && out_len != NULL)
		*out_len = s->pem_len;
	pthread_mutex_unlock(&s->pem_mu);
	return s->pem;
}

const struct crl_snapshot *
crl_service_get(struct crl_service *svc, enum crl_kind kind)
{
	const struct crl_snapshot *s;

	if ((s = crl_service_peek(svc, kind)) != NULL &&
	    crl_snapshot_der(s) == NULL) {
		log_warnx("crl: out of memory");
		crl_snapshot_release(s);
		s = NULL;
	}
	return s;
}

/* 1 while a background start's first CRL of that kind is coming; pub_mu. */
static int
first_pending(struct crl_service *svc, enum crl_kind kind)
{
	return svc->cur[kind] == NULL && svc->bg && !svc->ready &&
	    !atomic_load(&svc->stopping);
}

/* The current snapshot, referenced, or NULL; waits for a pending one. */
static struct snap *
take_current(struct crl_service *svc, enum crl_kind kind, int wait,
    int *out_pending)
{
	struct snap *s;

	pthread_mutex_lock(&svc->pub_mu);
	while (wait && first_pending(svc, kind))
		pthread_cond_wait(&svc->pub_cv, &svc->pub_mu);
	*out_pending = first_pending(svc, kind);
	if ((s = svc->cur[kind]) != NULL)
		__atomic_add_fetch(&s->refs, 1, __ATOMIC_ACQ_REL);
	pthread_mutex_unlock(&svc->pub_mu);
	return s;
}

const struct crl_snapshot *
crl_service_peek(struct crl_service *svc, enum crl_kind kind)
{
	struct snap *s;
	int pending;

	if (kind != CRL_FULL && kind != CRL_DELTA)
		return NULL;
	s = take_current(svc, kind, 1, &pending);
	return s != NULL ? &s->pub : NULL;
}

const struct crl_snapshot *
crl_service_peek_nowait(struct crl_service *svc, enum crl_kind kind,
    int *out_pending)
{
	struct snap *s;

	*out_pending = 0;
	if (kind != CRL_FULL && kind != CRL_DELTA)
		return NULL;
	s = take_current(svc, kind, 0, out_pending);
	return s != NULL ? &s->pub : NULL;
}

void
crl_service_count_not_ready(struct crl_service *svc)
{
	atomic_fetch_add(&svc->not_ready, 1);
}

uint64_t
crl_service_not_ready_total(struct crl_service *svc)
{
	return atomic_load(&svc->not_ready);
}

/* ---- publish directory ---- */

static int
write_piece(const uint8_t *p, size_t len, void *arg)
{
	int fd = *(int *)arg;
	ssize_t w;

	while (len > 0) {
		if ((w = write(fd, p, len)) == -1) {
			if (errno == EINTR)
				continue;
			return 0;
		}
		p += w;
		len -= (size_t)w;
	}
	return 1;
}

/*
 * Writes name in the directory dfd (named dir in messages) atomically
 * with the given mode: a temp file created with O_EXCL|O_NOFOLLOW (a
 * leftover or a planted symlink at the temp name is removed, never
 * followed), fsync, rename over name, fsync the directory.
 */
static int
write_atomic(int dfd, const char *dir, const char *name,
    const struct crl_tbs *t, mode_t mode)
{
	char tmp[256];
	int fd = -1, rc = 0, tries;

	if ((size_t)snprintf(tmp, sizeof(tmp), ".%s.tmp", name) >=
	    sizeof(tmp)) {
		log_warnx("crl: publish name too long");
		return 0;
	}
	for (tries = 0; tries < 2 && fd == -1; tries++) {
		fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL |
		    O_NOFOLLOW | O_CLOEXEC, mode);
		if (fd == -1 && errno == EEXIST && tries == 0 &&
		    unlinkat(dfd, tmp, 0) == -1 && errno != ENOENT)
			break;
	}
	if (fd == -1) {
		log_warn("crl: create %s/%s", dir, tmp);
		return 0;
	}
	if (!crl_tbs_pieces(t, write_piece, &fd)) {
		log_warn("crl: write %s/%s", dir, tmp);
		goto out;
	}
	if (fsync(fd) == -1) {
		log_warn("crl: fsync %s/%s", dir, tmp);
		goto out;
	}
	if (close(fd) == -1) {
		fd = -1;
		log_warn("crl: close %s/%s", dir, tmp);
		unlinkat(dfd, tmp, 0);
		goto out;
	}
	fd = -1;
	if (renameat(dfd, tmp, dfd, name) == -1) {
		log_warn("crl: rename %s/%s", dir, name);
		unlinkat(dfd, tmp, 0);
		goto out;
	}
	if (fsync(dfd) == -1) {
		log_warn("crl: fsync %s", dir);
		goto out;
	}
	rc = 1;
out:
	if (fd != -1) {
		close(fd);
		unlinkat(dfd, tmp, 0);
	}
	return rc;
}

int
crl_snapshot_write(const struct crl_snapshot *cs, const char *dir,
    const char *name, mode_t mode)
{
	const struct snap *s = (const struct snap *)cs;
	int dfd, rc;

	if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1) {
		log_warn("crl: open %s", dir);
		return 0;
	}
	rc = write_atomic(dfd, dir, name, &s->t, mode);
	close(dfd);
	return rc;
}

/*
 * Opens the publish directory once; refuses one that group or others may
 * write (they could swap the published CRLs).  The descriptor, or -1.
 */
static int
open_publish_dir(const char *dir)
{
	struct stat sb;
	int dfd;

	if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1) {
		log_warn("crl: publish_dir %s", dir);
		return -1;
	}
	if (fstat(dfd, &sb) == -1) {
		log_warn("crl: publish_dir %s", dir);
		close(dfd);
		return -1;
	}
	if (sb.st_mode & 022) {
		log_warnx("crl: publish_dir %s is writable by group or others "
		    "(mode %03o); refusing to publish CRLs there (chmod go-w "
		    "it)", dir, (unsigned)(sb.st_mode & 0777));
		close(dfd);
		return -1;
	}
	return dfd;
}

/*
 * Makes a snapshot of the signed CRL t (taking its contents) current
 * unless a newer one already is, then writes it to the publish directory.
 */
static struct snap *
snap_new(enum crl_kind kind, struct crl_tbs *t, int64_t this_update,
    int64_t next_update, int64_t fresh_until)
{
	struct snap *s;

	if ((s = calloc(1, sizeof(*s))) == NULL) {
		log_warnx("crl: out of memory");
		return NULL;
	}
	pthread_mutex_init(&s->pem_mu, NULL);
	s->t = *t;
	memset(t, 0, sizeof(*t));
	t = &s->t;
	s->refs = 1;
	s->pub.kind = kind;
	s->pub.der_len = t->der_len;
	s->pub.this_update = this_update;
	s->pub.next_update = next_update;
	s->pub.fresh_until = fresh_until;
	s->pub.number = t->number;
	s->pub.base_number = t->base_number;
	snprintf(s->pub.etag, sizeof(s->pub.etag), "\"%s-%" PRIx64 "\"",
	    kind == CRL_FULL ? "full" : "delta", t->number);
	return s;
}

/* Makes s current unless a newer one is; the old one, to unref. */
static struct snap *
make_current(struct crl_service *svc, enum crl_kind kind, struct snap *s)
{
	struct snap *old = NULL;

	pthread_mutex_lock(&svc->pub_mu);
	if (svc->cur[kind] == NULL ||
	    svc->cur[kind]->pub.number < s->pub.number) {
		old = svc->cur[kind];
		svc->cur[kind] = s;
		__atomic_add_fetch(&s->refs, 1, __ATOMIC_ACQ_REL);
		pthread_cond_broadcast(&svc->pub_cv);
	}
	pthread_mutex_unlock(&svc->pub_mu);
	return old;
}

static int
publish(struct crl_service *svc, enum crl_kind kind, struct crl_tbs *t,
    int64_t this_update, int64_t next_update, int64_t fresh_until)
{
	struct snap *s, *old;
	int rc = 1;

	if ((s = snap_new(kind, t, this_update, next_update,
	    fresh_until)) == NULL)
		return 0;
	t = &s->t;
	old = make_current(svc, kind, s);
	log_debug("crl: kind=%s number=%" PRIu64 " entries=%zu bytes=%zu",
	    kind == CRL_FULL ? "full" : "delta", t->number, t->num_entries,
	    t->der_len);

	if (svc->publish_dir != NULL) {
		pthread_mutex_lock(&svc->file_mu);
		if (svc->file_number[kind] < t->number) {
			rc = write_atomic(svc->pub_dfd, svc->publish_dir,
			    kind == CRL_FULL ?
			    "full.crl" : "delta.crl", t, 0644);
			if (rc)
				svc->file_number[kind] = t->number;
		}
		pthread_mutex_unlock(&svc->file_mu);
	}
	snap_unref(old);
	snap_unref(s);
	return rc;
}

/* ---- state ---- */

/*
 * The next CRL number: above both the store's "crl_number" and the
 * high-water mark outside the store, so a restored older store continues
 * above every number ever published (RFC 5280 5.2.3).  The same read
 * takes the last revocation seq, which the CRL about to be built covers.
 */
struct number_arg {
	uint64_t	floor;		/* the high-water mark's crl_number */
	uint64_t	number;		/* out */
	uint64_t	rev_seq;	/* out */
};

static enum store_rc
number_txn(struct store_txn *txn, void *arg)
{
	struct number_arg *na = arg;
	enum store_rc rc;
	uint64_t n;

	if ((rc = store_meta_get_u64(txn, NUMBER_KEY, &n)) != STORE_OK ||
	    (rc = store_rev_last(txn, &na->rev_seq)) != STORE_OK)
		return rc;
	if (n < na->floor)
		n = na->floor;
	if (n == UINT64_MAX)
		return STORE_INVALID;
	na->number = n + 1;
	return store_meta_set_u64(txn, NUMBER_KEY, na->number);
}

/*
 * Takes the next CRL number; durable in the store and in the high-water
 * mark (raised after the commit, before any CRL carries the number).
 */
static int
next_number(struct crl_service *svc, uint64_t *out)
{
	struct number_arg na;
	struct hwm_state hs;
	enum store_rc rc;

	memset(&na, 0, sizeof(na));
	if (svc->hwm != NULL) {
		hwm_get(svc->hwm, &hs);
		na.floor = hs.crl_number;
	}
	if ((rc = store_write(svc->store, number_txn, &na)) != STORE_OK) {
		log_warnx("crl: cannot advance %s: %s", NUMBER_KEY,
		    store_strerror(rc));
		return 0;
	}
	if (svc->hwm != NULL && !hwm_raise(svc->hwm, na.number, na.rev_seq)) {
		log_warnx("crl: cannot raise the high-water mark %s to CRL "
		    "number %" PRIu64 "; not publishing", hwm_path(svc->hwm),
		    na.number);
		return 0;
	}
	*out = na.number;
	return 1;
}

struct events_arg {
	struct crl_service	*svc;
	int			 may_stop;	/* the first build */
	int			 stopped;	/* given up: micad stops */
	size_t			 num;		/* events applied */
};

/* Every EVENTS_STOP_CHECK events the first build looks at the stop. */
#define EVENTS_STOP_CHECK	1024

static int
apply_cb(const struct rev_event *ev, void *arg)
{
	struct events_arg *ea = arg;

	if (ea->may_stop && ea->num % EVENTS_STOP_CHECK == 0 &&
	    atomic_load(&ea->svc->stopping)) {
		ea->stopped = 1;
		return 0;
	}
	ea->num++;
	return crl_builder_apply(ea->svc->b, ev);
}

static enum store_rc
events_txn(struct store_txn *txn, void *arg)
{
	struct events_arg *ea = arg;

	return store_rev_iter(txn, crl_builder_last_seq(ea->svc->b) + 1,
	    apply_cb, ea);
}

/*
 * Applies the events after the last one seen; state_mu held.  may_stop
 * (the first build of a background start, which reads every revocation
 * in the store): a stop meanwhile gives it up within EVENTS_STOP_CHECK
 * events, and the build with it (returns 0; nothing is built from a
 * part of the events).
 */
static int
load_events(struct crl_service *svc, int may_stop)
{
	struct events_arg ea;
	enum store_rc rc;

	memset(&ea, 0, sizeof(ea));
	ea.svc = svc;
	ea.may_stop = may_stop;
	if ((rc = store_read(svc->store, events_txn, &ea)) != STORE_OK) {
		log_warnx("crl: reading revocation events: %s",
		    store_strerror(rc));
		return 0;
	}
	if (ea.stopped) {
		log_info("crl: the first build was given up at stop (%zu "
		    "revocation events read); the CRLs published before "
		    "stay", ea.num);
		return 0;
	}
	return 1;
}

/*
 * Drops the full CRLs no relying party can still hold (nextUpdate passed
 * by more than CRL_SKEW; the newest always stays) and makes the oldest
 * left the base of the delta CRLs.  state_mu held.
 */
static void
fulls_prune(struct crl_service *svc, int64_t now)
{
	size_t k = 0;

	while (k + 1 < svc->num_fulls &&
	    svc->fulls[k].next_update + CRL_SKEW < now)
		k++;
	if (k > 0) {
		memmove(svc->fulls, svc->fulls + k,
		    (svc->num_fulls - k) * sizeof(*svc->fulls));
		svc->num_fulls -= k;
	}
	if (svc->num_fulls > 0)
		crl_builder_set_base(svc->b, svc->fulls[0].number,
		    svc->fulls[0].seq);
}

/* Appends a published full CRL; state_mu held.  1, or 0 (no memory). */
static int
fulls_add(struct crl_service *svc, uint64_t number, uint64_t seq,
    int64_t next_update)
{
	struct full_rec *n;
	size_t cap;

	if (svc->num_fulls == svc->fulls_cap) {
		cap = svc->fulls_cap ? svc->fulls_cap * 2 : 16;
		if ((n = reallocarray(svc->fulls, cap, sizeof(*n))) == NULL) {
			log_warnx("crl: out of memory");
			return 0;
		}
		svc->fulls = n;
		svc->fulls_cap = cap;
	}
	n = &svc->fulls[svc->num_fulls++];
	n->number = number;
	n->seq = seq;
	n->next_update = next_update;
	return 1;
}

struct base_rec {
	uint64_t	number, seq, until, last_seq;
};

static enum store_rc
base_save_txn(struct store_txn *txn, void *arg)
{
	const struct base_rec *r = arg;
	enum store_rc rc;

	if ((rc = store_meta_set_u64(txn, BASE_NUMBER_KEY, r->number)) !=
	    STORE_OK ||
	    (rc = store_meta_set_u64(txn, BASE_SEQ_KEY, r->seq)) != STORE_OK)
		return rc;
	return store_meta_set_u64(txn, BASE_UNTIL_KEY, r->until);
}

static enum store_rc
base_load_txn(struct store_txn *txn, void *arg)
{
	struct base_rec *r = arg;
	enum store_rc rc;

	if ((rc = store_meta_get_u64(txn, BASE_NUMBER_KEY, &r->number)) !=
	    STORE_OK ||
	    (rc = store_meta_get_u64(txn, BASE_SEQ_KEY, &r->seq)) !=
	    STORE_OK ||
	    (rc = store_meta_get_u64(txn, BASE_UNTIL_KEY, &r->until)) !=
	    STORE_OK)
		return rc;
	return store_rev_last(txn, &r->last_seq);
}

/*
 * Records, before a full CRL (number, seq, next_update) is signed, what a
 * restart needs: the oldest full CRL a relying party may hold once this
 * one is out, and the latest nextUpdate of them all.  state_mu held.
 */
static int
base_save(struct crl_service *svc, uint64_t number, uint64_t seq,
    int64_t next_update)
{
	struct base_rec r = { number, seq, (uint64_t)next_update, 0 };
	enum store_rc rc;
	size_t i;

	if (svc->num_fulls > 0) {
		r.number = svc->fulls[0].number;
		r.seq = svc->fulls[0].seq;
	}
	for (i = 0; i < svc->num_fulls; i++)
		if ((uint64_t)svc->fulls[i].next_update > r.until)
			r.until = (uint64_t)svc->fulls[i].next_update;
	if ((rc = store_write(svc->store, base_save_txn, &r)) != STORE_OK) {
		log_warnx("crl: cannot record the delta CRL base: %s",
		    store_strerror(rc));
		return 0;
	}
	return 1;
}

/*
 * At start: the full CRLs published before stand as one entry while any
 * of them may still be held (see the file comment).  Called before the
 * events are replayed, so the builder logs those after its seq.
 */
static int
base_restore(struct crl_service *svc, int64_t now)
{
	struct base_rec r;
	enum store_rc rc;

	memset(&r, 0, sizeof(r));
	if ((rc = store_read(svc->store, base_load_txn, &r)) != STORE_OK) {
		log_warnx("crl: reading the delta CRL base: %s",
		    store_strerror(rc));
		return 0;
	}
	if (r.number == 0)
		return 1;
	if (r.seq > r.last_seq || r.until > INT64_MAX - CRL_SKEW) {
		log_warnx("crl: recorded delta CRL base %" PRIu64 " (event %"
		    PRIu64 ") is past the store (last event %" PRIu64 "); "
		    "deltas start from the full CRL built now", r.number,
		    r.seq, r.last_seq);
		return 1;
	}
	if ((int64_t)r.until + CRL_SKEW < now) {
		log_info("crl: the full CRLs published before have expired; "
		    "deltas start from the full CRL built now");
		return 1;
	}
	if (!fulls_add(svc, r.number, r.seq, (int64_t)r.until))
		return 0;
	crl_builder_set_base(svc->b, r.number, r.seq);
	log_info("crl: delta CRLs keep base %" PRIu64 " (full CRLs published "
	    "before the restart stay valid until %" PRIu64 ")", r.number,
	    r.until);
	return 1;
}

/* due = the second of st + secs; wakes the thread. */
static void
schedule_due(struct crl_service *svc, struct timespec *due,
    const struct stamp *st, int64_t secs)
{
	pthread_mutex_lock(&svc->sched_mu);
	*due = st->mono;
	ts_add_ms(due, (uint64_t)secs * 1000);
	pthread_cond_signal(&svc->cond);
	pthread_mutex_unlock(&svc->sched_mu);
}

static int
build_delta(struct crl_service *svc)
{
	struct crl_tbs t;
	struct stamp st;
	int64_t next;
	uint64_t number;
	int rc = 0;

	memset(&t, 0, sizeof(t));
	pthread_mutex_lock(&svc->delta_mu);
	pthread_mutex_lock(&svc->state_mu);
	stamp_now(svc, &st);
	next = st.wall + svc->delta_age;
	fulls_prune(svc, st.wall);
	rc = load_events(svc, 0) && next_number(svc, &number) &&
	    crl_builder_delta_tbs(svc->b, &t, number, st.wall, next);
	pthread_mutex_unlock(&svc->state_mu);
	if (rc)
		rc = crl_builder_sign(svc->b, &t) &&
		    publish(svc, CRL_DELTA, &t, st.wall, next, next);
	pthread_mutex_unlock(&svc->delta_mu);
	crl_tbs_cleanup(&t);
	if (rc)
		schedule_due(svc, &svc->delta_due, &st, svc->delta_age);
	return rc;
}

/*
 * may_stop (the first build of a background start): micad stopping
 * meanwhile gives it up before each step that takes time (a number, the
 * signature, publishing, the delta); what was published before stays.
 */
static int
build_full_ex(struct crl_service *svc, int may_stop)
{
	struct crl_tbs t;
	struct stamp st;
	int64_t next;
	uint64_t number = 0, seq = 0;
	size_t num;
	int rc;
	struct timespec t0, t1;

	memset(&t, 0, sizeof(t));
	pthread_mutex_lock(&svc->full_mu);
	mono_now(&t0);
	pthread_mutex_lock(&svc->state_mu);
	stamp_now(svc, &st);
	next = st.wall + svc->validity;
	fulls_prune(svc, st.wall);
	/* a stop during the first build of a background start: no number
	 * taken, nothing published (what was published stays) */
	rc = load_events(svc, may_stop) &&
	    !(may_stop && atomic_load(&svc->stopping)) &&
	    next_number(svc, &number) &&
	    crl_builder_full_tbs(svc->b, &t, number, st.wall, next);
	seq = t.seq;
	num = t.num_entries;
	if (rc)
		rc = !(may_stop && atomic_load(&svc->stopping)) &&
		    base_save(svc, number, seq, next);
	pthread_mutex_unlock(&svc->state_mu);
	if (rc)
		rc = !(may_stop && atomic_load(&svc->stopping)) &&
		    crl_builder_sign(svc->b, &t) &&
		    !(may_stop && atomic_load(&svc->stopping)) &&
		    publish(svc, CRL_FULL, &t, st.wall, next,
		    st.wall + svc->interval);
	if (rc) {
		pthread_mutex_lock(&svc->state_mu);
		rc = fulls_add(svc, number, seq, next);
		fulls_prune(svc, st.wall);
		pthread_mutex_unlock(&svc->state_mu);
		log_info("crl: full number=%" PRIu64 " entries=%zu", number,
		    num);
		mono_now(&t1);
		atomic_store(&svc->full_usec, (uint64_t)((t1.tv_sec -
		    t0.tv_sec) * 1000000 + (t1.tv_nsec - t0.tv_nsec) / 1000));
		atomic_store(&svc->full_entries, (uint64_t)num);
		atomic_store(&svc->full_time, st.wall);
		atomic_fetch_add(&svc->full_builds, 1);
	} else
		atomic_fetch_add(&svc->full_failures, 1);
	pthread_mutex_unlock(&svc->full_mu);
	crl_tbs_cleanup(&t);
	if (rc) {
		schedule_due(svc, &svc->full_due, &st, svc->interval);
		if (!(may_stop && atomic_load(&svc->stopping)))
			rc = build_delta(svc);
	}
	return rc;
}

static int
build_full(struct crl_service *svc)
{
	return build_full_ex(svc, 0);
}

/* ---- the last published CRLs, served at a background start ---- */

#define SEED_MAX	(512L * 1024 * 1024)	/* larger is not ours */

static int64_t
asn1_unix(const ASN1_TIME *t)
{
	struct tm tm;

	if (t == NULL || !ASN1_TIME_to_tm(t, &tm))
		return 0;
	return (int64_t)timegm(&tm);
}

static uint64_t
ext_u64(X509_CRL *crl, int nid)
{
	ASN1_INTEGER *ai;
	uint64_t v = 0;

	if ((ai = X509_CRL_get_ext_d2i(crl, nid, NULL, NULL)) != NULL) {
		if (!ASN1_INTEGER_get_uint64(&v, ai))
			v = 0;
		ASN1_INTEGER_free(ai);
	}
	return v;
}

/* The file's bytes (at most SEED_MAX), or NULL (why set). */
static uint8_t *
seed_read(const char *path, size_t *out_len, const char **why)
{
	struct stat sb;
	uint8_t *buf = NULL;
	size_t off = 0;
	ssize_t n;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1) {
		*why = errno == ENOENT ? "none" : "cannot be read";
		return NULL;
	}
	if (fstat(fd, &sb) == -1 || !S_ISREG(sb.st_mode) || sb.st_size <= 0 ||
	    sb.st_size > SEED_MAX || (buf = malloc((size_t)sb.st_size)) ==
	    NULL) {
		*why = "not a CRL file";
		goto fail;
	}
	while (off < (size_t)sb.st_size) {
		if ((n = read(fd, buf + off, (size_t)sb.st_size - off)) <= 0) {
			if (n == -1 && errno == EINTR)
				continue;
			*why = "cannot be read";
			goto fail;
		}
		off += (size_t)n;
	}
	close(fd);
	*out_len = off;
	return buf;
fail:
	free(buf);
	close(fd);
	return NULL;
}

/*
 * Serves the CRL of that kind last published (in seed_dir) until the
 * first build, if it is current: ours (issuer, signature), of that kind,
 * numbered as the last one of its kind the signer signed (nothing newer
 * was ever published), not expired.  Otherwise that kind waits.
 */
static void
seed_one(struct crl_service *svc, enum crl_kind kind, int64_t now)
{
	const char *kname = kind == CRL_FULL ? "full" : "delta", *why = NULL;
	char path[4096];
	struct crl_tbs t;
	struct snap *sn, *old;
	X509_CRL *crl = NULL;
	EVP_PKEY *pk;
	const uint8_t *p;
	uint8_t *der = NULL;
	size_t len = 0;
	uint64_t number, base;
	int64_t this_update, next_update, fresh;

	if (svc->seed_last[kind] == 0) {
		why = "the signer's last number is unknown";
		goto skip;
	}
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", svc->seed_dir,
	    svc->seed_name[kind]) >= sizeof(path)) {
		why = "path too long";
		goto skip;
	}
	if ((der = seed_read(path, &len, &why)) == NULL)
		goto skip;
	p = der;
	if ((crl = d2i_X509_CRL(NULL, &p, (long)len)) == NULL ||
	    p != der + len) {
		why = "not a DER CRL";
		goto skip;
	}
	/* parsing a large CRL takes time: a stop meanwhile ends here */
	if (atomic_load(&svc->stopping)) {
		why = "micad stops";
		goto skip;
	}
	pk = X509_get0_pubkey(svc->ca);
	if (X509_NAME_cmp(X509_CRL_get_issuer(crl),
	    X509_get_subject_name(svc->ca)) != 0 || pk == NULL ||
	    X509_CRL_verify(crl, pk) != 1) {
		why = "not signed by this CA";
		goto skip;
	}
	number = ext_u64(crl, NID_crl_number);
	base = ext_u64(crl, NID_delta_crl);
	this_update = asn1_unix(X509_CRL_get0_lastUpdate(crl));
	next_update = asn1_unix(X509_CRL_get0_nextUpdate(crl));
	if ((kind == CRL_DELTA) != (base != 0)) {
		why = "not of that kind";
		goto skip;
	}
	if (number != svc->seed_last[kind]) {
		why = "not the last one signed";
		goto skip;
	}
	if (next_update <= now || this_update > now + CRL_SKEW) {
		why = "not current";
		goto skip;
	}
	fresh = kind == CRL_FULL ? this_update + svc->interval : next_update;
	if (fresh > next_update)
		fresh = next_update;
	memset(&t, 0, sizeof(t));
	if ((t.tail = malloc(1)) == NULL) {
		why = "out of memory";
		goto skip;
	}
	t.head = der;
	t.head_len = t.tbs_len = t.der_len = len;
	t.number = number;
	t.base_number = base;
	t.num_entries = (size_t)sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl));
	der = NULL;
	if ((sn = snap_new(kind, &t, this_update, next_update, fresh)) ==
	    NULL) {
		crl_tbs_cleanup(&t);
		why = "out of memory";
		goto skip;
	}
	/* it is the file: never written back */
	pthread_mutex_lock(&svc->file_mu);
	if (svc->file_number[kind] < number)
		svc->file_number[kind] = number;
	pthread_mutex_unlock(&svc->file_mu);
	sn->pub.from_file = 1;
	old = make_current(svc, kind, sn);
	snap_unref(old);
	snap_unref(sn);
	log_info("crl: serving the %s CRL number %" PRIu64 " published "
	    "before (%s) until the first build", kname, number, path);
	X509_CRL_free(crl);
	ERR_clear_error();
	return;
skip:
	log_info("crl: the %s CRL published before is not served (%s: %s); "
	    "%s CRLs wait for the first build", kname,
	    svc->seed_name[kind] != NULL ? svc->seed_name[kind] : "-",
	    why != NULL ? why : "?", kname);
	X509_CRL_free(crl);
	free(der);
	ERR_clear_error();
}

/* Waits for the first build of a background start. */
static void
wait_ready(struct crl_service *svc)
{
	if (!svc->bg)
		return;
	pthread_mutex_lock(&svc->pub_mu);
	while (!svc->ready)
		pthread_cond_wait(&svc->pub_cv, &svc->pub_mu);
	pthread_mutex_unlock(&svc->pub_mu);
}

/* ---- the rebuild thread ---- */

/*
 * A background start: the last published CRLs if current, then the
 * first build (given up if micad stops meanwhile).
 */
static void
first_build(struct crl_service *svc)
{
	struct stamp st;
	int ok = 0;

	if (svc->seed_dir != NULL) {
		stamp_now(svc, &st);
		if (!atomic_load(&svc->stopping))
			seed_one(svc, CRL_FULL, st.wall);
		if (!atomic_load(&svc->stopping))
			seed_one(svc, CRL_DELTA, st.wall);
	}
	if (!atomic_load(&svc->stopping))
		ok = build_full_ex(svc, 1);
	pthread_mutex_lock(&svc->pub_mu);
	svc->ready = 1;
	pthread_cond_broadcast(&svc->pub_cv);
	pthread_mutex_unlock(&svc->pub_mu);
	if (svc->ready_cb != NULL && !atomic_load(&svc->stopping))
		svc->ready_cb(svc->ready_arg, ok);
}

/*
 * Builds the full CRL when the schedule says (full_interval after the
 * last one) and the delta before it expires (delta_max_age after the
 * last one), whether or not anything changed: a relying party must
 * always find a current CRL of each kind.
 */
static void *
rebuild_main(void *arg)
{
	struct crl_service *svc = arg;
	struct timespec now, due, t;
	int full;

	if (svc->bg)
		first_build(svc);
	pthread_mutex_lock(&svc->sched_mu);
	while (!svc->stop) {
		mono_now(&now);
		due = ts_before(&svc->full_due, &svc->delta_due) ?
		    svc->full_due : svc->delta_due;
		if (ts_before(&now, &due)) {
			pthread_cond_timedwait(&svc->cond, &svc->sched_mu, &due);
			continue;
		}
		full = !ts_before(&now, &svc->full_due);
		/* retry a failed build in a second, not in a busy loop */
		t = now;
		ts_add_ms(&t, 1000);
		if (full)
			svc->full_due = t;
		else
			svc->delta_due = t;
		pthread_mutex_unlock(&svc->sched_mu);
		if (full)
			(void)build_full(svc);
		else
			(void)build_delta(svc);
		pthread_mutex_lock(&svc->sched_mu);
	}
	pthread_mutex_unlock(&svc->sched_mu);
	return NULL;
}

/* ---- public ---- */

int
crl_service_changed(struct crl_service *svc)
{
	struct timespec t;
	int rc;

	wait_ready(svc);
	if ((rc = build_delta(svc)) == 0) {
		/* the thread tries again in a second */
		pthread_mutex_lock(&svc->sched_mu);
		mono_now(&t);
		ts_add_ms(&t, 1000);
		if (ts_before(&t, &svc->delta_due))
			svc->delta_due = t;
		pthread_cond_signal(&svc->cond);
		pthread_mutex_unlock(&svc->sched_mu);
	}
	return rc;
}

int
crl_service_rebuild(struct crl_service *svc)
{
	wait_ready(svc);
	return build_full(svc);
}

/* Reads the options, with defaults, and checks how they combine. */
static void
set_times(struct crl_service *svc, const struct crl_opts *opts)
{
	svc->interval = opts->full_interval > 0 ? opts->full_interval :
	    DEF_FULL_INTERVAL;
	svc->validity = opts->next_update > 0 ? opts->next_update :
	    svc->interval;
	if (svc->validity < svc->interval) {
		log_warnx("crl: next_update (%" PRId64 " s) is shorter than "
		    "full_interval (%" PRId64 " s): full CRLs are built every "
		    "%" PRId64 " s instead, since a CRL is replaced by its "
		    "nextUpdate (RFC 5280 5.1.2.5)", svc->validity,
		    svc->interval, svc->validity);
		svc->interval = svc->validity;
	}
	svc->delta_age = opts->delta_max_age > 0 ? opts->delta_max_age :
	    DEF_DELTA_MAX_AGE;
	svc->clock = opts->clock;
}

struct crl_service *
crl_service_new(struct store *store, X509 *ca_cert, EVP_PKEY *ca_key,
    const struct crl_opts *opts)
{
	struct crl_service *svc = NULL, *ret = NULL;
	pthread_condattr_t ca;
	struct stamp st;
	char url[2048];
	const char *u = NULL;

	if ((svc = calloc(1, sizeof(*svc))) == NULL) {
		log_warnx("crl: out of memory");
		return NULL;
	}
	svc->store = store;
	svc->hwm = opts->hwm;
	set_times(svc, opts);
	pthread_mutex_init(&svc->full_mu, NULL);
	pthread_mutex_init(&svc->delta_mu, NULL);
	pthread_mutex_init(&svc->state_mu, NULL);
	pthread_mutex_init(&svc->pub_mu, NULL);
	pthread_mutex_init(&svc->file_mu, NULL);
	pthread_mutex_init(&svc->sched_mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&svc->cond, &ca);
	pthread_condattr_destroy(&ca);
	pthread_cond_init(&svc->pub_cv, NULL);
	if (X509_up_ref(ca_cert) != 1)
		goto out;
	svc->ca = ca_cert;
	mono_now(&svc->full_due);
	ts_add_ms(&svc->full_due, (uint64_t)svc->interval * 1000);
	svc->delta_due = svc->full_due;

	svc->pub_dfd = -1;
	if (opts->publish_dir != NULL && opts->publish_dir[0] != '\0') {
		if ((svc->publish_dir = strdup(opts->publish_dir)) == NULL ||
		    (svc->pub_dfd = open_publish_dir(opts->publish_dir)) == -1)
			goto out;
	}
	if (opts->base_url != NULL && opts->base_url[0] != '\0') {
		if ((size_t)snprintf(url, sizeof(url), "%s/crl/delta.crl",
		    opts->base_url) >= sizeof(url)) {
			log_warnx("crl: base URL too long");
			goto out;
		}
		u = url;
	}
	if ((svc->b = crl_builder_new(ca_cert, ca_key, u)) == NULL)
		goto out;
	crl_builder_set_rsign(svc->b, opts->rsign);
	stamp_now(svc, &st);
	if (!base_restore(svc, st.wall))
		goto out;
	if (opts->background && !opts->no_thread) {
		/* the thread replays the events and makes the first CRLs */
		svc->bg = 1;
		svc->ready_cb = opts->ready;
		svc->ready_arg = opts->ready_arg;
		svc->seed_last[CRL_FULL] = opts->seed_last[CRL_FULL];
		svc->seed_last[CRL_DELTA] = opts->seed_last[CRL_DELTA];
		if (opts->seed_dir != NULL && opts->seed_dir[0] != '\0' &&
		    opts->seed_name[CRL_FULL] != NULL &&
		    opts->seed_name[CRL_DELTA] != NULL &&
		    ((svc->seed_dir = strdup(opts->seed_dir)) == NULL ||
		    (svc->seed_name[CRL_FULL] =
		    strdup(opts->seed_name[CRL_FULL])) == NULL ||
		    (svc->seed_name[CRL_DELTA] =
		    strdup(opts->seed_name[CRL_DELTA])) == NULL)) {
			log_warnx("crl: out of memory");
			goto out;
		}
	} else if (!build_full(svc))
		/* replay every event (seq starts at 1), then the first CRLs */
		goto out;
	if (!opts->no_thread) {
		if (pthread_create(&svc->thr, NULL, rebuild_main, svc) != 0) {
			log_warnx("crl: cannot start the rebuild thread");
			goto out;
		}
		svc->have_thr = 1;
	}
	ret = svc;
	svc = NULL;
out:
	crl_service_free(svc);
	return ret;
}

void
crl_service_stopping(struct crl_service *svc)
{
	if (svc == NULL)
		return;
	atomic_store(&svc->stopping, 1);
	/* those waiting for a first CRL get none */
	pthread_mutex_lock(&svc->pub_mu);
	pthread_cond_broadcast(&svc->pub_cv);
	pthread_mutex_unlock(&svc->pub_mu);
}

void
crl_service_free(struct crl_service *svc)
{
	if (svc == NULL)
		return;
	if (svc->have_thr) {
		atomic_store(&svc->stopping, 1);
		pthread_mutex_lock(&svc->sched_mu);
		svc->stop = 1;
		pthread_cond_signal(&svc->cond);
		pthread_mutex_unlock(&svc->sched_mu);
		pthread_join(svc->thr, NULL);
	}
	snap_unref(svc->cur[CRL_FULL]);
	snap_unref(svc->cur[CRL_DELTA]);
	crl_builder_free(svc->b);
	X509_free(svc->ca);
	free(svc->seed_dir);
	free(svc->seed_name[CRL_FULL]);
	free(svc->seed_name[CRL_DELTA]);
	free(svc->fulls);
	free(svc->publish_dir);
	if (svc->pub_dfd != -1)
		close(svc->pub_dfd);
	pthread_cond_destroy(&svc->cond);
	pthread_cond_destroy(&svc->pub_cv);
	pthread_mutex_destroy(&svc->full_mu);
	pthread_mutex_destroy(&svc->delta_mu);
	pthread_mutex_destroy(&svc->state_mu);
	pthread_mutex_destroy(&svc->pub_mu);
	pthread_mutex_destroy(&svc->file_mu);
	pthread_mutex_destroy(&svc->sched_mu);
	free(svc);
}

void
crl_service_full_stats(struct crl_service *svc, struct crl_full_stats *out)
{
	out->duration_usec = atomic_load(&svc->full_usec);
	out->entries = atomic_load(&svc->full_entries);
	out->time = atomic_load(&svc->full_time);
	out->builds = atomic_load(&svc->full_builds);
	out->failures = atomic_load(&svc->full_failures);
}
