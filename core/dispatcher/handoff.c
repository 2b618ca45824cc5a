/*
 * handoff.c - packets and passed descriptors between the dispatcher and
 * its workers (see handoff.h).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "handoff.h"

gboolean
imta_handoff_send(int sock, const char *text, int fd)
{
	gsize len = strlen(text);
	struct iovec iov = { .iov_base = (void *)text, .iov_len = len };
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} control;
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (len == 0 || len > IMTA_HANDOFF_MAX) {
		errno = EMSGSIZE;
		return FALSE;
	}
	if (fd >= 0) {
		struct cmsghdr *cmsg;

		memset(&control, 0, sizeof(control));
		msg.msg_control = control.buf;
		msg.msg_controllen = sizeof(control.buf);
		cmsg = CMSG_FIRSTHDR(&msg);
		cmsg->cmsg_level = SOL_SOCKET;
		cmsg->cmsg_type = SCM_RIGHTS;
		cmsg->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
	}
	for (;;) {
		ssize_t n = sendmsg(sock, &msg, MSG_NOSIGNAL);

		if (n == (ssize_t)len)
			return TRUE;
		if (n < 0 && errno == EINTR)
			continue;
		if (n >= 0)
			errno = EPROTO;
		return FALSE;
	}
}

/* Close every descriptor a control message carried. */
static int
handoff_collect_fds(struct msghdr *msg, int *count_r)
{
	int first = -1;

	*count_r = 0;
	for (struct cmsghdr *cmsg = CMSG_FIRSTHDR(msg); cmsg != NULL;
	     cmsg = CMSG_NXTHDR(msg, cmsg)) {
		gsize n;

		if (cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS)
			continue;
		n = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (gsize i = 0; i < n; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(cmsg) + i * sizeof(int), sizeof(int));
			if (first < 0)
				first = fd;
			else
				close(fd);
			(*count_r)++;
		}
	}
	return first;
}

gssize
imta_handoff_recv(int sock, char buf[IMTA_HANDOFF_MAX + 1], int *fd_r)
{
	struct iovec iov = { .iov_base = buf, .iov_len = IMTA_HANDOFF_MAX };
	union {
		char buf[CMSG_SPACE(4 * sizeof(int))];
		struct cmsghdr align;
	} control;
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = control.buf, .msg_controllen = sizeof(control.buf),
	};
	ssize_t n;
	int fd, count;

	*fd_r = -1;
	do
		n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -1;
	fd = handoff_collect_fds(&msg, &count);
	if ((msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0 || count > 1) {
		if (fd >= 0)
			close(fd);
		errno = EPROTO;
		return -1;
	}
	buf[n] = '\0';
	*fd_r = fd;
	return n;
}
