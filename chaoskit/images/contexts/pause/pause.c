/*
 * chaoskit's pod sandbox process: holds a pod's namespaces open and does nothing else.
 * It sleeps until SIGINT or SIGTERM (then exits 0) and, as PID 1 of a pod that shares its
 * PID namespace, reaps orphaned children so that they do not linger as zombies.
 * Build: gcc -Os -static -o pause pause.c
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_stop(int sig) {
    (void)sig;
    _exit(0);
}

static void on_child(int sig) {
    (void)sig;
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "-v") == 0) {
        puts("chaoskit pause 3.10.1");
        return 0;
    }
    if (getpid() != 1) fputs("pause: warning: not running as PID 1\n", stderr);

    struct sigaction stop = {.sa_handler = on_stop};
    struct sigaction child = {.sa_handler = on_child, .sa_flags = SA_NOCLDSTOP | SA_RESTART};
    if (sigaction(SIGINT, &stop, NULL) || sigaction(SIGTERM, &stop, NULL) ||
        sigaction(SIGCHLD, &child, NULL)) {
        perror("pause: sigaction");
        return 1;
    }
    for (;;) pause();
}
