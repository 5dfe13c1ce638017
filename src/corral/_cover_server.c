/*
 * _cover_server: serves the FUSE filesystems that cover the deny-read paths
 * of corral's sandboxes, and reports each read they refuse.
 *
 *   _cover_server        (descriptor 0: a Unix SOCK_SEQPACKET socket)
 *
 * One runs per corral process that needs it, a process of its own: corral's
 * own threads look up paths in a sandbox (the witness, the socket gate),
 * those beneath a cover among them, and a server among those threads would
 * leave them waiting on it for ever once corral is killed (a FUSE request
 * already read cannot be abandoned, and the connection lives while the
 * waiting process holds it).  This one lives until corral's end of the
 * socket closes, however corral ends; then it exits, every connection
 * aborts, and whatever still waits on one gets ENOTCONN.
 *
 * Each message on descriptor 0 adds a cover: its data is "D" (a directory)
 * or "F" (a file), the path as the sandbox sees it, a NUL, and the name of
 * a file inside a directory that stays readable (or nothing), and a NUL;
 * its descriptors are the FUSE connection (opened and mounted by corral's
 * sandbox init), a pipe to report on, and that file, open for reading, if
 * there is one.  In a cover every lookup and every open is refused with
 * EACCES, as a mode-000 cover would refuse it, and reported on the pipe as
 * "R", the path's length (uint16) and the path; the kept file is looked up
 * as node 2 and read from the real one.  Requests from outside the
 * sandbox's PID namespace (corral looking, whose pid is 0 there) are
 * answered alike but not reported.  Reports are written without blocking:
 * one that does not fit is dropped, never waited for.  A cover ends when its
 * connection does (ENODEV: the sandbox, and its mounts, are gone).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fuse.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#define ROOT_NODE 1
#define KEPT_NODE 2
/* Covers at once, over every sandbox of this corral process. */
#define MAX_COVERS 1024
#define REQUEST_SIZE (FUSE_MIN_READ_BUFFER + 65536)

struct cover {
    int fuse;                /* the connection */
    int report;              /* the pipe to corral, non-blocking */
    int directory;           /* the path is a directory (else a file) */
    int kept_fd;             /* a file inside that stays readable, or -1 */
    char path[PATH_MAX];
    char kept[NAME_MAX + 1]; /* its name, or "" */
};

static struct cover covers[MAX_COVERS];
static size_t cover_count;
static char request[REQUEST_SIZE];

static void reply(int fuse, uint64_t unique, int error, const void *data, size_t size)
{
    struct fuse_out_header header = {
        .len = (uint32_t)(sizeof(header) + size), .error = error, .unique = unique,
    };
    struct iovec parts[2] = {{&header, sizeof(header)}, {(void *)data, size}};
    (void)!writev(fuse, parts, size ? 2 : 1);
}

static void report_read(const struct fuse_in_header *in, const struct cover *cover,
                        const char *name, size_t length)
{
    if (in->pid == 0)
        return;
    char message[PIPE_BUF];
    int n = length ? snprintf(message + 3, sizeof(message) - 3, "%s/%.*s", cover->path,
                              (int)length, name)
                   : snprintf(message + 3, sizeof(message) - 3, "%s", cover->path);
    if (n < 0 || (size_t)n >= sizeof(message) - 3)
        return; /* too long to report in one message */
    uint16_t size = (uint16_t)n;
    message[0] = 'R';
    memcpy(message + 1, &size, 2);
    (void)!write(cover->report, message, 3 + (size_t)n);
}

static void fill_attributes(const struct cover *cover, uint64_t node, struct fuse_attr *attr)
{
    memset(attr, 0, sizeof(*attr));
    attr->ino = node;
    attr->nlink = 1;
    attr->blksize = 4096;
    if (node == KEPT_NODE && cover->kept_fd >= 0) {
        struct stat status;
        if (fstat(cover->kept_fd, &status) == 0) {
            attr->size = (uint64_t)status.st_size;
            attr->atime = (uint64_t)status.st_atime;
            attr->mtime = (uint64_t)status.st_mtime;
            attr->ctime = (uint64_t)status.st_ctime;
        }
        attr->mode = S_IFREG | 0444;
        return;
    }
    /* As the mode-000 cover it stands for (111: a kept file can be reached). */
    attr->mode = cover->directory ? (S_IFDIR | (cover->kept[0] ? 0111 : 0)) : S_IFREG;
    attr->nlink = cover->directory ? 2 : 1;
}

