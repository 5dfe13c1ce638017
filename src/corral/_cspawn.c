/*
 * corral._cspawn: the one place where corral creates a process (Linux).
 *
 * Why C: everything that must happen between fork and exec -- joining the
 * run's cgroup, the parent-death signal with its race check, a new session,
 * a clean signal state -- has to run in the child before the command's first
 * instruction.  Python's subprocess offers that only through preexec_fn,
 * which is unsafe in threaded programs and disables vfork; an exec'd shim
 * costs a whole extra exec per command.  Here the child runs a fixed list of
 * async-signal-safe system calls after vfork(), the same technique CPython's
 * _posixsubprocess uses, so a spawn costs what subprocess costs.
 *
 * spawn(path, argv, envp, cwd, stdin_fd, stdout_fd, stderr_fd, keep_fds,
 *       cgroup_procs_fd, pdeathsig)
 *   -> (pid, pidfd, None, 0) on success
 *   -> (-1, -1, stage, errno) when the child failed before exec
 *      (stage names the step: "cgroup", "setsid", "pdeathsig", "stdio",
 *       "fds", "chdir", "exec")
 *
 * keep_fds must be sorted and >= 3; they stay open (without CLOEXEC) in the
 * child at the same numbers.  cgroup_procs_fd is an fd open for writing on a
 * cgroup's cgroup.procs file, or -1.  pidfd is -1 when the kernel lacks
 * pidfd_open (before 5.3).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

enum stage {
    STAGE_CGROUP = 1,
    STAGE_SETSID,
    STAGE_PDEATHSIG,
    STAGE_STDIO,
    STAGE_FDS,
    STAGE_CHDIR,
    STAGE_EXEC,
};

static const char *
stage_name(int stage)
{
    switch (stage) {
    case STAGE_CGROUP: return "cgroup";
    case STAGE_SETSID: return "setsid";
    case STAGE_PDEATHSIG: return "pdeathsig";
    case STAGE_STDIO: return "stdio";
    case STAGE_FDS: return "fds";
    case STAGE_CHDIR: return "chdir";
    case STAGE_EXEC: return "exec";
    }
    return "unknown";
}

/* Mark every fd in [first, last] close-on-exec.  close_range() does it in one
 * call on Linux >= 5.11; older kernels get a bounded loop. */
static int
cloexec_range(int first, int last)
{
    if (first > last)
        return 0;
    if (syscall(SYS_close_range, (unsigned)first, (unsigned)last,
                CLOSE_RANGE_CLOEXEC) == 0)
        return 0;
    if (errno != ENOSYS && errno != EINVAL)
        return -1;
    struct rlimit rl;
    int top = last;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        (rlim_t)top >= rl.rlim_cur)
        top = (int)rl.rlim_cur - 1;
    if (top > 65535)
        top = 65535;
    for (int fd = first; fd <= top; fd++) {
        int flags = fcntl(fd, F_GETFD);
        if (flags >= 0 && !(flags & FD_CLOEXEC))
            fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
    }
    return 0;
}

/* Runs in the vfork()ed child: only system calls, no allocation, never
 * returns.  All signals are blocked on entry. */
