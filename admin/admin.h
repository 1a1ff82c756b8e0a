/*
 * admin.h - the admin socket: a local unix stream socket (mode 0600, peer
 * uid checked with SO_PEERCRED) through which mica-admin drives micad.
 *
 * Wire format, one request and one reply per connection, both framed as a
 * 4-byte big-endian length followed by:
 *   request: u8 version (1), u16 argc, argc x (u16 len, bytes),
 *            u16 nattach, nattach x (u8 name len, name, u32 len, bytes)
 *   reply:   u8 version (1), u8 exit code (0 done, 1 failed, 2 usage),
 *            u32 len + stdout text, u32 len + stderr text,
 *            u16 nattach, attachments as above
 * Attachments carry file contents the client read (a CSR, a password) or
 * that it should write (an issued certificate).  `backup` passes the open
 * output file descriptor with SCM_RIGHTS.
 */
#ifndef MICA_ADMIN_H
#define MICA_ADMIN_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/types.h>

#include "common/bytes.h"
#include "store/store.h"

#define ADM_VERSION		1
#define ADM_MAX_REQUEST		(1u << 20)	/* 1 MiB */
#define ADM_MAX_REPLY		(1u << 30)
#define ADM_MAX_ARGS		64
#define ADM_MAX_ATTACH		4
#define ADM_ATTACH_NAME_MAX	31

struct micad;

struct adm_attach {
	char		 name[ADM_ATTACH_NAME_MAX + 1];
	uint8_t		*data;
	size_t		 len;
};

/* A decoded request or reply. */
struct adm_msg {
	int			 code;		/* reply: exit code */
	int			 argc;		/* request */
	char			*argv[ADM_MAX_ARGS + 1];
	struct wb		 out;		/* reply: stdout text */
	struct wb		 err;		/* reply: stderr text */
	struct adm_attach	 att[ADM_MAX_ATTACH];
	int			 num_att;
};

void	adm_msg_init(struct adm_msg *);
/* Frees everything; attachment data is wiped first (it may be secret). */
void	adm_msg_cleanup(struct adm_msg *);
/* Adds a copy of data as attachment name; 0 when full. */
int	adm_msg_attach(struct adm_msg *, const char *name, const void *data,
	    size_t len);
/* Borrowed pointer to the named attachment, or NULL. */
const struct adm_attach *adm_msg_get(const struct adm_msg *, const char *);

/* Encodes a request/reply frame (with its length prefix) into b. */
int	adm_request_encode(struct wb *b, const struct adm_msg *);
int	adm_reply_encode(struct wb *b, const struct adm_msg *);
/* Decodes a frame body (after the length prefix).  0 on malformed input,
 * with a message in err. */
int	adm_request_parse(struct adm_msg *out, const uint8_t *p, size_t len,
	    char *err, size_t err_len);
int	adm_reply_parse(struct adm_msg *out, const uint8_t *p, size_t len,
	    char *err, size_t err_len);

/*
 * Creates the socket at conf->admin.socket (refusing a directory writable
 * by group or others), mode 0600, and serves it on d->base.  Returns 1,
 * or 0 with the reason logged.
 */
int	adm_server_start(struct micad *d);
/* Closes the socket (and unlinks it) and every open admin connection. */
void	adm_server_stop(void);

/* RFC 5280 reason names used on the command line and in output. */
const char	*adm_reason_name(int reason);
/* Parses a reason name allowed for `revoke`; -1 if unknown. */
int		 adm_reason_parse(const char *name);

/* mica-admin replica add NAME --out DIR (offline; adm_replica.c). */
int	adm_replica_cmd(int argc, char **argv, const char *cpath);

/* The three certificates of replica add (OCSP signer, TLS server,
 * replication client) for the store. */
struct store_txn;
#define ADM_REPREC_CERTS	3
#define ADM_REPREC_CERT_MAX	65536	/* bytes of one certificate's DER */
struct adm_replica_rec {
	struct cert_rec	 rec[ADM_REPREC_CERTS];
	const char	*name;
	const char	*actor;		/* the audit's; NULL: "mica-admin" */
};
/* store_txn_fn: records them, an audit record each. */
enum store_rc	adm_replica_txn(struct store_txn *, void *arg);
/*
 * The admin command "replica record NAME" (argv replica, record, NAME;
 * attachments cert0, cert1, cert2, each once and nothing else): checks
 * NAME (a replica name), that each attachment is one whole DER
 * certificate issued by ca with the profile replica add gives it (EKU
 * OCSPSigning, serverAuth, clientAuth with the only CN replica:NAME) and
 * that the three differ, and fills out (status good, issued_at now, the
 * CA's own account; out->name = out_name, the checked NAME).  Returns 1;
 * or 0 with a message in err and nothing to free.  On success the DER
 * copies are freed with adm_reprec_cleanup.
 */
int	adm_reprec_parse(struct adm_replica_rec *out, char *out_name,
	    size_t name_len, const struct adm_msg *in, X509 *ca, time_t now,
	    char *err, size_t err_len);
void	adm_reprec_cleanup(struct adm_replica_rec *);

/* mica-admin: sends req (and pass_fd with SCM_RIGHTS when >= 0) to the
 * admin socket sock, prints micad's text, returns its exit code. */
int	adm_transact(const char *sock, struct adm_msg *req, int pass_fd,
	    struct adm_msg *rep);

#endif
