/*
 * expiry.c - the expiry watch (see expiry.h): scan on a worker, record
 * what is sent in store meta keys, then queue cert.expiring events.
 */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "ca/expiry.h"
#include "ca/micad.h"
#include "ca/notify.h"
#include "ca/renew.h"
#include "common/bytes.h"
#include "common/log.h"
#include "common/workq.h"
#include "store/store.h"

#define DAY	86400
#define META_PREFIX	"expiry_sent:"

struct expiry {
	struct micad	*d;
	struct event	*timer;
	struct timeval	 interval;
	int		 busy;		/* a pass is on a worker */
};

struct pass {
	struct expiry		*ex;
	struct store		*store;
	int64_t			 now;
	struct expiry_hit	*hits;
	size_t			 num, cap;
	int			 ok;
	int			 cancelled;	/* expiry_cancel: given up */
};

/* expiry_cancel: a pass in progress gives up (micad is stopping). */
static _Atomic int cancel_all;

int
expiry_threshold(int64_t left)
{
	if (left <= 0)
		return 0;
	if (left <= 1 * DAY)
		return 1;
	if (left <= 7 * DAY)
		return 7;
	if (left <= 30 * DAY)
		return 30;
	return 0;
}

/*
 * Days left as a person counts them: a 5-day certificate issued a minute
 * ago has 5 days left, not 4 (rounded up; 1 for the last day).
 */
int
expiry_days_left(int64_t left)
{
	if (left <= 0)
		return 0;
	return (int)((left + DAY - 1) / DAY);
}

static void
meta_key(char *out, size_t len, const uint8_t serial[16])
{
	char hex[SERIAL_HEX_LEN];

	hex_encode(hex, serial, 16);
	snprintf(out, len, META_PREFIX "%s", hex);
}

static int
scan_cb(const struct cert_rec *c, void *arg)
{
	struct pass *p = arg;
	struct expiry_hit *h;
	int t;

	if (atomic_load_explicit(&cancel_all, memory_order_relaxed)) {
		p->cancelled = 1;
		return 0;
	}
	if (c->st.status != CERT_GOOD || !serial_is_zero(c->replaced_by))
		return 1;
	if ((t = expiry_threshold(c->st.not_after - p->now)) == 0)
		return 1;
	if (p->num == p->cap) {
		size_t ncap = p->cap == 0 ? 16 : p->cap * 2;

		if (p->num >= EXPIRY_MAX_PER_PASS)
			return 0;
		if ((h = reallocarray(p->hits, ncap, sizeof(*h))) == NULL) {
			p->ok = 0;
			return 0;
		}
		p->hits = h;
		p->cap = ncap;
	}
	h = &p->hits[p->num];
	memset(h, 0, sizeof(*h));
	memcpy(h->serial, c->serial, 16);
	snprintf(h->account, sizeof(h->account), "%s", c->account);
	h->not_after = c->st.not_after;
	h->days_left = expiry_days_left(c->st.not_after - p->now);
	h->threshold = t;
	p->num++;
	return 1;
}

/* Keeps only the hits whose threshold was not sent yet. */
static enum store_rc
scan_txn(struct store_txn *txn, void *arg)
{
	struct pass *p = arg;
	char key[64];
	uint64_t sent;
	size_t i, k = 0;
	enum store_rc rc;

	if ((rc = store_cert_iter(txn, scan_cb, p)) != STORE_OK)
		return rc;
	if (p->cancelled)
		return STORE_ABORT;
	for (i = 0; i < p->num; i++) {
		meta_key(key, sizeof(key), p->hits[i].serial);
		if ((rc = store_meta_get_u64(txn, key, &sent)) != STORE_OK)
			return rc;
		if (sent != 0 && sent <= (uint64_t)p->hits[i].threshold)
			continue;
		p->hits[k++] = p->hits[i];
	}
	p->num = k;
	return STORE_OK;
}

