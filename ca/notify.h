/*
 * notify.h - the notify hook: micad runs [daemon] notify_command for
 * request.created, request.approved, request.rejected, cert.revoked,
 * cert.hold, cert.released and cert.expiring, with ONE JSON object on its
 * stdin (and MICA_EVENT=<event> in its environment).
 *
 * Commands run one at a time on the notifier's own thread (posix_spawn of
 * /bin/sh -c COMMAND in its own process group, waitpid there), never on
 * the event loop.  A command that exits != 0, is killed by a signal, runs
 * longer than the timeout (its process group then gets SIGKILL) or cannot
 * be started is logged and retried after retry_delay, 6 x retry_delay and
 * then every 24 x retry_delay (5 s, 30 s, 120 s, 120 s, ... by default)
 * for as long as micad runs; events still queued at shutdown are logged
 * as undelivered.  The queue holds at most NOTIFY_QUEUE_MAX events; beyond
 * that the oldest is dropped with a warning.
 *
 * Callers emit events only AFTER the store commit they report.  The JSON
 * never carries a secret (no token, password, TOTP or key material).
 */
#ifndef MICA_NOTIFY_H
#define MICA_NOTIFY_H

#include <stddef.h>
#include <stdint.h>

struct wb;
struct notify;

#define NOTIFY_QUEUE_MAX	10000
#define NOTIFY_CMD_MAX		1024

struct notify_opts {
	const char	*command;	/* "" or NULL: events are dropped */
	int		 timeout;	/* s, kill after; 0 = 30 */
	int		 retry_delay;	/* s, first retry; 0 = 5 */
};

/* What an event says; unset fields (NULL, 0) are left out of the JSON. */
struct notify_info {
	const char	*event;		/* "cert.revoked", ... (required) */
	const uint8_t	*serial;	/* 16 bytes: the certificate */
	const uint8_t	*new_serial;	/* 16 bytes: request.approved */
	const char	*account;
	uint64_t	 request_id;
	const char	*reason;	/* CRL or request reason name */
	const char	*actor;		/* who decided */
	const char	*why;		/* rejection text */
	int64_t		 not_after;	/* cert.expiring */
	int		 days_left;	/* cert.expiring */
	int		 threshold;	/* cert.expiring: 30, 7 or 1 */
	int64_t		 time;		/* 0 = now */
};

/*
 * Starts the notifier thread.  Returns the notifier (notify_free) or NULL
 * on error (logged).
 */
struct notify	*notify_new(const struct notify_opts *);
/*
 * Stops the thread: a running command gets 2 more seconds, then is
 * killed; queued events are logged as undelivered.  NULL allowed.
 */
void		 notify_free(struct notify *);
/* Replaces the command (SIGHUP); "" disables.  Thread-safe.  1 or 0. */
int		 notify_set_command(struct notify *, const char *command);
/*
 * Queues one event (built into JSON at once).  Any thread; never blocks
 * on the command.  NULL notifier or no command: dropped, returns 1.
 * Returns 0 only when out of memory.
 */
int		 notify_event(struct notify *, const struct notify_info *);
/* Appends the JSON object for info (no newline) to b (for tests too). */
void		 notify_json(struct wb *b, const struct notify_info *info,
		    uint64_t seq);

/* Counters for /metrics and tests: delivered, failed attempts, queued. */
uint64_t	 notify_stat_delivered(struct notify *);
uint64_t	 notify_stat_failures(struct notify *);
uint64_t	 notify_stat_queued(struct notify *);

#endif
