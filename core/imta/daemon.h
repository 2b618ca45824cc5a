/*
 * daemon.h - the process skeleton of the long-running programs (job
 * controller, dispatcher).
 *
 * imta_daemon_main() does what every daemon does, in this order, and calls
 * the program back at the points where it differs:
 *
 *   1. options: --config DIR (else $IMTA_CONFIG, else the installed
 *      directory), -f/--foreground, --help, plus the program's own;
 *   2. load the configuration (exit 78 when it is invalid);
 *   3. imta_daemon_prepare_dirs();
 *   4. without --foreground, detach: the starting process waits until the
 *      daemon reports that it is ready, then exits 0, or prints why the
 *      daemon failed and exits 1, so a start script learns the outcome;
 *   5. take the pid file IMTA_RUN/<pid_file> with an exclusive lock, or
 *      refuse to start when another instance holds it (exit 75);
 *   6. log to IMTA_LOG/<log_file> (reopened on SIGHUP, then reopen());
 *   7. bind(): open what needs the starting user's rights (sockets);
 *   8. switch to IMTA_USER (supplementary groups, group, user), refusing
 *      to go on as root when that user does not exist;
 *   9. start(): begin work on the default main context;
 *  10. run the main loop; SIGTERM and SIGINT call stop() (or quit at
 *      once when there is none); SIGPIPE is ignored;
 *  11. cleanup(), release the pid file, exit with the status given to
 *      imta_daemon_quit().
 */
#ifndef IMTA_DAEMON_H
#define IMTA_DAEMON_H

#include <glib.h>
#include <imta/config.h>

G_BEGIN_DECLS

#define IMTA_DAEMON_ERROR (imta_daemon_error_quark())
GQuark imta_daemon_error_quark(void);

typedef enum {
	IMTA_DAEMON_ERROR_RUNNING,   /* another instance holds the pid file */
	IMTA_DAEMON_ERROR_USER,      /* IMTA_USER missing or cannot be switched to */
	IMTA_DAEMON_ERROR_SYSTEM,    /* a system call failed */
} ImtaDaemonErrorCode;

/* Exit statuses of imta_daemon_main(). */
#define IMTA_DAEMON_EXIT_OK 0
#define IMTA_DAEMON_EXIT_FAILURE 1
#define IMTA_DAEMON_EXIT_USAGE 64
#define IMTA_DAEMON_EXIT_RUNNING 75
#define IMTA_DAEMON_EXIT_CONFIG 78

typedef struct _ImtaDaemon ImtaDaemon;

typedef struct {
	const char *program;       /* for messages and the log, e.g. "imta-job-controller" */
	const char *summary;       /* one paragraph for --help */
	const char *pid_file;      /* file name in IMTA_RUN */
	const char *log_file;      /* file name in IMTA_LOG */
	guint config_flags;        /* ImtaConfigLoadFlags for imta_config_load() */
	const GOptionEntry *options; /* the program's own options, or NULL */

	/* Before the privilege drop: open sockets and whatever else needs the
	 * starting user's rights.  May be NULL. */
	gboolean (*bind)(ImtaDaemon *daemon, GError **error);
	/* After it: start working (add sources to the main context). */
	gboolean (*start)(ImtaDaemon *daemon, GError **error);
	/* SIGTERM or SIGINT: begin an orderly stop, ending with
	 * imta_daemon_quit().  NULL: quit at once. */
	void (*stop)(ImtaDaemon *daemon);
	/* After the main loop: release what bind() and start() made.  May be
	 * NULL. */
	void (*cleanup)(ImtaDaemon *daemon);
	/* SIGHUP, after the daemon reopened its own logs: pass it on to the
	 * processes it runs, which reopen theirs.  May be NULL. */
	void (*reopen)(ImtaDaemon *daemon);
} ImtaDaemonSpec;

/* Run the program described by `spec`; returns the exit status. */
int imta_daemon_main(const ImtaDaemonSpec *spec, gpointer user_data, int argc, char **argv);

gpointer imta_daemon_user_data(const ImtaDaemon *daemon);
const ImtaConfig *imta_daemon_config(const ImtaDaemon *daemon);
gboolean imta_daemon_foreground(const ImtaDaemon *daemon);
/* A path in IMTA_RUN (`name` relative) or `name` itself when absolute;
 * caller frees. */
char *imta_daemon_run_path(const ImtaDaemon *daemon, const char *name);
/* Hand a file made before the privilege drop (a socket, a log) to
 * IMTA_USER, so the daemon can still remove or reopen it afterwards.
 * Does nothing unless running as root with IMTA_USER set. */
gboolean imta_daemon_give_to_user(const ImtaDaemon *daemon, const char *path, GError **error);
/* Create IMTA_RUN, IMTA_LOG, IMTA_QUEUE and IMTA_STORE when missing
 * (parents 0755, the directory itself 0750, IMTA_RUN 0755), and when run
 * by root with IMTA_USER set, give IMTA_USER each of them that root owns,
 * so a first start by root leaves a tree the daemons can write to after
 * dropping root.  A directory another account owns, or a symbolic link,
 * is left as it is.  The daemons call it before detaching; imsimta start
 * before it starts them. */
gboolean imta_daemon_prepare_dirs(const ImtaConfig *config, GError **error);
/* End the main loop; imta_daemon_main() then returns `status`. */
void imta_daemon_quit(ImtaDaemon *daemon, int status);

/* ---- the pieces, for programs that need them alone ------------------- */

/* Fork into the background (new session, working directory /, stdio
 * kept until imta_daemon_ready()).  Returns in the daemon only; the
 * starting process waits for imta_daemon_ready() or imta_daemon_fail()
 * and exits with 0 or 1. */
gboolean imta_daemon_detach(GError **error);
/* Tell the waiting starter that the daemon is ready, and point stdin,
 * stdout and stderr at /dev/null.  Does nothing in the foreground. */
void imta_daemon_ready(void);
/* Tell the waiting starter why the daemon could not start. */
void imta_daemon_fail(const char *message);

typedef struct _ImtaPidFile ImtaPidFile;

/* Create `path`, lock it and write our pid; IMTA_DAEMON_ERROR_RUNNING
 * (naming the holder's pid) when another process holds the lock.  The
 * lock dies with the process, so a stale file never blocks a start. */
ImtaPidFile *imta_daemon_pid_file_acquire(const char *path, GError **error);
/* Remove the file and drop the lock. */
void imta_daemon_pid_file_release(ImtaPidFile *pid_file);

/* Switch to `user` (NULL: stay).  As root: its groups, its group, then
 * the user, checking that root cannot be regained.  Not as root: only
 * succeeds when already running as `user`. */
gboolean imta_daemon_drop_privileges(const char *user, GError **error);

struct ucred;
/* Accept the next connection on a non-blocking AF_UNIX listening socket,
 * with the peer's credentials: the new descriptor (non-blocking,
 * close-on-exec), or -1 when no connection is waiting; a failure other
 * than "nothing waiting" is logged naming `what` (the socket's path). */
int imta_daemon_accept_local(int listen_fd, const char *what, struct ucred *cred_r);

/* A child's wait status in words ("exit status 1", "signal 9 (Killed)");
 * free with g_free. */
char *imta_daemon_describe_status(int status);

G_END_DECLS

#endif
