/*
 * store.c - mica's LMDB environment: open/close, write transactions with
 * map growth and bounded retries, read transactions and reusable readers,
 * and the typed record operations of store/store.h.
 *
 * Threads: struct store is shared by all threads.  LMDB serialises write
 * transactions itself.  Growing the map (mdb_env_set_mapsize) is only legal
 * while no transaction of this process is active, so every transaction
 * (read, write, an active reader) holds map_lock shared, and growth takes
 * it exclusively.  Consequences for callers:
 *   - a reader's store_reader_begin and store_reader_end run on the same
 *     thread (the lock is a pthread rwlock);
 *   - a thread must not call store_write while it holds a reader between
 *     begin and end, nor store_write from inside a store_write callback
 *     (LMDB's writer lock is not recursive).
 * store_read or a reader used inside a store_write callback is fine.
 */
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <libgen.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <lmdb.h>
#include <sodium.h>

#include "common/bytes.h"
#include "common/keyhash.h"
#include "common/log.h"
#include "common/totpseal.h"
#include "store/journal.h"
#include "store/store.h"
#include "store/store_extra.h"

enum {
	DB_CERTS,
	DB_REVS,
	DB_ACCOUNTS,
	DB_REQUESTS,
	DB_AUDIT,
	DB_META,
	DB_BASE_COUNT,		/* the databases of schema 1 */
	DB_OPEN_REQS = DB_BASE_COUNT,	/* schema 2 */
	DB_BAD_KEYS,			/* schema 3 */
	DB_COUNT
};

static const char *const db_names[DB_COUNT] = {
	"certs", "revocations", "accounts", "requests", "audit", "meta",
	"open_requests", "bad_keys",
};

#define STORE_DEFAULT_MAP	(64ULL * 1024 * 1024)
#define STORE_WRITE_TRIES	8
#define STORE_META_KEY_MAX	128
#define META_SCHEMA		"schema_version"
#define META_NEXT_REQ		"next_request_id"
#define META_AUDIT_HEAD		"audit_head"
#define META_REV_FLOOR		"rev_seq_floor"
#define META_J_SEQ		"journal_seq"	/* last record in the store */
#define META_J_HEAD		"journal_head"	/* its hash */
#define META_J_EPOCH		"journal_epoch"	/* timeline, from 1 */
/* 16 random bytes written when the store is created (unlike the restore
 * guard's u64 "store_id", set at the first start); the journal's first
 * record chains to a hash of them (journal_genesis), so that the journal
 * of another CA is refused by a store still at seq 0.  Stores created
 * before have none: their first record chains to 32 zero bytes. */
#define META_STORE_ID		"journal_genesis_id"
#define STORE_ID_LEN		16
#define BATCH_MAX		256		/* jobs in one group commit */

struct store {
	MDB_env			*env;
	MDB_dbi			 dbi[DB_COUNT];
	pthread_rwlock_t	 map_lock;
	int			 lock_inited;
	uint64_t		 map_max;
	int			 no_grow;
	int			 read_only;
	int			 lock_fd;
	/* 1: open_requests is open; 0: a schema 1 store opened read-only
	 * (request lookups walk the requests) */
	int			 req_index;
	/* 1: bad_keys is open; 0: a schema 1/2 store opened read-only */
	int			 key_index;
	/* The change journal (NULL: off).  j_seq, j_head and j_epoch are
	 * what the store's meta says.  A batch reads them in its write
	 * transaction and sets them after its commit, which has released
	 * LMDB's write lock by then: w_mu spans the whole batch so that the
	 * next writer never reads them before they are set (it did: two
	 * records numbered alike, found by t_crl_rp under valgrind).  j_mu
	 * lets status read them from other threads. */
	struct journal		*jnl;
	uint64_t		 j_seq;
	uint8_t			 j_head[JOURNAL_HASH_LEN];
	uint64_t		 j_epoch;
	pthread_mutex_t		 j_mu;
	pthread_mutex_t		 w_mu;
	pthread_cond_t		 j_cv;	/* j_seq moved (replication) */
	int			 no_sync;
	int			 standby;	/* replication: only
						 * store_journal_apply writes */
};

struct store_txn {
	struct store	*s;
	MDB_txn		*txn;
	int		 write;
	int		 map_full;	/* an operation hit MDB_MAP_FULL */
	struct wb	*ops;		/* journal: this transaction's puts and
					 * deletes (NULL: not journalled) */
	uint32_t	 num_ops;
	int		 ops_failed;	/* an op did not fit in a record */
};

struct store_reader {
	struct store		*s;
	struct store_txn	 t;
	int			 active;
};

/* Walk callbacks: go on, stop, or the record did not decode. */
enum walk { WALK_STOP = 0, WALK_NEXT = 1, WALK_CORRUPT = -1 };
typedef enum walk (*walk_fn)(const MDB_val *key, const MDB_val *val,
    void *arg);

const char *
store_strerror(enum store_rc rc)
{
	switch (rc) {
	case STORE_OK:
		return "success";
	case STORE_NOTFOUND:
		return "not found";
	case STORE_EXISTS:
		return "already exists";
	case STORE_FULL:
		return "store full (map at its limit or disk full)";
	case STORE_LOCKED:
		return "store locked by another process";
	case STORE_VERSION:
		return "store schema version not supported";
	case STORE_CORRUPT:
		return "store record corrupt";
	case STORE_INVALID:
		return "change not allowed";
	case STORE_IO:
		return "store I/O error";
	case STORE_ABORT:
		return "aborted";
	}
	return "unknown store error";
}

/* ---- locking and LMDB error mapping ---- */

static void
map_rdlock(struct store *s)
{
	int e;

	if ((e = pthread_rwlock_rdlock(&s->map_lock)) != 0)
		fatalx("store: map lock: %s", strerror(e));
}

static void
map_wrlock(struct store *s)
{
	int e;

	if ((e = pthread_rwlock_wrlock(&s->map_lock)) != 0)
		fatalx("store: map lock: %s", strerror(e));
}

static void
map_unlock(struct store *s)
{
	int e;

	if ((e = pthread_rwlock_unlock(&s->map_lock)) != 0)
		fatalx("store: map unlock: %s", strerror(e));
}

static enum store_rc
lmdb_rc(struct store_txn *t, int rc, const char *what)
{
	switch (rc) {
	case MDB_SUCCESS:
		return STORE_OK;
	case MDB_NOTFOUND:
		return STORE_NOTFOUND;
	case MDB_KEYEXIST:
		return STORE_EXISTS;
	case MDB_MAP_FULL:
		if (t != NULL)
			t->map_full = 1;
		log_debug("store: %s: map full", what);
		return STORE_FULL;
	case ENOSPC:
		log_warnx("store: %s: disk full: %s", what, mdb_strerror(rc));
		return STORE_FULL;
	default:
		log_warnx("store: %s: %s", what, mdb_strerror(rc));
		return STORE_IO;
	}
}

/* Another process grew the map: adopt its size (no txn may be active). */
static enum store_rc
adopt_mapsize(struct store *s)
{
	int rc;

	log_info("store: map grown by another process, adopting its size");
	map_wrlock(s);
	rc = mdb_env_set_mapsize(s->env, 0);
	map_unlock(s);
	return lmdb_rc(NULL, rc, "adopt map size");
}

/* Doubles the map (capped by map_max).  Returns 1 if it grew. */
static int
store_grow(struct store *s)
{
	MDB_envinfo info;
	uint64_t cur, next;
	int rc, ok = 0;

	if (s->no_grow) {
		log_warnx("store: map full and growth is disabled");
		return 0;
	}
	map_wrlock(s);
	if ((rc = mdb_env_info(s->env, &info)) != 0) {
		log_warnx("store: env info: %s", mdb_strerror(rc));
		goto out;
	}
	cur = info.me_mapsize;
	next = cur > UINT64_MAX / 2 ? UINT64_MAX : cur * 2;
	if (s->map_max != 0 && next > s->map_max)
		next = s->map_max;
	if (next > SIZE_MAX)
		next = SIZE_MAX;
	if (next <= cur) {
		log_warnx("store: map full at its ceiling of %" PRIu64
		    " bytes", cur);
		goto out;
	}
	if ((rc = mdb_env_set_mapsize(s->env, (size_t)next)) != 0) {
		log_warnx("store: grow map to %" PRIu64 ": %s", next,
		    mdb_strerror(rc));
		goto out;
	}
	log_info("store: map grown from %" PRIu64 " to %" PRIu64 " bytes",
	    cur, next);
	ok = 1;
out:
	map_unlock(s);
	return ok;
}

/* Begins a transaction holding map_lock shared; txn_end releases both. */
static enum store_rc
txn_begin(struct store *s, int write, struct store_txn *t)
{
	enum store_rc rc = STORE_IO;
	int mrc, tries;

	memset(t, 0, sizeof(*t));
	t->s = s;
	t->write = write;
	for (tries = 0; tries < 3; tries++) {
		map_rdlock(s);
		mrc = mdb_txn_begin(s->env, NULL, write ? 0 : MDB_RDONLY,
		    &t->txn);
		if (mrc == MDB_SUCCESS)
			return STORE_OK;
		map_unlock(s);
		t->txn = NULL;
		if (mrc != MDB_MAP_RESIZED) {
			rc = lmdb_rc(NULL, mrc, write ?
			    "begin write transaction" :
			    "begin read transaction");
			break;
		}
		if ((rc = adopt_mapsize(s)) != STORE_OK)
			break;
		rc = STORE_IO;
	}
	return rc;
}

static void
txn_end(struct store_txn *t)
{
	if (t->txn != NULL)
		mdb_txn_abort(t->txn);
	t->txn = NULL;
	map_unlock(t->s);
}

/* ---- open / close ---- */

static enum store_rc
take_lock(struct store *s, const char *dir)
{
	char path[PATH_MAX];
	int n;

	n = snprintf(path, sizeof(path), "%s/micad.lock", dir);
	if (n < 0 || (size_t)n >= sizeof(path)) {
		log_warnx("store: %s: path too long", dir);
		return STORE_IO;
	}
	s->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (s->lock_fd == -1) {
		log_warn("store: open %s", path);
		return STORE_IO;
	}
	if (flock(s->lock_fd, LOCK_EX | LOCK_NB) == -1) {
		if (errno == EWOULDBLOCK) {
			log_warnx("store: %s is in use by another micad", dir);
			return STORE_LOCKED;
		}
		log_warn("store: flock %s", path);
		return STORE_IO;
	}
	return STORE_OK;
}

static int
all_empty(struct store_txn *t)
{
	MDB_stat st;
	int i;

	for (i = 0; i < DB_BASE_COUNT; i++) {
		if (mdb_stat(t->txn, t->s->dbi[i], &st) != 0 ||
		    st.ms_entries != 0)
			return 0;
	}
	return 1;
}

static int	key_u64(const MDB_val *, uint64_t *);
static enum store_rc	db_get(struct store_txn *, int, const void *, size_t,
		    MDB_val *);
static enum store_rc	jmeta_put(struct store_txn *, uint64_t,
		    const uint8_t *, uint64_t);
static enum store_rc	jmeta_get(struct store_txn *, uint64_t *, uint8_t *,
		    uint64_t *);
static enum store_rc	store_id_create(struct store_txn *);
static enum store_rc	journal_genesis(struct store_txn *, uint8_t *);
static int	request_is_open(uint8_t state);
static enum store_rc	index_put(struct store_txn *, const uint8_t *serial,
		    uint64_t id);

/* Adds every open request of a schema 1 store to the new index. */
static enum store_rc
index_build(struct store_txn *t, const char *dir)
{
	MDB_cursor *c = NULL;
	MDB_val k, v;
	struct request_rec q;
	enum store_rc rc;
	uint64_t id, n = 0;
	int mrc;

	if ((rc = lmdb_rc(t, mdb_cursor_open(t->txn, t->s->dbi[DB_REQUESTS],
	    &c), "requests")) != STORE_OK)
		goto out;
	for (mrc = mdb_cursor_get(c, &k, &v, MDB_FIRST); mrc == MDB_SUCCESS;
	    mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		if (!key_u64(&k, &id) ||
		    !store_rec_request_decode(&q, id, v.mv_data, v.mv_size)) {
			log_warnx("store: %s: upgrade: a request does not "
			    "decode", dir);
			rc = STORE_CORRUPT;
			goto out;
		}
		if (!request_is_open(q.state))
			continue;
		rc = index_put(t, q.lost_serial, id);
		if (rc == STORE_EXISTS) {
			/* Cannot happen with one writer; keep the first and
			 * let mica-admin check report the second. */
			log_warnx("store: %s: upgrade: request %" PRIu64
			    " is a second open request for its serial", dir,
			    id);
			continue;
		}
		if (rc != STORE_OK)
			goto out;
		n++;
	}
	if ((rc = lmdb_rc(t, mrc, "requests")) != STORE_NOTFOUND)
		goto out;
	log_info("store: %s: upgrade: %" PRIu64 " open requests indexed",
	    dir, n);
	rc = STORE_OK;
out:
	if (c != NULL)
		mdb_cursor_close(c);
	return rc;
}

/*
 * Schema 2 adds open_requests.  A new store gets it at once; a schema 1
 * store opened for writing gets it built in the open transaction (so it
 * commits with the version bump or not at all); a schema 1 store opened
 * read-only has none and the request lookups walk the requests.
 */
static enum store_rc
open_index(struct store_txn *t, const char *dir, uint64_t *ver, int fresh)
{
	enum store_rc rc;
	int mrc, upgrade = *ver < 2;

	if (upgrade && !t->write)
		return STORE_OK;
	mrc = mdb_dbi_open(t->txn, db_names[DB_OPEN_REQS],
	    upgrade || fresh ? MDB_CREATE : 0, &t->s->dbi[DB_OPEN_REQS]);
	if (mrc == MDB_NOTFOUND) {
		log_warnx("store: %s: schema %" PRIu64 " without database "
		    "%s", dir, *ver, db_names[DB_OPEN_REQS]);
		return STORE_CORRUPT;
	}
	if ((rc = lmdb_rc(t, mrc, db_names[DB_OPEN_REQS])) != STORE_OK)
		return rc;
	if (upgrade) {
		/* A leftover (from a downgrade) would be stale: rebuild. */
		mrc = mdb_drop(t->txn, t->s->dbi[DB_OPEN_REQS], 0);
		if ((rc = lmdb_rc(t, mrc, "clear open_requests")) != STORE_OK ||
		    (rc = index_build(t, dir)) != STORE_OK)
			return rc;
	}
	t->s->req_index = 1;
	return STORE_OK;
}

static enum store_rc	badkeys_build(struct store_txn *, const char *dir);

/*
 * Schema 3 adds bad_keys (the compromised-key index).  As open_index: a
 * new store gets it empty, a schema 1/2 store opened for writing gets it
 * filled in the open transaction from the keys revoked for keyCompromise
 * and the lost certificates of issued reissue requests (one-way: the
 * version moves to 3 with it), a read-only older store has none.
 */
static enum store_rc
open_badkeys(struct store_txn *t, const char *dir, uint64_t ver, int fresh)
{
	enum store_rc rc;
	int mrc, upgrade = ver < 3;

	if (upgrade && !t->write)
		return STORE_OK;
	mrc = mdb_dbi_open(t->txn, db_names[DB_BAD_KEYS],
	    upgrade || fresh ? MDB_CREATE : 0, &t->s->dbi[DB_BAD_KEYS]);
	if (mrc == MDB_NOTFOUND) {
		log_warnx("store: %s: schema %" PRIu64 " without database "
		    "%s", dir, ver, db_names[DB_BAD_KEYS]);
		return STORE_CORRUPT;
	}
	if ((rc = lmdb_rc(t, mrc, db_names[DB_BAD_KEYS])) != STORE_OK)
		return rc;
	t->s->key_index = 1;
	if (upgrade) {
		mrc = mdb_drop(t->txn, t->s->dbi[DB_BAD_KEYS], 0);
		if ((rc = lmdb_rc(t, mrc, "clear bad_keys")) != STORE_OK ||
		    (rc = badkeys_build(t, dir)) != STORE_OK)
			return rc;
	}
	return STORE_OK;
}

/* Rewrites one version 1 account record (clear secret) as version 2,
 * the secret sealed under key; at the cursor's position. */
