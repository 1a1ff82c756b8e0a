/*
 * rsign.h - a signing key held by another process.
 *
 * micad's network process never holds the CA or OCSP private key: the
 * CRL builder and the OCSP responder hand the bytes to be signed to this
 * callback, which sends them to the signer process (ca/sign_client.h)
 * and returns its signature.  The modules that sign (crl/, ocsp/) depend
 * on this interface, not on ca/.
 */
#ifndef MICA_RSIGN_H
#define MICA_RSIGN_H

#include <stddef.h>
#include <stdint.h>

enum rsign_kind {
	RSIGN_CRL = 1,		/* tbs is a TBSCertList (CA key) */
	RSIGN_OCSP = 2,		/* tbs is an OCSP ResponseData (OCSP key) */
};

/*
 * A channel for OCSP signatures used from one event loop without
 * blocking it (the HTTP threads): requests are queued; while a batch is
 * out at the signer, later ones wait and go together once its replies
 * are in.  Each request's done(cookie, sig, sig_len) is called exactly
 * once, from input, flush or abort (sig NULL: refused, the signer is
 * gone, or aborted; logged).  A done callback may submit again; it must
 * not call input, flush or abort.
 */
typedef void	(*rsign_done_fn)(void *cookie, const uint8_t *sig,
		    size_t sig_len);

struct rsign_chan;

struct rsign_chan_ops {
	/* The descriptor to watch for reading (input). */
	int	(*fd)(const struct rsign_chan *);
	/* Queues tbs (an OCSP ResponseData, kept by the caller until its
	 * done); 0 when the queue is full or the signer is gone. */
	int	(*submit)(struct rsign_chan *, const uint8_t *tbs,
		    size_t tbs_len, void *cookie);
	/* Sends the queued requests unless a batch is out. */
	void	(*flush)(struct rsign_chan *, rsign_done_fn);
	/* The descriptor is readable: takes the replies in.  Call flush
	 * after it (at the end of the loop's turn, so that requests read
	 * in the same turn go in the same batch). */
	void	(*input)(struct rsign_chan *, rsign_done_fn);
	/* Fails every request (no I/O), for a stop; later replies of a
	 * batch that was out are read and dropped. */
	void	(*abort)(struct rsign_chan *, rsign_done_fn);
};

struct rsign_chan {
	const struct rsign_chan_ops	*ops;
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
	/*
	 * The non-blocking channel number idx (0 ..), for the one thread
	 * that uses it, or NULL (none: use sign).  May be NULL.
	 */
	struct rsign_chan *(*chan)(void *arg, int idx);
};

/*
 * 1 if a signer's answer of sig_len bytes can be a signature for a
 * buffer of sig_cap bytes (not empty, not longer); else 0, logged as
 * who's ("ocsp", "signer").  The signer process is not trusted to
 * answer in bounds: every answer is checked with this before use.
 */
int	rsign_len_ok(const char *who, size_t sig_len, size_t sig_cap);

#endif