static void __attribute__((noinline, noreturn))
child_exec(const char *path, char *const argv[], char *const envp[],
           const char *cwd, int stdio[3], const int *keep, Py_ssize_t nkeep,
           int cgroup_procs_fd, int pdeathsig, pid_t parent, int errpipe)
{
    int stage;
    int err;

    /* Handlers installed by the host (Python's own included) must not run in
     * this child, and SIGPIPE/SIGXFSZ, which Python ignores, must be default
     * again: an ignored disposition survives exec. */
    for (int sig = 1; sig < NSIG; sig++) {
        struct sigaction sa;
        if (sig == SIGKILL || sig == SIGSTOP)
            continue;
        if (sigaction(sig, NULL, &sa) != 0)
            continue;
        if (sa.sa_handler != SIG_DFL &&
            (sa.sa_handler != SIG_IGN || sig == SIGPIPE || sig == SIGXFSZ)) {
            sa.sa_handler = SIG_DFL;
            sa.sa_flags = 0;
            sigemptyset(&sa.sa_mask);
            sigaction(sig, &sa, NULL);
        }
    }

    if (cgroup_procs_fd >= 0) {
        /* "0" moves the writing process: the command starts inside the run's
         * cgroup, before it can fork anything that would escape it. */
        stage = STAGE_CGROUP;
        if (write(cgroup_procs_fd, "0", 1) != 1)
            goto fail;
    }

    stage = STAGE_SETSID;
    if (setsid() < 0)
        goto fail;

    if (pdeathsig > 0) {
        stage = STAGE_PDEATHSIG;
        if (prctl(PR_SET_PDEATHSIG, pdeathsig, 0, 0, 0) != 0)
            goto fail;
        /* The parent may have died before prctl() took effect. */
        if (getppid() != parent) {
            kill(getpid(), pdeathsig);
            _exit(128 + pdeathsig);
        }
    }

    stage = STAGE_STDIO;
    for (int i = 0; i < 3; i++) {
        /* A source that sits on a low fd would be clobbered by an earlier
         * dup2(): lift it out of the way first. */
        if (stdio[i] < 3 && stdio[i] != i) {
            stdio[i] = fcntl(stdio[i], F_DUPFD_CLOEXEC, 3);
            if (stdio[i] < 0)
                goto fail;
        }
    }
    for (int i = 0; i < 3; i++) {
        if (stdio[i] == i) {
            int flags = fcntl(i, F_GETFD);
            if (flags < 0 || fcntl(i, F_SETFD, flags & ~FD_CLOEXEC) < 0)
                goto fail;
        } else if (dup2(stdio[i], i) < 0) {
            goto fail;
        }
    }

    stage = STAGE_FDS;
    {
        int next = 3;
        for (Py_ssize_t i = 0; i < nkeep; i++) {
            if (cloexec_range(next, keep[i] - 1) != 0)
                goto fail;
            int flags = fcntl(keep[i], F_GETFD);
            if (flags < 0 || fcntl(keep[i], F_SETFD, flags & ~FD_CLOEXEC) < 0)
                goto fail;
            next = keep[i] + 1;
        }
        if (cloexec_range(next, ~0U >> 1) != 0)
            goto fail;
    }

    if (cwd != NULL) {
        stage = STAGE_CHDIR;
        if (chdir(cwd) != 0)
            goto fail;
    }

    {
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
    }
    stage = STAGE_EXEC;
    execve(path, argv, envp);

fail:
    err = errno;
    {
        int report[2] = {stage, err};
        ssize_t unused = write(errpipe, report, sizeof report);
        (void)unused;
    }
    _exit(127);
}

/* Converts a sequence of bytes objects to a NULL-terminated char* array that
 * borrows the bytes' buffers (the caller keeps `seq` alive). */
static char **
bytes_array(PyObject *seq, const char *what)
{
    PyObject *fast = PySequence_Fast(seq, what);
    if (fast == NULL)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
    char **out = PyMem_Calloc((size_t)n + 1, sizeof(char *));
    if (out == NULL) {
        Py_DECREF(fast);
        PyErr_NoMemory();
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PySequence_Fast_GET_ITEM(fast, i);
        if (!PyBytes_Check(item)) {
            PyErr_Format(PyExc_TypeError, "%s items must be bytes", what);
            PyMem_Free(out);
            Py_DECREF(fast);
            return NULL;
        }
        out[i] = PyBytes_AS_STRING(item);
    }
    Py_DECREF(fast);
    return out;
}