static enum store_rc
account_seal_one(struct store_txn *t, MDB_cursor *c, const MDB_val *k,
    const MDB_val *v, const struct totpseal_key *key)
{
	struct account_rec a;
	struct wb b;
	uint8_t clear[STORE_TOTP_MAX];
	size_t clear_len;
	enum store_rc rc = STORE_CORRUPT;
	char name[STORE_NAME_MAX];
	MDB_val nk, nv;

	wb_init(&b);
	if (!wb_reserve(&b, 64 + sizeof(a)))
		fatalx("store: out of memory");
	if (!store_rec_account_decode(&a, k->mv_data, k->mv_size, v->mv_data,
	    v->mv_size))
		goto out;
	rc = STORE_OK;
	if (!a.totp_clear)
		goto out;	/* already sealed (an interrupted downgrade) */
	rc = STORE_IO;
	clear_len = a.totp_sealed_len;
	memcpy(clear, a.totp_sealed, clear_len);
	a.totp_clear = 0;
	if (!totpseal_seal(key, a.name, a.totp_sealed,
	    sizeof(a.totp_sealed), &a.totp_sealed_len, clear, clear_len) ||
	    !store_rec_account_encode(&b, &a))
		goto out;
	nv.mv_size = b.len;
	nv.mv_data = b.data;
	/* The key is copied: k points into the page the put rewrites. */
	nk.mv_size = k->mv_size;
	nk.mv_data = name;
	memcpy(name, k->mv_data, k->mv_size);
	rc = lmdb_rc(t, mdb_cursor_put(c, &nk, &nv, MDB_CURRENT),
	    "accounts");
out:
	sodium_memzero(clear, sizeof(clear));
	account_rec_wipe(&a);
	if (b.data != NULL)
		sodium_memzero(b.data, b.cap);
	wb_cleanup(&b);
	return rc;
}

/*
 * Schema 4 seals the accounts' TOTP secrets (account record version 2).
 * A schema 1..3 store opened for writing has every account rewritten in
 * the open transaction (with the version bump, or not at all); that needs
 * the TOTP key.  Read-only, the clear records are read as they are.
 */
static enum store_rc
open_totp(struct store_txn *t, const char *dir, uint64_t ver,
    const struct totpseal_key *key, int key_new)
{
	MDB_cursor *c = NULL;
	MDB_val k, v;
	MDB_stat ms;
	enum store_rc rc = STORE_OK;
	uint64_t n = 0;
	int mrc;

	if (ver >= 4 && key_new && mdb_stat(t->txn, t->s->dbi[DB_ACCOUNTS],
	    &ms) == MDB_SUCCESS && ms.ms_entries > 0) {
		log_warnx("store: %s: its %zu accounts' TOTP secrets are "
		    "sealed with a TOTP key that is missing (a new one was "
		    "just made): put the original key back", dir,
		    (size_t)ms.ms_entries);
		return STORE_INVALID;
	}
	if (ver >= 4 || !t->write)
		return STORE_OK;
	if (key == NULL) {
		log_warnx("store: %s: schema %" PRIu64 " keeps the TOTP "
		    "secrets in clear; upgrading it needs the TOTP key "
		    "([store] totp_key_file)", dir, ver);
		return STORE_VERSION;
	}
	if ((rc = lmdb_rc(t, mdb_cursor_open(t->txn, t->s->dbi[DB_ACCOUNTS],
	    &c), "accounts")) != STORE_OK)
		goto out;
	for (mrc = mdb_cursor_get(c, &k, &v, MDB_FIRST); mrc == MDB_SUCCESS;
	    mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		if ((rc = account_seal_one(t, c, &k, &v, key)) != STORE_OK) {
			log_warnx("store: %s: upgrade: account %.*s: %s", dir,
			    (int)(k.mv_size > STORE_NAME_MAX ? STORE_NAME_MAX :
			    k.mv_size), (const char *)k.mv_data,
			    store_strerror(rc));
			goto out;
		}
		n++;
	}
	if ((rc = lmdb_rc(t, mrc, "accounts")) != STORE_NOTFOUND)
		goto out;
	log_info("store: %s: upgrade: the TOTP secrets of %" PRIu64
	    " accounts sealed", dir, n);
	rc = STORE_OK;
out:
	if (c != NULL)
		mdb_cursor_close(c);
	return rc;
}

/*
 * Opens the named databases (creating them when create), writes the schema
 * version into a new store and checks it in an existing one; upgrades a
 * schema 1 store unless read_only.  The transaction is committed so that
 * the dbi handles stay open.
 */
static enum store_rc
open_dbs(struct store *s, const char *dir, int create, int read_only,
    const struct store_opts *o)
{
	struct store_txn t;
	enum store_rc rc;
	uint64_t ver = 0;
	int i, mrc, fresh = 0;

	if ((rc = txn_begin(s, !read_only, &t)) != STORE_OK)
		return rc;
	for (i = 0; i < DB_BASE_COUNT; i++) {
		mrc = mdb_dbi_open(t.txn, db_names[i], create ? MDB_CREATE : 0,
		    &s->dbi[i]);
		if (mrc == MDB_NOTFOUND) {
			log_warnx("store: %s: no database %s: not a mica "
			    "store or an incompatible schema", dir,
			    db_names[i]);
			rc = STORE_VERSION;
			goto out;
		}
		if ((rc = lmdb_rc(&t, mrc, db_names[i])) != STORE_OK)
			goto out;
	}
	if ((rc = store_meta_get_u64(&t, META_SCHEMA, &ver)) != STORE_OK)
		goto out;
	if (ver == 0 && create && all_empty(&t)) {
		ver = STORE_SCHEMA_VERSION;
		fresh = 1;
		rc = store_meta_set_u64(&t, META_SCHEMA, ver);
		if (rc != STORE_OK || (rc = store_id_create(&t)) != STORE_OK)
			goto out;
		log_info("store: created %s (schema %d)", dir,
		    STORE_SCHEMA_VERSION);
	}
	if (ver == 0 || ver > STORE_SCHEMA_VERSION) {
		if (ver == 0)
			log_warnx("store: %s: no schema version", dir);
		else
			log_warnx("store: %s: schema version %" PRIu64
			    " is newer than this program's %d", dir, ver,
			    STORE_SCHEMA_VERSION);
		rc = STORE_VERSION;
		goto out;
	}
	if ((rc = open_index(&t, dir, &ver, fresh)) != STORE_OK ||
	    (rc = open_badkeys(&t, dir, ver, fresh)) != STORE_OK ||
	    (rc = open_totp(&t, dir, ver, o->totp_key, o->totp_key_new &&
	    !fresh)) != STORE_OK)
		goto out;
	if (ver < STORE_SCHEMA_VERSION && !read_only) {
		/* One-way: the indexes above were built in this txn. */
		if ((rc = store_meta_set_u64(&t, META_SCHEMA,
		    STORE_SCHEMA_VERSION)) != STORE_OK)
			goto out;
		log_info("store: %s: upgraded from schema %" PRIu64 " to %d",
		    dir, ver, STORE_SCHEMA_VERSION);
	}
	mrc = mdb_txn_commit(t.txn);
	t.txn = NULL;
	rc = lmdb_rc(&t, mrc, "commit open");
out:
	txn_end(&t);
	return rc;
}

static enum store_rc
prepare_dir(const char *dir, const struct store_opts *o)
{
	char path[PATH_MAX];
	struct stat sb;
	int n;

	if (o->create && !o->read_only && mkdir(dir, 0700) == -1 &&
	    errno != EEXIST) {
		log_warn("store: mkdir %s", dir);
		return STORE_IO;
	}
	if (o->create && !o->read_only)
		return STORE_OK;
	n = snprintf(path, sizeof(path), "%s/data.mdb", dir);
	if (n < 0 || (size_t)n >= sizeof(path)) {
		log_warnx("store: %s: path too long", dir);
		return STORE_IO;
	}
	if (stat(path, &sb) == -1) {
		if (errno == ENOENT) {
			log_warnx("store: no store in %s (not initialised?)",
			    dir);
			return STORE_NOTFOUND;
		}
		log_warn("store: %s", path);
		return STORE_IO;
	}
	return STORE_OK;
}

/* ---- journal: applying records, start-up reconciliation ---- */

static const int jdb_map[JOURNAL_DB_COUNT] = {
	DB_CERTS, DB_REVS, DB_ACCOUNTS, DB_REQUESTS, DB_AUDIT, DB_META,
	DB_OPEN_REQS, DB_BAD_KEYS,
};

/* Applies a record's ops and moves the store's journal position. */
static enum store_rc
apply_rec(struct store_txn *t, const struct journal_rec *rec,
    uint64_t epoch)
{
	struct journal_op op;
	struct rd r;
	MDB_val k, v;
	uint32_t i;
	int mrc, db;

	rd_init(&r, rec->ops, rec->ops_len);
	for (i = 0; i < rec->num_ops; i++) {
		if (!journal_op_next(&r, &op))
			return STORE_CORRUPT;	/* parse checked them */
		db = jdb_map[op.db];
		if ((db == DB_OPEN_REQS && !t->s->req_index) ||
		    (db == DB_BAD_KEYS && !t->s->key_index))
			return STORE_VERSION;
		k.mv_data = (void *)op.key;
		k.mv_size = op.key_len;
		if (op.type == JOURNAL_OP_PUT) {
			v.mv_data = (void *)op.val;
			v.mv_size = op.val_len;
			mrc = mdb_put(t->txn, t->s->dbi[db], &k, &v, 0);
		} else {
			mrc = mdb_del(t->txn, t->s->dbi[db], &k, NULL);
			if (mrc == MDB_NOTFOUND)
				mrc = 0;
		}
		if (mrc != 0)
			return lmdb_rc(t, mrc, db_names[db]);
	}
	return jmeta_put(t, rec->seq, rec->hash, epoch);
}

struct apply_ctx {
	const struct journal_rec	*rec;
	uint64_t			 epoch;
};

static enum store_rc
apply_txn(struct store_txn *t, void *arg)
{
	struct apply_ctx *a = arg;

	return apply_rec(t, a->rec, a->epoch);
}

/* The records after the store's position, applied one by one. */
struct rollfwd {
	struct store	*s;
	uint64_t	 want;		/* next seq to apply */
	uint64_t	 epoch;		/* the store's */
	uint64_t	 until_time_us;	/* restore --until TIME */
	uint64_t	 applied;
	int		 dry;		/* check and count, apply nothing */
	int		 failed;
	int		 time_stop;
	char		 err[1024];
};

static int
rollfwd_cb(const struct journal_rec *rec, const char *seg, uint64_t off,
    void *arg)
{
	struct rollfwd *f = arg;
	struct apply_ctx a = { rec, f->epoch };
	enum store_rc rc;

	if (rec->seq != f->want) {
		snprintf(f->err, sizeof(f->err), "journal %s: record seq %"
		    PRIu64 " at offset %" PRIu64 ": expected seq %" PRIu64
		    " (records %" PRIu64 "..%" PRIu64 " are not in the "
		    "journal: pruned?)", seg, rec->seq, off, f->want, f->want,
		    rec->seq - 1);
		f->failed = 1;
		return 0;
	}
	if (rec->epoch != f->epoch) {
		snprintf(f->err, sizeof(f->err), "journal %s: record seq %"
		    PRIu64 " at offset %" PRIu64 ": epoch %" PRIu64 ", the "
		    "store's is %" PRIu64 " (the store was restored to an "
		    "earlier point and this journal is the old timeline: "
		    "give it its own journal_dir)", seg, rec->seq, off,
		    rec->epoch, f->epoch);
		f->failed = 1;
		return 0;
	}
	if (f->until_time_us != 0 && rec->time_us > f->until_time_us) {
		f->time_stop = 1;
		return 0;
	}
	if (f->dry) {
		f->want++;
		f->applied++;
		return 1;
	}
	if ((rc = store_write(f->s, apply_txn, &a)) != STORE_OK) {
		snprintf(f->err, sizeof(f->err), "journal %s: record seq %"
		    PRIu64 ": cannot apply: %s", seg, rec->seq,
		    store_strerror(rc));
		f->failed = 1;
		return 0;
	}
	f->s->j_seq = rec->seq;
	memcpy(f->s->j_head, rec->hash, JOURNAL_HASH_LEN);
	f->want++;
	f->applied++;
	return 1;
}

static enum store_rc
jpos_txn(struct store_txn *t, void *arg)
{
	struct store *s = arg;

	return jmeta_get(t, &s->j_seq, s->j_head, &s->j_epoch);
}

/*
 * The store's position (meta) against the journal's end: 1, or 0 with err.
 * Equal: go on.  Journal ahead: its records were fsync'd but the store
 * did not commit them (a crash in between): applied (f->dry: counted).
 * Journal behind or of another history: refused, naming the record.
 */
static int
journal_compare(struct store *s, const char *dir, struct rollfwd *f,
    struct journal_end *end, char *err, size_t err_len)
{
	struct journal_scan_opts so;
	enum store_rc rc;

	if ((rc = store_read(s, jpos_txn, s)) != STORE_OK) {
		snprintf(err, err_len, "store: %s", store_strerror(rc));
		return 0;
	}
	if (s->j_epoch == 0)
		s->j_epoch = 1;
	f->s = s;
	f->want = s->j_seq + 1;
	f->epoch = s->j_epoch;
	memset(&so, 0, sizeof(so));
	so.from = s->j_seq + 1;
	so.from_prev = s->j_head;
	so.torn_ok = 1;
	if (!journal_scan(dir, &so, rollfwd_cb, f, end, err, err_len))
		return 0;
	if (f->failed) {
		snprintf(err, err_len, "%s", f->err);
		return 0;
	}
	if (end->last_seq != 0 && end->last_seq < s->j_seq) {
		snprintf(err, err_len, "journal %s ends at seq %" PRIu64 " but "
		    "the store is at seq %" PRIu64 ": the journal lost records "
		    "or belongs to another store (move it away to start a "
		    "new one)", dir, end->last_seq, s->j_seq);
		return 0;
	}
	if (end->last_seq != 0 && end->last_seq == s->j_seq &&
	    memcmp(end->last_hash, s->j_head, JOURNAL_HASH_LEN) != 0) {
		snprintf(err, err_len, "journal %s: record seq %" PRIu64 " is "
		    "not the store's last record (hash differs): the journal "
		    "belongs to another history", dir, end->last_seq);
		return 0;
	}
	return 1;
}

/*
 * Start-up: journal_compare, then the appender.  No journal yet: one is
 * started at the store's position.
 */
static enum store_rc
journal_start(struct store *s, const struct store_opts *o)
{
	struct journal_end end;
	struct rollfwd f;
	char err[1024];

	memset(&f, 0, sizeof(f));
	if (!journal_compare(s, o->journal_dir, &f, &end, err, sizeof(err))) {
		log_warnx("store: %s", err);
		return STORE_CORRUPT;
	}
	if (end.last_seq == 0 && s->j_seq > 0)
		log_warnx("store: journal %s is empty and the store is at "
		    "seq %" PRIu64 ": it starts at %" PRIu64 " (take a backup: "
		    "older backups cannot be rolled forward with it)",
		    o->journal_dir, s->j_seq, s->j_seq + 1);
	if (f.applied > 0)
		log_warnx("store: journal: %" PRIu64 " records (seq %" PRIu64
		    "..%" PRIu64 ") were written but not committed before a "
		    "crash; applied", f.applied, f.want - f.applied,
		    f.want - 1);
	if ((s->jnl = journal_open(o->journal_dir, o->journal_segment_size,
	    &end, err, sizeof(err))) == NULL) {
		log_warnx("store: %s", err);
		return STORE_IO;
	}
	log_info("store: journal %s at seq %" PRIu64 " (epoch %" PRIu64 ")",
	    o->journal_dir, s->j_seq, s->j_epoch);
	return STORE_OK;
}

