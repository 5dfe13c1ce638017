/*
 * _sandbox_init: the first program bubblewrap runs in corral's sandboxes;
 * it finishes the mounts and becomes the command.
 *
 *   _sandbox_init --report-fd FD [--seccomp-fd FD [--listener-socket FD]]
 *                 [--map-ids UID:GID] [--hold-fd FD]
 *                 [--dev PATH | --proc PATH | --bind PATH | --ro-bind PATH]...
 *                 [--fuse-fd FD] [--cover-directory PATH | --cover-file PATH]...
 *                 [--environ-fd FD] -- PROGRAM ARGV0 [ARG]...
 *
 * The mounts are made in the order given.  --dev makes PATH what bwrap's
 * --dev makes it: a tmpfs holding the host's null, zero, full, random,
 * urandom and tty (bound from PATH as it was), the terminal on standard
 * output, if any, as console, a devpts of the sandbox's own, an empty shm
 * directory and the usual links (fd, stdin, stdout, stderr, core, ptmx).
 * --proc mounts the sandbox's own proc on PATH.
 * Each other PATH is bound over itself, recursively, nosuid and nodev; --ro-bind
 * makes the whole tree read-only too (mount_setattr, Linux 5.12).  A PATH
 * that is a symbolic link is mounted over as the link itself (open_tree,
 * move_mount), so that it can be neither removed nor replaced; what it
 * points to is protected by a PATH of its own.  Each --cover-* mounts over
 * its PATH, read-only, a FUSE filesystem (a deny-read path, where corral's
 * _cover_server refuses every read and reports it) on a /dev/fuse
 * descriptor opened here, through --fuse-fd (/dev/fuse opened by corral
 * with O_PATH, never shown in the sandbox: one opened for reading outside
 * this user namespace could not be mounted in it), sent to corral with the
 * listener.  Before the covers, the working directory is entered again
 * (bwrap entered it before these mounts).  With
 * --map-ids (for a caller other than root, whom bwrap maps to uid 0 so that
 * the init may mount) a nested user namespace maps UID and GID back to that
 * uid 0, as bwrap does itself otherwise.  Then every capability goes (the
 * bounding and ambient sets first: as uid 0 an exec would regain the
 * bounding set), the seccomp program read from --seccomp-fd is loaded, and
 * PROGRAM is exec'd with ARGV0 as argv[0], searched on PATH like execvp,
 * in the environment read from --environ-fd ("NAME=VALUE" entries, each
 * ended by a NUL; without it, the init's own).  The init itself runs in
 * none of the command's environment (bwrap starts it in an empty one):
 * LD_PRELOAD, LD_AUDIT or GLIBC_TUNABLES there would act on this process,
 * which holds capabilities and makes the protective mounts, before main.
 * With --listener-socket (a Unix socket) the program is loaded with a new
 * listener for its user notifications, which is sent over that socket
 * (SCM_RIGHTS) to corral, whose gate answers them; with it go the covers'
 * descriptors, in order, and last a NETLINK_SOCK_DIAG socket of the sandbox's network namespace, where the gate
 * learns which socket files the run's listening Unix sockets were bound to.
 * The socket stays open in the sandbox's PID 1 (below): each pid (int32)
 * corral writes there is answered with the last pid the sandbox's PID
 * namespace gave out (int32, -1 if unknown), which only a process inside it
 * can read, and whether the namespace has a process of that pid now
 * (int32, 1 or 0); by them corral tells a host pid the command tried to
 * signal from one of the sandbox's own, present or gone.
 *
 * Why a program of its own: bwrap re-reads /proc/self/mountinfo for each bind
 * it makes, whose length grows with every mount, so the protected paths of a
 * workspace (about twenty in a fresh repository) cost it more than the rest of
 * the sandbox, and its /dev (six binds) and /proc (four) about a millisecond.
 * Here each bind costs two system calls.  bwrap is asked to keep
 * CAP_SYS_ADMIN and CAP_SETPCAP for this program only; nothing of the
 * command's runs before they are gone, and no_new_privs (set by bwrap, and
 * again here) keeps an exec from bringing any back.
 *
 * On failure nothing is exec'd: the reason goes to --report-fd as one line,
 * "corral-setup-error: WHAT: STRERROR", and the exit status is 125.  The
 * descriptor is close-on-exec, so the command never holds it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif
#ifndef SYS_open_tree
#define SYS_open_tree 428
#endif
#ifndef SYS_move_mount
#define SYS_move_mount 429
#endif
#ifndef OPEN_TREE_CLONE
#define OPEN_TREE_CLONE 1
#endif
#ifndef MOVE_MOUNT_F_EMPTY_PATH
#define MOVE_MOUNT_F_EMPTY_PATH 0x00000004
#endif
#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif
#ifndef SECCOMP_FILTER_FLAG_NEW_LISTENER
#define SECCOMP_FILTER_FLAG_NEW_LISTENER (1UL << 3)
#endif
#ifndef SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
#define SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (1UL << 5)
#endif
#define ATTR_RDONLY 0x00000001
#define ATTR_NOSUID 0x00000002
#define ATTR_NODEV 0x00000004

/* struct mount_attr of <linux/mount.h>, which older headers lack. */
struct attributes {
    unsigned long long attr_set, attr_clr, propagation, userns_fd;
};

