/* measure: runs a command once and prints what it cost, as one JSON line on stdout.
 *
 *   measure OUTFILE COMMAND [ARGS...]
 *       writes {"wall_s": ..., "user_s": ..., "sys_s": ..., "maxrss_kib": ..., "status": ...}
 *       to OUTFILE (truncated) and exits 0 whatever the command's status
 *
 * Wall time is CLOCK_MONOTONIC around fork+exec+wait4; CPU time and peak RSS come from wait4(2)
 * (the command and every descendant it waited for; peak RSS is the largest single process).
 * It exists because a child forked from a big parent (Python) inherits that parent's RSS high-water
 * mark across exec; forked from this small program, the figure is the command's own. The
 * command's stdin, stdout and stderr are this program's; OUTFILE is opened after it exits. Build: cc -O2 -o measure measure.c
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: measure OUTFILE COMMAND [ARGS...]\n");
        return 2;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pid_t pid = fork();
    if (pid < 0) { perror("measure: fork"); return 2; }
    if (pid == 0) {
        execvp(argv[2], argv + 2);
        perror("measure: exec");
        _exit(127);
    }
    int status;
    struct rusage ru;
    if (wait4(pid, &status, 0, &ru) < 0) { perror("measure: wait4"); return 2; }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    FILE *out = fopen(argv[1], "w");
    if (!out) { perror("measure: open OUTFILE"); return 2; }
    fprintf(out, "{\"wall_s\": %.6f, \"user_s\": %.6f, \"sys_s\": %.6f, \"maxrss_kib\": %ld, \"status\": %d}\n",
           (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9,
           ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6, ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6,
           ru.ru_maxrss, code);
    return fclose(out) == 0 ? 0 : 2;
}