static int is_kept(const struct cover *cover, const char *name, size_t length)
{
    return cover->kept_fd >= 0 && length == strlen(cover->kept) &&
           memcmp(name, cover->kept, length) == 0;
}

static void answer(const struct cover *cover, const struct fuse_in_header *in,
                   const char *body, size_t body_size)
{
    int fuse = cover->fuse;
    switch (in->opcode) {
    case FUSE_INIT: {
        struct fuse_init_in init;
        memset(&init, 0, sizeof(init));
        memcpy(&init, body, body_size < sizeof(init) ? body_size : sizeof(init));
        struct fuse_init_out out;
        memset(&out, 0, sizeof(out));
        out.major = FUSE_KERNEL_VERSION;
        /* Past 7.31 nothing here changes; the reply's size is the same
         * from 7.23 on. */
        uint32_t most = FUSE_KERNEL_MINOR_VERSION < 31 ? FUSE_KERNEL_MINOR_VERSION : 31;
        out.minor = init.minor < most ? init.minor : most;
        out.max_readahead = init.max_readahead;
        out.max_background = 16;
        out.congestion_threshold = 12;
        out.max_write = 4096;
        out.time_gran = 1;
        reply(fuse, in->unique, 0, &out, sizeof(out));
        return;
    }
    case FUSE_LOOKUP: {
        size_t length = strnlen(body, body_size);
        if (in->nodeid == ROOT_NODE && cover->directory && is_kept(cover, body, length)) {
            struct fuse_entry_out entry;
            memset(&entry, 0, sizeof(entry));
            entry.nodeid = KEPT_NODE;
            entry.generation = 1;
            fill_attributes(cover, KEPT_NODE, &entry.attr);
            reply(fuse, in->unique, 0, &entry, sizeof(entry));
            return;
        }
        report_read(in, cover, body, length);
        reply(fuse, in->unique, -EACCES, NULL, 0);
        return;
    }
    case FUSE_GETATTR: {
        struct fuse_attr_out out;
        memset(&out, 0, sizeof(out));
        fill_attributes(cover, in->nodeid, &out.attr);
        reply(fuse, in->unique, 0, &out, sizeof(out));
        return;
    }
    case FUSE_OPEN:
        if (in->nodeid == KEPT_NODE) {
            struct fuse_open_out out;
            memset(&out, 0, sizeof(out));
            reply(fuse, in->unique, 0, &out, sizeof(out));
            return;
        }
        /* fall through */
    case FUSE_OPENDIR:
    case FUSE_ACCESS:
        if (in->opcode == FUSE_ACCESS) {
            struct fuse_access_in access;
            memset(&access, 0, sizeof(access));
            memcpy(&access, body, body_size < sizeof(access) ? body_size : sizeof(access));
            /* The kept file may be read, and its directory (111) searched
             * and entered, as with a mode-000 cover. */
            int searched = in->nodeid == ROOT_NODE && cover->kept_fd >= 0 &&
                           (access.mask & ~(uint32_t)X_OK) == 0;
            if ((in->nodeid == KEPT_NODE && !(access.mask & W_OK)) || searched) {
                reply(fuse, in->unique, 0, NULL, 0);
                return;
            }
        }
        report_read(in, cover, "", 0);
        reply(fuse, in->unique, -EACCES, NULL, 0);
        return;
    case FUSE_READ: {
        struct fuse_read_in read_in;
        memset(&read_in, 0, sizeof(read_in));
        memcpy(&read_in, body, body_size < sizeof(read_in) ? body_size : sizeof(read_in));
        static char data[65536];
        size_t size = read_in.size < sizeof(data) ? read_in.size : sizeof(data);
        ssize_t n = in->nodeid == KEPT_NODE && cover->kept_fd >= 0
                        ? pread(cover->kept_fd, data, size, (off_t)read_in.offset) : -1;
        if (n < 0)
            reply(fuse, in->unique, -EACCES, NULL, 0);
        else
            reply(fuse, in->unique, 0, data, (size_t)n);
        return;
    }
    case FUSE_STATFS: {
        struct fuse_statfs_out out;
        memset(&out, 0, sizeof(out));
        out.st.bsize = out.st.frsize = 4096;
        out.st.namelen = NAME_MAX;
        reply(fuse, in->unique, 0, &out, sizeof(out));
        return;
    }
    case FUSE_RELEASE:
    case FUSE_RELEASEDIR:
    case FUSE_FLUSH:
        reply(fuse, in->unique, 0, NULL, 0);
        return;
    case FUSE_FORGET:
    case FUSE_BATCH_FORGET:
    case FUSE_INTERRUPT:
        return; /* no answer is expected */
    default:
        reply(fuse, in->unique, -ENOSYS, NULL, 0);
    }
}