#define SETUP_FAILED 125
#define MAX_COVERS 64
#define MAX_PROGRAM (4096 * sizeof(struct sock_filter))

static int report_fd = -1;
static int fuse_fd = -1;
static int covers[MAX_COVERS];
static int cover_count;

/* Reports "ACTION SUBJECT: strerror(error)" and exits. */
static void fail(const char *action, const char *subject, int error)
{
    char line[4096];
    int n = snprintf(line, sizeof(line), "corral-setup-error: %s%s%s: %s\n", action,
                     *subject ? " " : "", subject, strerror(error));
    if (n > (int)sizeof(line) - 1)
        n = (int)sizeof(line) - 1;
    /* A report is one write, so it is never interleaved with bwrap's. */
    if (report_fd < 0 || write(report_fd, line, (size_t)n) != n)
        (void)!write(STDERR_FILENO, line, (size_t)n);
    _exit(SETUP_FAILED);
}

static int descriptor(const char *text)
{
    char *end;
    errno = 0;
    long fd = strtol(text, &end, 10);
    if (errno || *end || end == text || fd < 0 || fd > 1 << 20)
        fail("not a file descriptor:", text, EINVAL);
    return (int)fd;
}

/* What fd holds, read to its end (limit bytes at most, else E2BIG), with
 * one byte more allocated, for a NUL; its size in *size.  The descriptor is
 * closed, so the command never holds it.  Any failure is reported as what. */
static char *read_all(int fd, size_t limit, size_t *size, const char *what)
{
    size_t capacity = 0;
    char *data = NULL;
    *size = 0;
    for (;;) {
        if (*size == capacity) {
            if (capacity > limit)
                fail(what, "", E2BIG);
            capacity = capacity ? 2 * capacity : 1 << 16;
            data = realloc(data, capacity + 1);
            if (data == NULL)
                fail(what, "", ENOMEM);
        }
        ssize_t n = read(fd, data + *size, capacity - *size);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            fail(what, "", errno);
        if (n == 0)
            break;
        *size += (size_t)n;
    }
    close(fd);
    if (*size > limit)
        fail(what, "", E2BIG);
    return data;
}

/* The NUL-ended entries read from fd to its end, as an environ array. */
static char **read_environ(int fd)
{
    size_t size;
    char *data = read_all(fd, SIZE_MAX / 2, &size, "cannot read --environ-fd");
    if (size > 0 && data[size - 1] != '\0')
        data[size++] = '\0'; /* a last entry left unended: read_all left room */
    size_t count = 0;
    for (size_t k = 0; k < size; k++)
        count += data[k] == '\0';
    char **entries = calloc(count + 1, sizeof *entries);
    if (entries == NULL)
        fail("cannot read --environ-fd", "", ENOMEM);
    for (size_t k = 0, n = 0; k < size; k += strlen(data + k) + 1)
        entries[n++] = data + k;
    return entries;
}

