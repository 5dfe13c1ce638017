/*
 * corral._cspawn: the one place where corral creates a process (Linux).
 *
 * Why C: everything that must happen between fork and exec -- joining the
 * run's cgroup, the parent-death signal with its race check, a new session,
 * a clean signal state -- has to run in the child before the command's first
 * instruction.  Python's subprocess offers that only through preexec_fn,
 * which is unsafe in threaded programs and disables vfork; an exec'd shim
 * costs a whole extra exec per command.  Here the child runs a fixed list of
 * async-signal-safe system calls, so a spawn costs what subprocess costs:
 * clone3(CLONE_INTO_CGROUP) when the child goes into a cgroup (Linux 5.7+),
 * vfork() otherwise -- the technique CPython's _posixsubprocess uses.
 *
 * spawn(path, argv, envp, cwd, stdin_fd, stdout_fd, stderr_fd, keep_fds,
 *       cgroup_fd, pdeathsig, landlock_fd, seccomp, listener_socket=-1,
 *       drop_capabilities=0, controlling_terminal=0)
 *   -> (pid, pidfd, None, 0) on success
 *   -> (-1, -1, stage, errno) when the child failed before exec
 *      (stage names the step: "cgroup", "setsid", "pdeathsig", "stdio",
 *       "terminal", "fds", "chdir", "no_new_privs", "capabilities", "landlock", "seccomp",
 *       "exec")
 *
 * keep_fds must be sorted and >= 3; they stay open (without CLOEXEC) in the
 * child at the same numbers.  cgroup_fd is an fd on the directory of the
 * cgroup the child must start in, or -1.  landlock_fd (or -1) is a Landlock
 * ruleset the child enforces on itself, seccomp (or None) a seccomp-BPF
 * program it loads, both right before exec and after no_new_privs.  With
 * listener_socket (a Unix socket, or -1) the program is loaded with
 * SECCOMP_FILTER_FLAG_NEW_LISTENER and the listener fd is sent over that
 * socket (SCM_RIGHTS), then closed, so that only the parent can answer the
 * program's user notifications.  With drop_capabilities the child empties
 * its capability sets and bounding set (so that a root caller's command
 * holds no capability, and regains none by exec).  With
 * controlling_terminal, stdin (a pseudo-terminal's slave) becomes the new
 * session's controlling terminal.  pidfd is -1 when the kernel lacks pidfds
 * (before 5.3).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/sched.h>

#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif
#ifndef SYS_clone3
#define SYS_clone3 435
#endif
#ifndef SYS_landlock_restrict_self
#define SYS_landlock_restrict_self 446
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SECCOMP_FILTER_FLAG_NEW_LISTENER
#define SECCOMP_FILTER_FLAG_NEW_LISTENER (1UL << 3)
#endif
#ifndef SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
#define SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (1UL << 5)
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
    STAGE_TERMINAL,
    STAGE_FDS,
    STAGE_CHDIR,
    STAGE_NO_NEW_PRIVS,
    STAGE_CAPABILITIES,
    STAGE_LANDLOCK,
    STAGE_SECCOMP,
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
    case STAGE_TERMINAL: return "terminal";
    case STAGE_FDS: return "fds";
    case STAGE_CHDIR: return "chdir";
    case STAGE_NO_NEW_PRIVS: return "no_new_privs";
    case STAGE_CAPABILITIES: return "capabilities";
    case STAGE_LANDLOCK: return "landlock";
    case STAGE_SECCOMP: return "seccomp";
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

/* Everything the child needs, passed through the clone3 trampoline. */
struct child_args {
    const char *path;
    char *const *argv;
    char *const *envp;
    const char *cwd;
    int *stdio;
    const int *keep;
    Py_ssize_t nkeep;
    int cgroup_procs_fd;
    int pdeathsig;
    pid_t parent;
    int errpipe;
    /* Confinement applied last before exec (sandbox backends): a Landlock
     * ruleset to enforce, a seccomp program (struct sock_filter array). */
    int landlock_fd;
    const char *seccomp;
    Py_ssize_t seccomp_len;
    int listener_socket;
    int drop_capabilities;
    int controlling_terminal;
};

/* Runs in the vfork()ed child: only system calls, no allocation, never
 * returns.  All signals are blocked on entry. */
