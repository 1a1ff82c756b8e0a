/*
 * sign_proc.h - micad's signer process: the only process that holds the
 * CA key and the OCSP signer key.
 *
 * micad forks it first thing (sign_client_start), before it opens the
 * store or binds a socket.  The signer recovers an interrupted renewal,
 * loads the certificates and both keys (ca_key_read), drops privileges
 * like micad, then answers requests on its end of the socketpair
 * (ca/sign_proto.h) one at a time, checking each against the policy
 * (ca/sign_policy.h) and its own records: an append-only log with one
 * line per signature and per refusal, DIR/signer.log, and the last CRL
 * number signed of each kind, DIR/signer.state (DIR: the directory of
 * the CA key file, or CONFDIR/private for a key in a token).  It exits
 * when the network process closes the socket or dies.
 */
#ifndef MICA_SIGN_PROC_H
#define MICA_SIGN_PROC_H

#include "ca/privdrop.h"
#include "conf/conf.h"

/*
 * Serves fd until EOF, and each of the num_ocsp ocsp_fds (OCSP requests
 * only, in batches, each channel on its own thread); exits the process
 * (0 on EOF, 1 on an error).  The channels: the blocking callers'
 * (at most SIGN_OCSP_CHANS), then one per HTTP thread.
 */
#define SIGN_OCSP_CHANS	4
void	sign_proc_main(int fd, const int *ocsp_fds, int num_ocsp,
	    const struct mica_conf *c, const struct privdrop *pd)
	    __attribute__((noreturn));

/*
 * Reads a passphrase file's first line into sodium_malloc'd memory with
 * read(2) (no stdio copy); refuses a file readable by group or others.
 * Returns NULL with err on failure; sodium_free the result.
 */
char	*sign_read_passphrase(const char *path, char *err, size_t err_len);

/* The directory of signer.log and signer.state for c (static buffer). */
const char *sign_proc_dir(const struct mica_conf *c);

#endif
