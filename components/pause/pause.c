/*
 * pause: the process that holds a pod's namespaces open.
 *
 * It is the first process of the pod sandbox, so it also has PID 1's duty of
 * reaping orphans that get re-parented to it. It exits 0 when asked to stop
 * (SIGTERM or SIGINT) and otherwise sleeps, using no CPU.
 *
 * Built statically (gcc -static -Os -s) so the image needs no libc.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef PAUSE_VERSION
#define PAUSE_VERSION "dev"
#endif

static volatile sig_atomic_t stop_requested;
static volatile sig_atomic_t child_exited;

static void note_stop(int signo)
{
    (void)signo;
    stop_requested = 1;
}

static void note_child(int signo)
{
    (void)signo;
    child_exited = 1;
}

static int install(int signo, void (*handler)(int))
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = handler;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    return sigaction(signo, &sa, NULL);
}

/* Collect every child that has exited, without blocking. */
static void reap_children(void)
{
    for (;;) {
        pid_t pid = waitpid(-1, NULL, WNOHANG);
        if (pid > 0)
            continue;
        if (pid < 0 && errno == EINTR)
            continue;
        return; /* 0: children remain but none exited; -1/ECHILD: none left */
    }
}

int main(int argc, char **argv)
{
    sigset_t watched, during_wait;

    if (argc == 2 && strcmp(argv[1], "-v") == 0) {
        printf("pause (microkube) %s\n", PAUSE_VERSION);
        return 0;
    }
    if (argc > 1) {
        fprintf(stderr, "usage: %s [-v]\n", argv[0]);
        return 2;
    }
    if (getpid() != 1)
        fprintf(stderr, "pause: not running as PID 1; orphans will not be reaped here\n");

    /*
     * The watched signals stay blocked except inside sigsuspend(), so a
     * signal cannot slip in between checking the flags and going to sleep.
     */
    sigemptyset(&watched);
    sigaddset(&watched, SIGTERM);
    sigaddset(&watched, SIGINT);
    sigaddset(&watched, SIGCHLD);
    if (sigprocmask(SIG_BLOCK, &watched, &during_wait) != 0) {
        perror("pause: sigprocmask");
        return 1;
    }
    sigdelset(&during_wait, SIGTERM);
    sigdelset(&during_wait, SIGINT);
    sigdelset(&during_wait, SIGCHLD);

    /* PID 1 gets no default signal actions: without handlers it is unkillable. */
    if (install(SIGTERM, note_stop) != 0 || install(SIGINT, note_stop) != 0 ||
        install(SIGCHLD, note_child) != 0) {
        perror("pause: sigaction");
        return 1;
    }

    for (;;) {
        sigsuspend(&during_wait);
        if (child_exited) {
            child_exited = 0;
            reap_children();
        }
        if (stop_requested)
            return 0;
    }
}