static void end_cover(size_t i)
{
    close(covers[i].fuse);
    close(covers[i].report);
    if (covers[i].kept_fd >= 0)
        close(covers[i].kept_fd);
    covers[i] = covers[--cover_count];
}

/* Serves one request of cover i; false once the connection is gone. */
static int serve(size_t i)
{
    ssize_t got = read(covers[i].fuse, request, sizeof(request));
    if (got < 0)
        return errno == EINTR || errno == EAGAIN || errno == ENOENT; /* ENOENT: interrupted */
    struct fuse_in_header in;
    if ((size_t)got < sizeof(in))
        return 1;
    memcpy(&in, request, sizeof(in));
    if (in.len <= (uint32_t)got && in.len >= sizeof(in))
        answer(&covers[i], &in, request + sizeof(in), in.len - sizeof(in));
    return 1;
}

/* Takes one cover from corral; false once corral is gone. */
static int add_cover(void)
{
    char data[1 + PATH_MAX + NAME_MAX + 3];
    union {
        struct cmsghdr header;
        char space[CMSG_SPACE(3 * sizeof(int))];
    } control;
    struct iovec iov = {.iov_base = data, .iov_len = sizeof(data) - 1};
    struct msghdr msg = {
        .msg_iov = &iov, .msg_iovlen = 1,
        .msg_control = control.space, .msg_controllen = sizeof(control.space),
    };
    ssize_t got = recvmsg(0, &msg, MSG_CMSG_CLOEXEC);
    if (got <= 0)
        return got < 0 && (errno == EINTR || errno == EAGAIN);
    data[got] = 0;
    int fds[4] = {-1, -1, -1, -1}; /* what the control space holds, at most */
    size_t count = 0;
    struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
    if (cmsg != NULL && cmsg->cmsg_level == SOL_SOCKET && cmsg->cmsg_type == SCM_RIGHTS) {
        count = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        if (count > 4)
            count = 4;
        memcpy(fds, CMSG_DATA(cmsg), count * sizeof(int));
    }
    const char *path = data + 1, *kept = path + strlen(path) + 1;
    int usable = count >= 2 && count <= 3 && !(msg.msg_flags & MSG_CTRUNC) &&
                 (data[0] == 'D' || data[0] == 'F') && kept < data + got &&
                 strlen(path) < PATH_MAX && strlen(kept) <= NAME_MAX &&
                 (count == 3) == (*kept != 0) && cover_count < MAX_COVERS;
    if (!usable) {
        /* Nothing serves it: the connection aborts, and a read there fails. */
        for (size_t j = 0; j < count; j++)
            close(fds[j]);
        return 1;
    }
    struct cover *cover = &covers[cover_count++];
    cover->fuse = fds[0];
    cover->report = fds[1];
    cover->kept_fd = fds[2];
    cover->directory = data[0] == 'D';
    strcpy(cover->path, path);
    strcpy(cover->kept, kept);
    /* Neither end may block: a request withdrawn between poll and read (its
     * caller killed) would otherwise hold the read, and every cover, until
     * the next one came. */
    for (int i = 0; i < 2; i++) {
        int flags = fcntl(fds[i], F_GETFL);
        if (flags >= 0)
            (void)fcntl(fds[i], F_SETFL, flags | O_NONBLOCK);
    }
    return 1;
}

int main(void)
{
    /* corral may be gone when a report is written: no SIGPIPE. */
    signal(SIGPIPE, SIG_IGN);
    static struct pollfd wait[1 + MAX_COVERS];
    for (;;) {
        wait[0] = (struct pollfd){0, POLLIN, 0};
        for (size_t i = 0; i < cover_count; i++)
            wait[1 + i] = (struct pollfd){covers[i].fuse, POLLIN, 0};
        size_t watched = cover_count;
        if (poll(wait, 1 + watched, -1) < 0) {
            if (errno == EINTR)
                continue;
            return 1;
        }
        /* Last first: ending cover i moves the last one into its place. */
        for (size_t i = watched; i-- > 0;) {
            if (wait[1 + i].revents && !serve(i))
                end_cover(i);
        }
        if (wait[0].revents && !add_cover())
            return 0;
    }
}
