/* Calls every syscall that Docker's default seccomp profile filters by argument
 * (and a few it filters by name), each in a way that is harmless when allowed,
 * and prints one line per call: "<call> ok" or "<call> <errno name>". Built
 * statically by the isolation tests and run inside a container under berth's
 * own runtime and under runc with the same config.json, whose lines must match. */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *verdict(long rc, int err) {
    static char buf[32];
    if (rc >= 0)
        return "ok";
    switch (err) {
    case EPERM: return "EPERM";
    case ENOSYS: return "ENOSYS";
    case EACCES: return "EACCES";
    case EINVAL: return "EINVAL";
    case EAFNOSUPPORT: return "EAFNOSUPPORT";
    case EPROTONOSUPPORT: return "EPROTONOSUPPORT";
    case ESOCKTNOSUPPORT: return "ESOCKTNOSUPPORT";
    default:
        snprintf(buf, sizeof buf, "errno%d", err);
        return buf;
    }
}

/* A raw clone whose child exits at once, so that no libc state is shared. */
static void probe_clone(const char *name, unsigned long flags) {
    long pid = syscall(SYS_clone, flags | SIGCHLD, 0, 0, 0, 0);
    if (pid == 0)
        _exit(0);
    int err = errno;
    if (pid > 0)
        waitpid((pid_t)pid, NULL, 0);
    printf("%s %s\n", name, verdict(pid, err));
}

static void probe_clone3(const char *name, unsigned long long flags) {
    struct clone_args args;
    memset(&args, 0, sizeof args);
    args.flags = flags;
    args.exit_signal = SIGCHLD;
    long pid = syscall(SYS_clone3, &args, sizeof args);
    if (pid == 0)
        _exit(0);
    int err = errno;
    if (pid > 0)
        waitpid((pid_t)pid, NULL, 0);
    printf("%s %s\n", name, verdict(pid, err));
}

static void probe_socket(const char *name, int family, int type, int protocol) {
    long fd = syscall(SYS_socket, family, type, protocol);
    int err = errno;
    if (fd >= 0)
        close((int)fd);
    printf("%s %s\n", name, verdict(fd, err));
}

static void probe_personality(const char *name, unsigned long persona) {
    long rc = syscall(SYS_personality, persona);
    int err = errno;
    /* Back to the default persona, so that later probes run unchanged. */
    syscall(SYS_personality, 0UL);
    printf("%s %s\n", name, verdict(rc, err));
}

static void probe_unshare(const char *name, int flags) {
    /* In a child: a successful unshare must not change the probe itself. */
    pid_t pid = fork();
    if (pid == 0)
        _exit(syscall(SYS_unshare, flags) == 0 ? 0 : errno);
    int status = 0;
    waitpid(pid, &status, 0);
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 255;
    printf("%s %s\n", name, verdict(code == 0 ? 0 : -1, code));
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    probe_clone("clone(plain)", 0);
    probe_clone("clone(CLONE_NEWUSER)", CLONE_NEWUSER);
    probe_clone("clone(CLONE_NEWUSER|CLONE_NEWNET)", CLONE_NEWUSER | CLONE_NEWNET);
    probe_clone("clone(CLONE_NEWNS)", CLONE_NEWNS);
    probe_clone("clone(CLONE_NEWUTS)", CLONE_NEWUTS);
    probe_clone("clone(CLONE_NEWIPC)", CLONE_NEWIPC);
    probe_clone("clone(CLONE_NEWPID)", CLONE_NEWPID);
    probe_clone("clone(CLONE_NEWCGROUP)", CLONE_NEWCGROUP);
    probe_clone3("clone3(plain)", 0);
    probe_clone3("clone3(CLONE_NEWUSER)", CLONE_NEWUSER);
    probe_unshare("unshare(CLONE_NEWUSER)", CLONE_NEWUSER);
    probe_unshare("unshare(CLONE_NEWNET)", CLONE_NEWNET);
    probe_socket("socket(AF_INET,SOCK_STREAM)", AF_INET, SOCK_STREAM, 0);
    probe_socket("socket(AF_UNIX,SOCK_DGRAM)", AF_UNIX, SOCK_DGRAM, 0);
    probe_socket("socket(AF_NETLINK,NETLINK_ROUTE)", AF_NETLINK, SOCK_RAW, 0);
    probe_socket("socket(AF_NETLINK,NETLINK_NETFILTER)", AF_NETLINK, SOCK_RAW, 12);
    probe_socket("socket(AF_PACKET,SOCK_RAW)", AF_PACKET, SOCK_RAW, 0);
    probe_socket("socket(AF_ALG)", 38, SOCK_SEQPACKET, 0);
    probe_socket("socket(AF_NFC)", 39, SOCK_DGRAM, 0);
    probe_socket("socket(AF_VSOCK)", 40, SOCK_STREAM, 0);
    probe_socket("socket(AF_XDP)", 44, SOCK_RAW, 0);
    probe_personality("personality(PER_LINUX)", 0);
    probe_personality("personality(UNAME26)", 0x0020000);
    probe_personality("personality(PER_LINUX32)", 8);
    probe_personality("personality(UNAME26|PER_LINUX32)", 0x0020008);
    probe_personality("personality(query)", 0xffffffffUL);
    probe_personality("personality(READ_IMPLIES_EXEC)", 0x0400000);
    probe_personality("personality(ADDR_NO_RANDOMIZE)", 0x0040000);
    return 0;
}
