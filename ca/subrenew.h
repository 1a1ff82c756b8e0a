/*
 * subrenew.h - a subscriber renews its certificate before it expires
 * (RENEW, `mica renew`), without password, code or review: the client
 * proves possession of the current certificate's key by signing the
 * server's nonce (CHALLENGE), the certificate and the new CSR
 * (proto_renew_tbs).  Only a good, unexpired certificate of this CA that
 * is in the store can renew, within [policy] renew_window days of its
 * notAfter (renew = auto) or when an administrator allowed it
 * (mica-admin allow-renew; the only way with renew = manual); never with
 * renew = off.  ONE write transaction signs the new certificate (the old
 * one's subject and account), links old and new, revokes the old one as
 * superseded (unless renew_revoke_old = no: it is left to expire) and
 * audits; after the commit OCSP and the CRLs are updated.  Loop thread.
 * (ca/renew.h is micad renewing its own OCSP and TLS certificates.)
 */
#ifndef MICA_SUBRENEW_H
#define MICA_SUBRENEW_H

#include <stddef.h>
#include <stdint.h>

struct micad;
struct store_txn;

/*
 * The outcome on the loop: code 0 with the new certificate (der, valid
 * during the call), or a protocol error code (PROTO_E_BAD_REQUEST for a
 * refusal by rule, PROTO_E_INTERNAL) with err.
 */
typedef void (*subrenew_fn)(void *arg, uint16_t code, const char *err,
    const uint8_t *der, size_t der_len);

/*
 * Checks what needs no store (renew = off, the certificate parses and
 * was signed by this CA, the signature over proto_renew_tbs(nonce, cert,
 * csr) verifies with its key), then queues the transaction.  Returns 1:
 * fn(arg, ...) runs once on the loop later; or 0: refused at once,
 * *out_code and err say why, fn never runs.  cid is for the log.
 */
int	subrenew_start(struct micad *d, uint64_t cid, const uint8_t nonce[32],
	    const uint8_t *cert, size_t cert_len, const uint8_t *csr,
	    size_t csr_len, const uint8_t *sig, size_t sig_len,
	    subrenew_fn fn, void *arg, uint16_t *out_code, char *err,
	    size_t err_len);

/*
 * Inside a write transaction (mica-admin allow-renew SERIAL): the
 * certificate may renew until `until` (unix seconds) whatever the window,
 * and with renew = manual.  The permission is used up by the renewal.
 * Returns an enum store_rc.
 */
int	subrenew_allow_txn(struct store_txn *, const uint8_t serial[16],
	    int64_t until);

#endif
