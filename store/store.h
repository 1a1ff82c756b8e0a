/*
 * store.h - mica's persistent state in one LMDB environment.
 *
 * The only module that calls mdb_*.  Every state change runs inside one
 * write transaction (store_write), so "sign the replacement, store it,
 * revoke the lost certificate, mark the request issued, append the audit
 * record" commits or fails as one.  A read transaction begun after a commit
 * returns sees it: that is what makes revocation instant for OCSP.
 *
 * Named databases (keys are fixed-width big-endian so LMDB order is useful):
 *   certs        serial[16]        -> cert record
 *   revocations  seq u64           -> status change event (drives CRLs)
 *   accounts     name              -> account record
 *   requests     id u64            -> reissue request record
 *   audit        seq u64           -> audit record, BLAKE2b hash chain
 *   meta         name              -> u64 counters, schema version, chain head;
 *                                     journal_seq, journal_head (32 bytes),
 *                                     journal_epoch: the last change-journal
 *                                     record the store holds (written with
 *                                     each journalled commit, not journalled
 *                                     themselves; see store/journal.h)
 *   open_requests lost serial[16]  -> u64 id of its pending/approved request
 *                                     (schema 2; kept by store_request_put)
 *   bad_keys     SPKI SHA-256[32]  -> the first certificate with that key
 *                                     revoked for keyCompromise or lost
 *                                     (schema 3; kept by
 *                                     store_cert_set_status and
 *                                     store_request_put)
 * Every record starts with a version byte.
 *
 * With a journal (store_opts.journal_dir), store_write and
 * store_write_batch record the puts and deletes of each transaction and
 * append them as one record, fsync'd, before the LMDB commit; store_open
 * applies records the store lacks (a crash between the two) and refuses a
 * journal behind the store or of another history.
 */
#ifndef MICA_STORE_H
#define MICA_STORE_H

#include <stddef.h>
#include <stdint.h>

#define STORE_SCHEMA_VERSION	4	/* 2: open_requests, 3: bad_keys,
					 * 4: TOTP secrets sealed (v2 accounts) */
#define STORE_SERIAL_LEN	16
#define STORE_NAME_MAX		64	/* account names, actors */
#define STORE_SUBJECT_MAX	1024	/* allowed subject DN text */
#define STORE_SANS_MAX		1024	/* an account's allowed SANs */
#define STORE_PWHASH_MAX	128	/* crypto_pwhash_STRBYTES */
#define STORE_TOTP_MAX		64	/* TOTP secret bytes */
#define STORE_TOTP_SEALED_MAX	(STORE_TOTP_MAX + 40)	/* + nonce, tag */
#define STORE_NOTE_MAX		512
#define STORE_HASH_LEN		32	/* BLAKE2b-256 */
#define STORE_KEYHASH_LEN	32	/* SHA-256 of an SPKI (keyhash.h) */

struct store;		/* the environment and its databases */
struct totpseal_key;	/* common/totpseal.h */
struct store_txn;	/* a read or write transaction */
struct store_reader;	/* a reusable read transaction for one thread */

enum store_rc {
	STORE_OK = 0,
	STORE_NOTFOUND,		/* no such key */
	STORE_EXISTS,		/* key already used (e.g. a serial) */
	STORE_FULL,		/* map full and growth not possible, or disk full */
	STORE_LOCKED,		/* another micad holds the store */
	STORE_VERSION,		/* schema newer than this program */
	STORE_CORRUPT,		/* a record failed to decode */
	STORE_INVALID,		/* the change is not allowed (e.g. unrevoke) */
	STORE_IO,		/* any other LMDB or system error (logged) */
	STORE_ABORT,		/* the caller's callback chose to abort */
};

/* Returns a static English description of rc. */
const char	*store_strerror(enum store_rc rc);

struct store_opts {
	uint64_t	map_size;	/* initial map size; 0 = 64 MiB */
	uint64_t	map_max;	/* growth ceiling; 0 = no ceiling */
	int		no_grow;	/* 1: MDB_MAP_FULL is STORE_FULL at once */
	int		create;		/* 1: create dir content if missing */
	int		exclusive;	/* 1: take DIR/micad.lock (flock); a second
					 * exclusive opener gets STORE_LOCKED */
	int		read_only;	/* 1: MDB_RDONLY (offline inspection) */
	/* Seals the TOTP secrets of a schema 1..3 store opened for writing
	 * (the upgrade to schema 4); such an open fails without it. */
	const struct totpseal_key *totp_key;
	/* 1: totp_key was just made (its file was missing).  A store whose
	 * accounts are sealed already is then refused (STORE_INVALID): they
	 * were sealed with another key, the one that went missing. */
	int		totp_key_new;
	/* The change journal (see store/journal.h and "Journal" below):
	 * NULL = off.  Every committed write transaction is appended there
	 * and fsync'd before the LMDB commit. */
	const char	*journal_dir;
	uint64_t	journal_segment_size;	/* 0 = 16 MiB */
	int		no_sync;	/* 1: MDB_NOSYNC (a restore's scratch
					 * store, synced once at the end) */
};

