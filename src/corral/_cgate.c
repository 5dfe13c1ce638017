/*
 * corral._cgate: the system calls the socket gate makes for a sandboxed
 * command (see corral/sandbox/socket_gate.py), in C so that a sandboxed
 * `corral run` imports neither ctypes nor socket (5 ms of start-up together).
 *
 * socketpair() -> (fd, fd)            a Unix stream pair, close-on-exec
 * receive_fd(sock) -> fd              one descriptor sent with SCM_RIGHTS
 * pidfd_getfd(pidfd, fd) -> fd        a duplicate of another process's fd
 * socket_option(fd, level, name) -> int
 *                                     an int socket option (SO_DOMAIN, ...)
 * open_in_root(root, path, flags) -> fd
 *                                     openat2 with RESOLVE_IN_ROOT and
 *                                     RESOLVE_NO_MAGICLINKS: ``root`` is ``/``
 * connect_unix(fd, path) -> None      connect() to a pathname Unix socket
 * bind_address(fd, sockaddr) -> None  bind() to a raw struct sockaddr
 * connect_address(fd, sockaddr) -> None
 *                                     connect() to a raw struct sockaddr
 * listen(fd, backlog) -> None         listen()
 * socket_name(fd) -> bytes            getsockname(), the raw struct sockaddr
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
gate_socket_option(PyObject *self, PyObject *args)
{
    int fd, level, name, value;
    socklen_t size = sizeof(value);
    if (!PyArg_ParseTuple(args, "iii:socket_option", &fd, &level, &name))
        return NULL;
    if (getsockopt(fd, level, name, &value, &size) != 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    return PyLong_FromLong(value);
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

static PyMethodDef gate_methods[] = {
    {"socketpair", gate_socketpair, METH_NOARGS, "A close-on-exec Unix stream socket pair."},
    {"receive_fd", gate_receive_fd, METH_VARARGS, "One descriptor sent with SCM_RIGHTS."},
    {"pidfd_getfd", gate_pidfd_getfd, METH_VARARGS, "Duplicate another process's fd."},
    {"socket_option", gate_socket_option, METH_VARARGS, "An int socket option."},
    {"open_in_root", gate_open_in_root, METH_VARARGS, "openat2 confined to a root."},
    {"connect_unix", gate_connect_unix, METH_VARARGS, "connect() to a Unix socket path."},
    {"bind_address", gate_bind_address, METH_VARARGS, "bind() to a raw sockaddr."},
    {"connect_address", gate_connect_address, METH_VARARGS, "connect() to a raw sockaddr."},
    {"listen", gate_listen, METH_VARARGS, "listen()."},
    {"socket_name", gate_socket_name, METH_VARARGS, "getsockname() as a raw sockaddr."},
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
