/*
 * workq.c - worker threads with results delivered on the event loop.
 *
 * The loop's event_base must have been created after evthread_use_pthreads()
 * so that event_active() may be called from a worker.
 */
#include <pthread.h>
#include <stdlib.h>

#include <event2/event.h>

#include "common/log.h"
#include "common/workq.h"

struct job {
	struct job	*next;
	workq_fn	 work;
	workq_hand_fn	 hand;		/* instead of work: 0 = no done() */
	workq_fn	 done;
	void		*arg;
};

struct workq {
	pthread_mutex_t	 mu;
	pthread_cond_t	 cv;
	struct job	*head, *tail;		/* waiting to run */
	struct job	*done_head, *done_tail;	/* waiting for done() */
	struct event	*ev;			/* wakes the loop */
	pthread_t	*threads;
	int		 num_threads;
	int		 stopping;
};

static void
push(struct job **head, struct job **tail, struct job *j)
{
	j->next = NULL;
	if (*tail != NULL)
		(*tail)->next = j;
	else
		*head = j;
	*tail = j;
}

static struct job *
pop(struct job **head, struct job **tail)
{
	struct job *j = *head;

	if (j != NULL) {
		*head = j->next;
		if (*head == NULL)
			*tail = NULL;
	}
	return j;
}

static void *
worker_main(void *arg)
{
	struct workq *q = arg;
	struct job *j;

	pthread_mutex_lock(&q->mu);
	for (;;) {
		while (q->head == NULL && !q->stopping)
			pthread_cond_wait(&q->cv, &q->mu);
		if ((j = pop(&q->head, &q->tail)) == NULL)
			break;		/* stopping and drained */
		pthread_mutex_unlock(&q->mu);
		if (j->hand != NULL && j->hand(j->arg) == 0) {
			free(j);	/* handed on: nothing for the loop */
			pthread_mutex_lock(&q->mu);
			continue;
		}
		if (j->hand == NULL)
			j->work(j->arg);
		pthread_mutex_lock(&q->mu);
		push(&q->done_head, &q->done_tail, j);
		event_active(q->ev, EV_READ, 0);
	}
	pthread_mutex_unlock(&q->mu);
	return NULL;
}

static void
run_done(struct workq *q)
{
	struct job *list, *j;

	pthread_mutex_lock(&q->mu);
	list = q->done_head;
	q->done_head = q->done_tail = NULL;
	pthread_mutex_unlock(&q->mu);
	while ((j = list) != NULL) {
		list = j->next;
		if (j->done != NULL)
			j->done(j->arg);
		free(j);
	}
}

static void
done_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	run_done(arg);
}

struct workq *
workq_new(struct event_base *base, int nthreads)
{
	struct workq *q;
	int i;

	if (nthreads < 1)
		nthreads = 1;
	if ((q = calloc(1, sizeof(*q))) == NULL)
		return NULL;
	pthread_mutex_init(&q->mu, NULL);
	pthread_cond_init(&q->cv, NULL);
	if ((q->ev = event_new(base, -1, 0, done_cb, q)) == NULL ||
	    (q->threads = calloc(nthreads, sizeof(pthread_t))) == NULL) {
		workq_free(q);
		return NULL;
	}
	for (i = 0; i < nthreads; i++) {
		if (pthread_create(&q->threads[i], NULL, worker_main, q) != 0) {
			log_warnx("workq: cannot start worker thread");
			workq_free(q);
			return NULL;
		}
		q->num_threads++;
	}
	return q;
}

void
workq_free(struct workq *q)
{
	int i;

	if (q == NULL)
		return;
	pthread_mutex_lock(&q->mu);
	q->stopping = 1;
	pthread_cond_broadcast(&q->cv);
	pthread_mutex_unlock(&q->mu);
	for (i = 0; i < q->num_threads; i++)
		pthread_join(q->threads[i], NULL);
	run_done(q);	/* deliver what finished while we stopped */
	if (q->ev != NULL)
		event_free(q->ev);
	free(q->threads);
	pthread_cond_destroy(&q->cv);
	pthread_mutex_destroy(&q->mu);
	free(q);
}

static int
submit(struct workq *q, workq_fn work, workq_hand_fn hand, workq_fn done,
    void *arg)
{
	struct job *j;
	int rc = 0;

	if ((j = calloc(1, sizeof(*j))) == NULL)
		return 0;
	j->work = work;
	j->hand = hand;
	j->done = done;
	j->arg = arg;
	pthread_mutex_lock(&q->mu);
	if (!q->stopping) {
		push(&q->head, &q->tail, j);
		pthread_cond_signal(&q->cv);
		rc = 1;
	}
	pthread_mutex_unlock(&q->mu);
	if (!rc)
		free(j);
	return rc;
}

int
workq_submit(struct workq *q, workq_fn work, workq_fn done, void *arg)
{
	return submit(q, work, NULL, done, arg);
}

int
workq_submit_then(struct workq *q, workq_hand_fn work, workq_fn done,
    void *arg)
{
	return submit(q, NULL, work, done, arg);
}
