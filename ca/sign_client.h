/*
 * sign_client.h - micad's network-side end of the signer process.
 *
 * sign_client_start forks the signer (ca/sign_proc.h) over a socketpair
 * and waits for its HELLO answer, which fails when the keys do not load;
 * micad forks it with sign_client_spawn first thing and reads that
 * answer later (sign_client_ready), so the signer loads its keys while
 * micad opens the store and binds its sockets.
 * From then on any thread may ask for a signature: requests are written
 * under a lock and pipelined; the first waiting thread reads the replies
 * for everyone (leader/follower), hands each to the thread waiting for
 * that request id and passes the reading on once its own has come, so a
 * reply read by its own waiter costs no thread switch.  OCSP signatures
 * go over channels of their own, batched: a caller that finds a channel
 * free sends every OCSP request queued at that moment back to back and
 * hands each signature to its caller (docs/SIGNER.md).  A watchdog
 * thread notices the signer's death while nobody waits.  The network
 * process never holds a CA or OCSP private key: certificates are built
 * here and signed there, CRLs and OCSP responses are signed there
 * through struct rsign.
 *
 * When the signer goes away (EOF), every waiting and later request fails
 * and the lost callback runs once (micad stops, exit status 1).
 */
#ifndef MICA_SIGN_CLIENT_H
#define MICA_SIGN_CLIENT_H

#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "ca/privdrop.h"
#include "common/rsign.h"
#include "conf/conf.h"

struct sign_client;

/*
 * Forks the signer for c (it drops to pd's user after loading the keys).
 * Call before any other thread runs.  Returns the client, or NULL with
 * the signer's reason in err.  info gets where the keys live.
 */
struct sign_client *sign_client_start(const struct mica_conf *c,
	    const struct privdrop *pd, char *info, size_t info_len, char *err,
	    size_t err_len);
/*
 * sign_client_start in two halves.  spawn forks and asks for the HELLO
 * answer without waiting (call before any other thread runs; NULL with
 * err set when it cannot fork).  ready waits for that answer once (later
 * calls return the same): 1 with info, or 0 with the signer's reason in
 * err (the signer has exited; free the client).  sign_client_call waits
 * for it first.  Thread-safe.
 */
struct sign_client *sign_client_spawn(const struct mica_conf *c,
	    const struct privdrop *pd, char *err, size_t err_len);
int	sign_client_ready(struct sign_client *, char *info, size_t info_len,
	    char *err, size_t err_len);
/* Closes the socket (the signer exits), joins, reaps.  NULL allowed. */
void	sign_client_free(struct sign_client *);
/* Runs fn(arg) once (on the thread that noticed) if the signer goes
 * away. */
void	sign_client_on_lost(struct sign_client *, void (*fn)(void *),
	    void *arg);
pid_t	sign_client_pid(const struct sign_client *);

/*
 * One request, waiting for its reply: *out (malloc'd, caller frees) and
 * *out_len for SIGN_R_OK; 0 with the signer's reason in err otherwise.
 * Thread-safe.
 */
int	sign_client_call(struct sign_client *, uint16_t type,
	    const void *body, size_t body_len, uint8_t **out, size_t *out_len,
	    char *err, size_t err_len);

/* The struct rsign for the CRL service and the OCSP responder. */
const struct rsign *sign_client_rsign(struct sign_client *);
/*
 * ca_sign_cert_fn (ca/ca.h) with arg = the client: signs *x with a
 * stand-in key of the CA key's type (to set the signature algorithm),
 * sends it, checks the answer (same TBS fields, signature verifies under
 * the CA certificate) and replaces *x.
 */
int	sign_client_cert(void *arg, X509 **x, int ocsp_renewal, char *err,
	    size_t err_len);
/*
 * ca_sign_der_fn (ca/ca.h) with arg = the client: x's TBSCertificate
 * (its signature field set to the CA key's AlgorithmIdentifier, learnt
 * once from a stand-in) sent with a one-byte placeholder signature, no
 * stand-in signature per certificate; the answer is checked as DER
 * (the TBSCertificate and signatureAlgorithm sent, byte for byte, and a
 * signature that verifies under the CA certificate's key) and returned
 * as such (*out_der, free).  For an RSA-PSS CA key, sign_client_cert's
 * check and an encoding.
 */
int	sign_client_der(void *arg, X509 *x, uint8_t **out_der,
	    size_t *out_len, char *err, size_t err_len);
/*
 * A key of the same algorithm (and curve) as cert's public key, made
 * here for the encoders that need a private key to learn the signature
 * AlgorithmIdentifier; never used for a real signature.  Owned by the
 * client (valid until sign_client_free).
 */
EVP_PKEY *sign_client_standin(struct sign_client *, X509 *cert);
/* OCSP signer renewal: the new key's public part (EVP_PKEY_free). */
EVP_PKEY *sign_client_ocsp_newkey(struct sign_client *, char *err,
	    size_t err_len);
/* Installs the new OCSP key in the signer (after the store commit). */
int	sign_client_ocsp_commit(struct sign_client *, char *err,
	    size_t err_len);

#endif