/*
 * Opens (or with opts->create, creates) the environment in dir (mode 0700
 * for a new directory).  Checks the schema version.  *out is freed with
 * store_close.
 */
enum store_rc	store_open(struct store **out, const char *dir,
		    const struct store_opts *opts);
/* Closes the environment; NULL is allowed.  No transaction may be open. */
void		store_close(struct store *);
/*
 * micad -n: what the start would find in the journal directory dir, on a
 * store opened read-only: it exists (or can be made) and is writable, its
 * records chain, and it is not behind the store nor of another history
 * (the checks of the start, nothing applied).  1 with a line for the log
 * in info, or 0 with err.
 */
int		store_journal_check(struct store *, const char *dir,
		    char *info, size_t info_len, char *err, size_t err_len);

/*
 * Write transactions.  fn runs inside a fresh write transaction; if it
 * returns STORE_OK the transaction is committed (durably, fsync'd) and
 * store_write returns the commit's result.  Any other return aborts and is
 * passed back.  On MDB_MAP_FULL (inside fn or at commit) the transaction is
 * aborted, the map grown, and fn run again (a bounded number of times), so
 * fn must have no effect outside the transaction.
 */
typedef enum store_rc (*store_txn_fn)(struct store_txn *, void *arg);
enum store_rc	store_write(struct store *, store_txn_fn fn, void *arg);

/*
 * Group commit: runs n jobs, each in its own nested transaction of one
 * write transaction, and commits them with one fsync of the journal and
 * one of the store.  A job whose fn fails is rolled back alone (its rc
 * says why); the others commit.  jobs[i].rc is fn's result or, for the
 * jobs whose fn succeeded, the commit's.  Returns STORE_OK when the
 * commit succeeded (or nothing was to commit), else the commit's error.
 * fn may run more than once (map growth), as with store_write.
 */
struct store_job {
	store_txn_fn	 fn;
	void		*arg;
	enum store_rc	 rc;
};
enum store_rc	store_write_batch(struct store *, struct store_job *jobs,
		    size_t n);
/* Runs fn inside a fresh read transaction. */
enum store_rc	store_read(struct store *, store_txn_fn fn, void *arg);

/* A reader owned by one thread at a time (MDB_NOTLS, reset/renew). */
struct store_reader	*store_reader_new(struct store *);
void			 store_reader_free(struct store_reader *);
/* Renews the reader's transaction; NULL on error.  Pair with _end. */
struct store_txn	*store_reader_begin(struct store_reader *);
void			 store_reader_end(struct store_reader *);

/* ---- certificates ---- */

enum cert_status {
	CERT_GOOD = 0,
	CERT_HOLD = 1,
	CERT_REVOKED = 2,
};

/* RFC 5280 section 5.3.1 CRLReason values. */
enum crl_reason {
	REASON_UNSPECIFIED = 0,
	REASON_KEY_COMPROMISE = 1,
	REASON_CA_COMPROMISE = 2,
	REASON_AFFILIATION_CHANGED = 3,
	REASON_SUPERSEDED = 4,
	REASON_CESSATION = 5,
	REASON_CERTIFICATE_HOLD = 6,
	REASON_REMOVE_FROM_CRL = 8,
	REASON_PRIVILEGE_WITHDRAWN = 9,
	REASON_AA_COMPROMISE = 10,
};

/* The fixed-width part of a cert record: all that OCSP and CRLs need. */
struct cert_state {
	uint8_t		status;		/* enum cert_status */
	uint8_t		reason;		/* enum crl_reason, when not GOOD */
	int64_t		not_before;	/* unix seconds */
	int64_t		not_after;
	int64_t		revoked_at;	/* revocation or hold time, 0 if GOOD */
	int64_t		invalidity;	/* invalidity date, 0 if none */
	uint64_t	change_seq;	/* revocations seq of the last status
					 * change, 0 if never changed */
};

