/*
 * peak-rss.c — run a command and print the peak resident set size of that
 * one process, for the memory figures of the benchmark (bench/run.py).
 *
 *   peak-rss CMD [ARG]...      prints {"maxrss_bytes": N, "exit": S} on stderr
 *
 * Why a program of its own: Linux keeps a process's ru_maxrss across
 * execve, so a command started from a large process (the Python runner,
 * which forks or vforks itself) reports at least that process's RSS.  This
 * helper is small, forks a child whose high-water mark starts from the
 * helper's own (about a megabyte), executes the command there and reads the
 * child's ru_maxrss from wait4().  Its stdout is the command's; the exit
 * status is the command's (127 if it could not be started).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs("usage: peak-rss CMD [ARG]...\n", stderr);
        return 2;
    }
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "peak-rss: fork: %s\n", strerror(errno));
        return 127;
    }
    if (pid == 0) {
        execvp(argv[1], argv + 1);
        fprintf(stderr, "peak-rss: %s: %s\n", argv[1], strerror(errno));
        _exit(127);
    }
    int status;
    struct rusage ru;
    if (wait4(pid, &status, 0, &ru) < 0) {
        fprintf(stderr, "peak-rss: wait4: %s\n", strerror(errno));
        return 127;
    }
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    fprintf(stderr, "{\"maxrss_bytes\": %lld, \"exit\": %d}\n", (long long)ru.ru_maxrss * 1024,
            code);
    return code;
}