static PyObject *
cspawn_spawn(PyObject *self, PyObject *args)
{
    PyObject *path_obj, *argv_obj, *envp_obj, *cwd_obj, *keep_obj;
    int stdio[3];
    int cgroup_procs_fd, pdeathsig;

    if (!PyArg_ParseTuple(args, "O!OOOiiiOii:spawn", &PyBytes_Type, &path_obj,
                          &argv_obj, &envp_obj, &cwd_obj, &stdio[0], &stdio[1],
                          &stdio[2], &keep_obj, &cgroup_procs_fd, &pdeathsig))
        return NULL;
    if (cwd_obj != Py_None && !PyBytes_Check(cwd_obj)) {
        PyErr_SetString(PyExc_TypeError, "cwd must be bytes or None");
        return NULL;
    }

    /* The sequences must stay alive while the child borrows their buffers. */
    PyObject *argv_list = PySequence_List(argv_obj);
    PyObject *envp_list = argv_list ? PySequence_List(envp_obj) : NULL;
    PyObject *keep_list = envp_list ? PySequence_List(keep_obj) : NULL;
    char **argv = NULL, **envp = NULL;
    int *keep = NULL;
    PyObject *result = NULL;
    int errpipe[2] = {-1, -1};

    if (keep_list == NULL)
        goto done;
    if ((argv = bytes_array(argv_list, "argv")) == NULL)
        goto done;
    if ((envp = bytes_array(envp_list, "envp")) == NULL)
        goto done;
    Py_ssize_t nkeep = PyList_GET_SIZE(keep_list);
    keep = PyMem_Calloc((size_t)nkeep + 1, sizeof(int));
    if (keep == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < nkeep; i++) {
        long fd = PyLong_AsLong(PyList_GET_ITEM(keep_list, i));
        if (fd == -1 && PyErr_Occurred())
            goto done;
        if (fd < 3 || fd > INT_MAX || (i > 0 && fd <= keep[i - 1])) {
            PyErr_SetString(PyExc_ValueError,
                            "keep_fds must be sorted, unique and >= 3");
            goto done;
        }
        keep[i] = (int)fd;
    }
    if (pipe2(errpipe, O_CLOEXEC) != 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        goto done;
    }

    const char *path = PyBytes_AS_STRING(path_obj);
    const char *cwd = cwd_obj == Py_None ? NULL : PyBytes_AS_STRING(cwd_obj);
    pid_t parent = getpid();
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid_t pid = vfork();
    if (pid == 0)
        child_exec(path, argv, envp, cwd, stdio, keep, nkeep, cgroup_procs_fd,
                   pdeathsig, parent, errpipe[1]);
    int vfork_errno = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    close(errpipe[1]);
    errpipe[1] = -1;
    if (pid < 0) {
        errno = vfork_errno;
        PyErr_SetFromErrno(PyExc_OSError);
        goto done;
    }

    /* vfork() resumed us only after the child exec'd or exited, so the pipe
     * already holds a report or is at EOF. */
    int report[2];
    ssize_t got;
    do {
        got = read(errpipe[0], report, sizeof report);
    } while (got < 0 && errno == EINTR);
    if (got == (ssize_t)sizeof report) {
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
        result = Py_BuildValue("(iisi)", -1, -1, stage_name(report[0]),
                               report[1]);
        goto done;
    }
    int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (pidfd >= 0)
        fcntl(pidfd, F_SETFD, FD_CLOEXEC);
    result = Py_BuildValue("(iiOi)", (int)pid, pidfd, Py_None, 0);

done:
    if (errpipe[0] >= 0)
        close(errpipe[0]);
    if (errpipe[1] >= 0)
        close(errpipe[1]);
    PyMem_Free(argv);
    PyMem_Free(envp);
    PyMem_Free(keep);
    Py_XDECREF(argv_list);
    Py_XDECREF(envp_list);
    Py_XDECREF(keep_list);
    return result;
}

static PyMethodDef cspawn_methods[] = {
    {"spawn", cspawn_spawn, METH_VARARGS,
     "Start a process; see the module source for the contract."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef cspawn_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "corral._cspawn",
    .m_doc = "Process creation with cgroup placement and parent-death signal.",
    .m_size = -1,
    .m_methods = cspawn_methods,
};

PyMODINIT_FUNC
PyInit__cspawn(void)
{
    return PyModule_Create(&cspawn_module);
}
