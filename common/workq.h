/*
 * workq.h - a small pool of worker threads for work that must not run on
 * the event loop (argon2id, signing bursts, CRL rebuilds).  The done
 * callback runs back on the event loop thread.
 */
#ifndef MICA_WORKQ_H
#define MICA_WORKQ_H

struct event_base;
struct workq;

typedef void (*workq_fn)(void *arg);

/* Starts nthreads workers whose results are delivered on base. */
struct workq	*workq_new(struct event_base *base, int nthreads);
/* Stops accepting work, finishes what is queued, joins. NULL allowed. */
void		 workq_free(struct workq *);
/*
 * Queues work(arg) on a worker; then done(arg) runs on the loop (done may
 * be NULL).  Returns 1, or 0 when the queue is shutting down.
 */
int		 workq_submit(struct workq *, workq_fn work, workq_fn done,
		    void *arg);
/*
 * As workq_submit, but done(arg) runs on the loop only when work returns
 * nonzero: work that handed arg on to another queue (whose own callback
 * replies) returns 0, and the loop is not woken for it.
 */
typedef int (*workq_hand_fn)(void *arg);
int		 workq_submit_then(struct workq *, workq_hand_fn work,
		    workq_fn done, void *arg);

#endif
