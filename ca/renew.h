/*
 * renew.h - automatic renewal of micad's own certificates: the OCSP
 * signer (ocsp.crt + private/ocsp.key) and the TLS server certificate
 * (tls.crt + private/tls.key).
 *
 * A certificate is due when fewer than [ca] renew_before_days days remain
 * before notAfter, or, with the default renew_before_days = 0, fewer than
 * 30 days or a quarter of its lifetime, whichever is smaller.  Renewal
 * makes a new key of the same type and a certificate signed by the CA with
 * the same subject, the same extensions (EKU, ocsp-nocheck, SANs, ...)
 * except a new subjectKeyIdentifier, a fresh serial and the same lifetime
 * (clamped to the CA's notAfter).  It records the certificate in the store
 * first (account "(ca)", linked to the old one, audited "cert.renew"),
 * then writes the files atomically (temp file + rename, key first).
 *
 * A certificate outside its validity at the current time (notBefore in
 * the future after a clock jump back, or expired) is always due.  The CA
 * is never renewed here, and nothing is renewed while the CA certificate
 * itself is not valid at the current time (logged loudly).
 *
 * It happens at micad start, before the listeners, and while running
 * (renew_check, from the expiry timer, or renew_kick when the OCSP
 * responder finds its signer invalid): the OCSP responder takes the new
 * signer at its next signature and the TLS listener gives new connections
 * the new certificate, without a restart.
 */
#ifndef MICA_RENEW_H
#define MICA_RENEW_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

struct micad;
struct mica_conf;
struct privdrop;

/* 1 when cert is due for renewal at now (see above), also when it is
 * outside its validity. */
int	renew_is_due(X509 *cert, int64_t now, int renew_before_days);

/*
 * At start, after the store is open and d->signer loaded, before the
 * listeners: warns when the CA certificate expires within 90 days (or has
 * expired), then renews what is due.  When the OCSP signer was renewed,
 * d->signer is replaced by one using the new certificate.  New files are
 * chowned to pd's user when pd is active (pd may be NULL).  Returns 1
 * (*out_renewed = number of certificates renewed, may be NULL) or 0 with
 * err.
 */
int	renew_at_start(struct micad *d, const struct privdrop *pd,
	    int *out_renewed, char *err, size_t err_len);
/*
 * At start, before the keys are loaded: finishes a renewal that crashed
 * between writing and installing its files.  key.new + cert.new that
 * match each other (and the CA signed the certificate) are renamed into
 * place, key first; a lone cert.new that matches the installed key (the
 * crash came between the two renames) is renamed; anything else left
 * over is deleted.  Each case is logged.  Returns 1, or 0 with err when a
 * rename or unlink fails.
 */
int	renew_recover(const struct mica_conf *c, char *err, size_t err_len);
/*
 * 1 when renew_recover has work: a KEY.new or CERT.new of the OCSP
 * signer or the TLS server is there (only lstat; nothing is read).
 * micad then waits for the signer, which runs renew_recover, before it
 * reads those certificates itself.
 */
int	renew_interrupted(const struct mica_conf *c);
/*
 * While running (loop thread; from the expiry timer and renew_kick):
 * queues one renewal job on d->workers unless one runs (then it runs
 * once more afterwards).  The job renews what is due (a certificate
 * outside its validity always is) and swaps the OCSP signer into the
 * responder under its lock; the loop then reloads the TLS listener.
 * Failures are logged and retried at the next check.
 */
void	renew_check(struct micad *d);
/*
 * Sets up renew_kick on d->base and hooks it to the OCSP responder (a
 * signature due with a signer outside its validity kicks a renewal).
 * Call after the workers exist, before the HTTP threads start.  Returns
 * 1, or 0 on error.
 */
int	renew_start(struct micad *d);
/* Any thread, never blocks: makes the loop run renew_check soon. */
void	renew_kick(void *unused);
/* Called on the loop when renew_tls_names is done: ok with the new
 * certificate's serial (hex) as text, or not ok with the reason. */
typedef void (*renew_tls_done_fn)(void *arg, int ok, const char *text);
/*
 * Loop thread (mica-admin tls renew): issues a new TLS server
 * certificate with these SANs ("DNS:name", "IP:addr", checked by the
 * caller) instead of the current one's, on a worker, the same way as an
 * automatic renewal (new key, recorded and audited as cert.renew, files
 * replaced atomically), then reloads the listener: new connections get
 * it, open ones keep theirs.  done runs on the loop.  Returns 0 (done
 * will not run) when a renewal is already running or num is 0 or above
 * CA_SANS_MAX.
 */
int	renew_tls_names(struct micad *d, const char *const *sans, size_t num,
	    renew_tls_done_fn done, void *arg);
/* At exit, after the HTTP threads and the workers have stopped. */
void	renew_stop(void);

#endif