int
store_journal_check(struct store *s, const char *dir, char *info,
    size_t info_len, char *err, size_t err_len)
{
	struct journal_end end;
	struct rollfwd f;
	struct stat sb;
	char buf[4096], *parent;

	info[0] = '\0';
	/* micad makes the directory (mode 0700) at start: its parent must
	 * then be there and writable */
	if (stat(dir, &sb) == -1) {
		if (errno != ENOENT) {
			snprintf(err, err_len, "journal_dir %s: %s", dir,
			    strerror(errno));
			return 0;
		}
		snprintf(buf, sizeof(buf), "%s", dir);
		parent = dirname(buf);
		if (access(parent, W_OK | X_OK) == -1) {
			snprintf(err, err_len, "journal_dir %s does not exist "
			    "and cannot be made in %s: %s", dir, parent,
			    strerror(errno));
			return 0;
		}
		snprintf(info, info_len, "journal_dir %s will be made at "
		    "start", dir);
		return 1;
	}
	if (!S_ISDIR(sb.st_mode)) {
		snprintf(err, err_len, "journal_dir %s is not a directory",
		    dir);
		return 0;
	}
	if (access(dir, R_OK | W_OK | X_OK) == -1) {
		snprintf(err, err_len, "journal_dir %s: %s", dir,
		    strerror(errno));
		return 0;
	}
	memset(&f, 0, sizeof(f));
	f.dry = 1;
	if (!journal_compare(s, dir, &f, &end, err, err_len))
		return 0;
	if (f.applied > 0)
		snprintf(info, info_len, "journal %s: %" PRIu64 " records "
		    "(seq %" PRIu64 "..%" PRIu64 ") written but not committed "
		    "before a crash will be applied at start", dir, f.applied,
		    f.want - f.applied, f.want - 1);
	else if (end.last_seq == 0 && s->j_seq > 0)
		snprintf(info, info_len, "journal %s is empty and the store "
		    "is at seq %" PRIu64 ": it will start at %" PRIu64, dir,
		    s->j_seq, s->j_seq + 1);
	else
		snprintf(info, info_len, "journal %s at seq %" PRIu64
		    " (epoch %" PRIu64 ")", dir, s->j_seq, s->j_epoch);
	return 1;
}

/*
 * Opens or creates the store in dir.  Returns STORE_NOTFOUND when dir has
 * no store and opts->create is 0, STORE_LOCKED, STORE_VERSION, STORE_IO.
 */
enum store_rc
store_open(struct store **out, const char *dir, const struct store_opts *opts)
{
	static const struct store_opts defaults;
	const struct store_opts *o = opts != NULL ? opts : &defaults;
	struct store *s = NULL;
	enum store_rc rc = STORE_IO;
	uint64_t map_size = o->map_size ? o->map_size : STORE_DEFAULT_MAP;
	unsigned int flags = MDB_NOTLS;
	int mrc, i;

	*out = NULL;
	if (sodium_init() < 0) {
		log_warnx("store: sodium_init failed");
		goto out;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL)
		fatal("store: calloc");
	s->lock_fd = -1;
	s->map_max = o->map_max;
	s->no_grow = o->no_grow;
	s->read_only = o->read_only;
	if (o->map_max != 0 && map_size > o->map_max)
		map_size = o->map_max;
	if (map_size > SIZE_MAX)
		map_size = SIZE_MAX;
	if (pthread_rwlock_init(&s->map_lock, NULL) != 0 ||
	    pthread_mutex_init(&s->j_mu, NULL) != 0 ||
	    pthread_mutex_init(&s->w_mu, NULL) != 0 ||
	    pthread_cond_init(&s->j_cv, NULL) != 0)
		fatalx("store: rwlock init");
	s->lock_inited = 1;
	if ((rc = prepare_dir(dir, o)) != STORE_OK)
		goto out;
	if (o->exclusive && (rc = take_lock(s, dir)) != STORE_OK)
		goto out;
	rc = STORE_IO;
	if (o->read_only)
		flags |= MDB_RDONLY;
	/* With the journal, the record is fsync'd before the commit, and
	 * the commit still fsyncs the data pages; only the meta page goes
	 * unsynced (LMDB keeps its integrity, a system crash may undo the
	 * last commit, and the journal redoes it at the next start). */
	if (o->journal_dir != NULL && !o->read_only)
		flags |= MDB_NOMETASYNC;
	if (o->no_sync && !o->read_only)
		flags |= MDB_NOSYNC;
	s->no_sync = o->no_sync;
	if ((mrc = mdb_env_create(&s->env)) != 0 ||
	    (mrc = mdb_env_set_maxdbs(s->env, DB_COUNT)) != 0 ||
	    (mrc = mdb_env_set_mapsize(s->env, (size_t)map_size)) != 0 ||
	    (mrc = mdb_env_open(s->env, dir, flags, 0600)) != 0) {
		log_warnx("store: open %s: %s", dir, mdb_strerror(mrc));
		if (mrc == ENOSPC)
			rc = STORE_FULL;
		goto out;
	}
	for (i = 0; i < DB_COUNT; i++)
		s->dbi[i] = 0;
	if ((rc = open_dbs(s, dir, o->create && !o->read_only,
	    o->read_only, o)) != STORE_OK)
		goto out;
	if (o->journal_dir != NULL && !o->read_only &&
	    (rc = journal_start(s, o)) != STORE_OK)
		goto out;
	*out = s;
	s = NULL;
	rc = STORE_OK;
out:
	store_close(s);
	return rc;
}

/* Closes the environment and releases the lock file; NULL is allowed. */
void
store_close(struct store *s)
{
	if (s == NULL)
		return;
	if (s->env != NULL) {
		if (s->no_sync && !s->read_only)
			mdb_env_sync(s->env, 1);
		mdb_env_close(s->env);
	}
	journal_close(s->jnl);
	if (s->lock_fd != -1)
		close(s->lock_fd);
	if (s->lock_inited) {
		pthread_rwlock_destroy(&s->map_lock);
		pthread_mutex_destroy(&s->j_mu);
		pthread_mutex_destroy(&s->w_mu);
		pthread_cond_destroy(&s->j_cv);
	}
	free(s);
}

/* ---- transactions ---- */

/* Wall clock in microseconds (record times; restore --until TIME). */
static uint64_t
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* Puts the journal position into meta, not journalled (the record's seq
 * and hash say it). */
static enum store_rc
jmeta_put(struct store_txn *t, uint64_t seq, const uint8_t *head,
    uint64_t epoch)
{
	MDB_val k, v;
	uint8_t b[8];
	int mrc;

	k.mv_data = (void *)META_J_SEQ;
	k.mv_size = strlen(META_J_SEQ);
	be64_put(b, seq);
	v.mv_data = b;
	v.mv_size = 8;
	if ((mrc = mdb_put(t->txn, t->s->dbi[DB_META], &k, &v, 0)) != 0)
		return lmdb_rc(t, mrc, "meta journal_seq");
	k.mv_data = (void *)META_J_HEAD;
	k.mv_size = strlen(META_J_HEAD);
	v.mv_data = (void *)head;
	v.mv_size = JOURNAL_HASH_LEN;
	if ((mrc = mdb_put(t->txn, t->s->dbi[DB_META], &k, &v, 0)) != 0)
		return lmdb_rc(t, mrc, "meta journal_head");
	k.mv_data = (void *)META_J_EPOCH;
	k.mv_size = strlen(META_J_EPOCH);
	be64_put(b, epoch);
	v.mv_data = b;
	v.mv_size = 8;
	if ((mrc = mdb_put(t->txn, t->s->dbi[DB_META], &k, &v, 0)) != 0)
		return lmdb_rc(t, mrc, "meta journal_epoch");
	return STORE_OK;
}

/* A new store's id (META_STORE_ID). */
static enum store_rc
store_id_create(struct store_txn *t)
{
	uint8_t id[STORE_ID_LEN];
	MDB_val k = { strlen(META_STORE_ID), (void *)META_STORE_ID };
	MDB_val v = { sizeof(id), id };

	randombytes_buf(id, sizeof(id));
	return lmdb_rc(t, mdb_put(t->txn, t->s->dbi[DB_META], &k, &v, 0),
	    "meta journal_genesis_id");
}

/*
 * What the journal's first record chains to (its prev hash): BLAKE2b of
 * the store's id, or 32 zero bytes for a store made before ids.  A
 * store at seq 0 (a backup taken before micad ever wrote, a standby's
 * first copy) so accepts only its own journal.
 */
static enum store_rc
journal_genesis(struct store_txn *t, uint8_t *out)
{
	static const char tag[] = "mica journal genesis";
	crypto_generichash_state st;
	MDB_val v;
	enum store_rc rc;

	memset(out, 0, JOURNAL_HASH_LEN);
	rc = db_get(t, DB_META, META_STORE_ID, strlen(META_STORE_ID), &v);
	if (rc == STORE_NOTFOUND)
		return STORE_OK;
	if (rc != STORE_OK)
		return rc;
	if (v.mv_size != STORE_ID_LEN) {
		log_warnx("store: meta journal_genesis_id: bad length %zu",
		    v.mv_size);
		return STORE_CORRUPT;
	}
	crypto_generichash_init(&st, NULL, 0, JOURNAL_HASH_LEN);
	crypto_generichash_update(&st, (const uint8_t *)tag, sizeof(tag));
	crypto_generichash_update(&st, v.mv_data, v.mv_size);
	crypto_generichash_final(&st, out, JOURNAL_HASH_LEN);
	return STORE_OK;
}

/* Reads the journal position from meta; at seq 0 the head is the
 * genesis hash. */
static enum store_rc
jmeta_get(struct store_txn *t, uint64_t *seq, uint8_t *head, uint64_t *epoch)
{
	MDB_val v;
	enum store_rc rc;

	memset(head, 0, JOURNAL_HASH_LEN);
	if ((rc = store_meta_get_u64(t, META_J_SEQ, seq)) != STORE_OK ||
	    (rc = store_meta_get_u64(t, META_J_EPOCH, epoch)) != STORE_OK)
		return rc;
	rc = db_get(t, DB_META, META_J_HEAD, strlen(META_J_HEAD), &v);
	if (rc == STORE_NOTFOUND)
		return journal_genesis(t, head);
	if (rc != STORE_OK)
		return rc;
	if (v.mv_size != JOURNAL_HASH_LEN) {
		log_warnx("store: meta journal_head: bad length %zu",
		    v.mv_size);
		return STORE_CORRUPT;
	}
	memcpy(head, v.mv_data, JOURNAL_HASH_LEN);
	return STORE_OK;
}

/* One job in the batch: a nested transaction when there are several. */
static enum store_rc
batch_run_one(struct store_txn *t, struct store_job *job, int nested,
    struct wb *ops, uint32_t *out_num_ops)
{
	struct store_txn c = *t;
	enum store_rc rc;
	int mrc;

	wb_init(ops);
	c.ops = t->s->jnl != NULL ? ops : NULL;
	c.num_ops = 0;
	c.ops_failed = 0;
	if (nested) {
		mrc = mdb_txn_begin(t->s->env, t->txn, 0, &c.txn);
		if (mrc != 0)
			return lmdb_rc(t, mrc, "begin nested transaction");
	}
	rc = job->fn(&c, job->arg);
	if (c.map_full)
		t->map_full = 1;
	if (rc == STORE_OK && c.ops_failed) {
		log_warnx("store: a change does not fit in a journal record");
		rc = STORE_FULL;
	}
	if (nested && rc == STORE_OK && !c.map_full) {
		mrc = mdb_txn_commit(c.txn);
		rc = lmdb_rc(t, mrc, "commit nested transaction");
	} else if (nested)
		mdb_txn_abort(c.txn);
	*out_num_ops = c.num_ops;
	return rc;
}

/*
 * The journal side of a batch: one record per job that changed
 * something, the meta position, then append + fsync.  The records are
 * durable before LMDB commits (write-ahead): a crash between the two
 * leaves records the store lacks, and store_open rolls them forward.
 */
static enum store_rc
batch_journal(struct store_txn *t, struct wb *recs, uint64_t *seq,
    uint8_t *head, struct store_job *jobs, struct wb *ops,
    const uint32_t *num_ops, size_t n)
{
	struct store *s = t->s;
	uint64_t now = now_us(), first = s->j_seq + 1;
	enum store_rc rc;
	size_t i;

	*seq = s->j_seq;
	memcpy(head, s->j_head, JOURNAL_HASH_LEN);
	for (i = 0; i < n; i++) {
		if (jobs[i].rc != STORE_OK || num_ops[i] == 0)
			continue;
		(*seq)++;
		if (!journal_rec_encode(recs, *seq, s->j_epoch, now, head,
		    num_ops[i], ops[i].data, ops[i].len, head)) {
			log_warnx("store: journal record %" PRIu64 " too big",
			    *seq);
			return STORE_FULL;
		}
	}
	if (*seq == s->j_seq)
		return STORE_OK;
	if ((rc = jmeta_put(t, *seq, head, s->j_epoch)) != STORE_OK)
		return rc;
	if (!journal_append(s->jnl, first, recs->data, recs->len))
		return STORE_IO;
	return STORE_OK;
}

/* One attempt at a batch: STORE_FULL with t.map_full = grow and retry. */
static enum store_rc
batch_attempt(struct store *s, struct store_job *jobs, size_t n,
    int *out_map_full)
{
	struct store_txn t;
	struct wb recs, *ops = NULL;
	uint32_t *num_ops = NULL;
	uint8_t head[JOURNAL_HASH_LEN];
	uint64_t seq = 0;
	enum store_rc rc;
	size_t i;
	int mrc, any = 0;

	*out_map_full = 0;
	wb_init(&recs);
	if ((ops = calloc(n, sizeof(*ops))) == NULL ||
	    (num_ops = calloc(n, sizeof(*num_ops))) == NULL)
		fatal("store: calloc");
	pthread_mutex_lock(&s->w_mu);
	if ((rc = txn_begin(s, 1, &t)) != STORE_OK)
		goto out;
	for (i = 0; i < n && !t.map_full; i++) {
		jobs[i].rc = batch_run_one(&t, &jobs[i], n > 1, &ops[i],
		    &num_ops[i]);
		any |= jobs[i].rc == STORE_OK;
	}
	if (t.map_full) {
		*out_map_full = 1;
		rc = STORE_FULL;
		txn_end(&t);
		goto out;
	}
	rc = STORE_OK;
	if (any && s->jnl != NULL)
		rc = batch_journal(&t, &recs, &seq, head, jobs, ops, num_ops,
		    n);
	if (any && rc == STORE_OK) {
		mrc = mdb_txn_commit(t.txn);
		t.txn = NULL;
		rc = lmdb_rc(&t, mrc, "commit");
		if (rc != STORE_OK && s->jnl != NULL && seq != s->j_seq) {
			/* Not in the store, so out of the journal too (a
			 * crash here instead leaves them for store_open to
			 * roll forward, as PostgreSQL's WAL). */
			log_warnx("store: commit failed; journal records %"
			    PRIu64 "..%" PRIu64 " taken back", s->j_seq + 1,
			    seq);
			journal_undo(s->jnl, recs.len);
		}
		if (t.map_full)		/* at commit: grow and run again */
			*out_map_full = 1;
	}
	if (rc == STORE_OK && s->jnl != NULL && seq > s->j_seq) {
		pthread_mutex_lock(&s->j_mu);
		s->j_seq = seq;
		memcpy(s->j_head, head, JOURNAL_HASH_LEN);
		pthread_cond_broadcast(&s->j_cv);
		pthread_mutex_unlock(&s->j_mu);
	}
	txn_end(&t);
	for (i = 0; i < n && rc != STORE_OK; i++)
		if (jobs[i].rc == STORE_OK)
			jobs[i].rc = rc;
out:
	pthread_mutex_unlock(&s->w_mu);
	for (i = 0; i < n; i++)
		wb_cleanup(&ops[i]);
	free(ops);
	free(num_ops);
	wb_cleanup(&recs);
	return rc;
}

/*
 * Runs the jobs in one write transaction (nested transactions when more
 * than one) and commits; grows the map and runs them all again after
 * MDB_MAP_FULL (at most STORE_WRITE_TRIES times).
 */
enum store_rc
store_write_batch(struct store *s, struct store_job *jobs, size_t n)
{
	enum store_rc rc = STORE_FULL;
	size_t i;
	int attempt, map_full;

	if (s->read_only) {
		log_warnx("store: write to a store opened read-only");
		rc = STORE_INVALID;
		goto fail;
	}
	if (s->standby) {
		log_warnx("store: a standby takes changes only from its "
		    "primary: write refused");
		rc = STORE_INVALID;
		goto fail;
	}
	if (n == 0)
		return STORE_OK;
	for (attempt = 0; attempt < STORE_WRITE_TRIES; attempt++) {
		rc = batch_attempt(s, jobs, n, &map_full);
		if (!map_full)
			return rc;
		if (!store_grow(s)) {
			rc = STORE_FULL;
			goto fail;
		}
	}
	log_warnx("store: still full after %d map growths",
	    STORE_WRITE_TRIES);
	rc = STORE_FULL;
fail:
	for (i = 0; i < n; i++)
		jobs[i].rc = rc;
	return rc;
}

