/*
 * ratelog.h - log lines for events that come in floods (refused, shed or
 * timed-out connections): at most one info line a second per reason,
 * carrying the number of events since the previous line and the address
 * seen most often among them, e.g.
 *
 *   http: refused 1200 connections in the last 1s (max_per_address 64),
 *   top address 127.0.0.2 (1100)
 *
 * The first event after a quiet second is logged at once.  A counter of
 * every event ever (for /metrics) is kept beside it.  Thread-safe: the
 * mutex is taken only when an event happens or on ratelog_flush.
 */
#ifndef MICA_RATELOG_H
#define MICA_RATELOG_H

#include <netinet/in.h>

#include <pthread.h>
#include <stdint.h>
#include <time.h>

#define RATELOG_TOP	8		/* addresses tracked per line */
#define RATELOG_TEXT	96

struct ratelog_addr {
	char		addr[INET6_ADDRSTRLEN];
	uint64_t	n;
};

struct ratelog {
	pthread_mutex_t		mu;
	int			mu_ok;
	char			what[RATELOG_TEXT];	/* "http: refused" */
	char			why[RATELOG_TEXT];	/* "max_per_address 64" */
	time_t			since;		/* first event not yet logged */
	time_t			last;		/* last line written; 0: none */
	uint64_t		n;		/* events not yet logged */
	uint64_t		total;		/* every event (atomic) */
	struct ratelog_addr	top[RATELOG_TOP];
};

/*
 * Sets up rl: lines read "<what> N connection(s) in the last Ss (<why>),
 * top address A (K)".  Returns 1, or 0 when the mutex cannot be made.
 */
int		ratelog_init(struct ratelog *rl, const char *what,
		    const char *why);
/* Frees rl's mutex; rl must not be used meanwhile.  Zeroed rl allowed. */
void		ratelog_cleanup(struct ratelog *rl);
/* Counts one event from addr ("" or NULL if unknown); may log a line. */
void		ratelog_event(struct ratelog *rl, const char *addr);
/* Logs the events counted since the last line if a second has passed
 * (call it about once a second so the tail of a flood is not lost). */
void		ratelog_flush(struct ratelog *rl);
/* Every event counted since ratelog_init. */
uint64_t	ratelog_total(struct ratelog *rl);

#endif
