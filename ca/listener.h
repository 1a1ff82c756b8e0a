/*
 * listener.h - the CA protocol listener of micad: TLS 1.3 over TCP on
 * [protocol] listen, one state machine per connection, frames decoded
 * with ca/proto.h, LOGIN / REISSUE / WAIT / FETCH / STATUS served with
 * ca/auth.h and ca/reissue.h.  Runs entirely on the micad event loop.
 */
#ifndef MICA_LISTENER_H
#define MICA_LISTENER_H

#include <stddef.h>
#include <stdint.h>

struct micad;

/*
 * Loads the TLS certificate and key (conf->ca.tls_cert, tls_key), binds
 * conf->proto.listen and starts accepting on d->base.  d->reissue must be
 * set (reissue_new) before, d->workers must be running.  Returns 1, or 0
 * with the reason logged.  One listener per process.
 */
int	ca_listener_start(struct micad *d);
/*
 * Loads conf->ca.tls_cert/tls_key again (after a renewal): new
 * connections get the new certificate, open ones keep theirs.  Returns 1,
 * or 0 (logged) keeping the old one.  Loop thread only.
 */
int	ca_listener_reload_tls(void);
/*
 * After a reload: when ops/mem differ from the argon2id limits of the
 * dummy hash (what a login of an unknown account is verified against),
 * a new dummy is computed on a worker; logins that start after it is
 * ready use it (logged "argon2id dummy hash recomputed"), earlier ones
 * the old one.  Returns 1 (queued, or nothing to do, or not started), or
 * 0 (logged) when it could not be queued.  Loop thread only.
 */
int	ca_listener_set_argon2(uint64_t ops, size_t mem);
/* What the listener counts (refused, shed, closed connections). */
enum ca_listener_stat {
	CA_LISTENER_REFUSED_MAX_CONNECTIONS = 0,
	CA_LISTENER_REFUSED_PER_ADDRESS,
	CA_LISTENER_SHED,		/* closed for a new connection */
	CA_LISTENER_HANDSHAKE_FAILED,	/* TLS never completed */
	CA_LISTENER_LOGIN_TIMEOUT,	/* login_timeout */
	CA_LISTENER_PRELOGIN_ERROR,	/* error or timeout, TLS up, no login */
	CA_LISTENER_STAT_COUNT
};

/* Connections counted for st since start.  Any thread (atomic). */
uint64_t	ca_listener_stat(enum ca_listener_stat st);
/*
 * Stops accepting, closes every connection (waiters are dropped), frees
 * the TLS context.  Safe to call when not started.  Call before
 * reissue_free and before the event base is freed.
 */
void	ca_listener_stop(void);
/*
 * micad --argon2-dummy OPS MEM PPID (argv[1] is "--argon2-dummy"): the
 * child the listener runs to make the argon2id dummy hash for unknown
 * accounts; prints it and returns the exit status.  Not for users.
 */
int	ca_listener_dummy_main(int argc, char **argv);

#endif
