/*
 * auth.h - SMTP AUTH (RFC 4954) with the SASL mechanisms PLAIN (RFC 4616)
 * and LOGIN: the exchange of challenges and responses, and the password
 * check against the directory.
 *
 * The exchange knows nothing of the connection: the server hands it the
 * initial response and each response line, and it answers with the next
 * step.  Credentials are wiped from memory when the exchange is freed.
 */
#ifndef TCP_SMTP_AUTH_H
#define TCP_SMTP_AUTH_H

#include <glib.h>
#include <imta/imta.h>

G_BEGIN_DECLS

/* The longest response line accepted (RFC 4954 section 4). */
#define SMTP_AUTH_LINE_MAX 12288

/* The mechanisms offered, for the EHLO keyword. */
#define SMTP_AUTH_MECHANISMS "PLAIN LOGIN"

typedef struct _SmtpAuth SmtpAuth;

typedef enum {
	SMTP_AUTH_CHALLENGE,   /* send "334 <challenge>" and wait for a line */
	SMTP_AUTH_CHECK,       /* user and password are complete: check them */
	SMTP_AUTH_REFUSE,      /* send the refusal and end the exchange */
} SmtpAuthStep;

typedef struct {
	SmtpAuthStep step;
	const char *challenge; /* CHALLENGE: base64 text (may be empty) */
	guint code;            /* REFUSE */
	const char *enhanced;
	const char *text;
} SmtpAuthResult;

/* Is `mechanism` (upper case) one we offer? */
gboolean smtp_auth_mechanism_known(const char *mechanism);

/* Start an exchange; `initial` is the initial response of the AUTH
 * command ("=" for an empty one) or NULL. */
SmtpAuth *smtp_auth_start(const char *mechanism, const char *initial, SmtpAuthResult *result);

/* The client's next response line ("*" cancels). */
void smtp_auth_step(SmtpAuth *auth, const char *line, gsize len, SmtpAuthResult *result);

/* After SMTP_AUTH_CHECK: the authentication identity. */
const char *smtp_auth_user(const SmtpAuth *auth);

void smtp_auth_free(SmtpAuth *auth);

/* The password check, for imta_conn_run(): takes the credentials out of
 * `auth` (which is freed). */
typedef struct {
	ImtaDirectory *directory;
	char *user;
	char *password;
	ImtaDirStatus status;
	char *error;           /* why, for the log; never the password */
} SmtpAuthCheck;

SmtpAuthCheck *smtp_auth_check_new(ImtaDirectory *directory, SmtpAuth *auth);
void smtp_auth_check_work(gpointer data);
void smtp_auth_check_free(SmtpAuthCheck *check);

G_END_DECLS

#endif /* TCP_SMTP_AUTH_H */