static void __attribute__((noinline, noreturn))
child_exec(const struct child_args *a)
{
    const char *path = a->path;
    const char *cwd = a->cwd;
    int *stdio = a->stdio;
    const int *keep = a->keep;
    Py_ssize_t nkeep = a->nkeep;
    int cgroup_procs_fd = a->cgroup_procs_fd;
    int pdeathsig = a->pdeathsig;
    pid_t parent = a->parent;
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

    if (a->controlling_terminal) {
        stage = STAGE_TERMINAL;
        if (ioctl(0, TIOCSCTTY, 0) != 0)
            goto fail;
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

    if (a->landlock_fd >= 0 || a->seccomp != NULL) {
        /* Required by both, and keeps setuid programs from regaining what
         * the confinement takes away. */
        stage = STAGE_NO_NEW_PRIVS;
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
            goto fail;
    }
    if (a->drop_capabilities) {
        stage = STAGE_CAPABILITIES;
        /* The bounding set first (it needs CAP_SETPCAP, dropped below): an
         * exec, of a setuid program or as uid 0, cannot regain what is not in
         * it.  EINVAL ends the loop past the kernel's last capability; EPERM
         * means there is no CAP_SETPCAP, and so no capability to lose. */
        for (int cap = 0; cap < 64; cap++) {
            if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0) {
                if (errno == EINVAL || errno == EPERM)
                    break;
                goto fail;
            }
        }
        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL)
            goto fail;
        struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
        struct __user_cap_data_struct none[_LINUX_CAPABILITY_U32S_3];
        memset(none, 0, sizeof(none));
        if (syscall(SYS_capset, &header, none) != 0)
            goto fail;
    }
    if (a->landlock_fd >= 0) {
        stage = STAGE_LANDLOCK;
        if (syscall(SYS_landlock_restrict_self, a->landlock_fd, 0) != 0)
            goto fail;
    }
    if (a->seccomp != NULL) {
        stage = STAGE_SECCOMP;
        struct sock_fprog prog = {
            .len = (unsigned short)(a->seccomp_len / sizeof(struct sock_filter)),
            .filter = (struct sock_filter *)a->seccomp,
        };
        if (a->listener_socket < 0) {
            if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) != 0)
                goto fail;
        } else {
            /* Killable once corral has read a notification: a caught signal
             * would otherwise interrupt the call while corral is carrying it
             * out, as no call without the filter would be (EINTR from an
             * open(), or a restart that makes the call twice).  Before Linux
             * 5.19 the flag is refused, and the wait stays interruptible. */
            int listener = (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER,
                                        SECCOMP_FILTER_FLAG_NEW_LISTENER
                                            | SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV, &prog);
            if (listener < 0 && errno == EINVAL)
                listener = (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER,
                                        SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
            if (listener < 0)
                goto fail;
            char byte = 0;
            struct iovec iov = {.iov_base = &byte, .iov_len = 1};
            union {
                struct cmsghdr header;
                char space[CMSG_SPACE(sizeof(int))];
            } control;
            memset(&control, 0, sizeof(control));
            struct msghdr msg = {
                .msg_iov = &iov, .msg_iovlen = 1,
                .msg_control = control.space, .msg_controllen = sizeof(control.space),
            };
            struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
            cmsg->cmsg_level = SOL_SOCKET;
            cmsg->cmsg_type = SCM_RIGHTS;
            cmsg->cmsg_len = CMSG_LEN(sizeof(int));
            memcpy(CMSG_DATA(cmsg), &listener, sizeof(int));
            ssize_t sent = sendmsg(a->listener_socket, &msg, MSG_NOSIGNAL);
            close(listener);
            if (sent != 1)
                goto fail;
        }
    }

    {
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
    }
    stage = STAGE_EXEC;
    execve(path, a->argv, a->envp);

fail:
    err = errno;
    {
        int report[2] = {stage, err};
        ssize_t unused = write(a->errpipe, report, sizeof report);
        (void)unused;
    }
    _exit(127);
}

static void __attribute__((noreturn))
child_main(void *p)
{
    child_exec(p);
}

/* The child's stack for clone3 with CLONE_VM: child_exec needs a few KiB. */
#define CHILD_STACK_SIZE (64 * 1024)

#if defined(__x86_64__) || defined(__aarch64__)
#define HAVE_CLONE3_VFORK 1
/* clone3() with CLONE_VM|CLONE_VFORK and a stack of the child's own: the
 * speed of vfork() plus CLONE_INTO_CGROUP, which vfork() lacks.  The child
 * starts on its new stack right after the system call instruction, so it
 * must not return through C code: the assembly calls fn(arg) directly, and
 * fn never returns.  Registers r12/r13 (x19/x20) are preserved across the
 * system call, which is how fn and arg reach the child. */
