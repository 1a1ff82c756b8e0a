/*
 * restore.h - restores that never go back.  At start micad compares the
 * store with the high-water mark (common/hwm.h) kept next to the keys:
 * a store whose CRL number or last revocation sequence is below the mark
 * is older than what micad already published (a restored backup), and
 * micad refuses it unless the operator passes --accept-restore.  Then the
 * revocations, holds and releases still listed in the last published CRLs
 * are applied again (signature checked with the CA certificate), the CRL
 * number and the revocation sequence continue above the mark, and what
 * was lost is logged and kept in the store's meta ("restore_*") for
 * `mica-admin status`.
 *
 * The last published full and delta CRL come from [crl] publish_dir
 * (full.crl, delta.crl) when set, else from copies micad keeps next to
 * the mark (restore_keep_crls: last-full.crl, last-delta.crl).
 */
#ifndef MICA_RESTORE_H
#define MICA_RESTORE_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

struct store;
struct store_txn;
struct hwm;
struct crl_service;

/* Meta keys (u64) an accepted restore writes; read by admin status. */
#define RESTORE_META_STORE_ID	"store_id"
#define RESTORE_META_TIME	"restore_time"		/* unix seconds */
#define RESTORE_META_LOST_FROM	"restore_lost_seq_from"	/* first lost seq */
#define RESTORE_META_LOST_TO	"restore_lost_seq_to"	/* last lost seq */
#define RESTORE_META_CRL_ABOVE	"restore_crl_above"	/* numbers continue
							 * above this */
#define RESTORE_META_REAPPLIED	"restore_reapplied"	/* changes applied
							 * again from CRLs */
#define RESTORE_META_UNKNOWN	"restore_unknown_serials" /* lost issuances */
#define RESTORE_META_NO_CRLS	"restore_no_crls"	/* 1: no CRL found */

/* Names of the copies kept next to the mark without a publish_dir. */
#define RESTORE_KEEP_FULL	"last-full.crl"
#define RESTORE_KEEP_DELTA	"last-delta.crl"

struct restore_opts {
	const char	*hwm_path;	/* [store] hwm_file */
	const char	*store_path;	/* for messages */
	X509		*ca_cert;	/* verifies the saved CRLs */
	const char	*crl_dir;	/* where full/delta CRLs are read */
	const char	*full_name;	/* e.g. "full.crl" or "last-full.crl" */
	const char	*delta_name;
	int		 accept;	/* --accept-restore */
	int		 check_only;	/* micad -n: read, report, write nothing */
};

/*
 * Loads (or, on a first start, creates) the high-water mark and compares
 * it with the store.  Returns 1 with *out_hwm set (owned by the caller,
 * hwm_free) when micad may start, 0 with a message in err when it must
 * refuse (mark corrupt, another store's mark, store older than the mark
 * without accept).  In check_only mode *out_hwm may be NULL, nothing is
 * written, and a store older than the mark is reported in err (0) unless
 * accept is set.
 */
int	restore_guard(struct hwm **out_hwm, struct store *,
	    const struct restore_opts *, char *err, size_t err_len);

/*
 * Keeps copies of the current full and delta CRL in dir (atomic files,
 * mode 0600, as restore_opts' full_name/delta_name), writing each only
 * when its number grew.  Cheap when nothing changed.  Any thread (one
 * mutex).  dir NULL: nothing.
 */
void	restore_keep_crls(struct crl_service *, const char *dir,
	    const char *full_name, const char *delta_name);

/*
 * The status line of an accepted restore ("" when none): e.g. "store
 * restored on 2026-12-02 11:52:07 UTC; lost revocation seq 14..113 (100
 * changes); CRL numbers continue above 57; 93 changes applied again from
 * the last published CRLs; 2 revoked serials unknown to the store (lost
 * issuances, see the audit trail)".  Read in txn.
 */
int	restore_status_line(struct store_txn *, char *out, size_t out_len);

#endif
