/*
 * adm_local.h - admin module internals shared by the socket server and
 * the command handlers.
 */
#ifndef MICA_ADM_LOCAL_H
#define MICA_ADM_LOCAL_H

#include <sys/types.h>

#include "admin/admin.h"

struct adm_conn;

/* One admin request being served. */
struct adm_req {
	struct micad	*d;
	struct adm_msg	 in;		/* argv and attachments */
	struct adm_msg	 rep;		/* code, out, err, attachments */
	int		 fd;		/* passed with SCM_RIGHTS, or -1 */
	uid_t		 uid;		/* peer */
	char		 actor[64];	/* "admin(uid=1000)" for the audit */
	struct adm_conn	*conn;
	int		 async;		/* handler replies later */
};

/* Runs the command in req->in.argv; calls adm_done(req) (now or later). */
void	adm_dispatch(struct adm_req *);
/* Sends the reply and ends the connection. */
void	adm_done(struct adm_req *);

/* `check`: walks the store and proves OCSP and the CRLs agree with it
 * (admin/adm_check.c). */
void	adm_cmd_check(struct adm_req *);

void	adm_out(struct adm_req *, const char *, ...)
	    __attribute__((format(printf, 2, 3)));
/* Sets exit code 1 and appends "mica-admin: <msg>\n" to stderr text. */
void	adm_fail(struct adm_req *, const char *, ...)
	    __attribute__((format(printf, 2, 3)));
/* Exit code 2 (usage). */
void	adm_usage(struct adm_req *, const char *, ...)
	    __attribute__((format(printf, 2, 3)));

#endif
