/*
 * notify.c - runs the notify command for events, off the event loop, with
 * a timeout and retries with backoff.  See notify.h.
 */
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ca/notify.h"
#include "common/bytes.h"
#include "common/json.h"
#include "common/log.h"

extern char **environ;

#define POLL_MS		50
#define STOP_GRACE_MS	2000

struct nitem {
	struct nitem	*next;
	char		*json;
	size_t		 len;
	char		 event[32];
	uint64_t	 seq;
	unsigned	 attempts;	/* failed attempts so far */
	int64_t		 due_ms;	/* monotonic */
};

struct notify {
	pthread_t	 thread;
	pthread_mutex_t	 mtx;
	pthread_cond_t	 cond;
	struct nitem	*head, *tail;
	size_t		 num;
	char		 command[NOTIFY_CMD_MAX];
	int		 timeout;
	int		 retry_delay;
	int		 stopping;
	uint64_t	 seq;
	_Atomic uint64_t delivered, failures;
};

static int64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

static void
item_free(struct nitem *it)
{
	if (it == NULL)
		return;
	free(it->json);
	free(it);
}

void
notify_json(struct wb *b, const struct notify_info *in, uint64_t seq)
{
	char hex[SERIAL_HEX_LEN], iso[32];
	time_t t = in->time != 0 ? (time_t)in->time : time(NULL);
	struct tm tm;

	wb_str(b, "{");
	json_kv_str(b, 1, "event", in->event);
	json_kv_u64(b, 0, "seq", seq);
	json_kv_i64(b, 0, "time", (int64_t)t);
	gmtime_r(&t, &tm);
	strftime(iso, sizeof(iso), "%Y-%m-%dT%H:%M:%SZ", &tm);
	json_kv_str(b, 0, "time_iso", iso);
	if (in->serial != NULL) {
		serial_hex(hex, in->serial);
		json_kv_str(b, 0, "serial", hex);
	}
	if (in->account != NULL && in->account[0] != '\0')
		json_kv_str(b, 0, "account", in->account);
	if (in->request_id != 0)
		json_kv_u64(b, 0, "request_id", in->request_id);
	if (in->new_serial != NULL) {
		serial_hex(hex, in->new_serial);
		json_kv_str(b, 0, "new_serial", hex);
	}
	if (in->reason != NULL)
		json_kv_str(b, 0, "reason", in->reason);
	if (in->actor != NULL)
		json_kv_str(b, 0, "actor", in->actor);
	if (in->why != NULL)
		json_kv_str(b, 0, "why", in->why);
	if (in->not_after != 0) {
		t = (time_t)in->not_after;
		gmtime_r(&t, &tm);
		strftime(iso, sizeof(iso), "%Y-%m-%dT%H:%M:%SZ", &tm);
		json_kv_i64(b, 0, "not_after", in->not_after);
		json_kv_str(b, 0, "not_after_iso", iso);
	}
	if (in->threshold != 0) {
		json_kv_i64(b, 0, "days_left", in->days_left);
		json_kv_i64(b, 0, "threshold_days", in->threshold);
	}
	wb_str(b, "}");
}

/* Writes the JSON to the child's stdin; a child that does not read it
 * only loses its input (EPIPE), the result is its exit status. */
static void
feed(int fd, const char *p, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = write(fd, p, len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		p += n;
		len -= (size_t)n;
	}
}