static void write_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        fail("cannot open", path, errno);
    ssize_t n = write(fd, text, strlen(text));
    int error = errno;
    close(fd);
    if (n != (ssize_t)strlen(text))
        fail("cannot write", path, n < 0 ? error : EIO);
}

/* Becomes UID and GID in a new user namespace, mapped to the current ones. */
static void map_ids(const char *ids)
{
    unsigned int uid, gid;
    char end;
    if (sscanf(ids, "%u:%u%c", &uid, &gid, &end) != 2)
        fail("not UID:GID:", ids, EINVAL);
    if (unshare(CLONE_NEWUSER) != 0)
        fail("cannot create a user namespace", "", errno);
    char map[64];
    write_file("/proc/self/setgroups", "deny");
    snprintf(map, sizeof(map), "%u 0 1\n", uid);
    write_file("/proc/self/uid_map", map);
    snprintf(map, sizeof(map), "%u 0 1\n", gid);
    write_file("/proc/self/gid_map", map);
}

/* Mounts the symbolic link at path over itself, not what it points to. */
/* Gives the detached mount tree (open_tree) attributes and mounts it at
 * name in the directory dir (AT_FDCWD: name as it is), then closes it; on
 * failure reports action and subject. */
static void attach(int tree, const struct attributes *attributes, int dir, const char *name,
                   const char *action, const char *subject)
{
    if (syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH, attributes,
                sizeof(*attributes)) != 0 ||
        syscall(SYS_move_mount, tree, "", dir, name, MOVE_MOUNT_F_EMPTY_PATH) != 0)
        fail(action, subject, errno);
    close(tree);
}

static void pin_link(const char *path, const char *action, struct attributes *attributes)
{
    int tree = (int)syscall(SYS_open_tree, AT_FDCWD, path,
                            OPEN_TREE_CLONE | O_CLOEXEC | AT_SYMLINK_NOFOLLOW);
    if (tree < 0)
        fail(action, path, errno);
    attach(tree, attributes, AT_FDCWD, path, action, path);
}

static void bind_over_itself(const char *path, int read_only)
{
    const char *action = read_only ? "cannot bind read-only" : "cannot bind";
    struct attributes attributes = {
        .attr_set = ATTR_NOSUID | ATTR_NODEV | (read_only ? ATTR_RDONLY : 0),
    };
    struct stat status;
    if (lstat(path, &status) == 0 && S_ISLNK(status.st_mode)) {
        pin_link(path, action, &attributes);
        return;
    }
    if (mount(path, path, NULL, MS_BIND | MS_REC, NULL) != 0)
        fail(action, path, errno);
    if (syscall(SYS_mount_setattr, AT_FDCWD, path, AT_RECURSIVE, &attributes,
                sizeof(attributes)) != 0)
        fail(action, path, errno);
}

/* The devices bound into a sandbox's /dev, and its links, as bwrap's --dev
 * makes them. */
static const char *const devices[] = {"null", "zero", "full", "random", "urandom", "tty"};
static const char *const dev_links[][2] = {
    {"fd", "/proc/self/fd"}, {"stdin", "/proc/self/fd/0"}, {"stdout", "/proc/self/fd/1"},
    {"stderr", "/proc/self/fd/2"}, {"core", "/proc/kcore"}, {"ptmx", "pts/ptmx"},
};
#define DEVICE_COUNT (sizeof(devices) / sizeof(*devices))

