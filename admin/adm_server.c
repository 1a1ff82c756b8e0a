/*
 * adm_server.c - the admin unix socket: accept, check the peer's uid,
 * read one framed request (with an optional passed descriptor), run it,
 * write the reply, close.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include <sodium.h>

#include "admin/adm_local.h"
#include "ca/micad.h"
#include "common/log.h"
#include "conf/conf.h"

#define ADM_READ_TIMEOUT	30	/* seconds to send the request */

struct adm_conn {
	struct adm_conn		*next;
	int			 fd;
	struct event		*rev;
	struct bufferevent	*bev;	/* for the reply */
	struct wb		 in;
	struct adm_req		*req;	/* while a command runs */
	struct event		*deadline;	/* request must be in by then */
	int			 running;	/* a command runs */
	int			 closing;	/* free when it ends */
	uint64_t		 id;
};

static struct {
	struct micad		*d;
	struct evconnlistener	*lst;
	struct adm_conn		*conns;
	char			 path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	uint64_t		 next_id;
} adm;

static void	req_free(struct adm_req *);

static void
conn_free(struct adm_conn *c)
{
	struct adm_conn **pp;

	for (pp = &adm.conns; *pp != NULL; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	if (c->rev != NULL)
		event_free(c->rev);
	if (c->deadline != NULL)
		event_free(c->deadline);
	if (c->bev != NULL)
		bufferevent_free(c->bev);	/* closes fd */
	else if (c->fd >= 0)
		close(c->fd);
	/* A request still being read (and a descriptor passed with it) is
	 * ours to free; a running one is freed by adm_done. */
	if (c->req != NULL && !c->running)
		req_free(c->req);
	wb_wipe(&c->in);	/* may hold a password */
	free(c);
}

static void
req_free(struct adm_req *r)
{
	if (r->fd >= 0)
		close(r->fd);
	adm_msg_cleanup(&r->in);
	adm_msg_cleanup(&r->rep);
	free(r);
}

static void
reply_written(struct bufferevent *bev, void *arg)
{
	struct adm_conn *c = arg;

	if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		conn_free(c);
}

static void
reply_event(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	(void)what;
	conn_free(arg);
}

static void
wipe_free(const void *data, size_t len, void *arg)
{
	(void)arg;
	sodium_memzero((void *)data, len);
	free((void *)data);
}

/*
 * Replies are for a terminal: control characters other than newline and
 * tab (an escape sequence in a subscriber's note, say) become '?'.
 */
static void
defuse(struct wb *b)
{
	size_t i;

	for (i = 0; i < b->len; i++)
		if ((b->data[i] < 0x20 && b->data[i] != '\n' &&
		    b->data[i] != '\t') || b->data[i] == 0x7f)
			b->data[i] = '?';
}

/* Writes a reply built from code/out/err and schedules the close. */
static void
send_reply(struct adm_conn *c, struct adm_msg *rep)
{
	struct wb b;
	uint8_t *data;
	size_t len;

	defuse(&rep->out);
	defuse(&rep->err);
	wb_init_secret(&b);
	if (!adm_reply_encode(&b, rep)) {
		log_warnx("admin conn=%llu: reply too large or out of memory",
		    (unsigned long long)c->id);
		wb_wipe(&b);
		conn_free(c);
		return;
	}
	if (c->rev != NULL) {
		event_free(c->rev);
		c->rev = NULL;
	}
	c->bev = bufferevent_socket_new(adm.d->base, c->fd,
	    BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		wb_wipe(&b);
		conn_free(c);
		return;
	}
	c->fd = -1;
	bufferevent_setcb(c->bev, NULL, reply_written, reply_event, c);
	/* The reply may hold a TOTP secret: hand the buffer itself to the
	 * output (no copy) and wipe it when it has been sent. */
	data = wb_steal(&b, &len);
	if (evbuffer_add_reference(bufferevent_get_output(c->bev), data, len,
	    wipe_free, NULL) != 0) {
		wipe_free(data, len, NULL);
		conn_free(c);
		return;
	}
	bufferevent_enable(c->bev, EV_WRITE);
}

void
adm_done(struct adm_req *r)
{
	struct adm_conn *c = r->conn;

	if (c != NULL) {
		c->req = NULL;
		if (c->closing)
			conn_free(c);
		else
			send_reply(c, &r->rep);
	}
	req_free(r);
}

static void
vappend(struct wb *b, const char *prefix, const char *fmt, va_list ap)
{
	char *text = NULL;
	int n;

	if (prefix != NULL)
		wb_str(b, prefix);
	if ((n = vasprintf(&text, fmt, ap)) < 0) {
		b->failed = 1;
		return;
	}
	wb_put(b, text, (size_t)n);
	sodium_memzero(text, (size_t)n);
	free(text);
}

void
adm_out(struct adm_req *r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vappend(&r->rep.out, NULL, fmt, ap);
	va_end(ap);
}

void
adm_fail(struct adm_req *r, const char *fmt, ...)
{
	va_list ap;

	r->rep.code = 1;
	va_start(ap, fmt);
	vappend(&r->rep.err, "mica-admin: ", fmt, ap);
	va_end(ap);
	wb_u8(&r->rep.err, '\n');
}

void
adm_usage(struct adm_req *r, const char *fmt, ...)
{
	va_list ap;

	r->rep.code = 2;
	va_start(ap, fmt);
	vappend(&r->rep.err, "mica-admin: ", fmt, ap);
	va_end(ap);
	wb_u8(&r->rep.err, '\n');
}

/* Reads what is there (and a passed descriptor); runs a complete frame. */
static void
conn_read(evutil_socket_t fd, short what, void *arg)
{
	struct adm_conn *c = arg;
	uint8_t buf[16384];
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct msghdr mh;
	struct iovec iov;
	struct cmsghdr *cm;
	struct adm_req *r;
	char err[256];
	ssize_t n;
	uint32_t flen;
	int passed = -1;

	if (what & EV_TIMEOUT) {
		log_warnx("admin conn=%llu: request not received in time",
		    (unsigned long long)c->id);
		conn_free(c);
		return;
	}
	memset(&mh, 0, sizeof(mh));
	iov.iov_base = buf;
	iov.iov_len = sizeof(buf);
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cbuf;
	mh.msg_controllen = sizeof(cbuf);
	n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	for (cm = CMSG_FIRSTHDR(&mh); n >= 0 && cm != NULL;
	    cm = CMSG_NXTHDR(&mh, cm))
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS)
			memcpy(&passed, CMSG_DATA(cm), sizeof(int));
	if (n <= 0) {
		if (passed >= 0)
			close(passed);
		conn_free(c);
		return;
	}
	wb_put(&c->in, buf, (size_t)n);
	sodium_memzero(buf, (size_t)n);
	if (passed >= 0) {
		/* keep it in the request; only one per connection */
		if (c->req == NULL && (r = calloc(1, sizeof(*r))) != NULL) {
			r->fd = passed;
			c->req = r;
		} else
			close(passed);
	}
	if (c->in.len >= 4) {
		flen = be32_get(c->in.data);
		if (flen > ADM_MAX_REQUEST) {
			log_warnx("admin conn=%llu: request of %u bytes refused",
			    (unsigned long long)c->id, flen);
			conn_free(c);
			return;
		}
		if (c->in.len < 4 + (size_t)flen)
			return;
	} else
		return;
	event_del(c->rev);
	c->running = 1;
	if (c->deadline != NULL)
		evtimer_del(c->deadline);

	if ((r = c->req) == NULL) {
		if ((r = calloc(1, sizeof(*r))) == NULL)
			fatalx("admin: out of memory");
		r->fd = -1;
		c->req = r;
	}
	r->d = adm.d;
	r->conn = c;
	adm_msg_init(&r->in);
	adm_msg_init(&r->rep);
	{
		struct ucred cr;
		socklen_t cl = sizeof(cr);

		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &cl) == 0)
			r->uid = cr.uid;
	}
	snprintf(r->actor, sizeof(r->actor), "admin(uid=%u)",
	    (unsigned)r->uid);
	if (!adm_request_parse(&r->in, c->in.data + 4, flen, err,
	    sizeof(err))) {
		log_warnx("admin conn=%llu: malformed request: %s",
		    (unsigned long long)c->id, err);
		adm_fail(r, "malformed request: %s", err);
		adm_done(r);
		return;
	}
	adm_dispatch(r);
}

