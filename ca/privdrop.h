/*
 * privdrop.h - running micad as an unprivileged user: resolve [daemon]
 * user/group, check that key files belong to the user micad runs as, hand
 * the admin socket (and renewed files) to it, then drop root for good.
 *
 * Order in micad: privdrop_resolve at start; privdrop_check_key for every
 * key file; bind all listeners and the admin socket as root;
 * privdrop_chown(admin socket); privdrop_drop; only then start the HTTP
 * and CRL threads and serve.  setgroups/setgid/setuid act on every thread
 * of the process (glibc), so threads started before the drop (the idle
 * worker pool) lose root too.
 */
#ifndef MICA_PRIVDROP_H
#define MICA_PRIVDROP_H

#include <stddef.h>
#include <sys/types.h>

struct privdrop {
	int	active;		/* 1: started as root with a user set */
	uid_t	uid;		/* the uid micad runs as after the drop */
	gid_t	gid;
	char	user[64];
};

/*
 * Resolves user (and group; "" = the user's primary group).  user "":
 * no drop, micad runs as it is (uid = geteuid()).  A user set while not
 * root is accepted only if it is the current user.  1, or 0 with err.
 */
int	privdrop_resolve(struct privdrop *, const char *user, const char *group,
	    char *err, size_t err_len);
/*
 * Refuses a key file not owned by the uid micad will run as, or readable
 * or writable by group or others.  1, or 0 with a message in err.
 */
int	privdrop_check_key(const struct privdrop *, const char *path,
	    char *err, size_t err_len);
/*
 * Hands path to the target user (and its group unless keep_group) when
 * active, without following a symlink at path; 1 (also if inactive) or 0
 * (logged).
 */
int	privdrop_chown(const struct privdrop *, const char *path,
	    int keep_group);
/*
 * 1 when the user micad will run as can read path by its owner, group and
 * mode bits (the primary group only), else 0 with a message in err.
 */
int	privdrop_can_read(const struct privdrop *, const char *path,
	    char *err, size_t err_len);
/*
 * Drops to the target user and group (setgroups, setgid, setuid) and
 * verifies that root cannot be regained.  No-op when inactive.  1, or 0
 * with err (the caller must exit).
 */
int	privdrop_drop(const struct privdrop *, char *err, size_t err_len);

#endif