static long
clone3_vfork(struct clone_args *ca, void (*fn)(void *), void *arg)
{
#if defined(__x86_64__)
    register long rax __asm__("rax") = SYS_clone3;
    register void *rdi __asm__("rdi") = ca;
    register long rsi __asm__("rsi") = (long)sizeof *ca;
    register void (*r12)(void *) __asm__("r12") = fn;
    register void *r13 __asm__("r13") = arg;
    __asm__ volatile("syscall\n\t"
                     "test %%rax, %%rax\n\t"
                     "jnz 1f\n\t"
                     "xor %%ebp, %%ebp\n\t"
                     "mov %%r13, %%rdi\n\t"
                     "call *%%r12\n\t"
                     "ud2\n"
                     "1:"
                     : "+r"(rax)
                     : "r"(rdi), "r"(rsi), "r"(r12), "r"(r13)
                     : "rcx", "r11", "memory");
    return rax;
#else
    register long x8 __asm__("x8") = SYS_clone3;
    register long x0 __asm__("x0") = (long)ca;
    register long x1 __asm__("x1") = (long)sizeof *ca;
    register void (*x19)(void *) __asm__("x19") = fn;
    register void *x20 __asm__("x20") = arg;
    __asm__ volatile("svc #0\n\t"
                     "cbnz x0, 1f\n\t"
                     "mov x29, xzr\n\t"
                     "mov x0, x20\n\t"
                     "blr x19\n\t"
                     "brk #0\n"
                     "1:"
                     : "+r"(x0)
                     : "r"(x8), "r"(x1), "r"(x19), "r"(x20)
                     : "x30", "memory");
    return x0;
#endif
}
#endif

/* What start_child reports: a pid and pidfd; or the stage and errno at
 * which the child failed before exec; or os_errno for a failure here. */
struct outcome {
    pid_t pid;
    int pidfd;
    int stage;
    int err;
    int os_errno;
};

/* Starts the child and waits until it has exec'd or failed.  Runs without
 * the GIL: only system calls and raw allocation.  Closes errpipe[1]. */
