/*
 * corral._cgate: the system calls the Unix socket gate makes for a sandboxed
 * command (see corral/sandbox/unix_gate.py), in C so that a sandboxed
 * `corral run` imports neither ctypes nor socket (5 ms of start-up together).
 *
 * socketpair() -> (fd, fd)            a Unix stream pair, close-on-exec
 * receive_fd(sock) -> fd              one descriptor sent with SCM_RIGHTS
 * pidfd_getfd(pidfd, fd) -> fd        a duplicate of another process's fd
 * socket_domain(fd) -> int            SO_DOMAIN (AF_UNIX, AF_INET, ...)
 * open_in_root(root, path, flags) -> fd
 *                                     openat2 with RESOLVE_IN_ROOT and
 *                                     RESOLVE_NO_MAGICLINKS: ``root`` is ``/``
 * connect_unix(fd, path) -> None      connect() to a pathname Unix socket
 *
 * Each raises OSError with the system call's errno.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>
#include <linux/openat2.h>

#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif
#ifndef SYS_openat2
#define SYS_openat2 437
#endif

static PyObject *
gate_socketpair(PyObject *self, PyObject *unused)
{
    int fds[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    return Py_BuildValue("(ii)", fds[0], fds[1]);
}

static PyObject *
gate_receive_fd(PyObject *self, PyObject *args)
{
    int sock;
    if (!PyArg_ParseTuple(args, "i:receive_fd", &sock))
        return NULL;
    char byte;
    struct iovec iov = {.iov_base = &byte, .iov_len = 1};
    union {
        struct cmsghdr header;
        char space[CMSG_SPACE(sizeof(int))];
    } control;
    struct msghdr msg = {
        .msg_iov = &iov, .msg_iovlen = 1,
        .msg_control = control.space, .msg_controllen = sizeof(control.space),
    };
    ssize_t got;
    Py_BEGIN_ALLOW_THREADS
    got = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
    Py_END_ALLOW_THREADS
    if (got < 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
    if (got == 0 || cmsg == NULL || cmsg->cmsg_level != SOL_SOCKET ||
        cmsg->cmsg_type != SCM_RIGHTS || cmsg->cmsg_len != CMSG_LEN(sizeof(int))) {
        errno = EPROTO;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    int fd;
    memcpy(&fd, CMSG_DATA(cmsg), sizeof(int));
    return PyLong_FromLong(fd);
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
gate_socket_domain(PyObject *self, PyObject *args)
{
    int fd, domain;
    socklen_t size = sizeof(domain);
    if (!PyArg_ParseTuple(args, "i:socket_domain", &fd))
        return NULL;
    if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &size) != 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    return PyLong_FromLong(domain);
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

static PyMethodDef gate_methods[] = {
    {"socketpair", gate_socketpair, METH_NOARGS, "A close-on-exec Unix stream socket pair."},
    {"receive_fd", gate_receive_fd, METH_VARARGS, "One descriptor sent with SCM_RIGHTS."},
    {"pidfd_getfd", gate_pidfd_getfd, METH_VARARGS, "Duplicate another process's fd."},
    {"socket_domain", gate_socket_domain, METH_VARARGS, "A socket's address family."},
    {"open_in_root", gate_open_in_root, METH_VARARGS, "openat2 confined to a root."},
    {"connect_unix", gate_connect_unix, METH_VARARGS, "connect() to a Unix socket path."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef gate_module = {
    PyModuleDef_HEAD_INIT, "corral._cgate",
    "System calls of the Unix socket gate (see corral.sandbox.unix_gate).", -1, gate_methods,
};

PyMODINIT_FUNC
PyInit__cgate(void)
{
    return PyModule_Create(&gate_module);
}