/* Binds the device's detached mount tree at name, a new file in dir. */
static void place_device(int tree, int dir, const char *name, const char *path)
{
    /* Usable and writable devices, as on the host: the read-only bind of
     * the host's root made its /dev read-only and nodev. */
    static const struct attributes attributes = {
        .attr_set = ATTR_NOSUID, .attr_clr = ATTR_RDONLY | ATTR_NODEV,
    };
    int point = openat(dir, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (point < 0)
        fail("cannot create a device in", path, errno);
    close(point);
    attach(tree, &attributes, dir, name, "cannot bind a device in", path);
}

static void make_dev(const char *path)
{
    char name[PATH_MAX];
    int trees[DEVICE_COUNT];
    /* Taken before the tmpfs hides them: the host's devices, and the
     * terminal (its /dev/pts/N is the host's devpts's, which the sandbox's
     * own does not show: as console, ttyname() finds it). */
    for (size_t k = 0; k < DEVICE_COUNT; k++) {
        snprintf(name, sizeof(name), "%s/%s", path, devices[k]);
        trees[k] = (int)syscall(SYS_open_tree, AT_FDCWD, name, OPEN_TREE_CLONE | O_CLOEXEC);
        if (trees[k] < 0)
            fail("cannot bind", name, errno);
    }
    const char *terminal = isatty(STDOUT_FILENO) ? ttyname(STDOUT_FILENO) : NULL;
    int console = -1;
    if (terminal != NULL) {
        console = (int)syscall(SYS_open_tree, AT_FDCWD, terminal, OPEN_TREE_CLONE | O_CLOEXEC);
        if (console < 0)
            fail("cannot bind", terminal, errno);
    }
    if (mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755") != 0)
        fail("cannot mount a tmpfs on", path, errno);
    int dir = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0)
        fail("cannot open", path, errno);
    for (size_t k = 0; k < DEVICE_COUNT; k++)
        place_device(trees[k], dir, devices[k], path);
    if (console >= 0)
        place_device(console, dir, "console", path);
    for (size_t k = 0; k < sizeof(dev_links) / sizeof(*dev_links); k++) {
        if (symlinkat(dev_links[k][1], dir, dev_links[k][0]) != 0)
            fail("cannot make a link in", path, errno);
    }
    if (mkdirat(dir, "shm", 0755) != 0 || mkdirat(dir, "pts", 0755) != 0)
        fail("cannot make a directory in", path, errno);
    snprintf(name, sizeof(name), "%s/pts", path);
    if (mount("devpts", name, "devpts", MS_NOSUID | MS_NOEXEC,
              "newinstance,ptmxmode=0666,mode=620") != 0)
        fail("cannot mount devpts on", name, errno);
    close(dir);
}

static void make_proc(const char *path)
{
    if (mount("proc", path, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0)
        fail("cannot mount proc on", path, errno);
}

static void cover(const char *path, int directory)
{
    if (cover_count == MAX_COVERS)
        fail("too many covers at", path, E2BIG);
    if (fuse_fd < 0)
        fail("--cover needs", "--fuse-fd", EINVAL);
    char device[64];
    snprintf(device, sizeof(device), "/proc/self/fd/%d", fuse_fd);
    int fd = open(device, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        fail("cannot open /dev/fuse to cover", path, errno);
    char options[128];
    /* max_read: what the server answers a read with at most. */
    snprintf(options, sizeof(options),
             "fd=%d,rootmode=%o,user_id=%u,group_id=%u,max_read=65536", fd,
             directory ? S_IFDIR : S_IFREG, (unsigned)getuid(), (unsigned)getgid());
    if (mount("corral", path, "fuse", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
              options) != 0)
        fail("cannot cover", path, errno);
    covers[cover_count++] = fd;
}

/* The working directory, looked up again: bwrap entered it before these
 * mounts, and a directory entered stays on the mount it was entered on.  A
 * working directory inside a protected path (or one bound to keep it in
 * place) would otherwise be the writable one beneath, and one beneath a
 * cover the uncovered one. */
static void enter_again(void)
{
    char here[PATH_MAX];
    if (getcwd(here, sizeof(here)) == NULL)
        fail("cannot find the working directory", "", errno);
    if (chdir(here) != 0)
        fail("cannot enter the working directory", here, errno);
}

static void drop_capabilities(void)
{
    /* EINVAL ends the loop past the kernel's last capability; EPERM means
     * there is no CAP_SETPCAP, and so no capability to lose. */
    for (int cap = 0; cap < 64; cap++) {
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0) {
            if (errno == EINVAL || errno == EPERM)
                break;
            fail("cannot drop the capability bounding set", "", errno);
        }
    }
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL)
        fail("cannot clear the ambient capabilities", "", errno);
    struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct none[_LINUX_CAPABILITY_U32S_3];
    memset(none, 0, sizeof(none));
    if (syscall(SYS_capset, &header, none) != 0)
        fail("cannot drop capabilities", "", errno);
}

/* Sends fd, the covers' descriptors and extra if it is not -1 over the
 * Unix socket sock, then closes them (not sock). */
static void send_descriptors(int sock, int fd, int extra)
{
    char byte = 0;
    struct iovec iov = {.iov_base = &byte, .iov_len = 1};
    union {
        struct cmsghdr header;
        char space[CMSG_SPACE((2 + MAX_COVERS) * sizeof(int))];
    } control;
    memset(&control, 0, sizeof(control));
    int fds[2 + MAX_COVERS] = {fd};
    int count = 1;
    for (int i = 0; i < cover_count; i++)
        fds[count++] = covers[i];
    if (extra >= 0)
        fds[count++] = extra;
    struct msghdr msg = {
        .msg_iov = &iov, .msg_iovlen = 1,
        .msg_control = control.space, .msg_controllen = CMSG_SPACE(count * sizeof(int)),
    };
    struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(count * sizeof(int));
    memcpy(CMSG_DATA(cmsg), fds, count * sizeof(int));
    ssize_t sent;
    do
        sent = sendmsg(sock, &msg, MSG_NOSIGNAL);
    while (sent < 0 && errno == EINTR);
    int error = errno;
    for (int i = 0; i < count; i++)
        close(fds[i]);
    if (sent != 1)
        fail("cannot send the seccomp listener", "", sent < 0 ? error : EIO);
}

/* The listener goes to corral from a thread the filter does not cover (a
 * filter is the calling thread's): the filter notifies sendmsg, and the
 * sendmsg carrying the listener would wait for corral to answer through
 * that very listener. */
struct handoff {
    int sock, listener, diag, go[2];
};

static void *hand_over(void *argument)
{
    struct handoff *handoff = argument;
    char byte;
    ssize_t n;
    do
        n = read(handoff->go[0], &byte, 1);
    while (n < 0 && errno == EINTR);
    if (n == 1)
        send_descriptors(handoff->sock, handoff->listener, handoff->diag);
    return NULL;
}

static void load_seccomp(int fd, int listener_socket)
{
    size_t length;
    char *program = read_all(fd, MAX_PROGRAM, &length, "cannot read the seccomp program");
    if (length == 0 || length % sizeof(struct sock_filter) != 0)
        fail("cannot read the seccomp program", "", EINVAL);
    struct sock_fprog prog = {
        .len = (unsigned short)(length / sizeof(struct sock_filter)),
        .filter = (struct sock_filter *)program,
    };
    if (listener_socket < 0) {
        if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) != 0)
            fail("cannot load the seccomp program", "", errno);
        return;
    }
    struct handoff handoff = {.sock = listener_socket};
    pthread_t thread;
    if (pipe2(handoff.go, O_CLOEXEC) != 0)
        fail("cannot make a pipe", "", errno);
    int error = pthread_create(&thread, NULL, hand_over, &handoff);
    if (error != 0)
        fail("cannot start a thread", "", error);
    /* Killable once corral has read a notification, where the kernel can
     * (5.19): see the same call in _cspawn.c. */
    handoff.listener = (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER,
                                    SECCOMP_FILTER_FLAG_NEW_LISTENER
                                        | SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV, &prog);
    if (handoff.listener < 0 && errno == EINVAL)
        handoff.listener = (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER,
                                        SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
    if (handoff.listener < 0)
        fail("cannot load the seccomp program", "", errno);
    /* Without one (no netlink here), the gate takes none of the run's Unix
     * sockets for its own. */
    handoff.diag = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (write(handoff.go[1], "", 1) != 1)
        fail("cannot write to a pipe", "", errno);
    pthread_join(thread, NULL);
    close(handoff.go[0]);
    close(handoff.go[1]);
}