/*
 * Runs fn in a write transaction and commits if it returns STORE_OK
 * (journalled first when the journal is on); grows the map and runs fn
 * again after MDB_MAP_FULL.  Returns fn's result or the commit's.
 */
enum store_rc
store_write(struct store *s, store_txn_fn fn, void *arg)
{
	struct store_job job = { .fn = fn, .arg = arg, .rc = STORE_IO };

	store_write_batch(s, &job, 1);
	return job.rc;
}

/* Runs fn inside a fresh read transaction and returns its result. */
enum store_rc
store_read(struct store *s, store_txn_fn fn, void *arg)
{
	struct store_txn t;
	enum store_rc rc;

	if ((rc = txn_begin(s, 0, &t)) != STORE_OK)
		return rc;
	rc = fn(&t, arg);
	txn_end(&t);
	return rc;
}

/* A reusable read transaction; NULL on error.  Free with _free. */
struct store_reader *
store_reader_new(struct store *s)
{
	struct store_reader *r;

	if ((r = calloc(1, sizeof(*r))) == NULL)
		fatal("store: calloc");
	r->s = s;
	if (txn_begin(s, 0, &r->t) != STORE_OK) {
		free(r);
		return NULL;
	}
	mdb_txn_reset(r->t.txn);
	map_unlock(s);
	return r;
}

/* Frees the reader (ending it if begun); NULL is allowed. */
void
store_reader_free(struct store_reader *r)
{
	if (r == NULL)
		return;
	if (r->active)
		store_reader_end(r);
	if (r->t.txn != NULL)
		mdb_txn_abort(r->t.txn);
	free(r);
}

/*
 * Renews the reader's snapshot (it sees every commit made before) and
 * returns its transaction, or NULL on error.  Call store_reader_end on the
 * same thread when done.
 */
struct store_txn *
store_reader_begin(struct store_reader *r)
{
	int mrc, tries;

	if (r->active || r->t.txn == NULL)
		return NULL;
	for (tries = 0; tries < 3; tries++) {
		map_rdlock(r->s);
		mrc = mdb_txn_renew(r->t.txn);
		if (mrc == MDB_SUCCESS) {
			r->active = 1;
			r->t.map_full = 0;
			return &r->t;
		}
		map_unlock(r->s);
		if (mrc != MDB_MAP_RESIZED || adopt_mapsize(r->s) != STORE_OK)
			break;
	}
	lmdb_rc(NULL, mrc, "renew reader");
	return NULL;
}

/* Ends the reader's current use (mdb_txn_reset); the reader stays valid. */
void
store_reader_end(struct store_reader *r)
{
	if (!r->active)
		return;
	mdb_txn_reset(r->t.txn);
	r->active = 0;
	map_unlock(r->s);
}

/* ---- generic key/value helpers ---- */

static enum store_rc
db_get(struct store_txn *t, int db, const void *key, size_t key_len,
    MDB_val *out)
{
	MDB_val k = { .mv_size = key_len, .mv_data = (void *)key };

	return lmdb_rc(t, mdb_get(t->txn, t->s->dbi[db], &k, out),
	    db_names[db]);
}

/* Journal capture: what this transaction changed, as the record's ops. */
static void
ops_add(struct store_txn *t, uint8_t type, int db, const void *key,
    size_t key_len, const void *val, size_t val_len)
{
	if (t->ops == NULL)
		return;
	if (!journal_op_put(t->ops, type, (uint8_t)db, key, key_len, val,
	    val_len))
		t->ops_failed = 1;
	t->num_ops++;
}

static enum store_rc
db_put(struct store_txn *t, int db, const void *key, size_t key_len,
    const void *val, size_t val_len, unsigned int flags)
{
	MDB_val k = { .mv_size = key_len, .mv_data = (void *)key };
	MDB_val v = { .mv_size = val_len, .mv_data = (void *)val };
	enum store_rc rc;

	if (!t->write) {
		log_warnx("store: put into %s in a read transaction",
		    db_names[db]);
		return STORE_INVALID;
	}
	rc = lmdb_rc(t, mdb_put(t->txn, t->s->dbi[db], &k, &v, flags),
	    db_names[db]);
	if (rc == STORE_OK)
		ops_add(t, JOURNAL_OP_PUT, db, key, key_len, val, val_len);
	return rc;
}

/* Deletes a key (STORE_NOTFOUND if absent) and journals it. */
static enum store_rc
db_del(struct store_txn *t, int db, const void *key, size_t key_len)
{
	MDB_val k = { .mv_size = key_len, .mv_data = (void *)key };
	enum store_rc rc;

	rc = lmdb_rc(t, mdb_del(t->txn, t->s->dbi[db], &k, NULL),
	    db_names[db]);
	if (rc == STORE_OK)
		ops_add(t, JOURNAL_OP_DEL, db, key, key_len, NULL, 0);
	return rc;
}

/* Calls fn for each record from start (NULL: the first) in key order. */
static enum store_rc
db_walk(struct store_txn *t, int db, const void *start, size_t start_len,
    walk_fn fn, void *arg)
{
	MDB_cursor *c = NULL;
	MDB_val k, v;
	enum store_rc rc;
	enum walk w;
	MDB_cursor_op op = start != NULL ? MDB_SET_RANGE : MDB_FIRST;
	int mrc;

	if ((rc = lmdb_rc(t, mdb_cursor_open(t->txn, t->s->dbi[db], &c),
	    db_names[db])) != STORE_OK)
		goto out;
	k.mv_size = start_len;
	k.mv_data = (void *)start;
	for (;;) {
		mrc = mdb_cursor_get(c, &k, &v, op);
		op = MDB_NEXT;
		if (mrc == MDB_NOTFOUND)
			break;
		if ((rc = lmdb_rc(t, mrc, db_names[db])) != STORE_OK)
			goto out;
		w = fn(&k, &v, arg);
		if (w == WALK_STOP)
			break;
		if (w == WALK_CORRUPT) {
			char hex[2 * 32 + 1];

			hex_encode(hex, k.mv_data, k.mv_size < 32 ?
			    k.mv_size : 32);
			log_warnx("store: %s: record with key %s does not "
			    "decode", db_names[db], hex);
			rc = STORE_CORRUPT;
			goto out;
		}
	}
	rc = STORE_OK;
out:
	if (c != NULL)
		mdb_cursor_close(c);
	return rc;
}

static int
key_u64(const MDB_val *k, uint64_t *out)
{
	if (k->mv_size != 8)
		return 0;
	*out = be64_get(k->mv_data);
	return 1;
}

static void
log_corrupt(const char *db, const uint8_t serial[STORE_SERIAL_LEN])
{
	char hex[SERIAL_HEX_LEN];

	serial_hex(hex, serial);
	log_warnx("store: %s record serial=%s does not decode", db, hex);
}

/* ---- certificates ---- */

/* 1 if the 16 bytes are all zero. */
int
serial_is_zero(const uint8_t serial[STORE_SERIAL_LEN])
{
	uint8_t acc = 0;
	size_t i;

	for (i = 0; i < STORE_SERIAL_LEN; i++)
		acc |= serial[i];
	return acc == 0;
}

/* Frees an owned der (from store_cert_get) and zeroes the record. */
void
cert_rec_cleanup(struct cert_rec *c)
{
	if (c == NULL)
		return;
	free(c->der);
	memset(c, 0, sizeof(*c));
}

/* Reads the fixed part of a cert record; no allocation. */
enum store_rc
store_cert_state(struct store_txn *t, const uint8_t serial[STORE_SERIAL_LEN],
    struct cert_state *out)
{
	MDB_val v;
	enum store_rc rc;

	memset(out, 0, sizeof(*out));
	if ((rc = db_get(t, DB_CERTS, serial, STORE_SERIAL_LEN, &v)) !=
	    STORE_OK)
		return rc;
	if (!store_rec_cert_state_decode(out, v.mv_data, v.mv_size)) {
		log_corrupt("certs", serial);
		return STORE_CORRUPT;
	}
	return STORE_OK;
}

/* Decodes a cert record with a borrowed der (valid until the next put). */
static enum store_rc
cert_get_borrowed(struct store_txn *t, const uint8_t serial[STORE_SERIAL_LEN],
    struct cert_rec *out)
{
	MDB_val v;
	enum store_rc rc;

	memset(out, 0, sizeof(*out));
	if ((rc = db_get(t, DB_CERTS, serial, STORE_SERIAL_LEN, &v)) !=
	    STORE_OK)
		return rc;
	if (!store_rec_cert_decode(out, serial, v.mv_data, v.mv_size)) {
		log_corrupt("certs", serial);
		return STORE_CORRUPT;
	}
	return STORE_OK;
}

/* Copies the record out, der malloc'd (free with cert_rec_cleanup). */
enum store_rc
store_cert_get(struct store_txn *t, const uint8_t serial[STORE_SERIAL_LEN],
    struct cert_rec *out)
{
	struct cert_rec c;
	enum store_rc rc;

	memset(out, 0, sizeof(*out));
	if ((rc = cert_get_borrowed(t, serial, &c)) != STORE_OK)
		return rc;
	*out = c;
	out->der = NULL;
	if ((out->der = malloc(c.der_len ? c.der_len : 1)) == NULL)
		fatal("store: malloc");
	if (c.der_len > 0)
		memcpy(out->der, c.der, c.der_len);
	return STORE_OK;
}

static enum store_rc
cert_write(struct store_txn *t, const struct cert_rec *c, unsigned int flags)
{
	struct wb b;
	enum store_rc rc = STORE_INVALID;

	wb_init(&b);
	if (!store_rec_cert_encode(&b, c)) {
		if (!wb_ok(&b))
			fatalx("store: out of memory");
		log_warnx("store: cert record with invalid fields");
		goto out;
	}
	rc = db_put(t, DB_CERTS, c->serial, STORE_SERIAL_LEN, b.data, b.len,
	    flags);
out:
	wb_cleanup(&b);
	return rc;
}

/* Inserts a new certificate; STORE_EXISTS if the serial is taken. */
enum store_rc
store_cert_add(struct store_txn *t, const struct cert_rec *c)
{
	if (serial_is_zero(c->serial) || c->der == NULL || c->der_len == 0)
		return STORE_INVALID;
	return cert_write(t, c, MDB_NOOVERWRITE);
}

/*
 * Raises *seq to meta "rev_seq_floor": after an accepted restore the
 * sequences the older store lost are never handed out again.
 */
static enum store_rc
rev_floor(struct store_txn *t, uint64_t *seq)
{
	uint64_t fl;
	enum store_rc rc;

	if ((rc = store_meta_get_u64(t, META_REV_FLOOR, &fl)) == STORE_OK &&
	    fl > *seq)
		*seq = fl;
	return rc;
}

/* The highest revocations seq so far (or the floor), 0 if none. */
enum store_rc
store_rev_last(struct store_txn *t, uint64_t *out_seq)
{
	MDB_cursor *c = NULL;
	MDB_val k, v;
	enum store_rc rc;
	int mrc;

	*out_seq = 0;
	if ((rc = lmdb_rc(t, mdb_cursor_open(t->txn, t->s->dbi[DB_REVS], &c),
	    "revocations")) != STORE_OK)
		goto out;
	mrc = mdb_cursor_get(c, &k, &v, MDB_LAST);
	if (mrc == MDB_NOTFOUND) {
		rc = STORE_OK;
		goto out;
	}
	if ((rc = lmdb_rc(t, mrc, "revocations")) != STORE_OK)
		goto out;
	if (!key_u64(&k, out_seq)) {
		log_warnx("store: revocations: bad key length %zu",
		    k.mv_size);
		rc = STORE_CORRUPT;
		goto out;
	}
	rc = STORE_OK;
out:
	if (c != NULL)
		mdb_cursor_close(c);
	if (rc == STORE_OK)
		rc = rev_floor(t, out_seq);
	return rc;
}

static enum store_rc	badkey_put(struct store_txn *, const uint8_t *hash,
		    const uint8_t *serial, uint8_t why, int64_t when);
static enum store_rc	badkey_add_lost(struct store_txn *,
		    const uint8_t *serial);

static int
transition_ok(uint8_t from, uint8_t from_reason, uint8_t to, uint8_t reason)
{
	/* A later-learned compromise raises the reason (Mozilla Root Store
	 * Policy 6.1.1); nothing else changes a revocation. */
	if (from == CERT_REVOKED && to == CERT_REVOKED)
		return reason == REASON_KEY_COMPROMISE &&
		    from_reason != REASON_KEY_COMPROMISE;
	switch (to) {
	case CERT_HOLD:
		return from == CERT_GOOD;
	case CERT_GOOD:
		return from == CERT_HOLD;
	case CERT_REVOKED:
		/* a revocation's reason cannot be hold or removeFromCRL */
		if (reason > REASON_AA_COMPROMISE || reason == 7 ||
		    reason == REASON_CERTIFICATE_HOLD ||
		    reason == REASON_REMOVE_FROM_CRL)
			return 0;
		return from == CERT_GOOD || from == CERT_HOLD;
	}
	return 0;
}

/*
 * Changes the status (see store.h for the allowed transitions) and appends
 * the revocations event.  A release (HOLD->GOOD) clears the revocation
 * fields; its event has reason REASON_REMOVE_FROM_CRL.
 */
enum store_rc
store_cert_set_status(struct store_txn *t,
    const uint8_t serial[STORE_SERIAL_LEN], uint8_t status, uint8_t reason,
    int64_t when, int64_t invalidity, uint64_t *out_seq)
{
	struct cert_rec c;
	struct rev_event ev;
	struct wb b;
	uint8_t key[8], khash[KEYHASH_LEN];
	uint64_t seq;
	enum store_rc rc;
	int khash_ok = 0;

	wb_init(&b);
	if ((rc = cert_get_borrowed(t, serial, &c)) != STORE_OK)
		goto out;
	if (!transition_ok(c.st.status, c.st.reason, status, reason)) {
		rc = STORE_INVALID;
		goto out;
	}
	/*
	 * Hash while c.der still points into the map (before any put).  A
	 * DER that does not parse never stops a revocation: it is logged
	 * and mica-admin check reports the missing index entry.
	 */
	if (status == CERT_REVOKED && reason == REASON_KEY_COMPROMISE) {
		khash_ok = keyhash_cert_der(khash, c.der, c.der_len);
		if (!khash_ok)
			log_corrupt("certs (compromised key not indexed)",
			    serial);
	}
	if ((rc = store_rev_last(t, &seq)) != STORE_OK)
		goto out;
	seq++;
	memset(&ev, 0, sizeof(ev));
	ev.seq = seq;
	memcpy(ev.serial, serial, STORE_SERIAL_LEN);
	ev.status = status;
	if (status == CERT_GOOD) {
		c.st.reason = REASON_UNSPECIFIED;
		c.st.revoked_at = 0;
		c.st.invalidity = 0;
		ev.reason = REASON_REMOVE_FROM_CRL;
	} else if (c.st.status == CERT_REVOKED) {
		/* reason raised: the first revocation time stays */
		c.st.reason = reason;
		if (invalidity != 0)
			c.st.invalidity = invalidity;
		ev.reason = reason;
		ev.invalidity = c.st.invalidity;
		when = c.st.revoked_at;
	} else {
		c.st.reason = status == CERT_HOLD ?
		    REASON_CERTIFICATE_HOLD : reason;
		c.st.revoked_at = when;
		c.st.invalidity = invalidity;
		ev.reason = c.st.reason;
		ev.invalidity = invalidity;
	}
	ev.when = when;
	c.st.status = status;
	c.st.change_seq = seq;
	/* c.der borrows the map: encode (copy) before any put */
	if (!store_rec_cert_encode(&b, &c))
		fatalx("store: cert record encode");
	if ((rc = db_put(t, DB_CERTS, serial, STORE_SERIAL_LEN, b.data, b.len,
	    0)) != STORE_OK)
		goto out;
	wb_cleanup(&b);
	if (!store_rec_rev_encode(&b, &ev))
		fatalx("store: revocation event encode");
	be64_put(key, seq);
	if ((rc = db_put(t, DB_REVS, key, sizeof(key), b.data, b.len,
	    MDB_NOOVERWRITE)) != STORE_OK)
		goto out;
	if (khash_ok && (rc = badkey_put(t, khash, serial, BADKEY_COMPROMISE,
	    when)) != STORE_OK)
		goto out;
	if (out_seq != NULL)
		*out_seq = seq;
	rc = STORE_OK;
out:
	wb_cleanup(&b);
	return rc;
}