struct cert_rec {
	uint8_t			serial[STORE_SERIAL_LEN];
	struct cert_state	st;
	int64_t			issued_at;
	char			account[STORE_NAME_MAX + 1];
	uint8_t			replaces[STORE_SERIAL_LEN];	/* zero = none */
	uint8_t			replaced_by[STORE_SERIAL_LEN];	/* zero = none */
	uint8_t			*der;		/* certificate DER */
	size_t			 der_len;
};

/* Frees der (when owned: after store_cert_get) and zeroes the record. */
void		cert_rec_cleanup(struct cert_rec *);
/* 1 if the 16 bytes are all zero ("no serial"). */
int		serial_is_zero(const uint8_t serial[STORE_SERIAL_LEN]);

/* Copies the record, including a malloc'd copy of the DER. */
enum store_rc	store_cert_get(struct store_txn *,
		    const uint8_t serial[STORE_SERIAL_LEN], struct cert_rec *out);
/* Reads only the fixed part; no allocation (the OCSP hot path). */
enum store_rc	store_cert_state(struct store_txn *,
		    const uint8_t serial[STORE_SERIAL_LEN], struct cert_state *out);
/* Inserts a new certificate; STORE_EXISTS if the serial was ever used. */
enum store_rc	store_cert_add(struct store_txn *, const struct cert_rec *);
/*
 * Changes a certificate's status and appends a revocations event with the
 * next sequence number (returned in *out_seq if not NULL).  Allowed:
 * GOOD->HOLD, GOOD->REVOKED, HOLD->REVOKED, HOLD->GOOD (release; the event
 * has status GOOD and becomes removeFromCRL in a delta CRL).  Anything else
 * (revoked is final, hold of a held cert, ...) is STORE_INVALID.  For HOLD
 * the reason is stored as REASON_CERTIFICATE_HOLD whatever is passed.
 * REVOKED->REVOKED is allowed only to raise another reason to
 * keyCompromise: the first revocation time stays (it is the event's
 * time too), a non-zero invalidity replaces the old one.  Every
 * revocation for keyCompromise (raise included) puts the certificate's
 * key into bad_keys in the same transaction.
 */
enum store_rc	store_cert_set_status(struct store_txn *,
		    const uint8_t serial[STORE_SERIAL_LEN], uint8_t status,
		    uint8_t reason, int64_t when, int64_t invalidity,
		    uint64_t *out_seq);
/* Records old.replaced_by = new and new.replaces = old. */
enum store_rc	store_cert_link(struct store_txn *,
		    const uint8_t old_serial[STORE_SERIAL_LEN],
		    const uint8_t new_serial[STORE_SERIAL_LEN]);
/*
 * Calls cb for every certificate in serial order.  The record (and its der,
 * which points into the map) is valid only during the call.  cb returns 1
 * to go on, 0 to stop.
 */
typedef int (*store_cert_cb)(const struct cert_rec *, void *arg);
enum store_rc	store_cert_iter(struct store_txn *, store_cert_cb, void *arg);

/* ---- revocation events ---- */

struct rev_event {
	uint64_t	seq;
	uint8_t		serial[STORE_SERIAL_LEN];
	uint8_t		status;		/* new status: HOLD, REVOKED or GOOD */
	uint8_t		reason;
	int64_t		when;
	int64_t		invalidity;
};

/* Calls cb for every event with seq >= from_seq, in order. */
typedef int (*store_rev_cb)(const struct rev_event *, void *arg);
enum store_rc	store_rev_iter(struct store_txn *, uint64_t from_seq,
		    store_rev_cb, void *arg);
/*
 * The highest revocation sequence number so far (0 if none), or the meta
 * counter "rev_seq_floor" if that is higher: an accepted restore sets it
 * to the high-water mark's rev_seq so lost sequence numbers are not
 * reused (the next event gets the returned value + 1).
 */
enum store_rc	store_rev_last(struct store_txn *, uint64_t *out_seq);

/* ---- compromised and lost keys (bad_keys) ---- */

enum bad_key_why {
	BADKEY_COMPROMISE = 1,	/* a certificate revoked for keyCompromise */
	BADKEY_LOST = 2,	/* a reissue's lost certificate */
};

struct bad_key {
	uint8_t		serial[STORE_SERIAL_LEN];	/* first cert seen */
	uint8_t		why;				/* enum bad_key_why */
	int64_t		when;
};