/* Runs the command once; returns 1 when it exited 0. */
static int
run_once(struct notify *n, const char *cmd, const struct nitem *it)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	char *argv[] = { "/bin/sh", "-c", (char *)cmd, NULL };
	char evenv[64], **envp = NULL;
	size_t ne = 0, i;
	int p[2] = { -1, -1 }, st = 0, rc = 0, r, fa_ok = 0, at_ok = 0;
	int64_t deadline, stop_at = 0;
	pid_t pid = -1, w;

	if (pipe2(p, O_CLOEXEC) == -1) {
		log_warn("notify: pipe");
		goto out;
	}
	while (environ[ne] != NULL)
		ne++;
	if ((envp = calloc(ne + 2, sizeof(*envp))) == NULL)
		goto out;
	for (i = 0; i < ne; i++)
		envp[i] = environ[i];
	snprintf(evenv, sizeof(evenv), "MICA_EVENT=%s", it->event);
	envp[ne] = evenv;
	if (posix_spawn_file_actions_init(&fa) != 0)
		goto out;
	fa_ok = 1;
	if (posix_spawnattr_init(&at) != 0)
		goto out;
	at_ok = 1;
	/* stdin = the JSON, stdout joins micad's stderr (the log) */
	posix_spawn_file_actions_adddup2(&fa, p[0], 0);
	posix_spawn_file_actions_adddup2(&fa, 2, 1);
	posix_spawn_file_actions_addclosefrom_np(&fa, 3);
	posix_spawnattr_setpgroup(&at, 0);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP |
	    POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	{
		sigset_t none, all;

		sigemptyset(&none);
		sigfillset(&all);
		posix_spawnattr_setsigmask(&at, &none);
		posix_spawnattr_setsigdefault(&at, &all);
	}
	if ((r = posix_spawn(&pid, "/bin/sh", &fa, &at, argv, envp)) != 0) {
		errno = r;
		log_warn("notify: event=%s seq=%" PRIu64 " cannot start "
		    "/bin/sh", it->event, it->seq);
		pid = -1;
		goto out;
	}
	close(p[0]);
	p[0] = -1;
	feed(p[1], it->json, it->len);
	feed(p[1], "\n", 1);
	close(p[1]);
	p[1] = -1;

	deadline = mono_ms() + (int64_t)n->timeout * 1000;
	for (;;) {
		w = waitpid(pid, &st, WNOHANG);
		if (w == pid)
			break;
		if (w == -1 && errno != EINTR) {
			log_warn("notify: waitpid");
			pid = -1;
			goto out;
		}
		pthread_mutex_lock(&n->mtx);
		if (n->stopping && stop_at == 0)
			stop_at = mono_ms() + STOP_GRACE_MS;
		pthread_mutex_unlock(&n->mtx);
		if (mono_ms() >= deadline || (stop_at != 0 &&
		    mono_ms() >= stop_at)) {
			log_warnx("notify: event=%s seq=%" PRIu64 " command "
			    "timed out after %d s: killed", it->event,
			    it->seq, stop_at != 0 ? STOP_GRACE_MS / 1000 :
			    n->timeout);
			kill(-pid, SIGKILL);
			kill(pid, SIGKILL);
			while (waitpid(pid, &st, 0) == -1 && errno == EINTR)
				;
			pid = -1;
			goto out;
		}
		sleep_ms(POLL_MS);
	}
	pid = -1;
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		rc = 1;
	else if (WIFEXITED(st))
		log_warnx("notify: event=%s seq=%" PRIu64 " command exited "
		    "with status %d", it->event, it->seq, WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		log_warnx("notify: event=%s seq=%" PRIu64 " command killed by "
		    "signal %d", it->event, it->seq, WTERMSIG(st));
 out:
	if (fa_ok)
		posix_spawn_file_actions_destroy(&fa);
	if (at_ok)
		posix_spawnattr_destroy(&at);
	if (p[0] != -1)
		close(p[0]);
	if (p[1] != -1)
		close(p[1]);
	free(envp);
	return rc;
}

/* Delay before retry number attempts (1, 2, 3, ...). */
static int64_t
backoff_ms(const struct notify *n, unsigned attempts)
{
	int64_t d = (int64_t)n->retry_delay * 1000;

	if (attempts <= 1)
		return d;
	if (attempts == 2)
		return d * 6;
	return d * 24;
}

/* With the lock held: unlinks and returns the earliest due item, or NULL
 * with *out_wait_ms = how long until one is due (-1: none queued). */
static struct nitem *
take_due(struct notify *n, int64_t now, int64_t *out_wait_ms)
{
	struct nitem *it, *prev = NULL, *best = NULL, *bprev = NULL;

	*out_wait_ms = -1;
	for (it = n->head; it != NULL; prev = it, it = it->next)
		if (best == NULL || it->due_ms < best->due_ms) {
			best = it;
			bprev = prev;
		}
	if (best == NULL)
		return NULL;
	if (best->due_ms > now) {
		*out_wait_ms = best->due_ms - now;
		return NULL;
	}
	if (bprev == NULL)
		n->head = best->next;
	else
		bprev->next = best->next;
	if (n->tail == best)
		n->tail = bprev;
	best->next = NULL;
	n->num--;
	return best;
}

static void
push_locked(struct notify *n, struct nitem *it)
{
	struct nitem *old;

	if (n->num >= NOTIFY_QUEUE_MAX && (old = n->head) != NULL) {
		n->head = old->next;
		if (n->tail == old)
			n->tail = NULL;
		n->num--;
		log_warnx("notify: queue full (%d): dropped event=%s seq=%"
		    PRIu64, NOTIFY_QUEUE_MAX, old->event, old->seq);
		item_free(old);
	}
	it->next = NULL;
	if (n->tail != NULL)
		n->tail->next = it;
	else
		n->head = it;
	n->tail = it;
	n->num++;
}