static void
start_child(struct child_args *child, int cgroup_fd, int errpipe[2], struct outcome *out)
{
    int procs_fd = -1;
    pid_t pid = -1;
    int spawn_errno = 0;
    sigset_t all, old;
    sigfillset(&all);
    *out = (struct outcome){.pid = -1, .pidfd = -1};

    if (cgroup_fd >= 0) {
        /* clone3(CLONE_INTO_CGROUP) starts the child inside the cgroup.  The
         * alternative, writing its pid to cgroup.procs, is a migration, which
         * costs a whole RCU grace period (milliseconds) whenever no other
         * migration happened just before -- i.e. for every one-shot caller. */
        struct clone_args ca;
        memset(&ca, 0, sizeof ca);
        ca.flags = CLONE_INTO_CGROUP | CLONE_PIDFD;
        ca.pidfd = (uint64_t)(uintptr_t)&out->pidfd;
        ca.exit_signal = SIGCHLD;
        ca.cgroup = (uint64_t)cgroup_fd;
#ifdef HAVE_CLONE3_VFORK
        char *stack = PyMem_RawMalloc(CHILD_STACK_SIZE);
        if (stack == NULL) {
            out->os_errno = ENOMEM;
            goto finish;
        }
        ca.flags |= CLONE_VM | CLONE_VFORK;
        ca.stack = (uint64_t)(uintptr_t)stack;
        ca.stack_size = CHILD_STACK_SIZE;
        pthread_sigmask(SIG_SETMASK, &all, &old);
        long ret = clone3_vfork(&ca, child_main, child);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        PyMem_RawFree(stack);
        pid = ret < 0 ? -1 : (pid_t)ret;
        spawn_errno = ret < 0 ? (int)-ret : 0;
#else
        /* Without the trampoline, clone3 forks (copy-on-write): slower than
         * vfork in a large process, but the child may return from syscall(). */
        pthread_sigmask(SIG_SETMASK, &all, &old);
        pid = (pid_t)syscall(SYS_clone3, &ca, sizeof ca);
        if (pid == 0)
            child_main(child);
        spawn_errno = errno;
        pthread_sigmask(SIG_SETMASK, &old, NULL);
#endif
        if (pid < 0 && spawn_errno != ENOSYS && spawn_errno != E2BIG &&
            spawn_errno != EINVAL) {
            out->stage = STAGE_CGROUP;
            out->err = spawn_errno;
            goto finish;
        }
        if (pid < 0) {
            /* Before Linux 5.7: the child joins by writing cgroup.procs. */
            procs_fd = openat(cgroup_fd, "cgroup.procs", O_WRONLY | O_CLOEXEC);
            if (procs_fd < 0) {
                out->stage = STAGE_CGROUP;
                out->err = errno;
                goto finish;
            }
            child->cgroup_procs_fd = procs_fd;
        }
    }
    if (pid < 0) {
        pthread_sigmask(SIG_SETMASK, &all, &old);
        pid = vfork();
        if (pid == 0)
            child_main(child);
        spawn_errno = errno;
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (pid < 0) {
            out->os_errno = spawn_errno;
            goto finish;
        }
    }

    close(errpipe[1]);
    errpipe[1] = -1;
    /* The child's end closes at exec or exit: block until one of them. */
    int report[2];
    ssize_t got;
    do {
        got = read(errpipe[0], report, sizeof report);
    } while (got < 0 && errno == EINTR);
    if (got == (ssize_t)sizeof report) {
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
        if (out->pidfd >= 0)
            close(out->pidfd);
        out->pidfd = -1;
        out->stage = report[0];
        out->err = report[1];
        goto finish;
    }
    if (out->pidfd < 0)
        out->pidfd = (int)syscall(SYS_pidfd_open, pid, 0); /* -1 before Linux 5.3 */
    out->pid = pid;

finish:
    if (errpipe[1] >= 0) {
        close(errpipe[1]);
        errpipe[1] = -1;
    }
    if (procs_fd >= 0)
        close(procs_fd);
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
    PyObject *path_obj, *argv_obj, *envp_obj, *cwd_obj, *keep_obj, *seccomp_obj;
    int stdio[3];
    int cgroup_fd, pdeathsig, landlock_fd, listener_socket = -1, drop_capabilities = 0;
    int controlling_terminal = 0;

    if (!PyArg_ParseTuple(args, "O!OOOiiiOiiiO|ipp:spawn", &PyBytes_Type, &path_obj,
                          &argv_obj, &envp_obj, &cwd_obj, &stdio[0], &stdio[1],
                          &stdio[2], &keep_obj, &cgroup_fd, &pdeathsig,
                          &landlock_fd, &seccomp_obj, &listener_socket,
                          &drop_capabilities, &controlling_terminal))
        return NULL;
    if (listener_socket >= 0 && seccomp_obj == Py_None) {
        PyErr_SetString(PyExc_ValueError, "listener_socket needs a seccomp program");
        return NULL;
    }
    if (seccomp_obj != Py_None &&
        (!PyBytes_Check(seccomp_obj) || PyBytes_GET_SIZE(seccomp_obj) == 0 ||
         PyBytes_GET_SIZE(seccomp_obj) % sizeof(struct sock_filter) != 0 ||
         PyBytes_GET_SIZE(seccomp_obj) / sizeof(struct sock_filter) > BPF_MAXINSNS)) {
        PyErr_SetString(PyExc_ValueError,
                        "seccomp must be None or a non-empty array of sock_filter");
        return NULL;
    }
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

    struct child_args child = {
        PyBytes_AS_STRING(path_obj),
        argv,
        envp,
        cwd_obj == Py_None ? NULL : PyBytes_AS_STRING(cwd_obj),
        stdio,
        keep,
        nkeep,
        -1,
        pdeathsig,
        getpid(),
        errpipe[1],
        landlock_fd,
        seccomp_obj == Py_None ? NULL : PyBytes_AS_STRING(seccomp_obj),
        seccomp_obj == Py_None ? 0 : PyBytes_GET_SIZE(seccomp_obj),
        listener_socket,
        drop_capabilities,
        controlling_terminal,
    };
    struct outcome out;
    /* Other threads run while this one waits for the child's exec: with the
     * GIL held, a child slow to exec (a loaded machine) stalls the program. */
    Py_BEGIN_ALLOW_THREADS
    start_child(&child, cgroup_fd, errpipe, &out);
    Py_END_ALLOW_THREADS
    if (out.os_errno) {
        errno = out.os_errno;
        PyErr_SetFromErrno(PyExc_OSError);
    } else if (out.stage) {
        result = Py_BuildValue("(iisi)", -1, -1, stage_name(out.stage), out.err);
    } else {
        result = Py_BuildValue("(iiOi)", (int)out.pid, out.pidfd, Py_None, 0);
    }

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