/*
 * Looks a key up by its hash (keyhash_pkey): STORE_OK with *out when
 * every later issuance with it must be refused, STORE_NOTFOUND when not
 * (also in a schema 1/2 store opened read-only, which has no index).
 */
enum store_rc	store_bad_key_get(struct store_txn *,
		    const uint8_t hash[STORE_KEYHASH_LEN], struct bad_key *out);
/*
 * Verifies bad_keys: the key of every certificate revoked for
 * keyCompromise and of every issued request's lost certificate is in it,
 * and every entry names a certificate with that key and that fate.
 * STORE_OK, STORE_CORRUPT with why (the first difference), STORE_NOTFOUND
 * without an index.  *out_entries = entries seen.
 */
enum store_rc	store_bad_key_check(struct store_txn *,
		    uint64_t *out_entries, char *why, size_t why_len);

/* ---- accounts ---- */

#define STORE_ACCT_DISABLED	0x01	/* account_rec.flags */
#define STORE_ACCT_FLAGS	STORE_ACCT_DISABLED	/* all known flags */

/*
 * Record version 2 (schema 4): the TOTP secret is sealed with the TOTP
 * key (common/totpseal.h, the account name as associated data); the store
 * never sees it in clear.  A version 1 record (clear secret) is read only
 * from a schema 1..3 store opened read-only: totp_clear is then 1 and
 * totp_sealed holds the clear secret; such a record is never written.
 */
struct account_rec {
	char		name[STORE_NAME_MAX + 1];
	char		pwhash[STORE_PWHASH_MAX + 1];	/* argon2id string */
	uint8_t		totp_sealed[STORE_TOTP_SEALED_MAX];
	size_t		totp_sealed_len;
	int		totp_clear;	/* 1: version 1 record (see above) */
	uint32_t	failed;		/* consecutive failed logins */
	int64_t		locked_until;	/* 0 = not locked */
	uint64_t	last_totp_step;	/* replay guard */
	int64_t		created;
	char		subject[STORE_SUBJECT_MAX + 1];	/* allowed subject */
	uint8_t		flags;		/* STORE_ACCT_* */
	int64_t		pw_changed;	/* password set; version 1: created */
	uint8_t		enrol_hash[STORE_HASH_LEN];	/* BLAKE2b-256 of the
							 * enrolment code */
	int64_t		enrol_expires;	/* 0 = no enrolment code */
	/* SANs a CSR of this account may carry ("DNS:a,IP:b,email:c");
	 * "" = none listed.  Record version 3 (records.c). */
	char		sans[STORE_SANS_MAX + 1];
};

/* Wipes the secrets (sodium_memzero) and the rest of the record. */
void		account_rec_wipe(struct account_rec *);
enum store_rc	store_account_get(struct store_txn *, const char *name,
		    struct account_rec *out);
/* create_only: STORE_EXISTS if the name is taken; else insert or replace. */
enum store_rc	store_account_put(struct store_txn *,
		    const struct account_rec *, int create_only);
/* Deletes the account record (certificates and audit records stay);
 * STORE_NOTFOUND if there is none. */
enum store_rc	store_account_del(struct store_txn *, const char *name);
/*
 * A removed account's name stays taken: its certificates still carry it,
 * and a new account of that name could list, reissue and revoke them.
 * _set records the removal time (meta "account_removed:NAME"); _get
 * gives it, or STORE_NOTFOUND for a name never removed.
 */
enum store_rc	store_account_removed_set(struct store_txn *,
		    const char *name, uint64_t when);
enum store_rc	store_account_removed_get(struct store_txn *,
		    const char *name, uint64_t *when);
typedef int (*store_account_cb)(const struct account_rec *, void *arg);
enum store_rc	store_account_iter(struct store_txn *, store_account_cb,
		    void *arg);

/* ---- reissue requests ---- */

enum req_state {
	REQ_PENDING = 0,
	REQ_APPROVED = 1,	/* transient: approved, not yet signed */
	REQ_REJECTED = 2,
	REQ_ISSUED = 3,
};

enum req_reason {
	REQREASON_LOST = 0,
	REQREASON_COMPROMISED = 1,
	REQREASON_DAMAGED = 2,
};