static void *
notify_main(void *arg)
{
	struct notify *n = arg;
	struct nitem *it;
	char cmd[NOTIFY_CMD_MAX];
	int64_t wait_ms;
	int ok;

	pthread_mutex_lock(&n->mtx);
	while (!n->stopping) {
		if ((it = take_due(n, mono_ms(), &wait_ms)) == NULL) {
			if (wait_ms < 0)
				pthread_cond_wait(&n->cond, &n->mtx);
			else {
				struct timespec ts;

				clock_gettime(CLOCK_MONOTONIC, &ts);
				ts.tv_sec += wait_ms / 1000;
				ts.tv_nsec += (wait_ms % 1000) * 1000000L;
				if (ts.tv_nsec >= 1000000000L) {
					ts.tv_sec++;
					ts.tv_nsec -= 1000000000L;
				}
				pthread_cond_timedwait(&n->cond, &n->mtx, &ts);
			}
			continue;
		}
		memcpy(cmd, n->command, sizeof(cmd));
		pthread_mutex_unlock(&n->mtx);
		ok = cmd[0] == '\0' ? 1 : run_once(n, cmd, it);
		pthread_mutex_lock(&n->mtx);
		if (ok) {
			log_debug("notify: event=%s seq=%" PRIu64 " delivered",
			    it->event, it->seq);
			atomic_fetch_add(&n->delivered, 1);
			item_free(it);
			continue;
		}
		atomic_fetch_add(&n->failures, 1);
		it->attempts++;
		it->due_ms = mono_ms() + backoff_ms(n, it->attempts);
		log_warnx("notify: event=%s seq=%" PRIu64 " attempt %u failed; "
		    "retry in %" PRId64 " s", it->event, it->seq, it->attempts,
		    backoff_ms(n, it->attempts) / 1000);
		push_locked(n, it);
	}
	pthread_mutex_unlock(&n->mtx);
	return NULL;
}

struct notify *
notify_new(const struct notify_opts *o)
{
	struct notify *n;
	pthread_condattr_t ca;

	if ((n = calloc(1, sizeof(*n))) == NULL)
		return NULL;
	snprintf(n->command, sizeof(n->command), "%s",
	    o->command != NULL ? o->command : "");
	n->timeout = o->timeout > 0 ? o->timeout : 30;
	n->retry_delay = o->retry_delay > 0 ? o->retry_delay : 5;
	pthread_mutex_init(&n->mtx, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&n->cond, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&n->thread, NULL, notify_main, n) != 0) {
		log_warnx("notify: cannot start the notifier thread");
		pthread_cond_destroy(&n->cond);
		pthread_mutex_destroy(&n->mtx);
		free(n);
		return NULL;
	}
	return n;
}

void
notify_free(struct notify *n)
{
	struct nitem *it;

	if (n == NULL)
		return;
	pthread_mutex_lock(&n->mtx);
	n->stopping = 1;
	pthread_cond_broadcast(&n->cond);
	pthread_mutex_unlock(&n->mtx);
	pthread_join(n->thread, NULL);
	while ((it = n->head) != NULL) {
		n->head = it->next;
		log_warnx("notify: event=%s seq=%" PRIu64 " undelivered at "
		    "shutdown (%u failed attempts): %.*s", it->event, it->seq,
		    it->attempts, (int)it->len, it->json);
		item_free(it);
	}
	pthread_cond_destroy(&n->cond);
	pthread_mutex_destroy(&n->mtx);
	free(n);
}

int
notify_set_command(struct notify *n, const char *command)
{
	if (n == NULL || strlen(command) >= NOTIFY_CMD_MAX)
		return 0;
	pthread_mutex_lock(&n->mtx);
	snprintf(n->command, sizeof(n->command), "%s", command);
	pthread_mutex_unlock(&n->mtx);
	return 1;
}

int
notify_event(struct notify *n, const struct notify_info *info)
{
	struct nitem *it = NULL;
	struct wb b;
	uint64_t seq;
	int rc = 0;

	wb_init(&b);
	if (n == NULL)
		return 1;
	pthread_mutex_lock(&n->mtx);
	if (n->command[0] == '\0' || n->stopping) {
		pthread_mutex_unlock(&n->mtx);
		return 1;
	}
	seq = ++n->seq;
	pthread_mutex_unlock(&n->mtx);
	if ((it = calloc(1, sizeof(*it))) == NULL)
		goto out;
	it->seq = seq;
	snprintf(it->event, sizeof(it->event), "%s", info->event);
	notify_json(&b, info, it->seq);
	if (!wb_ok(&b))
		goto out;
	it->json = (char *)wb_steal(&b, &it->len);
	it->due_ms = mono_ms();
	pthread_mutex_lock(&n->mtx);
	push_locked(n, it);
	pthread_cond_signal(&n->cond);
	pthread_mutex_unlock(&n->mtx);
	it = NULL;
	rc = 1;
 out:
	if (!rc)
		log_warnx("notify: out of memory: event=%s lost", info->event);
	item_free(it);
	wb_cleanup(&b);
	return rc;
}

uint64_t
notify_stat_delivered(struct notify *n)
{
	return n == NULL ? 0 : atomic_load(&n->delivered);
}

uint64_t
notify_stat_failures(struct notify *n)
{
	return n == NULL ? 0 : atomic_load(&n->failures);
}

uint64_t
notify_stat_queued(struct notify *n)
{
	uint64_t q;

	if (n == NULL)
		return 0;
	pthread_mutex_lock(&n->mtx);
	q = n->num;
	pthread_mutex_unlock(&n->mtx);
	return q;
}
