/*
 * rsign.h - a signing key held by another process.
 *
 * micad's network process never holds the CA or OCSP private key: the
 * CRL builder and the OCSP responder hand the bytes to be signed to this
 * callback, which sends them to the signer process (ca/sign_client.h)
 * and returns its signature.  Header only: the modules that sign (crl/,
 * ocsp/) depend on this interface, not on ca/.
 */
#ifndef MICA_RSIGN_H
#define MICA_RSIGN_H

#include <stddef.h>
#include <stdint.h>

enum rsign_kind {
	RSIGN_CRL = 1,		/* tbs is a TBSCertList (CA key) */
	RSIGN_OCSP = 2,		/* tbs is an OCSP ResponseData (OCSP key) */
};

struct rsign {
	/*
	 * Signs tbs; writes at most sig_cap bytes to sig and their count
	 * to *out_sig_len.  Thread-safe.  Returns 1, or 0 (logged: the
	 * signer refused, or is gone).
	 */
	int	(*sign)(void *arg, enum rsign_kind kind, const uint8_t *tbs,
		    size_t tbs_len, uint8_t *sig, size_t sig_cap,
		    size_t *out_sig_len);
	void	*arg;
};

#endif