static void
conn_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct adm_conn *c = arg;

	(void)fd;
	(void)what;
	log_warnx("admin conn=%llu: request not received in %ds",
	    (unsigned long long)c->id, ADM_READ_TIMEOUT);
	conn_free(c);
}

static int
uid_allowed(uid_t uid)
{
	const struct conf_admin *a = &adm.d->conf->admin;
	int i;

	if (uid == 0 || uid == geteuid())
		return 1;
	for (i = 0; i < a->num_allowed_uids; i++)
		if (a->allowed_uids[i] == uid)
			return 1;
	return 0;
}

static void
refuse(int fd, uid_t uid)
{
	struct adm_msg rep;
	struct wb b;

	adm_msg_init(&rep);
	rep.code = 1;
	wb_str(&rep.err, "mica-admin: permission denied: uid ");
	{
		char num[32];

		snprintf(num, sizeof(num), "%u", (unsigned)uid);
		wb_str(&rep.err, num);
	}
	wb_str(&rep.err, " is not allowed to use the admin socket\n");
	wb_init(&b);
	if (adm_reply_encode(&b, &rep))
		(void)!write(fd, b.data, b.len);	/* best effort */
	wb_cleanup(&b);
	adm_msg_cleanup(&rep);
	close(fd);
}

static void
accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
    int salen, void *arg)
{
	struct adm_conn *c;
	struct ucred cr;
	socklen_t cl = sizeof(cr);
	struct timeval tv = { ADM_READ_TIMEOUT, 0 };

	(void)l;
	(void)sa;
	(void)salen;
	(void)arg;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &cl) != 0) {
		log_warn("admin: SO_PEERCRED");
		close(fd);
		return;
	}
	if (!uid_allowed(cr.uid)) {
		log_warnx("admin: refused uid=%u pid=%d", (unsigned)cr.uid,
		    (int)cr.pid);
		refuse(fd, cr.uid);
		return;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		close(fd);
		return;
	}
	c->fd = fd;
	c->id = ++adm.next_id;
	wb_init_secret(&c->in);
	evutil_make_socket_nonblocking(fd);
	c->rev = event_new(adm.d->base, fd, EV_READ | EV_PERSIST, conn_read, c);
	/* An absolute deadline: a request trickled in a byte at a time
	 * would re-arm a read timeout for ever. */
	c->deadline = evtimer_new(adm.d->base, conn_deadline, c);
	if (c->rev == NULL || c->deadline == NULL ||
	    event_add(c->rev, NULL) != 0 || evtimer_add(c->deadline, &tv) != 0) {
		conn_free(c);
		return;
	}
	c->next = adm.conns;
	adm.conns = c;
}