struct request_rec {
	uint64_t	id;
	uint8_t		state;			/* enum req_state */
	uint8_t		reason;			/* enum req_reason */
	uint8_t		held;			/* lost cert was put on hold */
	char		account[STORE_NAME_MAX + 1];
	uint8_t		lost_serial[STORE_SERIAL_LEN];
	uint8_t		new_serial[STORE_SERIAL_LEN];	/* zero until issued */
	uint8_t		token_hash[STORE_HASH_LEN];	/* of retrieval token */
	int64_t		created;
	int64_t		decided;
	char		decided_by[STORE_NAME_MAX + 1];
	char		note[STORE_NOTE_MAX + 1];	/* subscriber's note */
	char		why[STORE_NOTE_MAX + 1];	/* rejection reason */
	uint8_t		*csr;			/* CSR DER */
	size_t		 csr_len;
};

void		request_rec_cleanup(struct request_rec *);
/* Takes the next request id (a meta counter, starting at 1). */
enum store_rc	store_request_next_id(struct store_txn *, uint64_t *out_id);
enum store_rc	store_request_get(struct store_txn *, uint64_t id,
		    struct request_rec *out);
/*
 * Inserts or replaces q (q->id != 0) and, in the same transaction, keeps
 * the open_requests index: an open (pending or approved) request is
 * indexed under its lost serial, a closed one is not.  STORE_EXISTS if q
 * is open and another request for the same serial is open.  An issued
 * request also puts its lost certificate's key into bad_keys.
 */
enum store_rc	store_request_put(struct store_txn *,
		    const struct request_rec *);
/*
 * The id of the open request for a lost serial: STORE_OK and *out_id, or
 * STORE_NOTFOUND.  One index lookup (a walk only in a schema 1 store
 * opened read-only, which has no index).
 */
enum store_rc	store_request_open_find(struct store_txn *,
		    const uint8_t serial[STORE_SERIAL_LEN], uint64_t *out_id);
/*
 * Verifies the index against the requests (one walk of each): STORE_OK if
 * it lists exactly the open requests, STORE_CORRUPT with why set to the
 * first difference, STORE_NOTFOUND if the store has no index (schema 1
 * opened read-only; why says so).  *out_open = open requests seen.
 */
enum store_rc	store_request_index_check(struct store_txn *,
		    uint64_t *out_open, char *why, size_t why_len);
/* Records are valid only during cb; 1 = go on, 0 = stop. */
typedef int (*store_request_cb)(const struct request_rec *, void *arg);
enum store_rc	store_request_iter(struct store_txn *, store_request_cb,
		    void *arg);

/* ---- audit chain ---- */

struct audit_rec {
	uint64_t	seq;
	int64_t		when;
	char		actor[STORE_NAME_MAX + 1];
	char		action[64];
	char		subject[256];
	char		details[STORE_NOTE_MAX + 1];
	uint8_t		prev[STORE_HASH_LEN];
	uint8_t		hash[STORE_HASH_LEN];
};

/*
 * Appends a record (time = now) whose hash is BLAKE2b-256 over the previous
 * hash and the record's fields; moves the chain head kept in meta.  Strings
 * longer than the fields are truncated.
 */
enum store_rc	store_audit_append(struct store_txn *, const char *actor,
		    const char *action, const char *subject,
		    const char *details, uint64_t *out_seq);
typedef int (*store_audit_cb)(const struct audit_rec *, void *arg);
enum store_rc	store_audit_iter(struct store_txn *, uint64_t from_seq,
		    store_audit_cb, void *arg);
/*
 * Walks the chain from 1 to the head: seq gaps, a prev that is not the
 * previous hash, a hash that does not match the content, or a head that
 * does not match the last record make it fail.  *out_count = records
 * checked; on failure *out_bad_seq and why describe the first problem.
 * Returns STORE_OK or STORE_CORRUPT.
 */
enum store_rc	store_audit_verify(struct store_txn *, uint64_t *out_count,
		    uint64_t *out_bad_seq, char *why, size_t why_len);

/* ---- meta counters ---- */

/* A missing key reads as 0 with STORE_OK. */
enum store_rc	store_meta_get_u64(struct store_txn *, const char *key,
		    uint64_t *out);
enum store_rc	store_meta_set_u64(struct store_txn *, const char *key,
		    uint64_t v);

/* ---- whole-store operations ---- */

struct store_info {
	uint64_t	map_size;
	uint64_t	used_bytes;	/* pages in use * page size */
	uint64_t	num_certs;
	uint64_t	num_good, num_hold, num_revoked;
	uint64_t	num_accounts;
	uint64_t	num_requests, num_pending;
	uint64_t	num_audit;
	uint64_t	num_rev_events;
};

