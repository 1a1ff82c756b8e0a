/*
 * privdrop.c - user/group resolution, key ownership checks and the
 * irreversible drop of root (see privdrop.h).
 */
#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ca/privdrop.h"
#include "common/log.h"

int
privdrop_resolve(struct privdrop *p, const char *user, const char *group,
    char *err, size_t err_len)
{
	struct passwd *pw;
	struct group *gr;

	memset(p, 0, sizeof(*p));
	p->uid = geteuid();
	p->gid = getegid();
	if (user == NULL || user[0] == '\0')
		return 1;
	if ((pw = getpwnam(user)) == NULL) {
		snprintf(err, err_len, "[daemon] user: no such user \"%s\"",
		    user);
		return 0;
	}
	p->uid = pw->pw_uid;
	p->gid = pw->pw_gid;
	snprintf(p->user, sizeof(p->user), "%s", user);
	if (group != NULL && group[0] != '\0') {
		if ((gr = getgrnam(group)) == NULL) {
			snprintf(err, err_len, "[daemon] group: no such group "
			    "\"%s\"", group);
			return 0;
		}
		p->gid = gr->gr_gid;
	}
	if (geteuid() != 0) {
		if (pw->pw_uid != geteuid()) {
			snprintf(err, err_len, "[daemon] user %s: micad must "
			    "be started as root to switch to it (running as "
			    "uid %u)", user, (unsigned)geteuid());
			return 0;
		}
		return 1;	/* already that user: nothing to drop */
	}
	if (pw->pw_uid == 0) {
		snprintf(err, err_len, "[daemon] user %s: is root; choose an "
		    "unprivileged user", user);
		return 0;
	}
	p->active = 1;
	return 1;
}

static void
user_name(char *out, size_t len, uid_t uid)
{
	struct passwd *pw;

	if ((pw = getpwuid(uid)) != NULL)
		snprintf(out, len, "%s", pw->pw_name);
	else
		snprintf(out, len, "uid %u", (unsigned)uid);
}

/*
 * A key owned by someone else.  The usual case is micad -n run as root
 * on a CA directory the service user owns: then the fix is to run as
 * that user (or set [daemon] user), not to chown the keys to root, which
 * would stop the service from reading them.
 */
static void
owner_advice(const struct privdrop *p, const char *path, uid_t owner,
    char *err, size_t err_len)
{
	char own[64], me[64];

	user_name(own, sizeof(own), owner);
	user_name(me, sizeof(me), p->uid);
	if (p->active)
		snprintf(err, err_len, "%s: owned by %s (uid %u), but "
		    "[daemon] user is %s (uid %u): chown the CA's key files "
		    "to %s, or set [daemon] user = %s", path, own,
		    (unsigned)owner, me, (unsigned)p->uid, me, own);
	else if (owner == 0)
		snprintf(err, err_len, "%s: owned by root (uid 0), but micad "
		    "runs as %s (uid %u): chown the CA's key files to %s",
		    path, me, (unsigned)p->uid, me);
	else
		snprintf(err, err_len, "%s: owned by %s (uid %u), but micad "
		    "runs as %s (uid %u): run micad as %s (runuser -u %s -- "
		    "micad ..., as the systemd unit does with User=%s), or "
		    "start it as root with [daemon] user = %s; do not chown "
		    "the keys to %s, the service could no longer read them",
		    path, own, (unsigned)owner, me, (unsigned)p->uid, own,
		    own, own, own, me);
}

int
privdrop_check_key(const struct privdrop *p, const char *path, char *err,
    size_t err_len)
{
	struct stat sb;

	if (path == NULL || path[0] == '\0')
		return 1;
	if (stat(path, &sb) != 0) {
		snprintf(err, err_len, "%s: %s", path, strerror(errno));
		return 0;
	}
	if (sb.st_uid != p->uid) {
		owner_advice(p, path, sb.st_uid, err, err_len);
		return 0;
	}
	if (sb.st_mode & 077) {
		snprintf(err, err_len, "%s: readable or writable by group or "
		    "others (mode %03o); chmod 600 it", path,
		    (unsigned)(sb.st_mode & 0777));
		return 0;
	}
	return 1;
}

int
privdrop_chown(const struct privdrop *p, const char *path, int keep_group)
{
	gid_t g = keep_group ? (gid_t)-1 : p->gid;

	if (!p->active)
		return 1;
	/* Never through a symlink: root must not chown what it points to. */
	if (fchownat(AT_FDCWD, path, p->uid, g, AT_SYMLINK_NOFOLLOW) != 0) {
		log_warn("chown %s to %u:%d", path, (unsigned)p->uid,
		    keep_group ? -1 : (int)p->gid);
		return 0;
	}
	return 1;
}

int
privdrop_can_read(const struct privdrop *p, const char *path, char *err,
    size_t err_len)
{
	struct stat sb;
	int ok;

	if (stat(path, &sb) != 0) {
		snprintf(err, err_len, "%s: %s", path, strerror(errno));
		return 0;
	}
	if (p->uid == 0)
		return 1;
	if (sb.st_uid == p->uid)
		ok = (sb.st_mode & S_IRUSR) != 0;
	else if (sb.st_gid == p->gid)
		ok = (sb.st_mode & S_IRGRP) != 0;
	else
		ok = (sb.st_mode & S_IROTH) != 0;
	if (!ok)
		snprintf(err, err_len, "%s is not readable by %s (uid %u; "
		    "file owned by uid %u, mode %03o)", path,
		    p->user[0] != '\0' ? p->user : "micad", (unsigned)p->uid,
		    (unsigned)sb.st_uid, (unsigned)(sb.st_mode & 0777));
	return ok;
}

int
privdrop_drop(const struct privdrop *p, char *err, size_t err_len)
{
	if (!p->active)
		return 1;
	if (setgroups(1, &p->gid) != 0) {
		snprintf(err, err_len, "setgroups: %s", strerror(errno));
		return 0;
	}
	if (setresgid(p->gid, p->gid, p->gid) != 0) {
		snprintf(err, err_len, "setresgid(%u): %s", (unsigned)p->gid,
		    strerror(errno));
		return 0;
	}
	if (setresuid(p->uid, p->uid, p->uid) != 0) {
		snprintf(err, err_len, "setresuid(%u): %s", (unsigned)p->uid,
		    strerror(errno));
		return 0;
	}
	/* Verify: no way back to root, ids are what we asked for. */
	if (setuid(0) != -1 || seteuid(0) != -1 || setgid(0) != -1 ||
	    getuid() != p->uid || geteuid() != p->uid ||
	    getgid() != p->gid || getegid() != p->gid) {
		snprintf(err, err_len, "privilege drop to %s did not hold",
		    p->user);
		return 0;
	}
	log_info("running as user %s (uid %u, gid %u)", p->user,
	    (unsigned)p->uid, (unsigned)p->gid);
	return 1;
}
