/*
 * corral._cgate: the system calls the socket gate makes for a sandboxed
 * command (see corral/sandbox/socket_gate.py), in C so that a sandboxed
 * `corral run` imports neither ctypes nor socket (5 ms of start-up together).
 *
 * socketpair(packets=False) -> (fd, fd)
 *                                     a Unix stream (or seqpacket) pair,
 *                                     close-on-exec
 * send_fds(sock, data, fds) -> None  data with descriptors (SCM_RIGHTS)
 * pidfd_getfd(pidfd, fd) -> fd        a duplicate of another process's fd
 * socket_option(fd, level, name) -> int
 *                                     an int socket option (SO_DOMAIN, ...)
 *                                     or a 64-bit one (SO_COOKIE)
 * netlink_socket(protocol) -> fd     a close-on-exec netlink datagram socket
 * open_in_root(root, path, flags) -> fd
 *                                     openat2 with RESOLVE_IN_ROOT and
 *                                     RESOLVE_NO_MAGICLINKS: ``root`` is ``/``
 * connect_unix(fd, path) -> None      connect() to a pathname Unix socket
 * bind_address(fd, sockaddr) -> None  bind() to a raw struct sockaddr
 * connect_address(fd, sockaddr) -> None
 *                                     connect() to a raw struct sockaddr
 * listen(fd, backlog) -> None         listen()
 * socket_name(fd) -> bytes            getsockname(), the raw struct sockaddr
 * serve(source, writable, operands, refused, observed, guarded, sysv, shm, truncate,
 *       init_answers)
 *     -> (handle, fd)
 *                                     a thread that answers the run's
 *                                     writes itself and passes the rest on
 *                                     (see "The server" below)
 * contain(handle, in_cgroup)         tells that thread whether the run it
 *                                     serves has a cgroup of its own (before
 *                                     the run starts)
 * stop(handle)                        asks that thread to end (it closes its
 *                                     end of the pipe when it does)
 * join(handle)                        waits for it to end, once, after stop
 *                                     and after reading the pipe to its end
 *
 * Each raises OSError with the system call's errno.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/ipc.h>
#include <mqueue.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/resource.h>
#include <linux/capability.h>
#include <linux/seccomp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/vfs.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/xattr.h>
#include <netinet/in.h>
#include <stddef.h>
#include <unistd.h>
#include <linux/openat2.h>

/* Linux 6.6, which older headers lack; the flag goes by value. */
#ifndef SECCOMP_IOCTL_NOTIF_SET_FLAGS
#define SECCOMP_IOCTL_NOTIF_SET_FLAGS 0x40082104
#endif
#ifndef SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP
#define SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP 1
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif
#ifndef SYS_openat2
#define SYS_openat2 437
#endif
/* Linux 4.17, which older headers lack. */
#ifndef SHM_STAT_ANY
#define SHM_STAT_ANY 15
#endif
#ifndef SEM_STAT_ANY
#define SEM_STAT_ANY 20
#endif
#ifndef MSG_STAT_ANY
#define MSG_STAT_ANY 13
#endif