/* Sets one link field of serial's record to other. */
static enum store_rc
cert_set_link(struct store_txn *t, const uint8_t serial[STORE_SERIAL_LEN],
    int replaced_by, const uint8_t other[STORE_SERIAL_LEN])
{
	struct cert_rec c;
	enum store_rc rc;
	uint8_t *field;

	if ((rc = cert_get_borrowed(t, serial, &c)) != STORE_OK)
		return rc;
	field = replaced_by ? c.replaced_by : c.replaces;
	if (!serial_is_zero(field) &&
	    memcmp(field, other, STORE_SERIAL_LEN) != 0)
		return STORE_INVALID;	/* already linked to another cert */
	memcpy(field, other, STORE_SERIAL_LEN);
	return cert_write(t, &c, 0);
}

/*
 * old.replaced_by = new, new.replaces = old.  STORE_NOTFOUND if either is
 * missing, STORE_INVALID if old == new or a link already names another.
 */
enum store_rc
store_cert_link(struct store_txn *t,
    const uint8_t old_serial[STORE_SERIAL_LEN],
    const uint8_t new_serial[STORE_SERIAL_LEN])
{
	struct cert_state st;
	enum store_rc rc;

	if (memcmp(old_serial, new_serial, STORE_SERIAL_LEN) == 0)
		return STORE_INVALID;
	if ((rc = store_cert_state(t, old_serial, &st)) != STORE_OK ||
	    (rc = store_cert_state(t, new_serial, &st)) != STORE_OK)
		return rc;
	if ((rc = cert_set_link(t, old_serial, 1, new_serial)) != STORE_OK)
		return rc;
	return cert_set_link(t, new_serial, 0, old_serial);
}

struct cert_walk {
	store_cert_cb	 cb;
	void		*arg;
};

static enum walk
cert_walk_one(const MDB_val *k, const MDB_val *v, void *arg)
{
	struct cert_walk *w = arg;
	struct cert_rec c;

	if (k->mv_size != STORE_SERIAL_LEN ||
	    !store_rec_cert_decode(&c, k->mv_data, v->mv_data, v->mv_size))
		return WALK_CORRUPT;
	return w->cb(&c, w->arg) ? WALK_NEXT : WALK_STOP;
}

/* Calls cb for every certificate in serial order (der borrowed). */
enum store_rc
store_cert_iter(struct store_txn *t, store_cert_cb cb, void *arg)
{
	struct cert_walk w = { cb, arg };

	return db_walk(t, DB_CERTS, NULL, 0, cert_walk_one, &w);
}

/* ---- revocation events ---- */

struct rev_walk {
	store_rev_cb	 cb;
	void		*arg;
};

static enum walk
rev_walk_one(const MDB_val *k, const MDB_val *v, void *arg)
{
	struct rev_walk *w = arg;
	struct rev_event ev;
	uint64_t seq;

	if (!key_u64(k, &seq) ||
	    !store_rec_rev_decode(&ev, seq, v->mv_data, v->mv_size))
		return WALK_CORRUPT;
	return w->cb(&ev, w->arg) ? WALK_NEXT : WALK_STOP;
}

/* Calls cb for every event with seq >= from_seq in order. */
enum store_rc
store_rev_iter(struct store_txn *t, uint64_t from_seq, store_rev_cb cb,
    void *arg)
{
	struct rev_walk w = { cb, arg };
	uint8_t key[8];

	be64_put(key, from_seq);
	return db_walk(t, DB_REVS, key, sizeof(key), rev_walk_one, &w);
}

/* ---- accounts ---- */

/* Wipes the whole record, secrets included. */
void
account_rec_wipe(struct account_rec *a)
{
	if (a != NULL)
		sodium_memzero(a, sizeof(*a));
}

static int
name_ok(const char *name, size_t *out_len)
{
	size_t n;

	if (name == NULL)
		return 0;
	n = strnlen(name, STORE_NAME_MAX + 1);
	if (n == 0 || n > STORE_NAME_MAX)
		return 0;
	*out_len = n;
	return 1;
}

/* Copies the account (secrets too: wipe out with account_rec_wipe). */
enum store_rc
store_account_get(struct store_txn *t, const char *name,
    struct account_rec *out)
{
	MDB_val v;
	enum store_rc rc;
	size_t n;

	sodium_memzero(out, sizeof(*out));
	if (!name_ok(name, &n))
		return STORE_INVALID;
	if ((rc = db_get(t, DB_ACCOUNTS, name, n, &v)) != STORE_OK)
		return rc;
	if (!store_rec_account_decode(out, (const uint8_t *)name, n,
	    v.mv_data, v.mv_size)) {
		log_warnx("store: account %s: record does not decode", name);
		return STORE_CORRUPT;
	}
	return STORE_OK;
}

/* Inserts or replaces an account; create_only: STORE_EXISTS if taken. */
enum store_rc
store_account_put(struct store_txn *t, const struct account_rec *a,
    int create_only)
{
	struct wb b;
	enum store_rc rc = STORE_INVALID;
	size_t n;

	wb_init(&b);
	/* reserve once: no realloc leaves copies of the secrets behind */
	if (!wb_reserve(&b, 64 + sizeof(*a)))
		fatalx("store: out of memory");
	if (!name_ok(a->name, &n) || !store_rec_account_encode(&b, a))
		goto out;
	rc = db_put(t, DB_ACCOUNTS, a->name, n, b.data, b.len,
	    create_only ? MDB_NOOVERWRITE : 0);
out:
	if (b.data != NULL)
		sodium_memzero(b.data, b.cap);
	wb_cleanup(&b);
	return rc;
}

/* Deletes the account record; STORE_NOTFOUND if there is none. */
enum store_rc
store_account_del(struct store_txn *t, const char *name)
{
	size_t n;

	if (!t->write || !name_ok(name, &n))
		return STORE_INVALID;
	return db_del(t, DB_ACCOUNTS, name, n);
}

#define META_ACCT_REMOVED	"account_removed:"

static int
removed_key(char *key, size_t cap, const char *name)
{
	size_t n;

	if (!name_ok(name, &n))
		return 0;
	return snprintf(key, cap, "%s%s", META_ACCT_REMOVED, name) <
	    (int)cap;
}

enum store_rc
store_account_removed_set(struct store_txn *t, const char *name,
    uint64_t when)
{
	char key[sizeof(META_ACCT_REMOVED) + STORE_NAME_MAX];

	if (!t->write || !removed_key(key, sizeof(key), name))
		return STORE_INVALID;
	return store_meta_set_u64(t, key, when ? when : 1);
}

enum store_rc
store_account_removed_get(struct store_txn *t, const char *name,
    uint64_t *when)
{
	char key[sizeof(META_ACCT_REMOVED) + STORE_NAME_MAX];
	enum store_rc rc;

	*when = 0;
	if (!removed_key(key, sizeof(key), name))
		return STORE_INVALID;
	if ((rc = store_meta_get_u64(t, key, when)) != STORE_OK)
		return rc;
	return *when == 0 ? STORE_NOTFOUND : STORE_OK;
}

struct account_walk {
	store_account_cb	 cb;
	void			*arg;
};

static enum walk
account_walk_one(const MDB_val *k, const MDB_val *v, void *arg)
{
	struct account_walk *w = arg;
	struct account_rec a;
	enum walk rc = WALK_CORRUPT;

	if (store_rec_account_decode(&a, k->mv_data, k->mv_size, v->mv_data,
	    v->mv_size))
		rc = w->cb(&a, w->arg) ? WALK_NEXT : WALK_STOP;
	account_rec_wipe(&a);
	return rc;
}

/* Calls cb for every account in name order; the record is wiped after. */
enum store_rc
store_account_iter(struct store_txn *t, store_account_cb cb, void *arg)
{
	struct account_walk w = { cb, arg };

	return db_walk(t, DB_ACCOUNTS, NULL, 0, account_walk_one, &w);
}

/* ---- requests ---- */

/* Frees an owned csr (from store_request_get) and zeroes the record. */
void
request_rec_cleanup(struct request_rec *q)
{
	if (q == NULL)
		return;
	free(q->csr);
	memset(q, 0, sizeof(*q));
}

/* Takes the next request id from meta "next_request_id" (first: 1). */
enum store_rc
store_request_next_id(struct store_txn *t, uint64_t *out_id)
{
	uint64_t next;
	enum store_rc rc;

	*out_id = 0;
	if ((rc = store_meta_get_u64(t, META_NEXT_REQ, &next)) != STORE_OK)
		return rc;
	if (next == 0)
		next = 1;
	if (next == UINT64_MAX)
		return STORE_FULL;
	if ((rc = store_meta_set_u64(t, META_NEXT_REQ, next + 1)) != STORE_OK)
		return rc;
	*out_id = next;
	return STORE_OK;
}

/* Copies the request, csr malloc'd (free with request_rec_cleanup). */
enum store_rc
store_request_get(struct store_txn *t, uint64_t id, struct request_rec *out)
{
	struct request_rec q;
	MDB_val v;
	uint8_t key[8];
	enum store_rc rc;

	memset(out, 0, sizeof(*out));
	be64_put(key, id);
	if ((rc = db_get(t, DB_REQUESTS, key, sizeof(key), &v)) != STORE_OK)
		return rc;
	if (!store_rec_request_decode(&q, id, v.mv_data, v.mv_size)) {
		log_warnx("store: request %" PRIu64 ": record does not "
		    "decode", id);
		return STORE_CORRUPT;
	}
	*out = q;
	out->csr = NULL;
	if (q.csr_len > 0) {
		if ((out->csr = malloc(q.csr_len)) == NULL)
			fatal("store: malloc");
		memcpy(out->csr, q.csr, q.csr_len);
	}
	return STORE_OK;
}

/*
 * The open_requests index: lost serial[16] -> u64 id of the request for it
 * that is pending or approved.  store_request_put keeps it, in the same
 * transaction as the record, so it holds exactly the open requests.
 */
static int
request_is_open(uint8_t state)
{
	return state == REQ_PENDING || state == REQ_APPROVED;
}

/* STORE_OK with *out_id, STORE_NOTFOUND, or an error. */
static enum store_rc
index_get(struct store_txn *t, const uint8_t *serial, uint64_t *out_id)
{
	MDB_val v;
	struct rd r;
	enum store_rc rc;

	*out_id = 0;
	rc = db_get(t, DB_OPEN_REQS, serial, STORE_SERIAL_LEN, &v);
	if (rc != STORE_OK)
		return rc;
	rd_init(&r, v.mv_data, v.mv_size);
	if (!rd_u64(&r, out_id) || rd_left(&r) != 0 || *out_id == 0) {
		log_warnx("store: open_requests: an entry is not a request id");
		*out_id = 0;
		return STORE_CORRUPT;
	}
	return STORE_OK;
}

/* Indexes id for serial; STORE_EXISTS if another id holds the serial. */
static enum store_rc
index_put(struct store_txn *t, const uint8_t *serial, uint64_t id)
{
	uint8_t val[8];
	uint64_t cur;
	enum store_rc rc;

	rc = index_get(t, serial, &cur);
	if (rc == STORE_OK)
		return cur == id ? STORE_OK : STORE_EXISTS;
	if (rc != STORE_NOTFOUND)
		return rc;
	be64_put(val, id);
	return db_put(t, DB_OPEN_REQS, serial, STORE_SERIAL_LEN, val,
	    sizeof(val), 0);
}

/* Removes serial's entry if it names id. */
static enum store_rc
index_del(struct store_txn *t, const uint8_t *serial, uint64_t id)
{
	uint64_t cur;
	enum store_rc rc;

	rc = index_get(t, serial, &cur);
	if (rc == STORE_NOTFOUND || (rc == STORE_OK && cur != id))
		return STORE_OK;
	if (rc != STORE_OK)
		return rc;
	return db_del(t, DB_OPEN_REQS, serial, STORE_SERIAL_LEN);
}

/* Moves the index from the stored version of q (if any) to q. */
static enum store_rc
index_update(struct store_txn *t, const struct request_rec *q)
{
	struct request_rec old;
	MDB_val v;
	uint8_t key[8];
	enum store_rc rc;

	if (!t->s->req_index) {
		log_warnx("store: request put without the open_requests index");
		return STORE_INVALID;
	}
	be64_put(key, q->id);
	rc = db_get(t, DB_REQUESTS, key, sizeof(key), &v);
	if (rc == STORE_OK) {
		if (!store_rec_request_decode(&old, q->id, v.mv_data,
		    v.mv_size)) {
			log_warnx("store: request %" PRIu64 ": record does "
			    "not decode", q->id);
			return STORE_CORRUPT;
		}
		if (request_is_open(old.state) &&
		    (!request_is_open(q->state) || memcmp(old.lost_serial,
		    q->lost_serial, STORE_SERIAL_LEN) != 0) &&
		    (rc = index_del(t, old.lost_serial, q->id)) != STORE_OK)
			return rc;
	} else if (rc != STORE_NOTFOUND)
		return rc;
	if (!request_is_open(q->state))
		return STORE_OK;
	rc = index_put(t, q->lost_serial, q->id);
	if (rc == STORE_EXISTS)
		log_warnx("store: request %" PRIu64 ": its serial already has "
		    "an open request", q->id);
	return rc;
}

/*
 * Inserts or replaces request q->id (which must not be 0) and keeps the
 * open_requests index; STORE_EXISTS if q is open and another request for
 * its lost serial is open too.
 */
enum store_rc
store_request_put(struct store_txn *t, const struct request_rec *q)
{
	struct wb b;
	uint8_t key[8];
	enum store_rc rc = STORE_INVALID;

	wb_init(&b);
	if (q->id == 0 || !store_rec_request_encode(&b, q)) {
		log_warnx("store: request %" PRIu64 ": invalid fields", q->id);
		goto out;
	}
	if (!t->write) {
		log_warnx("store: put into requests in a read transaction");
		goto out;
	}
	if ((rc = index_update(t, q)) != STORE_OK)
		goto out;
	/* An issued reissue: the lost certificate's key is never again
	 * accepted (same transaction as the replacement). */
	if (q->state == REQ_ISSUED &&
	    (rc = badkey_add_lost(t, q->lost_serial)) != STORE_OK)
		goto out;
	be64_put(key, q->id);
	rc = db_put(t, DB_REQUESTS, key, sizeof(key), b.data, b.len, 0);
out:
	wb_cleanup(&b);
	return rc;
}

struct open_walk {
	const uint8_t	*serial;
	uint64_t	 found;
};

static enum walk
open_walk_one(const MDB_val *k, const MDB_val *v, void *arg)
{
	struct open_walk *w = arg;
	struct request_rec q;
	uint64_t id;

	if (!key_u64(k, &id) ||
	    !store_rec_request_decode(&q, id, v->mv_data, v->mv_size))
		return WALK_CORRUPT;
	if (request_is_open(q.state) &&
	    memcmp(q.lost_serial, w->serial, STORE_SERIAL_LEN) == 0) {
		w->found = id;
		return WALK_STOP;
	}
	return WALK_NEXT;
}

/*
 * The open (pending or approved) request for a lost serial: one index
 * lookup, or a walk of the requests in a schema 1 store opened read-only.
 */
enum store_rc
store_request_open_find(struct store_txn *t,
    const uint8_t serial[STORE_SERIAL_LEN], uint64_t *out_id)
{
	struct open_walk w = { serial, 0 };
	enum store_rc rc;

	*out_id = 0;
	if (t->s->req_index)
		return index_get(t, serial, out_id);
	if ((rc = db_walk(t, DB_REQUESTS, NULL, 0, open_walk_one, &w)) !=
	    STORE_OK)
		return rc;
	*out_id = w.found;
	return w.found != 0 ? STORE_OK : STORE_NOTFOUND;
}

struct request_walk {
	store_request_cb	 cb;
	void			*arg;
};

static enum walk
request_walk_one(const MDB_val *k, const MDB_val *v, void *arg)
{
	struct request_walk *w = arg;
	struct request_rec q;
	uint64_t id;

	if (!key_u64(k, &id) ||
	    !store_rec_request_decode(&q, id, v->mv_data, v->mv_size))
		return WALK_CORRUPT;
	return w->cb(&q, w->arg) ? WALK_NEXT : WALK_STOP;
}