static enum store_rc
record_txn(struct store_txn *txn, void *arg)
{
	struct pass *p = arg;
	char key[64];
	size_t i;
	enum store_rc rc;

	for (i = 0; i < p->num; i++) {
		meta_key(key, sizeof(key), p->hits[i].serial);
		if ((rc = store_meta_set_u64(txn, key,
		    (uint64_t)p->hits[i].threshold)) != STORE_OK)
			return rc;
	}
	return STORE_OK;
}

int
expiry_collect(struct store *s, int64_t now, struct expiry_hit **out,
    size_t *out_num)
{
	struct pass p;
	enum store_rc rc;
	int ret = 0;

	memset(&p, 0, sizeof(p));
	p.now = now;
	p.ok = 1;
	*out = NULL;
	*out_num = 0;
	if ((rc = store_read(s, scan_txn, &p)) != STORE_OK && p.cancelled)
		goto out;		/* stopping */
	if (rc != STORE_OK || !p.ok) {
		log_warnx("expiry: scan failed: %s", p.ok ?
		    store_strerror(rc) : "out of memory");
		goto out;
	}
	if (p.num > 0 && (rc = store_write(s, record_txn, &p)) != STORE_OK) {
		log_warnx("expiry: recording %zu events failed: %s", p.num,
		    store_strerror(rc));
		goto out;
	}
	*out = p.hits;
	*out_num = p.num;
	p.hits = NULL;
	ret = 1;
 out:
	free(p.hits);
	return ret;
}

static void
pass_work(void *arg)
{
	struct pass *p = arg;

	p->ok = expiry_collect(p->store, p->now, &p->hits, &p->num);
}

/* On the loop, after the commit: queue the events. */
static void
pass_done(void *arg)
{
	struct pass *p = arg;
	struct notify_info ni;
	char hex[SERIAL_HEX_LEN];
	size_t i;

	for (i = 0; i < p->num; i++) {
		const struct expiry_hit *h = &p->hits[i];

		serial_hex(hex, h->serial);
		log_info("serial=%s account=%s expires in %d days "
		    "(threshold %d)", hex, h->account, h->days_left,
		    h->threshold);
		memset(&ni, 0, sizeof(ni));
		ni.event = "cert.expiring";
		ni.serial = h->serial;
		ni.account = h->account;
		ni.not_after = h->not_after;
		ni.days_left = h->days_left;
		ni.threshold = h->threshold;
		notify_event(p->ex->d->notify, &ni);
		micad_stat_add(MSTAT_EXPIRY_SENT, 1);
	}
	p->ex->busy = 0;
	free(p->hits);
	free(p);
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct expiry *ex = arg;
	struct pass *p;

	(void)fd;
	(void)what;
	evtimer_add(ex->timer, &ex->interval);
	renew_check(ex->d);
	if (ex->busy)
		return;
	if ((p = calloc(1, sizeof(*p))) == NULL)
		return;
	p->ex = ex;
	p->store = ex->d->store;
	p->now = time(NULL);
	ex->busy = 1;
	if (!workq_submit(ex->d->workers, pass_work, pass_done, p)) {
		ex->busy = 0;
		free(p);
	}
}

struct expiry *
expiry_new(struct micad *d, int interval)
{
	struct expiry *ex;
	struct timeval now = { 0, 0 };

	if ((ex = calloc(1, sizeof(*ex))) == NULL)
		return NULL;
	ex->d = d;
	ex->interval.tv_sec = interval > 0 ? interval : 3600;
	if ((ex->timer = evtimer_new(d->base, on_timer, ex)) == NULL ||
	    evtimer_add(ex->timer, &now) != 0) {
		expiry_free(ex);
		return NULL;
	}
	return ex;
}

void
expiry_free(struct expiry *ex)
{
	if (ex == NULL)
		return;
	if (ex->timer != NULL)
		event_free(ex->timer);
	free(ex);
}

void
expiry_cancel(void)
{
	atomic_store(&cancel_all, 1);
}