/* Fills info (counts by status walk the certs: O(n)). */
enum store_rc	store_info(struct store *, struct store_info *info);
/*
 * The same, giving up (STORE_ABORT) soon after *stop becomes non-zero
 * (micad's stop does not wait for a walk of 10^6 certificates).
 */
enum store_rc	store_info_until(struct store *, struct store_info *info,
		    const _Atomic int *stop);
/*
 * Writes a consistent, compacted copy of the environment (a data.mdb file)
 * to fd while others keep reading and writing.
 */
enum store_rc	store_backup_fd(struct store *, int fd);

/* ---- journal (store/journal.h has the record format) ---- */

struct store_journal_info {
	int		enabled;
	char		dir[1024];
	uint64_t	seq;		/* last record the store contains */
	uint64_t	epoch;
	uint8_t		head[STORE_HASH_LEN];
	uint64_t	num_segments;	/* 0 when off */
	uint64_t	bytes;
};

/* The store's journal position (from meta; also in a backup). */
enum store_rc	store_journal_info(struct store *,
		    struct store_journal_info *out);
/*
 * BLAKE2b-256 over every record of every database in key order (meta's
 * journal_epoch left out: a restore that stops early starts a new
 * epoch; and replica_promoted: a promoted store's own fact, not
 * journalled, see store_promote), and the journal seq the store is at.  Two stores with the same
 * digest hold the same records.
 */
enum store_rc	store_digest(struct store *, uint8_t out[STORE_HASH_LEN],
		    uint64_t *out_seq);

struct store_restore_opts {
	const char	*backup;	/* a data.mdb from mica-admin backup */
	const char	*journal_dir;
	const char	*to;		/* the new store directory (must not
					 * exist) */
	uint64_t	 until_seq;	/* 0: no limit */
	uint64_t	 until_time_us;	/* 0: no limit; records later than it
					 * are not applied */
};

struct store_restore_result {
	uint64_t	base_seq;	/* the backup's journal position */
	uint64_t	last_seq;	/* the restored store's */
	uint64_t	applied;
	uint64_t	journal_end;	/* the journal's last seq */
	uint64_t	epoch;		/* the restored store's epoch */
	uint8_t		digest[STORE_HASH_LEN];
};

/*
 * Point-in-time restore: copies backup into a temporary directory next
 * to o->to, applies the journal records after the backup's position (to
 * o->until_seq / o->until_time_us or the end), checks the hash chain
 * from the backup's head on, and only then renames the directory to
 * o->to.  A truncated, reordered or altered record stops it with err
 * naming the segment file and the record's seq, and nothing is left.
 * Stopping before the journal's end starts a new epoch.  Returns 1 or 0.
 */
int		store_restore(const struct store_restore_opts *,
		    struct store_restore_result *out, char *err,
		    size_t err_len);

/* ---- replication (ca/repl_*.c) ---- */

struct journal_rec;
/* The store's journal position now (head: 32 bytes, may be NULL). */
void		store_journal_pos(struct store *, uint64_t *seq,
		    uint8_t *head, uint64_t *epoch);
/* What the journal's first record chains to (32 bytes: a hash of the
 * store's id, zero for a store made before ids).  1, or 0 on an error. */
int		store_journal_genesis(struct store *, uint8_t *out);
/* Waits until the store's journal seq passes seq (a commit) or
 * timeout_ms; returns the seq then.  Any thread. */
uint64_t	store_journal_wait(struct store *, uint64_t seq,
		    int timeout_ms);
/*
 * A standby: applies a record received from the primary (already parsed
 * and checked) in one transaction with the journal position, appending
 * raw (the framed record) to the store's own journal before the commit.
 * rec must be the next record (seq, prev, epoch not older).  STORE_OK, or
 * an error with err; nothing is half-applied.
 */
enum store_rc	store_journal_apply(struct store *, const struct journal_rec *,
		    const uint8_t *raw, size_t raw_len, char *err,
		    size_t err_len);
/* 1: store_write and store_write_batch refuse (a standby's store
 * changes only through store_journal_apply). */
void		store_set_standby(struct store *, int on);
/* Promotion: a new epoch, durably, for the next records, and the meta
 * "replica_promoted" (not journalled) = epoch. */
enum store_rc	store_promote(struct store *, uint64_t epoch);
/* That promotion's epoch, 0 if none. */
enum store_rc	store_promoted_epoch(struct store *, uint64_t *out);

#endif
