/*
 * repl.h - a warm standby: the primary ships its change journal
 * (store/journal.h) to standbys over mutually authenticated TLS 1.3;
 * a standby checks every record (hash chain, seq, epoch), applies it to
 * its own store with its own journal, and serves OCSP and the primary's
 * CRLs.  See README "Running two machines".
 *
 * The stream: frames of u8 type, u32 length (big-endian), payload.
 *
 *	0x40 FOLLOW	standby -> primary: u64 from_seq, prev[32] (the hash
 *			of record from_seq - 1, zero before the first),
 *			u64 epoch (the standby's)
 *	0xa0 RECORD	primary -> standby: one framed journal record, as
 *			in the primary's segment files, sent only after its
 *			LMDB commit
 *	0xa1 HEARTBEAT	u64 head_seq, u64 time_us (primary's clock),
 *			u64 epoch
 *	0xa2 CRL	u8 kind (0 full, 1 delta), u64 number, DER bytes:
 *			the CRL the primary signed, served as is
 *	0xa3 ERROR	text: why the primary will not stream (diverged at
 *			seq N, pruned, newer epoch, not registered)
 *	0x41 EPOCH?	(empty) a restarted primary asks its [replica]
 *			peers before it takes writes
 *	0xa4 EPOCH	u64 epoch, u64 seq, u8 role (1 primary, 0
 *			standby): the answer
 */
#ifndef MICA_REPL_H
#define MICA_REPL_H

#include <stddef.h>
#include <stdint.h>

#include "common/bytes.h"
#include "store/journal.h"

#define REPL_FOLLOW		0x40
#define REPL_EPOCH_Q		0x41
#define REPL_EPOCH		0xa4
#define REPL_RECORD		0xa0
#define REPL_HEARTBEAT		0xa1
#define REPL_CRL		0xa2
#define REPL_ERROR		0xa3

#define REPL_FRAME_HDR		5
#define REPL_CRL_MAX		(32U * 1024 * 1024)
#define REPL_FRAME_MAX		(JOURNAL_HDR_LEN + JOURNAL_REC_MAX + \
				 JOURNAL_HASH_LEN)
#define REPL_TEXT_MAX		1024
#define REPL_NAME_MAX		64

struct repl_follow {
	uint64_t	from_seq;
	uint8_t		prev[JOURNAL_HASH_LEN];
	uint64_t	epoch;
};

struct repl_heartbeat {
	uint64_t	head_seq;
	uint64_t	time_us;
	uint64_t	epoch;
};

struct repl_crl {
	uint8_t		 kind;		/* 0 full, 1 delta */
	uint64_t	 number;
	const uint8_t	*der;		/* into the frame */
	size_t		 der_len;
};

/* ---- codec (repl_proto.c; every parser bounds-checked, fuzzed) ---- */

/* Appends a frame. */
void	repl_frame_put(struct wb *out, uint8_t type, const void *p,
	    size_t len);
/* A frame header: 1 with *type and *len, or 0 with why (unknown type, a
 * length over the type's limit). */
int	repl_frame_hdr(const uint8_t hdr[REPL_FRAME_HDR], uint8_t *type,
	    uint32_t *len, char *why, size_t why_len);
void	repl_follow_put(struct wb *out, const struct repl_follow *);
int	repl_follow_parse(const uint8_t *p, size_t len, struct repl_follow *);
void	repl_heartbeat_put(struct wb *out, const struct repl_heartbeat *);
int	repl_heartbeat_parse(const uint8_t *p, size_t len,
	    struct repl_heartbeat *);
void	repl_crl_put(struct wb *out, uint8_t kind, uint64_t number,
	    const uint8_t *der, size_t der_len);
int	repl_crl_parse(const uint8_t *p, size_t len, struct repl_crl *);
/* The seq of a (possibly bad) framed record, for error messages: 1 with
 * *seq when p is long enough to hold it. */
int	repl_record_seq(const uint8_t *p, size_t len, uint64_t *seq);
/* "replica:NAME" -> NAME (1), or 0 when cn is not a replica name. */
int	repl_cn_name(const char *cn, char *name, size_t name_len);

/* ---- micad (repl.c) ---- */

struct micad;
struct ocsp_http_req;

/* From the config: the role (a standby when [replica] primary is set),
 * and on a standby the store refuses every write but the primary's
 * records.  After open_store.  1, or 0 with err. */
int	repl_init(struct micad *, char *err, size_t err_len);
/* Before repl_init: 1 when [replica] primary makes this a standby (not
 * when the store was promoted and is still at that epoch). */
struct store;
struct mica_conf;
int	repl_configured_standby(struct store *, const struct mica_conf *);
/* Primary with [replica] listen: binds (as root, before the drop). */
int	repl_bind(struct micad *, char *err, size_t err_len);
/* Starts the threads (after the drop). */
int	repl_start(struct micad *);
/* Stops and joins them (before the store closes). */
void	repl_stop(void);
int	repl_is_standby(void);
/* A standby refuses writes: 1 with msg for an admin command or a CA
 * protocol request type that writes (the listener answers the latter
 * with ERROR 14, PROTO_E_STANDBY; msg names [replica] primary). */
int	repl_refuse_admin(const char *cmd, const char *sub, char *msg,
	    size_t msg_len);
int	repl_refuse_proto(int type, char *msg, size_t msg_len);
/* The replication lines of mica-admin status (text or JSON members
 * after others), and /metrics. */
void	repl_status(struct wb *out, int json);
void	repl_metrics(struct wb *out);
/*
 * mica-admin promote on a standby: refuses without a CA key; else stops
 * following, writes the next epoch durably (the store then starts as a
 * primary) and asks micad to stop; main then runs micad again
 * (repl_restart).  1 with msg, or 0 with msg.
 */
int	repl_promote(char *msg, size_t msg_len);
/* After shutdown: a promotion asked for a restart: execs argv (returns
 * only if that failed). */
void	repl_restart(char **argv);
/* On a standby: the number and nextUpdate (unix s) of the CRL of kind
 * (0 full, 1 delta) it serves, the one the primary signed last; 1, or 0
 * when it has none yet (or is not a standby). */
int	repl_crl_info(int kind, uint64_t *number, int64_t *next_update);
/* A standby serves the primary's CRLs: 1 when it answered req. */
int	repl_crl_http(struct ocsp_http_req *, const char *path);

#endif