/* The socket's directory must not let others replace the socket. */
static int
check_dir(const char *path)
{
	char dir[sizeof(adm.path)], *slash;
	struct stat sb;

	snprintf(dir, sizeof(dir), "%s", path);
	if ((slash = strrchr(dir, '/')) == NULL)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == dir)
		slash[1] = '\0';
	else
		*slash = '\0';
	if (stat(dir, &sb) != 0) {
		log_warn("admin socket directory %s", dir);
		return 0;
	}
	if ((sb.st_mode & 0022) && !(sb.st_mode & S_ISVTX)) {
		log_warnx("admin socket directory %s is writable by group or "
		    "others (mode %03o); refusing to create %s there", dir,
		    (unsigned)(sb.st_mode & 0777), path);
		return 0;
	}
	return 1;
}

int
adm_server_start(struct micad *d)
{
	struct sockaddr_un sun;
	const struct conf_admin *a = &d->conf->admin;
	const char *path = a->socket;
	struct stat sb;
	struct group *gr = NULL;
	int fd = -1, shared;
	mode_t old;

	memset(&adm, 0, sizeof(adm));
	adm.d = d;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		log_warnx("admin socket path too long: %s", path);
		return 0;
	}
	/* Other users reach the socket through its group: 0660. */
	shared = a->group[0] != '\0' || a->num_allowed_uids > 0;
	if (a->group[0] != '\0' && (gr = getgrnam(a->group)) == NULL) {
		log_warnx("[admin] group: no such group \"%s\"", a->group);
		return 0;
	}
	if (!check_dir(path))
		return 0;
	/* The store lock guarantees no other micad owns this socket. */
	if (lstat(path, &sb) == 0) {
		if (!S_ISSOCK(sb.st_mode)) {
			log_warnx("%s exists and is not a socket", path);
			return 0;
		}
		unlink(path);
	}
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0)) < 0) {
		log_warn("admin socket");
		return 0;
	}
	/* The mode comes from the umask at bind: no chmod by path. */
	old = umask(shared ? 0117 : 0177);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		umask(old);
		log_warn("bind %s", path);
		close(fd);
		return 0;
	}
	umask(old);
	/* AF_UNIX has no fchown before bind; the directory is checked not
	 * writable by others, and a symlink there is never followed. */
	if (gr != NULL && fchownat(AT_FDCWD, path, (uid_t)-1, gr->gr_gid,
	    AT_SYMLINK_NOFOLLOW) != 0) {
		log_warn("admin socket %s: chgrp %s", path, a->group);
		close(fd);
		unlink(path);
		return 0;
	}
	if (listen(fd, 64) != 0) {
		log_warn("admin socket %s", path);
		close(fd);
		unlink(path);
		return 0;
	}
	adm.lst = evconnlistener_new(d->base, accept_cb, NULL,
	    LEV_OPT_CLOSE_ON_FREE, -1, fd);
	if (adm.lst == NULL) {
		log_warnx("admin: cannot listen on %s", path);
		close(fd);
		unlink(path);
		return 0;
	}
	snprintf(adm.path, sizeof(adm.path), "%s", path);
	if (gr != NULL)
		log_info("admin socket %s (mode 0660, group %s)", path,
		    a->group);
	else
		log_info("admin socket %s (mode %s)", path, shared ? "0660" :
		    "0600");
	return 1;
}

void
adm_server_stop(void)
{
	struct adm_conn *c, *next;

	if (adm.lst != NULL) {
		evconnlistener_free(adm.lst);
		adm.lst = NULL;
		unlink(adm.path);
	}
	for (c = adm.conns; c != NULL; c = next) {
		next = c->next;
		if (c->running && c->bev == NULL) {
			c->closing = 1;	/* its adm_done frees it */
			continue;
		}
		conn_free(c);
	}
}