/* Answers each pid read from sock (corral's question) with the last pid of
 * this PID namespace, read from last_pid, a descriptor of
 * /proc/sys/kernel/ns_last_pid (which shows the reader's own namespace),
 * and whether proc, the namespace's /proc, has that pid; until corral closes
 * its end.  Under the filter, and asked by the thread that answers its
 * notifications, it must make no notified call: recv, pread, faccessat and
 * send (sendto without an address) are none. */
struct answers {
    int sock, last_pid, proc;
};

static void *answer_pids(void *argument)
{
    const struct answers *answers = argument;
    for (;;) {
        int pid;
        ssize_t n = recv(answers->sock, &pid, sizeof(pid), MSG_WAITALL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n != sizeof(pid))
            return NULL;
        char text[16];
        ssize_t got = pread(answers->last_pid, text, sizeof(text) - 1, 0);
        int answer[2] = {-1, 0};
        if (got > 0) {
            text[got] = 0;
            answer[0] = atoi(text);
        }
        snprintf(text, sizeof(text), "%d", pid);
        answer[1] = faccessat(answers->proc, text, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
        if (send(answers->sock, answer, sizeof(answer), MSG_NOSIGNAL) != sizeof(answer))
            return NULL;
    }
}

/*
 * As the sandbox's PID 1 (bwrap --as-pid-1, which then leaves no process of
 * its own in the sandbox: one there, outside the seccomp filter, would be
 * the command's to take over through /proc/1/mem wherever they share a user),
 * the init stays, under the filter and without a capability, to reap what
 * the command leaves, and ends as the command does (with 128+N for signal
 * N, as bwrap's PID 1 would), which ends every process left in the sandbox.
 * It keeps hold_fd (bwrap's --sync-fd) open meanwhile; the command gets no
 * copy.  With a listener socket (sock, else -1), a thread of its, under the
 * filter as well, answers corral there (answer_pids); it starts after
 * the command, so as not to change the command's pid.
 */
static void reap_for(const char *program, char **argv, int hold_fd, int sock)
{
    if (hold_fd >= 0 && fcntl(hold_fd, F_SETFD, FD_CLOEXEC) != 0)
        fail("bad --hold-fd", "", errno);
    /* Out of the command's reach (its /proc/1/mem, fd, environ), from
     * before the command exists: were it to write this process's memory, it
     * could let go of hold_fd, whose lock is corral's own, and have the
     * placeholders swept while the sandbox still relies on them.  The
     * command's exec makes it dumpable again; no capability of its reaches
     * past this. */
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
        fail("cannot make PID 1 undumpable", "", errno);
    static struct answers answers;
    if (sock >= 0) {
        /* Without them (ns_last_pid needs CONFIG_CHECKPOINT_RESTORE) corral
         * gets no answer, and reports no signal. */
        answers.sock = sock;
        answers.last_pid = open("/proc/sys/kernel/ns_last_pid", O_RDONLY | O_CLOEXEC);
        answers.proc = open("/proc", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (answers.last_pid < 0 || answers.proc < 0) {
            if (answers.last_pid >= 0)
                close(answers.last_pid);
            if (answers.proc >= 0)
                close(answers.proc);
            close(sock);
            sock = -1;
        }
    }
    pid_t command = fork();
    if (command < 0)
        fail("cannot fork the command", "", errno);
    if (command == 0) {
        execvp(program, argv);
        fail("cannot run", program, errno);
    }
    pthread_t thread;
    if (sock >= 0 && pthread_create(&thread, NULL, answer_pids, &answers) != 0) {
        close(answers.last_pid);
        close(answers.proc);
        close(sock); /* corral reads the end of it: no answer, no report */
    }
    /* Only the command's output: its pipes end when it and its heirs do. */
    close(STDIN_FILENO);
    close(STDOUT_FILENO);
    close(STDERR_FILENO);
    close(report_fd);
    for (;;) {
        int status;
        pid_t ended = waitpid(-1, &status, 0);
        if (ended < 0 && errno == EINTR)
            continue;
        if (ended < 0)
            _exit(SETUP_FAILED); /* no child left: cannot happen */
        if (ended == command)
            _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
    }
}

int main(int argc, char **argv)
{
    int seccomp_fd = -1, listener_socket = -1, hold_fd = -1, environ_fd = -1;
    const char *ids = NULL;
    int i = 1;
    /* The report descriptor first, so that every later failure reaches it. */
    if (i + 1 < argc && strcmp(argv[i], "--report-fd") == 0) {
        report_fd = descriptor(argv[i + 1]);
        if (fcntl(report_fd, F_SETFD, FD_CLOEXEC) != 0)
            fail("bad --report-fd", argv[i + 1], errno);
        i += 2;
    }
    /* Options are read before anything is done, so that a malformed
     * command line changes nothing. */
    int binds = i;
    for (; i < argc && strcmp(argv[i], "--") != 0; i += 2) {
        if (i + 1 >= argc)
            fail("no value for", argv[i], EINVAL);
        if (strcmp(argv[i], "--seccomp-fd") == 0)
            seccomp_fd = descriptor(argv[i + 1]);
        else if (strcmp(argv[i], "--listener-socket") == 0)
            listener_socket = descriptor(argv[i + 1]);
        else if (strcmp(argv[i], "--map-ids") == 0)
            ids = argv[i + 1];
        else if (strcmp(argv[i], "--hold-fd") == 0)
            hold_fd = descriptor(argv[i + 1]);
        else if (strcmp(argv[i], "--fuse-fd") == 0)
            fuse_fd = descriptor(argv[i + 1]);
        else if (strcmp(argv[i], "--environ-fd") == 0)
            environ_fd = descriptor(argv[i + 1]);
        else if (strcmp(argv[i], "--bind") != 0 && strcmp(argv[i], "--ro-bind") != 0 &&
                 strcmp(argv[i], "--dev") != 0 && strcmp(argv[i], "--proc") != 0 &&
                 strcmp(argv[i], "--cover-directory") != 0 &&
                 strcmp(argv[i], "--cover-file") != 0)
            fail("unknown option", argv[i], EINVAL);
    }
    if (i + 2 >= argc)
        fail("no command after --", "", EINVAL);
    if (listener_socket >= 0 && seccomp_fd < 0)
        fail("--listener-socket needs", "--seccomp-fd", EINVAL);
    if (listener_socket >= 0 && fcntl(listener_socket, F_SETFD, FD_CLOEXEC) != 0)
        fail("bad --listener-socket", "", errno);
    char **command_environ = environ_fd >= 0 ? read_environ(environ_fd) : environ;
    for (int j = binds; j < i; j += 2) {
        if (strcmp(argv[j], "--dev") == 0)
            make_dev(argv[j + 1]);
        else if (strcmp(argv[j], "--proc") == 0)
            make_proc(argv[j + 1]);
        else if (strcmp(argv[j], "--bind") == 0 || strcmp(argv[j], "--ro-bind") == 0)
            bind_over_itself(argv[j + 1], strcmp(argv[j], "--ro-bind") == 0);
    }
    /* Before the covers: until corral serves them, a look into one waits. */
    enter_again();
    for (int j = binds; j < i; j += 2) {
        if (strcmp(argv[j], "--cover-directory") == 0 || strcmp(argv[j], "--cover-file") == 0)
            cover(argv[j + 1], strcmp(argv[j], "--cover-directory") == 0);
    }
    if (fuse_fd >= 0)
        close(fuse_fd);
    if (ids != NULL)
        map_ids(ids);
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        fail("cannot set no_new_privs", "", errno);
    drop_capabilities();
    if (seccomp_fd >= 0)
        load_seccomp(seccomp_fd, listener_socket);
    const char *program = argv[i + 1];
    environ = command_environ; /* execvp searches its PATH */
    if (getpid() == 1)
        reap_for(program, argv + i + 2, hold_fd, listener_socket);
    execvp(program, argv + i + 2);
    /* The command's own failure to start, as bwrap would report it. */
    fail("cannot run", program, errno);
}
