/*
 * ratelog.c - at most one log line a second per reason, with counts.
 *
 * The most frequent address of a window is estimated with the
 * space-saving algorithm over RATELOG_TOP slots: exact for up to
 * RATELOG_TOP addresses, and an address holding more than 1/RATELOG_TOP
 * of the events is always among the slots.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "common/ratelog.h"

static time_t
mono_now(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
		return time(NULL);
	return ts.tv_sec;
}

int
ratelog_init(struct ratelog *rl, const char *what, const char *why)
{
	memset(rl, 0, sizeof(*rl));
	snprintf(rl->what, sizeof(rl->what), "%s", what);
	snprintf(rl->why, sizeof(rl->why), "%s", why);
	if (pthread_mutex_init(&rl->mu, NULL) != 0)
		return 0;
	rl->mu_ok = 1;
	return 1;
}

void
ratelog_cleanup(struct ratelog *rl)
{
	if (rl->mu_ok)
		pthread_mutex_destroy(&rl->mu);
	rl->mu_ok = 0;
}

/* Space-saving: count addr in a slot, taking the smallest when full. */
static void
top_count(struct ratelog *rl, const char *addr)
{
	struct ratelog_addr *min = &rl->top[0];
	size_t i;

	for (i = 0; i < RATELOG_TOP; i++) {
		if (rl->top[i].n > 0 && strcmp(rl->top[i].addr, addr) == 0) {
			rl->top[i].n++;
			return;
		}
		if (rl->top[i].n < min->n)
			min = &rl->top[i];
	}
	snprintf(min->addr, sizeof(min->addr), "%s", addr);
	min->n++;
}

/* Writes the line for the events counted; rl->mu held. */
static void
emit(struct ratelog *rl, time_t now)
{
	const struct ratelog_addr *top = &rl->top[0];
	time_t secs = now - rl->since;
	size_t i;

	for (i = 1; i < RATELOG_TOP; i++)
		if (rl->top[i].n > top->n)
			top = &rl->top[i];
	log_info("%s %" PRIu64 " connection%s in the last %llds (%s), "
	    "top address %s (%" PRIu64 ")", rl->what, rl->n,
	    rl->n == 1 ? "" : "s", (long long)(secs > 0 ? secs : 1), rl->why,
	    top->n > 0 ? top->addr : "?", top->n);
	rl->n = 0;
	rl->last = now;
	memset(rl->top, 0, sizeof(rl->top));
}

void
ratelog_event(struct ratelog *rl, const char *addr)
{
	time_t now = mono_now();

	__atomic_add_fetch(&rl->total, 1, __ATOMIC_RELAXED);
	if (!rl->mu_ok)
		return;
	pthread_mutex_lock(&rl->mu);
	if (rl->n == 0)
		rl->since = rl->last != 0 && rl->last >= now - 1 ?
		    rl->last : now;
	rl->n++;
	if (addr != NULL && addr[0] != '\0')
		top_count(rl, addr);
	if (rl->last == 0 || now >= rl->last + 1)
		emit(rl, now);
	pthread_mutex_unlock(&rl->mu);
}

void
ratelog_flush(struct ratelog *rl)
{
	time_t now;

	if (!rl->mu_ok)
		return;
	now = mono_now();
	pthread_mutex_lock(&rl->mu);
	if (rl->n > 0 && now >= rl->last + 1)
		emit(rl, now);
	pthread_mutex_unlock(&rl->mu);
}

uint64_t
ratelog_total(struct ratelog *rl)
{
	return __atomic_load_n(&rl->total, __ATOMIC_RELAXED);
}