static PyObject *
gate_socketpair(PyObject *self, PyObject *args)
{
    int packets = 0, fds[2];
    if (!PyArg_ParseTuple(args, "|p:socketpair", &packets))
        return NULL;
    if (socketpair(AF_UNIX, (packets ? SOCK_SEQPACKET : SOCK_STREAM) | SOCK_CLOEXEC, 0, fds) != 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    return Py_BuildValue("(ii)", fds[0], fds[1]);
}

#define MAX_FDS 66

static PyObject *
gate_send_fds(PyObject *self, PyObject *args)
{
    int sock;
    const char *data;
    Py_ssize_t size;
    PyObject *given;
    if (!PyArg_ParseTuple(args, "iy#O!:send_fds", &sock, &data, &size, &PyTuple_Type, &given))
        return NULL;
    Py_ssize_t count = PyTuple_GET_SIZE(given);
    if (count < 1 || count > MAX_FDS || size < 1) {
        PyErr_SetString(PyExc_ValueError, "send_fds needs data and 1 to 66 descriptors");
        return NULL;
    }
    int fds[MAX_FDS];
    for (Py_ssize_t i = 0; i < count; i++) {
        long fd = PyLong_AsLong(PyTuple_GET_ITEM(given, i));
        if (fd == -1 && PyErr_Occurred())
            return NULL;
        fds[i] = (int)fd;
    }
    struct iovec iov = {.iov_base = (void *)data, .iov_len = (size_t)size};
    union {
        struct cmsghdr header;
        char space[CMSG_SPACE(MAX_FDS * sizeof(int))];
    } control;
    memset(&control, 0, sizeof(control));
    struct msghdr msg = {
        .msg_iov = &iov, .msg_iovlen = 1,
        .msg_control = control.space, .msg_controllen = CMSG_SPACE((size_t)count * sizeof(int)),
    };
    struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN((size_t)count * sizeof(int));
    memcpy(CMSG_DATA(cmsg), fds, (size_t)count * sizeof(int));
    ssize_t sent;
    do
        sent = sendmsg(sock, &msg, MSG_NOSIGNAL);
    while (sent < 0 && errno == EINTR);
    if (sent < 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    Py_RETURN_NONE;
}

/* The descriptors (at most MAX_FDS) of one SCM_RIGHTS message on sock,
 * close-on-exec, into fds; their number, or -1 (errno EPROTO for a message
 * without any). */
static ssize_t receive_descriptors(int sock, int *fds)
{
    char byte;
    struct iovec iov = {.iov_base = &byte, .iov_len = 1};
    union {
        struct cmsghdr header;
        char space[CMSG_SPACE(MAX_FDS * sizeof(int))];
    } control;
    struct msghdr msg = {
        .msg_iov = &iov, .msg_iovlen = 1,
        .msg_control = control.space, .msg_controllen = sizeof(control.space),
    };
    ssize_t got;
    do
        got = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
    while (got < 0 && errno == EINTR);
    if (got < 0)
        return -1;
    struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
    size_t count = 0;
    if (cmsg != NULL && cmsg->cmsg_level == SOL_SOCKET && cmsg->cmsg_type == SCM_RIGHTS &&
        cmsg->cmsg_len >= CMSG_LEN(0)) {
        count = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        if (count > MAX_FDS)
            count = MAX_FDS;
        memcpy(fds, CMSG_DATA(cmsg), count * sizeof(int));
    }
    if (got == 0 || count == 0 || (msg.msg_flags & MSG_CTRUNC)) {
        for (size_t i = 0; i < count; i++)
            close(fds[i]);
        errno = EPROTO;
        return -1;
    }
    return (ssize_t)count;
}

static PyObject *
gate_pidfd_getfd(PyObject *self, PyObject *args)
{
    int pidfd, fd;
    if (!PyArg_ParseTuple(args, "ii:pidfd_getfd", &pidfd, &fd))
        return NULL;
    long got = syscall(SYS_pidfd_getfd, pidfd, fd, 0);
    if (got < 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    return PyLong_FromLong(got);
}

static PyObject *
gate_socket_option(PyObject *self, PyObject *args)
{
    int fd, level, name;
    union {
        int small;
        unsigned long long large; /* SO_COOKIE */
    } value = {0};
    socklen_t size = sizeof(value);
    if (!PyArg_ParseTuple(args, "iii:socket_option", &fd, &level, &name))
        return NULL;
    if (getsockopt(fd, level, name, &value, &size) != 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    if (size == sizeof(value.large))
        return PyLong_FromUnsignedLongLong(value.large);
    return PyLong_FromLong(value.small);
}

static PyObject *
gate_netlink_socket(PyObject *self, PyObject *args)
{
    int protocol;
    if (!PyArg_ParseTuple(args, "i:netlink_socket", &protocol))
        return NULL;
    int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, protocol);
    if (fd < 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    return PyLong_FromLong(fd);
}

static PyObject *
gate_open_in_root(PyObject *self, PyObject *args)
{
    int root, flags;
    const char *path;
    if (!PyArg_ParseTuple(args, "iyi:open_in_root", &root, &path, &flags))
        return NULL;
    struct open_how how = {
        .flags = (unsigned long long)(flags | O_CLOEXEC),
        .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
    };
    long fd = syscall(SYS_openat2, root, path, &how, sizeof(how));
    if (fd < 0)
        return PyErr_SetFromErrnoWithFilename(PyExc_OSError, path);
    return PyLong_FromLong(fd);
}

static PyObject *
gate_connect_unix(PyObject *self, PyObject *args)
{
    int fd;
    const char *path;
    Py_ssize_t length;
    if (!PyArg_ParseTuple(args, "iy#:connect_unix", &fd, &path, &length))
        return NULL;
    struct sockaddr_un address = {.sun_family = AF_UNIX};
    if (length <= 0 || (size_t)length >= sizeof(address.sun_path)) {
        errno = ENAMETOOLONG;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    memcpy(address.sun_path, path, (size_t)length);
    int result;
    Py_BEGIN_ALLOW_THREADS
    result = connect(fd, (struct sockaddr *)&address, sizeof(address));
    Py_END_ALLOW_THREADS
    if (result != 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    Py_RETURN_NONE;
}

/* bind() or connect() with an address exactly as the command passed it. */
static PyObject *
address_call(PyObject *args, const char *format, int bind_it)
{
    int fd;
    const char *raw;
    Py_ssize_t length;
    if (!PyArg_ParseTuple(args, format, &fd, &raw, &length))
        return NULL;
    struct sockaddr_storage address;
    if (length <= 0 || (size_t)length > sizeof(address)) {
        errno = EINVAL;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    memcpy(&address, raw, (size_t)length);
    int result;
    Py_BEGIN_ALLOW_THREADS
    result = bind_it ? bind(fd, (struct sockaddr *)&address, (socklen_t)length)
                     : connect(fd, (struct sockaddr *)&address, (socklen_t)length);
    Py_END_ALLOW_THREADS
    if (result != 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    Py_RETURN_NONE;
}

static PyObject *
gate_bind_address(PyObject *self, PyObject *args)
{
    return address_call(args, "iy#:bind_address", 1);
}

static PyObject *
gate_connect_address(PyObject *self, PyObject *args)
{
    return address_call(args, "iy#:connect_address", 0);
}

static PyObject *
gate_listen(PyObject *self, PyObject *args)
{
    int fd, backlog;
    if (!PyArg_ParseTuple(args, "ii:listen", &fd, &backlog))
        return NULL;
    if (listen(fd, backlog) != 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    Py_RETURN_NONE;
}

static PyObject *
gate_socket_name(PyObject *self, PyObject *args)
{
    int fd;
    if (!PyArg_ParseTuple(args, "i:socket_name", &fd))
        return NULL;
    struct sockaddr_storage address;
    socklen_t size = sizeof(address);
    if (getsockname(fd, (struct sockaddr *)&address, &size) != 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    return PyBytes_FromStringAndSize((const char *)&address,
                                     size < sizeof(address) ? size : sizeof(address));
}

/*
 * The write witness (see corral/sandbox/witness.py), in C because it runs
 * for every write a sandboxed command makes.  What a write does where it
 * lands:
 */
enum write_kind {
    CHANGE,  /* changes what exists (chmod, utimes, truncate, ...) */
    OPEN,    /* opens with flags that may write; with O_CREAT creates it if missing */
    CREATE,  /* creates it; it must not exist (mkdir, link, symlink, ...) */
    REMOVE,  /* removes it (unlink, rmdir, a rename's source) */
    REPLACE, /* creates it or replaces what is there (a rename's target) */
};
/* The NUL-terminated string at address in pid, read a page at a time. */
static int read_path(pid_t pid, unsigned long address, char *path, size_t size)
{
    size_t got = 0;
    while (got < size) {
        size_t page = 4096 - (address + got) % 4096;
        size_t want = page < size - got ? page : size - got;
        struct iovec local = {.iov_base = path + got, .iov_len = want};
        struct iovec remote = {.iov_base = (void *)(address + got), .iov_len = want};
        ssize_t n = syscall(SYS_process_vm_readv, pid, &local, 1, &remote, 1, 0);
        if (n <= 0)
            return -1;
        if (memchr(path + got, 0, (size_t)n) != NULL)
            return 0;
        got += (size_t)n;
    }
    return -1;
}

/* Reads size bytes at address in pid into into; 0 if all were read. */
static int read_memory(pid_t pid, unsigned long long address, void *into, size_t size)
{
    struct iovec local = {.iov_base = into, .iov_len = size};
    struct iovec remote = {.iov_base = (void *)(uintptr_t)address, .iov_len = size};
    return syscall(SYS_process_vm_readv, pid, &local, 1, &remote, 1, 0) == (ssize_t)size ? 0 : -1;
}

static int open_beneath(int root, const char *path, int follow)
{
    struct open_how how = {
        .flags = O_PATH | O_CLOEXEC | (follow ? 0 : O_NOFOLLOW),
        .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
    };
    while (*path == '/')
        path++;
    return (int)syscall(SYS_openat2, root, *path ? path : ".", &how, sizeof(how));
}

static int read_only_mount(int fd)
{
    struct statvfs status;
    return fstatvfs(fd, &status) == 0 && (status.f_flag & ST_RDONLY);
}

static int mount_id(int fd, unsigned long long *id)
{
    struct statx status;
    if (statx(fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, STATX_MNT_ID, &status) != 0 ||
        !(status.stx_mask & STATX_MNT_ID))
        return -1;
    *id = status.stx_mnt_id;
    return 0;
}

/*
 * The server: a thread of its own that takes every notification of a run's
 * seccomp listener, so that a write waits for a few system calls in C, not
 * for corral's Python loop to wake up (a notification answered there costs
 * the command some 80 microseconds on a small VM; here about 10).
 * The server first takes the listener from source, the Unix socket it comes
 * over (SCM_RIGHTS) with whatever else the sender adds, and reports them all
 * as "F", their number (uint8) and each descriptor (int32): the server
 * starts before the command, whose first exec, notified, waits for it.
 *
 * A write call (one of operands) is looked at (refusal, below) and answered
 * at once with CONTINUE: the kernel's own checks decide.  A suspect write is
 * reported on the returned descriptor (a pipe) as a message "W", the call's
 * number (int32), the errno the sandbox gives it (int32), the path's length
 * (uint16) and the path, as the command sees it.  A call in refused (the
 * privileged calls the sandbox refuses, and the socket calls it refuses, by
 * number; and as (number, argument, own) a call refused only where that
 * argument names an owner other than own or -1: a chown to another user) is
 * answered EPERM and reported as "P", its number (int32) and the low 32 bits
 * of its first two arguments (uint32 each: a socket's family and type).
 * observed are the numbers of sendto, sendmsg, sendmmsg, bind, kill,
 * pidfd_open, pidfd_send_signal, (rt_sigqueueinfo, tkill, tgkill,
 * rt_tgsigqueueinfo), setpriority, setrlimit and prlimit64 (or -1), each
 * let through.  A bind of a Unix socket to a
 * path the sandbox refuses to create is reported as a write ("W", as
 * above); one of an inet socket to a port below 1024, as "B" and the port
 * (uint16).  The address each
 * message of a send on an inet datagram socket names, if it is beyond
 * loopback (which the run's own network namespace cannot reach), is
 * reported as "S", the call (uint8: 0 sendmsg, 1 sendmmsg, 2 sendto), its
 * length (uint8) and the struct sockaddr.  The first send to each loopback port is passed on unanswered
 * as "L", the struct seccomp_notif, then as "S" without its "S": whether
 * the host serves that port is asked while the call waits.  An exec
 * (action ACT_EXEC) of a program that would gain a privilege outside the
 * sandbox is reported as "X", the path's length (uint16) and the path.
 * A mknod (action ACT_MKNOD) of a device node, which the kernel refuses
 * every process without CAP_MKNOD, as every sandboxed one is, is reported
 * as "D", the path's length (uint16) and the path, where nothing else
 * would refuse it first.  A setpriority, setrlimit or prlimit64 (observed)
 * the kernel will refuse for want of CAP_SYS_NICE or CAP_SYS_RESOURCE is
 * reported as "C" (see look_at_limit).  A call in guarded ((number,
 * GUARD_*) pairs) that would change a process outside the run is refused
 * and reported as "O" (see refuse_another).  A System V IPC call (one of
 * sysv: corral's watchdog pipe or -1, the prefix of the run's POSIX
 * message queues' names, and (number, SYSV_* or POSIX_MQ kind, SYSV_*
 * role) triples) is answered so that the run has objects of its own only
 * (see look_at_sysv and look_at_queue), each System V one announced to
 * the watchdog; a key the host
 * holds, which the run then cannot create, is reported as "Y", the kind
 * (uint8) and the key (int32).  A call on a name beneath /dev/shm (shm:
 * the directory the run's are in, and the calls) is carried out there,
 * and so is an open of a pseudo-terminal or of a /proc file of the run's
 * own (see redirect), and, where truncate is its number (else -1), each
 * truncate of a path, and each read-only open that truncates, is answered
 * here (see truncate_for).
 * A kill that would reach a process, or a process group, outside the run
 * and none of the run's is reported as "K", the pid, or the group's as a
 * negative number (int32), and the call's number (int32: a kill, an
 * rt_sigqueueinfo; under init_answers a pidfd_open, which Landlock lets
 * through; without, a pidfd_send_signal) (see look_at_kill); with
 * init_answers, source is a socket the sandbox's PID 1 answers on, which
 * tells the two apart in a PID namespace of the run's own.  Any other
 * notification (the socket gate's) is passed on unanswered as "N" and the
 * struct seccomp_notif.  Each message is one write
 * of at most PIPE_BUF bytes, so a read of the pipe returns whole messages.
 * The pipe ends (EOF) when the listener does: no process is left under the
 * filter.
 *
 * writable is None where the sandbox refuses writes with read-only mounts
 * (bwrap, EROFS): a write is refused if the mount it lands on is read-only,
 * or if it removes a mount point (EBUSY).  Otherwise it is the real paths
 * of Landlock's rules (EACCES beneath none of them).  Creating over a
 * socket (ENXIO, EEXIST) is reported too: a protected path's placeholder,
 * or not, as the caller knows; and, with ENOENT, an open for writing of a
 * device the host has and the sandbox's own /dev lacks.  operands are (number, directory argument or
 * -1, path argument or -1 for a call on a descriptor (the directory
 * argument then), action, flags argument or NO_FLAGS, CREAT_FLAGS,
 * OPEN_HOW_FLAGS; for ACT_MKNOD, the mode argument, the device's next),
 * sorted by number.
 */
struct operand {
    int number, dir_arg, path_arg, action, flags_arg;
};
/* An operand's action, and its flags_arg when it has no flags argument. */
enum { ACT_OPEN, ACT_CHANGE, ACT_LCHANGE, ACT_CREATE, ACT_REMOVE, ACT_REPLACE, ACT_EXEC,
       ACT_MKNOD };
enum { NO_FLAGS = -1, CREAT_FLAGS = -2, OPEN_HOW_FLAGS = -3 };

/* A call refused: always (arg -1), or where its argument arg names an
 * owner other than own and -1 (chown to another user). */
struct refusal {
    int number, arg;
    unsigned int own;
};

/* A call that changes a process named by its first argument (GUARD_PID),
 * or by its first two, which kind of target and which one, as setpriority
 * (PRIO_PROCESS 0, PRIO_PGRP 1, PRIO_USER 2) or ioprio_set numbers them
 * (one more each).  Where Landlock cannot scope signals (see guard_signal),
 * a call that sends one: to a pid, a process group or every process
 * (GUARD_KILL), to the pid or thread of its first argument (GUARD_TARGET:
 * tkill, rt_sigqueueinfo) or of its second (GUARD_THREAD: tgkill,
 * rt_tgsigqueueinfo), by a descriptor (GUARD_PIDFD); or that names where
 * SIGIO and SIGURG go (GUARD_FCNTL: F_SETOWN, F_SETOWN_EX; GUARD_IOCTL:
 * FIOSETOWN, SIOCSPGRP). */
enum { GUARD_PID, GUARD_PRIO, GUARD_IOPRIO, GUARD_KILL, GUARD_TARGET, GUARD_THREAD,
       GUARD_PIDFD, GUARD_FCNTL, GUARD_IOCTL, GUARD_SETSID };
#define MAX_GUARDED 16
struct guard {
    int number, style;
};

/* A session of the run's (see session_held): its id, the process it is
 * anchored on (first the one whose pid that is, which made it or tried to:
 * GUARD_SETSID, a setsid, is let through before it is known whether it
 * failed), a pidfd of that process, whether the server watches it end,
 * and whether it is announced to corral's watchdog (see announce_session). */
#define MAX_SESSIONS 64
struct session {
    pid_t id, anchor;
    int fd, watched, announced;
};

/*
 * System V IPC where the run has no IPC namespace of its own (Landlock).
 * The kernel would let the command reach the host's objects by key, by id,
 * or by index (the *_STAT commands), and keep what the run made after it
 * ends.  So each of these calls comes to the server, which makes the run's
 * objects itself, as the command would have (Landlock changes no
 * credential: the same user and groups), and keeps their ids.  A call on an
 * object goes through (CONTINUE) for one of those only; any other is
 * answered as an IPC namespace of the run's own would answer it: EINVAL
 * for an id it does not have, ENOENT for a key.  Once no process is left
 * under the filter, what the run made is removed; should corral be killed
 * first, its watchdog removes them, as each is announced to it.  Ids are not given out
 * again until their slot's sequence number wraps (after some 65536 objects
 * made in that slot), so a kept id of an object the run removed names no
 * other object meanwhile.
 */
enum { SYSV_SHM, SYSV_SEM, SYSV_MSG, POSIX_MQ }; /* a call's kind */
enum { SYSV_GET, SYSV_USE, SYSV_CONTROL };      /* shmget, shmat, shmctl ... */
#define MAX_SYSV_CALLS 16
struct sysv_call {
    int number, kind, role;
};
struct ipc_object {
    int kind, id; /* a POSIX message queue's id is -1 */
    key_t key; /* IPC_PRIVATE once another object of the run's took it over */
    char *name; /* a POSIX message queue's, as the server made it (NULL for the others) */
};

/*
 * POSIX shared memory and named semaphores where the sandbox shows the
 * host's /dev/shm, read-only (Landlock).  shm_open, sem_open and their
 * unlinks open, link, rename and remove names directly beneath /dev/shm:
 * each such call (shm: (number, SHM_* role, its directory and path
 * arguments, those of its second path or -1, its flags argument or a
 * *_FLAGS code)) is carried out by the server on a name in a directory of
 * the run's session instead (shm_dir), and answered with its result, an
 * opened file handed over as the command's new descriptor
 * (SECCOMP_ADDFD_FLAG_SEND: Linux 5.14; Landlock's backend needs 6.7).
 * Only what the server made there is opened: no symlink is followed, and a
 * file of another owner (a hard link the command put there itself) is
 * refused.  A link or rename between /dev/shm and elsewhere is refused as
 * the kernel refuses one across filesystems (EXDEV).  A read-only open, a
 * listing or a stat is not notified, and sees the host's /dev/shm, whose
 * files the sandbox keeps unreadable (Landlock's backend).
 */
enum { SHM_OPEN, SHM_UNLINK, SHM_LINK, SHM_RENAME };
#define MAX_SHM_CALLS 12
struct shm_call {
    int number, role, dir_arg, path_arg, dir2_arg, path2_arg, flags_arg;
};

/* A pseudo-terminal opened for the run: a duplicate of its master is kept so
 * that its number stays the run's, for the last MAX_TERMINALS of them
 * (each holds one of the kernel's kernel.pty.max). */
#define MAX_TERMINALS 64
struct terminal {
    int number, master;
};

struct server {
    pthread_t thread;
    int listener, root, stop, report;
    int end; /* asks for the run's sessions to be ended (see end_sessions) */
    char **writable;           /* NULL-terminated real paths, or NULL (read-only mounts) */
    struct operand *operands;
    size_t count;
    struct refusal *refused;
    size_t refused_count;
    int sendto, sendmsg, sendmmsg, bind, kill, pidfd_open, pidfd_signal, setpriority, setrlimit,
        prlimit64;
    int to_a_pid[4]; /* rt_sigqueueinfo, tkill, tgkill, rt_tgsigqueueinfo: a pid first */
    struct guard guarded[MAX_GUARDED];
    size_t guarded_count;
    struct sysv_call sysv[MAX_SYSV_CALLS];
    size_t sysv_count;
    struct ipc_object *objects; /* the run's System V IPC objects and POSIX message queues */
    size_t object_count, object_room;
    int watchdog; /* where each is announced, or -1 (see watchdog_pipe in _containment.py) */
    char queue_prefix[64]; /* what the names of the run's POSIX message queues start with */
    int shm_dir; /* where the run's /dev/shm names are, or -1 (not the server's to close) */
    struct shm_call shm[MAX_SHM_CALLS];
    size_t shm_count;
    struct terminal terminals[MAX_TERMINALS]; /* the last pseudo-terminals opened for the run */
    size_t terminal_count; /* how many were, in all */
    int source; /* where the listener comes from (not the server's to close) */
    int init; /* source, where the sandbox's PID 1 answers, or -1 */
    int last_known; /* the highest last pid it answered: the namespace's last only grows */
    int reported[8]; /* the pids of the last "K"s: a loop of kills is reported once */
    unsigned int reports;
    int init_answers; /* whether the run has a PID namespace whose PID 1 answers on init */
    int own_filters; /* without (Landlock), the seccomp filters corral's thread has, or -1 */
    int last_inside; /* the pid last found to be the run's, under Landlock: a loop of kills */
    int run_cgroup; /* whether the run has a cgroup of its own (set before it starts) */
    int truncate; /* the number of truncate, where the server makes each (see truncate_for) */
    struct session sessions[MAX_SESSIONS]; /* the run's, whose leaders live or lived lately */
    size_t session_count;
    unsigned char looked[65536 / 8]; /* the loopback ports a send was passed on for */
};

static int under(const char *real, char **writable)
{
    for (char **base = writable; *base; base++) {
        size_t length = strlen(*base);
        while (length > 1 && (*base)[length - 1] == '/')
            length--;
        if (strncmp(real, *base, length) == 0 &&
            (real[length] == 0 || real[length] == '/' || length == 1))
            return 1;
    }
    return 0;
}

/* The path of the object open at fd, as this process sees it. */
static int shown(int fd, char *path, size_t size)
{
    char link[64];
    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, size - 1);
    if (n <= 0 || path[0] != '/')
        return -1;
    path[n] = 0;
    return 0;
}

static int landed_refused(int fd, char **writable)
{
    char real[PATH_MAX];
    if (writable == NULL)
        return read_only_mount(fd);
    return shown(fd, real, sizeof(real)) == 0 && !under(real, writable);
}

/*
 * Whether full names, in the sandbox's /dev (bwrap makes a minimal one),
 * nothing, with no symlink on the way (/dev/stdout and /dev/fd lead through
 * the run's /proc, where this thread is no process), while in this
 * process's own view, the host's, it is a device this process may open for
 * writing (magic links not followed): a command that opens it for writing
 * gets ENOENT (or, with O_CREAT, a plain file) because of the sandbox.
 */
static int missing_device(const struct server *server, const char *full)
{
    if (strncmp(full, "/dev/", 5) != 0 || strstr(full, "/../") != NULL)
        return 0;
    struct open_how inside = {
        .flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS,
    };
    int found = (int)syscall(SYS_openat2, server->root, full + 1, &inside, sizeof(inside));
    if (found >= 0 || errno != ENOENT) {
        if (found >= 0)
            close(found);
        return 0;
    }
    struct open_how outside = {.flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_NO_MAGICLINKS};
    int device = (int)syscall(SYS_openat2, AT_FDCWD, full, &outside, sizeof(outside));
    if (device < 0)
        return 0;
    struct stat status;
    char link[64];
    snprintf(link, sizeof(link), "/proc/self/fd/%d", device);
    int usable = fstat(device, &status) == 0 &&
                 (S_ISCHR(status.st_mode) || S_ISBLK(status.st_mode)) &&
                 access(link, W_OK) == 0;
    close(device);
    return usable;
}

/*
 * Whether an open with flags of target, which exists, writes to it where
 * the sandbox could refuse that: write access, or O_TRUNC of a regular file.
 * O_CREAT alone creates nothing that exists, and with O_EXCL it fails
 * (EEXIST); a directory is opened for writing only to make an O_TMPFILE in
 * it (else EISDIR), a symlink not followed never (ELOOP).  With
 * read_only_mounts (bwrap, EROFS) a FIFO, socket or device is never
 * refused: a read-only mount refuses writes only to what is stored on it;
 * Landlock refuses them like any other file.  (The access mode O_ACCMODE
 * itself asks for no access: ioctls only.)
 */
static int open_writes(int target, int flags, int read_only_mounts)
{
    struct stat status;
    int access = flags & O_ACCMODE;
    int writing = access == O_WRONLY || access == O_RDWR;
    if ((flags & (O_CREAT | O_EXCL)) == (O_CREAT | O_EXCL) || fstat(target, &status) != 0)
        return 0;
    if (S_ISREG(status.st_mode))
        return writing || (flags & O_TRUNC);
    if (S_ISDIR(status.st_mode))
        return writing && (flags & (O_TMPFILE | O_CREAT)) == O_TMPFILE;
    return writing && !read_only_mounts && !S_ISLNK(status.st_mode);
}

/*
 * Whether a write of kind to full (absolute in the command's view) is one
 * the sandbox refuses: 0 if not, else the errno the command gets, with the
 * path it concerns in found.  flags are an OPEN's.
 */
static int refusal(const struct server *server, const char *full, enum write_kind kind,
                   int flags, int follow, char *found, size_t size)
{
    char parent_path[PATH_MAX];
    size_t length = strlen(full);
    if (length >= PATH_MAX)
        return 0; /* the kernel refuses it (ENAMETOOLONG) */
    while (length > 1 && full[length - 1] == '/')
        length--;
    const char *slash = full + length;
    while (slash > full && slash[-1] != '/')
        slash--;
    size_t name = (size_t)(full + length - slash);
    if (name == 0 || (name == 1 && slash[0] == '.') ||
        (name == 2 && slash[0] == '.' && slash[1] == '.'))
        return 0; /* "/", "." and ".." are never created or removed */
    memcpy(parent_path, full, (size_t)(slash - full));
    parent_path[slash - full] = 0;
    int refused_with = server->writable == NULL ? EROFS : EACCES;

    int target = open_beneath(server->root, full, follow);
    int result = 0;
    if (target >= 0) {
        struct stat status;
        int socket = fstat(target, &status) == 0 && S_ISSOCK(status.st_mode);
        int creates = kind == CREATE || (kind == OPEN && (flags & O_CREAT));
        if (creates && socket)
            result = kind == CREATE ? EEXIST : ENXIO; /* a placeholder? the caller knows */
        else if (kind == CHANGE ||
                 (kind == OPEN && open_writes(target, flags, server->writable == NULL)))
            result = landed_refused(target, server->writable) ? refused_with : 0;
        else if (kind == REMOVE || kind == REPLACE) {
            int parent = open_beneath(server->root, parent_path, 1);
            unsigned long long here, above;
            if (parent < 0)
                result = 0;
            else if (server->writable == NULL && mount_id(target, &here) == 0 &&
                     mount_id(parent, &above) == 0 && here != above)
                result = EBUSY; /* a mount point of the sandbox's */
            else if (landed_refused(parent, server->writable)) {
                char directory[PATH_MAX];
                result = refused_with;
                if (shown(parent, directory, sizeof(directory)) == 0)
                    snprintf(found, size, "%s/%.*s", strcmp(directory, "/") ? directory : "",
                             (int)name, slash);
                else
                    snprintf(found, size, "%s", full);
                close(parent);
                close(target);
                return result;
            }
            if (parent >= 0)
                close(parent);
        }
        if (result && shown(target, found, size) != 0)
            snprintf(found, size, "%s", full);
        close(target);
        return result;
    }
    if (errno == ENOENT && (kind == CHANGE || kind == OPEN) && server->writable == NULL &&
        missing_device(server, full)) {
        snprintf(found, size, "%s", full);
        return ENOENT;
    }
    if (errno != ENOENT || kind == CHANGE || kind == REMOVE || (kind == OPEN && !(flags & O_CREAT)))
        return 0; /* nothing there: ENOENT, the command's own */
    int parent = open_beneath(server->root, parent_path, 1);
    if (parent < 0)
        return 0;
    if (landed_refused(parent, server->writable)) {
        char directory[PATH_MAX];
        result = refused_with;
        if (shown(parent, directory, sizeof(directory)) == 0)
            snprintf(found, size, "%s/%.*s", strcmp(directory, "/") ? directory : "", (int)name,
                     slash);
        else
            snprintf(found, size, "%s", full);
    }
    close(parent);
    return result;
}

/* path, as pid names it relative to dirfd (AT_FDCWD: its working
 * directory), made absolute in full; -1 if its directory is gone. */
static int absolute_path(pid_t pid, int dirfd, const char *path, char *full, size_t size)
{
    if (path[0] == '/') {
        snprintf(full, size, "%s", path);
        return 0;
    }
    char link[64], base[PATH_MAX];
    if (dirfd == AT_FDCWD)
        snprintf(link, sizeof(link), "/proc/%d/cwd", pid);
    else
        snprintf(link, sizeof(link), "/proc/%d/fd/%d", pid, dirfd);
    ssize_t n = readlink(link, base, sizeof(base) - 1);
    if (n <= 0 || base[0] != '/')
        return -1;
    base[n] = 0;
    if (n >= 10 && strcmp(base + n - 10, " (deleted)") == 0)
        return -1;
    snprintf(full, size, "%s/%s", n == 1 ? "" : base, path);
    return 0;
}

/* The last path operand_path found, by the notification and the arguments
 * it came from: redirect and the write witness look at the same one, which
 * is read and made absolute once (per server thread). */
static __thread struct {
    __u64 id;
    int dirfd, found;
    unsigned long long address;
    char full[2 * PATH_MAX + 2];
} last_operand = {.found = -2};

/* The absolute path, in the caller's view, a write operand of notif names
 * (relative to dirfd, at address); -1 if none. */
static int operand_path(const struct seccomp_notif *notif, int dirfd, unsigned long long address,
                        char *full, size_t size)
{
    if (last_operand.found == -2 || last_operand.id != notif->id ||
        last_operand.dirfd != dirfd || last_operand.address != address) {
        char path[PATH_MAX];
        pid_t pid = (pid_t)notif->pid;
        last_operand.id = notif->id;
        last_operand.dirfd = dirfd;
        last_operand.address = address;
        if (address == 0 || read_path(pid, (unsigned long)address, path, sizeof(path)) != 0 ||
            path[0] == 0)
            last_operand.found = -1; /* unreadable, or empty (AT_EMPTY_PATH): nothing to vouch for */
        else
            last_operand.found = absolute_path(pid, dirfd, path, last_operand.full,
                                               sizeof(last_operand.full));
    }
    if (last_operand.found == 0)
        snprintf(full, size, "%s", last_operand.full);
    return last_operand.found;
}

/* The file pid has open at fd itself, as an O_PATH descriptor; -1 if none. */
static int open_caller_fd(pid_t pid, int fd)
{
    char link[64];
    snprintf(link, sizeof(link), "/proc/%d/fd/%d", pid, fd);
    return open(link, O_PATH | O_CLOEXEC);
}

/* Whether a change to what pid has open at fd is refused (the errno, and
 * its path in found), for the calls that name a descriptor, not a path. */
static int fd_refusal(const struct server *server, pid_t pid, int fd, char *found, size_t size)
{
    int target = open_caller_fd(pid, fd);
    if (target < 0)
        return 0;
    int result = 0;
    if (landed_refused(target, server->writable) && shown(target, found, size) == 0)
        result = server->writable == NULL ? EROFS : EACCES;
    close(target);
    return result;
}

/* Answers the notification: value, or error (an errno) if not 0. */
static void respond(const struct server *server, const struct seccomp_notif *notif, int value,
                    int error)
{
    struct seccomp_notif_resp response = {.id = notif->id, .val = value, .error = -error};
    (void)ioctl(server->listener, SECCOMP_IOCTL_NOTIF_SEND, &response); /* ENOENT: gone */
}

/* Lets the kernel carry out the notified call (its own checks decide). */
static void let_through(const struct server *server, const struct seccomp_notif *notif)
{
    struct seccomp_notif_resp response = {
        .id = notif->id, .flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE,
    };
    (void)ioctl(server->listener, SECCOMP_IOCTL_NOTIF_SEND, &response); /* ENOENT: gone */
}

/* The row of a call table (count structs of row_size, each an int row whose
 * first is a call's number) for number, or NULL. */
static const void *find_call(const void *table, size_t count, size_t row_size, int number)
{
    const char *row = table;
    for (size_t i = 0; i < count; i++, row += row_size) {
        if (*(const int *)row == number)
            return row;
    }
    return NULL;
}

/* Whether the notification still waits: until it is answered, its pid is its caller's. */
static int still_waiting(const struct server *server, const struct seccomp_notif *notif)
{
    __u64 id = notif->id;
    return ioctl(server->listener, SECCOMP_IOCTL_NOTIF_ID_VALID, &id) == 0;
}

/* Reports a message of head (its letter and fixed fields), then the
 * length of path (uint16) and path, in one write. */
static void report_path(struct server *server, const char *head, size_t head_length,
                        const char *path)
{
    char message[PIPE_BUF];
    size_t length = strlen(path);
    if (length > sizeof(message) - head_length - 2)
        return; /* too long to report in one message */
    unsigned short size = (unsigned short)length;
    memcpy(message, head, head_length);
    memcpy(message + head_length, &size, 2);
    memcpy(message + head_length + 2, path, length);
    (void)!write(server->report, message, head_length + 2 + length);
}

/* Reports a refused write: "W", as serve describes it. */
static void report_write(struct server *server, int number, int error, const char *found)
{
    char head[9] = {'W'};
    memcpy(head + 1, &number, 4);
    memcpy(head + 5, &error, 4);
    report_path(server, head, sizeof(head), found);
}

#define O_WRITING (O_WRONLY | O_RDWR | O_CREAT | O_TRUNC)

/*
 * Whether the program open at fd would gain a privilege when run, outside
 * a sandbox: set-user-ID to another user, set-group-ID to a group this
 * process is not in, or file capabilities.  Under no_new_privs (and on the
 * sandbox's nosuid mounts) it runs without it.
 */
static int privileged_program(int fd)
{
    struct stat status;
    if (fstat(fd, &status) != 0 || !S_ISREG(status.st_mode) ||
        !(status.st_mode & (S_IXUSR | S_IXGRP | S_IXOTH)))
        return 0;
    if ((status.st_mode & S_ISUID) && status.st_uid != geteuid())
        return 1;
    if ((status.st_mode & S_ISGID) && (status.st_mode & S_IXGRP) &&
        status.st_gid != getegid()) {
        int size = getgroups(0, NULL);
        gid_t *groups = size > 0 ? malloc((size_t)size * sizeof(gid_t)) : NULL;
        int count = size <= 0 ? size : groups != NULL ? getgroups(size, groups) : -1;
        int member = count < 0; /* not known (or changed meanwhile): say nothing */
        for (int i = 0; i < count && !member; i++)
            member = groups[i] == status.st_gid;
        free(groups);
        if (!member)
            return 1;
    }
    char link[64];
    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    return getxattr(link, "security.capability", NULL, 0) > 0;
}

/* Reports a privileged program being run ("X", as serve describes it). */
static void look_at_exec(struct server *server, const struct seccomp_notif *notif,
                         const struct operand *op)
{
    int dirfd = op->dir_arg < 0 ? AT_FDCWD : (int)(notif->data.args[op->dir_arg] & 0xFFFFFFFFu);
    int flags = op->flags_arg < 0 ? 0 : (int)(notif->data.args[op->flags_arg] & 0xFFFFFFFFu);
    char full[2 * PATH_MAX + 2], found[PATH_MAX + 1];
    int program;
    if (operand_path(notif, dirfd, notif->data.args[op->path_arg], full, sizeof(full)) == 0) {
        program = open_beneath(server->root, full, !(flags & AT_SYMLINK_NOFOLLOW));
    } else if (dirfd != AT_FDCWD && (flags & AT_EMPTY_PATH)) {
        program = open_caller_fd((pid_t)notif->pid, dirfd); /* fexecve */
    } else {
        return;
    }
    if (program < 0)
        return;
    int privileged = privileged_program(program) && shown(program, found, sizeof(found)) == 0;
    close(program);
    if (privileged && still_waiting(server, notif))
        report_path(server, "X", 1, found);
}

/* Whether mknod's mode and dev make a device node, which takes CAP_MKNOD:
 * a character or block device, bar the character device 0:0 (an overlay
 * filesystem's whiteout), which needs no capability. */
static int device_node(unsigned int mode, unsigned long long dev)
{
    return S_ISBLK(mode) || (S_ISCHR(mode) && (dev & 0xFFFFFFFFu) != 0);
}

/* Whether full names nothing, in a directory that exists: a mknod there
 * fails neither with EEXIST nor with ENOENT. */
static int creatable(const struct server *server, const char *full)
{
    int target = open_beneath(server->root, full, 0);
    if (target >= 0 || errno != ENOENT) {
        if (target >= 0)
            close(target);
        return 0;
    }
    char parent[PATH_MAX];
    const char *slash = strrchr(full, '/');
    if (slash == NULL || slash[1] == 0 || (size_t)(slash - full) >= sizeof(parent))
        return 0;
    memcpy(parent, full, (size_t)(slash - full));
    parent[slash - full] = 0;
    int directory = open_beneath(server->root, parent, 1);
    if (directory < 0)
        return 0;
    struct stat status;
    int found = fstat(directory, &status) == 0 && S_ISDIR(status.st_mode);
    close(directory);
    return found;
}

static void look_at(struct server *server, const struct seccomp_notif *notif,
                    const struct operand *op)
{
    if (op->action == ACT_EXEC) {
        look_at_exec(server, notif, op);
        return;
    }
    unsigned long long flags = 0;
    if (op->flags_arg == CREAT_FLAGS) {
        flags = O_CREAT | O_WRONLY;
    } else if (op->flags_arg == OPEN_HOW_FLAGS) {
        if (read_memory((pid_t)notif->pid, notif->data.args[2], &flags, sizeof(flags)) != 0)
            return;
    } else if (op->flags_arg >= 0) {
        flags = notif->data.args[op->flags_arg] & 0xFFFFFFFFu;
    }
    enum write_kind kind;
    int follow = 0;
    switch (op->action) {
    case ACT_OPEN:
        if (!(flags & O_WRITING) || (flags & O_PATH))
            return; /* O_PATH drops every flag that writes */
        kind = OPEN;
        follow = !(flags & O_NOFOLLOW) && (flags & (O_CREAT | O_EXCL)) != (O_CREAT | O_EXCL);
        break;
    case ACT_CHANGE:
        kind = CHANGE;
        follow = !(flags & AT_SYMLINK_NOFOLLOW);
        break;
    case ACT_LCHANGE:
        kind = CHANGE;
        break;
    case ACT_CREATE:
    case ACT_MKNOD:
        kind = CREATE;
        break;
    case ACT_REMOVE:
        kind = REMOVE;
        break;
    default:
        kind = REPLACE;
    }
    int dirfd = op->dir_arg < 0 ? AT_FDCWD : (int)(notif->data.args[op->dir_arg] & 0xFFFFFFFFu);
    char full[2 * PATH_MAX + 2], found[PATH_MAX + 1];
    int error;
    if (op->path_arg < 0 || (kind == CHANGE && notif->data.args[op->path_arg] == 0 &&
                             dirfd != AT_FDCWD)) {
        /* fchmod and the like, or utimensat(fd, NULL): what fd is open on */
        error = fd_refusal(server, (pid_t)notif->pid, dirfd, found, sizeof(found));
    } else {
        if (operand_path(notif, dirfd, notif->data.args[op->path_arg], full, sizeof(full)) != 0)
            return;
        error = refusal(server, full, kind, (int)flags, follow, found, sizeof(found));
        if (error == 0 && op->action == ACT_MKNOD &&
            device_node((unsigned int)flags, notif->data.args[op->flags_arg + 1]) &&
            creatable(server, full) && still_waiting(server, notif)) {
            report_path(server, "D", 1, full);
            return;
        }
    }
    if (error == 0 || !still_waiting(server, notif))
        return; /* nothing refused, or what was read may be another process's */
    report_write(server, op->number, error, found);
}


/* The rest of the line of the file at path that begins with key (without
 * its newline), in value; -1 if the file has no such line.  Read line by
 * line: in a process's status a long list of groups may come first. */
static int proc_field(const char *path, const char *key, char *value, size_t size)
{
    FILE *file = fopen(path, "re");
    if (file == NULL)
        return -1;
    char *line = NULL;
    size_t allocated = 0;
    size_t length = strlen(key);
    int found = -1;
    while (found < 0 && getline(&line, &allocated, file) > 0) {
        if (strncmp(line, key, length) == 0) {
            snprintf(value, size, "%s", line + length);
            value[strcspn(value, "\n")] = 0;
            found = 0;
        }
    }
    free(line);
    fclose(file);
    return found;
}

/* The process (thread group) the thread tid belongs to, or 0 if none. */
static pid_t process_of(pid_t tid)
{
    char path[64], value[32];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)tid);
    return proc_field(path, "Tgid:", value, sizeof(value)) == 0 ? (pid_t)atoi(value) : 0;
}

/* Whether who names pid itself: 0, or its pid in its own PID namespace
 * (the last of the NSpid line of its status). */
static int names_itself(pid_t pid, int who)
{
    if (who == 0)
        return 1;
    char path[64], pids[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    if (proc_field(path, "NSpid:", pids, sizeof(pids)) != 0)
        return 0;
    const char *last = strrchr(pids, '\t');
    return last != NULL && atoi(last + 1) == who;
}

/* One limit of /proc/<pid>/limits (its soft or hard column): its value, or
 * RLIM_INFINITY for "unlimited". */
static rlim_t limit_column(const char *line, size_t column)
{
    if (strlen(line) <= column)
        return RLIM_INFINITY;
    return strncmp(line + column, "unlimited", 9) == 0 ? RLIM_INFINITY
                                                      : (rlim_t)strtoull(line + column, NULL, 10);
}

/* The nice value, RLIMIT_NICE and the limits of resource of the process
 * directory process ("/proc/<pid>", or one in a sandbox's own /proc); 0, or
 * -1 if they cannot be read. */
static int process_limits(const char *process, int *nice, rlim_t *nice_limit, int resource,
                          struct rlimit *limits)
{
    char path[PATH_MAX], line[256];
    snprintf(path, sizeof(path), "%s/stat", process);
    FILE *file = fopen(path, "re");
    if (file == NULL)
        return -1;
    char stat[1024];
    size_t n = fread(stat, 1, sizeof(stat) - 1, file);
    fclose(file);
    stat[n] = 0;
    const char *field = strrchr(stat, ')');
    for (int i = 0; field != NULL && i < 17; i++) /* to the 19th field, the nice value */
        field = strchr(field + 1, ' ');
    if (field == NULL)
        return -1;
    *nice = atoi(field + 1);
    snprintf(path, sizeof(path), "%s/limits", process);
    if ((file = fopen(path, "re")) == NULL)
        return -1;
    /* A header, then one line per resource, in their order: the name (25
     * characters and a space), the soft limit and the hard (20 and one). */
    for (int i = -1; fgets(line, sizeof(line), file) != NULL; i++) {
        if (i == RLIMIT_NICE)
            *nice_limit = limit_column(line, 26);
        if (i == resource) {
            limits->rlim_cur = limit_column(line, 26);
            limits->rlim_max = limit_column(line, 47);
        }
    }
    fclose(file);
    return 0;
}

/*
 * A setpriority that lowers a process's nice value, or a setrlimit or
 * prlimit64 that raises one of its hard limits, beyond what the kernel
 * lets a process without CAP_SYS_NICE or CAP_SYS_RESOURCE (as every
 * sandboxed one is): the kernel refuses it (EACCES, EPERM), and it is
 * reported as "C", the call's number (int32), the nice value asked for or
 * the resource (int32) and the hard limit asked for (uint64, 0 for a nice
 * value).  The process is the caller itself (who or pid 0, or its own pid)
 * or another of the run's, which its /proc shows (the sandbox's own, under
 * bwrap: /proc/<pid>/root/proc); one outside the run the kernel refuses
 * for want of a process (a PID namespace of the run's own) or the gate
 * (see refuse_another).
 */
static void look_at_limit(struct server *server, const struct seccomp_notif *notif)
{
    pid_t pid = (pid_t)notif->pid;
    int prio = notif->data.nr == server->setpriority, own = notif->data.nr == server->setrlimit;
    if (prio && (int)notif->data.args[0] != PRIO_PROCESS)
        return;
    int who = own ? 0 : (int)(notif->data.args[prio ? 1 : 0] & 0xFFFFFFFFu);
    char process[64];
    if (names_itself(pid, who))
        snprintf(process, sizeof(process), "/proc/%d", (int)pid);
    else if (who > 0)
        snprintf(process, sizeof(process), "/proc/%d/root/proc/%d", (int)pid, who);
    else
        return;
    int value, nice;
    rlim_t nice_limit = 0;
    unsigned long long limit = 0;
    if (prio) {
        value = (int)notif->data.args[2];
        value = value < -20 ? -20 : value > 19 ? 19 : value; /* as the kernel clamps it */
        struct rlimit unused;
        if (process_limits(process, &nice, &nice_limit, RLIMIT_NICE, &unused) != 0)
            return;
        /* RLIMIT_NICE lets a process go down to 20 - its value. */
        if (value >= nice || (rlim_t)(20 - value) <= nice_limit)
            return;
    } else {
        unsigned int resource = (unsigned int)notif->data.args[own ? 0 : 1];
        unsigned long long address = notif->data.args[own ? 1 : 2];
        struct rlimit wanted, current;
        if (address == 0 || resource >= RLIM_NLIMITS ||
            read_memory(pid, address, &wanted, sizeof(wanted)) != 0 ||
            process_limits(process, &nice, &nice_limit, (int)resource, &current) != 0)
            return;
        if (wanted.rlim_cur > wanted.rlim_max || wanted.rlim_max <= current.rlim_max)
            return; /* EINVAL, or no hard limit raised */
        value = (int)resource;
        limit = wanted.rlim_max;
    }
    if (!still_waiting(server, notif))
        return; /* what was read may be another process's */
    char message[17] = {'C'};
    memcpy(message + 1, &notif->data.nr, 4);
    memcpy(message + 5, &value, 4);
    memcpy(message + 9, &limit, 8);
    (void)!write(server->report, message, sizeof(message));
}

/* Whether the inet address raw (length bytes) is beyond loopback: neither a
 * loopback nor a wildcard address, IPv4 or IPv4-mapped. */
static int beyond_loopback(const unsigned char *raw, size_t length)
{
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static const unsigned char zero[16];
    sa_family_t family;
    memcpy(&family, raw, sizeof(family));
    const unsigned char *v4 = NULL;
    if (family == AF_INET && length >= sizeof(struct sockaddr_in)) {
        v4 = raw + offsetof(struct sockaddr_in, sin_addr);
    } else if (family == AF_INET6 && length >= 24) { /* the kernel takes RFC 2133's 24 bytes */
        const unsigned char *v6 = raw + offsetof(struct sockaddr_in6, sin6_addr);
        if (memcmp(v6, mapped, sizeof(mapped)) == 0)
            v4 = v6 + sizeof(mapped);
        else
            return memcmp(v6, zero, 15) != 0 || (v6[15] != 0 && v6[15] != 1);
    } else {
        return 0;
    }
    return v4[0] != 127 && memcmp(v4, zero, 4) != 0;
}

/* A duplicate of the descriptor the caller names by its first argument,
 * taken with pidfd_getfd while the call still waits (else the pid may be
 * another process's by now); or -1. */
static int caller_descriptor(const struct server *server, const struct seccomp_notif *notif)
{
    int pidfd = (int)syscall(SYS_pidfd_open, notif->pid, 0);
    if (pidfd < 0)
        return -1;
    int copy = still_waiting(server, notif)
                   ? (int)syscall(SYS_pidfd_getfd, pidfd,
                                  (int)(notif->data.args[0] & 0xFFFFFFFFu), 0)
                   : -1;
    close(pidfd);
    return copy;
}

/* The family and type of the socket the caller names by its first
 * argument; 0 if it is one, -1 if not. */
static int caller_socket(struct server *server, const struct seccomp_notif *notif, int *domain,
                         int *type)
{
    int copy = caller_descriptor(server, notif);
    if (copy < 0)
        return -1;
    socklen_t size = sizeof(*domain);
    int found = getsockopt(copy, SOL_SOCKET, SO_DOMAIN, domain, &size);
    size = sizeof(*type);
    if (found == 0)
        found = getsockopt(copy, SOL_SOCKET, SO_TYPE, type, &size);
    close(copy);
    return found;
}

/* How a report names the call that sent. */
enum { SENT_BY_SENDMSG, SENT_BY_SENDMMSG, SENT_BY_SENDTO };

/* Reports the address of each message of a sendto, sendmsg or sendmmsg
 * that lies beyond loopback, sent on an inet datagram socket.  The first
 * message to each loopback port is passed on to be looked at while the call
 * waits ("L", the struct seccomp_notif, then as "S"): 1 if it was, and the
 * call is left unanswered. */
static int look_at_sends(struct server *server, const struct seccomp_notif *notif)
{
    pid_t pid = (pid_t)notif->pid;
    int call = notif->data.nr == server->sendto ? SENT_BY_SENDTO
               : notif->data.nr == server->sendmmsg ? SENT_BY_SENDMMSG : SENT_BY_SENDMSG;
    /* Where each message goes: sendto's own address, or that of each
     * struct msghdr (a struct mmsghdr begins with its own); a few are
     * enough to learn where a command sends. */
    void *names[8];
    size_t lengths[8], count = 0;
    if (call == SENT_BY_SENDTO) {
        names[0] = (void *)notif->data.args[4];
        lengths[0] = notif->data.args[5] & 0xFFFFFFFFu;
        count = 1;
    } else {
        struct mmsghdr headers[8];
        size_t stride = call == SENT_BY_SENDMMSG ? sizeof(struct mmsghdr) : sizeof(struct msghdr);
        size_t wanted = call == SENT_BY_SENDMMSG ? (unsigned int)notif->data.args[2] : 1;
        wanted = wanted < 8 ? wanted : 8;
        struct iovec local = {.iov_base = headers, .iov_len = stride * wanted};
        struct iovec remote = {.iov_base = (void *)notif->data.args[1], .iov_len = local.iov_len};
        ssize_t got = wanted ? syscall(SYS_process_vm_readv, pid, &local, 1, &remote, 1, 0) : 0;
        for (; got > 0 && count < (size_t)got / stride; count++) {
            const struct msghdr *header =
                (const void *)((const char *)headers + count * stride);
            names[count] = header->msg_name;
            lengths[count] = header->msg_namelen;
        }
    }
    int checked = 0;
    char passed[1 + sizeof(*notif) + 2 + sizeof(struct sockaddr_in6)];
    size_t passed_length = 0;
    for (size_t i = 0; i < count; i++) {
        unsigned char message[3 + sizeof(struct sockaddr_in6)];
        size_t length = lengths[i];
        if (names[i] == NULL || length < sizeof(sa_family_t))
            continue;
        if (length > sizeof(struct sockaddr_in6))
            length = sizeof(struct sockaddr_in6);
        if (read_memory(pid, (uintptr_t)names[i], message + 3, length) != 0)
            continue;
        sa_family_t family;
        memcpy(&family, message + 3, sizeof(family));
        if ((family != AF_INET || length < sizeof(struct sockaddr_in)) &&
            (family != AF_INET6 || length < 24))
            continue;
        int beyond = beyond_loopback(message + 3, length);
        unsigned short port; /* sin_port and sin6_port share their place */
        memcpy(&port, message + 3 + offsetof(struct sockaddr_in, sin_port), sizeof(port));
        port = ntohs(port);
        int looked = server->looked[port / 8] & (1 << (port % 8));
        if (!beyond && (looked || passed_length))
            continue;
        /* A stream socket ignores the destination, and one of another
         * family refuses it for a reason of its own. */
        int domain, type;
        if (!checked && (caller_socket(server, notif, &domain, &type) != 0 ||
                         (domain != AF_INET && domain != AF_INET6) ||
                         (type != SOCK_DGRAM && type != SOCK_RAW)))
            return 0;
        checked = 1;
        message[0] = 'S';
        message[1] = (unsigned char)call;
        message[2] = (unsigned char)length;
        if (beyond) {
            (void)!write(server->report, message, 3 + length);
        } else {
            server->looked[port / 8] |= (unsigned char)(1 << (port % 8));
            passed[0] = 'L';
            memcpy(passed + 1, notif, sizeof(*notif));
            memcpy(passed + 1 + sizeof(*notif), message + 1, 2 + length);
            passed_length = 1 + sizeof(*notif) + 2 + length;
        }
    }
    return passed_length && write(server->report, passed, passed_length) == (ssize_t)passed_length;
}

/* Reports a bind of a Unix socket to a path the sandbox refuses to create
 * (the socket file is a new file there). */
static void look_at_bind(struct server *server, const struct seccomp_notif *notif)
{
    struct sockaddr_un address;
    memset(&address, 0, sizeof(address));
    size_t length = notif->data.args[2] & 0xFFFFFFFFu;
    if (length > sizeof(address) || length <= offsetof(struct sockaddr_un, sun_path))
        return; /* EINVAL: the kernel refuses it itself */
    if (read_memory((pid_t)notif->pid, notif->data.args[1], &address, length) != 0)
        return;
    if ((address.sun_family == AF_INET || address.sun_family == AF_INET6) && length >= 4) {
        /* A port below 1024 takes CAP_NET_BIND_SERVICE in the run's own
         * network namespace, which no sandboxed process holds. */
        unsigned short port;
        memcpy(&port, (char *)&address + offsetof(struct sockaddr_in, sin_port), sizeof(port));
        port = ntohs(port);
        if (port > 0 && port < 1024) {
            char message[3] = {'B'};
            memcpy(message + 1, &port, sizeof(port));
            (void)!write(server->report, message, sizeof(message));
        }
        return;
    }
    if (address.sun_family != AF_UNIX || address.sun_path[0] == 0)
        return; /* another family, or an abstract name: no file */
    char name[sizeof(address.sun_path) + 1];
    memcpy(name, address.sun_path, sizeof(address.sun_path));
    name[length - offsetof(struct sockaddr_un, sun_path)] = 0;
    char full[2 * PATH_MAX + 2], found[PATH_MAX + 1];
    if (absolute_path((pid_t)notif->pid, AT_FDCWD, name, full, sizeof(full)) != 0)
        return;
    int error = refusal(server, full, CREATE, 0, 0, found, sizeof(found));
    /* A bad descriptor, or a socket of another family, fails for a reason
     * of its own. */
    int domain, type;
    if (error != 0 && caller_socket(server, notif, &domain, &type) == 0 && domain == AF_UNIX)
        report_write(server, notif->data.nr, error, found);
}

/* Whether the sandbox's PID namespace never gave out pid (above the last
 * pid it gave out, and not in its /proc), asked of its PID 1 on
 * server->init, which alone can read that: 1 if so, 0 if not, -1 if it
 * cannot say.  The namespace's last pid only grows (server->last_known is
 * the highest seen): a pid at or below it is not asked about.  A PID 1 that
 * does not answer within 100 ms is not asked again (a late answer would be
 * taken for the next question's): the command can slow it down (it shares
 * its user), and so lose its own reports, no more. */
static int never_given_out(struct server *server, pid_t pid)
{
    if (server->init < 0 || pid <= server->last_known)
        return server->init < 0 ? -1 : 0;
    int question = (int)pid, answer[2]; /* the last pid, and whether /proc has pid */
    ssize_t n;
    do
        n = send(server->init, &question, sizeof(question), MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n == sizeof(question)) {
        struct pollfd wait = {server->init, POLLIN, 0};
        int ready;
        do
            ready = poll(&wait, 1, 100);
        while (ready < 0 && errno == EINTR);
        do
            n = ready == 1 ? recv(server->init, answer, sizeof(answer), MSG_WAITALL) : -1;
        while (n < 0 && errno == EINTR);
        if (n == sizeof(answer) && answer[0] >= 0) {
            if (answer[0] > server->last_known)
                server->last_known = answer[0];
            return pid > answer[0] && !answer[1];
        }
    }
    server->init = -1;
    return -1;
}

/* The number of seccomp filters of the process pid ("thread-self", or a pid),
 * from its status in /proc, or -1 if there is none. */
static int seccomp_filters(const char *pid)
{
    char path[64], filters[32];
    snprintf(path, sizeof(path), "/proc/%s/status", pid);
    if (proc_field(path, "Seccomp_filters:", filters, sizeof(filters)) != 0)
        return -1;
    return atoi(filters);
}

/*
 * Whether a kill of target reaches no process of the run's and would reach a
 * process outside it (whether one the user may signal, corral looks up once
 * the run has failed).
 *
 * In a PID namespace of its own (server->init), such a pid is one the
 * namespace never gave out: the kill reaches no process (ESRCH).  Pids are
 * given out in rising order, so one above the namespace's last is none of
 * the sandbox's processes, past or present, whereas the ESRCH of a pid at
 * or below it may be of a process of the run's that has ended.  (A
 * namespace that gives out more than pid_max pids starts again from the
 * bottom: then a pid of the run's that has ended may be taken for none of
 * its own.)  Only what the sandbox knows decides what is done here, so that
 * how long a kill takes tells the command nothing of the host's processes.
 *
 * Under Landlock, where the host's processes are in sight, such a pid is a
 * process without this run's seccomp filter, which every process of the
 * run has, on top of those corral had (server->own_filters): Landlock's
 * signal scoping refuses the kill (EPERM).  A process of another sandbox
 * that has at least as many filters is taken for one of the run's, and not
 * reported.
 */
static int outside_the_run(struct server *server, pid_t target)
{
    if (server->init_answers)
        return never_given_out(server, target) == 1;
    if (server->own_filters < 0)
        return 0; /* corral's own count is unknown: nothing to compare with */
    if (target == server->last_inside)
        return 0; /* (should it end meanwhile and its pid be the host's, a report is missed) */
    char pid[16];
    snprintf(pid, sizeof(pid), "%d", (int)target);
    int filters = seccomp_filters(pid);
    if (filters > server->own_filters)
        server->last_inside = target;
    return filters >= 0 && filters <= server->own_filters;
}

/* The process the descriptor fd (this process's) names to
 * pidfd_send_signal: a pidfd's, or a /proc/<pid> directory's; 0 if none
 * (the kernel refuses it: not such a descriptor, or its process ended);
 * -1 if it may name one that cannot be told. */
static pid_t descriptor_process(int fd)
{
    char path[64], value[32];
    snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
    if (proc_field(path, "Pid:", value, sizeof(value)) == 0)
        return atoi(value) > 0 ? (pid_t)atoi(value) : 0;
    struct statfs filesystem;
    struct stat status, named;
    if (fstatfs(fd, &filesystem) != 0 || filesystem.f_type != 0x9fa0 /* PROC_SUPER_MAGIC */ ||
        fstat(fd, &status) != 0 || !S_ISDIR(status.st_mode))
        return 0;
    char shown_path[PATH_MAX];
    if (shown(fd, shown_path, sizeof(shown_path)) != 0)
        return -1;
    const char *last = strrchr(shown_path, '/') + 1;
    pid_t pid = (pid_t)atoi(last);
    if (pid <= 0 || last[strspn(last, "0123456789")] != 0)
        return strcmp(shown_path, "/proc") == 0 ? 0 : -1;
    snprintf(path, sizeof(path), "/proc/%d", (int)pid);
    return stat(path, &named) == 0 && named.st_ino == status.st_ino &&
           named.st_dev == status.st_dev ? pid : -1;
}

/* Whether a "K" of target was among the last few: a loop of kills is
 * reported once. */
static int reported_kill(const struct server *server, pid_t target)
{
    const size_t kept = sizeof(server->reported) / sizeof(server->reported[0]);
    for (size_t i = 0; i < kept && i < server->reports; i++) {
        if (server->reported[i] == target)
            return 1;
    }
    return 0;
}

/* Reports a signal the sandbox keeps from target, a pid (or a process
 * group's, negative), as "K", the target (int32) and the call (int32). */
static void report_kill(struct server *server, pid_t target, int call)
{
    const size_t kept = sizeof(server->reported) / sizeof(server->reported[0]);
    server->reported[server->reports++ % kept] = target;
    char message[9] = {'K'};
    memcpy(message + 1, &target, 4);
    memcpy(message + 5, &call, 4);
    (void)!write(server->report, message, sizeof(message));
}

/* Reports a kill of one pid (above 0), or of one process group (below -1,
 * the negative of its leader's pid), outside the run as "K", the target
 * (int32) and the call (int32), once for a loop of kills of a few of them.
 * 0 and -1 (the caller's own group, every process it may signal) reach
 * only the run's.  An rt_sigqueueinfo, tgkill or rt_tgsigqueueinfo (its
 * process), tkill (a thread, which /proc finds as a process) or pidfd_open
 * names one pid (the kernel refuses the rest); a pidfd_open is refused
 * only in a PID namespace of the run's own: Landlock scopes signals, not descriptors,
 * and refuses the pidfd_send_signal that follows, whose descriptor's
 * process is then the target (in a PID namespace of the run's own, the
 * command has pidfds of its own processes only). */
static void look_at_kill(struct server *server, const struct seccomp_notif *notif)
{
    pid_t target = (pid_t)(notif->data.args[0] & 0xFFFFFFFFu);
    if (notif->data.nr == server->pidfd_signal) {
        if (server->init_answers)
            return;
        int copy = caller_descriptor(server, notif);
        target = copy < 0 ? 0 : descriptor_process(copy);
        if (copy >= 0)
            close(copy);
        if (target <= 0)
            return;
    } else if (notif->data.nr != server->kill &&
               (target <= 0 || (notif->data.nr == server->pidfd_open && !server->init_answers))) {
        return;
    }
    pid_t leader = target > 0 ? target : target < -1 && target != INT_MIN ? -target : 0;
    if (leader != 0 && !reported_kill(server, target) && outside_the_run(server, leader))
        report_kill(server, target, notif->data.nr);
}

/* Takes the descriptors sent over server->source, the listener first
 * (waiting for them, unless asked to stop), and reports them as "F", their
 * number (uint8) and each descriptor (int32); 0 if they came. */
static int receive_listener(struct server *server)
{
    struct pollfd wait[2] = {{server->source, POLLIN, 0}, {server->stop, POLLIN, 0}};
    int ready;
    do
        ready = poll(wait, 2, -1);
    while (ready < 0 && errno == EINTR);
    int fds[MAX_FDS];
    ssize_t count = ready > 0 && !wait[1].revents ? receive_descriptors(server->source, fds) : -1;
    if (count <= 0)
        return -1; /* the command did not start: nothing is notified */
    char message[2 + MAX_FDS * sizeof(int)] = {'F', (char)count};
    memcpy(message + 2, fds, (size_t)count * sizeof(int));
    size_t length = 2 + (size_t)count * sizeof(int);
    if (write(server->report, message, length) != (ssize_t)length) {
        for (ssize_t i = 0; i < count; i++)
            close(fds[i]);
        return -1;
    }
    server->listener = fds[0];
    return 0;
}

/* Truncates the file at path to length with this thread's effective
 * capabilities dropped for the call (a thread's own: the others keep
 * theirs), so that the kernel judges it as it judges a sandboxed command,
 * which has corral's ids and holds no capability; 0, or -1 and errno. */
static int truncate_as_the_command(const char *path, off_t length)
{
    struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct held[_LINUX_CAPABILITY_U32S_3], none[_LINUX_CAPABILITY_U32S_3];
    if (syscall(SYS_capget, &header, held) != 0)
        return -1;
    memcpy(none, held, sizeof(none));
    int holds = 0;
    for (int i = 0; i < _LINUX_CAPABILITY_U32S_3; i++) {
        holds |= none[i].effective != 0;
        none[i].effective = 0;
    }
    if (holds && syscall(SYS_capset, &header, none) != 0)
        return -1;
    int result = truncate(path, length);
    int error = errno;
    if (holds)
        (void)syscall(SYS_capset, &header, held); /* permitted still: it cannot fail */
    errno = error;
    return result;
}

/*
 * Where Landlock has no right for truncating (ABI below 3, no TRUNCATE), a
 * read-only open with O_TRUNC, which truncates where Landlock sees only a
 * read: refused with EACCES wherever it is (its flags are the call's own,
 * its path is not: one looked at could be another when the kernel opens),
 * and reported where it lies outside the writable roots.  1 if it was one.
 */
static int refuse_truncating_read(struct server *server, const struct seccomp_notif *notif)
{
    const struct operand *op =
        find_call(server->operands, server->count, sizeof(*op), notif->data.nr);
    if (op == NULL || op->action != ACT_OPEN || op->flags_arg < 0)
        return 0;
    unsigned long long flags = notif->data.args[op->flags_arg];
    if ((flags & O_ACCMODE) != O_RDONLY || !(flags & O_TRUNC) || (flags & O_PATH))
        return 0;
    char full[2 * PATH_MAX + 2], found[PATH_MAX];
    int dirfd = op->dir_arg < 0 ? AT_FDCWD : (int)(notif->data.args[op->dir_arg] & 0xFFFFFFFFu);
    if (operand_path(notif, dirfd, notif->data.args[op->path_arg], full, sizeof(full)) == 0 &&
        refusal(server, full, OPEN, (int)flags, !(flags & O_NOFOLLOW), found, sizeof(found)) &&
        still_waiting(server, notif))
        report_write(server, notif->data.nr, EACCES, found);
    respond(server, notif, 0, EACCES);
    return 1;
}

/*
 * A truncate of a path where Landlock has no right for it (ABI below 3, no
 * TRUNCATE), which the kernel would let through outside the writable roots:
 * made here, on what the path names in the command's view (its root and
 * working directory, symbolic links followed; a magic link of its /proc,
 * whose self is another process here, is not, ELOOP) if that lies beneath
 * one of them (as the command itself would, see truncate_as_the_command),
 * and refused with EACCES, as Landlock refuses a write, and reported, if
 * not.  Answering CONTINUE instead would let another thread of the command
 * change the path once it was looked at.  1 if it was the call.
 */
static int truncate_for(struct server *server, const struct seccomp_notif *notif)
{
    if (server->truncate < 0 || server->writable == NULL)
        return 0;
    if (notif->data.nr != server->truncate)
        return refuse_truncating_read(server, notif);
    char full[2 * PATH_MAX + 2], real[PATH_MAX];
    if (operand_path(notif, AT_FDCWD, notif->data.args[0], full, sizeof(full)) != 0) {
        respond(server, notif, 0, notif->data.args[0] == 0 ? EFAULT : ENOENT);
        return 1;
    }
    int target = open_beneath(server->root, full, 1);
    if (target < 0) {
        respond(server, notif, 0, errno);
        return 1;
    }
    int error = 0;
    if (shown(target, real, sizeof(real)) != 0 || !under(real, server->writable)) {
        error = EACCES;
        report_write(server, notif->data.nr, error, shown(target, real, sizeof(real)) == 0
                                                        ? real : full);
    } else {
        char link[64];
        snprintf(link, sizeof(link), "/proc/self/fd/%d", target);
        if (truncate_as_the_command(link, (off_t)notif->data.args[1]) != 0)
            error = errno;
    }
    close(target);
    respond(server, notif, 0, error);
    return 1;
}

/* What /proc/<pid>/cgroup says of process pid, in text; its length, or -1. */
static ssize_t cgroup_of(pid_t pid, char *text, size_t size)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t length = read(fd, text, size);
    close(fd);
    return length > 0 && (size_t)length < size ? length : -1;
}

/* Whether the process a pidfd is open on has not been reaped (a zombie's
 * pid is still its own). */
static int has_not_ended(int pidfd)
{
    return syscall(SYS_pidfd_send_signal, pidfd, 0, NULL, 0) == 0 || errno != ESRCH;
}

/* Whether the process a pidfd is open on has exited (a zombie's has). */
static int has_exited(int pidfd)
{
    struct pollfd exit = {pidfd, POLLIN, 0};
    return poll(&exit, 1, 0) > 0;
}

/*
 * Tells corral's watchdog of a session a process of the run's made (sign
 * '+'), or that it has ended ('-'), as a process group to kill should
 * corral be killed first: the one its leader made, where a daemon's
 * processes are unless they moved to another (as the run's first group is
 * announced by ProcessGroupContainment).
 */
static void announce_session(const struct server *server, struct session *session, char sign)
{
    if (server->watchdog < 0 || session->announced == (sign == '+'))
        return;
    session->announced = sign == '+';
    char line[32];
    int length = snprintf(line, sizeof(line), "%c%d\n", sign, (int)session->id);
    if (length > 0 && (size_t)length < sizeof(line))
        (void)!write(server->watchdog, line, (size_t)length);
}

/*
 * Whether the session recorded at index i is still the run's.  It is while
 * a process it is anchored on belongs to it: until then no process of the
 * host can have the session's id as its pid, nor so make a session of that
 * id.  The first anchor is the process whose pid is the id; once the
 * anchor exits (the server watches for it, see serve_notifications), the
 * session is anchored on another process of it, found in /proc, so that a
 * daemon that forked again and left its session's leader to end is still
 * the run's.  A session with no other process is held until its last
 * anchor is reaped (a zombie keeps its pid), then forgotten.  (Between an
 * anchor's exit and the search, every other process of the session would
 * have to end and pids wrap for a host process to take its id.)
 */
static int session_held(struct server *server, size_t i)
{
    struct session *session = &server->sessions[i];
    if (!session->watched || !has_exited(session->fd))
        return has_not_ended(session->fd);
    DIR *proc = opendir("/proc");
    for (struct dirent *entry; proc != NULL && (entry = readdir(proc)) != NULL;) {
        pid_t pid = (pid_t)atoi(entry->d_name);
        if (pid <= 0 || pid == session->anchor || getsid(pid) != session->id)
            continue;
        int fd = (int)syscall(SYS_pidfd_open, pid, 0);
        if (fd < 0)
            continue;
        if (getsid(pid) == session->id && !has_exited(fd)) {
            close(session->fd);
            session->fd = fd;
            session->anchor = pid;
            closedir(proc);
            return 1;
        }
        close(fd);
    }
    if (proc != NULL)
        closedir(proc);
    session->watched = 0; /* nothing left to anchor it on: held while the anchor is unreaped */
    announce_session(server, session, '-');
    return has_not_ended(session->fd);
}

/*
 * Records the session the process pid (one of the run's) leads, or will
 * lead if its setsid succeeds, as the run's, forgetting those no longer
 * held, and announcing it to the watchdog if a process of the run's made
 * it (not the one the run starts in, whose group corral announces).  With
 * more than MAX_SESSIONS at once, one more is not recorded: its processes
 * are the run's to their own session only.
 */
static void record_session(struct server *server, const struct seccomp_notif *notif, pid_t pid,
                           int made)
{
    size_t kept = 0;
    int known = 0;
    for (size_t i = 0; i < server->session_count; i++) {
        if (!session_held(server, i)) {
            announce_session(server, &server->sessions[i], '-');
            close(server->sessions[i].fd);
            continue;
        }
        known |= server->sessions[i].id == pid;
        server->sessions[kept++] = server->sessions[i];
    }
    server->session_count = kept;
    /* Never corral's own, which end_sessions would end: the run's first
     * process leads a session of its own (see _cspawn.c). */
    if (known || kept == MAX_SESSIONS || pid == getsid(0))
        return;
    int fd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (fd < 0)
        return;
    if (!still_waiting(server, notif)) { /* the caller ended: its pid may be another's */
        close(fd);
        return;
    }
    server->sessions[server->session_count] = (struct session){pid, pid, fd, 1, 0};
    if (made)
        announce_session(server, &server->sessions[server->session_count], '+');
    server->session_count++;
}

/*
 * SIGKILLs every process of the run's sessions (see session_held), asked
 * for as the run ends.  Where the run has neither a PID namespace nor a
 * cgroup of its own (Landlock, the process-group kill), a daemon that made
 * a session of its own (setsid, a double fork) escapes the kill of the
 * run's process group, and only this server knows its session.  Each
 * process is found in /proc and signalled through a pidfd held while its
 * session is read; /proc is read again while a pass found one alive, which
 * may have forked meanwhile.  Sessions past MAX_SESSIONS were not recorded.
 */
static void end_sessions(struct server *server)
{
    for (int pass = 0; pass < 16; pass++) {
        pid_t held[MAX_SESSIONS];
        size_t count = 0;
        for (size_t i = 0; i < server->session_count; i++) {
            if (session_held(server, i))
                held[count++] = server->sessions[i].id;
        }
        DIR *proc = count > 0 ? opendir("/proc") : NULL;
        if (proc == NULL)
            return;
        int alive = 0;
        for (struct dirent *entry; (entry = readdir(proc)) != NULL;) {
            pid_t pid = (pid_t)atoi(entry->d_name);
            pid_t session = pid > 1 ? getsid(pid) : -1;
            size_t i = 0;
            while (i < count && held[i] != session)
                i++;
            if (session <= 0 || i == count)
                continue;
            int fd = (int)syscall(SYS_pidfd_open, pid, 0);
            if (fd < 0)
                continue;
            if (getsid(pid) == session && !has_exited(fd)) {
                alive = 1;
                (void)syscall(SYS_pidfd_send_signal, fd, SIGKILL, NULL, 0);
            }
            close(fd);
        }
        closedir(proc);
        if (!alive)
            return;
    }
}

/*
 * Whether the process (or thread) target is one of the run's, as caller,
 * one of them, names it.  Without a PID namespace of the run's own
 * (Landlock) the host's processes are in reach.  One of a session of the
 * run's is the run's: the one the run starts in, which no host process can
 * join, and each one a process of the run's made (setsid), while it is
 * held (see session_held).  So, where the run has a cgroup of its own
 * (which its processes cannot leave: Landlock refuses them cgroup.procs),
 * is one of the caller's cgroup.  (The kernel looks the pid up again when
 * the call goes through: the target would have to end and its pid be
 * given to a host process meanwhile, microseconds in which pids would have
 * to wrap.)
 */
static int of_the_run(struct server *server, pid_t caller, pid_t target)
{
    pid_t session = getsid(caller);
    if (target <= 0 || session <= 0)
        return 0;
    pid_t target_session = getsid(target);
    if (target_session == session)
        return 1;
    for (size_t i = 0; target_session > 0 && i < server->session_count; i++) {
        if (server->sessions[i].id == target_session && session_held(server, i))
            return 1;
    }
    if (!__atomic_load_n(&server->run_cgroup, __ATOMIC_ACQUIRE))
        return 0;
    char mine[PATH_MAX + 16], theirs[PATH_MAX + 16];
    ssize_t length = cgroup_of(caller, mine, sizeof(mine));
    return length > 0 && cgroup_of(target, theirs, sizeof(theirs)) == length &&
           memcmp(mine, theirs, (size_t)length) == 0;
}

/* A process of the process group pgid, or 0 if it has none: its leader,
 * if it lives and leads it still (so most often), or one found in /proc. */
static pid_t member_of_group(pid_t pgid)
{
    if (getpgid(pgid) == pgid)
        return pgid;
    DIR *proc = opendir("/proc");
    if (proc == NULL)
        return 0;
    pid_t found = 0;
    for (struct dirent *entry; found == 0 && (entry = readdir(proc)) != NULL;) {
        pid_t pid = (pid_t)atoi(entry->d_name);
        if (pid > 0 && getpgid(pid) == pgid)
            found = pid;
    }
    closedir(proc);
    return found;
}

/* Whether a call of caller's may reach process target, or (as_group)
 * process group target: one of the run's, or one there is none of (the
 * kernel answers ESRCH, as it would in a sandbox of the run's own). */
static int reachable(struct server *server, pid_t caller, pid_t target, int as_group)
{
    if (as_group) {
        pid_t member = member_of_group(target);
        return member == 0 || of_the_run(server, caller, member);
    }
    return (getsid(target) < 0 && errno == ESRCH) || of_the_run(server, caller, target);
}

/* Refuses a signal (EPERM, as Landlock's scoping does) to target, a pid
 * (or a process group's, negative), and reports it (see look_at_kill). */
static int refuse_signal(struct server *server, const struct seccomp_notif *notif,
                         pid_t target)
{
    respond(server, notif, 0, EPERM);
    if (target != -1 && !reported_kill(server, target)) /* -1: a process not told */
        report_kill(server, target, notif->data.nr);
    return 1;
}

/*
 * A kill of every process the caller may signal (-1), made here for each
 * of the run's but the caller's own (the kernel's kill spares it, and PID
 * 1): through a pidfd held while it is looked at, so that it is the
 * process looked at that is signalled, with this process as the sender.
 * Answered as the kernel answers: ESRCH if there was none.
 */
static int signal_the_run(struct server *server, const struct seccomp_notif *notif)
{
    int signal = (int)notif->data.args[1];
    if (signal < 0 || signal > 64) {
        respond(server, notif, 0, EINVAL);
        return 1;
    }
    pid_t own = process_of((pid_t)notif->pid);
    DIR *proc = own > 0 && still_waiting(server, notif) ? opendir("/proc") : NULL;
    if (proc == NULL) {
        respond(server, notif, 0, ESRCH); /* the caller is gone, or /proc */
        return 1;
    }
    int count = 0, error = 0;
    for (struct dirent *entry; (entry = readdir(proc)) != NULL;) {
        pid_t pid = (pid_t)atoi(entry->d_name);
        if (pid <= 1 || pid == own)
            continue;
        int held = (int)syscall(SYS_pidfd_open, pid, 0);
        if (held < 0)
            continue;
        if (of_the_run(server, (pid_t)notif->pid, pid)) {
            count++;
            if (syscall(SYS_pidfd_send_signal, held, signal, NULL, 0) != 0 && errno != EPERM)
                error = errno;
        }
        close(held);
    }
    closedir(proc);
    respond(server, notif, 0, count ? error : ESRCH);
    return 1;
}

/*
 * A pidfd_send_signal, made here on a duplicate of the caller's descriptor
 * (one another of its threads swaps meanwhile is not the one looked at),
 * with a copy of its siginfo, if it gives one: this process is the sender.
 */
static int signal_by_pidfd(struct server *server, const struct seccomp_notif *notif)
{
    const __u64 *args = notif->data.args;
    siginfo_t info, *given = NULL;
    if (args[2] != 0) {
        if (read_memory((pid_t)notif->pid, args[2], &info, sizeof(info)) != 0) {
            respond(server, notif, 0, EFAULT);
            return 1;
        }
        given = &info;
    }
    int copy = caller_descriptor(server, notif);
    if (copy < 0) {
        respond(server, notif, 0, EBADF);
        return 1;
    }
    pid_t target = descriptor_process(copy);
    if (target < 0 || (target > 0 && !of_the_run(server, (pid_t)notif->pid, target))) {
        close(copy);
        return refuse_signal(server, notif, target);
    }
    long sent = syscall(SYS_pidfd_send_signal, copy, (int)args[1], given, (unsigned int)args[3]);
    int error = sent == 0 ? 0 : errno;
    close(copy);
    respond(server, notif, 0, error);
    return 1;
}

/*
 * An F_SETOWN_EX, FIOSETOWN or SIOCSPGRP (a socket's), whose target is in
 * the caller's memory, where another of its threads could change it once
 * read: made here, with the target read, on a duplicate of the caller's
 * descriptor (the same open file, whose owner it sets).  What the owner
 * gets, SIGIO and SIGURG, is then sent with this process's credentials:
 * to a process of the run's, whose are the same.
 */
static int set_owner(struct server *server, const struct seccomp_notif *notif, int style)
{
    const __u64 *args = notif->data.args;
    struct f_owner_ex owner = {0};
    int pid = 0;
    if (read_memory((pid_t)notif->pid, args[2], style == GUARD_FCNTL ? (void *)&owner : &pid,
                    style == GUARD_FCNTL ? sizeof(owner) : sizeof(pid)) != 0) {
        respond(server, notif, 0, EFAULT);
        return 1;
    }
    /* (INT_MIN names no group: the kernel refuses it) */
    pid_t target = style == GUARD_FCNTL ? owner.pid : pid < 0 && pid != INT_MIN ? -pid : pid;
    int as_group = style == GUARD_FCNTL ? owner.type == F_OWNER_PGRP : pid < 0;
    if (target > 0 && !reachable(server, (pid_t)notif->pid, target, as_group))
        return refuse_signal(server, notif, as_group ? -target : target);
    int copy = caller_descriptor(server, notif);
    struct stat status;
    int result = -1;
    if (copy < 0)
        errno = EBADF;
    else if (style == GUARD_FCNTL)
        result = fcntl(copy, F_SETOWN_EX, &owner);
    else if (fstat(copy, &status) == 0 && S_ISSOCK(status.st_mode))
        result = ioctl(copy, (unsigned long)(args[1] & 0xFFFFFFFFu), &pid);
    else
        errno = ENOTTY; /* what other files answer (no other has an owner to set this way) */
    int error = result < 0 ? errno : 0;
    if (copy >= 0)
        close(copy);
    respond(server, notif, result < 0 ? 0 : result, error);
    return 1;
}

/*
 * Where Landlock cannot scope signals (ABI below 6) and no PID namespace
 * keeps the host's processes out of reach, decides each call that sends a
 * signal, or names the process SIGIO and SIGURG go to (style: GUARD_KILL
 * and after).  One that reaches a process or a process group of the run's
 * (see of_the_run), or none (the kernel answers it), goes through; any
 * other is refused with EPERM, as Landlock's scoping refuses it, and
 * reported as "K" (see look_at_kill).  A kill of every process (-1) is
 * made here for the run's (see signal_the_run), and so are the calls
 * whose target the kernel would read from the caller's memory or find
 * through its descriptor.  0 (the caller's own group) goes through; a pid
 * at or below 0 that the kernel refuses goes through to be refused.
 */
static int guard_signal(struct server *server, const struct seccomp_notif *notif, int style)
{
    const __u64 *args = notif->data.args;
    pid_t caller = (pid_t)notif->pid;
    pid_t target = (pid_t)(args[style == GUARD_THREAD ? 1 : 0] & 0xFFFFFFFFu);
    int as_group = 0;
    switch (style) {
    case GUARD_KILL:
        if (target == -1)
            return signal_the_run(server, notif);
        as_group = target < -1 && target != INT_MIN;
        if (as_group)
            target = -target;
        break;
    case GUARD_PIDFD:
        return signal_by_pidfd(server, notif);
    case GUARD_FCNTL:
        if ((int)args[1] != F_SETOWN)
            return set_owner(server, notif, style); /* F_SETOWN_EX */
        target = (pid_t)(args[2] & 0xFFFFFFFFu);
        as_group = target < 0 && target != INT_MIN;
        if (as_group)
            target = -target;
        break;
    case GUARD_IOCTL:
        return set_owner(server, notif, style);
    }
    if (target > 0 && (!reachable(server, caller, target, as_group) ||
                       !still_waiting(server, notif))) /* what was read may be another's */
        return refuse_signal(server, notif, as_group ? -target : target);
    let_through(server, notif);
    return 1;
}

/*
 * Refuses (EPERM) a guarded call that would change a process outside the
 * run, and reports it as "O", the call's number (int32), its target (int32)
 * and what that is (uint8: 0 a pid, 1 a process group, 2 the user's every
 * process).  Without a PID namespace of the run's own (Landlock), the
 * host's processes are in reach of these calls: only the caller's own (0),
 * and processes or groups of the run's (see of_the_run) are let through; a
 * user's every process never.  Signals are decided by guard_signal.  1 if
 * the call is answered (refused, or let through when nothing else looks at
 * it: setpriority and prlimit64 are looked at next).
 */
static int refuse_another(struct server *server, const struct seccomp_notif *notif)
{
    const struct guard *guard =
        find_call(server->guarded, server->guarded_count, sizeof(*guard), notif->data.nr);
    if (guard == NULL)
        return 0;
    if (guard->style == GUARD_SETSID) {
        pid_t process = process_of((pid_t)notif->pid); /* a session's id is its pid */
        if (process > 0)
            record_session(server, notif, process, 1);
        let_through(server, notif);
        return 1;
    }
    if (guard->style >= GUARD_KILL)
        return guard_signal(server, notif, guard->style);
    int which = guard->style == GUARD_PID ? 0 : (int)notif->data.args[0];
    if (guard->style == GUARD_IOPRIO)
        which -= 1; /* IOPRIO_WHO_PROCESS is 1 */
    int who = (int)(notif->data.args[guard->style == GUARD_PID ? 0 : 1] & 0xFFFFFFFFu);
    unsigned char kind = (unsigned char)which;
    int own = which < 0 || which > 2 || (which < 2 && who < 0) || /* the kernel refuses it */
              (which < 2 && (who == 0 || reachable(server, (pid_t)notif->pid, who, which))) ||
              !still_waiting(server, notif); /* what was read may be another's */
    if (own) {
        if (notif->data.nr == server->setpriority || notif->data.nr == server->prlimit64)
            return 0;
        let_through(server, notif);
        return 1;
    }
    respond(server, notif, 0, EPERM);
    char message[10] = {'O'};
    memcpy(message + 1, &notif->data.nr, 4);
    memcpy(message + 5, &who, 4);
    message[9] = (char)kind;
    (void)!write(server->report, message, sizeof(message));
    return 1;
}

/* The run's object of kind with that id, or with that key (not
 * IPC_PRIVATE) if id is -1; or NULL. */
static struct ipc_object *sysv_own(const struct server *server, int kind, int id, key_t key)
{
    for (size_t i = server->object_count; i-- > 0;) {
        struct ipc_object *object = &server->objects[i];
        if (object->kind == kind && (id >= 0 ? object->id == id : object->key == key))
            return object;
    }
    return NULL;
}

static int sysv_get(int kind, key_t key, unsigned long long size, int flags)
{
    if (kind == SYSV_SHM)
        return shmget(key, (size_t)size, flags);
    return kind == SYSV_SEM ? semget(key, (int)size, flags) : msgget(key, flags);
}

/* Tells corral's watchdog of the run's object (sign '=') or that it is
 * gone ('~'), so that it removes what a killed corral could not. */
static void announce(const struct server *server, char sign, int kind, const char *what)
{
    if (server->watchdog < 0)
        return;
    char line[8 + 2 * NAME_MAX];
    int length = snprintf(line, sizeof(line), "%c%c:%s\n", sign, "msqQ"[kind], what);
    if (length > 0 && (size_t)length < sizeof(line))
        (void)!write(server->watchdog, line, (size_t)length);
}

/* Announces an object of the run's: a System V one by its id, a POSIX
 * message queue by its name in hex (a name may hold any byte but '/' and
 * NUL). */
static void announce_object(const struct server *server, char sign,
                            const struct ipc_object *object)
{
    char what[2 * NAME_MAX + 1];
    if (object->name == NULL) {
        snprintf(what, sizeof(what), "%d", object->id);
    } else {
        size_t i = 0;
        for (; object->name[i] != 0 && i < NAME_MAX; i++)
            snprintf(what + 2 * i, 3, "%02x", (unsigned char)object->name[i]);
        what[2 * i] = 0;
    }
    announce(server, sign, object->kind, what);
}

static void remove_object(const struct ipc_object *object)
{
    if (object->kind == SYSV_SHM)
        (void)shmctl(object->id, IPC_RMID, NULL);
    else if (object->kind == SYSV_SEM)
        (void)semctl(object->id, 0, IPC_RMID);
    else if (object->kind == SYSV_MSG)
        (void)msgctl(object->id, IPC_RMID, NULL);
    else
        (void)syscall(SYS_mq_unlink, object->name);
}

/* Keeps the object the server made for the run (a queue's name, given, is
 * kept from now on); -1 (ENOMEM, the object removed) if it cannot. */
static int keep_object(struct server *server, struct ipc_object object)
{
    if (server->object_count == server->object_room) {
        size_t room = server->object_room ? server->object_room * 2 : 8;
        struct ipc_object *grown = realloc(server->objects, room * sizeof(*grown));
        if (grown == NULL) {
            remove_object(&object);
            free(object.name);
            errno = ENOMEM;
            return -1;
        }
        server->objects = grown;
        server->object_room = room;
    }
    struct ipc_object *before =
        object.key == IPC_PRIVATE ? NULL : sysv_own(server, object.kind, -1, object.key);
    if (before != NULL)
        before->key = IPC_PRIVATE; /* removed: its key is the new object's */
    server->objects[server->object_count++] = object;
    announce_object(server, '=', &object);
    return 0;
}

/*
 * A get (shmget, semget, msgget) made for the run: the id, or -1 and errno.
 * A new object is the run's (kept); an existing one is found only if it is
 * the run's.  A key the host holds cannot be made the run's: creating it
 * is refused with EACCES, as for another user's object (programs that pick
 * a key, as PostgreSQL does, try the next one), and reported.  A huge-page
 * segment is refused (EPERM): making it takes a privilege the server may
 * hold and the command does not (CAP_IPC_LOCK).
 */
static int sysv_make(struct server *server, int kind, key_t key, unsigned long long size,
                     int flags)
{
    if (kind == SYSV_SHM && (flags & SHM_HUGETLB)) {
        errno = EPERM;
        return -1;
    }
    int made;
    if (key == IPC_PRIVATE) {
        made = sysv_get(kind, key, size, flags);
        return made < 0 || keep_object(server, (struct ipc_object){kind, made, key, NULL}) == 0
                   ? made : -1;
    }
    const struct ipc_object *own = sysv_own(server, kind, -1, key);
    if (!(flags & IPC_CREAT)) {
        made = own != NULL ? sysv_get(kind, key, size, flags) : -1;
        if (own == NULL || (made >= 0 && made != own->id))
            errno = ENOENT;
        return own == NULL || made != own->id ? -1 : made;
    }
    made = sysv_get(kind, key, size, flags | IPC_EXCL);
    if (made >= 0)
        return keep_object(server, (struct ipc_object){kind, made, key, NULL}) == 0 ? made : -1;
    if (errno != EEXIST)
        return -1;
    if (own != NULL) {
        if (flags & IPC_EXCL)
            return -1; /* EEXIST: the run's own */
        made = sysv_get(kind, key, size, flags & ~IPC_CREAT);
        if (made < 0 || made == own->id)
            return made;
    }
    char message[6] = {'Y', (char)kind};
    memcpy(message + 2, &key, 4);
    (void)!write(server->report, message, sizeof(message));
    errno = EACCES;
    return -1;
}

/* The id of the object at index (as the *_STAT commands name one), or -1. */
static int sysv_at(int kind, int index)
{
    if (kind == SYSV_SHM) {
        struct shmid_ds shm;
        return shmctl(index, SHM_STAT_ANY, &shm);
    }
    if (kind == SYSV_MSG) {
        struct msqid_ds msg;
        return msgctl(index, MSG_STAT_ANY, &msg);
    }
    struct semid_ds sem;
    union {
        int value;
        struct semid_ds *buf;
    } argument = {.buf = &sem};
    return semctl(index, 0, SEM_STAT_ANY, argument);
}

static int hand_over(const struct server *server, const struct seccomp_notif *notif, int fd,
                     unsigned long long flags);

/*
 * POSIX message queues where the run has no IPC namespace of its own
 * (Landlock): their names are the host's.  An mq_open or mq_unlink (kind
 * POSIX_MQ; roles SYSV_GET and SYSV_CONTROL) is carried out by the server
 * on the name with queue_prefix before it, one for each run, and an opened
 * queue handed over as the command's descriptor; the calls on a queue's
 * descriptor go through (only the gate gives one out: /dev/mqueue is
 * unreadable there).  What the run made is unlinked once it ends, and
 * announced to the watchdog meanwhile (see ipc_object).  (The C library
 * passes the name without its leading slash.)
 */
static void look_at_queue(struct server *server, const struct seccomp_notif *notif, int role)
{
    const __u64 *args = notif->data.args;
    pid_t pid = (pid_t)notif->pid;
    char name[NAME_MAX + 1], full[NAME_MAX + 1];
    struct mq_attr attributes, *given = NULL;
    int flags = (int)(args[1] & 0xFFFFFFFFu), error = 0;
    if (read_path(pid, (unsigned long)args[0], name, sizeof(name)) != 0)
        error = ENAMETOOLONG;
    else if ((size_t)snprintf(full, sizeof(full), "%s%s", server->queue_prefix, name) >=
             sizeof(full))
        error = ENAMETOOLONG;
    if (error == 0 && role == SYSV_GET && (flags & O_CREAT) && args[3] != 0) {
        if (read_memory(pid, args[3], &attributes, sizeof(attributes)) != 0)
            error = EFAULT;
        given = &attributes;
    }
    if (!still_waiting(server, notif))
        return; /* what was read may be another process's */
    if (error != 0) {
        respond(server, notif, 0, error);
        return;
    }
    if (role != SYSV_GET) {
        int removed = (int)syscall(SYS_mq_unlink, full);
        respond(server, notif, 0, removed == 0 ? 0 : errno);
        return;
    }
    int queue = (int)syscall(SYS_mq_open, full, flags | O_CLOEXEC, (mode_t)args[2], given);
    int known = 0;
    for (size_t i = 0; queue >= 0 && (flags & O_CREAT) && i < server->object_count; i++) {
        const struct ipc_object *object = &server->objects[i];
        known |= object->kind == POSIX_MQ && strcmp(object->name, full) == 0;
    }
    if (queue >= 0 && (flags & O_CREAT) && !known) {
        /* strdup's failure is keep_object's: the queue is unlinked. */
        struct ipc_object made = {POSIX_MQ, -1, IPC_PRIVATE, strdup(full)};
        if (made.name == NULL) {
            (void)syscall(SYS_mq_unlink, full);
            errno = ENOMEM;
        }
        if (made.name == NULL || keep_object(server, made) != 0) {
            close(queue); /* it could not be kept: it would outlive the run */
            queue = -1;
        }
    }
    if (queue < 0 || hand_over(server, notif, queue, (unsigned long long)flags) != 0)
        respond(server, notif, 0, errno);
}

/* Answers a System V IPC call (see struct ipc_object), or a POSIX message
 * queue's (see look_at_queue); 1 if it was one. */
static int look_at_sysv(struct server *server, const struct seccomp_notif *notif)
{
    const struct sysv_call *call =
        find_call(server->sysv, server->sysv_count, sizeof(*call), notif->data.nr);
    if (call == NULL)
        return 0;
    if (call->kind == POSIX_MQ) {
        look_at_queue(server, notif, call->role);
        return 1;
    }
    const __u64 *args = notif->data.args;
    int kind = call->kind, id = (int)(args[0] & 0xFFFFFFFFu);
    if (call->role == SYSV_GET) {
        int flags = (int)(args[kind == SYSV_MSG ? 1 : 2] & 0xFFFFFFFFu);
        int made = sysv_make(server, kind, (key_t)id, args[1], flags);
        respond(server, notif, made, made < 0 ? errno : 0);
        return 1;
    }
    if (call->role == SYSV_CONTROL) {
        int command = (int)(args[kind == SYSV_SEM ? 2 : 1] & 0xFFFFFFFFu);
        int stat_any = kind == SYSV_SHM ? SHM_STAT_ANY : kind == SYSV_SEM ? SEM_STAT_ANY
                                                                         : MSG_STAT_ANY;
        int stat = kind == SYSV_SHM ? SHM_STAT : kind == SYSV_SEM ? SEM_STAT : MSG_STAT;
        int info = kind == SYSV_SHM ? SHM_INFO : kind == SYSV_SEM ? SEM_INFO : MSG_INFO;
        if (command == IPC_INFO || command == info) {
            let_through(server, notif); /* the namespace's limits and use; no object */
            return 1;
        }
        if (command == stat || command == stat_any)
            id = sysv_at(kind, id); /* by index: the run's object there, if any */
    }
    if (id >= 0 && sysv_own(server, kind, id, IPC_PRIVATE) != NULL)
        let_through(server, notif);
    else
        respond(server, notif, 0, EINVAL);
    return 1;
}

/* The last component of full if full is directory (ending in '/') and one
 * component more, into name; -1 if not. */
static int last_beneath(const char *full, const char *directory, char *name, size_t size)
{
    size_t length = strlen(directory);
    if (strncmp(full, directory, length) != 0)
        return -1;
    const char *last = full + length;
    if (*last == 0 || strchr(last, '/') != NULL || strcmp(last, ".") == 0 ||
        strcmp(last, "..") == 0 || strlen(last) >= size)
        return -1;
    strcpy(name, last);
    return 0;
}

/* The name, directly beneath /dev/shm, a path argument of pid names
 * (relative to dirfd); -1 if it names none. */
static int shm_name(const struct seccomp_notif *notif, int dirfd, unsigned long long address,
                    char *name, size_t size)
{
    char full[2 * PATH_MAX + 2];
    if (operand_path(notif, dirfd, address, full, sizeof(full)) != 0)
        return -1;
    return last_beneath(full, "/dev/shm/", name, size);
}

/* Opens name in shm_dir as the command asked (flags and mode), for the
 * command; the descriptor, or -1 and errno. */
static int shm_open_for(const struct server *server, const char *name, unsigned long long flags,
                        unsigned long long mode)
{
    const unsigned long long known = O_ACCMODE | O_CREAT | O_EXCL | O_NOCTTY | O_TRUNC |
                                     O_APPEND | O_NONBLOCK | O_DSYNC | O_SYNC | O_NOFOLLOW |
                                     O_NOATIME | O_LARGEFILE;
    struct open_how how = {
        .flags = (flags & known) | O_CLOEXEC,
        .mode = flags & O_CREAT ? mode & 07777 : 0,
        .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV,
    };
    int fd = (int)syscall(SYS_openat2, server->shm_dir, name, &how, sizeof(how));
    struct stat status;
    if (fd >= 0 && (fstat(fd, &status) != 0 || status.st_uid != geteuid() ||
                    !S_ISREG(status.st_mode))) {
        close(fd);
        errno = EACCES;
        return -1;
    }
    return fd;
}

/*
 * Pseudo-terminals where the sandbox shows the host's /dev/pts, unreadable
 * and unwritable (Landlock; the user's terminals are there): an open of
 * /dev/ptmx for writing (posix_openpt, openpty, forkpty) is carried out by
 * the server, which keeps a duplicate of the masters it hands over (the
 * last MAX_TERMINALS), so that their numbers stay the run's until the run
 * ends; an open of /dev/pts/N for writing is too, for one of those numbers
 * only (a program opens the other end as it makes one).  The command gets a
 * terminal the server opened: its ioctls are not Landlock's to refuse.
 * Neither is made the server's controlling terminal (O_NOCTTY): a command
 * takes one with TIOCSCTTY, as login_tty does.  The descriptor, -1 and
 * errno, or -2 for a path that is none of these.
 */
static int open_terminal(struct server *server, const char *full, unsigned long long flags)
{
    const unsigned long long kept = O_ACCMODE | O_NONBLOCK;
    char name[16];
    if (strcmp(full, "/dev/ptmx") == 0) {
        int master = open("/dev/ptmx", (int)(flags & kept) | O_NOCTTY | O_CLOEXEC);
        unsigned int number;
        if (master < 0)
            return -1;
        int copy = -1;
        if (ioctl(master, TIOCGPTN, &number) != 0 ||
            (copy = fcntl(master, F_DUPFD_CLOEXEC, 0)) < 0) {
            int error = errno;
            close(master);
            errno = error;
            return -1;
        }
        struct terminal *slot = &server->terminals[server->terminal_count++ % MAX_TERMINALS];
        if (server->terminal_count > MAX_TERMINALS)
            close(slot->master); /* the oldest: its number may be another's from now on */
        *slot = (struct terminal){(int)number, copy};
        return master;
    }
    if (last_beneath(full, "/dev/pts/", name, sizeof(name)) != 0 ||
        strspn(name, "0123456789") != strlen(name))
        return -2;
    int number = atoi(name);
    size_t held = server->terminal_count < MAX_TERMINALS ? server->terminal_count : MAX_TERMINALS;
    for (size_t i = 0; i < held; i++) {
        if (server->terminals[i].number == number) {
            char path[32];
            snprintf(path, sizeof(path), "/dev/pts/%d", number);
            return open(path, (int)(flags & kept) | O_NOCTTY | O_CLOEXEC);
        }
    }
    return -2;
}

/*
 * The /proc files of the run's own processes that a command may write under
 * bubblewrap (a /proc of the run's PID namespace) and Landlock refuses,
 * having no rule for /proc, which holds the kernel's tunables too:
 * oom_score_adj, oom_adj, comm and coredump_filter of a process of the
 * run's (see of_the_run), named by self, thread-self
 * or a pid (a thread's below task/).  The server opens it for writing, for
 * the command; what is written is judged as it is written, by the writer's
 * own credentials (a lower oom_score_adj takes CAP_SYS_RESOURCE; another
 * process's comm is refused).  The descriptor, -1 and errno, or -2 for any
 * other path.
 */
static int open_own_proc(struct server *server, const struct seccomp_notif *notif,
                         const char *full, unsigned long long flags)
{
    static const char *const writable[] = {"oom_score_adj", "oom_adj", "comm", "coredump_filter"};
    char path[128];
    const char *rest = full + strlen("/proc/"), *file;
    pid_t caller = (pid_t)notif->pid, target;
    if (strncmp(rest, "self/", 5) == 0 || strncmp(rest, "thread-self/", 12) == 0) {
        if ((target = process_of(caller)) == 0)
            return -2;
        file = strchr(rest, '/') + 1;
        if (rest[0] == 't')
            snprintf(path, sizeof(path), "/proc/%d/task/%d/%s", (int)target, (int)caller, file);
        else
            snprintf(path, sizeof(path), "/proc/%d/%s", (int)target, file);
    } else {
        size_t digits = strspn(rest, "0123456789");
        if (digits == 0 || rest[digits] != '/')
            return -2;
        target = (pid_t)atoi(rest);
        file = rest + digits + 1;
        if (strncmp(file, "task/", 5) == 0) {
            size_t thread = strspn(file + 5, "0123456789");
            if (thread == 0 || file[5 + thread] != '/')
                return -2;
            file += 5 + thread + 1;
        }
        snprintf(path, sizeof(path), "%s", full);
    }
    int known = 0;
    for (size_t i = 0; i < sizeof(writable) / sizeof(writable[0]); i++)
        known |= strcmp(file, writable[i]) == 0;
    if (!known || target <= 0)
        return -2;
    /* Held while it is looked at and opened: its pid cannot be another's meanwhile. */
    int held = (int)syscall(SYS_pidfd_open, target, 0);
    int fd = held >= 0 && of_the_run(server, caller, target)
                 ? open(path, (int)(flags & O_ACCMODE) | O_CLOEXEC) : -2;
    int error = errno;
    if (fd >= 0 && syscall(SYS_pidfd_send_signal, held, 0, NULL, 0) != 0) {
        close(fd); /* it ended: what was opened may be another's */
        fd = -2;
    }
    if (held >= 0)
        close(held);
    errno = error;
    return fd; /* -2: Landlock refuses it, and the witness sees that */
}

/* Hands fd, opened for the command, over as its new descriptor (the
 * answer to its call), and closes it here; 0, or -1 and errno. */
static int hand_over(const struct server *server, const struct seccomp_notif *notif, int fd,
                     unsigned long long flags)
{
    struct seccomp_notif_addfd handed = {
        .id = notif->id, .flags = SECCOMP_ADDFD_FLAG_SEND, .srcfd = (__u32)fd,
        .newfd_flags = flags & O_CLOEXEC ? O_CLOEXEC : 0,
    };
    int given = ioctl(server->listener, SECCOMP_IOCTL_NOTIF_ADDFD, &handed);
    int error = errno;
    close(fd);
    if (given >= 0 || error == ENOENT)
        return 0; /* answered with the descriptor, or the caller is gone */
    errno = error;
    return -1;
}

/* Carries out a call on names beneath /dev/shm (see struct shm_call) in
 * shm_dir, an open of a pseudo-terminal (see open_terminal) or of a /proc
 * file of the run's own (see open_own_proc), and answers it; 1 if it was
 * one. */
static int redirect(struct server *server, const struct seccomp_notif *notif)
{
    const struct shm_call *call =
        find_call(server->shm, server->shm_count, sizeof(*call), notif->data.nr);
    if (call == NULL || server->shm_dir < 0)
        return 0;
    const __u64 *args = notif->data.args;
    pid_t pid = (pid_t)notif->pid;
    int dirfd = call->dir_arg < 0 ? AT_FDCWD : (int)(args[call->dir_arg] & 0xFFFFFFFFu);
    int dir2 = call->dir2_arg < 0 ? AT_FDCWD : (int)(args[call->dir2_arg] & 0xFFFFFFFFu);
    unsigned long long flags = call->flags_arg >= 0 ? args[call->flags_arg] & 0xFFFFFFFFu : 0;
    char full[2 * PATH_MAX + 2], name[NAME_MAX + 1], second[NAME_MAX + 1];
    int second_in = call->path2_arg >= 0 &&
                    shm_name(notif, dir2, args[call->path2_arg], second, sizeof(second)) == 0;
    /* The first path last: the write witness looks at it next. */
    if (operand_path(notif, dirfd, args[call->path_arg], full, sizeof(full)) != 0)
        full[0] = 0;
    int first_in = last_beneath(full, "/dev/shm/", name, sizeof(name)) == 0;
    int terminal = call->role == SHM_OPEN && strncmp(full, "/dev/pt", 7) == 0;
    int own_proc = call->role == SHM_OPEN && strncmp(full, "/proc/", 6) == 0;
    if (!first_in && !second_in && !terminal && !own_proc)
        return 0;
    unsigned long long mode = 0;
    if (call->role == SHM_OPEN) {
        if (call->flags_arg == CREAT_FLAGS) {
            flags = O_CREAT | O_WRONLY | O_TRUNC;
            mode = args[call->path_arg + 1];
        } else if (call->flags_arg == OPEN_HOW_FLAGS) {
            unsigned long long how[2] = {0, 0}; /* struct open_how's flags and mode */
            if (read_memory(pid, args[2], how, sizeof(how)) != 0)
                return 0;
            flags = how[0];
            mode = how[1];
        } else {
            mode = args[call->flags_arg + 1];
        }
        if (!(flags & O_WRITING) || (flags & (O_PATH | O_DIRECTORY | __O_TMPFILE)))
            return 0; /* none of those opens: Landlock decides */
    } else if (call->role == SHM_UNLINK && (flags & AT_REMOVEDIR)) {
        return 0;
    }
    if (!still_waiting(server, notif))
        return 1; /* what was read may be another process's */
    int result;
    if (terminal || own_proc) {
        result = terminal ? open_terminal(server, full, flags)
                          : open_own_proc(server, notif, full, flags);
        if (result == -2)
            return 0;
        if (result >= 0 && (result = hand_over(server, notif, result, flags)) == 0)
            return 1;
        respond(server, notif, 0, errno);
        return 1;
    }
    if (first_in != (call->path2_arg < 0 || second_in)) {
        respond(server, notif, 0, EXDEV); /* /dev/shm is a filesystem of its own */
        return 1;
    }
    switch (call->role) {
    case SHM_OPEN:
        result = shm_open_for(server, name, flags, mode);
        if (result >= 0 && (result = hand_over(server, notif, result, flags)) == 0)
            return 1;
        break;
    case SHM_UNLINK:
        result = unlinkat(server->shm_dir, name, 0);
        break;
    case SHM_LINK: /* the link itself, never what a symlink names */
        result = linkat(server->shm_dir, name, server->shm_dir, second, 0);
        break;
    default:
        result = (int)syscall(SYS_renameat2, server->shm_dir, name, server->shm_dir, second,
                              (unsigned int)flags);
    }
    respond(server, notif, result < 0 ? 0 : result, result < 0 ? errno : 0);
    return 1;
}

static void *serve_notifications(void *argument)
{
    struct server *server = argument;
    if (receive_listener(server) != 0) {
        close(server->report);
        server->report = -1;
        return NULL;
    }
    /* The notifying task and this thread are woken on the same CPU (Linux
     * 6.6): a round trip costs less.  An older kernel refuses it. */
    (void)ioctl(server->listener, SECCOMP_IOCTL_NOTIF_SET_FLAGS,
                (unsigned long)SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP);
    for (;;) {
        /* The listener, the stop, the end, and the anchors of the run's
         * sessions, each to be replaced as soon as it exits (see
         * session_held). */
        struct pollfd wait[3 + MAX_SESSIONS] = {{server->listener, POLLIN, 0},
                                                {server->stop, POLLIN, 0},
                                                {server->end, POLLIN, 0}};
        size_t watched[MAX_SESSIONS], count = 0;
        for (size_t i = 0; i < server->session_count; i++) {
            if (server->sessions[i].watched) {
                wait[3 + count] = (struct pollfd){server->sessions[i].fd, POLLIN, 0};
                watched[count++] = i;
            }
        }
        if (poll(wait, 3 + count, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (wait[2].revents) {
            unsigned long long asked;
            (void)!read(server->end, &asked, sizeof(asked));
            end_sessions(server);
        }
        if (wait[1].revents)
            break;
        for (size_t i = 0; i < count; i++) {
            if (wait[3 + i].revents)
                (void)session_held(server, watched[i]);
        }
        if (!wait[0].revents)
            continue; /* only an anchor exited */
        if (!(wait[0].revents & POLLIN))
            break; /* no process is left under the filter */
        struct seccomp_notif notif;
        memset(&notif, 0, sizeof(notif));
        if (ioctl(server->listener, SECCOMP_IOCTL_NOTIF_RECV, &notif) != 0) {
            if (errno == EINTR || errno == ENOENT)
                continue; /* interrupted, or the caller died meanwhile */
            break;
        }
        if (server->session_count == 0 && server->guarded_count > 0) {
            /* The first to call is the run's first process (its exec is
             * notified), which leads the session the run starts in. */
            record_session(server, &notif, getsid((pid_t)notif.pid), 0);
        }
        if (server->root < 0) {
            /* The run's processes share one root (chroot and pivot_root are
             * refused): the first to write shows where it is, if it is still
             * waiting (else its pid may be another process's by now). */
            char link[64];
            snprintf(link, sizeof(link), "/proc/%u/root", notif.pid);
            server->root = open(link, O_PATH | O_DIRECTORY | O_CLOEXEC);
            if (server->root >= 0 && !still_waiting(server, &notif)) {
                close(server->root);
                server->root = -1;
            }
        }
        if (refuse_another(server, &notif) || look_at_sysv(server, &notif) ||
            redirect(server, &notif) || truncate_for(server, &notif))
            continue;
        int privileged = 0;
        for (size_t i = 0; i < server->refused_count && !privileged; i++) {
            const struct refusal *refusal = &server->refused[i];
            if (refusal->number != notif.data.nr)
                continue;
            if (refusal->arg < 0) {
                privileged = 1;
            } else {
                unsigned int owner = (unsigned int)notif.data.args[refusal->arg];
                privileged = owner != refusal->own && owner != 0xFFFFFFFFu;
            }
        }
        if (privileged) {
            respond(server, &notif, 0, EPERM);
            /* The first two arguments: a refused socket's family and type. */
            char message[13] = {'P'};
            unsigned int first = (unsigned int)notif.data.args[0];
            unsigned int second = (unsigned int)notif.data.args[1];
            memcpy(message + 1, &notif.data.nr, 4);
            memcpy(message + 5, &first, 4);
            memcpy(message + 9, &second, 4);
            (void)!write(server->report, message, sizeof(message));
            continue;
        }
        int signal_call = notif.data.nr == server->kill || notif.data.nr == server->pidfd_open ||
                          notif.data.nr == server->pidfd_signal;
        for (size_t i = 0; i < sizeof(server->to_a_pid) / sizeof(int); i++)
            signal_call |= notif.data.nr == server->to_a_pid[i];
        if (notif.data.nr == server->sendto || notif.data.nr == server->sendmsg ||
            notif.data.nr == server->sendmmsg || notif.data.nr == server->bind || signal_call ||
            notif.data.nr == server->setpriority ||
            notif.data.nr == server->setrlimit || notif.data.nr == server->prlimit64) {
            if (notif.data.nr == server->bind)
                look_at_bind(server, &notif);
            else if (signal_call)
                look_at_kill(server, &notif);
            else if (notif.data.nr == server->setpriority || notif.data.nr == server->setrlimit ||
                     notif.data.nr == server->prlimit64)
                look_at_limit(server, &notif);
            else if (look_at_sends(server, &notif))
                continue; /* answered once looked at */
            let_through(server, &notif);
            continue;
        }
        const struct operand *found =
            find_call(server->operands, server->count, sizeof(*found), notif.data.nr);
        if (found == NULL) {
            char message[1 + sizeof(notif)];
            message[0] = 'N';
            memcpy(message + 1, &notif, sizeof(notif));
            if (write(server->report, message, sizeof(message)) != (ssize_t)sizeof(message))
                break;
            continue;
        }
        for (const struct operand *op = found;
             op < server->operands + server->count && op->number == notif.data.nr; op++)
            look_at(server, &notif, op);
        let_through(server, &notif);
    }
    for (size_t i = 0; i < server->object_count; i++) {
        remove_object(&server->objects[i]);
        announce_object(server, '~', &server->objects[i]);
    }
    for (size_t i = 0; i < server->terminal_count && i < MAX_TERMINALS; i++)
        close(server->terminals[i].master);
    server->terminal_count = 0;
    close(server->report);
    server->report = -1;
    return NULL;
}

static void free_server(struct server *server)
{
    if (server->writable) {
        for (char **path = server->writable; *path; path++)
            free(*path);
        free(server->writable);
    }
    free(server->operands);
    free(server->refused);
    for (size_t i = 0; i < server->object_count; i++)
        free(server->objects[i].name);
    free(server->objects);
    if (server->stop >= 0)
        close(server->stop);
    if (server->end >= 0)
        close(server->end);
    if (server->root >= 0)
        close(server->root);
    for (size_t i = 0; i < server->session_count; i++) {
        announce_session(server, &server->sessions[i], '-');
        close(server->sessions[i].fd);
    }
    free(server);
}

_Static_assert(sizeof(struct guard) == 2 * sizeof(int) &&
                   sizeof(struct sysv_call) == 3 * sizeof(int) &&
                   sizeof(struct shm_call) == 7 * sizeof(int),
               "the call tables are rows of ints");

/* Reads table, a tuple of at most most tuples of width ints each (what
 * names them), into rows, one after the other (structs of width ints);
 * their number, or -1 with an exception set. */
static Py_ssize_t int_rows(PyObject *table, size_t most, int width, int *rows, const char *what)
{
    Py_ssize_t count = PyTuple_GET_SIZE(table);
    if ((size_t)count > most) {
        PyErr_Format(PyExc_ValueError, "too many %ss", what);
        return -1;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *row = PyTuple_GET_ITEM(table, i);
        if (!PyTuple_Check(row) || PyTuple_GET_SIZE(row) != width) {
            PyErr_Format(PyExc_ValueError, "bad %s", what);
            return -1;
        }
        for (int j = 0; j < width; j++) {
            long value = PyLong_AsLong(PyTuple_GET_ITEM(row, j));
            if (value == -1 && PyErr_Occurred())
                return -1;
            if (value < INT_MIN || value > INT_MAX) {
                PyErr_Format(PyExc_ValueError, "bad %s", what);
                return -1;
            }
            rows[i * width + j] = (int)value;
        }
    }
    return count;
}

static PyObject *
gate_serve(PyObject *self, PyObject *args)
{
    int source, init_answers;
    const char *queue_prefix;
    PyObject *writable, *operands, *refused, *guarded, *sysv, *shm;
    struct server *server = calloc(1, sizeof(*server));
    if (server == NULL)
        return PyErr_NoMemory();
    /* The numbers of the calls observed, each let through whatever is known. */
    if (!PyArg_ParseTuple(args, "iOO!O!(iiiiiii(iiii)iii)O!(isO!)(iO!)ip:serve", &source,
                          &writable, &PyTuple_Type, &operands, &PyTuple_Type, &refused,
                          &server->sendto, &server->sendmsg, &server->sendmmsg, &server->bind,
                          &server->kill, &server->pidfd_open, &server->pidfd_signal,
                          &server->to_a_pid[0], &server->to_a_pid[1], &server->to_a_pid[2],
                          &server->to_a_pid[3], &server->setpriority, &server->setrlimit,
                          &server->prlimit64,
                          &PyTuple_Type, &guarded, &server->watchdog, &queue_prefix,
                          &PyTuple_Type, &sysv, &server->shm_dir, &PyTuple_Type, &shm,
                          &server->truncate, &init_answers)) {
        free(server);
        return NULL;
    }
    Py_ssize_t guards = int_rows(guarded, MAX_GUARDED, 2, (int *)server->guarded,
                                 "guarded call");
    Py_ssize_t sysv_calls = int_rows(sysv, MAX_SYSV_CALLS, 3, (int *)server->sysv,
                                     "System V IPC call");
    Py_ssize_t shm_calls = int_rows(shm, MAX_SHM_CALLS, 7, (int *)server->shm, "/dev/shm call");
    if (guards < 0 || sysv_calls < 0 || shm_calls < 0) {
        free(server);
        return NULL;
    }
    server->guarded_count = (size_t)guards;
    server->sysv_count = (size_t)sysv_calls;
    server->shm_count = (size_t)shm_calls;
    int bad = 0;
    for (size_t i = 0; i < server->guarded_count; i++) {
        const struct guard *guard = &server->guarded[i];
        bad |= guard->style < GUARD_PID || guard->style > GUARD_SETSID;
    }
    for (size_t i = 0; i < server->sysv_count; i++) {
        const struct sysv_call *call = &server->sysv[i];
        bad |= call->kind < SYSV_SHM || call->kind > POSIX_MQ || call->role < SYSV_GET ||
               call->role > SYSV_CONTROL;
    }
    for (size_t i = 0; i < server->shm_count; i++) {
        const struct shm_call *call = &server->shm[i];
        bad |= call->role < SHM_OPEN || call->role > SHM_RENAME || call->dir_arg > 5 ||
               call->path_arg < 0 || call->path_arg > 4 || call->dir2_arg > 5 ||
               call->path2_arg > 5 || call->flags_arg < OPEN_HOW_FLAGS || call->flags_arg > 4;
    }
    bad |= strlen(queue_prefix) >= sizeof(server->queue_prefix) ||
           strchr(queue_prefix, '/') != NULL;
    snprintf(server->queue_prefix, sizeof(server->queue_prefix), "%s", queue_prefix);
    if (bad) {
        PyErr_SetString(PyExc_ValueError, "bad guarded, System V IPC or /dev/shm call");
        free(server);
        return NULL;
    }
    server->listener = -1;
    server->source = source;
    server->init_answers = init_answers;
    server->init = init_answers ? source : -1;
    /* The child that runs the command forks from this thread, and adds one. */
    server->own_filters = init_answers ? -1 : seccomp_filters("thread-self");
    server->root = server->stop = server->end = server->report = -1;
    server->count = (size_t)PyTuple_GET_SIZE(operands);
    server->operands = calloc(server->count + 1, sizeof(struct operand));
    server->refused_count = (size_t)PyTuple_GET_SIZE(refused);
    server->refused = calloc(server->refused_count + 1, sizeof(struct refusal));
    if (server->operands == NULL || server->refused == NULL) {
        free_server(server);
        return PyErr_NoMemory();
    }
    for (size_t i = 0; i < server->refused_count; i++) {
        PyObject *item = PyTuple_GET_ITEM(refused, (Py_ssize_t)i);
        struct refusal *refusal = &server->refused[i];
        refusal->arg = -1;
        if (PyTuple_Check(item)) {
            if (!PyArg_ParseTuple(item, "iiI", &refusal->number, &refusal->arg, &refusal->own) ||
                refusal->arg < 0 || refusal->arg > 5) {
                if (!PyErr_Occurred())
                    PyErr_SetString(PyExc_ValueError, "bad refusal");
                free_server(server);
                return NULL;
            }
            continue;
        }
        long number = PyLong_AsLong(item);
        if (number == -1 && PyErr_Occurred()) {
            free_server(server);
            return NULL;
        }
        refusal->number = (int)number;
    }
    for (size_t i = 0; i < server->count; i++) {
        struct operand *op = &server->operands[i];
        if (!PyArg_ParseTuple(PyTuple_GET_ITEM(operands, (Py_ssize_t)i), "iiiii", &op->number,
                              &op->dir_arg, &op->path_arg, &op->action, &op->flags_arg) ||
            op->path_arg < -1 || op->path_arg > 5 || op->dir_arg > 5 || op->flags_arg > 5 ||
            (op->path_arg < 0 && op->dir_arg < 0) ||
            (op->action == ACT_MKNOD && (op->flags_arg < 0 || op->flags_arg > 4))) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_ValueError, "bad operand");
            free_server(server);
            return NULL;
        }
    }
    if (writable != Py_None) {
        if (!PyTuple_Check(writable)) {
            PyErr_SetString(PyExc_TypeError, "writable must be a tuple of bytes or None");
            free_server(server);
            return NULL;
        }
        Py_ssize_t count = PyTuple_GET_SIZE(writable);
        server->writable = calloc((size_t)count + 1, sizeof(char *));
        for (Py_ssize_t i = 0; server->writable != NULL && i < count; i++) {
            PyObject *item = PyTuple_GET_ITEM(writable, i);
            if (!PyBytes_Check(item)) {
                PyErr_SetString(PyExc_TypeError, "writable must be a tuple of bytes or None");
                free_server(server);
                return NULL;
            }
            server->writable[i] = strdup(PyBytes_AS_STRING(item));
            if (server->writable[i] == NULL) {
                free_server(server);
                return PyErr_NoMemory();
            }
        }
        if (server->writable == NULL) {
            free_server(server);
            return PyErr_NoMemory();
        }
    }
    int pipe_fds[2];
    server->stop = eventfd(0, EFD_CLOEXEC);
    server->end = eventfd(0, EFD_CLOEXEC);
    if (server->stop < 0 || server->end < 0 || pipe2(pipe_fds, O_CLOEXEC) != 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        free_server(server);
        return NULL;
    }
    server->report = pipe_fds[1];
    int error = pthread_create(&server->thread, NULL, serve_notifications, server);
    if (error != 0) {
        close(pipe_fds[0]);
        close(pipe_fds[1]);
        free_server(server);
        errno = error;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    return Py_BuildValue("(Ki)", (unsigned long long)(uintptr_t)server, pipe_fds[0]);
}

static PyObject *
gate_stop(PyObject *self, PyObject *args)
{
    unsigned long long handle;
    if (!PyArg_ParseTuple(args, "K:stop", &handle))
        return NULL;
    struct server *server = (struct server *)(uintptr_t)handle;
    unsigned long long one = 1;
    (void)!write(server->stop, &one, sizeof(one));
    Py_RETURN_NONE;
}

/* Asks a thread serve() started to SIGKILL every process of the run's
 * sessions (see end_sessions), without waiting for it to. */
static PyObject *
gate_end_sessions(PyObject *self, PyObject *args)
{
    unsigned long long handle;
    if (!PyArg_ParseTuple(args, "K:end_sessions", &handle))
        return NULL;
    struct server *server = (struct server *)(uintptr_t)handle;
    unsigned long long one = 1;
    (void)!write(server->end, &one, sizeof(one));
    Py_RETURN_NONE;
}

/* Whether the run has a cgroup of its own: told before it starts, read by
 * the thread once a process of the run's calls (see of_the_run). */
static PyObject *
gate_contain(PyObject *self, PyObject *args)
{
    unsigned long long handle;
    int in_cgroup;
    if (!PyArg_ParseTuple(args, "Kp:contain", &handle, &in_cgroup))
        return NULL;
    struct server *server = (struct server *)(uintptr_t)handle;
    __atomic_store_n(&server->run_cgroup, in_cgroup, __ATOMIC_RELEASE);
    Py_RETURN_NONE;
}

/* Joined only once the pipe has been read to its end: a thread blocked
 * writing to a full pipe would never see the stop. */
static PyObject *
gate_join(PyObject *self, PyObject *args)
{
    unsigned long long handle;
    if (!PyArg_ParseTuple(args, "K:join", &handle))
        return NULL;
    struct server *server = (struct server *)(uintptr_t)handle;
    Py_BEGIN_ALLOW_THREADS
    pthread_join(server->thread, NULL);
    Py_END_ALLOW_THREADS
    free_server(server);
    Py_RETURN_NONE;
}

static PyMethodDef gate_methods[] = {
    {"socketpair", gate_socketpair, METH_VARARGS,
     "A close-on-exec Unix stream (or seqpacket) socket pair."},
    {"send_fds", gate_send_fds, METH_VARARGS, "Sends data and descriptors (SCM_RIGHTS)."},
    {"pidfd_getfd", gate_pidfd_getfd, METH_VARARGS, "Duplicate another process's fd."},
    {"socket_option", gate_socket_option, METH_VARARGS, "An int socket option."},
    {"netlink_socket", gate_netlink_socket, METH_VARARGS, "A close-on-exec netlink socket."},
    {"open_in_root", gate_open_in_root, METH_VARARGS, "openat2 confined to a root."},
    {"connect_unix", gate_connect_unix, METH_VARARGS, "connect() to a Unix socket path."},
    {"bind_address", gate_bind_address, METH_VARARGS, "bind() to a raw sockaddr."},
    {"connect_address", gate_connect_address, METH_VARARGS, "connect() to a raw sockaddr."},
    {"listen", gate_listen, METH_VARARGS, "listen()."},
    {"socket_name", gate_socket_name, METH_VARARGS, "getsockname() as a raw sockaddr."},
    {"serve", gate_serve, METH_VARARGS, "A thread serving a seccomp listener."},
    {"contain", gate_contain, METH_VARARGS, "Tells that thread whether the run has a cgroup."},
    {"stop", gate_stop, METH_VARARGS, "Asks a thread serve() started to end."},
    {"end_sessions", gate_end_sessions, METH_VARARGS,
     "Asks that thread to kill every process of the run's sessions."},
    {"join", gate_join, METH_VARARGS, "Waits for a stopped thread, its pipe read to its end."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef gate_module = {
    PyModuleDef_HEAD_INIT, "corral._cgate",
    "System calls of the socket gate (see corral.sandbox.socket_gate).", -1, gate_methods,
};

PyMODINIT_FUNC
PyInit__cgate(void)
{
    return PyModule_Create(&gate_module);
}