/* Calls cb for every request in id order (csr borrowed). */
enum store_rc
store_request_iter(struct store_txn *t, store_request_cb cb, void *arg)
{
	struct request_walk w = { cb, arg };

	return db_walk(t, DB_REQUESTS, NULL, 0, request_walk_one, &w);
}

/* ---- open_requests check ---- */

struct index_check {
	struct store_txn	*txn;
	enum store_rc	 rc;		/* a lookup error */
	uint64_t	 num_open;	/* open requests */
	uint64_t	 num_entries;	/* index entries */
	int		 bad;
	char		*why;
	size_t		 why_len;
};

/* The checks' "why" message, when the caller asked for one. */
static void
why_vset(char *why, size_t why_len, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

static void
why_vset(char *why, size_t why_len, const char *fmt, va_list ap)
{
	if (why != NULL && why_len > 0)
		vsnprintf(why, why_len, fmt, ap);
}

static enum walk
index_fail(struct index_check *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static enum walk
index_fail(struct index_check *c, const char *fmt, ...)
{
	va_list ap;

	c->bad = 1;
	va_start(ap, fmt);
	why_vset(c->why, c->why_len, fmt, ap);
	va_end(ap);
	return WALK_STOP;
}

/* Every open request is the one its serial's entry names. */
static enum walk
index_check_request(const MDB_val *k, const MDB_val *v, void *arg)
{
	struct index_check *c = arg;
	struct request_rec q;
	char hex[SERIAL_HEX_LEN];
	uint64_t id, ix;
	enum store_rc rc;

	if (!key_u64(k, &id) ||
	    !store_rec_request_decode(&q, id, v->mv_data, v->mv_size))
		return WALK_CORRUPT;
	if (!request_is_open(q.state))
		return WALK_NEXT;
	c->num_open++;
	serial_hex(hex, q.lost_serial);
	rc = index_get(c->txn, q.lost_serial, &ix);
	if (rc == STORE_NOTFOUND)
		return index_fail(c, "open request %" PRIu64 " (serial %s) "
		    "is not in the index", id, hex);
	if (rc == STORE_CORRUPT)
		return index_fail(c, "index entry for serial %s is not a "
		    "request id", hex);
	if (rc != STORE_OK) {
		c->rc = rc;
		return WALK_STOP;
	}
	if (ix != id)
		return index_fail(c, "open request %" PRIu64 " (serial %s): "
		    "the index names request %" PRIu64, id, hex, ix);
	return WALK_NEXT;
}

/* Every entry names an open request for its serial. */
static enum walk
index_check_entry(const MDB_val *k, const MDB_val *v, void *arg)
{
	struct index_check *c = arg;
	struct request_rec q;
	char hex[SERIAL_HEX_LEN] = "?";
	MDB_val rv;
	struct rd r;
	uint8_t key[8];
	uint64_t id = 0;
	enum store_rc rc;

	c->num_entries++;
	if (k->mv_size != STORE_SERIAL_LEN)
		return index_fail(c, "index key of %zu bytes", k->mv_size);
	serial_hex(hex, k->mv_data);
	rd_init(&r, v->mv_data, v->mv_size);
	if (!rd_u64(&r, &id) || rd_left(&r) != 0 || id == 0)
		return index_fail(c, "index entry for serial %s is not a "
		    "request id", hex);
	be64_put(key, id);
	rc = db_get(c->txn, DB_REQUESTS, key, sizeof(key), &rv);
	if (rc == STORE_NOTFOUND)
		return index_fail(c, "index entry for serial %s names "
		    "request %" PRIu64 ", which does not exist", hex, id);
	if (rc != STORE_OK) {
		c->rc = rc;
		return WALK_STOP;
	}
	if (!store_rec_request_decode(&q, id, rv.mv_data, rv.mv_size))
		return WALK_CORRUPT;
	if (!request_is_open(q.state))
		return index_fail(c, "index entry for serial %s names "
		    "request %" PRIu64 ", which is closed (state %u)", hex,
		    id, q.state);
	if (memcmp(q.lost_serial, k->mv_data, STORE_SERIAL_LEN) != 0)
		return index_fail(c, "index entry for serial %s names "
		    "request %" PRIu64 ", which is for another serial", hex,
		    id);
	return WALK_NEXT;
}

/*
 * Compares open_requests with the requests: one walk of each, a lookup per
 * open request and per entry.  *out_open = open requests.  Returns STORE_OK
 * when they agree, STORE_CORRUPT with why (the first difference) when not,
 * STORE_NOTFOUND when the store has no index (schema 1 opened read-only).
 */
enum store_rc
store_request_index_check(struct store_txn *t, uint64_t *out_open,
    char *why, size_t why_len)
{
	struct index_check c;
	enum store_rc rc;

	memset(&c, 0, sizeof(c));
	c.txn = t;
	c.rc = STORE_OK;
	c.why = why;
	c.why_len = why_len;
	if (why != NULL && why_len > 0)
		why[0] = '\0';
	if (out_open != NULL)
		*out_open = 0;
	if (!t->s->req_index) {
		if (why != NULL && why_len > 0)
			snprintf(why, why_len, "no open_requests index "
			    "(schema 1 store opened read-only)");
		return STORE_NOTFOUND;
	}
	rc = db_walk(t, DB_REQUESTS, NULL, 0, index_check_request, &c);
	if (rc == STORE_OK && c.rc == STORE_OK && !c.bad)
		rc = db_walk(t, DB_OPEN_REQS, NULL, 0, index_check_entry, &c);
	if (rc == STORE_OK && c.rc == STORE_OK && !c.bad &&
	    c.num_entries != c.num_open)
		index_fail(&c, "%" PRIu64 " index entries for %" PRIu64
		    " open requests", c.num_entries, c.num_open);
	if (rc == STORE_OK)
		rc = c.rc;
	if (rc == STORE_OK && c.bad)
		rc = STORE_CORRUPT;
	if (out_open != NULL)
		*out_open = c.num_open;
	return rc;
}

/* ---- bad_keys: the compromised-key index (schema 3) ---- */

/*
 * Key: SHA-256 of the canonical SubjectPublicKeyInfo (common/keyhash.h).
 * Value: version u8 | serial[16] of the first certificate that put the
 * key here | why u8 (enum bad_key_why) | when i64.  Entries are never
 * removed: a key once compromised or lost stays refused.
 */
#define BADKEY_VAL_LEN	(1 + STORE_SERIAL_LEN + 1 + 8)

static int
badkey_decode(const MDB_val *v, struct bad_key *out)
{
	struct rd r;
	uint8_t ver;
	uint64_t when;

	memset(out, 0, sizeof(*out));
	rd_init(&r, v->mv_data, v->mv_size);
	if (!rd_u8(&r, &ver) || ver != STORE_REC_VERSION ||
	    !rd_copy(&r, out->serial, STORE_SERIAL_LEN) ||
	    !rd_u8(&r, &out->why) || !rd_u64(&r, &when) || rd_left(&r) != 0 ||
	    (out->why != BADKEY_COMPROMISE && out->why != BADKEY_LOST))
		return 0;
	out->when = (int64_t)when;
	return 1;
}

/* Adds hash -> (serial, why, when) unless the key is there already. */
static enum store_rc
badkey_put(struct store_txn *t, const uint8_t *hash, const uint8_t *serial,
    uint8_t why, int64_t when)
{
	MDB_val v;
	uint8_t val[BADKEY_VAL_LEN];
	enum store_rc rc;

	if (!t->s->key_index) {
		log_warnx("store: key refused without the bad_keys index");
		return STORE_INVALID;
	}
	rc = db_get(t, DB_BAD_KEYS, hash, KEYHASH_LEN, &v);
	if (rc == STORE_OK)
		return STORE_OK;	/* the first reason is kept */
	if (rc != STORE_NOTFOUND)
		return rc;
	val[0] = STORE_REC_VERSION;
	memcpy(val + 1, serial, STORE_SERIAL_LEN);
	val[1 + STORE_SERIAL_LEN] = why;
	be64_put(val + 2 + STORE_SERIAL_LEN, (uint64_t)when);
	return db_put(t, DB_BAD_KEYS, hash, KEYHASH_LEN, val, sizeof(val), 0);
}

/* The lost certificate of an issued reissue; a missing one is skipped. */
static enum store_rc
badkey_add_lost(struct store_txn *t, const uint8_t *serial)
{
	struct cert_rec c;
	uint8_t hash[KEYHASH_LEN];
	enum store_rc rc;

	rc = cert_get_borrowed(t, serial, &c);
	if (rc == STORE_NOTFOUND)
		return STORE_OK;
	if (rc != STORE_OK)
		return rc;
	if (!keyhash_cert_der(hash, c.der, c.der_len)) {
		/* never stops a reissue; mica-admin check reports it */
		log_corrupt("certs (lost key not indexed)", serial);
		return STORE_OK;
	}
	return badkey_put(t, hash, serial, BADKEY_LOST, (int64_t)time(NULL));
}

enum store_rc
store_bad_key_get(struct store_txn *t, const uint8_t hash[STORE_KEYHASH_LEN],
    struct bad_key *out)
{
	MDB_val v;
	enum store_rc rc;

	memset(out, 0, sizeof(*out));
	if (!t->s->key_index)
		return STORE_NOTFOUND;
	if ((rc = db_get(t, DB_BAD_KEYS, hash, KEYHASH_LEN, &v)) != STORE_OK)
		return rc;
	if (!badkey_decode(&v, out)) {
		log_warnx("store: bad_keys: an entry does not decode");
		return STORE_CORRUPT;
	}
	return STORE_OK;
}

/* The upgrade's fill: revoked for keyCompromise, then lost serials. */
struct badkeys_fill {
	struct store_txn	*t;
	enum store_rc		 rc;
	uint64_t		 n;
};

static enum walk
badkeys_fill_cert(const MDB_val *k, const MDB_val *v, void *arg)
{
	struct badkeys_fill *f = arg;
	struct cert_rec c;
	uint8_t hash[KEYHASH_LEN];

	if (k->mv_size != STORE_SERIAL_LEN ||
	    !store_rec_cert_decode(&c, k->mv_data, v->mv_data, v->mv_size))
		return WALK_CORRUPT;
	if (c.st.status != CERT_REVOKED ||
	    c.st.reason != REASON_KEY_COMPROMISE)
		return WALK_NEXT;
	if (!keyhash_cert_der(hash, c.der, c.der_len)) {
		log_corrupt("certs (compromised key not indexed)", c.serial);
		return WALK_NEXT;
	}
	/* a put under a walk of another database leaves the cursor valid */
	if ((f->rc = badkey_put(f->t, hash, c.serial, BADKEY_COMPROMISE,
	    c.st.revoked_at)) != STORE_OK)
		return WALK_STOP;
	f->n++;
	return WALK_NEXT;
}

static enum walk
badkeys_fill_request(const MDB_val *k, const MDB_val *v, void *arg)
{
	struct badkeys_fill *f = arg;
	struct request_rec q;
	uint64_t id;

	if (!key_u64(k, &id) ||
	    !store_rec_request_decode(&q, id, v->mv_data, v->mv_size))
		return WALK_CORRUPT;
	if (q.state != REQ_ISSUED)
		return WALK_NEXT;
	if ((f->rc = badkey_add_lost(f->t, q.lost_serial)) != STORE_OK)
		return WALK_STOP;
	f->n++;
	return WALK_NEXT;
}

static enum store_rc
badkeys_build(struct store_txn *t, const char *dir)
{
	struct badkeys_fill f = { t, STORE_OK, 0 };
	enum store_rc rc;

	rc = db_walk(t, DB_CERTS, NULL, 0, badkeys_fill_cert, &f);
	if (rc == STORE_OK && f.rc == STORE_OK)
		rc = db_walk(t, DB_REQUESTS, NULL, 0, badkeys_fill_request,
		    &f);
	if (rc == STORE_OK)
		rc = f.rc;
	if (rc == STORE_OK)
		log_info("store: %s: upgrade: %" PRIu64 " compromised or lost "
		    "keys indexed", dir, f.n);
	return rc;
}

/* ---- bad_keys check ---- */

struct badkey_check {
	struct store_txn	*txn;
	enum store_rc		 rc;
	uint64_t		 num_entries;
	int			 bad;
	char			*why;
	size_t			 why_len;
};

static enum walk
badkey_fail(struct badkey_check *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static enum walk
badkey_fail(struct badkey_check *c, const char *fmt, ...)
{
	va_list ap;

	c->bad = 1;
	va_start(ap, fmt);
	why_vset(c->why, c->why_len, fmt, ap);
	va_end(ap);
	return WALK_STOP;
}

/* Is the key of serial (whose DER is der) in the index? */
static enum walk
badkey_check_has(struct badkey_check *c, const uint8_t *serial,
    const uint8_t *der, size_t der_len, const char *what)
{
	struct bad_key bk;
	uint8_t hash[KEYHASH_LEN];
	char hex[SERIAL_HEX_LEN];
	enum store_rc rc;

	serial_hex(hex, serial);
	if (!keyhash_cert_der(hash, der, der_len))
		return badkey_fail(c, "certificate %s does not parse", hex);
	rc = store_bad_key_get(c->txn, hash, &bk);
	if (rc == STORE_NOTFOUND)
		return badkey_fail(c, "the key of certificate %s (%s) is not "
		    "in the compromised-key index", hex, what);
	if (rc == STORE_CORRUPT)
		return badkey_fail(c, "the index entry for the key of "
		    "certificate %s does not decode", hex);
	if (rc != STORE_OK) {
		c->rc = rc;
		return WALK_STOP;
	}
	return WALK_NEXT;
}

static enum walk
badkey_check_cert(const MDB_val *k, const MDB_val *v, void *arg)
{
	struct badkey_check *c = arg;
	struct cert_rec cr;

	if (k->mv_size != STORE_SERIAL_LEN ||
	    !store_rec_cert_decode(&cr, k->mv_data, v->mv_data, v->mv_size))
		return WALK_CORRUPT;
	if (cr.st.status != CERT_REVOKED ||
	    cr.st.reason != REASON_KEY_COMPROMISE)
		return WALK_NEXT;
	return badkey_check_has(c, cr.serial, cr.der, cr.der_len,
	    "revoked for keyCompromise");
}

static enum walk
badkey_check_request(const MDB_val *k, const MDB_val *v, void *arg)
{
	struct badkey_check *c = arg;
	struct request_rec q;
	struct cert_rec cr;
	uint64_t id;
	enum store_rc rc;

	if (!key_u64(k, &id) ||
	    !store_rec_request_decode(&q, id, v->mv_data, v->mv_size))
		return WALK_CORRUPT;
	if (q.state != REQ_ISSUED)
		return WALK_NEXT;
	rc = cert_get_borrowed(c->txn, q.lost_serial, &cr);
	if (rc == STORE_NOTFOUND)
		return WALK_NEXT;
	if (rc != STORE_OK) {
		c->rc = rc;
		return WALK_STOP;
	}
	return badkey_check_has(c, cr.serial, cr.der, cr.der_len,
	    "lost, replaced by a reissue");
}

/* Every entry: decodes, names a certificate with that key, which is
 * revoked for keyCompromise or was replaced (lost). */
static enum walk
badkey_check_entry(const MDB_val *k, const MDB_val *v, void *arg)
{
	struct badkey_check *c = arg;
	struct bad_key bk;
	struct cert_rec cr;
	uint8_t hash[KEYHASH_LEN];
	char hex[SERIAL_HEX_LEN], khex[2 * 8 + 1];
	enum store_rc rc;

	c->num_entries++;
	if (k->mv_size != KEYHASH_LEN)
		return badkey_fail(c, "compromised-key index key of %zu "
		    "bytes", k->mv_size);
	hex_encode(khex, k->mv_data, 8);
	if (!badkey_decode(v, &bk))
		return badkey_fail(c, "entry %s... does "
		    "not decode", khex);
	serial_hex(hex, bk.serial);
	rc = cert_get_borrowed(c->txn, bk.serial, &cr);
	if (rc == STORE_NOTFOUND)
		return badkey_fail(c, "entry %s... names "
		    "certificate %s, which does not exist", khex, hex);
	if (rc != STORE_OK) {
		c->rc = rc;
		return WALK_STOP;
	}
	if (!keyhash_cert_der(hash, cr.der, cr.der_len) ||
	    memcmp(hash, k->mv_data, KEYHASH_LEN) != 0)
		return badkey_fail(c, "entry %s... names "
		    "certificate %s, whose key is another", khex, hex);
	if (bk.why == BADKEY_COMPROMISE && (cr.st.status != CERT_REVOKED ||
	    cr.st.reason != REASON_KEY_COMPROMISE))
		return badkey_fail(c, "entry %s... names "
		    "certificate %s, which is not revoked for keyCompromise",
		    khex, hex);
	if (bk.why == BADKEY_LOST && serial_is_zero(cr.replaced_by))
		return badkey_fail(c, "entry %s... names "
		    "certificate %s as lost, which was never replaced", khex,
		    hex);
	return WALK_NEXT;
}

enum store_rc
store_bad_key_check(struct store_txn *t, uint64_t *out_entries, char *why,
    size_t why_len)
{
	struct badkey_check c;
	enum store_rc rc;

	memset(&c, 0, sizeof(c));
	c.txn = t;
	c.rc = STORE_OK;
	c.why = why;
	c.why_len = why_len;
	if (why != NULL && why_len > 0)
		why[0] = '\0';
	if (out_entries != NULL)
		*out_entries = 0;
	if (!t->s->key_index) {
		if (why != NULL && why_len > 0)
			snprintf(why, why_len, "no compromised-key index "
			    "(schema 1 or 2 store opened read-only)");
		return STORE_NOTFOUND;
	}
	rc = db_walk(t, DB_CERTS, NULL, 0, badkey_check_cert, &c);
	if (rc == STORE_OK && c.rc == STORE_OK && !c.bad)
		rc = db_walk(t, DB_REQUESTS, NULL, 0, badkey_check_request,
		    &c);
	if (rc == STORE_OK && c.rc == STORE_OK && !c.bad)
		rc = db_walk(t, DB_BAD_KEYS, NULL, 0, badkey_check_entry, &c);
	if (rc == STORE_OK)
		rc = c.rc;
	if (rc == STORE_OK && c.bad)
		rc = STORE_CORRUPT;
	if (out_entries != NULL)
		*out_entries = c.num_entries;
	return rc;
}

/* ---- meta ---- */

static int
meta_key_ok(const char *key, size_t *out_len)
{
	size_t n;

	if (key == NULL)
		return 0;
	n = strnlen(key, STORE_META_KEY_MAX + 1);
	if (n == 0 || n > STORE_META_KEY_MAX)
		return 0;
	*out_len = n;
	return 1;
}

/* Reads a u64 counter; a missing key reads as 0. */
enum store_rc
store_meta_get_u64(struct store_txn *t, const char *key, uint64_t *out)
{
	MDB_val v;
	enum store_rc rc;
	size_t n;

	*out = 0;
	if (!meta_key_ok(key, &n))
		return STORE_INVALID;
	rc = db_get(t, DB_META, key, n, &v);
	if (rc == STORE_NOTFOUND)
		return STORE_OK;
	if (rc != STORE_OK)
		return rc;
	if (v.mv_size != 8) {
		log_warnx("store: meta %s: not a counter", key);
		return STORE_CORRUPT;
	}
	*out = be64_get(v.mv_data);
	return STORE_OK;
}

/* Sets a u64 counter (not audit_head, which only the chain moves; the
 * store itself writes schema_version through here at create). */
enum store_rc
store_meta_set_u64(struct store_txn *t, const char *key, uint64_t v)
{
	uint8_t val[8];
	size_t n;

	if (!meta_key_ok(key, &n) || strcmp(key, META_AUDIT_HEAD) == 0 ||
	    strncmp(key, "journal_", 8) == 0)
		return STORE_INVALID;
	be64_put(val, v);
	return db_put(t, DB_META, key, n, val, sizeof(val), 0);
}

/* ---- audit chain ---- */

static void
copy_trunc(char *dst, size_t cap, const char *src)
{
	size_t n;

	if (src == NULL)
		src = "";
	n = strnlen(src, cap - 1);
	memcpy(dst, src, n);
	dst[n] = '\0';
}

/* Reads the chain head; a missing head is seq 0 with a zero hash. */
static enum store_rc
audit_head_get(struct store_txn *t, uint64_t *seq,
    uint8_t hash[STORE_HASH_LEN])
{
	MDB_val v;
	enum store_rc rc;

	*seq = 0;
	memset(hash, 0, STORE_HASH_LEN);
	rc = db_get(t, DB_META, META_AUDIT_HEAD, strlen(META_AUDIT_HEAD), &v);
	if (rc == STORE_NOTFOUND)
		return STORE_OK;
	if (rc != STORE_OK)
		return rc;
	if (v.mv_size != STORE_AUDIT_HEAD_LEN) {
		log_warnx("store: meta audit_head: bad length %zu", v.mv_size);
		return STORE_CORRUPT;
	}
	*seq = be64_get(v.mv_data);
	memcpy(hash, (const uint8_t *)v.mv_data + 8, STORE_HASH_LEN);
	return STORE_OK;
}

/* Appends an audit record (time = now) and moves the chain head. */
enum store_rc
store_audit_append(struct store_txn *t, const char *actor, const char *action,
    const char *subject, const char *details, uint64_t *out_seq)
{
	struct audit_rec a;
	struct wb b;
	uint8_t key[8], head[STORE_AUDIT_HEAD_LEN];
	enum store_rc rc;

	wb_init(&b);
	memset(&a, 0, sizeof(a));
	if ((rc = audit_head_get(t, &a.seq, a.prev)) != STORE_OK)
		goto out;
	a.seq++;
	a.when = (int64_t)time(NULL);
	copy_trunc(a.actor, sizeof(a.actor), actor);
	copy_trunc(a.action, sizeof(a.action), action);
	copy_trunc(a.subject, sizeof(a.subject), subject);
	copy_trunc(a.details, sizeof(a.details), details);
	if (!store_audit_hash(a.hash, &a) || !store_rec_audit_encode(&b, &a))
		fatalx("store: audit record encode");
	be64_put(key, a.seq);
	if ((rc = db_put(t, DB_AUDIT, key, sizeof(key), b.data, b.len,
	    MDB_NOOVERWRITE)) != STORE_OK)
		goto out;
	be64_put(head, a.seq);
	memcpy(head + 8, a.hash, STORE_HASH_LEN);
	if ((rc = db_put(t, DB_META, META_AUDIT_HEAD, strlen(META_AUDIT_HEAD),
	    head, sizeof(head), 0)) != STORE_OK)
		goto out;
	if (out_seq != NULL)
		*out_seq = a.seq;
	rc = STORE_OK;
out:
	wb_cleanup(&b);
	return rc;
}

struct audit_walk {
	store_audit_cb	 cb;
	void		*arg;
};

static enum walk
audit_walk_one(const MDB_val *k, const MDB_val *v, void *arg)
{
	struct audit_walk *w = arg;
	struct audit_rec a;
	uint64_t seq;

	if (!key_u64(k, &seq) ||
	    !store_rec_audit_decode(&a, seq, v->mv_data, v->mv_size))
		return WALK_CORRUPT;
	return w->cb(&a, w->arg) ? WALK_NEXT : WALK_STOP;
}

/* Calls cb for every audit record with seq >= from_seq in order. */
enum store_rc
store_audit_iter(struct store_txn *t, uint64_t from_seq, store_audit_cb cb,
    void *arg)
{
	struct audit_walk w = { cb, arg };
	uint8_t key[8];

	be64_put(key, from_seq);
	return db_walk(t, DB_AUDIT, key, sizeof(key), audit_walk_one, &w);
}

struct audit_check {
	uint64_t	 expect;		/* next seq */
	uint8_t		 prev[STORE_HASH_LEN];	/* hash of expect-1 */
	uint64_t	 count;
	uint64_t	 bad_seq;
	char		*why;
	size_t		 why_len;
};

static enum walk
audit_fail(struct audit_check *c, uint64_t seq, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static enum walk
audit_fail(struct audit_check *c, uint64_t seq, const char *fmt, ...)
{
	va_list ap;

	c->bad_seq = seq;
	va_start(ap, fmt);
	why_vset(c->why, c->why_len, fmt, ap);
	va_end(ap);
	return WALK_STOP;
}

static enum walk
audit_check_one(const MDB_val *k, const MDB_val *v, void *arg)
{
	struct audit_check *c = arg;
	struct audit_rec a;
	uint8_t h[STORE_HASH_LEN];
	uint64_t seq;

	if (!key_u64(k, &seq))
		return audit_fail(c, c->expect, "audit record after %" PRIu64
		    ": key is not a sequence number", c->expect - 1);
	if (seq != c->expect)
		return audit_fail(c, c->expect, "audit record %" PRIu64
		    " is missing (the next record is %" PRIu64 ")",
		    c->expect, seq);
	if (!store_rec_audit_decode(&a, seq, v->mv_data, v->mv_size))
		return audit_fail(c, seq, "audit record %" PRIu64
		    ": does not decode", seq);
	if (sodium_memcmp(a.prev, c->prev, STORE_HASH_LEN) != 0)
		return audit_fail(c, seq, "audit record %" PRIu64
		    ": previous hash does not match record %" PRIu64
		    " (records removed or reordered)", seq, seq - 1);
	if (!store_audit_hash(h, &a) ||
	    sodium_memcmp(h, a.hash, STORE_HASH_LEN) != 0)
		return audit_fail(c, seq, "audit record %" PRIu64
		    ": hash does not match its content", seq);
	memcpy(c->prev, a.hash, STORE_HASH_LEN);
	c->expect++;
	c->count++;
	return WALK_NEXT;
}

/* Verifies the chain 1..head; STORE_OK or STORE_CORRUPT (see store.h). */
enum store_rc
store_audit_verify(struct store_txn *t, uint64_t *out_count,
    uint64_t *out_bad_seq, char *why, size_t why_len)
{
	struct audit_check c;
	uint8_t head_hash[STORE_HASH_LEN];
	uint64_t head_seq;
	enum store_rc rc;

	memset(&c, 0, sizeof(c));
	c.expect = 1;
	c.why = why;
	c.why_len = why_len;
	if (why != NULL && why_len > 0)
		why[0] = '\0';
	if ((rc = audit_head_get(t, &head_seq, head_hash)) != STORE_OK)
		goto out;
	if ((rc = db_walk(t, DB_AUDIT, NULL, 0, audit_check_one, &c)) !=
	    STORE_OK)
		goto out;
	if (c.bad_seq != 0) {
		rc = STORE_CORRUPT;
		goto out;
	}
	if (head_seq != c.count) {
		audit_fail(&c, head_seq > c.count ? c.count + 1 : head_seq,
		    "audit chain head names record %" PRIu64 " but the last "
		    "record is %" PRIu64 " (records removed or added)",
		    head_seq, c.count);
		rc = STORE_CORRUPT;
		goto out;
	}
	if (sodium_memcmp(head_hash, c.prev, STORE_HASH_LEN) != 0) {
		audit_fail(&c, head_seq, "audit record %" PRIu64
		    ": hash does not match the chain head", head_seq);
		rc = STORE_CORRUPT;
		goto out;
	}
	rc = STORE_OK;
out:
	if (rc == STORE_CORRUPT && c.why != NULL && c.why_len > 0)
		log_warnx("store: %s", c.why);
	if (out_count != NULL)
		*out_count = c.count;
	if (out_bad_seq != NULL)
		*out_bad_seq = c.bad_seq;
	return rc;
}

/* ---- whole store ---- */

/* store_info's walks: the counts, and when to give up */
struct info_arg {
	struct store_info	*info;
	const _Atomic int	*stop;
	unsigned int		 n;
};

static int
info_stopped(struct info_arg *ia)
{
	return ia->stop != NULL && (++ia->n & 1023) == 0 &&
	    atomic_load(ia->stop);
}

static enum walk
info_cert_one(const MDB_val *k, const MDB_val *v, void *arg)
{
	struct info_arg *ia = arg;
	struct store_info *info = ia->info;
	struct cert_state st;

	if (info_stopped(ia))
		return WALK_STOP;
	if (k->mv_size != STORE_SERIAL_LEN ||
	    !store_rec_cert_state_decode(&st, v->mv_data, v->mv_size))
		return WALK_CORRUPT;
	if (st.status == CERT_GOOD)
		info->num_good++;
	else if (st.status == CERT_HOLD)
		info->num_hold++;
	else
		info->num_revoked++;
	return WALK_NEXT;
}

static enum walk
info_request_one(const MDB_val *k, const MDB_val *v, void *arg)
{
	struct info_arg *ia = arg;
	struct store_info *info = ia->info;
	uint8_t ver, state;
	struct rd r;

	(void)k;
	if (info_stopped(ia))
		return WALK_STOP;
	rd_init(&r, v->mv_data, v->mv_size);
	if (!rd_u8(&r, &ver) || ver != STORE_REC_VERSION ||
	    !rd_u8(&r, &state))
		return WALK_CORRUPT;
	if (state == REQ_PENDING)
		info->num_pending++;
	return WALK_NEXT;
}

static enum store_rc
info_txn(struct store_txn *t, void *arg)
{
	struct info_arg *ia = arg;
	struct store_info *info = ia->info;
	MDB_stat st;
	MDB_envinfo ei;
	uint64_t *counts[DB_COUNT] = {
		&info->num_certs, &info->num_rev_events, &info->num_accounts,
		&info->num_requests, &info->num_audit, NULL, NULL,
	};
	enum store_rc rc;
	int i, mrc;

	for (i = 0; i < DB_COUNT; i++) {
		if (counts[i] == NULL)
			continue;
		mrc = mdb_stat(t->txn, t->s->dbi[i], &st);
		if ((rc = lmdb_rc(t, mrc, db_names[i])) != STORE_OK)
			return rc;
		*counts[i] = st.ms_entries;
	}
	if ((rc = lmdb_rc(t, mdb_env_info(t->s->env, &ei), "env info")) !=
	    STORE_OK ||
	    (rc = lmdb_rc(t, mdb_env_stat(t->s->env, &st), "env stat")) !=
	    STORE_OK)
		return rc;
	info->map_size = ei.me_mapsize;
	info->used_bytes = ((uint64_t)ei.me_last_pgno + 1) * st.ms_psize;
	if ((rc = db_walk(t, DB_CERTS, NULL, 0, info_cert_one, ia)) !=
	    STORE_OK ||
	    (rc = db_walk(t, DB_REQUESTS, NULL, 0, info_request_one, ia)) !=
	    STORE_OK)
		return rc;
	return ia->stop != NULL && atomic_load(ia->stop) ? STORE_ABORT :
	    STORE_OK;
}

/* Fills info (sizes and counts) from one read transaction. */
enum store_rc
store_info(struct store *s, struct store_info *info)
{
	return store_info_until(s, info, NULL);
}

enum store_rc
store_info_until(struct store *s, struct store_info *info,
    const _Atomic int *stop)
{
	struct info_arg ia = { info, stop, 0 };

	memset(info, 0, sizeof(*info));
	return store_read(s, info_txn, &ia);
}

/*
 * Writes a compacted, consistent copy (a data.mdb image) to fd, then
 * fsyncs fd (unless fd does not support it, e.g. a pipe).  The map cannot
 * grow while the copy runs.
 */
enum store_rc
store_backup_fd(struct store *s, int fd)
{
	enum store_rc rc;
	int mrc;

	map_rdlock(s);
	mrc = mdb_env_copyfd2(s->env, fd, MDB_CP_COMPACT);
	map_unlock(s);
	if ((rc = lmdb_rc(NULL, mrc, "backup")) != STORE_OK)
		return rc;
	if (fsync(fd) == -1 && errno != EINVAL && errno != EROFS) {
		log_warn("store: backup: fsync");
		return errno == ENOSPC ? STORE_FULL : STORE_IO;
	}
	return STORE_OK;
}

/* ---- journal position, digest, point-in-time restore ---- */

static enum store_rc
jinfo_txn(struct store_txn *t, void *arg)
{
	struct store_journal_info *ji = arg;

	return jmeta_get(t, &ji->seq, ji->head, &ji->epoch);
}

enum store_rc
store_journal_info(struct store *s, struct store_journal_info *out)
{
	enum store_rc rc;

	memset(out, 0, sizeof(*out));
	if ((rc = store_read(s, jinfo_txn, out)) != STORE_OK)
		return rc;
	if (out->epoch == 0)
		out->epoch = 1;
	if (s->jnl != NULL) {
		out->enabled = 1;
		snprintf(out->dir, sizeof(out->dir), "%s",
		    journal_dir(s->jnl));
		journal_size(s->jnl, &out->num_segments, &out->bytes);
	}
	return STORE_OK;
}

/*
 * The epoch of a promotion of this store ("replica_promoted"): written
 * by store_promote only, never journalled, and left out of the digest.
 * It is this store's own fact, not replicated state: it tells micad that
 * this store itself took over at that epoch (so it starts as the
 * primary although [replica] primary is still set).  Were it shipped, a
 * standby following the promoted server (the old primary) would hold it
 * too and take itself for the promoted one.
 */
#define META_PROMOTED	"replica_promoted"

/* meta keys that differ between stores holding the same records */
static int
digest_skip(const MDB_val *k)
{
	return (k->mv_size == strlen(META_J_EPOCH) &&
	    memcmp(k->mv_data, META_J_EPOCH, k->mv_size) == 0) ||
	    (k->mv_size == strlen(META_PROMOTED) &&
	    memcmp(k->mv_data, META_PROMOTED, k->mv_size) == 0);
}

struct digest_ctx {
	crypto_generichash_state	st;
	int				db;
};

static enum walk
digest_one(const MDB_val *k, const MDB_val *v, void *arg)
{
	struct digest_ctx *d = arg;
	uint8_t n[4];

	if (d->db == DB_META && digest_skip(k))
		return WALK_NEXT;
	be32_put(n, (uint32_t)k->mv_size);
	crypto_generichash_update(&d->st, n, 4);
	crypto_generichash_update(&d->st, k->mv_data, k->mv_size);
	be32_put(n, (uint32_t)v->mv_size);
	crypto_generichash_update(&d->st, n, 4);
	crypto_generichash_update(&d->st, v->mv_data, v->mv_size);
	return WALK_NEXT;
}

struct digest_arg {
	uint8_t		*out;
	uint64_t	*seq;
};

static enum store_rc
digest_txn(struct store_txn *t, void *arg)
{
	struct digest_arg *a = arg;
	struct digest_ctx d;
	uint8_t head[JOURNAL_HASH_LEN];
	uint64_t epoch;
	enum store_rc rc;

	if ((rc = jmeta_get(t, a->seq, head, &epoch)) != STORE_OK)
		return rc;
	crypto_generichash_init(&d.st, NULL, 0, STORE_HASH_LEN);
	for (d.db = 0; d.db < DB_COUNT; d.db++) {
		if ((d.db == DB_OPEN_REQS && !t->s->req_index) ||
		    (d.db == DB_BAD_KEYS && !t->s->key_index))
			continue;
		crypto_generichash_update(&d.st,
		    (const uint8_t *)db_names[d.db],
		    strlen(db_names[d.db]) + 1);
		if ((rc = db_walk(t, d.db, NULL, 0, digest_one, &d)) !=
		    STORE_OK)
			return rc;
	}
	crypto_generichash_final(&d.st, a->out, STORE_HASH_LEN);
	return STORE_OK;
}

enum store_rc
store_digest(struct store *s, uint8_t out[STORE_HASH_LEN], uint64_t *out_seq)
{
	struct digest_arg a = { out, out_seq };

	return store_read(s, digest_txn, &a);
}

/* Removes a restore's scratch directory (only the files a store has). */
static void
scratch_remove(const char *dir)
{
	static const char *const files[] = { "data.mdb", "lock.mdb",
	    "micad.lock" };
	char path[PATH_MAX];
	size_t i;

	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		if (snprintf(path, sizeof(path), "%s/%s", dir, files[i]) <
		    (int)sizeof(path))
			unlink(path);
	}
	rmdir(dir);
}

/* Copies the backup into dir/data.mdb and fsyncs it. */
static int
copy_backup(const char *backup, const char *dir, char *err, size_t err_len)
{
	char path[PATH_MAX], buf[65536];
	ssize_t n, w;
	size_t off;
	int in = -1, out = -1, rc = 0;

	if (snprintf(path, sizeof(path), "%s/data.mdb", dir) >=
	    (int)sizeof(path)) {
		snprintf(err, err_len, "%s: path too long", dir);
		goto out;
	}
	if ((in = open(backup, O_RDONLY | O_CLOEXEC)) == -1) {
		snprintf(err, err_len, "%s: %s", backup, strerror(errno));
		goto out;
	}
	out = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (out == -1) {
		snprintf(err, err_len, "%s: %s", path, strerror(errno));
		goto out;
	}
	while ((n = read(in, buf, sizeof(buf))) != 0) {
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			snprintf(err, err_len, "%s: %s", backup,
			    strerror(errno));
			goto out;
		}
		for (off = 0; off < (size_t)n; off += (size_t)w) {
			if ((w = write(out, buf + off, (size_t)n - off)) <=
			    0) {
				snprintf(err, err_len, "%s: %s", path,
				    strerror(errno));
				goto out;
			}
		}
	}
	if (fsync(out) == -1) {
		snprintf(err, err_len, "%s: fsync: %s", path, strerror(errno));
		goto out;
	}
	rc = 1;
out:
	if (in != -1)
		close(in);
	if (out != -1)
		close(out);
	return rc;
}

static enum store_rc
epoch_txn(struct store_txn *t, void *arg)
{
	struct store *s = t->s;

	return jmeta_put(t, s->j_seq, s->j_head, *(uint64_t *)arg);
}

/* Applies the journal to the scratch store st (see store_restore). */
static int
restore_apply(struct store *st, const struct store_restore_opts *o,
    struct store_restore_result *res, char *err, size_t err_len)
{
	struct journal_scan_opts so;
	struct journal_end end;
	struct rollfwd f;
	enum store_rc rc;

	if ((rc = store_read(st, jpos_txn, st)) != STORE_OK) {
		snprintf(err, err_len, "backup %s: %s", o->backup,
		    store_strerror(rc));
		return 0;
	}
	if (st->j_epoch == 0)
		st->j_epoch = 1;
	res->base_seq = st->j_seq;
	memset(&f, 0, sizeof(f));
	f.s = st;
	f.want = st->j_seq + 1;
	f.epoch = st->j_epoch;
	f.until_time_us = o->until_time_us;
	memset(&so, 0, sizeof(so));
	so.from = st->j_seq + 1;
	so.from_prev = st->j_head;
	so.until = o->until_seq;
	if (o->until_seq != 0 && o->until_seq < st->j_seq) {
		snprintf(err, err_len, "--until %" PRIu64 " is before the "
		    "backup's journal position %" PRIu64, o->until_seq,
		    st->j_seq);
		return 0;
	}
	if (!journal_scan(o->journal_dir, &so, rollfwd_cb, &f, &end, err,
	    err_len))
		return 0;
	if (f.failed) {
		snprintf(err, err_len, "%s", f.err);
		return 0;
	}
	if (end.last_seq < st->j_seq) {
		snprintf(err, err_len, "journal %s ends at seq %" PRIu64
		    ", before the backup's position %" PRIu64 ": not this "
		    "store's journal", o->journal_dir, end.last_seq,
		    st->j_seq);
		return 0;
	}
	if (end.last_seq == st->j_seq && end.last_seq != 0 &&
	    memcmp(end.last_hash, st->j_head, JOURNAL_HASH_LEN) != 0) {
		snprintf(err, err_len, "journal %s: record seq %" PRIu64
		    " is not the backup's last record (hash differs): "
		    "another history", o->journal_dir, end.last_seq);
		return 0;
	}
	if (o->until_seq != 0 && st->j_seq < o->until_seq) {
		snprintf(err, err_len, "journal %s ends at seq %" PRIu64
		    ", before --until %" PRIu64, o->journal_dir, st->j_seq,
		    o->until_seq);
		return 0;
	}
	res->applied = f.applied;
	res->last_seq = st->j_seq;
	res->journal_end = end.last_seq;
	res->epoch = st->j_epoch;
	/* A point in time: what may follow in the journal is another
	 * timeline now; the restored store's records get a new epoch. */
	if (o->until_seq != 0 || o->until_time_us != 0) {
		res->epoch = st->j_epoch + 1;
		if ((rc = store_write(st, epoch_txn, &res->epoch)) !=
		    STORE_OK) {
			snprintf(err, err_len, "new epoch: %s",
			    store_strerror(rc));
			return 0;
		}
	}
	if ((rc = store_digest(st, res->digest, &res->last_seq)) !=
	    STORE_OK) {
		snprintf(err, err_len, "digest: %s", store_strerror(rc));
		return 0;
	}
	return 1;
}

int
store_restore(const struct store_restore_opts *o,
    struct store_restore_result *res, char *err, size_t err_len)
{
	struct store_opts so;
	struct store *st = NULL;
	struct stat sb;
	char tmp[PATH_MAX], parent[PATH_MAX], *slash;
	enum store_rc rc;
	int ok = 0, made = 0;

	memset(res, 0, sizeof(*res));
	if (lstat(o->to, &sb) == 0 || errno != ENOENT) {
		snprintf(err, err_len, "%s: exists (restore makes a new "
		    "store directory)", o->to);
		goto out;
	}
	if (snprintf(tmp, sizeof(tmp), "%s.restore-XXXXXX", o->to) >=
	    (int)sizeof(tmp) || mkdtemp(tmp) == NULL) {
		snprintf(err, err_len, "%s: cannot make a scratch directory: "
		    "%s", o->to, strerror(errno));
		goto out;
	}
	made = 1;
	if (!copy_backup(o->backup, tmp, err, err_len))
		goto out;
	memset(&so, 0, sizeof(so));
	so.no_sync = 1;
	if ((rc = store_open(&st, tmp, &so)) != STORE_OK) {
		snprintf(err, err_len, "backup %s: %s", o->backup,
		    store_strerror(rc));
		goto out;
	}
	if (!restore_apply(st, o, res, err, err_len))
		goto out;
	store_close(st);	/* syncs (MDB_NOSYNC until here) */
	st = NULL;
	if (rename(tmp, o->to) == -1) {
		snprintf(err, err_len, "rename %s to %s: %s", tmp, o->to,
		    strerror(errno));
		goto out;
	}
	made = 0;
	snprintf(parent, sizeof(parent), "%s", o->to);
	if ((slash = strrchr(parent, '/')) != NULL) {
		int fd;

		*(slash == parent ? slash + 1 : slash) = '\0';
		if ((fd = open(parent, O_RDONLY | O_DIRECTORY)) != -1) {
			fsync(fd);
			close(fd);
		}
	}
	ok = 1;
out:
	store_close(st);
	if (made)
		scratch_remove(tmp);
	return ok;
}

/* ---- replication (ca/repl_*.c): position, wake-up, applying ---- */

static enum store_rc
genesis_txn(struct store_txn *t, void *arg)
{
	return journal_genesis(t, arg);
}

int
store_journal_genesis(struct store *s, uint8_t *out)
{
	return store_read(s, genesis_txn, out) == STORE_OK;
}

void
store_journal_pos(struct store *s, uint64_t *seq, uint8_t *head,
    uint64_t *epoch)
{
	pthread_mutex_lock(&s->j_mu);
	*seq = s->j_seq;
	if (head != NULL)
		memcpy(head, s->j_head, JOURNAL_HASH_LEN);
	if (epoch != NULL)
		*epoch = s->j_epoch;
	pthread_mutex_unlock(&s->j_mu);
}

uint64_t
store_journal_wait(struct store *s, uint64_t seq, int timeout_ms)
{
	struct timespec ts;
	uint64_t cur;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&s->j_mu);
	while (s->j_seq <= seq) {
		if (pthread_cond_timedwait(&s->j_cv, &s->j_mu, &ts) != 0)
			break;
	}
	cur = s->j_seq;
	pthread_mutex_unlock(&s->j_mu);
	return cur;
}

enum store_rc
store_journal_apply(struct store *s, const struct journal_rec *rec,
    const uint8_t *raw, size_t raw_len, char *err, size_t err_len)
{
	struct store_txn t;
	enum store_rc rc = STORE_IO;
	int attempt, mrc;

	pthread_mutex_lock(&s->w_mu);
	if (s->jnl == NULL) {
		snprintf(err, err_len, "the store has no journal ([store] "
		    "journal_dir): a standby needs one");
		rc = STORE_INVALID;
		goto out;
	}
	if (rec->seq != s->j_seq + 1 ||
	    memcmp(rec->prev, s->j_head, JOURNAL_HASH_LEN) != 0 ||
	    rec->epoch < s->j_epoch) {
		snprintf(err, err_len, "record seq %" PRIu64 " does not follow "
		    "the store's seq %" PRIu64 " (epoch %" PRIu64 ")",
		    rec->seq, s->j_seq, s->j_epoch);
		rc = STORE_INVALID;
		goto out;
	}
	for (attempt = 0; attempt < STORE_WRITE_TRIES; attempt++) {
		if ((rc = txn_begin(s, 1, &t)) != STORE_OK)
			break;
		rc = apply_rec(&t, rec, rec->epoch);
		if (rc == STORE_OK && !journal_append(s->jnl, rec->seq, raw,
		    raw_len))
			rc = STORE_IO;
		else if (rc == STORE_OK) {
			mrc = mdb_txn_commit(t.txn);
			t.txn = NULL;
			if ((rc = lmdb_rc(&t, mrc, "commit")) != STORE_OK)
				journal_undo(s->jnl, raw_len);
		}
		txn_end(&t);
		if (rc == STORE_OK || !t.map_full)
			break;
		if (!store_grow(s)) {
			rc = STORE_FULL;
			break;
		}
	}
	if (rc == STORE_OK) {
		pthread_mutex_lock(&s->j_mu);
		s->j_seq = rec->seq;
		memcpy(s->j_head, rec->hash, JOURNAL_HASH_LEN);
		s->j_epoch = rec->epoch;
		pthread_cond_broadcast(&s->j_cv);
		pthread_mutex_unlock(&s->j_mu);
	} else if (err[0] == '\0' || rc != STORE_INVALID)
		snprintf(err, err_len, "record seq %" PRIu64 ": cannot apply: "
		    "%s", rec->seq, store_strerror(rc));
out:
	pthread_mutex_unlock(&s->w_mu);
	return rc;
}

struct repl_epoch_ctx {
	uint64_t	seq;
	uint8_t		head[JOURNAL_HASH_LEN];
	uint64_t	epoch;
};

static enum store_rc
repl_epoch_txn(struct store_txn *t, void *arg)
{
	struct repl_epoch_ctx *e = arg;
	enum store_rc rc;
	MDB_val k, v;
	uint8_t b[8];
	int mrc;

	if ((rc = jmeta_put(t, e->seq, e->head, e->epoch)) != STORE_OK)
		return rc;
	/* not journalled: this store's own fact */
	k.mv_data = (void *)META_PROMOTED;
	k.mv_size = strlen(META_PROMOTED);
	be64_put(b, e->epoch);
	v.mv_data = b;
	v.mv_size = 8;
	if ((mrc = mdb_put(t->txn, t->s->dbi[DB_META], &k, &v, 0)) != 0)
		return lmdb_rc(t, mrc, "meta replica_promoted");
	return STORE_OK;
}

static enum store_rc
promoted_txn(struct store_txn *t, void *arg)
{
	return store_meta_get_u64(t, META_PROMOTED, arg);
}

enum store_rc
store_promoted_epoch(struct store *s, uint64_t *out)
{
	*out = 0;
	return store_read(s, promoted_txn, out);
}

enum store_rc
store_promote(struct store *s, uint64_t epoch)
{
	struct repl_epoch_ctx e;
	struct store_txn t;
	enum store_rc rc;
	int mrc;

	pthread_mutex_lock(&s->w_mu);
	e.seq = s->j_seq;
	memcpy(e.head, s->j_head, JOURNAL_HASH_LEN);
	e.epoch = epoch;
	if ((rc = txn_begin(s, 1, &t)) == STORE_OK) {
		if ((rc = repl_epoch_txn(&t, &e)) == STORE_OK) {
			mrc = mdb_txn_commit(t.txn);
			t.txn = NULL;
			rc = lmdb_rc(&t, mrc, "commit");
		}
		txn_end(&t);
	}
	if (rc == STORE_OK) {
		if (!s->no_sync)
			mdb_env_sync(s->env, 1);
		pthread_mutex_lock(&s->j_mu);
		s->j_epoch = epoch;
		pthread_mutex_unlock(&s->j_mu);
	}
	pthread_mutex_unlock(&s->w_mu);
	return rc;
}

void
store_set_standby(struct store *s, int on)
{
	pthread_mutex_lock(&s->w_mu);
	s->standby = on;
	pthread_mutex_unlock(&s->w_mu);
}
