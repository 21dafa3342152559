/* rawloop: the floor for recreating a tree, i.e. the creation syscalls and nothing else.
 *
 *   rawloop LISTING DEST [--mtimes]
 *       LISTING has one entry per line, parents before children, paths relative to DEST:
 *         d<TAB>PATH            mkdir(PATH, 0755)
 *         l<TAB>PATH<TAB>TARGET symlink(TARGET, PATH)
 *         f<TAB>PATH<TAB>SIZE   open(O_CREAT|O_EXCL), write SIZE zero bytes, close
 *       The listing is read into memory before the first syscall on DEST. No validation, no
 *       mtimes, no error recovery: any failure exits 1. With --mtimes, every file gets a
 *       futimens before close and every directory a utimensat after its creation (what an
 *       unpack that restores mtimes must add at least).
 *   rawloop --calibrate DIR N
 *       Prints the mean cost in microseconds of N calls each of mkdir, symlink, open+close
 *       (create), lstat, unlink and rmdir inside DIR (which must exist and be empty).
 *
 * Build: cc -O2 -o rawloop rawloop.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void die(const char *what, const char *path) {
    fprintf(stderr, "rawloop: %s `%s`: %s\n", what, path, strerror(errno));
    exit(1);
}

static char *slurp(const char *path, size_t *len) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) die("open", path);
    struct stat st;
    if (fstat(fd, &st) < 0) die("stat", path);
    char *buf = malloc((size_t)st.st_size + 1);
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n <= 0) die("read", path);
        got += (size_t)n;
    }
    buf[got] = 0;
    close(fd);
    *len = got;
    return buf;
}

struct entry { char kind; const char *path; const char *arg; };

static double now_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static int calibrate(const char *dir, long n) {
    if (chdir(dir) < 0) die("chdir", dir);
    char name[64];
    struct stat st;
    double t0 = now_us();
    for (long i = 0; i < n; i++) { snprintf(name, sizeof name, "d%ld", i); if (mkdir(name, 0755) < 0) die("mkdir", name); }
    double t1 = now_us();
    for (long i = 0; i < n; i++) { snprintf(name, sizeof name, "l%ld", i); if (symlink("/nix/store/00000000000000000000000000000000-x/lib.rlib", name) < 0) die("symlink", name); }
    double t2 = now_us();
    for (long i = 0; i < n; i++) { snprintf(name, sizeof name, "f%ld", i); int fd = open(name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644); if (fd < 0) die("create", name); close(fd); }
    double t3 = now_us();
    for (long i = 0; i < n; i++) { snprintf(name, sizeof name, "l%ld", i); if (lstat(name, &st) < 0) die("lstat", name); }
    double t4 = now_us();
    for (long i = 0; i < n; i++) { snprintf(name, sizeof name, "l%ld", i); if (unlink(name) < 0) die("unlink", name); snprintf(name, sizeof name, "f%ld", i); if (unlink(name) < 0) die("unlink", name); }
    double t5 = now_us();
    for (long i = 0; i < n; i++) { snprintf(name, sizeof name, "d%ld", i); if (rmdir(name) < 0) die("rmdir", name); }
    double t6 = now_us();
    printf("{\"mkdir_us\": %.2f, \"symlink_us\": %.2f, \"create_us\": %.2f, \"lstat_us\": %.2f, \"unlink_us\": %.2f, \"rmdir_us\": %.2f}\n",
           (t1 - t0) / n, (t2 - t1) / n, (t3 - t2) / n, (t4 - t3) / n, (t5 - t4) / (2.0 * n), (t6 - t5) / n);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 4 && strcmp(argv[1], "--calibrate") == 0) return calibrate(argv[2], atol(argv[3]));
    if (argc < 3 || argc > 4 || (argc == 4 && strcmp(argv[3], "--mtimes") != 0)) {
        fprintf(stderr, "usage: rawloop LISTING DEST [--mtimes] | rawloop --calibrate DIR N\n");
        return 2;
    }
    int mtimes = argc == 4;
    size_t len;
    char *text = slurp(argv[1], &len);
    size_t cap = 1024, n = 0;
    struct entry *entries = malloc(cap * sizeof *entries);
    for (char *line = text; line < text + len;) {
        char *end = strchr(line, '\n');
        if (!end) end = text + len;
        *end = 0;
        if (end > line) {
            if (n == cap) entries = realloc(entries, (cap *= 2) * sizeof *entries);
            char *path = strchr(line, '\t');
            if (!path) { fprintf(stderr, "rawloop: bad line `%s`\n", line); return 1; }
            *path++ = 0;
            char *arg = strchr(path, '\t');
            if (arg) *arg++ = 0;
            entries[n++] = (struct entry){line[0], path, arg};
        }
        line = end + 1;
    }
    if (chdir(argv[2]) < 0) die("chdir", argv[2]);
    static char zeros[1 << 16];
    const struct timespec times[2] = {{1700000000, 123456789}, {1700000000, 123456789}};
    for (size_t i = 0; i < n; i++) {
        struct entry *e = &entries[i];
        switch (e->kind) {
        case 'd':
            if (mkdir(e->path, 0755) < 0) die("mkdir", e->path);
            if (mtimes && utimensat(AT_FDCWD, e->path, times, AT_SYMLINK_NOFOLLOW) < 0) die("utimensat", e->path);
            break;
        case 'l':
            if (symlink(e->arg, e->path) < 0) die("symlink", e->path);
            break;
        case 'f': {
            int fd = open(e->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
            if (fd < 0) die("create", e->path);
            for (long left = atol(e->arg); left > 0;) {
                ssize_t w = write(fd, zeros, left < (long)sizeof zeros ? (size_t)left : sizeof zeros);
                if (w < 0) die("write", e->path);
                left -= w;
            }
            if (mtimes && futimens(fd, times) < 0) die("futimens", e->path);
            close(fd);
            break;
        }
        default:
            fprintf(stderr, "rawloop: unknown kind `%c`\n", e->kind);
            return 1;
        }
    }
    return 0;
}
