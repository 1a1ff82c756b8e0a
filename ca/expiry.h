/*
 * expiry.h - the expiry watch: a timer in micad (once at start, then every
 * [daemon] expiry_interval seconds) walks the certificates on a worker
 * thread and emits cert.expiring once per certificate per threshold (30,
 * 7 and 1 days before notAfter).
 *
 * Only good certificates that were not replaced (replaced_by is zero) are
 * watched; expired ones are not.  When several thresholds are crossed at
 * once (a 5-day certificate seen for the first time, or micad down for
 * weeks) ONE event is sent, for the nearest threshold (7 for 5 days
 * left), and the larger ones count as sent.  What was sent survives
 * restarts: the store meta key "expiry_sent:<serial hex>" holds the
 * smallest threshold sent, written in one write transaction per pass
 * BEFORE the events are queued (commit first, then tell).
 */
#ifndef MICA_EXPIRY_H
#define MICA_EXPIRY_H

#include <stddef.h>
#include <stdint.h>

struct micad;
struct store;
struct expiry;

#define EXPIRY_MAX_PER_PASS	10000	/* the rest waits for the next pass */

struct expiry_hit {
	uint8_t		serial[16];
	char		account[65];
	int64_t		not_after;
	int		days_left;	/* expiry_days_left */
	int		threshold;	/* 30, 7 or 1 */
};

/* The threshold (30, 7, 1) that seconds_left falls under, 0 if none or
 * if the certificate has expired (seconds_left <= 0). */
int	expiry_threshold(int64_t seconds_left);

/* Whole days left, rounded up (5 days minus a minute: 5; 0 if expired),
 * as the cert.expiring event's days_left says it. */
int	expiry_days_left(int64_t seconds_left);

/*
 * One pass at time now: finds the certificates that crossed a threshold
 * not yet sent and records them as sent (one store_write).  Returns 1
 * with *out (malloc'd array, caller frees; NULL when none) and *out_num,
 * or 0 on a store error (logged; nothing recorded).
 */
int	expiry_collect(struct store *, int64_t now, struct expiry_hit **out,
	    size_t *out_num);

/*
 * Starts the watch on d->base (first pass at once, on d->workers), which
 * queues events on d->notify.  interval in seconds.  NULL on error.
 */
struct expiry	*expiry_new(struct micad *d, int interval);
/* Stops the timer; NULL allowed.  Call after workq_free (which runs the
 * done callback of a pass in flight) and before notify_free. */
void		 expiry_free(struct expiry *);
/*
 * At stop, before workq_free: a pass in progress (a walk of every
 * certificate) gives up, records nothing and notifies nothing.
 */
void		 expiry_cancel(void);

#endif
